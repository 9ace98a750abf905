"""Guards of the Keras adapter under horovodrun -np 2.

Usage: keras_faults.py OUT_DIR CASE
  CASE "guards": rank 1 passes another budget and micro-batch size to
    CRPSGDCallback, then another theta to CatalystCallback; every rank
    prints the ValueError that fit raises.
  CASE "shapes": rank 1's model has 3 hidden units instead of 4, and the
    ValueError is not caught, so the job must end with an error.
"""

import sys

import crpsgd_hvd.keras as crpsgd_keras  # first: selects Keras 2 before TensorFlow loads
import horovod.tensorflow.keras as hvd
import tensorflow as tf
import tf_keras

from crpsgd_hvd import CatalystLoop, GeometricSchedule

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_common import CATALYST, SETTINGS, make_model, rank_samples  # noqa: E402


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


def fit(model, callback, extra_steps=0):
    dataset = crpsgd_keras.round_dataset(*rank_samples(hvd.rank()), callback, seed=0)
    return model.fit(dataset, epochs=1, steps_per_epoch=callback.steps + extra_steps, callbacks=[callback],
                     verbose=0)


def guards():
    rank = hvd.rank()
    for label, options in (("crpsgd", {"budget": 120 if rank == 1 else SETTINGS["budget"],
                                       "micro_batch_size": 5 if rank == 1 else 4}),
                           ("catalyst", {"theta": 0.25 if rank == 1 else CATALYST["theta"]})):
        try:
            fit(*build(**options))
        except ValueError as error:
            print(f"rank {rank} {label} ValueError: {error}", flush=True)


def main():
    case = sys.argv[2]
    hvd.init()
    if case == "guards":
        guards()
    elif case == "shapes":
        fit(*build(hidden=3 if hvd.rank() == 1 else 4))


if __name__ == "__main__":
    main()
