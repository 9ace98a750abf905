"""Tests for crpsgd_hvd.problems.logistic_constants against closed forms on small data."""

import logging
import math

import numpy as np
import pytest

from crpsgd_hvd.problems import LogisticRegressionProblem, estimate_constants
from crpsgd_hvd.problems.logistic_constants import gradient_variance, minimize_objective, smoothness_constant

# Features diag(a): sample j is a_j e_j, so Z^T Z = diag(a^2) and each gradient has one entry.
DIAGONAL = np.array([1.0, 2.0, 3.0])
DIAGONAL_LABELS = np.array([1.0, -1.0, 1.0])


def test_smoothness_diagonal_features():
    # lambda_max(Z^T Z) = 9, M = 3: L = 9 / 12 + mu.
    assert smoothness_constant(np.diag(DIAGONAL), 0.1) == pytest.approx(0.75 + 0.1, rel=1e-14)


def test_smoothness_dense_features_known_spectrum():
    # Z = Q diag(s) with orthonormal columns Q, so Z^T Z = diag(s^2), whatever Q is.
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((40, 4)))
    features = q * np.array([0.5, 4.0, 1.0, 2.0])
    assert smoothness_constant(features, 0.0) == pytest.approx(16.0 / (4 * 40), rel=1e-12)


def test_smoothness_bounds_hessian_at_zero():
    # At x = 0, s' = 1/4 for every sample, so the Hessian is Z^T Z / (4M) + mu I and L is its top eigenvalue.
    features = np.random.default_rng(4).standard_normal((50, 6))
    hessian = features.T @ features / (4 * 50) + 0.2 * np.eye(6)
    assert smoothness_constant(features, 0.2) == pytest.approx(np.linalg.eigvalsh(hessian)[-1], rel=1e-12)


def test_variance_at_zero_diagonal():
    # At x = 0 the gradients are -b_j a_j e_j / 2: mean squared norm sum(a^2)/(4M),
    # squared norm of the mean sum(a^2)/(4M^2).
    total = float(np.sum(DIAGONAL ** 2))
    expected = total / 12 - total / 36
    assert gradient_variance(np.zeros(3), np.diag(DIAGONAL), DIAGONAL_LABELS) == pytest.approx(expected, rel=1e-14)


def test_variance_at_point_diagonal():
    x = np.array([0.5, -1.0, 2.0])
    # Sample j's gradient is -b_j a_j s_j e_j with s_j = 1 / (1 + exp(b_j a_j x_j)).
    s = [1 / (1 + math.exp(b * a * xj)) for a, b, xj in zip(DIAGONAL, DIAGONAL_LABELS, x)]
    squares = [(a * sj) ** 2 for a, sj in zip(DIAGONAL, s)]
    expected = sum(squares) / 3 - sum(squares) / 9
    assert gradient_variance(x, np.diag(DIAGONAL), DIAGONAL_LABELS) == pytest.approx(expected, rel=1e-13)


def test_variance_matches_explicit_gradients():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((30, 4))
    labels = np.where(rng.random(30) < 0.5, -1.0, 1.0)
    x = rng.standard_normal(4)
    gradients = np.array([-b * z / (1 + math.exp(b * (z @ x))) for z, b in zip(features, labels)])
    expected = np.mean(np.sum((gradients - gradients.mean(axis=0)) ** 2, axis=1))
    assert gradient_variance(x, features, labels) == pytest.approx(expected, rel=1e-12)


def test_minimum_one_dimensional_entropy():
    # z = 1 for all samples, a fraction p = 0.7 labelled +1, mu = 0:
    # f(x) = p log(1 + e^-x) + (1 - p) log(1 + e^x), minimised where s(x) = p, with f* the entropy of p.
    p = 0.7
    features = np.ones((10, 1))
    labels = np.array([1.0] * 7 + [-1.0] * 3)
    minimizer, minimum, gradient_norm = minimize_objective(features, labels, 0.0, tolerance=1e-12)
    assert minimizer[0] == pytest.approx(math.log(p / (1 - p)), rel=1e-9)
    assert minimum == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p), rel=1e-12)
    assert gradient_norm <= 1e-12


def test_minimum_with_l2_weight_is_stationary():
    # With mu > 0 the minimiser solves mean(b s(-b x) ) = mu x; for z = 1, p = 0.7 check it directly.
    features = np.ones((10, 1))
    labels = np.array([1.0] * 7 + [-1.0] * 3)
    (x,), _, _ = minimize_objective(features, labels, 0.5, tolerance=1e-12)
    residual = 0.7 / (1 + math.exp(x)) - 0.3 / (1 + math.exp(-x)) - 0.5 * x
    assert abs(residual) < 1e-12


def test_minimize_separable_data_warns(caplog):
    features = np.array([[1.0], [-1.0]])
    labels = np.array([1.0, -1.0])
    with caplog.at_level(logging.WARNING, logger="crpsgd_hvd.problems.logistic_constants"):
        minimizer, _, _ = minimize_objective(features, labels, 0.0, max_iterations=5)
    assert "stopped after 5 steps" in caplog.text
    assert minimizer[0] > 1.0


def test_estimate_constants_small_problem():
    problem = LogisticRegressionProblem(dim=5, samples_per_worker=300, mu=0.05, seed=2)
    constants = estimate_constants(problem, num_workers=2, tolerance=1e-12)
    features = np.concatenate([problem.shard(0)[0], problem.shard(1)[0]])
    gram_top = np.linalg.eigvalsh(features.T @ features)[-1]

    assert constants.smoothness == pytest.approx(gram_top / (4 * 600) + 0.05, rel=1e-12)
    assert constants.pl_modulus == 0.05
    assert constants.minimum < math.log(2)
    assert constants.initial_gap == pytest.approx(math.log(2) - constants.minimum, rel=1e-12)
    assert constants.gradient_norm_at_minimizer <= 1e-12
    # No point of a random sample of 20 does better than the minimiser.
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert problem.objective(rng.standard_normal(5) * 0.3, 2) >= constants.minimum
    assert constants.variance == max(constants.variance_at_start, constants.variance_at_minimizer)


def test_estimate_constants_builds_theorem():
    constants = estimate_constants(LogisticRegressionProblem(dim=3, samples_per_worker=50, mu=0.1), 1)
    theorem = constants.theorem(lr=0.01, b1=2, rho=1.0001)
    assert theorem.smoothness == constants.smoothness
    assert theorem.variance == constants.variance


@pytest.mark.parametrize("call, message", [
    (lambda: smoothness_constant(np.ones(3), 0.1), r"features must be a non-empty 2-D array .* got shape \(3,\)"),
    (lambda: smoothness_constant(np.ones((2, 2)), -1.0), r"^mu must be >= 0\.0, got -1\.0$"),
    (lambda: gradient_variance(np.zeros(2), np.ones((3, 2)), np.ones(2)), r"labels must have shape \(3,\)"),
    (lambda: gradient_variance(np.zeros(2), np.ones((2, 2)), np.array([1.0, 0.0])), r"labels must be -1 or \+1"),
    (lambda: gradient_variance(np.zeros(3), np.ones((2, 2)), np.ones(2)), r"x must have shape \(2,\)"),
    (lambda: minimize_objective(np.ones((2, 2)), np.ones(2), 0.1, tolerance=0.0), r"^tolerance must be > 0\.0"),
    (lambda: estimate_constants(LogisticRegressionProblem(dim=2, samples_per_worker=4, mu=0.0), 1),
     r"^problem\.mu must be > 0"),
])
def test_estimators_reject_invalid(call, message):
    with pytest.raises(ValueError, match=message):
        call()
