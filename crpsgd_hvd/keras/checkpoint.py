"""Checkpoint files for CRPSGDCallback and CatalystCallback: one NumPy ``.npz`` file per rank.

Every rank writes its own file, ``DIRECTORY/rank<r>.npz``, and reads it back
on resume, as the PyTorch adapter does. A file contains the model's weights,
the optimizer's variables (``iterations`` and slots such as momentum), the
round optimizer's allreduce count, proximal weight and Catalyst anchor, and
the callback's :meth:`~CRPSGDCallback.state_dict` as JSON, which includes the
data position that :func:`round_dataset` continues from. Arrays are stored
without pickle. Resuming needs the same number of workers as saving.
"""

import json
import os
from pathlib import Path

import horovod.tensorflow as hvd_tf
import numpy as np
import tensorflow as tf
import tf_keras

from crpsgd_hvd._checkpoint_files import check_saved_by, rank_file, require_rank_file
from crpsgd_hvd._validation import check_int
from crpsgd_hvd.keras._consistency import check_same_on_every_rank
from crpsgd_hvd.keras.callback import CRPSGDCallback

__all__ = ["RoundCheckpoint", "checkpoint_path", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1


def checkpoint_path(directory, rank=None):
    """Return the file of ``rank`` (default: this rank) in the checkpoint ``directory``."""
    return rank_file(directory, hvd_tf.rank() if rank is None else rank, ".npz")


def save_checkpoint(directory, callback, model=None):
    """Write the training state of ``callback``'s run to this rank's file in ``directory``.

    Call it on every rank between rounds: after ``fit`` returns, or from a
    callback placed after ``callback`` (see :class:`RoundCheckpoint`). The
    file is written to a temporary name and renamed, so a crash while
    writing leaves the previous checkpoint intact. An allreduce at the end
    makes every rank return only once all ranks' files are in place.

    Args:
        directory (str or Path): created if missing.
        callback (CRPSGDCallback): the callback of the run.
        model (tf_keras.Model, optional): the model; default ``callback.model``,
            which ``fit`` sets.

    Returns:
        Path: this rank's file.

    Raises:
        RuntimeError: inside a round, whose partial gradient accumulation is
            not saved. Every rank raises, because all ranks are in the same round.
    """
    model = _check_arguments(callback, model)
    state = callback.state_dict()  # raises inside a round
    _build_optimizer_state(model, callback.optimizer)
    arrays = _variable_arrays(model, callback.optimizer)
    metadata = {"format": FORMAT_VERSION, "rank": hvd_tf.rank(), "size": hvd_tf.size(), "callback": state,
                "counts": {group: sum(key.startswith(group + "_") for key in arrays)
                           for group in ("model", "optimizer", "anchor")}}

    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        np.savez(file, metadata=np.array(json.dumps(metadata)), **arrays)
    os.replace(temporary, path)
    # Horovod 0.28.1 has no TensorFlow barrier, so a small allreduce waits for every rank.
    hvd_tf.allreduce(tf.constant(1, dtype=tf.int32), op=hvd_tf.Sum, name="crpsgd.keras.checkpoint.saved",
                     process_set=callback.optimizer.process_set)
    return path


def load_checkpoint(directory, callback, model):
    """Restore ``model``, its optimizer and ``callback`` from this rank's file in ``directory``.

    Call it on every rank of a new job before ``fit``, after compiling
    ``model`` with ``callback.optimizer`` and building both with the settings
    of the saved run. Then pass ``steps_per_epoch=callback.steps``, which
    counts the steps left. The broadcast at the start of ``fit`` then
    broadcasts the loaded weights, which are the same on every rank. After
    loading, the ranks compare their progress, so files from different
    moments fail on every rank.

    Raises:
        FileNotFoundError: if this rank's file is missing, e.g. in a job with
            more workers than the saved one; the message lists the saved ranks.
        ValueError: if the file was saved by another rank or world size, or
            with other settings or variable shapes; or if ranks loaded different progress.
    """
    model = _check_arguments(callback, model)
    path = checkpoint_path(directory)
    require_rank_file(path)
    with np.load(path, allow_pickle=False) as file:
        arrays = {key: file[key] for key in file.files}
    metadata = json.loads(str(arrays.pop("metadata")))
    check_saved_by(path, metadata, hvd_tf.rank(), hvd_tf.size())

    _build_optimizer_state(model, callback.optimizer)
    # Every check runs before the first change, so a rejected file leaves the callback and model as they were.
    saved_variables = _saved_variables(path, model, callback.optimizer, arrays, metadata["counts"])
    callback.load_state_dict(metadata["callback"])
    for variable, value in saved_variables:
        variable.assign(value)
    callback.optimizer.allreduce_count.assign(arrays["allreduce_count"])
    callback.optimizer.proximal_weight.assign(arrays["proximal_weight"])
    check_same_on_every_rank(_progress(callback), callback.optimizer.process_set, "crpsgd.keras.checkpoint",
                             "checkpoint progress")


def _check_arguments(callback, model):
    if not isinstance(callback, CRPSGDCallback):
        raise ValueError(f"callback must be a CRPSGDCallback or CatalystCallback, got {type(callback).__name__}")
    model = callback.model if model is None else model
    if not isinstance(model, tf_keras.Model):
        raise ValueError(f"model must be a tf_keras.Model, got {type(model).__name__}: pass the model, or save "
                         "from inside fit, where the callback has it")
    if model.optimizer is not callback.optimizer:
        raise ValueError("model must be compiled with the callback's optimizer, got another optimizer")
    return model


def _build_optimizer_state(model, optimizer):
    # Slots, accumulators and the anchor are otherwise created at the first step. Building
    # them here gives a file saved or loaded before that step the same variables.
    optimizer.build(model.trainable_variables)
    optimizer.build_round_state(model.trainable_variables)


def _variable_arrays(model, optimizer):
    arrays = {f"model_{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays.update({f"anchor_{i}": v.numpy() for i, v in enumerate(optimizer.anchor_variables())})
    arrays["allreduce_count"] = optimizer.allreduce_count.numpy()
    arrays["proximal_weight"] = optimizer.proximal_weight.numpy()
    return arrays


def _saved_variables(path, model, optimizer, arrays, counts):
    """Return (variable, saved value) pairs after checking that the saved shapes match the variables."""
    targets = {"model": model.weights, "optimizer": optimizer.variables, "anchor": optimizer.anchor_variables()}
    pairs = []
    for group, variables in targets.items():
        saved = [arrays[f"{group}_{i}"] for i in range(counts[group])]
        shapes = [tuple(v.shape) for v in variables]
        if [a.shape for a in saved] != shapes:
            raise ValueError(f"checkpoint {path} contains {group} variables of shapes {[a.shape for a in saved]}, "
                             f"this run has {shapes}: build the model and optimizer as in the saved run")
        pairs.extend(zip(variables, saved))
    return pairs


def _progress(callback):
    progress = {**callback.state.state_dict(), "samples_drawn": callback.samples_drawn,
                "iterations": int(callback.optimizer.iterations.numpy())}
    if hasattr(callback, "catalyst_state"):
        progress["catalyst_outer"] = callback.catalyst_state.outer
    return progress


class RoundCheckpoint(tf_keras.callbacks.Callback):
    """Save a checkpoint every ``every_rounds`` completed rounds, and stop ``fit`` after a given round.

    Rounds are counted over the whole run (``accounting.rounds``), across
    Catalyst's outer iterations and across resumed jobs. A round skipped for
    a non-finite gradient does not count. Place it after
    ``crpsgd`` in ``fit``'s callbacks, so that it sees each round once the
    CR-PSGD callback has closed it.

    Args:
        crpsgd (CRPSGDCallback): the callback whose rounds are counted.
        directory (str or Path): where :func:`save_checkpoint` writes.
        every_rounds (int or None): save after every round whose count is a
            multiple of this, >= 1; None saves only when stopping. Default: 1.
        stop_after_round (int or None): save and stop ``fit`` once this many
            rounds are complete, >= 1. Default: None, run to the end.
    """

    def __init__(self, crpsgd, directory, *, every_rounds=1, stop_after_round=None):
        super().__init__()
        if not isinstance(crpsgd, CRPSGDCallback):
            raise ValueError(f"crpsgd must be a CRPSGDCallback or CatalystCallback, got {type(crpsgd).__name__}")
        self.crpsgd = crpsgd
        self.directory = Path(directory)
        self.every_rounds = None if every_rounds is None else check_int("every_rounds", every_rounds, minimum=1)
        self.stop_after_round = (None if stop_after_round is None
                                 else check_int("stop_after_round", stop_after_round, minimum=1))
        self._rounds_seen = 0

    def on_train_begin(self, logs=None):
        self._rounds_seen = self.crpsgd.accounting.rounds

    def on_train_batch_end(self, batch, logs=None):
        if self.crpsgd.step_running:
            raise RuntimeError("RoundCheckpoint must come after its CRPSGDCallback in fit's callbacks, "
                               "so that it sees each round after the callback has closed it")
        rounds = self.crpsgd.accounting.rounds
        if self.crpsgd.round_open or rounds == self._rounds_seen:
            return

        self._rounds_seen = rounds
        stop = self.stop_after_round is not None and rounds >= self.stop_after_round
        if stop or (self.every_rounds is not None and rounds % self.every_rounds == 0):
            save_checkpoint(self.directory, self.crpsgd, self.model)
        if stop:
            self.model.stop_training = True
