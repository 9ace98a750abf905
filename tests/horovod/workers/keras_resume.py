"""Train with CRPSGDCallback and CatalystCallback, stop after a round, and resume in new processes.

Rank 0's shard has only 7 samples and rank 1's has 256, so rank 0's
round_dataset wraps into new shuffled epochs many times, and the
checkpoints catch it in the middle of an epoch.

Usage: keras_resume.py OUT_DIR MODE
  MODE "save": run each callback once without checkpoints (the uninterrupted
    reference), then once per round in SAVE_AFTER (Catalyst: SAVE_AFTER_CATALYST,
    rounds counted over all outer iterations), stopping fit there with
    RoundCheckpoint. One of these runs tries a checkpoint inside round 2 and
    prints the error. Writes OUT_DIR/save_rank<r>.json.
  MODE "resume": for every checkpoint, build fresh objects from other
    initial weights, load the checkpoint and train to the end. Also loads
    a checkpoint into a callback with another budget and prints the error.
    Writes OUT_DIR/resume_rank<r>.json.
"""

import json
import sys
from pathlib import Path

import crpsgd_hvd.keras as crpsgd_keras  # first: selects Keras 2 before TensorFlow loads
import horovod.tensorflow.keras as hvd
import numpy as np
import tf_keras

from crpsgd_hvd import CatalystLoop, GeometricSchedule

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_common import CATALYST, SETTINGS, make_model, rank_samples  # noqa: E402

SHARD_LENGTHS = (7, 256)
SAVE_AFTER = (1, 5, 8)
# Six rounds per outer iteration (batches 3, 4, 6, 10, 15, 22): inside the first, at its end, inside the second.
SAVE_AFTER_CATALYST = (4, 6, 9)
INSIDE_ROUND_RUN = 5
# A resume that reads its data with this seed, other than the saved run's, is rejected.
OTHER_DATA_SEED = 999


class InsideRoundProbe(tf_keras.callbacks.Callback):
    """Request a checkpoint after the first of round 2's micro-batches and print the error."""

    def __init__(self, crpsgd, directory):
        super().__init__()
        self.crpsgd = crpsgd
        self.directory = directory
        self.done = False

    def on_train_batch_end(self, batch, logs=None):
        if self.done or not (self.crpsgd.round_open and self.crpsgd.state.rounds == 1):
            return
        self.done = True
        try:
            crpsgd_keras.save_checkpoint(self.directory, self.crpsgd)
        except RuntimeError as error:
            print(f"rank {hvd.rank()} RuntimeError: {error}", flush=True)


def build(method, seed, budget=SETTINGS["budget"]):
    """Return (model, callback) with initial weights that differ per rank and per ``seed``."""
    model = make_model()
    rng = np.random.default_rng(seed + hvd.rank())
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    optimizer = crpsgd_keras.round_optimizer(tf_keras.optimizers.SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"]))
    model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    if method == "crpsgd":
        callback = crpsgd_keras.CRPSGDCallback(optimizer, schedule, budget, micro_batch_size=2)
    else:
        loop = CatalystLoop.per_epoch(CATALYST["inner_budget"], CATALYST["outer"])
        callback = crpsgd_keras.CatalystCallback(optimizer, schedule, loop, CATALYST["theta"], micro_batch_size=3)
    return model, callback


def train(model, callback, extra_callbacks=()):
    features, targets = rank_samples(hvd.rank(), SHARD_LENGTHS[hvd.rank()])
    dataset = crpsgd_keras.round_dataset(features, targets, callback, seed=50 + hvd.rank())
    model.fit(dataset, epochs=1, steps_per_epoch=callback.steps, callbacks=[callback, *extra_callbacks], verbose=0)
    return summary(model, callback)


def summary(model, callback):
    result = {"weights": [w.tolist() for w in model.get_weights()],
              "optimizer": [v.numpy().tolist() for v in callback.optimizer.variables],
              "iterations": int(callback.optimizer.iterations.numpy()),
              "allreduce_count": int(callback.optimizer.allreduce_count.numpy()),
              "state": callback.state_dict(), "steps_left": callback.steps}
    if isinstance(callback, crpsgd_keras.CatalystCallback):
        result["anchor"] = [v.numpy().tolist() for v in callback.optimizer.anchor_variables()]
    return result


def save(out_dir):
    results = {}
    for method, points in (("crpsgd", SAVE_AFTER), ("catalyst", SAVE_AFTER_CATALYST)):
        results[method] = train(*build(method, 1000))
        for k in points:
            model, callback = build(method, 1000)
            extra = [crpsgd_keras.RoundCheckpoint(callback, out_dir / f"{method}-{k}", every_rounds=None,
                                                  stop_after_round=k)]
            if method == "crpsgd" and k == INSIDE_ROUND_RUN:
                extra.append(InsideRoundProbe(callback, out_dir / "inside-round"))
            results[f"{method}-{k}-stopped"] = train(model, callback, extra)
    return results


def resume(out_dir):
    results = {}
    for method, points in (("crpsgd", SAVE_AFTER), ("catalyst", SAVE_AFTER_CATALYST)):
        for k in points:
            model, callback = build(method, 2000 + 10 * k)
            crpsgd_keras.load_checkpoint(out_dir / f"{method}-{k}", callback, model)
            results[f"{method}-{k}-steps"] = callback.steps
            results[f"{method}-{k}"] = train(model, callback)

    model, callback = build("crpsgd", 3000, budget=180)
    try:
        crpsgd_keras.load_checkpoint(out_dir / f"crpsgd-{SAVE_AFTER[0]}", callback, model)
    except ValueError as error:
        print(f"rank {hvd.rank()} ValueError: {error}", flush=True)

    model, callback = build("crpsgd", 3000)
    crpsgd_keras.load_checkpoint(out_dir / f"crpsgd-{SAVE_AFTER[0]}", callback, model)
    features, targets = rank_samples(hvd.rank(), SHARD_LENGTHS[hvd.rank()])
    try:
        crpsgd_keras.round_dataset(features, targets, callback, seed=OTHER_DATA_SEED)
    except ValueError as error:
        print(f"rank {hvd.rank()} data ValueError: {error}", flush=True)
    return results


def main():
    out_dir, mode = Path(sys.argv[1]), sys.argv[2]
    hvd.init()
    results = save(out_dir) if mode == "save" else resume(out_dir)
    (out_dir / f"{mode}_rank{hvd.rank()}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
