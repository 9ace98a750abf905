"""Elastic CR-PSGD on the CR-PSGD paper's logistic regression, with workers joining and leaving.

Run as an elastic Horovod job; ``scripts/elastic_demo.sh`` sets up a host
discovery script on this machine and runs this example with planned resizes:

    scripts/elastic_demo.sh                       # 2 workers, 4 after round 15, 2 after round 35
    horovodrun -np 2 --min-np 2 --max-np 4 --host-discovery-script DISCOVER \\
        --network-interface lo python examples/torch/elastic_logistic_regression.py \\
        --hosts-file HOSTS --resize 15:4,35:2

The schedule fixes the global batch of round t at N_ref * B_t
(``--reference-workers``), whatever the number of workers present, so the
run follows the same rounds as a fixed job of N_ref workers. Every worker
builds the whole data set (the N_ref shards of the paper's problem,
concatenated) and takes its slice of each round's global batch.

``--resize ROUND:SLOTS,...`` plans resizes: after each listed round, rank 0
writes ``localhost:SLOTS`` to ``--hosts-file`` (the file the discovery
script prints) and every rank waits for Horovod's notice. Without
``--resize``, the job changes size only when the discovery script's output
changes for other reasons, or when a worker fails.

Rank 0 evaluates the exact objective at the start and after every round on
the whole data set (no communication), and writes ``results.json`` and ``objective.png``
(objective and number of workers against rounds) to ``--out-dir``.
"""

import argparse
import json
import logging
import os
import time

import horovod.torch as hvd
import numpy as np
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.cli import check_schedule_flags
from crpsgd_hvd.problems import LogisticRegressionProblem
from crpsgd_hvd.torch.elastic import (ElasticCRPSGD, ElasticState, GlobalBatchSampler, fit_elastic,
                                      wait_for_host_update)


def parse_resizes(text):
    """Parse ``ROUND:SLOTS,...``, e.g. ``15:4,35:2``, into a dict {round: slots}."""
    try:
        pairs = [item.split(":") for item in text.split(",") if item.strip()]
        resizes = {int(round_text): int(slots) for round_text, slots in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROUND:SLOTS pairs such as 15:4,35:2, got {text!r}")
    if any(number < 1 or slots < 1 for number, slots in resizes.items()):
        raise argparse.ArgumentTypeError(f"rounds and slots must be >= 1, got {text!r}")
    return resizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-workers", type=int, default=4,
                        help="N_ref: the global batch of round t is N_ref * B_t (default: 4)")
    parser.add_argument("--budget", type=int, default=4_000,
                        help="T, stochastic gradients per worker at N_ref workers (default: 4000)")
    parser.add_argument("--b1", type=int, default=2, help="first per-worker batch B1 (default: 2)")
    parser.add_argument("--rho", type=float, default=1.1, help="batch growth factor (default: 1.1)")
    parser.add_argument("--lr", type=float, default=0.005, help="learning rate gamma (default: 0.005)")
    parser.add_argument("--micro-batch-size", type=int, default=512,
                        help="maximum samples per forward/backward pass (default: 512)")
    parser.add_argument("--dim", type=int, default=500, help="feature dimension d (default: 500)")
    parser.add_argument("--samples-per-worker", type=int, default=10_000,
                        help="samples in each of the N_ref shards, M (default: 10000)")
    parser.add_argument("--mu", type=float, default=1e-3, help="l2 weight mu (default: 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="data and sampling seed (default: 0)")
    parser.add_argument("--hosts-file", default=None,
                        help="the file the host discovery script prints; needed by --resize")
    parser.add_argument("--resize", type=parse_resizes, default={},
                        help="planned resizes ROUND:SLOTS,... on localhost (default: none)")
    parser.add_argument("--out-dir", default="runs/elastic_logistic_regression",
                        help="folder for results.json and objective.png (default: runs/elastic_logistic_regression)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.resize and args.hosts_file is None:
        parser.error("--resize needs --hosts-file, the file that the host discovery script prints")
    check_schedule_flags(parser, args)
    return args


def whole_data_set(problem, shards):
    """Return the features and labels of ``shards`` shards of ``problem``, concatenated, as float32 tensors."""
    parts = [problem.shard(rank) for rank in range(shards)]
    features = torch.from_numpy(np.concatenate([f for f, _ in parts])).float()
    labels = torch.from_numpy(np.concatenate([b for _, b in parts])).float()
    return features, labels


def objective(model, features, labels, mu):
    """Return f(x) over the whole data set: the mean logistic loss plus (mu / 2) ||x||^2."""
    with torch.no_grad():
        x = model.weight.detach().double().reshape(-1)
        loss = torch.nn.functional.softplus(-labels.double() * (features.double() @ x)).mean()
        return float(loss) + 0.5 * mu * float(x @ x)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hvd.init()
    torch.manual_seed(args.seed)

    problem = LogisticRegressionProblem(dim=args.dim, samples_per_worker=args.samples_per_worker, mu=args.mu,
                                        seed=args.seed)
    features, labels = whole_data_set(problem, args.reference_workers)
    model = torch.nn.Linear(args.dim, 1, bias=False)
    torch.nn.init.zeros_(model.weight)  # x1 = 0, as in the paper
    crpsgd = ElasticCRPSGD(model, torch.optim.SGD(model.parameters(), lr=args.lr),
                           GeometricSchedule(b1=args.b1, rho=args.rho), args.budget,
                           reference_workers=args.reference_workers, micro_batch_size=args.micro_batch_size,
                           data=GlobalBatchSampler((features, labels), seed=args.seed))
    state = ElasticState(crpsgd)
    history = {"round": [], "workers": [], "objective": []}

    def loss_fn(samples):
        batch_features, batch_labels = samples
        margins = -batch_labels * model(batch_features).reshape(-1)
        return torch.nn.functional.softplus(margins).mean() + 0.5 * args.mu * model.weight.pow(2).sum()

    def after_round(state, result):
        if hvd.rank() == 0:
            history["round"].append(result.round)
            history["workers"].append(result.num_workers)
            history["objective"].append(objective(model, features, labels, args.mu))
        slots = args.resize.get(result.round)
        if slots is not None and slots != hvd.size():
            if hvd.rank() == 0:
                with open(args.hosts_file, "w") as hosts:
                    hosts.write(f"localhost:{slots}\n")
            wait_for_host_update(state)

    if hvd.rank() == 0:
        history["round"].append(0)
        history["workers"].append(hvd.size())
        history["objective"].append(objective(model, features, labels, args.mu))
    started = time.perf_counter()
    results = fit_elastic(state, loss_fn, callback=after_round, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    if hvd.rank() == 0:
        report(args, crpsgd, results, history, seconds)


def report(args, crpsgd, results, history, seconds):
    """Print the summary, and write results.json and objective.png to ``args.out_dir``."""
    accounting = crpsgd.accounting
    spans = worker_spans(history["round"][1:], history["workers"][1:])
    print(f"elastic CR-PSGD: {accounting.rounds} rounds ({crpsgd.plan.num_rounds} planned), "
          f"{accounting.total_samples} gradients over all workers, {accounting.allreduce_calls} allreduce calls, "
          f"final objective {history['objective'][-1]:.6f}, {seconds:.1f} s")
    for first, last, workers in spans:
        print(f"  rounds {first}-{last}: {workers} workers")

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "results.json"), "w") as file:
        json.dump({"settings": {key: value for key, value in vars(args).items() if key != "resize"},
                   "resize": {str(key): value for key, value in args.resize.items()},
                   "accounting": accounting.state_dict(), "history": history, "wall_seconds": seconds,
                   "skipped_rounds": sum(result.skipped for result in results)}, file, indent=2)
    if not args.no_plot:
        plot(history, os.path.join(args.out_dir, "objective.png"))


def worker_spans(rounds, workers):
    """Return (first round, last round, workers) for each run of rounds with the same number of workers."""
    spans = []
    for number, count in zip(rounds, workers):
        if spans and spans[-1][2] == count:
            spans[-1][1] = number
        else:
            spans.append([number, number, count])
    return [tuple(span) for span in spans]


def plot(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, objective_axis = plt.subplots(figsize=(7, 4))
    objective_axis.plot(history["round"], history["objective"], color="tab:blue", label="objective")
    objective_axis.set_xlabel("round")
    objective_axis.set_ylabel("objective f(x)")
    workers_axis = objective_axis.twinx()
    workers_axis.step(history["round"], history["workers"], where="post", color="tab:orange", label="workers")
    workers_axis.set_ylabel("workers present")
    workers_axis.set_ylim(0, max(history["workers"]) + 1)
    figure.legend(loc="upper center")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
