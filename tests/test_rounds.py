"""Tests for crpsgd_hvd.rounds: the incremental round loop against the planned rounds."""

import itertools
import math

import pytest

from crpsgd_hvd.rounds import RoundState, micro_batch_sizes, next_round_batch, planned_batches
from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule

SCHEDULES = [
    GeometricSchedule(2, 1.1),
    GeometricSchedule(4, 1.5),
    GeometricSchedule(10, 1.1, 14),
    GeometricSchedule(32, 1.02, 512),
    GeometricSchedule(3, 2.0, 3),
    ConstantSchedule(7),
]
BUDGETS = [32, 33, 100, 1000, 10_000, 123_457]
SPLITS = list(itertools.product([1, 2, 7, 64, 100, 513], [1, 3, 32, 64, 1000]))


def run_rounds(schedule, budget, leftover):
    """Call next_round_batch from the first round until it returns None, and return the batches."""
    state, batches = RoundState(), []
    while (batch := next_round_batch(schedule, budget, state, leftover)) is not None:
        batches.append(batch)
        state = state.advance(batch)
    return batches


def loop_batches(schedule, budget):
    """Return the batches that the loop ``while B_1 + ... + B_t <= T`` of Algorithm 1 makes."""
    batches, spent = [], 0
    for t in itertools.count(1):
        batch = schedule.batch(t)
        if spent + batch > budget:
            return batches
        spent += batch
        batches.append(batch)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("leftover", ["drop", "final_round"])
def test_next_round_batch_matches_plan(schedule, budget, leftover):
    assert run_rounds(schedule, budget, leftover) == planned_batches(schedule, budget, leftover)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("budget", BUDGETS)
def test_planned_batches_drop(schedule, budget):
    assert planned_batches(schedule, budget, "drop") == loop_batches(schedule, budget)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("budget", BUDGETS)
def test_planned_batches_final_round(schedule, budget):
    full_rounds = loop_batches(schedule, budget)
    remaining = budget - sum(full_rounds)
    expected = full_rounds + [remaining] if remaining else full_rounds

    assert planned_batches(schedule, budget, "final_round") == expected


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("budget", BUDGETS)
def test_planned_batches_final_round_spends_budget(schedule, budget):
    assert sum(planned_batches(schedule, budget, "final_round")) == budget


def test_planned_batches_paper_final_round():
    # With B1 = 2, rho = 1.1 and T = 10^4, the last round takes the T - S(R(T)) samples left.
    schedule = GeometricSchedule(2, 1.1)
    full_rounds = loop_batches(schedule, 10_000)

    assert planned_batches(schedule, 10_000, "final_round")[-1] == 10_000 - sum(full_rounds)


def test_planned_batches_exact_budget_has_no_final_round():
    # 4 + 6 + 9 = 19, so nothing is left over and no extra round runs.
    assert planned_batches(GeometricSchedule(4, 1.5), 19, "final_round") == [4, 6, 9]


def test_planned_batches_budget_one_below_sum():
    assert planned_batches(GeometricSchedule(4, 1.5), 18, "final_round") == [4, 6, 8]


def test_planned_batches_budget_equals_b1():
    assert planned_batches(GeometricSchedule(4, 1.5), 4) == [4]


def test_planned_batches_integral_float_budget():
    assert planned_batches(GeometricSchedule(4, 1.5), 19.0) == [4, 6, 9]


def test_planned_batches_default_is_drop():
    assert planned_batches(GeometricSchedule(4, 1.5), 18) == [4, 6]


def test_planned_batches_rejects_budget_below_b1():
    with pytest.raises(ValueError, match=r"budget must be >= the first batch B1 = 4 .*got 3"):
        planned_batches(GeometricSchedule(4, 1.5), 3)


def test_planned_batches_rejects_non_integer_budget():
    with pytest.raises(ValueError, match=r"budget must be an integer, got 100\.5"):
        planned_batches(GeometricSchedule(4, 1.5), 100.5)


def test_planned_batches_rejects_zero_budget():
    with pytest.raises(ValueError, match=r"budget must be >= 1, got 0"):
        planned_batches(GeometricSchedule(4, 1.5), 0)


def test_planned_batches_rejects_bad_leftover():
    with pytest.raises(ValueError, match=r"leftover must be one of 'drop', 'final_round', got 'keep'"):
        planned_batches(GeometricSchedule(4, 1.5), 100, "keep")


def test_next_round_batch_first_round():
    assert next_round_batch(GeometricSchedule(4, 1.5), 100, RoundState()) == 4


def test_next_round_batch_after_budget_spent():
    assert next_round_batch(GeometricSchedule(4, 1.5), 19, RoundState(3, 19), "final_round") is None


def test_next_round_batch_rejects_bad_leftover():
    # planned_batches rejects this value, so a loop built on next_round_batch must too.
    with pytest.raises(ValueError, match=r"leftover must be one of 'drop', 'final_round', got 'final-round'"):
        next_round_batch(GeometricSchedule(4, 1.5), 18, RoundState(2, 10), "final-round")


def test_next_round_batch_float_budget_int():
    # Budgets written as 1e4 are accepted elsewhere, but the last batch must still be an int.
    batch = next_round_batch(GeometricSchedule(4, 1.5), 18.0, RoundState(2, 10), "final_round")

    assert type(batch) is int


def test_round_state_starts_empty():
    assert RoundState() == RoundState(rounds=0, samples=0)


def test_round_state_advance():
    assert RoundState().advance(4).advance(6) == RoundState(rounds=2, samples=10)


def test_round_state_dict_round_trip():
    state = RoundState(rounds=5, samples=41)

    assert RoundState.from_state_dict(state.state_dict()) == state


def test_round_state_dict_keys():
    assert RoundState(5, 41).state_dict() == {"rounds": 5, "samples": 41}


def test_round_state_rejects_negative_rounds():
    with pytest.raises(ValueError, match=r"state\['rounds'\] must be >= 0, got -1"):
        RoundState.from_state_dict({"rounds": -1, "samples": 0})


def test_round_state_rejects_non_integer_samples():
    with pytest.raises(ValueError, match=r"state\['samples'\] must be an integer, got 1\.5"):
        RoundState.from_state_dict({"rounds": 1, "samples": 1.5})


@pytest.mark.parametrize("batch_size, micro, expected", [
    (10, 4, (4, 4, 2)),
    (12, 4, (4, 4, 4)),
    (13, 5, (5, 5, 3)),
    (1, 1, (1,)),
    (5, 5, (5,)),
    (3, 5, (3,)),  # a micro-batch larger than the batch gives one short micro-batch
    (7, 1, (1,) * 7),
])
def test_micro_batch_sizes(batch_size, micro, expected):
    assert micro_batch_sizes(batch_size, micro) == expected


@pytest.mark.parametrize("batch_size, micro", SPLITS)
def test_micro_batch_sizes_sum(batch_size, micro):
    assert sum(micro_batch_sizes(batch_size, micro)) == batch_size


@pytest.mark.parametrize("batch_size, micro", SPLITS)
def test_micro_batch_sizes_count(batch_size, micro):
    assert len(micro_batch_sizes(batch_size, micro)) == math.ceil(batch_size / micro)


@pytest.mark.parametrize("batch_size, micro", SPLITS)
def test_micro_batch_sizes_only_last_short(batch_size, micro):
    sizes = micro_batch_sizes(batch_size, micro)

    assert all(size == micro for size in sizes[:-1])
    assert 1 <= sizes[-1] <= micro


def test_micro_batch_sizes_integral_floats():
    assert micro_batch_sizes(10.0, 4.0) == (4, 4, 2)


def test_micro_batch_sizes_rejects_zero_micro():
    with pytest.raises(ValueError, match=r"micro_batch_size must be >= 1, got 0"):
        micro_batch_sizes(10, 0)


def test_micro_batch_sizes_rejects_zero_batch():
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        micro_batch_sizes(0, 4)
