"""Checkpoint files for CRPSGD, CRPSGDCatalyst and LocalSGD: one file per rank, written with ``torch.save``.

Every rank writes its own file, ``DIRECTORY/rank<r>.pt``, and reads it back
on resume. After a completed CRPSGD round, the model, the optimizer state,
the round index, the accounting and the Catalyst anchor are the same on
every rank. Each rank's data position (its :class:`ShardSampler`) is its
own, and so are LocalSGD's parameters and optimizer state between two
averages. One file per rank therefore needs no collective beyond a barrier.
Rank 0 alone plus a broadcast would save disk space at the cost of
traffic. It was not chosen, because it would need the samplers gathered and
could not resume LocalSGD between averages. Resuming needs the same number
of workers as saving; the files name the world size and the load checks it.
"""

import os

import horovod.torch as hvd
import torch

from crpsgd_hvd._checkpoint_files import check_saved_by, rank_file, require_rank_file
from crpsgd_hvd.torch._consistency import check_same_on_every_rank
from crpsgd_hvd.torch.data import ShardSampler

__all__ = ["checkpoint_path", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1


def checkpoint_path(directory, rank=None):
    """Return the file of ``rank`` (default: this rank) in the checkpoint ``directory``."""
    return rank_file(directory, hvd.rank() if rank is None else rank, ".pt")


def save_checkpoint(directory, method, sampler=None):
    """Write ``method``'s state and ``sampler``'s data position to this rank's file in ``directory``.

    Call it on every rank between rounds: after :meth:`CRPSGD.step`, also
    inside a Catalyst outer iteration, or for :class:`LocalSGD` after any
    :meth:`LocalSGD.step`, averaged or not. The file is written to a
    temporary name and renamed, so a crash while writing leaves the previous
    checkpoint intact. A barrier at the end makes every rank return only once
    all ranks' files are in place.

    Args:
        directory (str or Path): created if missing.
        method (CRPSGD, CRPSGDCatalyst or LocalSGD): the driver whose
            ``state_dict()`` is saved.
        sampler (ShardSampler, optional): this rank's data source.

    Returns:
        Path: this rank's file.

    Raises:
        RuntimeError: inside a round or a local step, whose partial
            gradient accumulation is not saved. Every rank raises.
    """
    state = {"format": FORMAT_VERSION, "rank": hvd.rank(), "size": hvd.size(), "method": method.state_dict()}
    if sampler is not None:
        if not isinstance(sampler, ShardSampler):
            raise ValueError(f"sampler must be a ShardSampler or None, got {type(sampler).__name__}")
        state["sampler"] = sampler.state_dict()

    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)
    hvd.barrier(process_set=method.process_set)
    return path


def load_checkpoint(directory, method, sampler=None):
    """Restore ``method`` and ``sampler`` from this rank's file in ``directory``.

    Call it on every rank of a new job, after building ``method`` and
    ``sampler`` with the settings of the saved run. Loading replaces the
    broadcast start with each rank's own saved parameters, and nothing is
    broadcast afterwards, so LocalSGD saved between two averages resumes
    with every rank's own model. After loading, the ranks compare their
    progress (see :func:`progress`), so files from different moments fail on
    every rank.

    Raises:
        FileNotFoundError: if this rank's file is missing, e.g. in a job with
            more workers than the saved one; the message lists the saved ranks.
        ValueError: if the file was saved by another rank or world size,
            lacks the sampler state that ``sampler`` needs, or does not match
            the method's settings; or if ranks loaded different progress.
    """
    path = checkpoint_path(directory)
    require_rank_file(path)
    state = torch.load(path, weights_only=True)
    check_saved_by(path, state, hvd.rank(), hvd.size())
    if sampler is not None and "sampler" not in state:
        raise ValueError(f"checkpoint {path} contains no sampler state, but a sampler was passed: "
                         "pass sampler=None or save with the sampler")

    method.load_state_dict(state["method"])
    if sampler is not None:
        sampler.load_state_dict(state["sampler"])
    check_same_on_every_rank(progress(state["method"]), method.process_set, "crpsgd.checkpoint",
                             "checkpoint progress")


def progress(method_state):
    """Return the counters that locate a saved state in the run.

    CRPSGD: rounds and samples, plus the outer iteration for Catalyst.
    LocalSGD: local steps and averaging rounds.
    """
    if "steps_done" in method_state:
        return {"local_steps": method_state["steps_done"], "rounds": method_state["accounting"]["rounds"]}
    result = dict(method_state["round_state"])
    if "catalyst_state" in method_state:
        result["catalyst_outer"] = method_state["catalyst_state"]["outer"]
    return result
