r"""Algorithm 2 (CR-PSGD-Catalyst) around :class:`crpsgd_hvd.torch.CRPSGD`.

Each outer iteration k runs one call of Algorithm 1 on the proximal problem

.. math::

    h_\theta(x; y_{k-1}) = f(x) + \frac{\theta}{2} \lVert x - y_{k-1} \rVert^2,
    \qquad \nabla h_\theta = \nabla f(x) + \theta (x - y_{k-1})

and then moves the anchor to the result, y_k = x. The proximal term is
deterministic and the same on every worker, so it is added once per round,
after Horovod's allreduce has averaged the workers' gradients of f and before
the optimizer step. Added to each worker's gradient before the allreduce, it
would go through gradient compression and, with ``op=hvd.Sum``, count N times.
"""

import logging
import warnings
from typing import Optional

import horovod.torch as hvd
import torch

from crpsgd_hvd._validation import check_real
from crpsgd_hvd.catalyst import CatalystLoop, CatalystState, next_outer_iteration
from crpsgd_hvd.plan import CatalystPlan
from crpsgd_hvd.rounds import RoundState, next_round_batch
from crpsgd_hvd.torch.optimizer import CRPSGD

__all__ = ["CRPSGDCatalyst"]

logger = logging.getLogger(__name__)


class CRPSGDCatalyst(CRPSGD):
    r"""Run Algorithm 2: K inner calls of CR-PSGD on h_theta, each restarting the schedule at t = 1.

    Each round's update direction is

    .. math::

        g_t = \frac{1}{N} \sum_{i=1}^{N} \frac{1}{B_t} \sum_{j=1}^{B_t} \nabla F(x_t; \zeta_{t,i,j})
              + \theta (x_t - y_{k-1})

    Key: N workers; B_t the schedule's batch of round t of the current inner
    call; zeta_{t,i,j} the j-th sample of worker i; theta the proximal weight;
    y_{k-1} the anchor, a copy of the trainable parameters taken at the start
    (y_0) and at the end of every inner call. The wrapped optimizer applies
    g_t as usual, so momentum and weight decay act on the proximal gradient too.

    Drive it with :func:`crpsgd_hvd.torch.fit_catalyst`, or by hand::

        while (k := catalyst.next_outer()) is not None:
            while (spec := catalyst.next_round()) is not None:
                for size in spec.micro_batch_sizes:
                    catalyst.backward(loss_fn(draw(size)), size)   # f's loss only
                catalyst.step()
            catalyst.end_outer()                                     # y_k = x

    A checkpoint may be saved after any round. Loaded inside an outer
    iteration, it leaves that iteration open: continue it with
    :meth:`next_round` before the next :meth:`next_outer`, as
    :func:`crpsgd_hvd.torch.fit_catalyst` does.

    Args:
        model, optimizer, schedule: as for :class:`CRPSGD`.
        loop (CatalystLoop): K and the per-worker budget of each inner call,
            from :meth:`CatalystLoop.theorem` or :meth:`CatalystLoop.per_epoch`.
        theta (float): proximal weight theta, finite and >= 0. Theorem 2
            needs theta > L, the smoothness of f; see
            :func:`crpsgd_hvd.check_catalyst_conditions`. 0 turns the method
            into restarted CR-PSGD and warns.
        micro_batch_size (int): as for :class:`CRPSGD`.
        reset_optimizer_state (bool): clear the optimizer's state (momentum
            buffers, Adam moments) at the start of every outer iteration, so
            that each inner call is a fresh run of Algorithm 1 as Algorithm 2
            writes it. False carries the state across outer iterations.
            Learning-rate schedulers are not touched either way. Default: True.
        **kwargs: ``leftover``, ``compression``, ``op``, ``process_set``,
            ``gradient_predivide_factor``, ``broadcast``, ``root_rank`` as for
            :class:`CRPSGD`. ``leftover="final_round"`` makes each inner call
            spend its whole budget, e.g. exactly one epoch in epoch mode.

    Note:
        The anchor covers the trainable parameters only. Buffers, such as
        BatchNorm running statistics, are neither anchored nor averaged: they
        keep evolving on each worker from its own samples.

    Raises:
        ValueError: for an invalid argument; the message names it.
    """

    def __init__(self, model, optimizer, schedule, loop: CatalystLoop, *, theta, micro_batch_size,
                 reset_optimizer_state=True, **kwargs):
        if not isinstance(loop, CatalystLoop):
            raise ValueError(f"loop must be a crpsgd_hvd CatalystLoop, got {type(loop).__name__}")
        theta = check_real("theta", theta, at_least=0.0)
        # Set before CRPSGD.__init__, whose cross-rank check reads configuration().
        self.loop = loop
        self.theta = theta
        self.reset_optimizer_state = bool(reset_optimizer_state)
        super().__init__(model, optimizer, schedule, loop.inner_budget, micro_batch_size=micro_batch_size,
                         **kwargs)
        if theta == 0.0:
            warnings.warn("theta = 0 adds no proximal term, so CR-PSGD-Catalyst is CR-PSGD restarted "
                          "every outer iteration; use CRPSGD, or theta > L for Theorem 2", stacklevel=2)

        self.catalyst_plan = CatalystPlan(loop, self.plan)
        self.catalyst_state = CatalystState()
        self._trainable = [p for p in model.parameters() if p.requires_grad]
        # Taken after the broadcast in CRPSGD.__init__, so y_0 is the same on every rank.
        self.anchor = [p.detach().clone() for p in self._trainable]
        self._outer: Optional[int] = None
        if hvd.rank() == 0:
            logger.info("CR-PSGD-Catalyst plan: %d outer iterations (%s mode) x %d rounds = %d rounds, "
                        "theta = %g", loop.num_outer, loop.mode, self.catalyst_plan.rounds_per_outer,
                        self.catalyst_plan.num_rounds, theta)

    def next_outer(self) -> Optional[int]:
        """Start outer iteration k and return k, counted from 1, or None after the K-th.

        Restarts the batch schedule at t = 1 and, with
        ``reset_optimizer_state``, clears the optimizer's state.
        """
        if self._outer is not None:
            raise RuntimeError(f"outer iteration {self._outer} is still open: call end_outer() first")

        k = next_outer_iteration(self.loop, self.catalyst_state)
        if k is None:
            return None
        self.state = RoundState()
        if self.reset_optimizer_state:
            self.optimizer.state.clear()
        self._outer = k
        return k

    def next_round(self):
        if self._outer is None:
            raise RuntimeError("next_round() needs an open outer iteration: call next_outer() first")
        return super().next_round()

    def end_outer(self) -> int:
        """End the inner call once its budget is spent, move the anchor to the parameters, return k."""
        if self._outer is None:
            raise RuntimeError("end_outer() needs an open outer iteration: call next_outer() first")
        if self.round_open or next_round_batch(self.schedule, self.budget, self.state, self.leftover) is not None:
            raise RuntimeError(f"outer iteration {self._outer} has rounds left: run next_round() until "
                               "it returns None, then call end_outer()")

        with torch.no_grad():
            for anchor, param in zip(self.anchor, self._trainable):
                anchor.copy_(param)
        self.catalyst_state = self.catalyst_state.advance()
        k, self._outer = self._outer, None
        return k

    @property
    def outer_open(self):
        """True between :meth:`next_outer` and :meth:`end_outer`."""
        return self._outer is not None

    @property
    def current_outer(self) -> Optional[int]:
        """The open outer iteration k, counted from 1, or None between outer iterations."""
        return self._outer

    def configuration(self):
        """Return CRPSGD's shared settings plus the outer loop, theta and the optimizer-reset choice."""
        return {**super().configuration(), "catalyst_loop": self.loop.describe(), "theta": self.theta,
                "reset_optimizer_state": self.reset_optimizer_state}

    def after_allreduce(self):
        """Add theta (x - y_{k-1}) to the averaged gradient of every trainable parameter."""
        if self.theta == 0.0:
            return
        with torch.no_grad():
            for param, anchor in zip(self._trainable, self.anchor):
                proximal = (param - anchor) * self.theta
                if param.grad is None:
                    param.grad = proximal
                else:
                    param.grad.add_(proximal)

    def state_dict(self):
        """Return everything needed to continue after any completed round, inside an outer iteration or not.

        Adds to CRPSGD's state the outer-loop position (completed outer
        iterations and the open one, if any) and the anchor. Inside an outer
        iteration CRPSGD's round index is the inner call's.
        """
        return {**super().state_dict(), "catalyst_loop": self.loop.describe(), "theta": self.theta,
                "catalyst_state": self.catalyst_state.state_dict(), "open_outer": self._outer,
                "anchor": [anchor.clone() for anchor in self.anchor]}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` taken with the same loop, theta, schedule and budget."""
        if state["catalyst_loop"] != self.loop.describe() or state["theta"] != self.theta:
            raise ValueError(f"state was saved for loop {state['catalyst_loop']} and theta {state['theta']}, "
                             f"this run has {self.loop.describe()} and {self.theta}")
        anchor = state["anchor"]
        shapes = [tuple(a.shape) for a in self.anchor]
        if [tuple(a.shape) for a in anchor] != shapes:
            raise ValueError(f"state['anchor'] must hold tensors of shapes {shapes}, got "
                             f"{[tuple(a.shape) for a in anchor]}")

        catalyst_state = CatalystState.from_state_dict(state["catalyst_state"])
        # A state without "open_outer" was saved between outer iterations.
        open_outer = state.get("open_outer")
        following = next_outer_iteration(self.loop, catalyst_state)
        if open_outer not in (None, following):
            raise ValueError(f"state['open_outer'] must be None or {following}, the outer iteration after the "
                             f"saved progress ({catalyst_state.outer} completed), got {open_outer!r}")

        super().load_state_dict(state)
        self.catalyst_state = catalyst_state
        self._outer = open_outer
        with torch.no_grad():
            for mine, saved in zip(self.anchor, anchor):
                mine.copy_(saved)
