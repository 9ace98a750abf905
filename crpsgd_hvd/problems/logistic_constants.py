r"""Theorem 1's problem constants for l2-regularised logistic regression, estimated from the data.

For M samples (z_j, b_j) with b_j in {-1, +1} and l2 weight mu,

.. math::

    f(x) = \frac{1}{M} \sum_{j} \log\left(1 + e^{-b_j z_j^\top x}\right) + \frac{\mu}{2} \lVert x \rVert^2,
    \qquad
    \nabla F(x; j) = -b_j\, s(-b_j z_j^\top x)\, z_j + \mu x

where s is the logistic sigmoid. Then:

* L = lambda_max(Z^T Z) / (4 M) + mu bounds the Hessian, because s' <= 1/4.
  It is exact for the Hessian's largest eigenvalue at x = 0 (where s' = 1/4
  for every sample) and an upper bound elsewhere.
* mu is a valid PL modulus: f is mu-strongly convex, and strong convexity
  implies ||grad f(x)||^2 >= 2 mu (f(x) - f*).
* sigma^2(x) = (1/M) sum_j ||grad F(x; j) - grad f(x)||^2 is the variance
  of one uniformly drawn sample's gradient at x. Theorem 1 needs a bound over
  every iterate; this module evaluates it at given points (x1 = 0 and the
  minimiser by default), which is an estimate, not a bound.
* f* comes from damped Newton's method, which converges in a few steps
  because f is smooth and strongly convex (for mu > 0).

The distributed objective of the CR-PSGD paper (Yu and Jin, ICML 2019) is
the mean of N shard means; with shards of equal size M that is the same f
over the pooled N M samples, so the functions below take the pooled arrays.
"""

import dataclasses
import logging

import numpy as np

from crpsgd_hvd._validation import check_int, check_real
from crpsgd_hvd.problems.logistic_regression import LogisticRegressionProblem, logistic_loss
from crpsgd_hvd.theory import TheoremOne

__all__ = ["LogisticConstants", "estimate_constants", "gradient_variance", "minimize_objective",
           "smoothness_constant"]

logger = logging.getLogger(__name__)

# Rows per block when forming Z^T diag(w) Z, so that a 10^5 x 500 data set
# needs one 40 MB block of scratch memory instead of a second full copy.
_BLOCK_ROWS = 10_000


def smoothness_constant(features, mu):
    """Return L = lambda_max(Z^T Z) / (4 M) + mu for features Z (M x d) and l2 weight mu >= 0."""
    features = _check_features(features)
    mu = check_real("mu", mu, at_least=0.0)

    gram = _weighted_gram(features, np.ones(features.shape[0]))
    return float(np.linalg.eigvalsh(gram)[-1]) / (4.0 * features.shape[0]) + mu


def gradient_variance(x, features, labels):
    """Return sigma^2(x) = (1/M) sum_j ||grad F(x; j) - grad f(x)||^2 over the M samples.

    The l2 term adds mu x to every sample's gradient alike, so it does not
    enter the variance, and mu is not an argument. The mean is over the M
    samples (not M - 1), because the algorithm samples from this finite set.
    """
    features, labels = _check_data(features, labels)
    x = _check_point(x, features.shape[1])

    coefficients = -labels * _sigmoid(-labels * (features @ x))
    mean_gradient = features.T @ coefficients / features.shape[0]
    mean_square_norm = float(np.mean(coefficients ** 2 * np.einsum("ij,ij->i", features, features)))
    return max(0.0, mean_square_norm - float(mean_gradient @ mean_gradient))


def minimize_objective(features, labels, mu, *, tolerance=1e-9, max_iterations=50):
    """Minimise f by damped Newton's method from x = 0 and return (x*, f*, ||grad f(x*)||).

    Args:
        features (array, M x d), labels (array of M values in {-1, +1}): the data.
        mu (float): l2 weight, >= 0. With mu = 0 and separable data f has no
            minimiser, and the iteration stops at ``max_iterations`` with a warning.
        tolerance (float): stop once ||grad f|| <= tolerance, > 0. Then
            f(x) - f* <= tolerance^2 / (2 mu) by strong convexity.
        max_iterations (int): Newton steps at most, >= 1.
    """
    features, labels = _check_data(features, labels)
    mu = check_real("mu", mu, at_least=0.0)
    tolerance = check_real("tolerance", tolerance, greater_than=0.0)
    max_iterations = check_int("max_iterations", max_iterations, minimum=1)
    num_samples, dim = features.shape

    x = np.zeros(dim)
    value = _objective(x, features, labels, mu)
    for iteration in range(1, max_iterations + 1):
        gradient, probabilities = _gradient(x, features, labels, mu)
        gradient_norm = float(np.linalg.norm(gradient))
        logger.info("Newton step %d: f = %.12g, ||grad f|| = %.3g", iteration, value, gradient_norm)
        if gradient_norm <= tolerance:
            return x, value, gradient_norm

        hessian = _weighted_gram(features, probabilities * (1.0 - probabilities)) / num_samples
        hessian[np.diag_indices(dim)] += mu
        direction = np.linalg.solve(hessian, -gradient)
        x, value = _backtrack(x, value, gradient, direction, features, labels, mu)

    gradient_norm = float(np.linalg.norm(_gradient(x, features, labels, mu)[0]))
    logger.warning("Newton's method stopped after %d steps with ||grad f|| = %.3g > tolerance %.3g; "
                   "f* is approximate (with mu = 0 the data may be separable)",
                   max_iterations, gradient_norm, tolerance)
    return x, value, gradient_norm


@dataclasses.dataclass(frozen=True)
class LogisticConstants:
    """Constants of one logistic-regression data set, as Theorem 1 uses them.

    Attributes:
        smoothness (float): L = lambda_max(Z^T Z) / (4 M) + mu.
        pl_modulus (float): mu, the l2 weight.
        variance_at_start (float): sigma^2 at x1 = 0.
        variance_at_minimizer (float): sigma^2 at x*.
        minimum (float): f*, from Newton's method.
        initial_gap (float): f(0) - f* = log 2 - f*.
        gradient_norm_at_minimizer (float): ||grad f|| where Newton stopped.
    """

    smoothness: float
    pl_modulus: float
    variance_at_start: float
    variance_at_minimizer: float
    minimum: float
    initial_gap: float
    gradient_norm_at_minimizer: float

    @property
    def variance(self):
        """The larger of the two variance estimates, used as sigma^2."""
        return max(self.variance_at_start, self.variance_at_minimizer)

    def theorem(self, lr, b1, rho):
        """Return :class:`TheoremOne` for these constants and the given gamma, B1 and rho."""
        return TheoremOne(self.smoothness, self.pl_modulus, self.variance, lr, b1, rho)


def estimate_constants(problem: LogisticRegressionProblem, num_workers, **newton_options):
    """Estimate L, mu, sigma^2 and f* for ``problem`` over ``num_workers`` pooled shards.

    The pooled data take 8 N M d bytes: 400 MB for N = 10,
    M = 10^4, d = 500. Extra keyword arguments go to :func:`minimize_objective`.
    """
    num_workers = check_int("num_workers", num_workers, minimum=1)
    if problem.mu == 0.0:
        raise ValueError("problem.mu must be > 0 so that it is a PL modulus, got 0.0")

    shards = [problem.shard(rank) for rank in range(num_workers)]
    features = np.concatenate([z for z, _ in shards])
    labels = np.concatenate([b for _, b in shards])
    del shards
    logger.info("estimating constants over %d samples of dimension %d", *features.shape)

    smoothness = smoothness_constant(features, problem.mu)
    minimizer, minimum, gradient_norm = minimize_objective(features, labels, problem.mu, **newton_options)
    start = np.zeros(problem.dim)
    return LogisticConstants(
        smoothness=smoothness,
        pl_modulus=problem.mu,
        variance_at_start=gradient_variance(start, features, labels),
        variance_at_minimizer=gradient_variance(minimizer, features, labels),
        minimum=minimum,
        initial_gap=_objective(start, features, labels, problem.mu) - minimum,
        gradient_norm_at_minimizer=gradient_norm,
    )


def _objective(x, features, labels, mu):
    return logistic_loss(x, features, labels) + 0.5 * mu * float(x @ x)


def _gradient(x, features, labels, mu):
    """Return grad f(x) and every sample's s(-b_j z_j^T x)."""
    probabilities = _sigmoid(-labels * (features @ x))
    gradient = -(features.T @ (labels * probabilities)) / features.shape[0] + mu * x
    return gradient, probabilities


def _backtrack(x, value, gradient, direction, features, labels, mu):
    """Halve the Newton step until it decreases f enough (Armijo rule with c = 1e-4)."""
    slope = float(gradient @ direction)
    step = 1.0
    for _ in range(60):
        candidate = x + step * direction
        candidate_value = _objective(candidate, features, labels, mu)
        if candidate_value <= value + 1e-4 * step * slope:
            return candidate, candidate_value
        step *= 0.5
    # Rounding leaves no decrease to find: the point is as good as float64 allows.
    return x, value


def _sigmoid(values):
    # tanh form: no overflow for large |values|, unlike 1 / (1 + exp(-values)).
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def _weighted_gram(features, weights):
    """Return Z^T diag(weights) Z, block by block."""
    gram = np.zeros((features.shape[1], features.shape[1]))
    for start in range(0, features.shape[0], _BLOCK_ROWS):
        block = features[start:start + _BLOCK_ROWS]
        gram += block.T @ (block * weights[start:start + _BLOCK_ROWS, None])
    return gram


def _check_features(features):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or 0 in features.shape:
        raise ValueError(f"features must be a non-empty 2-D array (samples x dimension), "
                         f"got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features must be finite, got NaN or infinite entries")
    return features


def _check_data(features, labels):
    features = _check_features(features)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels must have shape ({features.shape[0]},) to match features, "
                         f"got {labels.shape}")
    if not np.all(np.abs(labels) == 1.0):
        raise ValueError(f"labels must be -1 or +1, got values {np.unique(labels)[:5]}")
    return features, labels


def _check_point(x, dim):
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (dim,):
        raise ValueError(f"x must have shape ({dim},) to match features, got {x.shape}")
    return x
