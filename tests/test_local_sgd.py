"""Tests for crpsgd_hvd.local_sgd: the averaging plan against a step loop, and the choice of H."""

import json
import math
import warnings
from fractions import Fraction

import pytest

from crpsgd_hvd.local_sgd import (averaging_steps, make_local_sgd_plan, select_interval,
                                  sweep_intervals)


def loop_local_sgd(batch_size, budget, interval):
    """Walk local SGD step by step; return (steps, samples, steps after which an average happens)."""
    steps, samples, since_average, averages = 0, 0, 0, []
    while samples + batch_size <= budget:
        steps += 1
        samples += batch_size
        since_average += 1
        if since_average == interval:
            averages.append(steps)
            since_average = 0
    if since_average:
        averages.append(steps)
    return steps, samples, averages


PLAN_CASES = [(2, 10_000, h) for h in (1, 2, 3, 7, 16, 64, 4999, 5000)] + [
    (3, 100, 1), (3, 100, 5), (3, 101, 33), (5, 5, 1), (1, 17, 4), (7, 1000, 13)]


@pytest.mark.parametrize("batch_size, budget, interval", PLAN_CASES)
def test_plan_matches_step_loop(batch_size, budget, interval):
    plan = make_local_sgd_plan(batch_size, budget, interval)
    steps, samples, averages = loop_local_sgd(batch_size, budget, interval)

    assert plan.num_steps == steps
    assert plan.samples_per_worker == samples
    assert plan.num_rounds == len(averages)
    assert plan.num_rounds == math.ceil(Fraction(steps, interval))
    assert averaging_steps(plan.num_steps, interval) == tuple(averages)
    assert [step for step in range(1, steps + 1) if plan.averages_after(step)] == averages


@pytest.mark.parametrize("batch_size, budget, interval", [(2, 100, 3), (1, 17, 4), (3, 100, 30)])
def test_round_of_step_counts_averages_before(batch_size, budget, interval):
    plan = make_local_sgd_plan(batch_size, budget, interval)
    _, _, averages = loop_local_sgd(batch_size, budget, interval)

    for step in range(1, plan.num_steps + 1):
        # A step belongs to the round whose average is the first one at or after it.
        expected = 1 + sum(1 for average in averages if average < step)
        assert plan.round_of_step(step) == expected, step


def test_plan_bytes_follow_ring_model():
    plan = make_local_sgd_plan(2, 10_000, 16, num_workers=10, num_params=500, bytes_per_param=4)

    # 5000 steps, ceil(5000 / 16) = 313 rounds; each sends 2 * 9 / 10 * 2000 = 3600 bytes.
    assert plan.num_rounds == 313
    assert plan.round_bytes_per_worker == 3600
    assert plan.bytes_per_worker == 313 * 3600
    assert plan.total_bytes == 313 * 3600 * 10
    assert json.loads(json.dumps(plan.to_dict()))["rounds"] == 313


def test_averaging_steps_edges():
    assert averaging_steps(0, 3) == ()
    assert averaging_steps(1, 3) == (1,)
    assert averaging_steps(6, 3) == (3, 6)
    assert averaging_steps(6, 1) == (1, 2, 3, 4, 5, 6)


def test_interval_beyond_steps_warns():
    with pytest.warns(UserWarning, match=r"interval H = 11 exceeds the 10 local steps"):
        plan = make_local_sgd_plan(2, 20, 11)
    assert plan.num_rounds == 1


def test_interval_equal_to_steps_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_local_sgd_plan(2, 20, 10).num_rounds == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0, "budget": 10, "interval": 1}, r"batch_size must be >= 1, got 0"),
    ({"batch_size": 4, "budget": 3, "interval": 1}, r"budget must be >= batch_size = 4 .* got 3"),
    ({"batch_size": 2, "budget": 10, "interval": 0}, r"interval must be >= 1, got 0"),
    ({"batch_size": 2, "budget": 10, "interval": 2.5}, r"interval must be an integer, got 2.5"),
    ({"batch_size": 2, "budget": 10, "interval": 1, "num_workers": 0}, r"num_workers must be >= 1, got 0"),
])
def test_plan_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_local_sgd_plan(**kwargs)


def test_round_of_step_rejects_steps_outside_plan():
    plan = make_local_sgd_plan(2, 10, 2)
    with pytest.raises(ValueError, match=r"step must be <= the 5 local steps of the plan, got 6"):
        plan.round_of_step(6)
    with pytest.raises(ValueError, match=r"step must be >= 1, got 0"):
        plan.round_of_step(0)


def test_select_interval_takes_largest_within_tolerance():
    # f_ref = 0.5, rtol = 2 %: the limit is 0.51.
    objectives = {1: 0.50, 2: 0.505, 4: 0.5099, 8: 0.52, 16: 0.9}

    assert select_interval(objectives, 0.5, 0.02) == 4
    assert select_interval(objectives, 0.5, 0.0) == 1
    assert select_interval(objectives, 0.5, 1.0) == 16


def test_select_interval_skips_failures_below_choice():
    # H = 4 fails but H = 8 passes: the largest passing H is returned.
    assert select_interval({1: 1.0, 4: 1.2, 8: 1.0}, 1.0, 0.01) == 8


def test_select_interval_none_when_all_fail():
    assert select_interval({2: 0.7, 4: math.nan}, 0.5, 0.1) is None


def test_select_interval_negative_reference_uses_magnitude():
    # f_ref = -2, rtol = 10 %: the limit is -2 + 0.2 = -1.8.
    assert select_interval({1: -1.9, 2: -1.79}, -2.0, 0.1) == 1


@pytest.mark.parametrize("objectives, reference, rtol, message", [
    ({}, 1.0, 0.1, r"objectives must contain at least one interval"),
    ({0: 1.0}, 1.0, 0.1, r"interval must be >= 1, got 0"),
    ({1: 1.0}, math.inf, 0.1, r"reference must be finite, got inf"),
    ({1: 1.0}, 1.0, -0.1, r"rtol must be >= 0.0, got -0.1"),
])
def test_select_interval_rejects_invalid_arguments(objectives, reference, rtol, message):
    with pytest.raises(ValueError, match=message):
        select_interval(objectives, reference, rtol)


def test_sweep_runs_each_interval_once_in_order():
    calls = []

    def train(interval):
        calls.append(interval)
        # A made-up loss that grows with H: 1 + H / 100, and R = ceil(100 / H).
        return 1.0 + interval / 100, -(-100 // interval)

    sweep = sweep_intervals(train, [8, 1, 4, 4, 32], reference=1.0, rtol=0.05)

    assert calls == [1, 4, 8, 32]
    assert sweep.chosen == 4
    assert [row[0] for row in sweep.rows] == [1, 4, 8, 32]
    assert [row[2] for row in sweep.rows] == [100, 25, 13, 4]
    table = sweep.format_table()
    assert "<- chosen" in table.splitlines()[3]
    assert json.loads(sweep.to_json())["chosen_interval"] == 4


def test_sweep_rejects_empty_intervals():
    with pytest.raises(ValueError, match=r"intervals must contain at least one H >= 1"):
        sweep_intervals(lambda h: (0.0, 1), [], 1.0, 0.1)
    with pytest.raises(ValueError, match=r"intervals\[1\] must be >= 1, got 0"):
        sweep_intervals(lambda h: (0.0, 1), [2, 0], 1.0, 0.1)
