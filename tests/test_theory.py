"""Tests for crpsgd_hvd.theory: Theorem 1's constants, bound and conditions.

The exact case below was solved by hand. With L = 1, mu = 31/32, gamma = 1/2:
nu = (1/2)(1/2)(31/32)(1/2) = 31/256, so 1/(1 - nu) = 256/225 = (16/15)^2.
With rho = 16/15 that makes delta = 2 - 1 = 1, then with B1 = 2, sigma^2 = 1:
c1 = (256/225) (2 / (1/15))^2 = 1024,
c2 = (256/225)(1/2)(3/2) / ((1 - (225/256)(16/15)) (1/15)) = (64/75) * 240 = 204.8,
and for T = 100, N = 4, f(x1) - f* = 2 the bound is 2048/10^4 + 204.8/400 = 0.7168.
"""

import math

import pytest

from crpsgd_hvd.theory import Condition, TheoremOne

EXACT = dict(smoothness=1.0, pl_modulus=31 / 32, variance=1.0, lr=0.5, b1=2, rho=16 / 15)


def conditions_by_name(theorem):
    return {condition.name.split(",")[0]: condition for condition in theorem.conditions()}


def test_constants_exact_case():
    theorem = TheoremOne(**EXACT)
    assert theorem.nu == pytest.approx(31 / 256, rel=1e-14)
    assert theorem.delta == pytest.approx(1.0, rel=1e-12)
    assert theorem.c1 == pytest.approx(1024.0, rel=1e-10)
    assert theorem.c2 == pytest.approx(204.8, rel=1e-10)
    assert theorem.max_rho == pytest.approx(256 / 225, rel=1e-14)


def test_bound_exact_case():
    theorem = TheoremOne(**EXACT)
    first, second = theorem.bound_terms(100, 4, 2.0)
    assert first == pytest.approx(0.2048, rel=1e-10)
    assert second == pytest.approx(0.512, rel=1e-10)
    assert theorem.bound(100, 4, 2.0) == pytest.approx(0.7168, rel=1e-10)


def test_bound_linear_speedup_in_workers():
    theorem = TheoremOne(**EXACT)
    assert theorem.bound_terms(100, 8, 2.0)[1] == pytest.approx(0.256, rel=1e-10)
    assert theorem.bound(100, 1, 0.0) == pytest.approx(2.048, rel=1e-10)


def test_conditions_hold_but_delta_at_most_one():
    # nu = 1/16, 1/(1 - nu) = 16/15: rho - 1 = 0.05 is below 1/15 but above sqrt(16/15) - 1.
    theorem = TheoremOne(smoothness=1.0, pl_modulus=0.5, variance=1.0, lr=0.5, b1=2, rho=1.05)
    named = conditions_by_name(theorem)
    assert theorem.holds
    assert named["1 < rho < 1/(1 - nu)"].holds
    assert named["1 < rho < 1/(1 - nu)"].ratio == pytest.approx(0.05 * 15, rel=1e-12)
    assert not named["rho < sqrt(1/(1 - nu))"].holds
    assert not named["rho < sqrt(1/(1 - nu))"].required
    assert named["rho < sqrt(1/(1 - nu))"].limit == pytest.approx(math.sqrt(16 / 15) - 1, rel=1e-12)
    assert 0.0 < theorem.delta < 1.0


def test_conditions_fail_for_large_learning_rate():
    # gamma L = 12.6, so nu = (1/2)(0.1)(0.001)(1 - 12.6) = -5.8e-4 < 0 and 1/(1 - nu) < 1.
    theorem = TheoremOne(smoothness=126.0, pl_modulus=1e-3, variance=1.0, lr=0.1, b1=2, rho=1.1)
    named = conditions_by_name(theorem)
    assert theorem.nu == pytest.approx(-5.8e-4, rel=1e-12)
    assert named["B1 >= 2"].holds
    assert not named["gamma < 1/L"].holds
    assert named["gamma < 1/L"].ratio == pytest.approx(12.6, rel=1e-12)
    assert not named["1 < rho < 1/(1 - nu)"].holds
    assert named["1 < rho < 1/(1 - nu)"].ratio == math.inf
    assert not theorem.holds
    assert theorem.delta < -1.0


def test_condition_first_batch_of_one_fails():
    theorem = TheoremOne(**{**EXACT, "b1": 1})
    named = conditions_by_name(theorem)
    assert not named["B1 >= 2"].holds
    assert named["B1 >= 2"].ratio == 0.5
    assert [c.name for c in theorem.failed_conditions()] == ["B1 >= 2"]


def test_bound_rejects_failed_conditions():
    theorem = TheoremOne(smoothness=126.0, pl_modulus=1e-3, variance=1.0, lr=0.1, b1=2, rho=1.1)
    with pytest.raises(ValueError, match=r"conditions fail: gamma < 1/L: gamma = 0\.1, limit 0\.00793651"):
        theorem.bound(10_000, 10, 1.0)


def test_bound_advice_names_fix():
    # gamma = 0.1 > 1/126 fails, and nu < 0 leaves no rho > 1 inside the range.
    theorem = TheoremOne(smoothness=126.0, pl_modulus=1e-3, variance=1.0, lr=0.1, b1=2, rho=1.1)
    with pytest.raises(ValueError) as raised:
        theorem.bound(10_000, 10, 1.0)

    assert "To meet them: lower lr below 1/L; bring rho closer to 1" in str(raised.value)


def test_bound_advice_for_rho_only():
    # L = 1, mu = 0.5, lr = 0.5: nu = 1/16, so rho must stay below 16/15.
    theorem = TheoremOne(smoothness=1.0, pl_modulus=0.5, variance=1.0, lr=0.5, b1=2, rho=1.5)
    with pytest.raises(ValueError) as raised:
        theorem.bound(10_000, 10, 1.0)

    assert "To meet them: bring rho closer to 1, below 1/(1 - nu)" in str(raised.value)
    assert "lower lr" not in str(raised.value)


def test_constants_overflow_to_infinity():
    # delta is about log(8/7) / 1e-9, so c1 = (2e9)^(1 + delta) is far beyond the float range.
    theorem = TheoremOne(smoothness=1.0, pl_modulus=1.0, variance=1.0, lr=0.5, b1=2, rho=1 + 1e-9)
    assert theorem.delta > 1e8
    assert theorem.c1 == math.inf
    assert theorem.bound_terms(1000, 1, 1.0)[0] == math.inf


def test_describe_lists_constants_and_conditions():
    lines = TheoremOne(**EXACT).describe()
    assert lines[1].startswith("nu = 0.121094, delta = 1, c1 = 1024, c2 = 204.8")
    assert len(lines) == 2 + 4
    assert lines[3].endswith("holds")


def test_condition_ratio_with_nonpositive_limit():
    assert Condition("x < 0", "x", 1.0, 0.0, False).ratio == math.inf


@pytest.mark.parametrize("field, value, message", [
    ("smoothness", 0.0, r"^smoothness must be > 0\.0, got 0\.0$"),
    ("pl_modulus", -1.0, r"^pl_modulus must be > 0\.0, got -1\.0$"),
    ("pl_modulus", 2.0, r"^pl_modulus must be <= smoothness = 1\.0 because .* got 2\.0$"),
    ("variance", -0.5, r"^variance must be >= 0\.0, got -0\.5$"),
    ("lr", math.nan, r"^lr must be finite, got nan$"),
    ("b1", 0, r"^b1 must be >= 1, got 0$"),
    ("rho", 1.0, r"^rho must be > 1\.0, got 1\.0$"),
])
def test_theorem_rejects_invalid(field, value, message):
    with pytest.raises(ValueError, match=message):
        TheoremOne(**{**EXACT, field: value})


@pytest.mark.parametrize("args, message", [
    ((0, 4, 1.0), r"^budget must be >= 1, got 0$"),
    ((100, 0, 1.0), r"^num_workers must be >= 1, got 0$"),
    ((100, 4, -1.0), r"^initial_gap must be >= 0\.0, got -1\.0$"),
])
def test_bound_rejects_invalid(args, message):
    with pytest.raises(ValueError, match=message):
        TheoremOne(**EXACT).bound(*args)


def test_theorem_is_immutable():
    theorem = TheoremOne(**EXACT)
    with pytest.raises(AttributeError):
        theorem.lr = 0.1
