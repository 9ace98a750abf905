"""Guards of the Keras adapter under horovodrun -np 2.

Usage: keras_faults.py OUT_DIR CASE
  CASE "guards": rank 1 passes another budget and micro-batch size to
    CRPSGDCallback, then another theta to CatalystCallback; every rank
    prints the ValueError that fit raises. Then rank 1's sample POISONED_SAMPLE,
    read in round POISONED_ROUND, is NaN: first with on_nonfinite="raise"
    (every rank prints the error), then with "skip", training to the end.
    Writes OUT_DIR/rank<r>.json.
  CASE "shapes": rank 1's model has 3 hidden units instead of 4, and the
    ValueError is not caught, so the job must end with an error.
"""

import json
import sys
import warnings

import crpsgd_hvd.keras as crpsgd_keras  # first: selects Keras 2 before TensorFlow loads
import horovod.tensorflow.keras as hvd
import tensorflow as tf
import tf_keras

from crpsgd_hvd import CatalystLoop, GeometricSchedule

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_common import CATALYST, SETTINGS, make_model, rank_samples  # noqa: E402

# Rounds 1 and 2 read samples 0 to 6 (batches 3 and 4), so round 3 reads samples 7 to 12.
POISONED_ROUND = 3
POISONED_SAMPLE = 9


class Recorder(tf_keras.callbacks.Callback):
    """Record the weights after the broadcast; place it after the CR-PSGD callback."""

    def on_train_begin(self, logs=None):
        self.initial = [w.tolist() for w in self.model.get_weights()]


def build(budget=SETTINGS["budget"], micro_batch_size=4, theta=None, hidden=4, **options):
    """Return (model, callback); a ``theta`` gives a CatalystCallback."""
    tf.random.set_seed(1234 + hvd.rank())
    model = make_model(hidden)
    optimizer = crpsgd_keras.round_optimizer(tf_keras.optimizers.SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"]))
    model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    if theta is None:
        callback = crpsgd_keras.CRPSGDCallback(optimizer, schedule, budget, micro_batch_size, **options)
    else:
        loop = CatalystLoop.per_epoch(CATALYST["inner_budget"], CATALYST["outer"])
        callback = crpsgd_keras.CatalystCallback(optimizer, schedule, loop, theta, micro_batch_size, **options)
    return model, callback


def fit(model, callback, extra_steps=0, poison=False, recorder=None):
    """Run fit on this rank's samples in order; with ``poison``, rank 1's POISONED_SAMPLE is NaN."""
    features, targets = rank_samples(hvd.rank())
    if poison and hvd.rank() == 1:
        features = features.copy()
        features[POISONED_SAMPLE, 0] = float("nan")
    dataset = crpsgd_keras.round_dataset(features, targets, callback, seed=0, shuffle=False)
    callbacks = [callback] if recorder is None else [callback, recorder]
    return model.fit(dataset, epochs=1, steps_per_epoch=callback.steps + extra_steps, callbacks=callbacks,
                     verbose=0)


def summary(model, callback):
    return {"weights": [w.tolist() for w in model.get_weights()],
            "iterations": int(callback.optimizer.iterations.numpy()),
            "allreduce_count": int(callback.optimizer.allreduce_count.numpy()),
            "round_state": callback.state.state_dict(), "accounting": callback.accounting.state_dict(),
            "samples_drawn": callback.samples_drawn, "skipped_rounds": callback.skipped_rounds}


def guards():
    rank = hvd.rank()
    for label, options in (("crpsgd", {"budget": 120 if rank == 1 else SETTINGS["budget"],
                                       "micro_batch_size": 5 if rank == 1 else 4}),
                           ("catalyst", {"theta": 0.25 if rank == 1 else CATALYST["theta"]})):
        try:
            fit(*build(**options))
        except ValueError as error:
            print(f"rank {rank} {label} ValueError: {error}", flush=True)

    results = {}
    model, callback = build(on_nonfinite="raise")
    recorder = Recorder()
    try:
        fit(model, callback, poison=True, recorder=recorder)
    except FloatingPointError as error:
        print(f"rank {rank} FloatingPointError: {error}", flush=True)
    results["raise"] = {**summary(model, callback), "initial": recorder.initial}

    model, callback = build(on_nonfinite="skip")
    recorder = Recorder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(model, callback, extra_steps=10, poison=True, recorder=recorder)
    results["skip"] = {**summary(model, callback), "initial": recorder.initial,
                       "warnings": [str(w.message) for w in caught if "averaged gradient" in str(w.message)],
                       "history": {key: [float(v) for v in values] for key, values in history.history.items()
                                   if key != "loss"}}
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as file:
        json.dump(results, file)


def main():
    case = sys.argv[2]
    hvd.init()
    if case == "guards":
        guards()
    elif case == "shapes":
        fit(*build(hidden=3 if hvd.rank() == 1 else 4))


if __name__ == "__main__":
    main()
