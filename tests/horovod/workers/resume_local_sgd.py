"""Train LocalSGD, checkpoint it right after averages and between them, and resume in new processes.

LOCAL_SGD's settings give 10 local steps of 4 samples, averaged after steps
3, 6, 9 and 10. The shards have 7 and 256 samples, as in resume.py, so rank
0's ShardSampler wraps into new epochs and the checkpoints catch it mid-epoch.

Usage: resume_local_sgd.py OUT_DIR MODE
  MODE "save": for each (optimizer_state, micro_batch_size) in POLICIES, run
    once without checkpoints (the uninterrupted reference), then again
    saving to OUT_DIR/<optimizer_state>-<k> after each local step k in
    SAVE_AFTER_STEP; try one save inside local step 2 and print the error.
    Writes OUT_DIR/save_rank<r>.pt.
  MODE "resume": for every saved checkpoint, build fresh objects from a
    different random start, load the checkpoint and train to the end. Then
    load OUT_DIR/local-3 into a LocalSGD with interval OTHER_INTERVAL, and
    OUT_DIR/mixed (files of different steps, put there by the test), and
    print each error. Writes OUT_DIR/resume_rank<r>.pt.
"""

import sys
from pathlib import Path

import horovod.torch as hvd
import torch

from crpsgd_hvd.torch import LocalSGD, ShardSampler, load_checkpoint, save_checkpoint

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import LOCAL_SGD, SETTINGS, make_model, rank_samples  # noqa: E402
from resume import SHARD_LENGTHS  # noqa: E402

POLICIES = (("local", 3), ("average", 100))
# Steps 3 and 9 end with an average. After steps 1 and 5 the ranks' models differ.
SAVE_AFTER_STEP = (1, 3, 5, 9)
OTHER_INTERVAL = 4


def build(optimizer_state, micro_batch_size, seed, interval=LOCAL_SGD["interval"]):
    """Return (LocalSGD, sampler) from a start that differs per rank and per ``seed``."""
    torch.manual_seed(seed + hvd.rank())
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    sampler = ShardSampler(rank_samples(hvd.rank(), SHARD_LENGTHS[hvd.rank()]), seed=50 + hvd.rank())
    method = LocalSGD(model, optimizer, LOCAL_SGD["batch_size"], LOCAL_SGD["budget"], interval,
                      micro_batch_size=micro_batch_size, optimizer_state=optimizer_state)
    return method, sampler


def train(method, sampler, directory=None):
    """Train to the end; with ``directory``, save checkpoints along the way and try one inside a step."""
    while (spec := method.next_step()) is not None:
        for size in spec.micro_batch_sizes:
            inputs, targets = sampler.draw(size)
            method.backward(torch.nn.functional.mse_loss(method.model(inputs), targets), size)
        if directory is not None and spec.step == 2:
            try:
                save_checkpoint(directory / "inside-step", method, sampler)
            except RuntimeError as error:
                print(f"rank {hvd.rank()} RuntimeError: {error}", flush=True)
        method.step()
        if directory is not None and spec.step in SAVE_AFTER_STEP:
            save_checkpoint(directory / f"{method.optimizer_state}-{spec.step}", method, sampler)
    return summary(method, sampler)


def summary(method, sampler):
    params = [p.detach().clone() for p in method.model.parameters()]
    momentum = [method.optimizer.state[p]["momentum_buffer"].clone() for p in method.model.parameters()]
    return {"params": params, "momentum": momentum, "steps_done": method.steps_done,
            "accounting": method.accounting.state_dict(), "sampler": sampler.state_dict()}


def expect_value_error(action):
    try:
        action()
    except ValueError as error:
        print(f"rank {hvd.rank()} ValueError: {error}", flush=True)
        return
    raise SystemExit(f"rank {hvd.rank()}: expected a ValueError")


def main():
    out_dir, mode = Path(sys.argv[1]), sys.argv[2]
    hvd.init()
    results = {}
    for optimizer_state, micro_batch_size in POLICIES:
        if mode == "save":
            results[optimizer_state] = train(*build(optimizer_state, micro_batch_size, 1000))
            results[f"{optimizer_state}-saving"] = train(*build(optimizer_state, micro_batch_size, 1000),
                                                         directory=out_dir)
        else:
            for step in SAVE_AFTER_STEP:
                method, sampler = build(optimizer_state, micro_batch_size, 2000 + 10 * step)
                load_checkpoint(out_dir / f"{optimizer_state}-{step}", method, sampler)
                results[f"{optimizer_state}-{step}"] = train(method, sampler)

    if mode == "resume":
        method, sampler = build("local", 3, 3000, interval=OTHER_INTERVAL)
        expect_value_error(lambda: load_checkpoint(out_dir / "local-3", method, sampler))
        method, sampler = build("local", 3, 3000)
        expect_value_error(lambda: load_checkpoint(out_dir / "mixed", method, sampler))
    torch.save(results, out_dir / f"{mode}_rank{hvd.rank()}.pt")


if __name__ == "__main__":
    main()
