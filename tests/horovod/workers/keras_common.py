"""Model, samples and settings shared by the Keras Horovod worker and the test's reference."""

import numpy as np
import tensorflow as tf
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


def reference_rounds(initial, batches, num_workers=2, skipped_round=None):
    """Yield the weights after each round of full-batch SGD with momentum on all ranks' in-order samples.

    The samples of round ``skipped_round``'s first attempt are discarded, and
    the round is repeated with the samples that follow them.
    """
    model = make_model()
    model.set_weights([np.array(w) for w in initial])
    optimizer = tf_keras.optimizers.SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"])
    samples = [rank_samples(rank) for rank in range(num_workers)]
    position = 0
    for t, batch in enumerate(batches, start=1):
        if t == skipped_round:
            position += batch
        grads = global_batch_gradients(model, samples, position, batch)
        position += batch
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        yield model.get_weights()


def global_batch_gradients(model, samples, position, batch):
    """Return the gradients of the mean squared error over samples [position, position + batch) of every rank."""
    inputs = np.concatenate([x[position:position + batch] for x, _ in samples])
    targets = np.concatenate([y[position:position + batch] for _, y in samples])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(inputs) - targets))
    return tape.gradient(loss, model.trainable_variables)
