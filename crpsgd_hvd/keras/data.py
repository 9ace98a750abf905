"""Datasets that deliver a worker's shard in the micro-batch sizes of the CR-PSGD plan."""

import numpy as np
import tensorflow as tf

from crpsgd_hvd._validation import check_int
from crpsgd_hvd.rounds import micro_batch_sizes

__all__ = ["planned_micro_batch_sizes", "round_dataset"]


def planned_micro_batch_sizes(callback):
    """Return the size of every ``fit`` step of ``callback``'s plan, in order (all outer iterations)."""
    inner = [size for row in callback.plan.rounds
             for size in micro_batch_sizes(row.batch_per_worker, callback.micro_batch_size)]
    return inner * (callback.steps // len(inner))


def round_dataset(features, labels, callback, seed):
    """Return a ``tf.data.Dataset`` of (features, labels) micro-batches in the plan's sizes.

    Samples come from shuffled passes (epochs) over this worker's shard: each
    epoch is a fresh permutation drawn from ``seed`` (give every rank its own
    seed), and a micro-batch that crosses the end of an epoch continues in the
    next one.

    Args:
        features, labels (numpy.ndarray): the shard, same length along axis 0.
        callback (CRPSGDCallback): gives the plan and the micro-batch size.
        seed (int): seed of the shuffling, >= 0.
    """
    features, labels = np.asarray(features), np.asarray(labels)
    if len(features) == 0 or len(features) != len(labels):
        raise ValueError(f"features and labels must have the same non-zero length, got "
                         f"{len(features)} and {len(labels)}")
    seed = check_int("seed", seed, minimum=0)
    sizes = planned_micro_batch_sizes(callback)

    def micro_batches():
        rng = np.random.default_rng(seed)
        order, position = rng.permutation(len(features)), 0
        for size in sizes:
            indices = []
            while len(indices) < size:
                if position == len(order):
                    order, position = rng.permutation(len(features)), 0
                take = min(size - len(indices), len(order) - position)
                indices.extend(order[position:position + take])
                position += take
            yield features[indices], labels[indices]

    signature = (tf.TensorSpec((None, *features.shape[1:]), tf.as_dtype(features.dtype)),
                 tf.TensorSpec((None, *labels.shape[1:]), tf.as_dtype(labels.dtype)))
    return tf.data.Dataset.from_generator(micro_batches, output_signature=signature)
