"""Run the baselines (local SGD, classical PSGD) on a small float64 model and save what they did.

Usage: baselines.py exactness OUT_DIR OPTIMIZER_STATE MICRO_BATCH_SIZE
       baselines.py counts OUT_DIR

``exactness`` runs LocalSGD with LOCAL_SGD settings and saves the parameters
after every local step, so the test can replay each rank's steps in one
process. ``counts`` runs classical PSGD through make_method, then local SGD
for each of COUNT_INTERVALS, and saves their counters.
"""

import json
import sys
import warnings

import horovod.torch as hvd
import torch

from crpsgd_hvd.torch import fit, make_method

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import LOCAL_SGD, SETTINGS, make_model, rank_samples  # noqa: E402

COUNT_BATCH = 2
PSGD_BUDGET = 20
LOCAL_SGD_BUDGET = 21  # 10 local steps of 2; the last sample is dropped
COUNT_INTERVALS = (1, 2, 3, 4, 7, 10, 25)


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                           weight_decay=SETTINGS["weight_decay"])


def drawer(rank):
    inputs, targets = rank_samples(rank)
    position = 0

    def draw(size):
        nonlocal position
        batch = inputs[position:position + size], targets[position:position + size]
        position += size
        return batch
    return draw


def mse(model):
    return lambda samples: torch.nn.functional.mse_loss(model(samples[0]), samples[1])


def exactness(out_dir, optimizer_state, micro_batch_size):
    torch.manual_seed(1234 + hvd.rank())  # different on each rank: the broadcast must fix it
    model = make_model()
    method = make_method("local_sgd", model, make_optimizer(model), LOCAL_SGD["budget"],
                         batch_size=LOCAL_SGD["batch_size"], interval=LOCAL_SGD["interval"],
                         micro_batch_size=micro_batch_size, optimizer_state=optimizer_state)
    initial = [p.detach().clone().tolist() for p in model.parameters()]
    steps = []

    def record(result):
        steps.append({"averaged": result.averaged, "round": result.round,
                      "params": [p.detach().tolist() for p in model.parameters()]})

    fit(method, drawer(hvd.rank()), mse(model), progress=False, callback=record)
    with open(f"{out_dir}/rank{hvd.rank()}.json", "w") as file:
        json.dump({"initial": initial, "steps": steps, "accounting": method.accounting.state_dict()}, file)


def counts(out_dir):
    model = make_model()
    psgd = make_method("psgd", model, make_optimizer(model), PSGD_BUDGET, batch_size=COUNT_BATCH)
    fit(psgd, drawer(hvd.rank()), mse(model), progress=False)
    report = {"psgd": psgd.accounting.state_dict(), "local_sgd": {}}

    for interval in COUNT_INTERVALS:
        model = make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # H = 25 exceeds the 10 steps on purpose
            method = make_method("local_sgd", model, torch.optim.SGD(model.parameters(), lr=0.01),
                                 LOCAL_SGD_BUDGET, batch_size=COUNT_BATCH, interval=interval)
        fit(method, drawer(hvd.rank()), mse(model), progress=False)
        report["local_sgd"][interval] = method.accounting.state_dict()

    # Horovod's timeline writer (horovod/common/timeline.cc) drops the events still
    # queued at shutdown, and on a busy machine the last averages can be among them.
    # Stopping the timeline makes rank 0, which writes it, wait until the queue is written.
    hvd.stop_timeline()
    with open(f"{out_dir}/rank{hvd.rank()}.json", "w") as file:
        json.dump(report, file)


def main():
    hvd.init()
    case, out_dir = sys.argv[1], sys.argv[2]
    if case == "exactness":
        exactness(out_dir, sys.argv[3], int(sys.argv[4]))
    elif case == "counts":
        counts(out_dir)
    else:
        raise SystemExit(f"unknown case {case!r}: expected 'exactness' or 'counts'")


if __name__ == "__main__":
    main()
