"""Tests for crpsgd_hvd._validation: the shared argument checks and their messages."""

import math
from fractions import Fraction

import pytest

from crpsgd_hvd._validation import check_choice, check_int, check_real


@pytest.mark.parametrize("value, expected", [(5, 5), (0, 0), (1e4, 10_000), (3.0, 3), (Fraction(6, 2), 3)])
def test_check_int_accepts(value, expected):
    assert check_int("count", value) == expected


@pytest.mark.parametrize("value", [1e4, 3.0, Fraction(6, 2)])
def test_check_int_returns_int(value):
    assert type(check_int("count", value)) is int


def test_check_int_large_integral_float():
    assert check_int("budget", 1e9, minimum=1) == 10**9


@pytest.mark.parametrize("value, shown", [
    (2.5, r"2\.5"),
    (True, "True"),
    (False, "False"),
    ("3", "'3'"),
    (None, "None"),
    (math.nan, "nan"),
    (math.inf, "inf"),
    (Fraction(5, 2), r"Fraction\(5, 2\)"),
])
def test_check_int_rejects(value, shown):
    with pytest.raises(ValueError, match=rf"^count must be an integer, got {shown}$"):
        check_int("count", value)


def test_check_int_minimum():
    with pytest.raises(ValueError, match=r"^b1 must be >= 1, got 0$"):
        check_int("b1", 0, minimum=1)


def test_check_int_minimum_shows_value_as_given():
    with pytest.raises(ValueError, match=r"^b1 must be >= 1, got 0\.0$"):
        check_int("b1", 0.0, minimum=1)


def test_check_int_at_minimum():
    assert check_int("b1", 1, minimum=1) == 1


@pytest.mark.parametrize("value, expected", [(1.1, 1.1), (2, 2.0), (Fraction(1, 4), 0.25)])
def test_check_real_accepts(value, expected):
    assert check_real("rho", value) == expected


def test_check_real_returns_float():
    assert type(check_real("rho", 2)) is float


@pytest.mark.parametrize("value, shown", [(True, "True"), ("1.1", "'1.1'"), (None, "None")])
def test_check_real_rejects_non_number(value, shown):
    with pytest.raises(ValueError, match=rf"^rho must be a real number, got {shown}$"):
        check_real("rho", value)


@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_check_real_rejects_non_finite(value, shown):
    with pytest.raises(ValueError, match=rf"^rho must be finite, got {shown}$"):
        check_real("rho", value)


@pytest.mark.parametrize("value", [1.0, 0.99, -1.0])
def test_check_real_greater_than(value):
    with pytest.raises(ValueError, match=rf"^rho must be > 1\.0, got {value!r}$"):
        check_real("rho", value, greater_than=1.0)


def test_check_real_just_above_bound():
    assert check_real("rho", 1.001, greater_than=1.0) == 1.001


def test_check_real_at_least():
    with pytest.raises(ValueError, match=r"^gamma must be >= 0, got -0\.1$"):
        check_real("gamma", -0.1, at_least=0)


def test_check_real_at_least_bound_is_allowed():
    assert check_real("gamma", 0, at_least=0) == 0.0


def test_check_real_less_than():
    with pytest.raises(ValueError, match=r"^gamma must be < 1, got 1$"):
        check_real("gamma", 1, less_than=1)


def test_check_choice_accepts():
    assert check_choice("leftover", "drop", ("drop", "final_round")) == "drop"


@pytest.mark.parametrize("value, shown", [("keep", "'keep'"), ("Drop", "'Drop'"), (None, "None")])
def test_check_choice_rejects(value, shown):
    with pytest.raises(ValueError, match=rf"^leftover must be one of 'drop', 'final_round', got {shown}$"):
        check_choice("leftover", value, ("drop", "final_round"))
