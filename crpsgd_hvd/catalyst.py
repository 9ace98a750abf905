r"""The outer loop of Algorithm 2 (CR-PSGD-Catalyst) as plain logic and state.

Algorithm 2 minimises f by a sequence of proximal problems

.. math::

    h_\theta(x; y) = f(x) + \frac{\theta}{2} \lVert x - y \rVert^2,
    \qquad y_k = \text{CR-PSGD}\left(h_\theta(\cdot; y_{k-1}), N, T_{\text{in}}, y_{k-1}\right),
    \quad k = 1, \dots, K

Key: f the training objective; theta > 0 the proximal weight; y_k the anchor
after outer iteration k (y_0 is the start); N workers; T_in the per-worker
gradient budget of one inner call of Algorithm 1; K the number of outer
iterations. Every inner call restarts its batch schedule at t = 1.

Two ways to choose K and T_in (:class:`CatalystLoop`):

* ``"theorem"``: K = floor(sqrt(N T)) and T_in = floor(sqrt(T / N)), as in
  Theorem 2 of the CR-PSGD paper, for a per-worker total budget T;
* ``"epoch"``: each inner call spends one epoch of the worker's shard
  (T_in = shard size) and K is given, as in the paper's ResNet20 run, which
  also stops the batch growing at B_max = 512 (``GeometricSchedule(b_max=...)``).
"""

import dataclasses
import math
from typing import Optional

from crpsgd_hvd._validation import check_choice, check_int

__all__ = ["CATALYST_MODES", "CatalystLoop", "CatalystState", "next_outer_iteration"]

CATALYST_MODES = ("theorem", "epoch")


@dataclasses.dataclass(frozen=True)
class CatalystLoop:
    """The shape of Algorithm 2's outer loop.

    Build it with :meth:`theorem` or :meth:`per_epoch` rather than directly.

    Attributes:
        mode (str): ``"theorem"`` or ``"epoch"``.
        num_outer (int): K, outer iterations, >= 1.
        inner_budget (int): T_in, stochastic gradients per worker in each inner
            call of Algorithm 1, >= 1.
    """

    mode: str
    num_outer: int
    inner_budget: int

    def __post_init__(self):
        check_choice("mode", self.mode, CATALYST_MODES)
        object.__setattr__(self, "num_outer", check_int("num_outer", self.num_outer, minimum=1))
        object.__setattr__(self, "inner_budget", check_int("inner_budget", self.inner_budget, minimum=1))

    @classmethod
    def theorem(cls, budget, num_workers):
        """Return Theorem 2's loop: K = floor(sqrt(N T)) calls of floor(sqrt(T / N)) gradients.

        Both floors are computed in exact integer arithmetic
        (floor(sqrt(T / N)) = isqrt(T // N)), so every rank gets the same K.
        K * T_in <= T, and the rest of the budget is not used.

        Args:
            budget (int): T, the per-worker total budget, >= N.
            num_workers (int): N >= 1.

        Raises:
            ValueError: if T < N, which leaves each inner call no gradient.
        """
        budget = check_int("budget", budget, minimum=1)
        num_workers = check_int("num_workers", num_workers, minimum=1)
        if budget < num_workers:
            raise ValueError(f"budget must be >= num_workers = {num_workers} so that each inner call "
                             f"gets floor(sqrt(T / N)) >= 1 gradients, got {budget!r}")

        return cls("theorem", math.isqrt(num_workers * budget), math.isqrt(budget // num_workers))

    @classmethod
    def per_epoch(cls, shard_size, num_outer):
        """Return the practical loop: ``num_outer`` inner calls of one epoch of the shard each.

        Args:
            shard_size (int): samples in this worker's shard, >= 1; every
                worker must have the same count, because all workers take the
                same batch in each round.
            num_outer (int): K, the number of epochs, >= 1.
        """
        return cls("epoch", check_int("num_outer", num_outer, minimum=1),
                   check_int("shard_size", shard_size, minimum=1))

    @property
    def total_budget(self):
        """K * T_in, the per-worker gradients that the inner calls may spend together."""
        return self.num_outer * self.inner_budget

    def describe(self):
        """Return the loop's parameters as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CatalystState:
    """Progress through the outer loop.

    Attributes:
        outer (int): outer iterations completed, so the anchor is y_outer.
    """

    outer: int = 0

    def advance(self):
        """Return the state after one more completed inner call."""
        return CatalystState(self.outer + 1)

    def state_dict(self):
        return {"outer": self.outer}

    @classmethod
    def from_state_dict(cls, state):
        return cls(outer=check_int("state['outer']", state["outer"], minimum=0))


def next_outer_iteration(loop: CatalystLoop, state: CatalystState) -> Optional[int]:
    """Return k, the 1-based index of the next outer iteration, or None after the K-th."""
    k = state.outer + 1
    return k if k <= loop.num_outer else None
