"""Algorithm 1 (CR-PSGD) around ``horovod.torch.DistributedOptimizer``.

Each communication round t, every worker computes the mean gradient of B_t
samples of its own shard as micro-batches of at most ``micro_batch_size``
samples. Their gradients accumulate locally, each weighted by its share of
B_t, and Horovod's optimizer allreduces once, when the last micro-batch's
backward pass is done. The wrapped ``torch.optim`` optimizer then steps once.

The per-round count of micro-batches changes as B_t grows, so the wrapper
resets Horovod's ``backward_passes_per_step`` at the start of each round.
All trainable parameters form one Horovod group, so each round's gradients
leave in one grouped allreduce, which Horovod fuses into one collective while
the gradients fit in its fusion buffer (``HOROVOD_FUSION_THRESHOLD``,
128 MiB by default).
"""

import dataclasses
import logging
import warnings
from typing import Optional, Tuple

import horovod.torch as hvd
import torch

from crpsgd_hvd._validation import check_choice, check_int, check_real
from crpsgd_hvd.accounting import CommunicationAccounting
from crpsgd_hvd.plan import make_plan
from crpsgd_hvd.rounds import (LEFTOVER_POLICIES, NONFINITE_POLICIES, RoundState, check_budget, micro_batch_sizes,
                               next_round_batch)
from crpsgd_hvd.schedules import BatchSchedule
from crpsgd_hvd.torch._consistency import check_same_on_every_rank
from crpsgd_hvd.torch._micro_batches import (broadcast_model_and_optimizer, check_micro_batches_done,
                                             check_unclaimed, claim, weighted_backward)

__all__ = ["CRPSGD", "NONFINITE_POLICIES", "RoundResult", "RoundSpec"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RoundSpec:
    """The next round's demands on the training loop: its index, batch and micro-batch sizes.

    Attributes:
        round (int): t, 1-based.
        batch_size (int): B_t, samples this worker must process in the round.
        micro_batch_sizes (tuple of int): the sizes of the micro-batches, in
            order; they sum to B_t and all but the last equal ``micro_batch_size``.
    """

    round: int
    batch_size: int
    micro_batch_sizes: Tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class RoundResult:
    """A completed round.

    Attributes:
        round (int): t.
        batch_size (int): B_t per worker.
        loss (float): this worker's mean loss over its B_t samples, before the
            step. Only the gradients are averaged across workers, so other
            ranks see other values.
        samples (int): per-worker samples consumed through this round.
        accounting (dict): the counters after this round.
        skipped (bool): True if the averaged gradient was not finite and
            ``on_nonfinite="skip"`` dropped the round without a step; then
            ``round`` and ``samples`` are those of the next attempt's start.
    """

    round: int
    batch_size: int
    loss: float
    samples: int
    accounting: dict
    skipped: bool = False


class CRPSGD:
    r"""Run Algorithm 1 of the CR-PSGD paper with a growing per-worker batch.

    .. math::

        g_t = \frac{1}{N} \sum_{i=1}^{N} \frac{1}{B_t} \sum_{j=1}^{B_t} \nabla F(x_t; \zeta_{t,i,j}),
        \qquad x_{t+1} = \mathrm{step}(x_t, g_t)

    Key: N workers; B_t the schedule's batch of round t; zeta_{t,i,j} the j-th
    sample of worker i in round t; ``step`` the wrapped optimizer's update
    (x - gamma g for plain SGD, with momentum and weight decay as configured).

    Use it from a loop of your own::

        crpsgd = CRPSGD(model, torch.optim.SGD(model.parameters(), lr=0.1),
                        GeometricSchedule(b1=2, rho=1.1), budget=10_000, micro_batch_size=256)
        while (spec := crpsgd.next_round()) is not None:
            for size in spec.micro_batch_sizes:
                inputs, targets = next_samples(size)          # from this worker's shard
                crpsgd.backward(loss_fn(model(inputs), targets), size)
            crpsgd.step()

    or let :func:`crpsgd_hvd.torch.fit` run that loop with a progress bar.

    Args:
        model (torch.nn.Module): the model; its trainable parameters are
            broadcast from ``root_rank`` unless ``broadcast=False``.
        optimizer (torch.optim.Optimizer): a plain optimizer over the model's
            parameters (not already a Horovod ``DistributedOptimizer``).
            Horovod builds a new optimizer object over its parameter groups:
            use :attr:`optimizer` afterwards, for learning-rate schedulers too.
        schedule (BatchSchedule): per-worker batch B_t.
        budget (int): T, stochastic gradients per worker, >= B1.
        micro_batch_size (int): the most samples per forward/backward pass, >= 1.
        leftover (str): ``"drop"`` the T - S(R(T)) samples the last full
            round cannot use, as the paper does, or spend them in a
            ``"final_round"``. Default: ``"drop"``.
        compression: Horovod compression, e.g. ``hvd.Compression.fp16``.
            Default: none.
        op: ``hvd.Average`` (default) or ``hvd.Sum``. Adasum is rejected
            because it does not average, so the round's gradient would not
            be the mean over the global batch.
        process_set: Horovod process set whose ranks take part. Default: all.
        gradient_predivide_factor (float): as in Horovod: divide by this
            before the sum and by size / factor after. Default: 1.0.
        broadcast (bool): broadcast parameters and optimizer state from
            ``root_rank`` now. Default: True.
        root_rank (int): rank whose initial state everyone takes. Default: 0.
        on_nonfinite (str): what :meth:`step` does when the averaged gradient
            holds a NaN or an infinity: ``"raise"`` a ``FloatingPointError``,
            or ``"skip"`` the round (no optimizer step, the round index and
            samples count stay, rank 0 warns with the round index). The
            allreduce gives every rank the same averaged gradient, so every
            rank reaches the same decision without extra communication.
            Default: ``"raise"``.

    Raises:
        ValueError: for an invalid argument; the message names it. Also, on
            every rank, when the ranks were given different configurations
            (schedule, budget, micro-batch size, leftover, op, parameter
            shapes, ...): the message lists each differing field with its
            values and ranks. The check is two small allgathers before the
            broadcast.
        RuntimeError: if Horovod is not initialised.

    Note:
        The hook that triggers the allreduce counts backward passes per
        parameter, so every backward pass on the model's parameters inside a
        round must go through :meth:`backward`. A parameter that receives no
        gradient in a round (unused in the forward pass) makes Horovod fall
        back to one allreduce per tensor for that round; ``accounting``
        counts those calls in ``allreduce_calls``.
    """

    def __init__(self, model, optimizer, schedule: BatchSchedule, budget, *, micro_batch_size,
                 leftover="drop", compression=None, op=None, process_set=None,
                 gradient_predivide_factor=1.0, broadcast=True, root_rank=0, on_nonfinite="raise"):
        if not hvd.is_initialized():
            raise RuntimeError("Horovod is not initialised: call horovod.torch.init() before CRPSGD(...)")
        check_arguments(model, optimizer, schedule)
        self.model = model
        self.schedule = schedule
        self.budget = check_budget(schedule, budget)
        self.micro_batch_size = check_int("micro_batch_size", micro_batch_size, minimum=1)
        self.leftover = check_choice("leftover", leftover, LEFTOVER_POLICIES)
        self.compression = hvd.Compression.none if compression is None else compression
        self.op = hvd.Average if op is None else op
        if self.op not in (hvd.Average, hvd.Sum):
            raise ValueError(f"op must be hvd.Average or hvd.Sum so that each round applies the "
                             f"global batch's mean (or sum) gradient, got {op!r}")
        self.process_set = hvd.global_process_set if process_set is None else process_set
        self.gradient_predivide_factor = check_real(
            "gradient_predivide_factor", gradient_predivide_factor, greater_than=0.0)
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)

        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model has no parameters with requires_grad=True, so there is nothing to train")
        check_unclaimed([p for _, p in named], type(self).__name__)
        self.optimizer = self._wrap_optimizer(optimizer, named)
        self._count_allreduces()
        claim([p for _, p in named], f"a {type(self).__name__}")

        self.num_workers = self._plan_workers()
        num_params = sum(p.numel() for _, p in named)
        self.plan = make_plan(schedule, self.budget, self.num_workers, num_params,
                              self._wire_bytes_per_param(named[0][1]), self.leftover)
        self.state = RoundState()
        self.accounting = CommunicationAccounting(num_workers=self.num_workers)
        self._round: Optional[RoundSpec] = None
        self._micro_batches_done = 0
        self._loss_sum = None

        # An elastic driver runs these collectives in its state's sync(), because a worker that
        # joins a running job builds its driver while the others are not in a collective.
        if self.collectives_at_construction:
            self.check_configuration()
            if broadcast:
                self.broadcast_state(root_rank)
        if hvd.rank() == root_rank:
            logger.info("CR-PSGD plan: %d rounds, %d samples per worker of budget %d, %d %s "
                        "(classical PSGD at batch %d: %d rounds)", self.plan.num_rounds,
                        self.plan.samples_per_worker, self.budget, self.num_workers, self.plan_workers_name,
                        schedule.first_batch, self.plan.psgd_rounds)

    # True: __init__ checks the configuration across ranks and broadcasts the start state.
    collectives_at_construction = True
    # The name of the plan's worker count N in the plan's log line.
    plan_workers_name = "workers"

    def configuration(self):
        """Return the settings that every rank must share, as a JSON-ready dict."""
        return {
            "schedule": self.schedule.describe(),
            "budget": self.budget,
            "micro_batch_size": self.micro_batch_size,
            "leftover": self.leftover,
            "op": "Average" if self.op == hvd.Average else "Sum",
            "gradient_predivide_factor": self.gradient_predivide_factor,
            "on_nonfinite": self.on_nonfinite,
            "parameter_shapes": [list(p.shape) for p in self.model.parameters() if p.requires_grad],
        }

    def _wrap_optimizer(self, optimizer, named):
        """Return Horovod's DistributedOptimizer over ``named`` parameters, all in one group."""
        return hvd.DistributedOptimizer(
            optimizer, named_parameters=named, compression=self.compression, op=self.op,
            gradient_predivide_factor=self.gradient_predivide_factor,
            groups=[[p for _, p in named]], process_set=self.process_set)

    def _plan_workers(self):
        """Return N, the workers whose per-worker batches the plan and the accounting count."""
        return self.process_set.size()

    def check_configuration(self):
        """Raise the same ValueError on every rank unless all ranks share :meth:`configuration`."""
        check_same_on_every_rank(self.configuration(), self.process_set, "crpsgd.configuration", "configuration")

    def broadcast_state(self, root_rank=0):
        """Give every rank the parameters and optimizer state of ``root_rank``."""
        broadcast_model_and_optimizer(self.model, self.optimizer, root_rank, "crpsgd")

    def next_round(self) -> Optional[RoundSpec]:
        """Start the next round and return what it needs, or None when the budget is spent."""
        if self._round is not None:
            raise RuntimeError(f"round {self._round.round} is still open: call step() after its "
                               f"{len(self._round.micro_batch_sizes)} micro-batches before next_round()")

        batch = next_round_batch(self.schedule, self.budget, self.state, self.leftover)
        if batch is None:
            return None
        spec = self._make_round_spec(batch)
        self.optimizer.zero_grad()
        self.optimizer.set_backward_passes_per_step(len(spec.micro_batch_sizes))

        self._round = spec
        self._micro_batches_done = 0
        self._loss_sum = None
        return self._round

    def _make_round_spec(self, batch):
        """Return the spec of the next round, whose per-worker batch from the schedule is ``batch``."""
        return RoundSpec(self.state.rounds + 1, batch, micro_batch_sizes(batch, self.micro_batch_size))

    def backward(self, loss, num_samples):
        """Back-propagate one micro-batch's mean ``loss``, weighted by ``num_samples`` / B_t.

        ``num_samples`` must equal the next entry of the round's
        ``micro_batch_sizes``. After the last micro-batch, Horovod starts the
        round's allreduce in the background.
        """
        spec = self._require_open_round("backward()")
        detached = weighted_backward(loss, num_samples, spec.micro_batch_sizes, self._micro_batches_done,
                                     self._weight_denominator(spec), f"round {spec.round}")
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._micro_batches_done += 1

    def step(self) -> RoundResult:
        """Finish the round: wait for its allreduce, call :meth:`after_allreduce`, step the optimizer, count."""
        spec = self._require_open_round("step()")
        check_micro_batches_done(spec.micro_batch_sizes, self._micro_batches_done, f"round {spec.round}")

        self.optimizer.synchronize()
        if not self._gradients_finite():
            return self._reject_round(spec)
        self.after_allreduce()
        with self.optimizer.skip_synchronize():
            self.optimizer.step()
        self._round = None
        return self._complete_round(spec)

    def _weight_denominator(self, spec):
        """Return the samples whose mean gradient the round's allreduce must produce on this worker."""
        return spec.batch_size

    def _complete_round(self, spec):
        """Advance the round index, samples count and accounting after the step of ``spec``."""
        self.state = self.state.advance(spec.batch_size)
        self.accounting.record_round(spec.batch_size)
        return self._round_result(spec)

    def _round_result(self, spec, skipped=False):
        return RoundResult(spec.round, spec.batch_size, self._mean_loss(spec), self.state.samples,
                           self.accounting.state_dict(), skipped)

    def _mean_loss(self, spec):
        """Return this worker's mean loss over its samples of the round ``spec``."""
        return float(self._loss_sum)

    def after_allreduce(self):
        """Change the round's averaged gradient in ``.grad`` before the optimizer step; by default, nothing.

        :meth:`step` calls this once per round, after Horovod's allreduce has
        written the mean gradient over all workers into each parameter's
        ``.grad`` and before the wrapped optimizer updates the parameters.
        Subclasses override it to add a term that every worker computes
        identically, such as the proximal gradient of CR-PSGD-Catalyst.
        """

    def _gradients_finite(self):
        # Checked after the allreduce: every rank has the same averaged
        # gradient, so every rank takes the same branch with no extra collective.
        grads = [p.grad for p in self.model.parameters() if p.requires_grad and p.grad is not None]
        return all(bool(torch.isfinite(grad).all()) for grad in grads)

    def _reject_round(self, spec):
        """Close a round whose averaged gradient is not finite, then raise or skip per ``on_nonfinite``."""
        self._round = None
        self.optimizer.zero_grad()
        message = (f"round {spec.round} (batch {spec.batch_size}, after {self.state.samples} samples per "
                   f"worker): the averaged gradient contains NaN or infinite values")
        if self.on_nonfinite == "raise":
            raise FloatingPointError(f"{message}; no step was taken. Pass on_nonfinite='skip' to drop "
                                     "such rounds, or find the rank whose loss is not finite")
        if hvd.rank() == 0:
            warnings.warn(f"{message}; skipped it without a step, and the next round repeats round "
                          f"{spec.round} with fresh samples", RuntimeWarning, stacklevel=3)
        return self._round_result(spec, skipped=True)

    @property
    def round_open(self):
        """True between :meth:`next_round` and :meth:`step`."""
        return self._round is not None

    def state_dict(self):
        """Return everything needed to continue after a completed round, model parameters included.

        The round index and samples count (the schedule position), the
        accounting, the optimizer state and the model's ``state_dict``
        (parameters and buffers). The data position is the caller's: see
        :func:`crpsgd_hvd.torch.save_checkpoint`, which stores a
        :class:`ShardSampler`'s state beside this.

        Raises:
            RuntimeError: between :meth:`next_round` and :meth:`step`, because
                the round's partial gradient accumulation is not saved.
        """
        if self._round is not None:
            raise RuntimeError(f"cannot save state inside round {self._round.round}, because its partial "
                               "gradient accumulation is not saved: save after step()")
        return {
            "schedule": self.schedule.describe(),
            "budget": self.budget,
            "round_state": self.state.state_dict(),
            "accounting": self.accounting.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "model": self.model.state_dict(),
        }

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` taken with the same schedule and budget.

        A state without a ``"model"`` entry (saved before parameters were
        part of it) leaves the model's parameters as they are.
        """
        if state["schedule"] != self.schedule.describe() or state["budget"] != self.budget:
            raise ValueError(
                f"state was saved for schedule {state['schedule']} and budget {state['budget']}, "
                f"this run has {self.schedule.describe()} and {self.budget}")
        if self._round is not None:
            raise RuntimeError(f"cannot load state inside round {self._round.round}: call step() first")
        self.state = RoundState.from_state_dict(state["round_state"])
        self.accounting.load_state_dict(state["accounting"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "model" in state:
            self.model.load_state_dict(state["model"])

    def _require_open_round(self, caller):
        if self._round is None:
            raise RuntimeError(f"{caller} needs an open round: call next_round() first")
        return self._round

    def _wire_bytes_per_param(self, param):
        if self.compression is hvd.Compression.fp16 and param.is_floating_point():
            return 2
        return param.element_size()

    def _count_allreduces(self):
        """Count each collective call Horovod's optimizer issues, with the bytes it carries."""
        optimizer = self.optimizer
        grouped, single = optimizer._grouped_allreduce_grad_async, optimizer._allreduce_grad_async
        factor = self.gradient_predivide_factor

        def grouped_allreduce(params):
            # Horovod 0.28.1's grouped path ignores gradient_predivide_factor; apply it here.
            if factor == 1.0 or self.op != hvd.Average:
                handle, contexts = grouped(params)
                tensors = [p.grad for p in params]
            else:
                name = optimizer._parameter_names.get(params[0])
                tensors, contexts = zip(*[self.compression.compress(p.grad) for p in params])
                handle = hvd.grouped_allreduce_async_(
                    list(tensors), name=name, op=self.op, prescale_factor=1.0 / factor,
                    postscale_factor=factor, process_set=self.process_set)
            self._record_allreduce(tensors)
            return handle, contexts

        def single_allreduce(param):
            result = single(param)
            self._record_allreduce([param.grad])
            return result

        optimizer._grouped_allreduce_grad_async = grouped_allreduce
        optimizer._allreduce_grad_async = single_allreduce

    def _record_allreduce(self, tensors):
        self.accounting.record_allreduce(self._payload_bytes(tensors))

    def _payload_bytes(self, tensors):
        return sum(t.numel() * self._wire_bytes_per_param(t) for t in tensors)


def check_arguments(model, optimizer, schedule):
    """Reject arguments of the wrong kind with a message that names them."""
    check_model_and_optimizer(model, optimizer)
    if not isinstance(schedule, BatchSchedule):
        raise ValueError(f"schedule must be a crpsgd_hvd BatchSchedule, got {type(schedule).__name__}")


def check_model_and_optimizer(model, optimizer):
    """Reject a model that is no ``torch.nn.Module`` and an optimizer that is no plain torch optimizer."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if hasattr(optimizer, "_allreduce_grad_async"):
        raise ValueError("optimizer must be a plain torch.optim optimizer, got a Horovod "
                         "DistributedOptimizer: CRPSGD and LocalSGD handle the communication themselves")
