"""Tests for crpsgd_hvd.catalyst_theory: Theorem 2's conditions against hand-computed values."""

import math

import pytest

from crpsgd_hvd.catalyst_theory import check_catalyst_conditions


def by_rule(report):
    return {condition.rule: condition for condition in report.conditions}


def test_conditions_that_hold():
    # L = 1, theta = 2, gamma = 0.2: nu = 0.5 * 0.2 * 1 * (1 - 3 * 0.2) = 0.04, 1/(1 - nu) = 1/0.96.
    report = check_catalyst_conditions(1.0, 2.0, 0.2, 1.02, b1=2)
    rules = by_rule(report)

    assert report.holds
    assert report.violations == ()
    assert math.isclose(report.nu, 0.04, rel_tol=1e-12)
    assert math.isclose(report.rho_max, 1 / 0.96, rel_tol=1e-12)
    assert math.isclose(rules["theta > L"].margin, 1.0, rel_tol=1e-12)
    assert math.isclose(rules["gamma < 1/(theta + L)"].margin, 1 / 3 - 0.2, rel_tol=1e-12)
    assert math.isclose(rules["rho > 1"].margin, 0.02, rel_tol=1e-9)
    assert math.isclose(rules["rho < 1/(1 - nu)"].margin, 1 / 0.96 - 1.02, rel_tol=1e-9)
    assert rules["B1 >= 2"].margin == 0.0
    assert [c.rule for c in report.conditions] == [
        "theta > L", "B1 >= 2", "gamma < 1/(theta + L)", "rho > 1", "rho < 1/(1 - nu)"]
    report.raise_if_violated()


def test_violations_are_listed():
    # L = 2, theta = 1, gamma = 0.5: theta < L, gamma > 1/3, and
    # nu = 0.5 * 0.5 * (-1) * (1 - 1.5) = 0.125, so rho = 1.1 < 1/0.875 still holds.
    report = check_catalyst_conditions(2.0, 1.0, 0.5, 1.1, b1=1)
    rules = by_rule(report)

    assert not report.holds
    assert [c.rule for c in report.violations] == ["theta > L", "B1 >= 2", "gamma < 1/(theta + L)"]
    assert math.isclose(rules["theta > L"].margin, -1.0, rel_tol=1e-12)
    assert math.isclose(rules["gamma < 1/(theta + L)"].margin, 1 / 3 - 0.5, rel_tol=1e-12)
    assert math.isclose(report.nu, 0.125, rel_tol=1e-12)
    assert rules["rho < 1/(1 - nu)"].holds
    assert "VIOLATED theta > L" in report.format()
    with pytest.raises(ValueError, match=r"3 of 5 fail\): theta > L fails: theta = 1, L = 2; B1 >= 2 fails"):
        report.raise_if_violated()


def test_rho_above_bound():
    # L = 1, theta = 3, gamma = 0.1: nu = 0.5 * 0.1 * 2 * (1 - 0.4) = 0.06, 1/(1 - nu) = 1/0.94 = 1.0638.
    report = check_catalyst_conditions(1.0, 3.0, 0.1, 1.1)
    rules = by_rule(report)

    assert [c.rule for c in report.violations] == ["rho < 1/(1 - nu)"]
    assert math.isclose(rules["rho < 1/(1 - nu)"].margin, 1 / 0.94 - 1.1, rel_tol=1e-9)
    assert "B1 >= 2" not in rules
    with pytest.raises(ValueError, match=r"rho < 1/\(1 - nu\) fails: rho = 1.1, 1/\(1 - nu\) = 1.06383"):
        check_catalyst_conditions(1.0, 3.0, 0.1, 1.1, raise_on_violation=True)


def test_rho_at_one_violates():
    report = check_catalyst_conditions(1.0, 3.0, 0.1, 1.0)

    assert [c.rule for c in report.violations] == ["rho > 1"]


@pytest.mark.parametrize("arguments, message", [
    ((0.0, 1.0, 0.1, 1.1), "smoothness must be > 0.0, got 0.0"),
    ((1.0, -1.0, 0.1, 1.1), "theta must be >= 0.0, got -1.0"),
    ((1.0, 2.0, 0.0, 1.1), "gamma must be > 0.0, got 0.0"),
    ((1.0, 2.0, 0.1, float("nan")), "rho must be finite, got nan"),
])
def test_invalid_constants_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        check_catalyst_conditions(*arguments)
