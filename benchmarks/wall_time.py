"""Wall time per stochastic gradient: CR-PSGD vs per-step Horovod vs the same work without communication.

Run under Horovod, one process per worker:

    horovodrun --gloo -np 2 -H localhost:2 python benchmarks/wall_time.py --workload logistic
    horovodrun --gloo -np 4 -H localhost:4 python benchmarks/wall_time.py --workload cnn

Four methods spend the same per-worker budget T on the same shard:

* ``crpsgd``: the CRPSGD wrapper, B_t = floor(rho^(t-1) B1) in micro-batches, one allreduce per round;
* ``crpsgd_local``: the same rounds and micro-batches with a plain torch optimizer, no communication;
* ``psgd``: horovod.torch.DistributedOptimizer at batch B1, one allreduce per step;
* ``psgd_local``: the same steps with a plain torch optimizer, no communication.

The methods run in turn within each repeat, so machine load hits them alike.
A method's time in a repeat is the slowest rank's. The table shows the median
over repeats, and each ratio divides two medians measured in this one run. The
job also checks the CR-PSGD run's counted rounds and bytes against its plan.
"""

import argparse
import statistics
import sys
import time

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule, planned_batches
from crpsgd_hvd.rounds import micro_batch_sizes
from crpsgd_hvd.torch import CRPSGD, ShardSampler

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from workloads import WORKLOADS, make_workload  # noqa: E402

METHODS = ("crpsgd", "crpsgd_local", "psgd", "psgd_local")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="logistic", help="model and data (default: logistic)")
    parser.add_argument("--budget", type=int, default=2000, help="T, gradients per worker per method (default: 2000)")
    parser.add_argument("--b1", type=int, default=2, help="B1, also PSGD's batch (default: 2)")
    parser.add_argument("--rho", type=float, default=1.1, help="growth factor (default: 1.1)")
    parser.add_argument("--micro-batch-size", type=int, default=256, help="CR-PSGD micro-batch (default: 256)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every method (default: 3)")
    return parser.parse_args(argv)


def run_crpsgd(args, model, shard, loss_fn):
    crpsgd = CRPSGD(model, torch.optim.SGD(model.parameters(), lr=0.01), GeometricSchedule(args.b1, args.rho),
                    args.budget, micro_batch_size=args.micro_batch_size)
    sampler = ShardSampler(shard, seed=hvd.rank())
    started = time.perf_counter()
    while (spec := crpsgd.next_round()) is not None:
        for size in spec.micro_batch_sizes:
            crpsgd.backward(loss_fn(sampler.draw(size)), size)
        crpsgd.step()
    return time.perf_counter() - started, crpsgd


def run_local(batches, micro_batch_size, model, shard, loss_fn):
    """Run the given rounds with a plain optimizer: the same local work, no communication."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    sampler = ShardSampler(shard, seed=hvd.rank())
    started = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        for size in micro_batch_sizes(batch, micro_batch_size):
            (loss_fn(sampler.draw(size)) * (size / batch)).backward()
        optimizer.step()
    return time.perf_counter() - started


def run_psgd(args, model, shard, loss_fn):
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                         named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    sampler = ShardSampler(shard, seed=hvd.rank())
    started = time.perf_counter()
    for _ in range(args.budget // args.b1):
        optimizer.zero_grad()
        loss_fn(sampler.draw(args.b1)).backward()
        optimizer.step()
    return time.perf_counter() - started


def time_method(method, args, shard_size):
    model, shard, loss_fn = make_workload(args.workload, hvd.rank(), shard_size)
    crpsgd_batches = planned_batches(GeometricSchedule(args.b1, args.rho), args.budget)
    psgd_batches = [args.b1] * (args.budget // args.b1)
    crpsgd = None
    if method == "crpsgd":
        seconds, crpsgd = run_crpsgd(args, model, shard, loss_fn)
        samples = crpsgd.accounting.samples
    elif method == "crpsgd_local":
        seconds, samples = run_local(crpsgd_batches, args.micro_batch_size, model, shard, loss_fn), sum(crpsgd_batches)
    elif method == "psgd":
        seconds, samples = run_psgd(args, model, shard, loss_fn), sum(psgd_batches)
    else:
        seconds, samples = run_local(psgd_batches, args.b1, model, shard, loss_fn), sum(psgd_batches)
    slowest = max(hvd.allgather_object(seconds, name=f"bench.{method}"))
    return slowest / samples, crpsgd


def check_accounting(crpsgd):
    plan, counted = crpsgd.plan, crpsgd.accounting
    return [("rounds", plan.num_rounds, counted.rounds),
            ("allreduce calls", plan.num_rounds, counted.allreduce_calls),
            ("samples per worker", plan.samples_per_worker, counted.samples),
            ("bytes sent per worker", plan.bytes_per_worker, counted.bytes_sent)]


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    torch.set_num_threads(1)  # several workers share few cores
    shard_size = max(args.budget, 4096)
    per_gradient = {method: [] for method in METHODS}
    for repeat in range(args.repeats):
        for method in METHODS:
            seconds, crpsgd = time_method(method, args, shard_size)
            per_gradient[method].append(seconds)
            if crpsgd is not None:
                accounting_rows = check_accounting(crpsgd)
        if hvd.rank() == 0:
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    if hvd.rank() == 0:
        median = {method: statistics.median(values) for method, values in per_gradient.items()}
        print(f"workload {args.workload}, N = {hvd.size()}, T = {args.budget}, B1 = {args.b1}, rho = {args.rho}, "
              f"micro-batch {args.micro_batch_size}, {args.repeats} repeats")
        print(f"{'method':<14} {'us/gradient (median)':>21} {'all repeats':>30}")
        for method in METHODS:
            values = " ".join(f"{1e6 * v:.1f}" for v in per_gradient[method])
            print(f"{method:<14} {1e6 * median[method]:>21.1f} {values:>30}")
        print(f"ratio psgd / crpsgd:             {median['psgd'] / median['crpsgd']:.2f}")
        print(f"ratio crpsgd / crpsgd_local:     {median['crpsgd'] / median['crpsgd_local']:.2f}")
        print(f"ratio psgd / psgd_local:         {median['psgd'] / median['psgd_local']:.2f}")
        print(f"ratio crpsgd_local / psgd_local: {median['crpsgd_local'] / median['psgd_local']:.2f}")
        print("accounting against plan (last repeat):")
        for name, planned, counted in accounting_rows:
            print(f"  {name:<22} plan {planned:>10}  counted {counted:>10}  {'equal' if planned == counted else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
