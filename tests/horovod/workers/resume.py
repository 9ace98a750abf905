"""Train CRPSGD and CRPSGDCatalyst, checkpoint them, and resume from the files in new processes.

Rank 0's shard has only 7 samples and rank 1's has 256, so rank 0's
ShardSampler wraps into new epochs many times, and the checkpoints catch it
mid-epoch.

Usage: resume.py OUT_DIR MODE
  MODE "save": run each method once without checkpoints (the uninterrupted
    reference), then again saving after the rounds in SAVE_AFTER (Catalyst,
    through fit_catalyst: after the outer iterations in SAVE_AFTER_OUTER and
    after the (outer, round) points in SAVE_INSIDE_OUTER); try one save
    inside a round and print the error. Writes OUT_DIR/save_rank<r>.json.
  MODE "resume": for every saved checkpoint, build fresh objects from a
    different random start, load the checkpoint and train to the end.
    Writes OUT_DIR/resume_rank<r>.json.
  MODE "more-workers": under one more worker than saved, load a checkpoint
    and print each rank's error.
"""

import json
import sys
from pathlib import Path

import horovod.torch as hvd
import torch

from crpsgd_hvd import CatalystLoop, GeometricSchedule
from crpsgd_hvd.torch import CRPSGD, CRPSGDCatalyst, ShardSampler, fit_catalyst, load_checkpoint, save_checkpoint

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import CATALYST, SETTINGS, make_model, rank_samples  # noqa: E402

SHARD_LENGTHS = (7, 256)
SAVE_AFTER = (1, 3, 5, 8)
SAVE_AFTER_OUTER = (1, 2)
# Each inner call has 5 rounds: 2, 3, 4 and 6 samples, then the final 5 of a 20-sample epoch.
# So (2, 5) is saved after the last round of outer iteration 2, before end_outer() moves the anchor.
SAVE_INSIDE_OUTER = ((1, 2), (2, 5), (3, 1))


def catalyst_points():
    """Return the names of the Catalyst checkpoints: "k" after outer iteration k, "k.t" after its round t."""
    return [str(k) for k in SAVE_AFTER_OUTER] + [f"{k}.{t}" for k, t in SAVE_INSIDE_OUTER]


def build(method, seed):
    """Return (driver, sampler) from a start that differs per rank and per ``seed``."""
    torch.manual_seed(seed + hvd.rank())
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    sampler = ShardSampler(rank_samples(hvd.rank(), SHARD_LENGTHS[hvd.rank()]), seed=50 + hvd.rank())
    if method == "crpsgd":
        schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
        driver = CRPSGD(model, optimizer, schedule, SETTINGS["budget"], micro_batch_size=4)
    else:
        loop = CatalystLoop.per_epoch(CATALYST["shard"], CATALYST["outer"])
        driver = CRPSGDCatalyst(model, optimizer, GeometricSchedule(CATALYST["b1"], CATALYST["rho"]), loop,
                                theta=CATALYST["theta"], micro_batch_size=3, leftover="final_round",
                                reset_optimizer_state=False)
    return driver, sampler


def run_rounds(driver, sampler, after_round=None, inside_round_dir=None):
    while (spec := driver.next_round()) is not None:
        for size in spec.micro_batch_sizes:
            inputs, targets = sampler.draw(size)
            driver.backward(torch.nn.functional.mse_loss(driver.model(inputs), targets), size)
        if spec.round == 2 and inside_round_dir is not None:
            try:
                save_checkpoint(inside_round_dir, driver, sampler)
            except RuntimeError as error:
                print(f"rank {hvd.rank()} RuntimeError: {error}", flush=True)
        driver.step()
        if after_round is not None:
            after_round(spec.round)


def train(method, driver, sampler, directory=None):
    """Train to the end; with ``directory``, save checkpoints along the way."""
    def save_round(t):
        if t in SAVE_AFTER:
            save_checkpoint(Path(directory) / f"{method}-{t}", driver, sampler)

    if method == "crpsgd":
        run_rounds(driver, sampler, save_round if directory else None,
                   Path(directory) / "inside-round" if directory else None)
    else:
        def save_inside_outer(result):
            if directory and (driver.current_outer, result.round) in SAVE_INSIDE_OUTER:
                save_checkpoint(Path(directory) / f"{method}-{driver.current_outer}.{result.round}", driver,
                                sampler)

        def save_after_outer(k, _):
            if directory and k in SAVE_AFTER_OUTER:
                save_checkpoint(Path(directory) / f"{method}-{k}", driver, sampler)

        def loss_fn(batch):
            inputs, targets = batch
            return torch.nn.functional.mse_loss(driver.model(inputs), targets)

        fit_catalyst(driver, sampler.draw, loss_fn, progress=False, callback=save_inside_outer,
                     outer_callback=save_after_outer)
    return summary(driver, sampler)


def summary(driver, sampler):
    result = {"params": [p.detach().tolist() for p in driver.model.parameters()],
              "round_state": driver.state.state_dict(), "accounting": driver.accounting.state_dict(),
              "sampler": sampler.state_dict()}
    if isinstance(driver, CRPSGDCatalyst):
        result["anchor"] = [a.tolist() for a in driver.anchor]
        result["outer"] = driver.catalyst_state.outer
    return result


def try_inconsistent_outer(out_dir):
    """Load a state saved inside outer iteration 2 that claims outer iteration 3 is open; print the error."""
    state = torch.load(out_dir / "catalyst-2.5" / f"rank{hvd.rank()}.pt", weights_only=True)["method"]
    state["open_outer"] = 3
    driver, _ = build("catalyst", 3000)
    try:
        driver.load_state_dict(state)
    except ValueError as error:
        print(f"rank {hvd.rank()} ValueError: {error}", flush=True)


def try_more_workers(out_dir):
    """Load a 2-worker checkpoint in a larger job and print this rank's error."""
    torch.manual_seed(hvd.rank())
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"])
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    driver = CRPSGD(model, optimizer, schedule, SETTINGS["budget"], micro_batch_size=4)
    try:
        load_checkpoint(out_dir / "crpsgd-1", driver)
    except (FileNotFoundError, ValueError) as error:
        print(f"rank {hvd.rank()} {type(error).__name__}: {error}", flush=True)


def main():
    out_dir, mode = Path(sys.argv[1]), sys.argv[2]
    hvd.init()
    if mode == "more-workers":
        try_more_workers(out_dir)
        return
    results = {}
    for method, points in (("crpsgd", SAVE_AFTER), ("catalyst", catalyst_points())):
        if mode == "save":
            results[method] = train(method, *build(method, 1000))
            results[f"{method}-saving"] = train(method, *build(method, 1000), directory=out_dir)
        else:
            for index, point in enumerate(points):
                driver, sampler = build(method, 2000 + 10 * index)
                load_checkpoint(out_dir / f"{method}-{point}", driver, sampler)
                results[f"{method}-{point}"] = train(method, driver, sampler)
    if mode == "resume":
        try_inconsistent_outer(out_dir)

    (out_dir / f"{mode}_rank{hvd.rank()}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
