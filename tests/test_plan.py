"""Tests for crpsgd_hvd.plan: rows, totals, serialisation and the no-saving warning."""

import itertools
import json
import math
import warnings
from fractions import Fraction

import pytest

from crpsgd_hvd.plan import CommunicationSavingWarning, make_plan
from crpsgd_hvd.rounds import planned_batches
from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule


def paper_loop():
    """Return the batches of Algorithm 1 with B1 = 2, rho = 11/10, T = 10^4, in exact arithmetic."""
    batches, growth = [], Fraction(1)
    batch = math.floor(growth * 2)
    while sum(batches) + batch <= 10_000:
        batches.append(batch)
        growth *= Fraction(11, 10)
        batch = math.floor(growth * 2)
    return batches


def ring_bytes(num_params, bytes_per_param, num_workers):
    """Return 2 (N - 1) / N * payload, rounded to the nearest byte (ties to even, as round() does)."""
    return round(Fraction(2 * (num_workers - 1), num_workers) * num_params * bytes_per_param)


CASES = [
    (GeometricSchedule(2, 1.1), 10_000, 10, 500, 4, "drop"),
    (GeometricSchedule(2, 1.1), 10_000, 10, 500, 4, "final_round"),
    (GeometricSchedule(32, 1.02, 512), 50_000, 8, 272_474, 4, "drop"),
    (GeometricSchedule(4, 1.5), 1000, 3, 1001, 2, "final_round"),
    (GeometricSchedule(4, 2.0, 20), 100, 1, 1000, 4, "drop"),
    (ConstantSchedule(2), 101, 4, 7, 4, "final_round"),
]


def case_id(case):
    schedule, budget, workers, params, width, leftover = case
    return f"{schedule!r}-T={budget}-N={workers}-P={params}x{width}-{leftover}"


@pytest.fixture(params=CASES, ids=[case_id(case) for case in CASES])
def case(request):
    schedule, budget, workers, params, width, leftover = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CommunicationSavingWarning)
        plan = make_plan(schedule, budget, num_workers=workers, num_params=params,
                         bytes_per_param=width, leftover=leftover)
    return plan, planned_batches(schedule, budget, leftover)


def test_rows_round_numbers(case):
    plan, batches = case

    assert [row.round for row in plan.rounds] == list(range(1, len(batches) + 1))


def test_rows_batch_per_worker(case):
    plan, batches = case

    assert [row.batch_per_worker for row in plan.rounds] == batches


def test_rows_global_batch(case):
    plan, batches = case

    assert [row.global_batch for row in plan.rounds] == [plan.num_workers * batch for batch in batches]


def test_rows_cumulative_samples(case):
    plan, batches = case

    assert [row.samples_per_worker for row in plan.rounds] == list(itertools.accumulate(batches))


def test_rows_bytes_per_worker(case):
    plan, batches = case
    expected = ring_bytes(plan.num_params, plan.bytes_per_param, plan.num_workers)

    assert [row.bytes_per_worker for row in plan.rounds] == [expected] * len(batches)


def test_totals_rounds(case):
    plan, batches = case

    assert plan.num_rounds == len(batches)


def test_totals_samples(case):
    plan, batches = case

    assert plan.samples_per_worker == sum(batches)


def test_totals_bytes_per_worker(case):
    plan, batches = case

    assert plan.bytes_per_worker == len(batches) * ring_bytes(plan.num_params, plan.bytes_per_param,
                                                              plan.num_workers)


def test_totals_total_bytes(case):
    plan, _ = case

    assert plan.total_bytes == plan.num_workers * plan.bytes_per_worker


def test_totals_psgd_rounds(case):
    plan, batches = case

    assert plan.psgd_rounds == math.ceil(Fraction(sum(batches), plan.schedule.first_batch))


def test_totals_round_reduction(case):
    plan, batches = case

    assert plan.round_reduction == pytest.approx(plan.psgd_rounds / len(batches))


def test_to_dict_totals(case):
    plan, batches = case

    assert plan.to_dict()["totals"] == {
        "rounds": len(batches),
        "samples_per_worker": sum(batches),
        "samples_unused_per_worker": plan.budget - sum(batches),
        "bytes_per_worker": plan.bytes_per_worker,
        "total_bytes": plan.total_bytes,
        "psgd_rounds_at_b1": plan.psgd_rounds,
        "round_reduction": plan.round_reduction,
    }


def test_to_dict_rows(case):
    plan, batches = case
    rows = plan.to_dict()["rounds"]

    assert [row["batch_per_worker"] for row in rows] == batches


def test_to_dict_parameters(case):
    plan, _ = case
    data = plan.to_dict()

    assert (data["schedule"], data["budget"], data["num_workers"], data["leftover"]) == (
        plan.schedule.describe(), plan.budget, plan.num_workers, plan.leftover)


def test_to_json_round_trip(case):
    plan, _ = case

    assert json.loads(plan.to_json()) == plan.to_dict()


def test_format_table_totals_line(case):
    plan, _ = case
    lines = plan.format_table().splitlines()
    totals = next(line for line in lines if line.startswith("rounds:"))

    assert totals.split()[:2] == ["rounds:", str(plan.num_rounds)]
    assert f"total bytes: {plan.total_bytes}" in totals


def test_format_table_one_line_per_round(case):
    plan, _ = case
    rows = [line.split() for line in plan.format_table().splitlines()]
    numbered = [int(fields[0]) for fields in rows if fields and fields[0].isdigit()]

    assert numbered == list(range(1, plan.num_rounds + 1))


def test_paper_config_rounds():
    plan = make_plan(GeometricSchedule(2, 1.1), 10_000)

    assert plan.num_rounds == len(paper_loop())
    assert plan.num_rounds == 65


def test_paper_config_samples():
    assert make_plan(GeometricSchedule(2, 1.1), 10_000).samples_per_worker == sum(paper_loop())


def test_paper_config_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_plan(GeometricSchedule(2, 1.1), 10_000)


def test_constant_schedule_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_plan(ConstantSchedule(2), 10_000)


def test_rho_near_one_warns():
    # floor(2 * 1.001^k) = 2 for k <= 405, so all 400 rounds have batch 2 and nothing is saved.
    with pytest.warns(CommunicationSavingWarning, match=r"400 rounds"):
        make_plan(GeometricSchedule(2, 1.001), 800)


def test_warning_points_at_caller():
    with pytest.warns(CommunicationSavingWarning) as record:
        make_plan(GeometricSchedule(2, 1.001), 800)

    assert record[0].filename == __file__


def test_warning_threshold_just_below():
    # With B1 = 10 and rho = 1.01 the batches are 10 for ten rounds, then 11 for nine rounds
    # (1.01^10 * 10 = 11.05). T = 199 gives 19 rounds against 20 for classical PSGD, a 5% saving.
    with pytest.warns(CommunicationSavingWarning):
        make_plan(GeometricSchedule(10, 1.01), 199)


def test_single_worker_sends_nothing():
    plan = make_plan(GeometricSchedule(2, 1.1), 10_000, num_workers=1, num_params=10**6)

    assert plan.bytes_per_worker == 0


@pytest.mark.parametrize("workers, expected", [(2, 4000), (4, 6000), (3, 5333), (8, 7000)])
def test_bytes_per_round(workers, expected):
    # 1000 float32 parameters: 2 (N - 1) / N * 4000 bytes per round.
    plan = make_plan(GeometricSchedule(2, 1.1), 10_000, num_workers=workers, num_params=1000)

    assert plan.rounds[0].bytes_per_worker == expected


def test_final_round_spends_budget():
    plan = make_plan(GeometricSchedule(2, 1.1), 10_000, leftover="final_round")

    assert plan.samples_per_worker == 10_000


def test_final_round_adds_one_round():
    plan = make_plan(GeometricSchedule(2, 1.1), 10_000, leftover="final_round")

    assert plan.num_rounds == len(paper_loop()) + 1


def test_integral_float_arguments():
    plan = make_plan(GeometricSchedule(2, 1.1), 1e4, num_workers=4.0, num_params=1e3, bytes_per_param=4.0)

    assert plan.to_dict() == make_plan(GeometricSchedule(2, 1.1), 10_000, num_workers=4, num_params=1000,
                                       bytes_per_param=4).to_dict()


def test_rejects_zero_workers():
    with pytest.raises(ValueError, match=r"num_workers must be >= 1, got 0"):
        make_plan(GeometricSchedule(2, 1.1), 10_000, num_workers=0)


def test_rejects_negative_params():
    with pytest.raises(ValueError, match=r"num_params must be >= 0, got -1"):
        make_plan(GeometricSchedule(2, 1.1), 10_000, num_params=-1)


def test_rejects_zero_bytes_per_param():
    with pytest.raises(ValueError, match=r"bytes_per_param must be >= 1, got 0"):
        make_plan(GeometricSchedule(2, 1.1), 10_000, bytes_per_param=0)


def test_rejects_bad_leftover():
    with pytest.raises(ValueError, match=r"leftover must be one of 'drop', 'final_round', got 'all'"):
        make_plan(GeometricSchedule(2, 1.1), 10_000, leftover="all")


def test_rejects_budget_below_b1():
    with pytest.raises(ValueError, match=r"budget must be >= the first batch B1 = 2 .*got 1"):
        make_plan(GeometricSchedule(2, 1.1), 1)


def test_rejects_non_integer_budget():
    with pytest.raises(ValueError, match=r"budget must be an integer, got 9999\.5"):
        make_plan(GeometricSchedule(2, 1.1), 9999.5)
