"""Guards and failures of CRPSGD and LocalSGD under horovodrun -np 2.

Usage: faults.py OUT_DIR CASE
  CASE "guards": rank 1 passes another budget and micro-batch size (every
    rank prints the ValueError); then rank 1's inputs turn NaN in round 3,
    first with on_nonfinite="raise" (every rank prints the error), then with
    "skip", training to the end and writing OUT_DIR/rank<r>.json.
  CASE "crash": rank 1 raises at the start of round 3 while rank 0 waits
    in that round's allreduce.
  CASE "kill": rank 1 kills itself with SIGKILL at the same point, so it
    exits without Python's clean-up.
  CASE "local_sgd_mismatch": rank 1 builds LocalSGD with interval
    LOCAL_SGD_MISMATCH["interval"] and optimizer_state="average", rank 0
    with LOCAL_SGD's interval and "local". The ValueError is not caught.
  CASE "local_sgd_nan": LocalSGD with LOCAL_SGD's settings; rank 1's inputs
    turn NaN in local step 2, and every rank prints the FloatingPointError
    raised at the average after step 3.
"""

import json
import os
import signal
import sys
import warnings

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.torch import CRPSGD, LocalSGD

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import LOCAL_SGD, SETTINGS, make_model, rank_samples  # noqa: E402

POISONED_ROUND = 3
# Rank 1's LocalSGD settings in the "local_sgd_mismatch" case.
LOCAL_SGD_MISMATCH = {"interval": 4, "optimizer_state": "average"}


def build(budget=SETTINGS["budget"], micro_batch_size=4, on_nonfinite="raise"):
    torch.manual_seed(1234 + hvd.rank())
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    return CRPSGD(model, optimizer, schedule, budget, micro_batch_size=micro_batch_size,
                  on_nonfinite=on_nonfinite)


def train(crpsgd, poison_once=True, crash=None):
    """Train in order through rank_samples; rank 1's first attempt at POISONED_ROUND gets NaN inputs."""
    inputs, targets = rank_samples(hvd.rank())
    position, poisoned, attempts = 0, False, []
    while (spec := crpsgd.next_round()) is not None:
        if crash and hvd.rank() == 1 and spec.round == POISONED_ROUND:
            print(f"rank 1 fails on purpose at the start of round {spec.round}", flush=True)
            if crash == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"rank 1 fails on purpose at the start of round {spec.round}")
        poison = hvd.rank() == 1 and spec.round == POISONED_ROUND and not poisoned
        poisoned = poisoned or (poison and poison_once)
        for size in spec.micro_batch_sizes:
            x, y = inputs[position:position + size], targets[position:position + size]
            position += size
            if poison:
                x = x * float("nan")
            crpsgd.backward(torch.nn.functional.mse_loss(crpsgd.model(x), y), size)
        result = crpsgd.step()
        attempts.append({"round": result.round, "batch": result.batch_size, "skipped": result.skipped,
                         "samples": result.samples})
    return attempts


def guards(out_dir):
    rank = hvd.rank()
    try:
        build(budget=120 if rank == 1 else SETTINGS["budget"], micro_batch_size=5 if rank == 1 else 4)
    except ValueError as error:
        print(f"rank {rank} ValueError: {error}", flush=True)

    try:
        train(build(on_nonfinite="raise"))
    except FloatingPointError as error:
        print(f"rank {rank} FloatingPointError: {error}", flush=True)

    crpsgd = build(on_nonfinite="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attempts = train(crpsgd)
    with open(f"{out_dir}/rank{rank}.json", "w") as file:
        json.dump({"attempts": attempts, "warnings": [str(w.message) for w in caught],
                   "params": [p.detach().tolist() for p in crpsgd.model.parameters()],
                   "accounting": crpsgd.accounting.state_dict(), "round_state": crpsgd.state.state_dict()}, file)


def local_sgd_mismatch():
    torch.manual_seed(1234 + hvd.rank())
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"])
    if hvd.rank() == 1:
        settings = LOCAL_SGD_MISMATCH
    else:
        settings = {"interval": LOCAL_SGD["interval"], "optimizer_state": "local"}
    LocalSGD(model, optimizer, LOCAL_SGD["batch_size"], LOCAL_SGD["budget"], settings["interval"],
             optimizer_state=settings["optimizer_state"])


def local_sgd_nan():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"])
    local_sgd = LocalSGD(model, optimizer, LOCAL_SGD["batch_size"], LOCAL_SGD["budget"], LOCAL_SGD["interval"])
    inputs, targets = rank_samples(hvd.rank())
    position = 0
    try:
        while (spec := local_sgd.next_step()) is not None:
            x, y = inputs[position:position + spec.batch_size], targets[position:position + spec.batch_size]
            position += spec.batch_size
            if hvd.rank() == 1 and spec.step == 2:
                x = x * float("nan")
            local_sgd.backward(torch.nn.functional.mse_loss(model(x), y), spec.batch_size)
            local_sgd.step()
    except FloatingPointError as error:
        print(f"rank {hvd.rank()} FloatingPointError: {error}", flush=True)


def main():
    out_dir, case = sys.argv[1], sys.argv[2]
    hvd.init()
    if case == "guards":
        guards(out_dir)
    elif case in ("crash", "kill"):
        train(build(), crash=case)
    elif case == "local_sgd_mismatch":
        local_sgd_mismatch()
    elif case == "local_sgd_nan":
        local_sgd_nan()


if __name__ == "__main__":
    main()
