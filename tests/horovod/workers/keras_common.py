"""Model, samples and settings shared by the Keras Horovod worker and the test's reference."""

import numpy as np
import tf_keras

SETTINGS = {"b1": 3, "rho": 1.5, "b_max": 40, "budget": 200, "lr": 0.05, "momentum": 0.9}
# Three inner calls of 60 samples: batches 3, 4, 6, 10, 15, 22 each.
CATALYST = {"outer": 3, "inner_budget": 60, "theta": 0.5}


def make_model(hidden=4):
    """A two-layer float64 network with biases and ``hidden`` tanh units."""
    return tf_keras.Sequential([
        tf_keras.Input((5,), dtype="float64"),
        tf_keras.layers.Dense(hidden, activation="tanh", dtype="float64"),
        tf_keras.layers.Dense(2, dtype="float64"),
    ])


def rank_samples(rank, count=256):
    """Return rank ``rank``'s samples in the order it consumes them."""
    rng = np.random.default_rng(100 + rank)
    return rng.standard_normal((count, 5)), rng.standard_normal((count, 2))
