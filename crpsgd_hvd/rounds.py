"""Round bookkeeping for Algorithm 1: which batch the next round uses, if any.

The loop of Algorithm 1 runs ``while B_1 + ... + B_t <= T``; the samples
left over at the end, T - S(R(T)), are not used by the paper. ``leftover``
chooses between that and one last, smaller round that spends them:

* ``"drop"`` (the paper): stop after R(T) rounds;
* ``"final_round"``: run one more round with the T - S(R(T)) samples left,
  when there are any.
"""

import dataclasses
from typing import Optional

from crpsgd_hvd._validation import check_choice, check_int
from crpsgd_hvd.schedules import BatchSchedule

__all__ = ["LEFTOVER_POLICIES", "NONFINITE_POLICIES", "RoundState", "micro_batch_sizes", "next_round_batch",
           "planned_batches"]

LEFTOVER_POLICIES = ("drop", "final_round")

# Choices for a round whose averaged gradient contains NaN or an infinity: raise
# FloatingPointError, or skip the round without a step and repeat it with fresh samples.
NONFINITE_POLICIES = ("raise", "skip")


@dataclasses.dataclass(frozen=True)
class RoundState:
    """Progress through the per-worker budget after the completed rounds.

    Attributes:
        rounds (int): communication rounds completed so far.
        samples (int): per-worker samples consumed by those rounds.
    """

    rounds: int = 0
    samples: int = 0

    def advance(self, batch_size):
        """Return the state after one more round of ``batch_size`` samples per worker."""
        return RoundState(self.rounds + 1, self.samples + batch_size)

    def state_dict(self):
        return {"rounds": self.rounds, "samples": self.samples}

    @classmethod
    def from_state_dict(cls, state):
        return cls(
            rounds=check_int("state['rounds']", state["rounds"], minimum=0),
            samples=check_int("state['samples']", state["samples"], minimum=0),
        )


def next_round_batch(schedule: BatchSchedule, budget: int, state: RoundState,
                     leftover: str = "drop") -> Optional[int]:
    """Return the per-worker batch of the round after ``state``, or None when the budget is spent.

    Args:
        schedule: the batch schedule B_t.
        budget (int): T, stochastic gradients per worker, T >= B1.
        state: the completed rounds.
        leftover (str): ``"drop"`` or ``"final_round"`` (see the module docs).
    """
    budget = check_budget(schedule, budget)
    check_choice("leftover", leftover, LEFTOVER_POLICIES)

    batch = schedule.batch(state.rounds + 1)
    if state.samples + batch <= budget:
        return batch
    remaining = budget - state.samples
    if leftover == "final_round" and remaining > 0:
        return remaining
    return None


def planned_batches(schedule: BatchSchedule, budget, leftover="drop"):
    """Return the per-worker batches of every round, from the closed forms.

    R(T) rounds of B_t, plus one round of T - S(R(T)) samples under
    ``leftover="final_round"`` when that is positive.
    """
    budget = check_budget(schedule, budget)
    check_choice("leftover", leftover, LEFTOVER_POLICIES)

    rounds = schedule.rounds_for_budget(budget)
    batches = [schedule.batch(t) for t in range(1, rounds + 1)]
    remaining = budget - schedule.samples_through(rounds)
    if leftover == "final_round" and remaining > 0:
        batches.append(remaining)
    return batches


def check_budget(schedule: BatchSchedule, budget):
    """Return ``budget`` as an int after checking that it pays for the first round."""
    budget = check_int("budget", budget, minimum=1)
    if budget < schedule.first_batch:
        raise ValueError(
            f"budget must be >= the first batch B1 = {schedule.first_batch} so that at least "
            f"one round runs, got {budget!r}")
    return budget


def micro_batch_sizes(batch_size, micro_batch_size):
    """Split a round's batch into micro-batches of ``micro_batch_size``, the last one smaller.

    >>> micro_batch_sizes(10, 4)
    (4, 4, 2)
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    micro_batch_size = check_int("micro_batch_size", micro_batch_size, minimum=1)
    full, remainder = divmod(batch_size, micro_batch_size)
    return (micro_batch_size,) * full + ((remainder,) if remainder else ())
