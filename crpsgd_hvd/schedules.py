"""Per-worker batch schedules: which batch size each communication round uses.

A schedule is a pure function of the round index ``t = 1, 2, ...``. Each
schedule gives three closed forms, and the tests hold every one of them
against the round-by-round loop of Algorithm 1 (CR-PSGD):

* ``batch(t)``: B_t, the per-worker batch of round t;
* ``samples_through(t)``: S(t) = B_1 + ... + B_t, the per-worker samples
  (stochastic gradients) consumed by the first t rounds;
* ``rounds_for_budget(T)``: R(T) = max{t : S(t) <= T}, the number of rounds
  that the loop ``while B_1 + ... + B_t <= T`` makes for a per-worker budget T.

``iter_batches()`` is the incremental form, B_{t+1} computed from round t,
and exists so that callers who stream rounds never need the index.
"""

import abc
import dataclasses
import fractions
import math
from typing import Iterator, Optional

from crpsgd_hvd._validation import check_int, check_real

__all__ = ["BatchSchedule", "ConstantSchedule", "GeometricSchedule"]


class BatchSchedule(abc.ABC):
    """Base class of per-worker batch schedules (round index t starts at 1)."""

    @property
    @abc.abstractmethod
    def first_batch(self) -> int:
        """B_1, the batch of the first round."""

    @abc.abstractmethod
    def batch(self, t: int) -> int:
        """Return B_t, the per-worker batch of round ``t`` (t >= 1)."""

    @abc.abstractmethod
    def samples_through(self, t: int) -> int:
        """Return S(t) = B_1 + ... + B_t; S(0) = 0."""

    @abc.abstractmethod
    def rounds_for_budget(self, budget: int) -> int:
        """Return R(T) = max{t >= 0 : S(t) <= T} for a per-worker budget T."""

    def iter_batches(self) -> Iterator[int]:
        """Yield B_1, B_2, ... forever."""
        t = 1
        while True:
            yield self.batch(t)
            t += 1

    def describe(self) -> dict:
        """Return the schedule's parameters as a JSON-ready dict."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {"kind": type(self).__name__, **fields}


@dataclasses.dataclass(frozen=True)
class ConstantSchedule(BatchSchedule):
    """B_t = B for every round: classical parallel SGD with per-worker batch B.

    Args:
        batch_size (int): per-worker batch B >= 1.
    """

    batch_size: int

    def __post_init__(self):
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, minimum=1))

    @property
    def first_batch(self) -> int:
        return self.batch_size

    def batch(self, t):
        t = check_int("t", t, minimum=1)
        return self.batch_size

    def samples_through(self, t):
        t = check_int("t", t, minimum=0)
        return t * self.batch_size

    def rounds_for_budget(self, budget):
        budget = check_int("budget", budget, minimum=0)
        return budget // self.batch_size


@dataclasses.dataclass(frozen=True)
class GeometricSchedule(BatchSchedule):
    r"""B_t = min(floor(rho^(t-1) * B1), B_max): the growing batch of CR-PSGD.

    .. math::

        B_t = \min\left(\left\lfloor \rho^{t-1} B_1 \right\rfloor,\ B_{\max}\right)

    Key: t is the round index (1-based), B1 the first per-worker batch, rho > 1
    the growth factor and B_max an optional cap.

    The CR-PSGD paper writes the bracket around rho^(t-1) * B1 with a floor
    sign but defines it in words as "the largest integer no less than z"; this
    library uses the floor. The floor is computed exactly in rational
    arithmetic on the decimal value that ``rho`` prints as (``1.1`` means
    11/10), so every rank and every platform derives the same batches, even
    where rho^(t-1) * B1 is an integer that binary floating point would round
    down.

    Until the cap is reached the rounds grow like log_rho(1 + T (rho - 1) / B1);
    after it they grow linearly in T again, as in classical parallel SGD with
    batch B_max.

    Args:
        b1 (int): first per-worker batch B1 >= 1. Theorem 1 of the paper
            assumes B1 >= 2.
        rho (float): growth factor, finite and > 1.
        b_max (int, optional): cap on B_t, >= B1. Default: no cap.

    Raises:
        ValueError: if an argument breaks its rule; the message names it.
    """

    b1: int
    rho: float
    b_max: Optional[int] = None

    def __post_init__(self):
        b1 = check_int("b1", self.b1, minimum=1)
        rho = check_real("rho", self.rho, greater_than=1.0)
        b_max = None if self.b_max is None else check_int("b_max", self.b_max, minimum=1)
        if b_max is not None and b_max < b1:
            raise ValueError(f"b_max must be >= b1 = {b1}, got {self.b_max!r}")

        object.__setattr__(self, "b1", b1)
        object.__setattr__(self, "rho", rho)
        object.__setattr__(self, "b_max", b_max)
        # Exact rational rho and the uncapped prefix sums, extended on demand.
        object.__setattr__(self, "_rho_exact", fractions.Fraction(repr(rho)))
        object.__setattr__(self, "_prefix", [0])
        object.__setattr__(self, "_cap_round", self._find_cap_round())

    @property
    def first_batch(self) -> int:
        return self.b1

    @property
    def cap_round(self) -> Optional[int]:
        """The first round t whose uncapped batch reaches B_max, or None without a cap."""
        return self._cap_round

    def _find_cap_round(self):
        if self.b_max is None:
            return None
        # Estimate from logarithms, then settle the floor exactly.
        t = 1 + max(0, math.ceil(math.log(self.b_max / self.b1) / math.log(self.rho)))
        while t > 1 and self._uncapped(t - 1) >= self.b_max:
            t -= 1
        while self._uncapped(t) < self.b_max:
            t += 1
        return t

    def batch(self, t):
        t = check_int("t", t, minimum=1)
        cap_round = self.cap_round
        if cap_round is not None and t >= cap_round:
            return self.b_max
        return self._uncapped(t)

    def samples_through(self, t):
        t = check_int("t", t, minimum=0)
        cap_round = self.cap_round
        if cap_round is None or t < cap_round:
            return self._uncapped_prefix(t)
        return self._uncapped_prefix(cap_round - 1) + (t - cap_round + 1) * self.b_max

    def rounds_for_budget(self, budget):
        budget = check_int("budget", budget, minimum=0)

        cap_round = self.cap_round
        if cap_round is not None:
            before_cap = self._uncapped_prefix(cap_round - 1)
            if budget >= before_cap:
                return cap_round - 1 + (budget - before_cap) // self.b_max

        # S(t) <= B1 (rho^t - 1) / (rho - 1), so this t is a lower bound on R(T).
        # The floors make S(t) smaller by less than t, so few steps remain.
        estimate = math.log1p(budget * (self.rho - 1.0) / self.b1) / math.log(self.rho)
        t = max(0, math.floor(estimate) - 1)
        while self._uncapped_prefix(t) > budget:
            t -= 1
        while self._uncapped_prefix(t + 1) <= budget:
            t += 1
        return t

    def _uncapped(self, t):
        try:
            approx = self.b1 * self.rho ** (t - 1)
        except OverflowError:
            approx = math.inf
        # The float power and the float rho each err by about one part in 1e16
        # per factor, so the relative error stays below (t + 16) * 1e-15. Away
        # from an integer by more than that, the float floor is exact; closer,
        # only rational arithmetic decides which side of the integer we are on.
        tolerance = approx * (t + 16) * 1e-15
        if math.isfinite(approx) and abs(approx - round(approx)) > tolerance:
            return math.floor(approx)
        exact = self._rho_exact ** (t - 1) * self.b1
        return exact.numerator // exact.denominator

    def _uncapped_prefix(self, t):
        prefix = self._prefix
        while len(prefix) <= t:
            prefix.append(prefix[-1] + self._uncapped(len(prefix)))
        return prefix[t]

    def describe(self):
        return {"kind": "GeometricSchedule", "b1": self.b1, "rho": self.rho, "b_max": self.b_max}
