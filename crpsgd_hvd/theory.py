r"""Theorem 1 of the CR-PSGD paper: its constants, its bound and its conditions.

For a function f that is L-smooth, satisfies the Polyak-Lojasiewicz (PL)
condition with modulus mu, and whose single-sample stochastic gradients have
variance at most sigma^2, Algorithm 1 with N workers, a per-worker budget of
T stochastic gradients, learning rate gamma and batches
B_t = floor(rho^(t-1) B1) satisfies

.. math::

    \mathbb{E}[f(x) - f^*] \le \frac{c_1 (f(x_1) - f^*)}{T^{1+\delta}} + \frac{c_2}{N T}

with

.. math::

    \nu = \tfrac12 \gamma \mu (1 - L\gamma), \qquad
    \delta = \log_\rho \frac{1}{1-\nu} - 1, \qquad
    c_1 = \frac{1}{1-\nu} \left(\frac{B_1}{\rho-1}\right)^{1+\delta}, \qquad
    c_2 = \frac{\rho^2 \gamma (2 - L\gamma) \sigma^2}{(1 - (1-\nu)\rho)(\rho-1)}

provided that B1 >= 2, gamma < 1/L and 1 < rho < 1/(1 - nu). Choosing
rho < sqrt(1/(1 - nu)) makes delta > 1, so the first term falls faster than
1/T^2 and the second, 1/(NT), dominates for large T.

Source: Yu and Jin, "On the computation and communication complexity of
parallel SGD with dynamic batch sizes for stochastic non-convex
optimization", ICML 2019, Theorem 1. The constant c2 is used as printed
there; this module does not re-derive it.

The module is pure Python: it imports neither NumPy nor any framework.
"""

import dataclasses
import math
from typing import Tuple

from crpsgd_hvd._validation import check_int, check_real

__all__ = ["Condition", "TheoremOne"]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One inequality of the theorem, evaluated.

    Attributes:
        name (str): the inequality, e.g. ``"gamma < 1/L"``.
        quantity (str): what ``value`` and ``limit`` measure, e.g. ``"gamma"``.
        value (float): the quantity for these parameters.
        limit (float): the bound it must stay under (or reach, for ``>=``).
        holds (bool): whether the inequality holds.
        required (bool): False for the note rho < sqrt(1/(1 - nu)), which
            only makes delta > 1 and is not needed for the bound.
    """

    name: str
    quantity: str
    value: float
    limit: float
    holds: bool
    required: bool = True

    @property
    def ratio(self):
        """value / limit: how far inside (below 1 for ``<``) or outside the condition is.

        ``inf`` where the limit is 0 or negative, which no positive value can
        stay under.
        """
        if self.limit <= 0.0:
            return math.inf
        return self.value / self.limit

    def describe(self):
        """Return one line: the inequality, both sides, their ratio and the verdict."""
        if self.holds:
            verdict = "holds"
        elif self.required:
            verdict = "fails"
        else:
            verdict = "does not hold (optional)"
        return (f"{self.name}: {self.quantity} = {self.value:.6g}, limit {self.limit:.6g}, "
                f"ratio {self.ratio:.4g}: {verdict}")


# What to change for each failed condition. nu = (1/2) lr mu (1 - L lr) peaks at
# lr = 1/(2L), so moving lr towards that value widens the range of rho.
FIXES = {
    "B1 >= 2": "use b1 >= 2",
    "gamma < 1/L": "lower lr below 1/L",
    "1 < rho < 1/(1 - nu)": "bring rho closer to 1, below 1/(1 - nu), or move lr towards 1/(2L), "
                            "where nu is largest",
}


@dataclasses.dataclass(frozen=True)
class TheoremOne:
    """The parameters of Theorem 1, with its constants, conditions and bound.

    Args:
        smoothness (float): L, the gradient's Lipschitz constant, > 0.
        pl_modulus (float): mu, the PL modulus, > 0 and <= L (every L-smooth
            PL function has mu <= L).
        variance (float): sigma^2, the bound on the variance of one sample's
            stochastic gradient, >= 0.
        lr (float): gamma, the learning rate, > 0.
        b1 (int): B1, the first per-worker batch, >= 1 (the theorem needs >= 2).
        rho (float): the batch growth factor, > 1.

    Raises:
        ValueError: for a value outside its range; the message names it.
    """

    smoothness: float
    pl_modulus: float
    variance: float
    lr: float
    b1: int
    rho: float

    def __post_init__(self):
        smoothness = check_real("smoothness", self.smoothness, greater_than=0.0)
        pl_modulus = check_real("pl_modulus", self.pl_modulus, greater_than=0.0)
        if pl_modulus > smoothness:
            raise ValueError(f"pl_modulus must be <= smoothness = {smoothness!r} because every "
                             f"L-smooth PL function has mu <= L, got {self.pl_modulus!r}")

        object.__setattr__(self, "smoothness", smoothness)
        object.__setattr__(self, "pl_modulus", pl_modulus)
        object.__setattr__(self, "variance", check_real("variance", self.variance, at_least=0.0))
        object.__setattr__(self, "lr", check_real("lr", self.lr, greater_than=0.0))
        object.__setattr__(self, "b1", check_int("b1", self.b1, minimum=1))
        object.__setattr__(self, "rho", check_real("rho", self.rho, greater_than=1.0))

    @property
    def nu(self):
        """nu = (1/2) gamma mu (1 - L gamma); in (0, 1/8] when gamma < 1/L, <= 0 otherwise."""
        return 0.5 * self.lr * self.pl_modulus * (1.0 - self.smoothness * self.lr)

    @property
    def delta(self):
        """delta = log_rho(1/(1 - nu)) - 1; below -1 when nu < 0."""
        return -math.log1p(-self.nu) / math.log(self.rho) - 1.0

    @property
    def c1(self):
        """c1 = (1/(1 - nu)) (B1/(rho - 1))^(1 + delta); ``inf`` where it exceeds the float range."""
        return _exp_or_inf(self._log_c1())

    @property
    def c2(self):
        """c2 = rho^2 gamma (2 - L gamma) sigma^2 / ((1 - (1 - nu) rho)(rho - 1)), as printed.

        Negative or infinite when rho >= 1/(1 - nu), where the bound does not apply.
        """
        denominator = (1.0 - (1.0 - self.nu) * self.rho) * (self.rho - 1.0)
        numerator = self.rho ** 2 * self.lr * (2.0 - self.smoothness * self.lr) * self.variance
        if denominator == 0.0:
            return math.inf
        return numerator / denominator

    @property
    def max_rho(self):
        """1/(1 - nu), the supremum of the growth factors the theorem allows (<= 1 if gamma >= 1/L)."""
        return 1.0 / (1.0 - self.nu)

    def conditions(self) -> Tuple[Condition, ...]:
        """Return the theorem's conditions and the optional one for delta > 1, evaluated.

        The growth-factor conditions compare rho - 1 with 1/(1 - nu) - 1,
        because the allowed rho is often within 1e-6 of 1 and the ratio of
        the excesses over 1 shows how far off it is.
        """
        max_lr = 1.0 / self.smoothness
        rho_excess = self.rho - 1.0
        max_excess = self.max_rho - 1.0
        fast_excess = math.sqrt(self.max_rho) - 1.0
        return (
            Condition("B1 >= 2", "B1", float(self.b1), 2.0, self.b1 >= 2),
            Condition("gamma < 1/L", "gamma", self.lr, max_lr, self.lr < max_lr),
            Condition("1 < rho < 1/(1 - nu)", "rho - 1", rho_excess, max_excess, rho_excess < max_excess),
            Condition("rho < sqrt(1/(1 - nu)), which gives delta > 1", "rho - 1", rho_excess,
                      fast_excess, rho_excess < fast_excess, required=False),
        )

    def failed_conditions(self):
        """Return the required conditions that do not hold."""
        return tuple(c for c in self.conditions() if c.required and not c.holds)

    @property
    def holds(self):
        """True when every required condition holds, so :meth:`bound` applies."""
        return not self.failed_conditions()

    def bound(self, budget, num_workers, initial_gap):
        r"""Return c1 (f(x1) - f*) / T^(1+delta) + c2 / (N T).

        Args:
            budget (int): T, stochastic gradients per worker, >= 1.
            num_workers (int): N, >= 1.
            initial_gap (float): f(x1) - f*, >= 0.

        Raises:
            ValueError: for an invalid argument, or when a required
                condition fails, because the formula then bounds nothing
                (its terms can be negative or grow with T). Use
                :meth:`bound_terms` to evaluate the formula regardless.
        """
        failed = self.failed_conditions()
        if failed:
            advice = [FIXES[c.name] for c in failed if c.name in FIXES]
            raise ValueError("Theorem 1 does not apply because its conditions fail: "
                             + "; ".join(c.describe() for c in failed)
                             + ". To meet them: " + "; ".join(advice) + ".")
        return sum(self.bound_terms(budget, num_workers, initial_gap))

    def bound_terms(self, budget, num_workers, initial_gap):
        """Return the two terms of the bound, (c1 gap / T^(1+delta), c2 / (N T)), without checking conditions.

        Arguments as in :meth:`bound`.
        """
        budget = check_int("budget", budget, minimum=1)
        num_workers = check_int("num_workers", num_workers, minimum=1)
        initial_gap = check_real("initial_gap", initial_gap, at_least=0.0)

        first = 0.0
        if initial_gap > 0.0:
            # In logarithms, because c1 and T^(1+delta) each overflow for rho near 1.
            first = _exp_or_inf(self._log_c1() + math.log(initial_gap) - (1.0 + self.delta) * math.log(budget))
        second = self.c2 / (num_workers * budget)
        return first, second

    def _log_c1(self):
        return (1.0 + self.delta) * math.log(self.b1 / (self.rho - 1.0)) - math.log1p(-self.nu)

    def describe(self):
        """Return the constants and the conditions as text lines."""
        lines = [f"L = {self.smoothness:.6g}, mu = {self.pl_modulus:.6g}, sigma^2 = {self.variance:.6g}, "
                 f"gamma = {self.lr:.6g}, B1 = {self.b1}, rho = {self.rho:.6g}",
                 f"nu = {self.nu:.6g}, delta = {self.delta:.6g}, c1 = {self.c1:.6g}, c2 = {self.c2:.6g}"]
        lines.extend(condition.describe() for condition in self.conditions())
        return lines


def _exp_or_inf(exponent):
    try:
        return math.exp(exponent)
    except OverflowError:
        return math.inf
