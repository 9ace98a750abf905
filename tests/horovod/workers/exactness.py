"""Train a small float64 model with CRPSGD and save the parameters after every round.

Each rank's samples come from a fixed formula (rank r's sample k is row
k of its own seeded tensor), so the test can rebuild the union of both ranks'
samples for each round and compute a single-process reference.

Usage: exactness.py OUT_DIR MICRO_BATCH_SIZE LEFTOVER
"""

import json
import os
import sys

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.torch import CRPSGD

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import SETTINGS, make_model, rank_samples  # noqa: E402


def main():
    out_dir, micro_batch_size, leftover = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    hvd.init()
    torch.manual_seed(1234 + hvd.rank())  # different on each rank: the broadcast must fix it
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    crpsgd = CRPSGD(model, optimizer, schedule, SETTINGS["budget"], micro_batch_size=micro_batch_size,
                    leftover=leftover)
    inputs, targets = rank_samples(hvd.rank())

    initial = [p.detach().clone().tolist() for p in model.parameters()]
    rounds, position = [], 0
    while (spec := crpsgd.next_round()) is not None:
        for size in spec.micro_batch_sizes:
            x, y = inputs[position:position + size], targets[position:position + size]
            position += size
            loss = torch.nn.functional.mse_loss(model(x), y)
            crpsgd.backward(loss, size)
        crpsgd.step()
        rounds.append({"batch": spec.batch_size, "micro_batches": list(spec.micro_batch_sizes),
                       "params": [p.detach().tolist() for p in model.parameters()]})

    if os.environ.get("HOROVOD_TIMELINE"):
        # Horovod drops timeline events still queued at shutdown; stopping the
        # timeline makes rank 0, which writes it, wait until the queue is written.
        hvd.stop_timeline()
    with open(f"{out_dir}/rank{hvd.rank()}.json", "w") as file:
        json.dump({"initial": initial, "rounds": rounds, "accounting": crpsgd.accounting.state_dict(),
                   "plan_batches": [row.batch_per_worker for row in crpsgd.plan.rounds]}, file)


if __name__ == "__main__":
    main()
