"""Reference problems from the CR-PSGD paper, as NumPy data (no framework imports)."""

from crpsgd_hvd.problems.logistic_constants import LogisticConstants, estimate_constants
from crpsgd_hvd.problems.logistic_regression import LogisticRegressionProblem, logistic_loss

__all__ = ["LogisticConstants", "LogisticRegressionProblem", "estimate_constants", "logistic_loss"]
