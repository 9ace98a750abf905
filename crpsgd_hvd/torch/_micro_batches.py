"""Glue shared by the PyTorch methods: weighted micro-batch backward passes and the start-up broadcast."""

import horovod.torch as hvd
import torch

from crpsgd_hvd._validation import check_int


def weighted_backward(loss, num_samples, sizes, done, batch_size, unit):
    """Back-propagate one micro-batch's mean ``loss`` weighted by ``num_samples / batch_size``.

    The weights of a step's micro-batches sum to 1, so the accumulated
    gradient is the mean over the whole batch. ``sizes`` are the step's
    micro-batch sizes, ``done`` how many already ran, and ``unit`` names the
    step in messages ("round 3", "local step 7").

    Returns:
        torch.Tensor: the weighted loss, detached, as a 0-d tensor.

    Raises:
        RuntimeError: if all the step's micro-batches already ran.
        ValueError: if ``num_samples`` is not the next size or ``loss`` is not a scalar tensor.
    """
    if done >= len(sizes):
        raise RuntimeError(f"{unit} already has all its {done} micro-batches: call step()")
    expected = sizes[done]
    if num_samples != expected:
        raise ValueError(f"num_samples must equal the size of micro-batch {done + 1} of {unit}, "
                         f"which is {expected}, got {num_samples!r}")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"loss must be a scalar tensor (the mean over the micro-batch), got {loss!r}")

    weighted = loss * (num_samples / batch_size)
    weighted.backward()
    return weighted.detach().reshape(())


def check_micro_batches_done(sizes, done, unit):
    """Raise RuntimeError unless all ``sizes`` micro-batches of ``unit`` ran before step()."""
    missing = len(sizes) - done
    if missing:
        raise RuntimeError(f"{unit} still needs {missing} of its {len(sizes)} micro-batches before step()")


def broadcast_model_and_optimizer(model, optimizer, root_rank, name):
    """Give every rank the parameters and optimizer state of ``root_rank``."""
    root_rank = check_int("root_rank", root_rank, minimum=0)
    # Horovod initialises an empty optimizer state with a zero-gradient
    # step, which weight decay turns into a real update; a fresh optimizer
    # has nothing to send, so that step is skipped unless the root has state.
    root_has_state = hvd.broadcast_object(len(optimizer.state_dict()["state"]) > 0,
                                          root_rank=root_rank, name=f"{name}.root_has_state")
    if root_has_state:
        hvd.broadcast_optimizer_state(optimizer, root_rank=root_rank)
    # Parameters go last so they overwrite whatever that zero step changed.
    hvd.broadcast_parameters(model.state_dict(), root_rank=root_rank)


# Attribute that CRPSGD sets on the parameters it wraps, naming itself.
OWNER_ATTRIBUTE = "_crpsgd_hvd_owner"


def check_unclaimed(params, method):
    """Raise ValueError if a CRPSGD already wraps any of ``params``.

    Horovod's DistributedOptimizer leaves gradient hooks on the parameters it
    wraps for their whole life, and those hooks fail inside any other method's
    backward pass with a bare AssertionError, so reuse is rejected up front.
    """
    owners = {getattr(p, OWNER_ATTRIBUTE) for p in params if hasattr(p, OWNER_ATTRIBUTE)}
    if owners:
        raise ValueError(f"model's parameters are already wrapped by {sorted(owners)[0]}, whose Horovod "
                         f"hooks stay on them: build a new model (or a copy.deepcopy) for {method}")


def claim(params, owner):
    """Mark ``params`` as wrapped by ``owner`` (see :func:`check_unclaimed`)."""
    for p in params:
        setattr(p, OWNER_ATTRIBUTE, owner)
