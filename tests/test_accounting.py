"""Tests for crpsgd_hvd.accounting: the ring-allreduce byte model and the round counters."""

import pytest

from crpsgd_hvd.accounting import CommunicationAccounting, ring_allreduce_bytes


@pytest.mark.parametrize("payload, workers, expected", [
    (1000, 1, 0),  # one worker has no one to send to
    (1000, 2, 1000),
    (1000, 4, 1500),
    (1000, 8, 1750),
    (1000, 3, 1333),  # 1333.33 rounds down
    (2, 3, 3),  # 2.67 rounds up
    (0, 8, 0),
    (4 * 10**9, 16, 7_500_000_000),
])
def test_ring_allreduce_bytes(payload, workers, expected):
    assert ring_allreduce_bytes(payload, workers) == expected


def test_ring_allreduce_bytes_integral_floats():
    assert ring_allreduce_bytes(1e3, 4.0) == 1500


def test_ring_allreduce_bytes_rejects_negative_payload():
    with pytest.raises(ValueError, match=r"payload_bytes must be >= 0, got -1"):
        ring_allreduce_bytes(-1, 4)


def test_ring_allreduce_bytes_rejects_zero_workers():
    with pytest.raises(ValueError, match=r"num_workers must be >= 1, got 0"):
        ring_allreduce_bytes(1000, 0)


def test_ring_allreduce_bytes_rejects_non_integer_payload():
    with pytest.raises(ValueError, match=r"payload_bytes must be an integer, got 10\.5"):
        ring_allreduce_bytes(10.5, 4)


def test_accounting_starts_at_zero():
    assert CommunicationAccounting(num_workers=4).state_dict() == {
        "num_workers": 4, "rounds": 0, "allreduce_calls": 0, "samples": 0,
        "payload_bytes": 0, "bytes_sent": 0}


@pytest.fixture
def three_rounds():
    """Return the counters of four workers after three rounds of 2, 2 and 3 samples.

    The last round's gradients go out in two allreduce calls.
    """
    accounting = CommunicationAccounting(num_workers=4)
    for samples, payloads in [(2, [1000]), (2, [1000]), (3, [600, 400])]:
        for payload in payloads:
            accounting.record_allreduce(payload)
        accounting.record_round(samples)
    return accounting


def test_record_round_counts_rounds(three_rounds):
    assert three_rounds.rounds == 3


def test_record_round_counts_samples(three_rounds):
    assert three_rounds.samples == 7


def test_record_allreduce_counts_calls(three_rounds):
    assert three_rounds.allreduce_calls == 4


def test_record_allreduce_counts_payload(three_rounds):
    assert three_rounds.payload_bytes == 3000


def test_record_allreduce_counts_bytes_sent(three_rounds):
    # 3/2 of each payload over 4 workers: 1500 + 1500 + 900 + 600.
    assert three_rounds.bytes_sent == 4500


def test_total_samples(three_rounds):
    assert three_rounds.total_samples == 28


def test_total_bytes_sent(three_rounds):
    assert three_rounds.total_bytes_sent == 18_000


def test_single_worker_sends_nothing():
    accounting = CommunicationAccounting(num_workers=1)
    accounting.record_allreduce(1000)

    assert accounting.bytes_sent == 0


def test_state_dict_round_trip(three_rounds):
    restored = CommunicationAccounting()
    restored.load_state_dict(three_rounds.state_dict())

    assert restored == three_rounds


def test_state_dict_is_a_copy(three_rounds):
    state = three_rounds.state_dict()
    three_rounds.record_round(5)

    assert state["rounds"] == 3


def test_load_state_dict_continues_counting(three_rounds):
    restored = CommunicationAccounting()
    restored.load_state_dict(three_rounds.state_dict())
    restored.record_allreduce(1000)

    assert restored.bytes_sent == 6000


def test_load_state_dict_rejects_negative():
    state = CommunicationAccounting(num_workers=2).state_dict() | {"rounds": -1}

    with pytest.raises(ValueError, match=r"state\['rounds'\] must be >= 0, got -1"):
        CommunicationAccounting().load_state_dict(state)


def test_record_allreduce_rejected_unchanged():
    # A payload that the byte model rejects must not count as a call either.
    accounting = CommunicationAccounting(num_workers=4)

    with pytest.raises(ValueError, match=r"payload_bytes must be >= 0, got -8"):
        accounting.record_allreduce(-8)
    assert accounting == CommunicationAccounting(num_workers=4)
