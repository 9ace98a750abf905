"""CR-PSGD under elastic Horovod: workers may join or leave between rounds.

The schedule fixes the global batch of round t, G_t = N_ref * B_t, where
N_ref (``reference_workers``) is the number of workers the run is planned
for. The N workers present in a round split G_t among themselves (see
:func:`crpsgd_hvd.elastic.worker_share`), every worker weights its
micro-batch gradients by their samples / G_t, and a sum allreduce gives every
worker the mean gradient over the whole global batch. The rounds, and the
parameters after each one, therefore do not depend on N: a job that grows
from 2 to 3 workers and shrinks back follows the same trajectory as a job
of fixed size, up to floating-point rounding.

Every worker loads the whole data set. :class:`GlobalBatchSampler` deals
each round's global batch from shuffled epochs over it, from the global
count of samples dealt, so a worker that joins computes its slice from the
state it receives. No sample appears twice in a round's global batch.

Horovod's elastic protocol drives the resizes: :class:`ElasticState` is a
``horovod.common.elastic.State`` whose ``commit()`` saves the driver, the
model, the optimizer and the data position in memory, and whose ``sync()``
checks the configuration across ranks and broadcasts rank 0's state to the
workers present. :func:`fit_elastic` runs the rounds inside
``horovod.torch.elastic.run``, committing after every ``commit_every``
rounds. A worker that fails mid-round makes the others roll back to the
last commit and repeat the rounds since then with the workers that remain.
"""

import copy
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Tuple

import horovod.torch as hvd
import torch
from horovod.common.elastic import State

from crpsgd_hvd._validation import check_int, check_real
from crpsgd_hvd.elastic import worker_share
from crpsgd_hvd.rounds import micro_batch_sizes
from crpsgd_hvd.torch.data import check_sample_tensors
from crpsgd_hvd.torch.loop import progress_bar
from crpsgd_hvd.torch.optimizer import CRPSGD, RoundResult, RoundSpec

__all__ = ["ElasticCRPSGD", "ElasticRoundResult", "ElasticRoundSpec", "ElasticState", "GlobalBatchSampler",
           "fit_elastic", "load_elastic_checkpoint", "save_elastic_checkpoint", "wait_for_host_update"]

logger = logging.getLogger(__name__)


class GlobalBatchSampler:
    """Deal each round's global batch from shuffled passes (epochs) over the whole data set.

    The data set is a stream of epochs, each a permutation of all M samples
    drawn from ``seed`` (the same on every worker); a round takes the next
    G_t samples of the stream. A round that crosses the end of an epoch would
    meet some of its samples again early in the next epoch, so the next
    epoch's permutation moves the samples that this round already took to
    its end. Every epoch still contains every sample once, and no sample appears
    twice in a round while G_t <= M.

    Args:
        tensors (sequence of torch.Tensor): the whole data set's tensors
            (for example inputs and targets), all with the same length along
            dim 0 and the same on every worker.
        seed (int): seed of the shuffling, >= 0; the same on every worker.
        shuffle (bool): permute each epoch; if False, epochs run in order.
            Default: True.
    """

    def __init__(self, tensors, seed, shuffle=True):
        self.tensors = check_sample_tensors(tensors)
        self.seed = check_int("seed", seed, minimum=0)
        self.shuffle = bool(shuffle)
        self.dealt = 0
        self.epoch = 0
        self.position = 0
        self.deferred = ()
        self._order = self._epoch_order(0, ())

    def __len__(self):
        return self.tensors[0].shape[0]

    def round_indices(self, global_batch):
        """Return the indices of the next round's ``global_batch`` samples, without moving past them."""
        return self._deal(global_batch)[0]

    def advance(self, global_batch):
        """Move past the next round's ``global_batch`` samples, once the round is done."""
        _, self.epoch, self.position, self.deferred, self._order = self._deal(global_batch)
        self.dealt += global_batch

    def samples(self, indices):
        """Return a tuple of tensors holding the samples at ``indices``."""
        return tuple(t[indices] for t in self.tensors)

    def describe(self):
        """Return the settings every worker must share, as a JSON-ready dict."""
        return {"length": len(self), "seed": self.seed, "shuffle": self.shuffle}

    def state_dict(self):
        return {**self.describe(), "dealt": self.dealt, "epoch": self.epoch, "position": self.position,
                "deferred": list(self.deferred)}

    def load_state_dict(self, state):
        saved = {key: state[key] for key in self.describe()}
        if saved != self.describe():
            raise ValueError(f"state was saved for data {saved}, this sampler has {self.describe()}")
        self.dealt = check_int("state['dealt']", state["dealt"], minimum=0)
        self.epoch = check_int("state['epoch']", state["epoch"], minimum=0)
        self.position = check_int("state['position']", state["position"], minimum=0)
        if self.position > len(self):
            raise ValueError(f"state['position'] must be <= the data set length {len(self)}, got {self.position}")
        self.deferred = tuple(state["deferred"])
        self._order = self._epoch_order(self.epoch, self.deferred)

    def _deal(self, global_batch):
        """Return the round's indices and the (epoch, position, deferred, order) after it."""
        global_batch = check_int("global_batch", global_batch, minimum=1)
        if global_batch > len(self):
            raise ValueError(f"global_batch must be <= the data set length {len(self)} so that no sample "
                             f"appears twice in a round, got {global_batch}")
        taken = self._order[self.position:self.position + global_batch]
        if len(taken) == global_batch:
            return taken, self.epoch, self.position + global_batch, self.deferred, self._order
        deferred = tuple(taken.tolist())
        order = self._epoch_order(self.epoch + 1, deferred)
        rest = global_batch - len(taken)
        return torch.cat([taken, order[:rest]]), self.epoch + 1, rest, deferred, order

    def _epoch_order(self, epoch, deferred):
        if self.shuffle:
            # One generator per epoch, so that any epoch's order can be rebuilt from the state.
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self), generator=generator)
        else:
            order = torch.arange(len(self))
        if not deferred:
            return order
        late = torch.isin(order, torch.tensor(deferred, dtype=order.dtype))
        return torch.cat([order[~late], order[late]])


# eq=False: the spec carries tensors, which do not compare to a single bool.
@dataclasses.dataclass(frozen=True, eq=False)
class ElasticRoundSpec(RoundSpec):
    """The next round of an elastic job, from this worker's side.

    Attributes:
        round (int): t, 1-based, counted over the whole job.
        batch_size (int): this worker's share of the global batch.
        micro_batch_sizes (tuple of int): the sizes of this worker's micro-batches.
        global_batch_size (int): G_t = N_ref * B_t, over all workers present.
        num_workers (int): N, the workers present in this round.
        indices (torch.Tensor): the data-set indices of this worker's share, in order.
        micro_batches (tuple of tuples of torch.Tensor): this worker's
            samples, split as ``micro_batch_sizes``.
    """

    global_batch_size: int = 0
    num_workers: int = 0
    indices: torch.Tensor = None
    micro_batches: Tuple[Tuple[torch.Tensor, ...], ...] = ()


@dataclasses.dataclass(frozen=True)
class ElasticRoundResult(RoundResult):
    """A completed round of an elastic job.

    ``batch_size`` and ``samples`` count per worker at the reference number
    of workers, as in the plan: B_t and B_1 + ... + B_t.

    Attributes:
        global_batch_size (int): G_t, samples over all workers.
        num_workers (int): N, the workers present in the round.
        worker_batch_size (int): this worker's share of G_t.
    """

    global_batch_size: int = 0
    num_workers: int = 0
    worker_batch_size: int = 0


class ElasticCRPSGD(CRPSGD):
    """Run Algorithm 1 (CR-PSGD) in an elastic Horovod job, with the global batch fixed by the schedule.

    Build it on every worker, including workers that join later, before
    ``fit_elastic``; the constructor runs no collective operation. The
    cross-rank configuration check and the broadcast of rank 0's state run in
    :class:`ElasticState`'s ``sync()``, before the first round and after
    every resize. The loop::

        sampler = GlobalBatchSampler((inputs, targets), seed=0)
        crpsgd = ElasticCRPSGD(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               GeometricSchedule(b1=2, rho=1.1), budget=10_000,
                               reference_workers=4, data=sampler, micro_batch_size=256)
        state = ElasticState(crpsgd)
        results = fit_elastic(state, lambda batch: loss_fn(model(batch[0]), batch[1]))

    Args:
        model, optimizer, schedule, compression, on_nonfinite: as for
            :class:`CRPSGD`.
        budget (int): T, stochastic gradients per worker at the reference
            number of workers; the job computes N_ref * T gradients in all
            (less what ``leftover="drop"`` leaves).
        reference_workers (int): N_ref >= 1, the number of workers the
            schedule's per-worker batches are meant for. The global batch
            of round t is N_ref * B_t whatever the number of workers present.
        data (GlobalBatchSampler): the whole data set, the same on every worker.
        micro_batch_size (int): the most samples per forward/backward pass, >= 1.
        leftover (str): ``"drop"`` or ``"final_round"``, as for :class:`CRPSGD`.

    Raises:
        ValueError: for an invalid argument, naming it; if the largest global
            batch of the plan exceeds the data set (a sample would appear
            twice in a round); in ``sync()``, on every rank, if the ranks were
            given different configurations; in :meth:`next_round`, on every
            rank, if the global batch is smaller than the number of workers
            present, so that some worker would get no sample.

    Note:
        Only the global process set is supported, with ``op=hvd.Sum``
        inside. The communication accounting counts each round's bytes by
        the ring model with the workers present in that round; ``samples``
        counts per worker at the reference number of workers, so
        ``total_samples`` is the number of gradients computed by all workers.
    """

    collectives_at_construction = False
    # The plan counts N_ref workers; the workers present may be fewer or more.
    plan_workers_name = "reference workers"

    def __init__(self, model, optimizer, schedule, budget, *, reference_workers, data, micro_batch_size,
                 leftover="drop", compression=None, on_nonfinite="raise"):
        self.reference_workers = check_int("reference_workers", reference_workers, minimum=1)
        if not isinstance(data, GlobalBatchSampler):
            raise ValueError(f"data must be a GlobalBatchSampler, got {type(data).__name__}")
        self.data = data
        super().__init__(model, optimizer, schedule, budget, micro_batch_size=micro_batch_size,
                         leftover=leftover, compression=compression, op=hvd.Sum, broadcast=False,
                         on_nonfinite=on_nonfinite)
        largest = max(row.batch_per_worker for row in self.plan.rounds) * self.reference_workers
        if largest > len(data):
            raise ValueError(f"the largest global batch of the plan, {largest} = reference_workers "
                             f"{self.reference_workers} x B_t, must be <= the data set length {len(data)} so "
                             "that no sample appears twice in a round: cap the schedule with b_max, lower the "
                             "budget or use more data")

    def _wrap_optimizer(self, optimizer, named):
        # Given groups, Horovod 0.28.1's DistributedOptimizer broadcasts the parameter order from
        # rank 0 in its constructor, a collective that a worker joining a running job cannot make.
        # Build it without groups, then form the one group as its hooks expect, in the model's
        # parameter order, which the configuration check in sync() compares across ranks.
        wrapped = hvd.DistributedOptimizer(optimizer, named_parameters=named, compression=self.compression,
                                           op=self.op)
        group = tuple(p for _, p in named)
        wrapped._groups = [list(group)]
        wrapped._p_to_group = {p: group for p in group}
        wrapped._group_counts = {group: 0}
        return wrapped

    def _plan_workers(self):
        return self.reference_workers

    def configuration(self):
        return {**super().configuration(), "reference_workers": self.reference_workers,
                "data": self.data.describe()}

    def _make_round_spec(self, batch):
        global_batch = self.reference_workers * batch
        num_workers, rank = hvd.size(), hvd.rank()
        if global_batch < num_workers:
            raise ValueError(f"round {self.state.rounds + 1}: the global batch {global_batch} = reference_workers "
                             f"{self.reference_workers} x B_t {batch} must be >= the {num_workers} workers "
                             "present, so that every worker gets a sample: raise B1 or reference_workers, or "
                             "lower --max-np")
        start, size = worker_share(global_batch, num_workers, rank)
        indices = self.data.round_indices(global_batch)[start:start + size]
        sizes = micro_batch_sizes(size, self.micro_batch_size)
        pieces = torch.split(indices, sizes)
        return ElasticRoundSpec(self.state.rounds + 1, size, sizes, global_batch, num_workers, indices,
                                tuple(self.data.samples(piece) for piece in pieces))

    def _weight_denominator(self, spec):
        return spec.global_batch_size

    def _mean_loss(self, spec):
        # The weighted losses of this worker sum to its mean loss times its share of the global batch.
        return float(self._loss_sum) * spec.global_batch_size / spec.batch_size

    def _record_allreduce(self, tensors):
        self.accounting.record_allreduce(self._payload_bytes(tensors), num_workers=hvd.size())

    def _complete_round(self, spec):
        batch = spec.global_batch_size // self.reference_workers
        self.state = self.state.advance(batch)
        self.accounting.record_round(batch)
        self.data.advance(spec.global_batch_size)
        return self._round_result(spec)

    def _round_result(self, spec, skipped=False):
        return ElasticRoundResult(spec.round, spec.global_batch_size // self.reference_workers,
                                  self._mean_loss(spec), self.state.samples, self.accounting.state_dict(),
                                  skipped, global_batch_size=spec.global_batch_size,
                                  num_workers=spec.num_workers, worker_batch_size=spec.batch_size)

    def _reject_round(self, spec):
        result = super()._reject_round(spec)  # raises under on_nonfinite="raise"
        # The retry takes the next samples; the same ones would give the same non-finite gradient.
        self.data.advance(spec.global_batch_size)
        return result

    def abandon_round(self):
        """Drop an open round without a step, e.g. after a worker failed during its allreduce."""
        self._round = None
        # Loading its own state resets Horovod's pending handles and backward-pass counters.
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        # The group's hook count is not among them. A rejected enqueue leaves it full, so the repeated
        # round would send one allreduce per parameter, and a rank with a correct count would wait forever.
        for group in self.optimizer._group_counts:
            self.optimizer._group_counts[group] = 0
        self.optimizer.zero_grad()

    def state_dict(self):
        """Return :meth:`CRPSGD.state_dict` plus the reference number of workers and the data position."""
        return {**super().state_dict(), "reference_workers": self.reference_workers,
                "data": self.data.state_dict()}

    def load_state_dict(self, state):
        if state["reference_workers"] != self.reference_workers:
            raise ValueError(f"state was saved for reference_workers={state['reference_workers']}, this run has "
                             f"{self.reference_workers}")
        super().load_state_dict(state)
        self.data.load_state_dict(state["data"])

    def synchronize(self, root_rank=0):
        """Check the configuration across ranks, then give every rank ``root_rank``'s state.

        A collective over the workers present: :class:`ElasticState` calls it
        in ``sync()``, before the first round, after workers join and after a
        failure. Horovod skips ``sync()`` when workers only leave, because the
        remaining workers already hold the same committed state.
        """
        self.check_configuration()
        self.broadcast_state(root_rank)
        progress = hvd.broadcast_object(
            {"round_state": self.state.state_dict(), "accounting": self.accounting.state_dict(),
             "data": self.data.state_dict()}, root_rank=root_rank, name="crpsgd.elastic.progress")
        self.state = type(self.state).from_state_dict(progress["round_state"])
        self.accounting.load_state_dict(progress["accounting"])
        self.data.load_state_dict(progress["data"])

    def log_workers(self, event):
        """Log on rank 0 how many workers continue from which round, after ``event``."""
        if hvd.rank() == 0:
            logger.info("elastic CR-PSGD: %d workers at round %d of %d (%s)", hvd.size(), self.state.rounds,
                        self.plan.num_rounds, event)


class ElasticState(State):
    """Horovod elastic state of an :class:`ElasticCRPSGD`: its model, optimizer, progress and data position.

    ``commit()`` copies the driver's :meth:`ElasticCRPSGD.state_dict` in
    memory and raises Horovod's ``HostsUpdatedInterrupt`` when workers were
    added or removed; ``restore()`` goes back to the last commit after a
    worker failed; ``sync()`` runs :meth:`ElasticCRPSGD.synchronize`.

    Attributes:
        method (ElasticCRPSGD): the driver.
        results (list of ElasticRoundResult): the committed rounds this
            process took part in; a restore drops the uncommitted ones.
    """

    def __init__(self, method):
        if not isinstance(method, ElasticCRPSGD):
            raise ValueError(f"method must be an ElasticCRPSGD, got {type(method).__name__}")
        self.method = method
        self.results = []
        self._started = False
        super().__init__(bcast_object=hvd.broadcast_object, get_rank=hvd.rank)
        self.save()

    def save(self):
        self._saved = copy.deepcopy(self.method.state_dict())
        self._saved_results = len(self.results)

    def restore(self):
        self.method.abandon_round()
        self.method.load_state_dict(copy.deepcopy(self._saved))
        del self.results[self._saved_results:]

    def sync(self):
        self.method.synchronize()
        # A worker that joined now has the job's state: save it, so a failure before the
        # next commit rolls back to it rather than to this worker's start.
        self.save()
        if not self._started:
            self.method.log_workers("start")
            self._started = True

    def reset(self):
        # Horovod calls this after every change of workers, including a shrink, which skips sync().
        self.method.log_workers("workers changed")


def fit_elastic(state, loss_fn, *, commit_every=1, progress=True, callback=None):
    """Run the rounds of ``state.method`` under ``horovod.torch.elastic.run`` until the budget is spent.

    Args:
        state (ElasticState): the elastic state of the driver.
        loss_fn (callable): ``loss_fn(samples)`` returns the mean loss over
            ``samples`` (a tuple of tensors from the data set) as a scalar
            tensor, computed with ``state.method.model``.
        commit_every (int): commit the state after every this many rounds,
            >= 1, and after the last. A commit copies the model and optimizer
            state in memory; a failure repeats the rounds since the last one.
            Default: 1.
        progress (bool): show a progress bar on rank 0. Default: True.
        callback (callable, optional): called as ``callback(state, result)``
            after each round and its commit, on every rank. It may call
            ``state.check_host_updates()``.

    Returns:
        list of ElasticRoundResult: ``state.results``, the rounds this process took part in.
    """
    commit_every = check_int("commit_every", commit_every, minimum=1)
    if not isinstance(state, ElasticState):
        raise ValueError(f"state must be an ElasticState, got {type(state).__name__}")
    return hvd.elastic.run(run_elastic_rounds)(state, loss_fn, commit_every, progress, callback)


def run_elastic_rounds(state, loss_fn, commit_every, progress, callback):
    """Run rounds from the state's position; the body that ``horovod.torch.elastic.run`` repeats after a reset."""
    method = state.method
    # After a resize the bar starts again at the committed samples.
    with progress_bar(method.plan.samples_per_worker, "elastic CR-PSGD", progress, method.state.samples) as bar:
        while (spec := method.next_round()) is not None:
            for samples in spec.micro_batches:
                method.backward(loss_fn(samples), len(samples[0]))
            result = method.step()
            state.results.append(result)
            if method.state.rounds % commit_every == 0:
                state.commit()
            bar.update(0 if result.skipped else result.batch_size)
            bar.set_postfix(round=f"{result.round}/{method.plan.num_rounds}", workers=result.num_workers,
                            loss=f"{result.loss:.4g}", refresh=False)
            if callback is not None:
                callback(state, result)
        state.commit()
    return list(state.results)


def wait_for_host_update(state, timeout=60.0, interval=0.2):
    """Wait, on every rank, until Horovod announces new or removed hosts; then its interrupt propagates.

    For a planned resize: after changing what the host discovery script
    prints, call this from a :func:`fit_elastic` callback on every rank. It
    calls ``state.check_host_updates()``, a collective, every ``interval``
    seconds, which raises Horovod's ``HostsUpdatedInterrupt`` on every rank at
    once when the driver's notice arrives; ``horovod.torch.elastic.run`` then
    resets and syncs the workers.

    Raises:
        TimeoutError: on every rank, if no notice arrives within ``timeout``
            seconds (counted in calls, so every rank gives up at the same call).
    """
    timeout = check_real("timeout", timeout, greater_than=0.0)
    interval = check_real("interval", interval, greater_than=0.0)
    for _ in range(max(1, round(timeout / interval))):
        time.sleep(interval)
        state.check_host_updates()
    raise TimeoutError(f"no host update reached the workers in {timeout} s: check that the host discovery "
                       "script prints the new hosts")


def save_elastic_checkpoint(path, state):
    """Write the driver's state after the current round to the file ``path``, from rank 0 only.

    After a completed round every rank of an elastic job has the same
    state, so one file serves a resume with any number of workers. Call it
    between rounds, e.g. from the :func:`fit_elastic` callback; other ranks
    return at once. The file is written to a temporary name and renamed, so a
    crash while writing leaves the previous file intact.

    Raises:
        RuntimeError: inside a round, whose partial accumulation is not saved.
    """
    if not isinstance(state, ElasticState):
        raise ValueError(f"state must be an ElasticState, got {type(state).__name__}")
    saved = state.method.state_dict()  # raises inside a round, on every rank
    if hvd.rank() != 0:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(saved, temporary)
    os.replace(temporary, path)


def load_elastic_checkpoint(path, state):
    """Restore the driver from the file ``path`` and commit it, before :func:`fit_elastic`.

    Call it on every rank of the new job, whatever its number of workers; a
    worker that joins later receives the state in ``sync()``.

    Raises:
        FileNotFoundError: if ``path`` is missing.
        ValueError: if the file was saved with another schedule, budget,
            reference number of workers or data set.
    """
    if not isinstance(state, ElasticState):
        raise ValueError(f"state must be an ElasticState, got {type(state).__name__}")
    state.method.load_state_dict(torch.load(path, weights_only=True))
    state.save()
