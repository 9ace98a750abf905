r"""Rate study: CR-PSGD's error against T and N on a PL problem, next to Theorem 1's bound.

    python benchmarks/rate_study.py                 # writes docs/rate_study.png and docs/rate_study.md
    python benchmarks/rate_study.py --seeds 200     # quicker, noisier

The problem is a quadratic with additive Gaussian gradient noise, where every
constant of Theorem 1 is exact:

.. math::

    f(x) = \tfrac12 \sum_k \lambda_k x_k^2, \qquad
    \nabla F(x; \xi) = \Lambda x + \xi, \quad \xi \sim \mathrm{Normal}(0, (\sigma^2/d) I)

so L = max lambda_k, mu = min lambda_k (f is mu-strongly convex, hence PL),
f* = 0 and the variance of one sample's gradient is sigma^2 at every x.

The simulation runs Algorithm 1 in one process: in round t each of N workers
averages B_t fresh samples, the N means are averaged and one step
x <- x - gamma g is taken, with B_t and the rounds from the core's
``GeometricSchedule`` and ``planned_batches``. The mean of B_t Gaussian
noises is drawn directly as one Gaussian of variance sigma^2 / (d B_t) per
coordinate, which has exactly the same distribution as drawing the B_t
samples (``per_sample=True`` draws them one by one, for checking). Because
the dynamics are linear, E[f(x)] also has an exact recursion
(:func:`expected_error`), which the measured mean over seeds should match.
"""

import argparse
import dataclasses
import logging
import os
import sys

import numpy as np

from crpsgd_hvd import GeometricSchedule, TheoremOne, planned_batches

logger = logging.getLogger("rate_study")


@dataclasses.dataclass(frozen=True)
class NoisyQuadratic:
    """f(x) = (1/2) sum_k lambda_k x_k^2 with gradient noise of total variance sigma^2.

    Attributes:
        eigenvalues (tuple of float): lambda_k > 0; d = their count.
        variance (float): sigma^2 >= 0, E||xi||^2 for one sample.
    """

    eigenvalues: tuple
    variance: float

    def __post_init__(self):
        if not self.eigenvalues or min(self.eigenvalues) <= 0.0:
            raise ValueError(f"eigenvalues must be a non-empty sequence of positive numbers, got {self.eigenvalues!r}")
        if self.variance < 0.0:
            raise ValueError(f"variance must be >= 0, got {self.variance!r}")

    @property
    def dim(self):
        return len(self.eigenvalues)

    def objective(self, x):
        """Return f(x) = f(x) - f* for x of shape (..., d)."""
        return 0.5 * np.sum(np.asarray(self.eigenvalues) * x ** 2, axis=-1)

    def theorem(self, lr, b1, rho):
        """Return Theorem 1 with this problem's exact L, mu and sigma^2."""
        return TheoremOne(max(self.eigenvalues), min(self.eigenvalues), self.variance, lr, b1, rho)


def simulate(problem, schedule, budget, num_workers, lr, x1, num_seeds, rng, per_sample=False):
    """Run Algorithm 1 for ``num_seeds`` independent seeds at once and return f(x) at the end of each.

    Args:
        problem (NoisyQuadratic): the function and its noise.
        schedule (GeometricSchedule): B_t.
        budget (int): T, gradients per worker; the samples the last full
            round cannot use are dropped, as in Algorithm 1.
        num_workers (int): N.
        lr (float): gamma.
        x1 (array of d floats): the common start.
        num_seeds (int): independent runs, simulated side by side.
        rng (numpy.random.Generator): the noise source.
        per_sample (bool): draw every sample's noise instead of each
            worker's mean; the same distribution, far slower.
    """
    eigenvalues = np.asarray(problem.eigenvalues)
    noise_scale = np.sqrt(problem.variance / problem.dim)
    x = np.tile(np.asarray(x1, dtype=np.float64), (num_seeds, 1))

    for batch in planned_batches(schedule, budget):
        if per_sample:
            noise = noise_scale * rng.standard_normal((num_seeds, num_workers, batch, problem.dim))
            worker_means = noise.mean(axis=2)
        else:
            worker_means = noise_scale / np.sqrt(batch) * rng.standard_normal((num_seeds, num_workers, problem.dim))
        gradient = eigenvalues * x + worker_means.mean(axis=1)
        x = x - lr * gradient
    return problem.objective(x)


def expected_error(problem, schedule, budget, num_workers, lr, x1):
    """Return E[f(x) - f*] after Algorithm 1, exactly.

    Per coordinate k, m_{t+1} = (1 - gamma lambda_k)^2 m_t + gamma^2 sigma^2 / (d N B_t)
    with m_t = E[x_{t,k}^2], and E f = (1/2) sum_k lambda_k m_k.
    """
    eigenvalues = np.asarray(problem.eigenvalues)
    second_moment = np.asarray(x1, dtype=np.float64) ** 2
    for batch in planned_batches(schedule, budget):
        second_moment = ((1.0 - lr * eigenvalues) ** 2 * second_moment
                         + lr ** 2 * problem.variance / (problem.dim * num_workers * batch))
    return 0.5 * float(np.sum(eigenvalues * second_moment))


def fit_slope(xs, ys):
    """Return the least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@dataclasses.dataclass(frozen=True)
class StudyPoint:
    budget: int
    num_workers: int
    rounds: int
    measured: float
    standard_error: float
    expected: float
    bound: float


def study_point(problem, schedule, budget, num_workers, lr, x1, num_seeds, rng):
    """Measure one (T, N) point and put it next to the exact expectation and the bound."""
    errors = simulate(problem, schedule, budget, num_workers, lr, x1, num_seeds, rng)
    theorem = problem.theorem(lr, schedule.b1, schedule.rho)
    return StudyPoint(
        budget=budget, num_workers=num_workers, rounds=len(planned_batches(schedule, budget)),
        measured=float(errors.mean()), standard_error=float(errors.std(ddof=1) / np.sqrt(num_seeds)),
        expected=expected_error(problem, schedule, budget, num_workers, lr, x1),
        bound=theorem.bound(budget, num_workers, float(problem.objective(np.asarray(x1)))),
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=10, help="d (default: 10)")
    parser.add_argument("--mu", type=float, default=0.5, help="smallest eigenvalue, the PL modulus (default: 0.5)")
    parser.add_argument("--smoothness", type=float, default=1.0, help="largest eigenvalue L (default: 1.0)")
    parser.add_argument("--variance", type=float, default=1.0, help="sigma^2 (default: 1.0)")
    parser.add_argument("--lr", type=float, default=0.5, help="gamma, below 1/L (default: 0.5)")
    parser.add_argument("--b1", type=int, default=2, help="B1 (default: 2)")
    parser.add_argument("--rho", type=float, default=1.03,
                        help="growth factor; the defaults allow rho < 16/15, and delta > 1 below 1.0328 (default: 1.03)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[2 ** k for k in range(6, 21, 2)],
                        help="per-worker budgets T (default: 2^6 .. 2^20, every other power)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32],
                        help="worker counts N (default: 1 2 4 8 16 32)")
    parser.add_argument("--fixed-workers", type=int, default=4, help="N for the sweep over T (default: 4)")
    parser.add_argument("--fixed-budget", type=int, default=2 ** 16, help="T for the sweep over N (default: 65536)")
    parser.add_argument("--fit-from", type=int, default=2 ** 12,
                        help="fit the slope against T on budgets >= this, where the 1/(NT) term dominates "
                             "(default: 4096)")
    parser.add_argument("--seeds", type=int, default=2000, help="independent runs per point (default: 2000)")
    parser.add_argument("--out-dir", default="docs", help="folder for rate_study.png and rate_study.md (default: docs)")
    return parser.parse_args(argv)


def run_study(args):
    problem = NoisyQuadratic(tuple(np.linspace(args.mu, args.smoothness, args.dim)), args.variance)
    schedule = GeometricSchedule(args.b1, args.rho)
    theorem = problem.theorem(args.lr, args.b1, args.rho)
    if not theorem.holds:
        raise SystemExit("Theorem 1's conditions fail for these settings:\n" + "\n".join(theorem.describe()))
    x1 = np.ones(args.dim)
    rng = np.random.default_rng(0)

    by_budget = []
    for budget in args.budgets:
        by_budget.append(study_point(problem, schedule, budget, args.fixed_workers, args.lr, x1, args.seeds, rng))
        logger.info("T = %d done", budget)
    by_workers = []
    for num_workers in args.workers:
        by_workers.append(study_point(problem, schedule, args.fixed_budget, num_workers, args.lr, x1, args.seeds, rng))
        logger.info("N = %d done", num_workers)
    return problem, theorem, by_budget, by_workers


def slopes(args, by_budget, by_workers):
    fitted = [p for p in by_budget if p.budget >= args.fit_from]
    return {
        "measured vs T": fit_slope([p.budget for p in fitted], [p.measured for p in fitted]),
        "exact expectation vs T": fit_slope([p.budget for p in fitted], [p.expected for p in fitted]),
        "bound vs T": fit_slope([p.budget for p in fitted], [p.bound for p in fitted]),
        "measured vs N": fit_slope([p.num_workers for p in by_workers], [p.measured for p in by_workers]),
        "bound vs N": fit_slope([p.num_workers for p in by_workers], [p.bound for p in by_workers]),
    }


def format_table(points):
    header = f"| T | N | rounds | measured E[f - f*] | standard error | exact E[f - f*] | Theorem 1 bound | bound / measured |"
    lines = [header, "|" + "---|" * 8]
    for p in points:
        lines.append(f"| {p.budget} | {p.num_workers} | {p.rounds} | {p.measured:.4g} | {p.standard_error:.2g} "
                     f"| {p.expected:.4g} | {p.bound:.4g} | {p.bound / p.measured:.3g} |")
    return "\n".join(lines)


def plot(by_budget, by_workers, args, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (against_budget, against_workers) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, points, key, label in ((against_budget, by_budget, "budget", f"T (N = {args.fixed_workers})"),
                                     (against_workers, by_workers, "num_workers", f"N (T = {args.fixed_budget})")):
        xs = [getattr(p, key) for p in points]
        axis.errorbar(xs, [p.measured for p in points], yerr=[2 * p.standard_error for p in points],
                      marker="o", linestyle="none", label=f"measured, mean of {args.seeds} seeds (±2 SE)")
        axis.plot(xs, [p.expected for p in points], label="exact expectation")
        axis.plot(xs, [p.bound for p in points], linestyle="--", label="Theorem 1 bound")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("E[f(x) - f*]")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"CR-PSGD on a noisy quadratic: d={args.dim}, mu={args.mu}, L={args.smoothness}, "
                    f"sigma^2={args.variance}, gamma={args.lr}, B1={args.b1}, rho={args.rho}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    problem, theorem, by_budget, by_workers = run_study(args)
    fitted = slopes(args, by_budget, by_workers)

    lines = ["Theorem 1 for this problem:", *("    " + line for line in theorem.describe()), "",
             f"Error against T (N = {args.fixed_workers}):", "", format_table(by_budget), "",
             f"Error against N (T = {args.fixed_budget}):", "", format_table(by_workers), "",
             f"Fitted log-log slopes (against T on T >= {args.fit_from}):", ""]
    lines += [f"- {name}: {value:.3f}" for name, value in fitted.items()]
    text = "\n".join(lines)
    print(text)

    os.makedirs(args.out_dir, exist_ok=True)
    command = "python benchmarks/rate_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with open(os.path.join(args.out_dir, "rate_study.md"), "w") as file:
        file.write(f"# Rate study\n\nGenerated by `{command.strip()}`; see the script's docstring for the "
                   f"problem.\n\n![error against T and N](rate_study.png)\n\n{text}\n")
    plot(by_budget, by_workers, args, os.path.join(args.out_dir, "rate_study.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
