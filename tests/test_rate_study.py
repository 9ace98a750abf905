"""Tests for benchmarks/rate_study.py: the simulation against its exact expectation and Theorem 1."""

import numpy as np
import pytest

from benchmarks.rate_study import NoisyQuadratic, expected_error, fit_slope, simulate
from crpsgd_hvd import GeometricSchedule

# L = 1, mu = 0.5, gamma = 0.5: nu = 1/16, so rho = 1.03 < 16/15 meets Theorem 1's conditions.
PROBLEM = NoisyQuadratic((0.5, 0.75, 1.0), variance=1.0)
SCHEDULE = GeometricSchedule(b1=2, rho=1.03)
LR = 0.5
X1 = np.ones(3)
SEEDS = 4000


def measured(budget, num_workers, seed=0, per_sample=False, seeds=SEEDS):
    errors = simulate(PROBLEM, SCHEDULE, budget, num_workers, LR, X1, seeds, np.random.default_rng(seed),
                      per_sample=per_sample)
    return errors.mean(), errors.std(ddof=1) / np.sqrt(seeds)


def test_expected_error_one_round_by_hand():
    # B1 = 2 and T = 2: one round. Coordinate k: (1 - lambda_k/2)^2 + 0.25 * (1/3) / (2 N B) with N = 1, B = 2.
    noise = 0.25 * (1 / 3) / 2
    second_moments = [(1 - 0.25) ** 2 + noise, (1 - 0.375) ** 2 + noise, 0.5 ** 2 + noise]
    expected = 0.5 * (0.5 * second_moments[0] + 0.75 * second_moments[1] + 1.0 * second_moments[2])
    assert expected_error(PROBLEM, SCHEDULE, 2, 1, LR, X1) == pytest.approx(expected, rel=1e-14)


def test_simulation_noiseless_is_gradient_descent():
    # Without noise every seed follows x_{t+1} = (1 - gamma lambda) x_t, one step per round.
    problem = NoisyQuadratic((0.5, 1.0), variance=0.0)
    rounds = SCHEDULE.rounds_for_budget(100)
    errors = simulate(problem, SCHEDULE, 100, 3, LR, np.ones(2), 5, np.random.default_rng(0))
    expected = 0.5 * (0.5 * 0.75 ** (2 * rounds) + 1.0 * 0.5 ** (2 * rounds))
    np.testing.assert_allclose(errors, expected, rtol=1e-12)


@pytest.mark.parametrize("budget, num_workers", [(64, 1), (400, 4)])
def test_simulation_matches_exact_expectation(budget, num_workers):
    mean, standard_error = measured(budget, num_workers)
    exact = expected_error(PROBLEM, SCHEDULE, budget, num_workers, LR, X1)
    assert abs(mean - exact) < 5 * standard_error


def test_per_sample_draws_match_exact_expectation():
    mean, standard_error = measured(60, 2, per_sample=True, seeds=1000)
    exact = expected_error(PROBLEM, SCHEDULE, 60, 2, LR, X1)
    assert abs(mean - exact) < 5 * standard_error


def test_error_decreases_with_budget():
    errors = [measured(budget, 2, seed=budget)[0] for budget in (64, 512, 4096)]
    assert errors[0] > errors[1]
    assert errors[1] > errors[2]


def test_error_stays_below_theorem_bound():
    theorem = PROBLEM.theorem(LR, SCHEDULE.b1, SCHEDULE.rho)
    assert theorem.holds
    gap = float(PROBLEM.objective(X1))
    for budget, num_workers in [(16, 1), (64, 1), (512, 4), (4096, 8)]:
        mean, standard_error = measured(budget, num_workers, seed=budget)
        assert mean + 5 * standard_error < theorem.bound(budget, num_workers, gap), (budget, num_workers)


def test_exact_expectation_linear_speedup():
    # The noise term of E f scales as 1/N exactly, and at T = 2^16 the start is forgotten.
    errors = [expected_error(PROBLEM, SCHEDULE, 2 ** 16, n, LR, X1) for n in (1, 2, 4, 8)]
    assert fit_slope([1, 2, 4, 8], errors) == pytest.approx(-1.0, abs=1e-6)


def test_fit_slope_power_law():
    assert fit_slope([1, 10, 100], [3.0, 0.3, 0.03]) == pytest.approx(-1.0, rel=1e-12)


def test_quadratic_rejects_invalid():
    with pytest.raises(ValueError, match=r"eigenvalues must be .* got \(1\.0, 0\.0\)"):
        NoisyQuadratic((1.0, 0.0), 1.0)
    with pytest.raises(ValueError, match=r"variance must be >= 0, got -1\.0"):
        NoisyQuadratic((1.0,), -1.0)
