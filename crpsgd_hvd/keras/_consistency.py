"""Cross-rank checks for the Keras adapter, over Horovod's TensorFlow collectives."""

import horovod.tensorflow as hvd_tf
import numpy as np
import tensorflow as tf

from crpsgd_hvd._consistency import check_same_values, decode_gathered_json, encode_json


def gather_json(value, process_set, name):
    """Return the list of every rank's JSON-ready ``value``, in rank order, on every rank.

    The values travel as UTF-8 JSON bytes in one variable-length allgather
    over ``process_set``, after an allgather of their lengths.
    """
    payload = np.frombuffer(encode_json(value), dtype=np.uint8)
    lengths = hvd_tf.allgather(tf.constant([payload.size], dtype=tf.int64), name=f"{name}.lengths",
                               process_set=process_set)
    joined = hvd_tf.allgather(tf.constant(payload, dtype=tf.uint8), name=f"{name}.payload",
                              process_set=process_set)
    return decode_gathered_json(lengths.numpy().tolist(), joined.numpy().tobytes())


def check_same_on_every_rank(value, process_set, name, subject):
    """Raise the same ValueError on every rank of ``process_set`` unless all ranks pass equal dicts.

    ``subject`` names the compared thing in the message ("configuration",
    "checkpoint progress"). The check costs two small allgathers.
    """
    check_same_values(gather_json(value, process_set, name), subject)
