"""Checks that every rank of a process set has the same configuration or progress."""

import horovod.torch as hvd
import torch

from crpsgd_hvd._consistency import check_same_values, decode_gathered_json, encode_json


def gather_json(value, process_set, name):
    """Return the list of every rank's JSON-ready ``value``, in rank order, on every rank.

    The values travel as UTF-8 JSON bytes in one variable-length allgather
    over ``process_set``, so ranks outside the set are not waited for.
    """
    payload = torch.frombuffer(bytearray(encode_json(value)), dtype=torch.uint8)
    lengths = hvd.allgather(torch.tensor([payload.numel()]), name=f"{name}.lengths", process_set=process_set)
    joined = hvd.allgather(payload, name=f"{name}.payload", process_set=process_set)
    return decode_gathered_json(lengths.tolist(), joined.numpy().tobytes())


def check_same_on_every_rank(value, process_set, name, subject):
    """Raise the same ValueError on every rank of ``process_set`` unless all ranks pass equal dicts.

    ``subject`` names the compared thing in the message ("configuration",
    "checkpoint progress"). The check costs two small allgathers.
    """
    check_same_values(gather_json(value, process_set, name), subject)
