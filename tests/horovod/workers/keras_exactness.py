"""Train a small float64 Keras model with CRPSGDCallback and save the weights after every round.

Rank r's samples are consumed in order from a seeded array, so the test can
rebuild the union of both ranks' samples for each round.

Usage: keras_exactness.py OUT_DIR MICRO_BATCH_SIZE LEFTOVER [catalyst]
With "catalyst", runs CatalystCallback for CATALYST["outer"] inner calls of
CATALYST["inner_budget"] samples with proximal weight CATALYST["theta"].
"""

import json
import sys

import crpsgd_hvd.keras as crpsgd_keras  # first: selects Keras 2 before TensorFlow loads
import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf
import tf_keras

from crpsgd_hvd import CatalystLoop, GeometricSchedule

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_common import CATALYST, SETTINGS, make_model, rank_samples  # noqa: E402


class RoundRecorder(tf_keras.callbacks.Callback):
    def __init__(self, crpsgd):
        super().__init__()
        self.crpsgd = crpsgd
        self.rounds = []

    def on_train_begin(self, logs=None):
        self.initial = [w.tolist() for w in self.model.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        if "B_t" in logs and self.crpsgd.accounting.rounds > len(self.rounds):
            self.rounds.append({"batch": int(logs["B_t"]), "weights": [w.tolist() for w in self.model.get_weights()],
                                "iterations": int(self.model.optimizer.iterations.numpy())})


def main():
    out_dir, micro_batch_size, leftover = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    hvd.init()
    tf.random.set_seed(1234 + hvd.rank())  # different on each rank: the broadcast must fix it
    model = make_model()
    optimizer = crpsgd_keras.round_optimizer(
        tf_keras.optimizers.SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"]))
    model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    if sys.argv[4:] == ["catalyst"]:
        loop = CatalystLoop.per_epoch(CATALYST["inner_budget"], CATALYST["outer"])
        crpsgd = crpsgd_keras.CatalystCallback(optimizer, schedule, loop, CATALYST["theta"], micro_batch_size,
                                               leftover=leftover)
    else:
        crpsgd = crpsgd_keras.CRPSGDCallback(optimizer, schedule, SETTINGS["budget"], micro_batch_size,
                                             leftover=leftover)
    recorder = RoundRecorder(crpsgd)

    inputs, targets = rank_samples(hvd.rank())
    sizes = crpsgd_keras.planned_micro_batch_sizes(crpsgd)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    dataset = tf.data.Dataset.from_generator(
        lambda: ((inputs[a:b], targets[a:b]) for a, b in zip(offsets[:-1], offsets[1:])),
        output_signature=(tf.TensorSpec((None, 5), tf.float64), tf.TensorSpec((None, 2), tf.float64)))
    steps = crpsgd.steps  # read before fit: afterwards it counts the steps left, none
    history = model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[crpsgd, recorder], verbose=0)

    with open(f"{out_dir}/rank{hvd.rank()}.json", "w") as file:
        json.dump({"initial": recorder.initial, "rounds": recorder.rounds,
                   "iterations": int(optimizer.iterations.numpy()),
                   "allreduce_count": int(optimizer.allreduce_count.numpy()),
                   "accounting": crpsgd.accounting.state_dict(), "steps": steps, "steps_left": crpsgd.steps,
                   "history": {key: [float(v) for v in values] for key, values in history.history.items()}},
                  file)


if __name__ == "__main__":
    main()
