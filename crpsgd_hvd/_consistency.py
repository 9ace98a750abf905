"""Comparison of per-rank settings or progress, shared by the adapters.

Each adapter gathers one JSON-ready dict per rank with its framework's
collectives. The functions here compare the gathered dicts and build the
error that every rank raises, so both adapters word it the same way.
"""

import json


def encode_json(value):
    """Return ``value`` as UTF-8 JSON bytes with sorted keys, ready for a variable-length allgather.

    JSON rather than pickle, so that no rank runs code received from another.
    """
    return json.dumps(value, sort_keys=True).encode()


def decode_gathered_json(lengths, joined):
    """Split the bytes ``joined`` of an allgather into one decoded JSON value per rank, by ``lengths``."""
    values, start = [], 0
    for length in lengths:
        values.append(json.loads(joined[start:start + length].decode()))
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


def check_same_values(values, subject):
    """Raise ValueError listing each differing key unless all of ``values`` (one dict per rank) are equal.

    ``subject`` names the compared thing in the message ("configuration",
    "checkpoint progress"). Every rank that passes the same gathered list
    raises the same message.
    """
    lines = describe_differences(values)
    if lines:
        raise ValueError(f"the {subject} must be the same on every rank, but it differs: " + "; ".join(lines)
                         + f". Pass the same {subject} to every rank")
