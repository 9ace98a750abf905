"""CR-PSGD-Catalyst against classical parallel SGD on real handwritten digits.

Run under Horovod, one process per worker:

    horovodrun -np 2 -H localhost:2 --gloo python examples/torch/digits_catalyst.py

The data are scikit-learn's bundled 8x8 handwritten digits (1,797 scans,
shipped inside the package, so nothing is downloaded). A fixed fraction is
held out for testing; the rest is split into one equal shard per worker, and
each worker reads only its own shard. Both methods train the same small CNN
from the same start, with the same learning rate, momentum and weight decay,
and spend the same per-worker gradient budget, K epochs of the shard:

* CR-PSGD-Catalyst: K outer iterations of one epoch each, B_t = floor(rho^(t-1) B1)
  capped at B_max, proximal weight theta;
* classical PSGD: Horovod's DistributedOptimizer at a fixed batch, one
  allreduce per step.

The training loss is the mean cross-entropy over all workers' shards,
evaluated with one extra allreduce that neither method's counters include;
evaluation time is excluded from wall time. Rank 0 writes ``results.json`` and
``loss.png`` (training loss against gradient calls and against rounds) and
prints a table.
"""

import argparse
import logging
import sys
import time

import horovod.torch as hvd
import torch
from torch.nn import functional

from comparison import Monitor, accuracy, format_table, summarize, write_results
from comparison import run_psgd as run_psgd_loop
from crpsgd_hvd import CatalystLoop, GeometricSchedule
from crpsgd_hvd.cli import check_schedule_flags
from crpsgd_hvd.torch import CRPSGDCatalyst, ShardSampler, fit_catalyst
from crpsgd_hvd.torch.models import DigitsCNN


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer", type=int, default=10,
                        help="K, outer iterations of one epoch each; also PSGD's epochs (default: 10)")
    parser.add_argument("--b1", type=int, default=8, help="first per-worker batch B1 (default: 8)")
    parser.add_argument("--rho", type=float, default=1.2, help="batch growth factor rho (default: 1.2)")
    parser.add_argument("--b-max", type=int, default=128, help="cap on the per-worker batch (default: 128)")
    parser.add_argument("--theta", type=float, default=0.1, help="proximal weight theta (default: 0.1)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate gamma of both methods (default: 0.05)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of both methods (default: 0.9)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay of both methods (default: 1e-4)")
    parser.add_argument("--psgd-batch", type=int, default=None,
                        help="per-worker batch of classical PSGD (default: B1)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="fraction of the digits held out for testing (default: 0.2)")
    parser.add_argument("--micro-batch-size", type=int, default=256,
                        help="maximum samples per forward/backward pass in CR-PSGD (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and sampling seed (default: 0)")
    parser.add_argument("--eval-points", type=int, default=100,
                        help="training-loss evaluations along the PSGD run (default: 100); "
                             "CR-PSGD-Catalyst is evaluated after every round")
    parser.add_argument("--out-dir", default="runs/digits_catalyst",
                        help="folder for results.json and loss.png (default: runs/digits_catalyst)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.psgd_batch is None:
        args.psgd_batch = args.b1
    if not 0.0 < args.test_fraction < 1.0:
        parser.error(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    check_schedule_flags(parser, args)
    return args


def load_split(test_fraction, seed, rank, num_workers):
    """Return this worker's training shard and the held-out set, as (images, labels) tensor pairs.

    Every rank draws the same permutation, so the held-out set is the same
    everywhere and the shards are disjoint and of equal size (the few samples
    that do not divide evenly among workers are left out).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # pixel values 0..16
    labels = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    num_test = round(test_fraction * len(labels))
    test, train = order[:num_test], order[num_test:]
    shard_size = len(train) // num_workers
    shard = train[rank * shard_size:(rank + 1) * shard_size]
    return (images[shard], labels[shard]), (images[test], labels[test])


def make_model(seed):
    torch.manual_seed(seed)  # the same start for both methods; the broadcast also enforces it
    return DigitsCNN()


def classification_loss(model):
    def loss_fn(samples):
        images, labels = samples
        return functional.cross_entropy(model(images), labels)
    return loss_fn


def make_sgd(args, model):
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)


def run_catalyst(args, shard, test):
    model = make_model(args.seed)
    loop = CatalystLoop.per_epoch(len(shard[1]), args.outer)
    catalyst = CRPSGDCatalyst(model, make_sgd(args, model), GeometricSchedule(args.b1, args.rho, args.b_max), loop,
                              theta=args.theta, micro_batch_size=args.micro_batch_size, leftover="final_round")
    sampler = ShardSampler(shard, seed=args.seed * 7919 + hvd.rank())
    monitor = Monitor(shard)
    monitor(model, 0, 0)

    started = time.perf_counter()
    fit_catalyst(catalyst, sampler.draw, classification_loss(model), progress=not args.no_progress,
                 callback=lambda result: monitor(model, catalyst.accounting.samples, catalyst.accounting.rounds))
    wall = time.perf_counter() - started - monitor.seconds
    return summarize("CR-PSGD-Catalyst", catalyst.accounting, monitor, wall, catalyst.catalyst_plan.num_rounds,
                     test_accuracy=accuracy(model, test))


def run_psgd(args, shard, test):
    model = make_model(args.seed)
    optimizer = hvd.DistributedOptimizer(make_sgd(args, model), named_parameters=model.named_parameters())
    sampler = ShardSampler(shard, seed=args.seed * 7919 + hvd.rank())
    steps = args.outer * len(shard[1]) // args.psgd_batch
    monitor = Monitor(shard)

    accounting, wall = run_psgd_loop(model, optimizer, sampler.draw, classification_loss(model), args.psgd_batch,
                                     steps, monitor, eval_every=max(1, steps // args.eval_points))
    return summarize("PSGD", accounting, monitor, wall, steps, test_accuracy=accuracy(model, test))


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    # Several workers share few cores here; one thread each avoids oversubscription.
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO if hvd.rank() == 0 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    shard, test = load_split(args.test_fraction, args.seed, hvd.rank(), hvd.size())
    results = [run_catalyst(args, shard, test), run_psgd(args, shard, test)]

    if hvd.rank() == 0:
        config = {**vars(args), "workers": hvd.size(), "shard_size": len(shard[1]), "test_size": len(test[1])}
        title = (f"digits, N={hvd.size()}, K={args.outer} epochs of {len(shard[1])}, B1={args.b1}, "
                 f"rho={args.rho}, B_max={args.b_max}, theta={args.theta}, lr={args.lr}")
        write_results(args.out_dir, config, results, title, format_table(results),
                      figure=None if args.no_plot else "loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
