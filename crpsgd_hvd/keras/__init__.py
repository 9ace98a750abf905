"""Keras adapter: CR-PSGD from ``model.fit`` on ``horovod.tensorflow.keras``.

Supported: TensorFlow 2.21 with ``tf_keras`` 2.21 (Keras 2) and a Horovod
0.28.1 built with TensorFlow, as ``scripts/bootstrap.py`` makes it. Horovod's
Keras optimizer does not support Keras 3, so this module selects Keras 2 by
setting ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads, and fails at
import, saying what to install, when that is not possible.
"""

import os
import sys

if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from crpsgd_hvd.keras._environment import check_environment

check_environment()

from crpsgd_hvd.keras.callback import CatalystCallback, CRPSGDCallback  # noqa: E402
from crpsgd_hvd.keras.checkpoint import (RoundCheckpoint, checkpoint_path, load_checkpoint,  # noqa: E402
                                         save_checkpoint)
from crpsgd_hvd.keras.data import planned_micro_batch_sizes, round_dataset  # noqa: E402
from crpsgd_hvd.keras.optimizer import round_optimizer  # noqa: E402

__all__ = ["CRPSGDCallback", "CatalystCallback", "RoundCheckpoint", "checkpoint_path", "load_checkpoint",
           "planned_micro_batch_sizes", "round_dataset", "round_optimizer", "save_checkpoint"]
