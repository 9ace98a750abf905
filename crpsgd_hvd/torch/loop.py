"""The training loop of Algorithm 1, with a progress bar on rank 0."""

import horovod.torch as hvd
from tqdm.auto import tqdm

__all__ = ["fit"]


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
    show = progress and hvd.rank() == 0
    bar = tqdm(total=crpsgd.plan.samples_per_worker, unit="sample", desc="CR-PSGD", disable=not show,
               mininterval=1.0)
    results = []
    with bar:
        while (spec := crpsgd.next_round()) is not None:
            for size in spec.micro_batch_sizes:
                crpsgd.backward(loss_fn(draw(size)), size)
            result = crpsgd.step()
            results.append(result)
            bar.update(result.batch_size)
            bar.set_postfix(round=f"{result.round}/{crpsgd.plan.num_rounds}", B_t=result.batch_size,
                            loss=f"{result.loss:.4g}", refresh=False)
            if callback is not None:
                callback(result)
    return results
