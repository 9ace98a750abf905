"""PyTorch adapter: CR-PSGD and CR-PSGD-Catalyst around ``horovod.torch.DistributedOptimizer``.

Importing this module imports torch and ``horovod.torch``; a Horovod built
without PyTorch fails here with Horovod's own message.
"""

from crpsgd_hvd.torch.catalyst import CRPSGDCatalyst
from crpsgd_hvd.torch.data import ShardSampler
from crpsgd_hvd.torch.loop import fit, fit_catalyst
from crpsgd_hvd.torch.optimizer import CRPSGD, RoundResult, RoundSpec

__all__ = ["CRPSGD", "CRPSGDCatalyst", "RoundResult", "RoundSpec", "ShardSampler", "fit", "fit_catalyst"]
