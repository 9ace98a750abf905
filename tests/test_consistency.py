"""Cross-rank comparison of gathered settings, without any framework."""

import pytest

from crpsgd_hvd._consistency import check_same_values, decode_gathered_json, describe_differences, encode_json


def test_equal_values_have_no_differences():
    values = [{"budget": 200, "schedule": {"kind": "GeometricSchedule", "b1": 3}}] * 3

    assert describe_differences(values) == []
    check_same_values(values, "configuration")


def test_differences_list_values_with_ranks():
    values = [{"budget": 200, "leftover": "drop"}, {"budget": 120, "leftover": "drop"},
              {"budget": 200, "leftover": "drop"}]

    assert describe_differences(values) == ["budget: 200 on ranks [0, 2], 120 on ranks [1]"]


def test_missing_key_counts_as_null():
    values = [{"theta": 0.5}, {}]

    assert describe_differences(values) == ["theta: 0.5 on ranks [0], null on ranks [1]"]


def test_nested_values_compare_whole():
    values = [{"shapes": [[5, 4], [4]]}, {"shapes": [[5, 3], [3]]}]

    assert describe_differences(values) == ["shapes: [[5, 4], [4]] on ranks [0], [[5, 3], [3]] on ranks [1]"]


def test_check_same_values_names_every_field():
    values = [{"budget": 200, "micro_batch_size": 4}, {"budget": 120, "micro_batch_size": 5}]

    with pytest.raises(ValueError) as error:
        check_same_values(values, "configuration")
    assert str(error.value) == (
        "the configuration must be the same on every rank, but it differs: budget: 200 on ranks [0], "
        "120 on ranks [1]; micro_batch_size: 4 on ranks [0], 5 on ranks [1]. Pass the same configuration "
        "to every rank")


def test_gathered_payloads_decode_per_rank():
    values = [{"budget": 200, "name": "réseau"}, {"budget": 120}, {"shapes": [[3, 4], [4]]}]
    payloads = [encode_json(value) for value in values]

    decoded = decode_gathered_json([len(p) for p in payloads], b"".join(payloads))

    assert decoded == values
