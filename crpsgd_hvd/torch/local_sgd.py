r"""Local SGD (periodic model averaging) on Horovod, a baseline of Yu and Jin's CR-PSGD paper (ICML 2019).

Every worker steps its own copy of the model with a plain ``torch.optim``
optimizer on batches of b samples of its own shard, and no gradient is
communicated. After every H local steps, and after the last one, the workers
average their parameters in one grouped allreduce:

.. math::

    x^{(i)}_{k+1} = \mathrm{step}\bigl(x^{(i)}_k, g^{(i)}_k\bigr), \qquad
    x^{(i)}_{k+1} \leftarrow \frac{1}{N} \sum_{j=1}^{N} x^{(j)}_{k+1}
    \quad \text{when } H \mid k + 1 \text{ or } k + 1 = K

Key: x^(i)_k the parameters of worker i after k local steps, g^(i)_k the mean
gradient of its k-th batch, N workers, K = floor(T / b) local steps.

Between two averages the workers' parameters differ. A checkpoint taken
there (:func:`crpsgd_hvd.torch.save_checkpoint` after any :meth:`LocalSGD.step`)
contains each worker's own model, and a resume restores it without a broadcast.
"""

import dataclasses
import json
import logging
from typing import Optional, Tuple

import horovod.torch as hvd
import torch

from crpsgd_hvd._validation import check_choice, check_int
from crpsgd_hvd.accounting import CommunicationAccounting
from crpsgd_hvd.local_sgd import make_local_sgd_plan
from crpsgd_hvd.rounds import micro_batch_sizes
from crpsgd_hvd.torch._consistency import check_same_on_every_rank
from crpsgd_hvd.torch._micro_batches import (broadcast_model_and_optimizer, check_micro_batches_done,
                                             check_unclaimed, weighted_backward)
from crpsgd_hvd.torch.optimizer import check_model_and_optimizer

__all__ = ["LocalSGD", "OPTIMIZER_STATE_POLICIES", "StepResult", "StepSpec"]

logger = logging.getLogger(__name__)

OPTIMIZER_STATE_POLICIES = ("local", "average")

# The entries of LocalSGD.state_dict(), all needed to resume.
STATE_KEYS = ("settings", "steps_done", "samples_since_average", "accounting", "optimizer", "model")


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """The next local step: its index, round, batch and micro-batches.

    Attributes:
        step (int): k, the local step, 1-based.
        round (int): the averaging round that the step belongs to, ceil(k / H).
        batch_size (int): b, samples this worker must process in the step.
        micro_batch_sizes (tuple of int): the micro-batch sizes, in order; they sum to b.
        averages (bool): True if the models are averaged after this step.
    """

    step: int
    round: int
    batch_size: int
    micro_batch_sizes: Tuple[int, ...]
    averages: bool


@dataclasses.dataclass(frozen=True)
class StepResult:
    """A completed local step.

    Attributes:
        step (int): k.
        round (int): averaging rounds completed, including one after this step.
        batch_size (int): b.
        loss (float): this worker's mean loss over its b samples, before the step.
        samples (int): per-worker samples consumed through this step.
        averaged (bool): True if the models were averaged after this step.
        accounting (dict): the counters after this step.
    """

    step: int
    round: int
    batch_size: int
    loss: float
    samples: int
    averaged: bool
    accounting: dict


class LocalSGD:
    """Run local SGD: plain local steps, parameters averaged every ``interval`` steps.

    The loop matches :class:`~crpsgd_hvd.torch.CRPSGD`'s, with local steps in
    place of rounds::

        local_sgd = LocalSGD(model, torch.optim.SGD(model.parameters(), lr=0.1),
                             batch_size=2, budget=10_000, interval=16)
        while (spec := local_sgd.next_step()) is not None:
            for size in spec.micro_batch_sizes:
                local_sgd.backward(loss_fn(next_samples(size)), size)
            local_sgd.step()          # one allreduce when spec.averages

    :func:`crpsgd_hvd.torch.fit` runs that loop too.

    Args:
        model (torch.nn.Module): the model; broadcast from ``root_rank``
            unless ``broadcast=False``.
        optimizer (torch.optim.Optimizer): a plain optimizer over the model's
            parameters; it steps locally and is used as given.
        batch_size (int): b, per-worker samples per local step, >= 1.
        budget (int): T, stochastic gradients per worker, >= b. The
            T - floor(T / b) b samples that cannot fill a batch are dropped.
        interval (int): H, local steps between averaging rounds, >= 1. H = 1
            with plain SGD gives classical parallel SGD's iterates. H above
            the number of local steps warns and averages once, at the end.
        micro_batch_size (int, optional): the most samples per
            forward/backward pass, >= 1. Default: b, one pass per step.
        optimizer_state (str): what happens to the optimizer's per-parameter
            state (momentum buffers, Adam moments) at an averaging round.
            ``"local"`` (default): each worker keeps its own state, so the
            average costs only the parameters' bytes. ``"average"``: every
            floating-point state tensor shaped like its parameter is averaged
            in the same allreduce, which sends those bytes too. Step counters
            and other state are never communicated; they are equal on every
            worker because every worker takes the same number of steps.
        process_set: Horovod process set whose ranks take part. Default: all.
        broadcast (bool): broadcast parameters and optimizer state from
            ``root_rank`` now, so that every worker starts from the same x1.
            :func:`~crpsgd_hvd.torch.load_checkpoint` later replaces each
            worker's parameters with its own saved ones. Default: True.
        root_rank (int): rank whose initial state everyone takes. Default: 0.

    Raises:
        ValueError: for an invalid argument; the message names it. Also, on
            every rank, when the ranks were given different configurations
            (see :meth:`configuration`): the message lists each differing
            field with its values and ranks. The check is two small
            allgathers before the broadcast.
        RuntimeError: if Horovod is not initialised.
        FloatingPointError: from :meth:`step` or :meth:`average`, on every
            rank, when the averaged parameters contain a NaN or an infinity.
            A local step communicates nothing, so a non-finite gradient on one
            worker shows up at the next average, where every rank has the
            same averaged parameters and raises alike.

    Note:
        ``plan`` counts the parameters' bytes only. With
        ``optimizer_state="average"``, ``accounting`` counts what is sent,
        parameters and state together.
    """

    def __init__(self, model, optimizer, batch_size, budget, interval, *, micro_batch_size=None,
                 optimizer_state="local", process_set=None, broadcast=True, root_rank=0):
        if not hvd.is_initialized():
            raise RuntimeError("Horovod is not initialised: call horovod.torch.init() before LocalSGD(...)")
        check_model_and_optimizer(model, optimizer)
        self.model = model
        self.optimizer = optimizer
        self.optimizer_state = check_choice("optimizer_state", optimizer_state, OPTIMIZER_STATE_POLICIES)
        self.process_set = hvd.global_process_set if process_set is None else process_set
        self.num_workers = self.process_set.size()

        self.params = [p for p in model.parameters() if p.requires_grad]
        check_unclaimed(self.params, "LocalSGD")
        if not self.params:
            raise ValueError("model has no parameters with requires_grad=True, so there is nothing to train")
        self.plan = make_local_sgd_plan(batch_size, budget, interval, self.num_workers,
                                        sum(p.numel() for p in self.params), self.params[0].element_size())
        self.micro_batch_size = self.plan.batch_size if micro_batch_size is None else check_int(
            "micro_batch_size", micro_batch_size, minimum=1)
        self.accounting = CommunicationAccounting(num_workers=self.num_workers)
        self.steps_done = 0
        self._step: Optional[StepSpec] = None
        self._micro_batches_done = 0
        self._loss_sum = None
        self._samples_since_average = 0

        check_same_on_every_rank(self.configuration(), self.process_set, "local_sgd.configuration",
                                 "configuration")
        if broadcast:
            broadcast_model_and_optimizer(model, optimizer, root_rank, "local_sgd")
        if hvd.rank() == root_rank:
            logger.info("local SGD plan: %d local steps of batch %d, averaged every %d steps: %d rounds, "
                        "%d workers", self.plan.num_steps, self.plan.batch_size, self.plan.interval,
                        self.plan.num_rounds, self.num_workers)

    @property
    def budget(self):
        return self.plan.budget

    def configuration(self):
        """Return the settings that every rank must share, as a JSON-ready dict.

        It contains b, T, H, the micro-batch size, the optimizer-state
        policy, the optimizer's class (with ``optimizer_state="average"`` it
        fixes which state tensors join the allreduce) and the trainable
        parameters' shapes and dtypes.
        """
        return {
            "batch_size": self.plan.batch_size,
            "budget": self.plan.budget,
            "interval": self.plan.interval,
            "micro_batch_size": self.micro_batch_size,
            "optimizer_state": self.optimizer_state,
            "optimizer": type(self.optimizer).__name__,
            "parameter_shapes": [list(p.shape) for p in self.params],
            "parameter_dtypes": [str(p.dtype) for p in self.params],
        }

    def next_step(self) -> Optional[StepSpec]:
        """Start the next local step and return what it needs, or None when the budget is spent."""
        if self._step is not None:
            raise RuntimeError(f"local step {self._step.step} is still open: call step() after its "
                               f"{len(self._step.micro_batch_sizes)} micro-batches before next_step()")
        if self.steps_done == self.plan.num_steps:
            return None

        step = self.steps_done + 1
        self.optimizer.zero_grad()
        self._step = StepSpec(step, self.plan.round_of_step(step), self.plan.batch_size,
                              micro_batch_sizes(self.plan.batch_size, self.micro_batch_size),
                              self.plan.averages_after(step))
        self._micro_batches_done = 0
        self._loss_sum = None
        return self._step

    def backward(self, loss, num_samples):
        """Back-propagate one micro-batch's mean ``loss``, weighted by ``num_samples`` / b."""
        spec = self._require_open_step("backward()")
        detached = weighted_backward(loss, num_samples, spec.micro_batch_sizes, self._micro_batches_done,
                                     spec.batch_size, f"local step {spec.step}")
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._micro_batches_done += 1

    def step(self) -> StepResult:
        """Finish the local step: step the optimizer, then average the models if the step ends a round."""
        spec = self._require_open_step("step()")
        check_micro_batches_done(spec.micro_batch_sizes, self._micro_batches_done, f"local step {spec.step}")

        self.optimizer.step()
        self.steps_done += 1
        self._samples_since_average += spec.batch_size
        if spec.averages:
            self.average()
        self._step = None
        return StepResult(spec.step, self.accounting.rounds, spec.batch_size, float(self._loss_sum),
                          self.steps_done * spec.batch_size, spec.averages, self.accounting.state_dict())

    def average(self):
        """Average the parameters (and, if configured, the optimizer state) over the workers in one allreduce.

        :meth:`step` calls this at the end of each round; a direct call counts
        as one more round with the samples since the last average.
        """
        tensors = [p.data for p in self.params]
        if self.optimizer_state == "average":
            tensors += self._state_tensors()

        with torch.no_grad():
            hvd.grouped_allreduce_(tensors, op=hvd.Average, name="local_sgd.average",
                                   process_set=self.process_set)
        self.accounting.record_allreduce(sum(t.numel() * t.element_size() for t in tensors))
        self.accounting.record_round(self._samples_since_average)
        self._samples_since_average = 0
        # Every rank has the same average, so every rank takes this branch alike.
        if not all(bool(torch.isfinite(p).all()) for p in self.params):
            raise FloatingPointError(
                f"averaging round {self.accounting.rounds} (after local step {self.steps_done}): the averaged "
                "parameters contain NaN or infinite values, so a worker's local steps since the last average "
                "diverged or met a non-finite gradient. Lower the learning rate, or find the rank whose loss "
                "is not finite")

    @property
    def step_open(self):
        """True between :meth:`next_step` and :meth:`step`."""
        return self._step is not None

    def state_dict(self):
        """Return everything needed to continue after a completed local step, model parameters included.

        The state contains the settings a resume must share
        (:meth:`configuration` without the micro-batch size, plus N), the
        local step index, the samples since the last average, the
        accounting, the optimizer state and the model's ``state_dict``
        (parameters and buffers). Between two averages the
        parameters and the optimizer state differ across workers, so each
        worker's state is its own. The data position is the caller's: see
        :func:`crpsgd_hvd.torch.save_checkpoint`, which stores a
        :class:`ShardSampler`'s state beside this.

        Raises:
            RuntimeError: between :meth:`next_step` and :meth:`step`, because
                the step's partial gradient accumulation is not saved.
        """
        if self._step is not None:
            raise RuntimeError(f"cannot save state inside local step {self._step.step}, because its partial "
                               "gradient accumulation is not saved: save after step()")
        return {
            "settings": self._resume_settings(),
            "steps_done": self.steps_done,
            "samples_since_average": self._samples_since_average,
            "accounting": self.accounting.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "model": self.model.state_dict(),
        }

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` into this worker's model, optimizer and counters.

        Nothing is broadcast: each worker takes its own state, so a state
        saved between two averages resumes with every worker's own
        parameters and the run continues exactly as it would have. The
        micro-batch size may differ from the saved run's. It changes only how
        each batch's gradient is summed, so the results can then differ from
        an uninterrupted run's in floating-point rounding.

        Raises:
            ValueError: if an entry is missing or out of range. Also if the
                state was saved with other settings (batch size, budget,
                interval, N, optimizer-state policy, optimizer class,
                parameter shapes or dtypes): the message names each one with
                the saved and the current value.
            RuntimeError: between :meth:`next_step` and :meth:`step`.
        """
        if self._step is not None:
            raise RuntimeError(f"cannot load state inside local step {self._step.step}: call step() first")
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"state is missing the entries {missing}: pass a dict from LocalSGD.state_dict()")
        changes = _describe_setting_changes(state["settings"], self._resume_settings())
        if changes:
            raise ValueError("state was saved with other settings than this LocalSGD's: " + "; ".join(changes)
                             + ". Build LocalSGD with the saved settings to resume from this state")
        steps_done = check_int("state['steps_done']", state["steps_done"], minimum=0)
        if steps_done > self.plan.num_steps:
            raise ValueError(f"state['steps_done'] must be <= the {self.plan.num_steps} local steps of the "
                             f"plan, got {steps_done}")
        samples_since_average = check_int("state['samples_since_average']", state["samples_since_average"],
                                          minimum=0)

        self.steps_done = steps_done
        self._samples_since_average = samples_since_average
        self.accounting.load_state_dict(state["accounting"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.model.load_state_dict(state["model"])

    def _resume_settings(self):
        # The micro-batch size only splits each batch, so a resume may change it.
        settings = {key: value for key, value in self.configuration().items() if key != "micro_batch_size"}
        settings["num_workers"] = self.num_workers
        return settings

    def _state_tensors(self):
        # Only tensors shaped like their parameter are per-element state; a
        # 0-d step counter is the same on every worker and stays out.
        tensors = []
        for param in self.params:
            for value in self.optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.is_floating_point() and value.shape == param.shape:
                    tensors.append(value)
        return tensors

    def _require_open_step(self, caller):
        if self._step is None:
            raise RuntimeError(f"{caller} needs an open local step: call next_step() first")
        return self._step


def _describe_setting_changes(saved, current):
    """Return one line per key whose value differs between the ``saved`` and the ``current`` settings."""
    lines = []
    for key in sorted(saved.keys() | current.keys()):
        if saved.get(key) != current.get(key):
            lines.append(f"{key}: {json.dumps(saved.get(key))} in the state, {json.dumps(current.get(key))} here")
    return lines
