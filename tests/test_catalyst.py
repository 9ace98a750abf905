"""Tests for crpsgd_hvd.catalyst and the Catalyst plan: K, T_in and round counts in both modes."""

import math
import warnings
from fractions import Fraction

import pytest

from crpsgd_hvd.catalyst import CatalystLoop, CatalystState, next_outer_iteration
from crpsgd_hvd.plan import CommunicationSavingWarning, make_catalyst_plan, make_plan
from crpsgd_hvd.rounds import RoundState, next_round_batch
from crpsgd_hvd.schedules import GeometricSchedule


@pytest.mark.parametrize("budget, workers, outer, inner", [
    (200, 2, 20, 10),          # sqrt(400) = 20, sqrt(100) = 10
    (1000, 4, 63, 15),         # sqrt(4000) = 63.2, sqrt(250) = 15.8
    (10_000, 10, 316, 31),     # sqrt(1e5) = 316.2, sqrt(1000) = 31.6
    (8, 2, 4, 2),              # perfect squares: sqrt(16) = 4, sqrt(4) = 2
    (3, 3, 3, 1),              # T = N: one gradient per inner call
])
def test_theorem_loop_sizes(budget, workers, outer, inner):
    loop = CatalystLoop.theorem(budget, workers)

    assert loop.mode == "theorem"
    assert loop.num_outer == outer
    assert loop.inner_budget == inner
    assert loop.total_budget <= budget


def test_epoch_loop_sizes():
    loop = CatalystLoop.per_epoch(shard_size=718, num_outer=10)

    assert (loop.mode, loop.num_outer, loop.inner_budget, loop.total_budget) == ("epoch", 10, 718, 7180)


@pytest.mark.parametrize("build, message", [
    (lambda: CatalystLoop.theorem(1, 2), "budget must be >= num_workers = 2 .* got 1"),
    (lambda: CatalystLoop.theorem(0, 1), "budget must be >= 1, got 0"),
    (lambda: CatalystLoop.theorem(10, 0), "num_workers must be >= 1, got 0"),
    (lambda: CatalystLoop.per_epoch(0, 3), "shard_size must be >= 1, got 0"),
    (lambda: CatalystLoop.per_epoch(100, 0), "num_outer must be >= 1, got 0"),
    (lambda: CatalystLoop("steps", 1, 1), "mode must be one of 'theorem', 'epoch', got 'steps'"),
])
def test_loop_rejects_invalid_values(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_outer_iterations_count_to_k():
    loop, state, seen = CatalystLoop.per_epoch(50, 3), CatalystState(), []
    while (k := next_outer_iteration(loop, state)) is not None:
        seen.append(k)
        state = state.advance()

    assert seen == [1, 2, 3]
    assert state.outer == 3


def test_state_round_trip():
    state = CatalystState(outer=7)

    assert CatalystState.from_state_dict(state.state_dict()) == state
    with pytest.raises(ValueError, match=r"state\['outer'\] must be >= 0, got -1"):
        CatalystState.from_state_dict({"outer": -1})


def inner_call_batches(b1, rho, b_max, budget, leftover):
    """Return the batches of one Algorithm 1 call, in exact arithmetic and written out as the loop."""
    batches, t = [], 1
    while True:
        batch = math.floor(Fraction(repr(rho)) ** (t - 1) * b1)
        batch = batch if b_max is None else min(batch, b_max)
        if sum(batches) + batch > budget:
            break
        batches.append(batch)
        t += 1
    if leftover == "final_round" and budget > sum(batches):
        batches.append(budget - sum(batches))
    return batches


MODES = [
    (CatalystLoop.theorem(1000, 4), 2, 1.5, None, "drop"),
    (CatalystLoop.theorem(10_000, 10), 2, 1.1, None, "final_round"),
    (CatalystLoop.per_epoch(718, 5), 8, 1.2, 64, "final_round"),
    (CatalystLoop.per_epoch(50_000, 3), 32, 1.02, 512, "drop"),
]


@pytest.mark.parametrize("loop, b1, rho, b_max, leftover", MODES,
                         ids=[f"{m[0].mode}-T_in={m[0].inner_budget}-{m[4]}" for m in MODES])
def test_plan_matches_outer_loop(loop, b1, rho, b_max, leftover):
    schedule = GeometricSchedule(b1, rho, b_max)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CommunicationSavingWarning)
        plan = make_catalyst_plan(schedule, loop, num_workers=4, num_params=10, leftover=leftover)

    # Drive the outer loop with the round bookkeeping, restarting t = 1 at every inner call.
    expected = inner_call_batches(b1, rho, b_max, loop.inner_budget, leftover)
    state, total_rounds, total_samples = CatalystState(), 0, 0
    while (k := next_outer_iteration(loop, state)) is not None:
        rounds = RoundState()
        while (batch := next_round_batch(schedule, loop.inner_budget, rounds, leftover)) is not None:
            rounds = rounds.advance(batch)
        assert rounds.rounds == len(expected), f"outer iteration {k}"
        assert rounds.rounds == plan.rounds_per_outer, f"outer iteration {k}"
        total_rounds += rounds.rounds
        total_samples += rounds.samples
        assert plan.rounds_through(k) == total_rounds
        state = state.advance()

    assert state.outer == loop.num_outer
    assert plan.num_rounds == total_rounds == loop.num_outer * len(expected)
    assert plan.samples_per_worker == total_samples == loop.num_outer * sum(expected)
    # N = 4, 10 float32 elements: a ring sends 2 * 3 / 4 * 40 = 60 bytes per round.
    assert plan.bytes_per_worker == 60 * total_rounds
    assert plan.psgd_rounds == -(-total_samples // b1)


def test_plan_rounds_through_range():
    plan = make_catalyst_plan(GeometricSchedule(2, 2.0), CatalystLoop.per_epoch(30, 4))

    assert plan.rounds_through(0) == 0
    assert plan.rounds_through(4) == 4 * 4   # batches 2, 4, 8, 16 sum to 30
    with pytest.raises(ValueError, match="k must be <= the number of outer iterations K = 4, got 5"):
        plan.rounds_through(5)


def test_plan_rejects_inner_budget_below_b1():
    with pytest.raises(ValueError, match="inner budget T_in = 10 .* must be >= the first batch B1 = 32"):
        make_catalyst_plan(GeometricSchedule(32, 1.02), CatalystLoop.theorem(200, 2))


def test_plan_warns_for_inner_call_without_saving():
    with pytest.warns(CommunicationSavingWarning, match="in every inner call"):
        make_catalyst_plan(GeometricSchedule(2, 1.01), CatalystLoop.theorem(200, 2))


def test_plan_serialises_loop_and_totals():
    loop = CatalystLoop.per_epoch(30, 4)
    plan = make_catalyst_plan(GeometricSchedule(2, 2.0), loop, num_workers=2, num_params=5)
    data = plan.to_dict()

    assert data["catalyst"] == {"mode": "epoch", "num_outer": 4, "inner_budget": 30}
    assert data["totals"]["rounds"] == 16
    assert data["totals"]["rounds_per_outer"] == 4
    assert data["totals"]["samples_per_worker"] == 120
    assert data["inner"] == make_plan(GeometricSchedule(2, 2.0), 30, 2, 5).to_dict()
    assert "4 outer iterations x 4 rounds = 16 rounds" in plan.format_table()
