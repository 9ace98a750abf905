"""Tests for crpsgd_hvd.schedules: the closed forms against an exact round-by-round reference."""

import itertools
import math
from fractions import Fraction

import pytest

from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule


def reference_batches(b1, rho, b_max=None):
    """Yield B_t = min(floor(rho^(t-1) * B1), B_max), with rho taken as the decimal it prints as."""
    ratio = Fraction(str(rho))
    # Keep the numerator and denominator of rho^(t-1) * B1 apart, because Fraction would reduce
    # them by their gcd at every step, which is slow.
    numerator, denominator = b1, 1
    while True:
        batch = numerator // denominator
        if b_max is not None and batch >= b_max:
            # The uncapped batch never shrinks, so every later round is capped too.
            yield from itertools.repeat(b_max)
        yield batch
        numerator *= ratio.numerator
        denominator *= ratio.denominator


def reference_list(b1, rho, b_max, count):
    return list(itertools.islice(reference_batches(b1, rho, b_max), count))


def loop_rounds(b1, rho, b_max, budget):
    """Count the rounds that the loop of Algorithm 1, ``while B_1 + ... + B_t <= T``, makes."""
    batches = reference_batches(b1, rho, b_max)
    rounds, spent, batch = 0, 0, next(batches)
    while spent + batch <= budget:
        spent += batch
        rounds += 1
        batch = next(batches)
    return rounds


B1S = (1, 2, 3, 10, 32)
RHOS = (1.02, 1.1, 1.15, 1.5, 2.0, 3.7)
CAPS = (None, "b1", 64, 512)
GRID_ROUNDS = 120


def grid_params():
    for b1, rho, cap in itertools.product(B1S, RHOS, CAPS):
        b_max = b1 if cap == "b1" else cap
        yield pytest.param(b1, rho, b_max, id=f"b1={b1}-rho={rho}-bmax={b_max}")


GRID = list(grid_params())


@pytest.mark.parametrize("b1, rho, b_max", GRID)
def test_geometric_batch_grid(b1, rho, b_max):
    schedule = GeometricSchedule(b1, rho, b_max)
    expected = reference_list(b1, rho, b_max, GRID_ROUNDS)

    assert [schedule.batch(t) for t in range(1, GRID_ROUNDS + 1)] == expected


@pytest.mark.parametrize("b1, rho, b_max", GRID)
def test_geometric_samples_through_grid(b1, rho, b_max):
    schedule = GeometricSchedule(b1, rho, b_max)
    expected = [0, *itertools.accumulate(reference_list(b1, rho, b_max, GRID_ROUNDS))]

    assert [schedule.samples_through(t) for t in range(GRID_ROUNDS + 1)] == expected


@pytest.mark.parametrize("b1, rho, b_max", GRID)
def test_geometric_rounds_for_budget_grid(b1, rho, b_max):
    schedule = GeometricSchedule(b1, rho, b_max)
    sums = itertools.accumulate(reference_list(b1, rho, b_max, 40))
    # Each S(t) is a budget where R(T) steps up, so check both sides of every step.
    budgets = sorted({budget for total in sums for budget in (total - 1, total, total + 1)} | {0, 1})

    got = {budget: schedule.rounds_for_budget(budget) for budget in budgets}

    assert got == {budget: loop_rounds(b1, rho, b_max, budget) for budget in budgets}


@pytest.mark.parametrize("b1, rho, b_max", GRID)
def test_geometric_iter_batches_grid(b1, rho, b_max):
    schedule = GeometricSchedule(b1, rho, b_max)
    streamed = list(itertools.islice(schedule.iter_batches(), GRID_ROUNDS))

    assert streamed == [schedule.batch(t) for t in range(1, GRID_ROUNDS + 1)]


def test_geometric_closed_forms_random():
    # hypothesis is a system-wide extra, not a project requirement, so only this test needs it.
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(b1=st.integers(1, 64),
                      rho_thousandths=st.integers(1010, 4000),
                      cap_above_b1=st.none() | st.integers(0, 1000),
                      budget=st.integers(0, 100_000))
    def check(b1, rho_thousandths, cap_above_b1, budget):
        rho = rho_thousandths / 1000
        b_max = None if cap_above_b1 is None else b1 + cap_above_b1
        schedule = GeometricSchedule(b1, rho, b_max)
        rounds = loop_rounds(b1, rho, b_max, budget)
        batches = reference_list(b1, rho, b_max, rounds + 1)

        assert schedule.rounds_for_budget(budget) == rounds
        assert [schedule.batch(t) for t in range(1, rounds + 2)] == batches
        assert schedule.samples_through(rounds) == sum(batches[:rounds])
        assert schedule.samples_through(rounds + 1) == sum(batches)

    check()


@pytest.mark.parametrize("b1, rho, expected", [
    # rho^(t-1) * B1 is an exact integer in early rounds, and the float product can land
    # just below it: 100 * 1.15 == 114.99999999999999.
    (4, 1.5, [4, 6, 9, 13, 20, 30, 45]),
    (10, 1.1, [10, 11, 12, 13, 14, 16, 17]),
    (3, 2.0, [3, 6, 12, 24, 48, 96, 192]),
    (100, 1.15, [100, 115, 132, 152, 174, 201, 231]),
    (100, 1.7, [100, 170, 289, 491, 835, 1419, 2413]),
    (2, 1.1, [2, 2, 2, 2, 2, 3, 3]),
])
def test_geometric_batch_exact_integers(b1, rho, expected):
    schedule = GeometricSchedule(b1, rho)

    assert [schedule.batch(t) for t in range(1, 8)] == expected


@pytest.mark.parametrize("b_max, expected", [
    (32, [4, 8, 16, 32, 32, 32]),  # the uncapped batch hits the cap exactly
    (20, [4, 8, 16, 20, 20, 20]),
    (4, [4, 4, 4, 4, 4, 4]),  # B_max == B1
])
def test_geometric_batch_cap(b_max, expected):
    schedule = GeometricSchedule(4, 2.0, b_max)

    assert [schedule.batch(t) for t in range(1, 7)] == expected


def test_geometric_cap_round():
    assert GeometricSchedule(4, 2.0, 32).cap_round == 4


def test_geometric_cap_round_at_b1():
    assert GeometricSchedule(4, 2.0, 4).cap_round == 1


def test_geometric_cap_round_without_cap():
    assert GeometricSchedule(4, 2.0).cap_round is None


def test_geometric_rounds_b_max_at_b1():
    schedule = GeometricSchedule(7, 1.3, 7)

    assert schedule.rounds_for_budget(1000) == 1000 // 7


@pytest.mark.parametrize("b1, rho, b_max", [(2, 1.1, None), (4, 1.5, None), (4, 2.0, 20), (10, 1.1, 14)])
@pytest.mark.parametrize("t", [1, 2, 5, 9])
def test_geometric_rounds_at_exact_sum(b1, rho, b_max, t):
    schedule = GeometricSchedule(b1, rho, b_max)
    total = sum(reference_list(b1, rho, b_max, t))

    assert schedule.rounds_for_budget(total) == t


@pytest.mark.parametrize("b1, rho, b_max", [(2, 1.1, None), (4, 1.5, None), (4, 2.0, 20), (10, 1.1, 14)])
@pytest.mark.parametrize("t", [1, 2, 5, 9])
def test_geometric_rounds_one_below_sum(b1, rho, b_max, t):
    schedule = GeometricSchedule(b1, rho, b_max)
    total = sum(reference_list(b1, rho, b_max, t))

    assert schedule.rounds_for_budget(total - 1) == t - 1


@pytest.mark.parametrize("b1, rho, b_max", [
    (2, 1.1, None),
    (1, 2.0, None),
    (2, 1.1, 512),
    (32, 1.02, 512),
])
def test_geometric_rounds_huge_budget(b1, rho, b_max):
    schedule = GeometricSchedule(b1, rho, b_max)

    assert schedule.rounds_for_budget(10**9) == loop_rounds(b1, rho, b_max, 10**9)


def test_geometric_rounds_huge_float_budget():
    assert GeometricSchedule(2, 1.1).rounds_for_budget(1e9) == loop_rounds(2, 1.1, None, 10**9)


def test_geometric_rounds_linear_after_cap():
    # Past the cap every round costs B_max, as in classical parallel SGD.
    schedule = GeometricSchedule(2, 1.1, 512)
    before_cap = sum(reference_list(2, 1.1, 512, schedule.cap_round - 1))

    assert schedule.rounds_for_budget(10**9) == schedule.cap_round - 1 + (10**9 - before_cap) // 512


@pytest.mark.parametrize("b1, b_max, budget", [(2, None, 100_000), (10, None, 20_000), (2, 64, 100_000)])
def test_geometric_rho_near_one(b1, b_max, budget):
    schedule = GeometricSchedule(b1, 1.001, b_max)
    rounds = loop_rounds(b1, 1.001, b_max, budget)

    assert schedule.rounds_for_budget(budget) == rounds
    assert [schedule.batch(t) for t in range(1, rounds + 1)] == reference_list(b1, 1.001, b_max, rounds)


def test_geometric_rho_near_one_starts_flat():
    # floor(2 * 1.001^k) stays 2 while 1.001^k < 1.5, that is for k < log(1.5)/log(1.001) = 405.7.
    schedule = GeometricSchedule(2, 1.001)

    assert (schedule.batch(406), schedule.batch(407)) == (2, 3)


def test_geometric_rounds_zero_budget():
    assert GeometricSchedule(2, 1.1).rounds_for_budget(0) == 0


def test_geometric_samples_through_zero():
    assert GeometricSchedule(2, 1.1).samples_through(0) == 0


def test_geometric_paper_config_rounds():
    # B1 = 2, rho = 1.1, T = 10^4 are the settings of the CR-PSGD logistic-regression experiment.
    assert GeometricSchedule(2, 1.1).rounds_for_budget(10_000) == loop_rounds(2, 1.1, None, 10_000)


def test_geometric_batch_far_round():
    # Python integers are unbounded, so round 2000 still has an exact batch, 2^1999.
    assert GeometricSchedule(1, 2.0).batch(2000) == 2**1999


def test_geometric_describe():
    assert GeometricSchedule(2, 1.1, 512).describe() == {
        "kind": "GeometricSchedule", "b1": 2, "rho": 1.1, "b_max": 512}


def test_geometric_integral_floats_to_ints():
    schedule = GeometricSchedule(2.0, 1.1, 512.0)

    assert (type(schedule.b1), type(schedule.b_max)) == (int, int)


def test_geometric_int_rho_becomes_float():
    assert type(GeometricSchedule(2, 2).rho) is float


def test_geometric_first_batch():
    assert GeometricSchedule(5, 1.1).first_batch == 5


@pytest.mark.parametrize("rho", [1.0, 0.5, -2.0])
def test_geometric_rejects_rho_not_above_one(rho):
    with pytest.raises(ValueError, match=rf"rho must be > 1(\.0)?, got {rho!r}"):
        GeometricSchedule(2, rho)


@pytest.mark.parametrize("rho", [math.nan, math.inf])
def test_geometric_rejects_rho_not_finite(rho):
    with pytest.raises(ValueError, match=rf"rho must be finite, got {rho!r}"):
        GeometricSchedule(2, rho)


def test_geometric_rejects_rho_bool():
    with pytest.raises(ValueError, match=r"rho must be a real number, got True"):
        GeometricSchedule(2, True)


@pytest.mark.parametrize("b1", [0, -3])
def test_geometric_rejects_b1_below_one(b1):
    with pytest.raises(ValueError, match=rf"b1 must be >= 1, got {b1}"):
        GeometricSchedule(b1, 1.1)


def test_geometric_rejects_b1_non_integer():
    with pytest.raises(ValueError, match=r"b1 must be an integer, got 2\.5"):
        GeometricSchedule(2.5, 1.1)


def test_geometric_rejects_b1_bool():
    with pytest.raises(ValueError, match=r"b1 must be an integer, got True"):
        GeometricSchedule(True, 1.1)


def test_geometric_rejects_b_max_below_b1():
    with pytest.raises(ValueError, match=r"b_max must be >= b1 = 8, got 4"):
        GeometricSchedule(8, 1.1, 4)


def test_geometric_rejects_b_max_non_integer():
    with pytest.raises(ValueError, match=r"b_max must be an integer, got 600\.5"):
        GeometricSchedule(8, 1.1, 600.5)


def test_geometric_rejects_round_zero():
    with pytest.raises(ValueError, match=r"t must be >= 1, got 0"):
        GeometricSchedule(2, 1.1).batch(0)


def test_geometric_rejects_negative_budget():
    with pytest.raises(ValueError, match=r"budget must be >= 0, got -1"):
        GeometricSchedule(2, 1.1).rounds_for_budget(-1)


def test_geometric_rejects_non_integer_budget():
    with pytest.raises(ValueError, match=r"budget must be an integer, got 100\.5"):
        GeometricSchedule(2, 1.1).rounds_for_budget(100.5)


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_constant_batch(batch_size):
    schedule = ConstantSchedule(batch_size)

    assert [schedule.batch(t) for t in range(1, 50)] == [batch_size] * 49


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_constant_samples_through(batch_size):
    schedule = ConstantSchedule(batch_size)

    assert [schedule.samples_through(t) for t in range(50)] == [t * batch_size for t in range(50)]


@pytest.mark.parametrize("batch_size", [1, 7, 32])
@pytest.mark.parametrize("budget", [0, 1, 6, 7, 8, 31, 32, 33, 10_000, 10**9])
def test_constant_rounds_for_budget(batch_size, budget):
    assert ConstantSchedule(batch_size).rounds_for_budget(budget) == budget // batch_size


def test_constant_iter_batches():
    assert list(itertools.islice(ConstantSchedule(5).iter_batches(), 4)) == [5, 5, 5, 5]


def test_constant_describe():
    assert ConstantSchedule(5).describe() == {"kind": "ConstantSchedule", "batch_size": 5}


def test_constant_first_batch():
    assert ConstantSchedule(5).first_batch == 5


def test_constant_rejects_zero_batch():
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        ConstantSchedule(0)


def test_constant_rejects_non_integer_batch():
    with pytest.raises(ValueError, match=r"batch_size must be an integer, got 2\.5"):
        ConstantSchedule(2.5)
