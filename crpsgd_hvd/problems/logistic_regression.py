r"""The distributed logistic-regression problem of the CR-PSGD paper's first experiment.

.. math::

    f(x) = \frac{1}{N} \sum_{i=1}^{N} \frac{1}{M} \sum_{j=1}^{M}
           \log\left(1 + e^{-b_{ij} z_{ij}^\top x}\right) + \frac{\mu}{2} \lVert x \rVert^2

Key: N workers, each with M samples (z_ij, b_ij); z_ij ~ Normal(1, 4 I) in
R^d; b_ij = sign(z_ij^T x_true + xi) with x_true ~ Normal(0, I) shared by all
workers and xi ~ Normal(0, 1); mu the l2 weight. The paper prints the
exponent without its minus sign; the usual sign is meant and used here.

Each worker generates its own shard from ``(seed, rank)``, so no data moves
between workers, and any process can rebuild any shard for reference checks.
"""

import dataclasses

import numpy as np

from crpsgd_hvd._validation import check_int, check_real

__all__ = ["LogisticRegressionProblem", "logistic_loss"]


def logistic_loss(x, features, labels):
    """Return (1/M) sum_j log(1 + exp(-b_j z_j^T x)) for features z (M x d) and labels b."""
    margins = -labels * (features @ x)
    return float(np.mean(np.logaddexp(0.0, margins)))


@dataclasses.dataclass(frozen=True)
class LogisticRegressionProblem:
    """Problem sizes and seed; the paper uses d = 500, M = 10^4, mu = 10^-3.

    Args:
        dim (int): d, feature dimension, >= 1.
        samples_per_worker (int): M, samples in each worker's shard, >= 1.
        mu (float): l2 weight, >= 0.
        seed (int): base seed, >= 0.
    """

    dim: int = 500
    samples_per_worker: int = 10_000
    mu: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "dim", check_int("dim", self.dim, minimum=1))
        object.__setattr__(self, "samples_per_worker",
                           check_int("samples_per_worker", self.samples_per_worker, minimum=1))
        object.__setattr__(self, "mu", check_real("mu", self.mu, at_least=0.0))
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0))

    def true_weights(self):
        """Return x_true, the same on every worker."""
        return np.random.default_rng([self.seed, 0]).standard_normal(self.dim)

    def shard(self, rank):
        """Return worker ``rank``'s features z (M x d, float64) and labels b in {-1, +1}."""
        rank = check_int("rank", rank, minimum=0)
        rng = np.random.default_rng([self.seed, 1, rank])
        features = 1.0 + 2.0 * rng.standard_normal((self.samples_per_worker, self.dim))
        noise = rng.standard_normal(self.samples_per_worker)
        labels = np.where(features @ self.true_weights() + noise >= 0.0, 1.0, -1.0)
        return features, labels

    def local_loss(self, x, features, labels):
        """Return the mean logistic loss of one shard at x, without the l2 term."""
        return logistic_loss(x, features, labels)

    def regularizer(self, x):
        """Return (mu / 2) ||x||^2."""
        return 0.5 * self.mu * float(x @ x)

    def objective(self, x, num_workers):
        """Return f(x) over all ``num_workers`` shards, rebuilt in this process."""
        losses = [self.local_loss(x, *self.shard(rank)) for rank in range(num_workers)]
        return float(np.mean(losses)) + self.regularizer(x)
