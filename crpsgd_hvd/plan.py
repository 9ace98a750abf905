"""A training plan computed before the first round: batches, samples and bytes per round.

The plan comes from the schedule's closed forms alone, so it can be printed
before a job starts (``crpsgd-hvd plan``) and compared afterwards, round for
round, with what the training loop did. :class:`Plan` covers one run of
Algorithm 1; :class:`CatalystPlan` covers Algorithm 2, whose inner calls all
repeat the same Algorithm 1 plan because each restarts the schedule at t = 1.
"""

import dataclasses
import json
import warnings
from typing import Tuple

from crpsgd_hvd._validation import check_choice, check_int
from crpsgd_hvd.accounting import ring_allreduce_bytes
from crpsgd_hvd.catalyst import CatalystLoop
from crpsgd_hvd.rounds import LEFTOVER_POLICIES, planned_batches
from crpsgd_hvd.schedules import BatchSchedule, ConstantSchedule

__all__ = ["CatalystPlan", "CommunicationSavingWarning", "Plan", "RoundPlan", "make_catalyst_plan", "make_plan",
           "warn_if_no_saving"]

# Below this fraction of rounds saved against classical parallel SGD at batch
# B1, a growing batch costs convergence per gradient for little gain.
MIN_USEFUL_SAVING = 0.10


class CommunicationSavingWarning(UserWarning):
    """A legal schedule that saves (almost) no communication rounds."""


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """One planned round.

    Attributes:
        round (int): t, 1-based.
        batch_per_worker (int): B_t.
        global_batch (int): N * B_t, the samples averaged by the round's allreduce.
        samples_per_worker (int): S(t), cumulative per-worker samples through round t.
        bytes_per_worker (int): bytes each worker sends in the round's allreduce.
    """

    round: int
    batch_per_worker: int
    global_batch: int
    samples_per_worker: int
    bytes_per_worker: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """The whole plan and its totals (see :func:`make_plan`)."""

    schedule: BatchSchedule
    budget: int
    num_workers: int
    num_params: int
    bytes_per_param: int
    leftover: str
    rounds: Tuple[RoundPlan, ...]

    @property
    def num_rounds(self):
        return len(self.rounds)

    @property
    def samples_per_worker(self):
        """Samples each worker consumes; at most the budget."""
        return self.rounds[-1].samples_per_worker if self.rounds else 0

    @property
    def bytes_per_worker(self):
        return sum(row.bytes_per_worker for row in self.rounds)

    @property
    def total_bytes(self):
        return self.bytes_per_worker * self.num_workers

    @property
    def psgd_rounds(self):
        """Rounds classical parallel SGD at batch B1 needs for the same samples."""
        return psgd_rounds_for(self.samples_per_worker, self.schedule)

    @property
    def round_reduction(self):
        """psgd_rounds / num_rounds: how many times fewer rounds the schedule makes."""
        return self.psgd_rounds / self.num_rounds if self.num_rounds else float("nan")

    def to_dict(self):
        """Return the plan as JSON-ready data: parameters, totals and rows."""
        return {
            "schedule": self.schedule.describe(),
            "budget": self.budget,
            "num_workers": self.num_workers,
            "num_params": self.num_params,
            "bytes_per_param": self.bytes_per_param,
            "leftover": self.leftover,
            "totals": {
                "rounds": self.num_rounds,
                "samples_per_worker": self.samples_per_worker,
                "samples_unused_per_worker": self.budget - self.samples_per_worker,
                "bytes_per_worker": self.bytes_per_worker,
                "total_bytes": self.total_bytes,
                "psgd_rounds_at_b1": self.psgd_rounds,
                "round_reduction": self.round_reduction,
            },
            "rounds": [dataclasses.asdict(row) for row in self.rounds],
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self):
        """Return the plan as a fixed-width text table followed by its totals."""
        header = f"{'round':>6} {'B_t':>8} {'N*B_t':>10} {'samples/worker':>15} {'bytes/worker':>14}"
        lines = [header, "-" * len(header)]
        for row in self.rounds:
            lines.append(f"{row.round:>6} {row.batch_per_worker:>8} {row.global_batch:>10} "
                         f"{row.samples_per_worker:>15} {row.bytes_per_worker:>14}")
        lines.append("-" * len(header))
        lines.append(f"rounds: {self.num_rounds}   samples/worker: {self.samples_per_worker} "
                     f"of budget {self.budget}   bytes/worker: {self.bytes_per_worker}   "
                     f"total bytes: {self.total_bytes}")
        lines.append(f"classical PSGD at batch {self.schedule.first_batch}: {self.psgd_rounds} "
                     f"rounds for the same samples ({self.round_reduction:.1f}x more)")
        return "\n".join(lines)


def make_plan(schedule: BatchSchedule, budget, num_workers=1, num_params=0,
              bytes_per_param=4, leftover="drop") -> Plan:
    """Plan every round of Algorithm 1 for a per-worker budget.

    Args:
        schedule: the per-worker batch schedule.
        budget (int): T, stochastic gradients per worker; T >= B1.
        num_workers (int): N >= 1.
        num_params (int): gradient elements allreduced each round, >= 0.
        bytes_per_param (int): bytes per element on the wire (4 for float32,
            2 with fp16 compression), >= 1.
        leftover (str): ``"drop"`` (the paper) or ``"final_round"``.

    Returns:
        Plan: rows per round and totals. Bytes follow the ring model of
        :func:`crpsgd_hvd.accounting.ring_allreduce_bytes`.

    Raises:
        ValueError: for an invalid argument; the message names it.

    Warns:
        CommunicationSavingWarning: if the schedule saves under 10% of the
        rounds of classical parallel SGD at batch B1.
    """
    num_workers = check_int("num_workers", num_workers, minimum=1)
    num_params = check_int("num_params", num_params, minimum=0)
    bytes_per_param = check_int("bytes_per_param", bytes_per_param, minimum=1)
    check_choice("leftover", leftover, LEFTOVER_POLICIES)
    batches = planned_batches(schedule, budget, leftover)

    round_bytes = ring_allreduce_bytes(num_params * bytes_per_param, num_workers)
    rows, samples = [], 0
    for t, batch in enumerate(batches, start=1):
        samples += batch
        rows.append(RoundPlan(t, batch, batch * num_workers, samples, round_bytes))
    plan = Plan(schedule, int(budget), num_workers, num_params, bytes_per_param, leftover, tuple(rows))

    warn_if_no_saving(plan, stacklevel=3)
    return plan


def warn_if_no_saving(plan: Plan, stacklevel=2):
    """Warn when a growing schedule saves under 10% of classical PSGD's rounds."""
    if isinstance(plan.schedule, ConstantSchedule) or not plan.rounds:
        return
    saving = 1.0 - plan.num_rounds / plan.psgd_rounds
    if saving < MIN_USEFUL_SAVING:
        warnings.warn(
            f"schedule {plan.schedule.describe()} makes {plan.num_rounds} rounds for a budget of "
            f"{plan.budget} samples per worker, only {saving:.0%} fewer than the {plan.psgd_rounds} "
            f"of classical parallel SGD at batch {plan.schedule.first_batch}; raise rho or the "
            f"budget, or use ConstantSchedule", CommunicationSavingWarning, stacklevel=stacklevel)


def psgd_rounds_for(samples_per_worker, schedule: BatchSchedule):
    """Return ceil(samples / B1), the rounds of classical parallel SGD at batch B1."""
    return -(-samples_per_worker // schedule.first_batch)


@dataclasses.dataclass(frozen=True)
class CatalystPlan:
    """The plan of Algorithm 2: K inner calls that each follow ``inner`` (see :func:`make_catalyst_plan`).

    Attributes:
        loop (CatalystLoop): K and the inner budget T_in.
        inner (Plan): the Algorithm 1 plan of every inner call, for budget T_in.
    """

    loop: CatalystLoop
    inner: Plan

    @property
    def num_outer(self):
        return self.loop.num_outer

    @property
    def rounds_per_outer(self):
        return self.inner.num_rounds

    @property
    def num_rounds(self):
        return self.num_outer * self.rounds_per_outer

    def rounds_through(self, k):
        """Return the rounds completed by the end of outer iteration k (0 <= k <= K)."""
        k = check_int("k", k, minimum=0)
        if k > self.num_outer:
            raise ValueError(f"k must be <= the number of outer iterations K = {self.num_outer}, got {k!r}")
        return k * self.rounds_per_outer

    @property
    def samples_per_worker(self):
        return self.num_outer * self.inner.samples_per_worker

    @property
    def bytes_per_worker(self):
        return self.num_outer * self.inner.bytes_per_worker

    @property
    def total_bytes(self):
        return self.bytes_per_worker * self.inner.num_workers

    @property
    def psgd_rounds(self):
        """Rounds classical parallel SGD at batch B1 needs for the same samples."""
        return psgd_rounds_for(self.samples_per_worker, self.inner.schedule)

    @property
    def round_reduction(self):
        return self.psgd_rounds / self.num_rounds if self.num_rounds else float("nan")

    def to_dict(self):
        """Return the plan as JSON-ready data: the loop, totals and the inner plan."""
        return {
            "catalyst": self.loop.describe(),
            "totals": {
                "outer_iterations": self.num_outer,
                "rounds_per_outer": self.rounds_per_outer,
                "rounds": self.num_rounds,
                "samples_per_worker": self.samples_per_worker,
                "bytes_per_worker": self.bytes_per_worker,
                "total_bytes": self.total_bytes,
                "psgd_rounds_at_b1": self.psgd_rounds,
                "round_reduction": self.round_reduction,
            },
            "inner": self.inner.to_dict(),
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self):
        """Return the inner plan's table followed by the totals over all outer iterations."""
        return "\n".join([
            f"each of the K = {self.num_outer} inner calls ({self.loop.mode} mode), "
            f"budget {self.loop.inner_budget} per worker:",
            self.inner.format_table(),
            f"CR-PSGD-Catalyst: {self.num_outer} outer iterations x {self.rounds_per_outer} rounds = "
            f"{self.num_rounds} rounds   samples/worker: {self.samples_per_worker}   "
            f"bytes/worker: {self.bytes_per_worker}   total bytes: {self.total_bytes}",
            f"classical PSGD at batch {self.inner.schedule.first_batch}: {self.psgd_rounds} rounds "
            f"for the same samples ({self.round_reduction:.1f}x more)",
        ])


def make_catalyst_plan(schedule: BatchSchedule, loop: CatalystLoop, num_workers=1, num_params=0,
                       bytes_per_param=4, leftover="drop") -> CatalystPlan:
    """Plan every round of Algorithm 2.

    Arguments are those of :func:`make_plan`, with ``loop`` in place of the
    budget; each inner call gets the budget ``loop.inner_budget``, which must
    be >= B1.

    Raises:
        ValueError: for an invalid argument; the message names it.

    Warns:
        CommunicationSavingWarning: if one inner call saves under 10% of the
        rounds of classical parallel SGD at batch B1.
    """
    if not isinstance(loop, CatalystLoop):
        raise ValueError(f"loop must be a CatalystLoop, got {type(loop).__name__}")
    if loop.inner_budget < schedule.first_batch:
        raise ValueError(f"the inner budget T_in = {loop.inner_budget} of loop {loop.describe()} must be "
                         f">= the first batch B1 = {schedule.first_batch}: raise the budget or lower b1")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CommunicationSavingWarning)
        inner = make_plan(schedule, loop.inner_budget, num_workers, num_params, bytes_per_param, leftover)
    for warning in caught:
        warnings.warn(f"in every inner call: {warning.message}", warning.category, stacklevel=2)
    return CatalystPlan(loop, inner)
