"""Communication-reduced parallel SGD (CR-PSGD) on Horovod.

The package itself is the backend-neutral core: batch schedules, round
bookkeeping, plans, communication accounting, the local-SGD baseline's
averaging plan and Theorem 1's bound. It imports neither torch, TensorFlow
nor Horovod. The adapters live in ``crpsgd_hvd.torch`` and ``crpsgd_hvd.keras``.
"""

from crpsgd_hvd.accounting import CommunicationAccounting, ring_allreduce_bytes
from crpsgd_hvd.local_sgd import (IntervalSweep, LocalSGDPlan, averaging_steps, make_local_sgd_plan,
                                  select_interval, sweep_intervals)
from crpsgd_hvd.plan import CommunicationSavingWarning, Plan, RoundPlan, make_plan
from crpsgd_hvd.rounds import LEFTOVER_POLICIES, RoundState, micro_batch_sizes, next_round_batch, planned_batches
from crpsgd_hvd.schedules import BatchSchedule, ConstantSchedule, GeometricSchedule
from crpsgd_hvd.theory import Condition, TheoremOne

__version__ = "0.1.0"

__all__ = [
    "BatchSchedule",
    "CommunicationAccounting",
    "CommunicationSavingWarning",
    "Condition",
    "ConstantSchedule",
    "GeometricSchedule",
    "IntervalSweep",
    "LEFTOVER_POLICIES",
    "LocalSGDPlan",
    "Plan",
    "RoundPlan",
    "RoundState",
    "TheoremOne",
    "averaging_steps",
    "make_local_sgd_plan",
    "make_plan",
    "micro_batch_sizes",
    "next_round_batch",
    "planned_batches",
    "ring_allreduce_bytes",
    "select_interval",
    "sweep_intervals",
]
