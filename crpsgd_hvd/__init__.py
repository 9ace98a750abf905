"""Communication-reduced parallel SGD (CR-PSGD) on Horovod.

The package itself is the backend-neutral core: batch schedules, round
bookkeeping, the outer loop of CR-PSGD-Catalyst, plans, communication
accounting and a check of the theorem's conditions. It imports neither torch,
TensorFlow nor Horovod. The PyTorch adapter lives in ``crpsgd_hvd.torch``.
"""

from crpsgd_hvd.accounting import CommunicationAccounting, ring_allreduce_bytes
from crpsgd_hvd.catalyst import CATALYST_MODES, CatalystLoop, CatalystState, next_outer_iteration
from crpsgd_hvd.plan import CatalystPlan, CommunicationSavingWarning, Plan, RoundPlan, make_catalyst_plan, make_plan
from crpsgd_hvd.rounds import LEFTOVER_POLICIES, RoundState, micro_batch_sizes, next_round_batch, planned_batches
from crpsgd_hvd.schedules import BatchSchedule, ConstantSchedule, GeometricSchedule
from crpsgd_hvd.theory import Condition, ConditionReport, check_catalyst_conditions

__version__ = "0.1.0"

__all__ = [
    "BatchSchedule",
    "CATALYST_MODES",
    "CatalystLoop",
    "CatalystPlan",
    "CatalystState",
    "CommunicationAccounting",
    "CommunicationSavingWarning",
    "Condition",
    "ConditionReport",
    "ConstantSchedule",
    "GeometricSchedule",
    "LEFTOVER_POLICIES",
    "Plan",
    "RoundPlan",
    "RoundState",
    "check_catalyst_conditions",
    "make_catalyst_plan",
    "make_plan",
    "micro_batch_sizes",
    "next_outer_iteration",
    "next_round_batch",
    "planned_batches",
    "ring_allreduce_bytes",
]
