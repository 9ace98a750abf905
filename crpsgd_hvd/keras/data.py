"""Datasets that deliver a worker's shard in the micro-batch sizes that the CR-PSGD callback requests."""

import numpy as np
import tensorflow as tf

from crpsgd_hvd._validation import check_int

__all__ = ["planned_micro_batch_sizes", "round_dataset"]


def planned_micro_batch_sizes(callback):
    """Return the size of every ``fit`` step left in ``callback``'s plan, in order (all outer iterations).

    A fresh callback returns the whole plan. The list assumes that no round
    is skipped for a non-finite gradient, because a skipped round repeats
    its micro-batches.
    """
    return callback.planned_micro_batch_sizes()


class _ShardStream:
    """Sample indices of a shard read in passes (epochs), each pass a fresh permutation drawn from ``seed``.

    Position p of the stream is index p mod n of pass p // n, for a shard of n
    samples, so any position can be found again from the seed alone.
    """

    def __init__(self, num_samples, seed, shuffle):
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self._restart()

    def _restart(self):
        self._rng = np.random.default_rng(self.seed)
        self._epoch = -1
        self._order = None

    def _order_of(self, epoch):
        if epoch < self._epoch:
            self._restart()
        while self._epoch < epoch:
            self._order = (self._rng.permutation(self.num_samples) if self.shuffle
                           else np.arange(self.num_samples))
            self._epoch += 1
        return self._order

    def indices(self, position, size):
        """Return the ``size`` sample indices that follow stream position ``position``."""
        result = []
        while len(result) < size:
            epoch, offset = divmod(position, self.num_samples)
            take = min(size - len(result), self.num_samples - offset)
            result.extend(self._order_of(epoch)[offset:offset + take])
            position += take
        return np.asarray(result, dtype=np.int64)


def round_dataset(features, labels, callback, seed, *, shuffle=True):
    """Return a ``tf.data.Dataset`` of (features, labels) micro-batches in the sizes ``callback`` requests.

    Samples come from passes (epochs) over this worker's shard. With
    ``shuffle``, each epoch is a fresh permutation drawn from ``seed``, so give
    every rank its own seed. Without it, every epoch reads the shard in order.
    A micro-batch that crosses the end of an epoch continues in the next one.

    Each micro-batch is read while its ``fit`` step runs: its size and its
    position in the stream come from :meth:`CRPSGDCallback.current_micro_batch`.
    A round skipped for a non-finite gradient is therefore repeated with the
    next samples, and a callback restored from a checkpoint continues where
    the saved run stopped, provided ``seed`` and ``shuffle`` are the same.
    The dataset turns off tf.data's automatic prefetching, because a
    micro-batch read ahead of its step would get the previous step's size.
    Do not add ``prefetch`` or ``cache`` to it.

    Args:
        features, labels (numpy.ndarray): the shard, same length along axis 0.
        callback (CRPSGDCallback): the callback that drives the ``fit`` call.
        seed (int): seed of the shuffling, >= 0.
        shuffle (bool): permute each epoch. Default: True.

    Raises:
        ValueError: for an empty shard or features and labels of different
            lengths, or, after ``callback`` was loaded from a checkpoint, for a
            seed, shuffle or shard length other than the saved run's.
        RuntimeError: from ``fit`` (inside a TensorFlow error), when a
            micro-batch is read outside the step that uses it.
    """
    features, labels = np.asarray(features), np.asarray(labels)
    if len(features) == 0 or len(features) != len(labels):
        raise ValueError(f"features and labels must have the same non-zero length, got "
                         f"{len(features)} and {len(labels)}")
    seed = check_int("seed", seed, minimum=0)
    callback.use_data_source({"seed": seed, "shuffle": bool(shuffle), "length": len(features)})

    def micro_batches():
        stream = _ShardStream(len(features), seed, bool(shuffle))
        consumed_until = 0
        while True:
            size, position = callback.current_micro_batch()
            if position < consumed_until:
                raise RuntimeError(f"round_dataset was read ahead of fit: the micro-batch at position {position} "
                                   f"was already delivered; do not prefetch or cache the dataset")
            indices = stream.indices(position, size)
            consumed_until = position + size
            yield features[indices], labels[indices]

    signature = (tf.TensorSpec((None, *features.shape[1:]), tf.as_dtype(features.dtype)),
                 tf.TensorSpec((None, *labels.shape[1:]), tf.as_dtype(labels.dtype)))
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    return tf.data.Dataset.from_generator(micro_batches, output_signature=signature).with_options(options)
