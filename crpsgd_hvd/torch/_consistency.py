"""Checks that every rank of a process set has the same configuration or progress."""

import json

import horovod.torch as hvd
import torch


def gather_json(value, process_set, name):
    """Return the list of every rank's JSON-ready ``value``, in rank order, on every rank.

    The values travel as UTF-8 JSON bytes in one variable-length allgather
    over ``process_set``, so ranks outside the set are not waited for.
    """
    payload = torch.tensor(list(json.dumps(value, sort_keys=True).encode()), dtype=torch.uint8)
    lengths = hvd.allgather(torch.tensor([payload.numel()]), name=f"{name}.lengths", process_set=process_set)
    joined = hvd.allgather(payload, name=f"{name}.payload", process_set=process_set)

    values, start = [], 0
    for length in lengths.tolist():
        values.append(json.loads(bytes(joined[start:start + length].tolist()).decode()))
        start += length
    return values


def describe_differences(values):
    """Return one line per key whose value differs across ranks, or an empty list.

    ``values`` contains one dict per rank. Each line shows every distinct value
    with the ranks that hold it, e.g. ``budget: 100 on ranks [0], 120 on ranks [1]``.
    """
    lines = []
    for key in sorted({key for value in values for key in value}):
        holders = {}
        for rank, value in enumerate(values):
            holders.setdefault(json.dumps(value.get(key), sort_keys=True), []).append(rank)
        if len(holders) > 1:
            parts = [f"{shown} on ranks {ranks}" for shown, ranks in holders.items()]
            lines.append(f"{key}: " + ", ".join(parts))
    return lines


def check_same_on_every_rank(value, process_set, name, subject):
    """Raise the same ValueError on every rank of ``process_set`` unless all ranks pass equal dicts.

    ``subject`` names the compared thing in the message ("configuration",
    "checkpoint progress"). The check costs two small allgathers.
    """
    lines = describe_differences(gather_json(value, process_set, name))
    if lines:
        raise ValueError(f"the {subject} must be the same on every rank, but it differs: " + "; ".join(lines)
                         + f". Pass the same {subject} to every rank")
