"""The training loops of Algorithms 1 and 2 and of the baselines, with a progress bar on rank 0."""

import horovod.torch as hvd
from tqdm.auto import tqdm

from crpsgd_hvd.torch.local_sgd import LocalSGD

__all__ = ["fit", "fit_catalyst"]


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
            or :class:`StepResult` after its update, on every rank. It may
            save a checkpoint. To stop early, raise from it on every rank:
            between updates no collective is pending, so no rank waits.

    Returns:
        list of RoundResult or StepResult, one per update.
    """
    start_update = method.next_step if isinstance(method, LocalSGD) else method.next_round
    # The bar starts at the samples already done: nonzero after load_checkpoint.
    with progress_bar(method.plan.samples_per_worker, type(method).__name__, progress,
                      method.accounting.samples) as bar:
        return run_rounds(method, start_update, draw, loss_fn, bar, callback, {})


def fit_catalyst(catalyst, draw, loss_fn, *, progress=True, callback=None, outer_callback=None):
    """Run every outer iteration of Algorithm 2 and return the rounds' results, per outer iteration.

    Args:
        catalyst (CRPSGDCatalyst): the outer-loop and round driver.
        draw (callable): as for :func:`fit`. In epoch mode each inner call
            draws one epoch's worth of samples (all of it with
            ``leftover="final_round"``), so a :class:`ShardSampler` walks
            through one epoch per outer iteration.
        loss_fn (callable): the mean loss of f over the samples, as for
            :func:`fit`; the proximal term is added by ``catalyst``, not here.
        progress (bool): show a progress bar over all inner calls' samples on
            rank 0. Default: True.
        callback (callable, optional): called with each :class:`RoundResult`
            after its step, on every rank; ``result.round`` restarts at 1 in
            every outer iteration. It may save a checkpoint and, as for
            :func:`fit`, stop the run by raising on every rank.
        outer_callback (callable, optional): called as ``outer_callback(k,
            results)`` after outer iteration k has moved the anchor, with that
            iteration's list of RoundResult, on every rank.

    Returns:
        list of lists of RoundResult, one list per outer iteration run here.
        After :func:`load_checkpoint` inside an outer iteration, the first
        list contains that iteration's remaining rounds.
    """
    plan = catalyst.catalyst_plan
    results = []
    with progress_bar(plan.samples_per_worker, "CR-PSGD-Catalyst", progress, catalyst.accounting.samples) as bar:
        # A checkpoint loaded inside outer iteration k leaves k open: finish it first.
        k = catalyst.current_outer if catalyst.outer_open else catalyst.next_outer()
        while k is not None:
            inner = run_rounds(catalyst, catalyst.next_round, draw, loss_fn, bar, callback,
                               {"outer": f"{k}/{plan.num_outer}"})
            catalyst.end_outer()
            results.append(inner)
            if outer_callback is not None:
                outer_callback(k, inner)
            k = catalyst.next_outer()
    return results


def progress_bar(total_samples, description, progress, samples_done=0):
    """Return rank 0's bar over ``total_samples``, starting at ``samples_done``. Other ranks get a disabled one."""
    show = progress and hvd.rank() == 0
    return tqdm(total=total_samples, initial=samples_done, unit="sample", desc=description, disable=not show,
                mininterval=1.0)


def run_rounds(method, start_update, draw, loss_fn, bar, callback, postfix):
    """Run updates until ``start_update()`` returns None, advancing ``bar`` by each update's samples."""
    results = []
    while (spec := start_update()) is not None:
        for size in spec.micro_batch_sizes:
            method.backward(loss_fn(draw(size)), size)
        result = method.step()
        results.append(result)
        bar.update(result.batch_size)
        bar.set_postfix(**postfix, round=f"{result.round}/{method.plan.num_rounds}", batch=result.batch_size,
                        loss=f"{result.loss:.4g}", refresh=False)
        if callback is not None:
            callback(result)
    return results
