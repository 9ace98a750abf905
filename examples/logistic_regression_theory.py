"""Check Theorem 1's conditions for the CR-PSGD paper's logistic regression and print the bound.

The defaults are the configuration of that paper's first experiment (Yu and
Jin, ICML 2019): N = 10, d = 500, M = 10^4, mu = 10^-3, T = 10^4, B1 = 2,
rho = 1.1, gamma = 0.1.

    python examples/logistic_regression_theory.py
    python examples/logistic_regression_theory.py --lr 0.1 0.005   # several learning rates

The script pools the N workers' shards (400 MB for the paper's sizes),
estimates L, mu, sigma^2 and f* with NumPy (see
``crpsgd_hvd.problems.logistic_constants``; about a minute on two cores),
then prints, for each learning rate, Theorem 1's constants and conditions.
Where the conditions fail for the requested rho, it also prints the bound for
a rho inside them, rho = 1 + (sqrt(1/(1 - nu)) - 1) / 2, which gives
delta > 1, so the reader sees what the theorem would promise.
"""

import argparse
import logging
import math
import sys

from crpsgd_hvd.problems import LogisticRegressionProblem, estimate_constants


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.1], help="learning rates gamma (default: 0.1)")
    parser.add_argument("--b1", type=int, default=2, help="first per-worker batch B1 (default: 2)")
    parser.add_argument("--rho", type=float, default=1.1, help="batch growth factor (default: 1.1)")
    parser.add_argument("--budget", type=int, default=10_000, help="T, gradients per worker (default: 10000)")
    parser.add_argument("--workers", type=int, default=10, help="N, workers (default: 10)")
    parser.add_argument("--dim", type=int, default=500, help="feature dimension d (default: 500)")
    parser.add_argument("--samples-per-worker", type=int, default=10_000, help="M (default: 10000)")
    parser.add_argument("--mu", type=float, default=1e-3, help="l2 weight mu (default: 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    return parser.parse_args(argv)


def report_bound(theorem, args, gap):
    if theorem.holds:
        first, second = theorem.bound_terms(args.budget, args.workers, gap)
        print(f"  bound for T = {args.budget}, N = {args.workers}: {first + second:.6g} "
              f"(c1 term {first:.4g}, c2 term {second:.4g}); f(x1) - f* = {gap:.6g}")
    else:
        print("  bound: not available, because a required condition fails")


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    problem = LogisticRegressionProblem(args.dim, args.samples_per_worker, args.mu, args.seed)
    constants = estimate_constants(problem, args.workers)

    print(f"logistic regression: N = {args.workers}, d = {args.dim}, M = {args.samples_per_worker}, "
          f"mu = {args.mu}, seed = {args.seed}")
    print(f"  L = lambda_max(Z^T Z)/(4 N M) + mu = {constants.smoothness:.6g}   (1/L = {1 / constants.smoothness:.6g})")
    print(f"  mu (PL modulus, the l2 weight)    = {constants.pl_modulus:.6g}")
    print(f"  sigma^2 at x1 = 0                 = {constants.variance_at_start:.6g}")
    print(f"  sigma^2 at x*                     = {constants.variance_at_minimizer:.6g}")
    print(f"  f* (Newton, ||grad f|| = {constants.gradient_norm_at_minimizer:.1e}) = {constants.minimum:.10g}")
    print(f"  f(x1) - f* = log 2 - f*          = {constants.initial_gap:.6g}")

    for lr in args.lr:
        theorem = constants.theorem(lr, args.b1, args.rho)
        print(f"\ngamma = {lr}, B1 = {args.b1}, rho = {args.rho} (sigma^2 = the larger estimate):")
        for line in theorem.describe()[1:]:
            print("  " + line)
        report_bound(theorem, args, constants.initial_gap)
        if not theorem.holds and theorem.nu > 0.0:
            inside_rho = 1.0 + (math.sqrt(theorem.max_rho) - 1.0) / 2.0
            inside = constants.theorem(lr, max(args.b1, 2), inside_rho)
            print(f"  with rho = {inside_rho!r} (inside the conditions, delta = {inside.delta:.4g}):")
            report_bound(inside, args, constants.initial_gap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
