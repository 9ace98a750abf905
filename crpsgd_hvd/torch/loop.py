"""The training loops of Algorithms 1 and 2, with a progress bar on rank 0."""

import horovod.torch as hvd
from tqdm.auto import tqdm

__all__ = ["fit", "fit_catalyst"]


def fit(crpsgd, draw, loss_fn, *, progress=True, callback=None):
    """Run rounds until the budget is spent and return their results.

    Args:
        crpsgd (CRPSGD): the round driver.
        draw (callable): ``draw(n)`` returns the next ``n`` samples of this
            worker's shard, e.g. :meth:`ShardSampler.draw`.
        loss_fn (callable): ``loss_fn(samples)`` returns the mean loss over
            ``samples`` as a scalar tensor, computed with ``crpsgd.model``.
        progress (bool): show a progress bar over the per-worker budget on
            rank 0. Default: True.
        callback (callable, optional): called with each :class:`RoundResult`
            after its step, on every rank.

    Returns:
        list of RoundResult, one per round.
    """
    with progress_bar(crpsgd.plan.samples_per_worker, "CR-PSGD", progress) as bar:
        return run_rounds(crpsgd, draw, loss_fn, bar, callback, {})


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
            every outer iteration.
        outer_callback (callable, optional): called as ``outer_callback(k,
            results)`` after outer iteration k has moved the anchor, with that
            iteration's list of RoundResult, on every rank.

    Returns:
        list of lists of RoundResult, one list per outer iteration.
    """
    plan = catalyst.catalyst_plan
    results = []
    with progress_bar(plan.samples_per_worker, "CR-PSGD-Catalyst", progress) as bar:
        while (k := catalyst.next_outer()) is not None:
            inner = run_rounds(catalyst, draw, loss_fn, bar, callback, {"outer": f"{k}/{plan.num_outer}"})
            catalyst.end_outer()
            results.append(inner)
            if outer_callback is not None:
                outer_callback(k, inner)
    return results


def progress_bar(total_samples, description, progress):
    show = progress and hvd.rank() == 0
    return tqdm(total=total_samples, unit="sample", desc=description, disable=not show, mininterval=1.0)


def run_rounds(crpsgd, draw, loss_fn, bar, callback, postfix):
    """Run rounds until ``crpsgd.next_round()`` returns None, advancing ``bar`` by each round's samples."""
    results = []
    while (spec := crpsgd.next_round()) is not None:
        for size in spec.micro_batch_sizes:
            crpsgd.backward(loss_fn(draw(size)), size)
        result = crpsgd.step()
        results.append(result)
        bar.update(result.batch_size)
        bar.set_postfix(**postfix, round=f"{result.round}/{crpsgd.plan.num_rounds}", B_t=result.batch_size,
                        loss=f"{result.loss:.4g}", refresh=False)
        if callback is not None:
            callback(result)
    return results
