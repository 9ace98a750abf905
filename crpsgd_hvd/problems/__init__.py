"""Reference problems from the CR-PSGD paper, as NumPy data (no framework imports)."""

from crpsgd_hvd.problems.logistic_regression import LogisticRegressionProblem

__all__ = ["LogisticRegressionProblem"]
