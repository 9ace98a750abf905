"""Peak memory per worker as the per-worker batch B_t grows from 32 to 4,096 with a fixed micro-batch.

Run under Horovod:

    horovodrun --gloo -np 2 -H localhost:2 python benchmarks/memory.py

CR-PSGD runs rounds with B_t = 32, 64, ..., 4096 (B1 = 32, rho = 2) on the
small CNN, twice: with micro-batches of 32 samples, then, as a control that
shows the measurement can see growth, with the whole round in one pass.

Measurement (Linux only): before each round the script resets the process's
peak resident set size by writing 5 to /proc/self/clear_refs and reads
VmRSS; after the round's step it reads VmHWM from /proc/self/status. The
figure is VmHWM - VmRSS at the start, the memory the round added at its
peak, on rank 0. It covers every allocation of the process (torch's
allocator, NumPy, Python), unlike tracemalloc, which tracks Python's allocations only.
"""

import argparse
import sys

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.torch import CRPSGD, ShardSampler

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from workloads import make_workload  # noqa: E402


def read_status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line")


def reset_peak():
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def measure_rounds(micro_batch_size, b1, rho, budget):
    """Return [(B_t, peak increase in MiB)] for one CR-PSGD run."""
    model, shard, loss_fn = make_workload("cnn", hvd.rank(), 8192)
    crpsgd = CRPSGD(model, torch.optim.SGD(model.parameters(), lr=0.01), GeometricSchedule(b1, rho), budget,
                    micro_batch_size=micro_batch_size)
    sampler = ShardSampler(shard, seed=hvd.rank())
    rows = []
    while True:
        reset_peak()
        start = read_status_kib("VmRSS")
        spec = crpsgd.next_round()
        if spec is None:
            return rows
        for size in spec.micro_batch_sizes:
            crpsgd.backward(loss_fn(sampler.draw(size)), size)
        crpsgd.step()
        rows.append((spec.batch_size, (read_status_kib("VmHWM") - start) / 1024))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--micro-batch-size", type=int, default=32, help="fixed micro-batch (default: 32)")
    parser.add_argument("--max-batch", type=int, default=4096, help="largest B_t, a power of 2 times 32 (default: 4096)")
    args = parser.parse_args(argv)
    hvd.init()
    torch.set_num_threads(1)
    budget = 2 * args.max_batch - 32  # 32 + 64 + ... + max_batch

    micro = measure_rounds(args.micro_batch_size, 32, 2.0, budget)
    whole = measure_rounds(args.max_batch, 32, 2.0, budget)
    if hvd.rank() == 0:
        print(f"N = {hvd.size()}, CNN on 1x8x8 inputs; peak RSS increase within each round (MiB, rank 0)")
        print(f"{'B_t':>6} {f'micro-batch {args.micro_batch_size}':>16} {'whole batch':>12}")
        for (batch, micro_mib), (_, whole_mib) in zip(micro, whole):
            print(f"{batch:>6} {micro_mib:>16.1f} {whole_mib:>12.1f}")
        spread = max(m for _, m in micro[1:]) - min(m for _, m in micro[1:])
        print(f"micro-batch rounds 2..{len(micro)}: spread of the peak increase {spread:.1f} MiB; "
              f"whole-batch at B_t = {whole[-1][0]}: {whole[-1][1]:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
