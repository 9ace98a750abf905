"""Communication-reduced parallel SGD (CR-PSGD) on Horovod.

The package itself is the backend-neutral core: batch schedules, round
bookkeeping, the outer loop of CR-PSGD-Catalyst, plans, communication
accounting, the local-SGD baseline's averaging plan, Theorem 1's bound and a
check of Theorem 2's conditions. It imports neither torch, TensorFlow nor
Horovod. The adapters live in ``crpsgd_hvd.torch`` and ``crpsgd_hvd.keras``.
"""

from crpsgd_hvd.accounting import CommunicationAccounting, ring_allreduce_bytes
from crpsgd_hvd.catalyst import CATALYST_MODES, CatalystLoop, CatalystState, next_outer_iteration
from crpsgd_hvd.catalyst_theory import CatalystCondition, ConditionReport, check_catalyst_conditions
from crpsgd_hvd.local_sgd import (IntervalSweep, LocalSGDPlan, averaging_steps, make_local_sgd_plan,
                                  select_interval, sweep_intervals)
from crpsgd_hvd.plan import CatalystPlan, CommunicationSavingWarning, Plan, RoundPlan, make_catalyst_plan, make_plan
from crpsgd_hvd.rounds import LEFTOVER_POLICIES, RoundState, micro_batch_sizes, next_round_batch, planned_batches
from crpsgd_hvd.schedules import BatchSchedule, ConstantSchedule, GeometricSchedule
from crpsgd_hvd.theory import Condition, TheoremOne

__version__ = "0.1.0"

__all__ = [
    "BatchSchedule",
    "CATALYST_MODES",
    "CatalystCondition",
    "CatalystLoop",
    "CatalystPlan",
    "CatalystState",
    "CommunicationAccounting",
    "CommunicationSavingWarning",
    "Condition",
    "ConditionReport",
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
    "check_catalyst_conditions",
    "make_catalyst_plan",
    "make_local_sgd_plan",
    "make_plan",
    "micro_batch_sizes",
    "next_outer_iteration",
    "next_round_batch",
    "planned_batches",
    "ring_allreduce_bytes",
    "select_interval",
    "sweep_intervals",
]
