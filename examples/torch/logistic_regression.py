"""CR-PSGD against classical parallel SGD and local SGD on the CR-PSGD paper's logistic regression.

Run under Horovod, one process per worker:

    horovodrun -np 4 -H localhost:4 --gloo python examples/torch/logistic_regression.py
    horovodrun -np 10 -H localhost:10 --gloo python examples/torch/logistic_regression.py --paper

Every worker generates its own shard (d = 500, 10^4 samples, mu = 10^-3 by
default). The three methods start from x1 = 0, draw the same samples in the
same order and spend the same per-worker gradient budget T, and all three
count rounds, allreduce calls and bytes with the same accounting:

* CR-PSGD: B_t = floor(rho^(t-1) B1), one grouped allreduce per round;
* classical PSGD: a fixed batch, one allreduce of gradients per step;
* local SGD: the same fixed batch, plain local steps, and one allreduce of
  parameters every H steps and after the last step.

``--sweep-intervals`` first runs local SGD for each listed H and keeps the
largest H whose final objective is within ``--sweep-rtol`` of PSGD's. Rank 0
then also writes ``sweep.json`` and prints the sweep's table.

The objective is the exact full objective over all workers' data, evaluated
with one extra allreduce that neither method's counters include; evaluation
time is excluded from wall time. Rank 0 writes ``results.json``,
``objective.png`` (objective against gradient calls and against rounds) and
prints a table.
"""

import argparse
import logging
import os
import sys
import time

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule, sweep_intervals
from crpsgd_hvd.cli import check_schedule_flags
from crpsgd_hvd.problems import LogisticRegressionProblem
from crpsgd_hvd.torch import LocalSGD, ShardSampler, fit, make_method

from comparison import summarize, write_results  # examples/torch/comparison.py, beside this script

# The paper's configuration (its Experiment 1); --paper selects it.
PAPER = {"budget": 10_000, "b1": 2, "rho": 1.1, "lr": 0.1, "psgd_batch": 2, "workers": 10}
# The default keeps the paper's problem, B1 and rho, with two changes. The
# budget is smaller, so that PSGD's one allreduce per step stays near a minute
# with 4 processes on 2 cores. The learning rate is smaller: for features drawn
# from Normal(1, 4 I) in d = 500 the loss is L-smooth with L close to 126, so
# gamma = 0.1 (gamma * L near 12.6) makes SGD oscillate instead of descend,
# while 0.005 satisfies Theorem 1's gamma < 1/L.
DEFAULT_BUDGET = 4_000
DEFAULT_LR = 0.005
DEFAULT_INTERVAL = 16


def parse_intervals(text):
    """Parse a comma-separated list of averaging intervals, e.g. ``1,2,4,8``."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4,8, got {text!r}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper", action="store_true",
                        help="the paper's configuration: T = 10000; launch with -np 10 for its N = 10")
    parser.add_argument("--budget", type=int, default=None,
                        help=f"T, stochastic gradients per worker (default: {DEFAULT_BUDGET}; "
                             f"{PAPER['budget']} with --paper)")
    parser.add_argument("--b1", type=int, default=PAPER["b1"], help="first per-worker batch B1 (default: 2)")
    parser.add_argument("--rho", type=float, default=PAPER["rho"], help="batch growth factor (default: 1.1)")
    parser.add_argument("--b-max", type=int, default=None, help="cap on the per-worker batch (default: none)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"learning rate gamma (default: {DEFAULT_LR}; {PAPER['lr']} with --paper)")
    parser.add_argument("--psgd-batch", type=int, default=PAPER["psgd_batch"],
                        help="per-worker batch of classical PSGD (default: 2)")
    parser.add_argument("--local-sgd-interval", type=int, default=DEFAULT_INTERVAL,
                        help=f"H, local steps between model averages in local SGD, at the PSGD batch "
                             f"(default: {DEFAULT_INTERVAL}; replaced by the sweep's choice with --sweep-intervals)")
    parser.add_argument("--sweep-intervals", type=parse_intervals, default=None,
                        help="run local SGD for each H in this comma-separated list first, and use the "
                             "largest H within --sweep-rtol of PSGD's final objective (default: no sweep)")
    parser.add_argument("--sweep-rtol", type=float, default=0.01,
                        help="relative tolerance of the sweep: H passes when its final objective is at most "
                             "PSGD's times (1 + rtol) (default: 0.01)")
    parser.add_argument("--same-shard", action="store_true",
                        help="a control run: every worker trains on rank 0's shard with rank 0's sampling "
                             "seed, so local SGD equals PSGD for every H")
    parser.add_argument("--micro-batch-size", type=int, default=512,
                        help="most samples per forward/backward pass in CR-PSGD (default: 512)")
    parser.add_argument("--dim", type=int, default=500, help="feature dimension d (default: 500)")
    parser.add_argument("--samples-per-worker", type=int, default=10_000,
                        help="samples in each worker's shard, M (default: 10000)")
    parser.add_argument("--mu", type=float, default=1e-3, help="l2 weight mu (default: 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="data and sampling seed (default: 0)")
    parser.add_argument("--eval-points", type=int, default=100,
                        help="objective evaluations along the PSGD run (default: 100); "
                             "CR-PSGD is evaluated after every round")
    parser.add_argument("--out-dir", default="runs/logistic_regression",
                        help="folder for results.json and objective.png (default: runs/logistic_regression)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.sweep_intervals is not None and not args.sweep_intervals:
        parser.error("--sweep-intervals must list at least one H, got an empty list")
    if args.budget is None:
        args.budget = PAPER["budget"] if args.paper else DEFAULT_BUDGET
    if args.lr is None:
        args.lr = PAPER["lr"] if args.paper else DEFAULT_LR
    check_schedule_flags(parser, args)
    return args


class ObjectiveMonitor:
    """Evaluate the exact full objective across workers and keep the history of one method."""

    def __init__(self, problem, features, labels):
        self.problem = problem
        self.features = features.double()
        self.labels = labels.double()
        self.history = {"gradients_per_worker": [], "rounds": [], "objective": []}
        self.seconds = 0.0

    def __call__(self, model, gradients_per_worker, rounds):
        started = time.perf_counter()
        with torch.no_grad():
            x = model.weight.detach().double().reshape(-1)
            local = torch.nn.functional.softplus(-self.labels * (self.features @ x)).mean()
            # Every shard has M samples, so the mean of the shard means is the full mean.
            loss = hvd.allreduce(local, name="eval.objective", op=hvd.Average).item()
            objective = loss + 0.5 * self.problem.mu * float(x @ x)
        self.history["gradients_per_worker"].append(gradients_per_worker)
        self.history["rounds"].append(rounds)
        self.history["objective"].append(objective)
        self.seconds += time.perf_counter() - started
        return objective


def make_model(dim):
    model = torch.nn.Linear(dim, 1, bias=False)
    torch.nn.init.zeros_(model.weight)  # x1 = 0, as in the paper
    return model


def logistic_loss(model, mu):
    def loss_fn(samples):
        features, labels = samples
        margins = -labels * model(features).reshape(-1)
        return torch.nn.functional.softplus(margins).mean() + 0.5 * mu * model.weight.pow(2).sum()
    return loss_fn


LABELS = {"crpsgd": "CR-PSGD", "psgd": "PSGD", "local_sgd": "local SGD"}


def run_method(args, problem, shard, name, interval=None):
    """Train one method from x1 = 0 on this worker's shard; return its summary and objective history."""
    model = make_model(problem.dim)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    if name == "crpsgd":
        method = make_method(name, model, optimizer, args.budget, micro_batch_size=args.micro_batch_size,
                             schedule=GeometricSchedule(args.b1, args.rho, args.b_max))
    else:
        method = make_method(name, model, optimizer, args.budget, batch_size=args.psgd_batch,
                             interval=interval)
    seed = args.seed * 7919 + (0 if args.same_shard else hvd.rank())
    sampler = ShardSampler(shard, seed=seed)
    monitor = ObjectiveMonitor(problem, *shard)
    # Between averages the local-SGD models differ, so it is evaluated only after an average.
    eval_every = max(1, method.plan.num_rounds // args.eval_points)

    def evaluate(result):
        if isinstance(method, LocalSGD) and not result.averaged:
            return
        if result.round % eval_every == 0 or result.round == method.plan.num_rounds:
            monitor(model, result.samples, result.round)

    monitor(model, 0, 0)
    started = time.perf_counter()
    fit(method, sampler.draw, logistic_loss(model, problem.mu), progress=not args.no_progress,
        callback=evaluate)
    wall = time.perf_counter() - started - monitor.seconds
    label = LABELS[name] + (f" H={interval}" if interval is not None else "")
    return summarize(label, method.accounting, monitor, wall, method.plan.num_rounds, metric="objective")


def run_sweep(args, problem, shard, psgd):
    """Run local SGD for each H of --sweep-intervals; return the sweep and the results by H."""
    results = {}

    def train(interval):
        results[interval] = run_method(args, problem, shard, "local_sgd", interval)
        return results[interval]["final_objective"], results[interval]["rounds"]

    sweep = sweep_intervals(train, args.sweep_intervals, psgd["final_objective"], args.sweep_rtol)
    return sweep, results


def format_table(results):
    header = (f"{'method':<15} {'grads/worker':>12} {'rounds':>7} {'bytes/worker':>13} "
              f"{'total bytes':>12} {'final objective':>16} {'wall s':>7}")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r['method']:<15} {r['gradients_per_worker']:>12} {r['rounds']:>7} "
                     f"{r['bytes_per_worker']:>13} {r['total_bytes']:>12} "
                     f"{r['final_objective']:>16.6f} {r['wall_seconds']:>7.2f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    # Several workers share few cores here; one thread each avoids oversubscription.
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO if hvd.rank() == 0 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.paper and hvd.size() != PAPER["workers"] and hvd.rank() == 0:
        logging.warning("--paper: the paper uses N = %d workers, this job has %d (set horovodrun -np)",
                        PAPER["workers"], hvd.size())

    problem = LogisticRegressionProblem(args.dim, args.samples_per_worker, args.mu, args.seed)
    shard_rank = 0 if args.same_shard else hvd.rank()
    shard = tuple(torch.from_numpy(a).float() for a in problem.shard(shard_rank))
    # Each shard has M samples and the monitor averages the shard means, so with
    # --same-shard the reported objective is rank 0's shard's, the data every worker trains on.
    crpsgd = run_method(args, problem, shard, "crpsgd")
    psgd = run_method(args, problem, shard, "psgd")

    sweep = None
    interval = args.local_sgd_interval
    if args.sweep_intervals:
        sweep, sweep_results = run_sweep(args, problem, shard, psgd)
        if sweep.chosen is None:
            interval = min(sweep_results)
            if hvd.rank() == 0:
                logging.warning("no H of the sweep is within %.2g of PSGD's final objective; using the "
                                "smallest, H = %d", args.sweep_rtol, interval)
        else:
            interval = sweep.chosen
        local_sgd = sweep_results[interval]
    else:
        local_sgd = run_method(args, problem, shard, "local_sgd", interval)
    results = [crpsgd, psgd, local_sgd]

    if hvd.rank() == 0:
        config = {**vars(args), "workers": hvd.size(), "local_sgd_interval": interval}
        title = (f"logistic regression, N={hvd.size()}, d={args.dim}, T={args.budget}, "
                 f"B1={args.b1}, rho={args.rho}, lr={args.lr}, local SGD H={interval}")
        if sweep is not None:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(os.path.join(args.out_dir, "sweep.json"), "w") as file:
                file.write(sweep.to_json())
            print(f"local SGD sweep, batch {args.psgd_batch}, against PSGD:")
            print(sweep.format_table())
        write_results(args.out_dir, config, results, title, format_table(results),
                      figure=None if args.no_plot else "objective.png", metric="objective",
                      ylabel="objective f(x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
