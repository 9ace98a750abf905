"""PyTorch adapter: CR-PSGD around ``horovod.torch.DistributedOptimizer``, and its baselines.

Importing this module imports torch and ``horovod.torch``; a Horovod built
without PyTorch fails here with Horovod's own message.
"""

from crpsgd_hvd.torch.data import ShardSampler
from crpsgd_hvd.torch.local_sgd import OPTIMIZER_STATE_POLICIES, LocalSGD, StepResult, StepSpec
from crpsgd_hvd.torch.loop import fit
from crpsgd_hvd.torch.methods import METHODS, make_method
from crpsgd_hvd.torch.optimizer import CRPSGD, RoundResult, RoundSpec

__all__ = ["CRPSGD", "LocalSGD", "METHODS", "OPTIMIZER_STATE_POLICIES", "RoundResult", "RoundSpec",
           "ShardSampler", "StepResult", "StepSpec", "fit", "make_method"]
