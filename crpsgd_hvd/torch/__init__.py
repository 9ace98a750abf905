"""PyTorch adapter: CR-PSGD around ``horovod.torch.DistributedOptimizer``.

Importing this module imports torch and ``horovod.torch``; a Horovod built
without PyTorch fails here with Horovod's own message.
"""

from crpsgd_hvd.torch.data import ShardSampler
from crpsgd_hvd.torch.loop import fit
from crpsgd_hvd.torch.optimizer import CRPSGD, RoundResult, RoundSpec

__all__ = ["CRPSGD", "RoundResult", "RoundSpec", "ShardSampler", "fit"]
