"""The training loop shared by CR-PSGD and its baselines, with a progress bar on rank 0."""

import horovod.torch as hvd
from tqdm.auto import tqdm

from crpsgd_hvd.torch.local_sgd import LocalSGD

__all__ = ["fit"]


def fit(method, draw, loss_fn, *, progress=True, callback=None):
    """Run updates until the budget is spent and return their results.

    An update is a round of :class:`CRPSGD` (CR-PSGD or classical PSGD) or a
    local step of :class:`LocalSGD`; each one draws its batch as micro-batches
    and ends with one optimizer step.

    Args:
        method (CRPSGD or LocalSGD): the driver, e.g. from :func:`make_method`.
        draw (callable): ``draw(n)`` returns the next ``n`` samples of this
            worker's shard, e.g. :meth:`ShardSampler.draw`.
        loss_fn (callable): ``loss_fn(samples)`` returns the mean loss over
            ``samples`` as a scalar tensor, computed with ``method.model``.
        progress (bool): show a progress bar over the per-worker budget on
            rank 0. Default: True.
        callback (callable, optional): called with each :class:`RoundResult`
            or :class:`StepResult` after its update, on every rank.

    Returns:
        list of RoundResult or StepResult, one per update.
    """
    start_update = method.next_step if isinstance(method, LocalSGD) else method.next_round
    show = progress and hvd.rank() == 0
    bar = tqdm(total=method.plan.samples_per_worker, unit="sample", desc=type(method).__name__,
               disable=not show, mininterval=1.0)
    results = []
    with bar:
        while (spec := start_update()) is not None:
            for size in spec.micro_batch_sizes:
                method.backward(loss_fn(draw(size)), size)
            result = method.step()
            results.append(result)
            bar.update(result.batch_size)
            bar.set_postfix(round=f"{result.round}/{method.plan.num_rounds}", batch=result.batch_size,
                            loss=f"{result.loss:.4g}", refresh=False)
            if callback is not None:
                callback(result)
    return results
