r"""Local SGD (periodic model averaging): its averaging plan and the search for the interval H.

Every worker runs plain SGD with a fixed batch b on its own shard. The
workers average their parameters with one allreduce after every H local
steps. When H does not divide the number of steps, one more average follows
the last step:

.. math::

    K = \lfloor T / b \rfloor, \qquad
    R(K, H) = \lceil K / H \rceil, \qquad
    \text{averaging after local steps } H, 2H, \dots, \lfloor K / H \rfloor H, \text{ and } K

Key: T the per-worker gradient budget, b the per-worker batch, K the local
steps, H the averaging interval, R the communication rounds. The T - K b
samples that cannot fill a batch are dropped, as classical parallel SGD
(:class:`~crpsgd_hvd.schedules.ConstantSchedule`) drops them.

With plain SGD (no momentum), H = 1 produces the iterates of classical
parallel SGD, because the mean of the workers' x - gamma g_i is
x - gamma times the mean of the g_i.
"""

import dataclasses
import json
import logging
import math
import warnings
from typing import Callable, Dict, Sequence, Tuple

from crpsgd_hvd._validation import check_int, check_real
from crpsgd_hvd.accounting import ring_allreduce_bytes

__all__ = ["IntervalSweep", "LocalSGDPlan", "averaging_steps", "make_local_sgd_plan", "select_interval",
           "sweep_intervals"]

logger = logging.getLogger(__name__)


def averaging_steps(num_steps, interval):
    """Return the local steps after which the models are averaged, in order.

    H, 2H, ..., then ``num_steps`` itself when H does not divide it; that is
    ceil(K / H) steps. ``num_steps = 0`` returns an empty tuple.

    >>> averaging_steps(10, 4)
    (4, 8, 10)
    """
    num_steps = check_int("num_steps", num_steps, minimum=0)
    interval = check_int("interval", interval, minimum=1)

    steps = tuple(range(interval, num_steps + 1, interval))
    if num_steps % interval:
        steps += (num_steps,)
    return steps


@dataclasses.dataclass(frozen=True)
class LocalSGDPlan:
    """The local steps, rounds and bytes of one local-SGD run (see :func:`make_local_sgd_plan`).

    Attributes:
        batch_size (int): b, samples per local step on each worker.
        budget (int): T, stochastic gradients per worker.
        interval (int): H, local steps between averaging rounds.
        num_workers (int): N.
        num_params (int): parameter elements averaged each round.
        bytes_per_param (int): bytes per element on the wire.
    """

    batch_size: int
    budget: int
    interval: int
    num_workers: int = 1
    num_params: int = 0
    bytes_per_param: int = 4

    @property
    def num_steps(self):
        """K = floor(T / b), local steps per worker."""
        return self.budget // self.batch_size

    @property
    def num_rounds(self):
        """R = ceil(K / H), averaging rounds."""
        return -(-self.num_steps // self.interval)

    @property
    def samples_per_worker(self):
        """K b, samples each worker consumes; at most the budget."""
        return self.num_steps * self.batch_size

    @property
    def round_bytes_per_worker(self):
        """Bytes each worker sends in one averaging round, by the ring model."""
        return ring_allreduce_bytes(self.num_params * self.bytes_per_param, self.num_workers)

    @property
    def bytes_per_worker(self):
        return self.num_rounds * self.round_bytes_per_worker

    @property
    def total_bytes(self):
        return self.bytes_per_worker * self.num_workers

    def round_of_step(self, step):
        """Return the averaging round that local step ``step`` (1-based) belongs to: ceil(step / H)."""
        step = check_int("step", step, minimum=1)
        if step > self.num_steps:
            raise ValueError(f"step must be <= the {self.num_steps} local steps of the plan, got {step!r}")
        return -(-step // self.interval)

    def averages_after(self, step):
        """Return True if the models are averaged after local step ``step`` (1-based)."""
        step = check_int("step", step, minimum=1)
        return step % self.interval == 0 or step == self.num_steps

    def to_dict(self):
        """Return the parameters and totals as JSON-ready data."""
        return {**dataclasses.asdict(self), "num_steps": self.num_steps, "rounds": self.num_rounds,
                "samples_per_worker": self.samples_per_worker, "bytes_per_worker": self.bytes_per_worker,
                "total_bytes": self.total_bytes}


def make_local_sgd_plan(batch_size, budget, interval, num_workers=1, num_params=0, bytes_per_param=4):
    """Plan a local-SGD run: K = floor(T / b) local steps, ceil(K / H) averaging rounds.

    Args:
        batch_size (int): b, per-worker batch of each local step, >= 1.
        budget (int): T, stochastic gradients per worker, >= b.
        interval (int): H, local steps between averaging rounds, >= 1.
            H = 1 averages after every step. H >= K averages once, after the
            last step (one-shot averaging).
        num_workers (int): N >= 1.
        num_params (int): parameter elements averaged each round, >= 0.
        bytes_per_param (int): bytes per element on the wire, >= 1.

    Raises:
        ValueError: for an invalid argument; the message names it.

    Warns:
        UserWarning: if H > K, because every such H gives the same run as H = K.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    budget = check_int("budget", budget, minimum=1)
    if budget < batch_size:
        raise ValueError(f"budget must be >= batch_size = {batch_size} so that at least one local "
                         f"step runs, got {budget!r}")
    interval = check_int("interval", interval, minimum=1)
    num_workers = check_int("num_workers", num_workers, minimum=1)
    num_params = check_int("num_params", num_params, minimum=0)
    bytes_per_param = check_int("bytes_per_param", bytes_per_param, minimum=1)

    plan = LocalSGDPlan(batch_size, budget, interval, num_workers, num_params, bytes_per_param)
    if interval > plan.num_steps:
        warnings.warn(f"interval H = {interval} exceeds the {plan.num_steps} local steps of the run, so "
                      f"the models are averaged only once, at the end, as with H = {plan.num_steps}",
                      UserWarning, stacklevel=2)
    return plan


def select_interval(objectives: Dict[int, float], reference, rtol):
    """Return the largest interval H whose final objective is within ``rtol`` of the reference.

    H passes when f_H <= f_ref + rtol * |f_ref|, where f_ref is the final
    objective of classical parallel SGD on the same data and budget. The
    largest passing H is returned even if a smaller H failed, because noise
    can make the comparison non-monotone; :class:`IntervalSweep` lists every
    H so that a reader can see such a case.

    Args:
        objectives (dict of int to float): final objective for each H >= 1.
        reference (float): f_ref, finite.
        rtol (float): relative tolerance, >= 0.

    Returns:
        int or None: the largest passing H, or None when none passes.

    Raises:
        ValueError: for an empty ``objectives``, a key below 1, a non-finite
            reference or a negative ``rtol``.
    """
    if not objectives:
        raise ValueError("objectives must contain at least one interval, got an empty mapping")
    reference = check_real("reference", reference)
    rtol = check_real("rtol", rtol, at_least=0.0)
    for interval in objectives:
        check_int("interval", interval, minimum=1)

    limit = reference + rtol * abs(reference)
    # A NaN objective (a diverged run) compares False, so it never passes.
    passing = [interval for interval, objective in objectives.items() if objective <= limit]
    return max(passing) if passing else None


@dataclasses.dataclass(frozen=True)
class IntervalSweep:
    """Final objectives of local SGD for several H against classical parallel SGD.

    Attributes:
        reference (float): f_ref, the final objective of classical parallel SGD.
        rtol (float): the relative tolerance of :func:`select_interval`.
        rows (tuple of (int, float, int)): (H, final objective, rounds) per H, in ascending H.
        chosen (int or None): the largest H within the tolerance.
    """

    reference: float
    rtol: float
    rows: Tuple[Tuple[int, float, int], ...]
    chosen: object

    def to_dict(self):
        return {"reference_objective": self.reference, "rtol": self.rtol, "chosen_interval": self.chosen,
                "limit": self.reference + self.rtol * abs(self.reference),
                "intervals": [{"interval": h, "final_objective": f, "rounds": r, "relative_excess":
                               (f - self.reference) / abs(self.reference) if self.reference else math.nan}
                              for h, f, r in self.rows]}

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self):
        """Return the sweep as a fixed-width text table with the chosen H marked."""
        header = f"{'H':>6} {'rounds':>7} {'final objective':>16} {'vs PSGD':>9}  within"
        lines = [header, "-" * len(header)]
        limit = self.reference + self.rtol * abs(self.reference)
        for interval, objective, rounds in self.rows:
            excess = (objective - self.reference) / abs(self.reference) if self.reference else math.nan
            mark = "yes" if objective <= limit else "no"
            if interval == self.chosen:
                mark += "  <- chosen"
            lines.append(f"{interval:>6} {rounds:>7} {objective:>16.6f} {excess:>+9.2%}  {mark}")
        lines.append("-" * len(header))
        lines.append(f"PSGD final objective {self.reference:.6f}; tolerance +{self.rtol:.1%}; "
                     f"largest H within it: {self.chosen}")
        return "\n".join(lines)


def sweep_intervals(train: Callable[[int], Tuple[float, int]], intervals: Sequence[int], reference, rtol):
    """Run local SGD for each H and return the :class:`IntervalSweep` that picks the largest harmless H.

    Args:
        train (callable): ``train(H)`` runs local SGD with interval H on the
            data and budget of the reference run and returns
            ``(final objective, rounds)``.
        intervals (sequence of int): the H values to try, each >= 1; they are
            run in ascending order, duplicates once.
        reference (float): the final objective of classical parallel SGD.
        rtol (float): relative tolerance, >= 0 (see :func:`select_interval`).

    Raises:
        ValueError: for an empty or invalid ``intervals``, or as
            :func:`select_interval` raises.
    """
    intervals = sorted({check_int(f"intervals[{i}]", h, minimum=1) for i, h in enumerate(intervals)})
    if not intervals:
        raise ValueError("intervals must contain at least one H >= 1, got an empty sequence")
    reference = check_real("reference", reference)
    rtol = check_real("rtol", rtol, at_least=0.0)

    rows = []
    for position, interval in enumerate(intervals, start=1):
        objective, rounds = train(interval)
        logger.info("local SGD sweep %d/%d: H = %d, %d rounds, final objective %.6g",
                    position, len(intervals), interval, rounds, objective)
        rows.append((interval, float(objective), int(rounds)))

    chosen = select_interval({h: f for h, f, _ in rows}, reference, rtol)
    return IntervalSweep(reference, rtol, tuple(rows), chosen)
