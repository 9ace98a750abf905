r"""Check the step-size conditions of Theorem 2 (CR-PSGD-Catalyst) for a given smoothness L.

Theorem 2 of the CR-PSGD paper bounds the average of E||grad f(y_k)||^2 over
the outer iterations by O(1 / sqrt(N T)) when

.. math::

    \theta > L, \qquad B_1 \ge 2, \qquad \gamma < \frac{1}{\theta + L}, \qquad
    1 < \rho < \frac{1}{1 - \nu}, \qquad
    \nu = \tfrac{1}{2} \gamma (\theta - L) \bigl(1 - (\theta + L) \gamma\bigr)

Key: L the smoothness constant of f; theta the proximal weight; gamma the
learning rate; B1 the first per-worker batch; rho the batch growth factor.
The proximal problem h_theta is (theta - L)-strongly convex and
(theta + L)-smooth, which is where these terms come from.

L is rarely known for a deep network, so the check is a helper, not a gate:
the training classes never call it.
"""

import dataclasses
import math
from typing import Optional, Tuple

from crpsgd_hvd._validation import check_int, check_real

__all__ = ["CatalystCondition", "ConditionReport", "check_catalyst_conditions"]


@dataclasses.dataclass(frozen=True)
class CatalystCondition:
    """One condition of the theorem, evaluated.

    Attributes:
        rule (str): the condition, e.g. ``"theta > L"``.
        holds (bool): whether the values satisfy it.
        margin (float): the signed slack, by how much the condition holds:
            the bound minus the value for an upper bound, the value minus the
            bound for a lower one. A strict condition holds when it is > 0,
            ``B1 >= 2`` when it is >= 0. ``inf`` when the bound is infinite.
        detail (str): the values compared, in words.
    """

    rule: str
    holds: bool
    margin: float
    detail: str


@dataclasses.dataclass(frozen=True)
class ConditionReport:
    """The evaluated conditions and the quantities derived for them.

    Attributes:
        conditions (tuple of CatalystCondition): in the theorem's order.
        nu (float): ½ gamma (theta - L) (1 - (theta + L) gamma).
        rho_max (float): 1 / (1 - nu), the bound on rho; ``inf`` when nu >= 1.
    """

    conditions: Tuple[CatalystCondition, ...]
    nu: float
    rho_max: float

    @property
    def holds(self):
        """True when every condition holds."""
        return all(condition.holds for condition in self.conditions)

    @property
    def violations(self):
        return tuple(condition for condition in self.conditions if not condition.holds)

    def format(self):
        """Return one line per condition: ok or VIOLATED, the rule and the values."""
        return "\n".join(f"{'ok' if c.holds else 'VIOLATED':<8} {c.rule:<22} {c.detail}"
                         for c in self.conditions)

    def raise_if_violated(self):
        """Raise ValueError listing every violated condition; do nothing when all hold."""
        violations = self.violations
        if violations:
            listed = "; ".join(f"{c.rule} fails: {c.detail}" for c in violations)
            raise ValueError(f"Theorem 2's conditions are not met ({len(violations)} of "
                             f"{len(self.conditions)} fail): {listed}")


def check_catalyst_conditions(smoothness, theta, gamma, rho, b1: Optional[int] = None,
                              raise_on_violation=False) -> ConditionReport:
    """Evaluate Theorem 2's conditions for the given constants.

    Args:
        smoothness (float): L, the smoothness constant of f, finite and > 0.
        theta (float): proximal weight, finite and >= 0.
        gamma (float): learning rate, finite and > 0.
        rho (float): batch growth factor, finite and > 0.
        b1 (int, optional): first per-worker batch, >= 1; when given, the
            theorem's B1 >= 2 is checked too.
        raise_on_violation (bool): raise instead of returning a report with
            violations. Default: False.

    Returns:
        ConditionReport: each condition with whether it holds and its margin.

    Raises:
        ValueError: if an argument is outside its range (the message names
        it), or, with ``raise_on_violation``, listing every violated condition.
    """
    smoothness = check_real("smoothness", smoothness, greater_than=0.0)
    theta = check_real("theta", theta, at_least=0.0)
    gamma = check_real("gamma", gamma, greater_than=0.0)
    rho = check_real("rho", rho, greater_than=0.0)
    b1 = None if b1 is None else check_int("b1", b1, minimum=1)

    nu = 0.5 * gamma * (theta - smoothness) * (1.0 - (theta + smoothness) * gamma)
    rho_max = math.inf if nu >= 1.0 else 1.0 / (1.0 - nu)
    gamma_max = 1.0 / (theta + smoothness)
    conditions = [
        CatalystCondition("theta > L", theta > smoothness, theta - smoothness,
                  f"theta = {theta:.6g}, L = {smoothness:.6g}"),
        CatalystCondition("gamma < 1/(theta + L)", gamma < gamma_max, gamma_max - gamma,
                  f"gamma = {gamma:.6g}, 1/(theta + L) = {gamma_max:.6g}"),
        CatalystCondition("rho > 1", rho > 1.0, rho - 1.0, f"rho = {rho:.6g}"),
        CatalystCondition("rho < 1/(1 - nu)", rho < rho_max, rho_max - rho,
                  f"rho = {rho:.6g}, 1/(1 - nu) = {rho_max:.6g} with nu = {nu:.6g}"),
    ]
    if b1 is not None:
        conditions.insert(1, CatalystCondition("B1 >= 2", b1 >= 2, float(b1 - 2),
                                       f"B1 = {b1}"))
    report = ConditionReport(tuple(conditions), nu, rho_max)

    if raise_on_violation:
        report.raise_if_violated()
    return report
