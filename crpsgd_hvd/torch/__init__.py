"""PyTorch adapter: CR-PSGD, CR-PSGD-Catalyst and the baselines around ``horovod.torch.DistributedOptimizer``.

Importing this module imports torch and ``horovod.torch``; a Horovod built
without PyTorch fails here with Horovod's own message.
"""

from crpsgd_hvd.torch.catalyst import CRPSGDCatalyst
from crpsgd_hvd.torch.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from crpsgd_hvd.torch.data import ShardSampler
from crpsgd_hvd.torch.local_sgd import OPTIMIZER_STATE_POLICIES, LocalSGD, StepResult, StepSpec
from crpsgd_hvd.torch.loop import fit, fit_catalyst
from crpsgd_hvd.torch.methods import METHODS, make_method
from crpsgd_hvd.torch.optimizer import CRPSGD, NONFINITE_POLICIES, RoundResult, RoundSpec

__all__ = ["CRPSGD", "CRPSGDCatalyst", "LocalSGD", "METHODS", "NONFINITE_POLICIES", "OPTIMIZER_STATE_POLICIES",
           "RoundResult", "RoundSpec", "ShardSampler", "StepResult", "StepSpec", "checkpoint_path", "fit",
           "fit_catalyst", "load_checkpoint", "make_method", "save_checkpoint"]
