"""The ``model.fit`` callback that runs CR-PSGD rounds over fixed-size micro-batches."""

import json
import logging
import warnings

import horovod.tensorflow as hvd_tf
import horovod.tensorflow.keras as hvd
import tf_keras

from crpsgd_hvd._validation import check_choice, check_int, check_real
from crpsgd_hvd.accounting import CommunicationAccounting
from crpsgd_hvd.catalyst import CatalystLoop, CatalystState, next_outer_iteration
from crpsgd_hvd.keras._consistency import check_same_on_every_rank
from crpsgd_hvd.plan import make_plan
from crpsgd_hvd.rounds import (LEFTOVER_POLICIES, NONFINITE_POLICIES, RoundState, check_budget, micro_batch_sizes,
                               next_round_batch)
from crpsgd_hvd.schedules import BatchSchedule

__all__ = ["CRPSGDCallback", "CatalystCallback"]

logger = logging.getLogger(__name__)


class CRPSGDCallback(tf_keras.callbacks.Callback):
    """Drive Algorithm 1 (CR-PSGD) from ``model.fit`` with a :func:`round_optimizer`.

    Each ``fit`` step is one micro-batch. Before a round the callback reads
    B_t from the schedule and sets the round's micro-batch count on the
    optimizer; before each micro-batch it sets the gradient weight to the
    micro-batch's samples / B_t. The data must therefore arrive in the sizes
    that :meth:`current_micro_batch` requests: :func:`crpsgd_hvd.keras.round_dataset`
    makes such a dataset and :attr:`steps` is the ``steps_per_epoch`` to pass
    to ``fit``. Training stops when the budget is spent.

    After each round the callback adds ``round``, ``B_t``, ``rounds``,
    ``samples``, ``bytes_sent`` and ``skipped_rounds`` to the batch ``logs``,
    and the totals to the epoch ``logs``, so History, CSVLogger and
    TensorBoard record them.

    Args:
        optimizer: the model's optimizer, made by :func:`round_optimizer`.
        schedule (BatchSchedule): per-worker batch B_t.
        budget (int): T, stochastic gradients per worker, >= B1.
        micro_batch_size (int): samples per ``fit`` step (the last
            micro-batch of a round may be smaller), >= 1.
        leftover (str): ``"drop"`` (default) or ``"final_round"``.
        broadcast (bool): broadcast the model's variables from rank 0 when
            training begins, before any gradient is computed. Default: True.
            Horovod's ``BroadcastGlobalVariablesCallback`` broadcasts only
            after the first step, when each rank has already computed a
            gradient at its own initial weights.
        on_nonfinite (str): what happens when a round's averaged gradient
            contains a NaN or an infinity. The optimizer takes no step in
            either case. ``"raise"`` raises ``FloatingPointError`` from
            ``fit``; ``"skip"`` drops the round: ``iterations``, the round
            index and the samples count stay, rank 0 warns with the round
            index, and the round is repeated with the next samples, which
            takes its fit steps again, so pass ``fit`` more steps than
            :attr:`steps`. The allreduce gives every rank the same averaged
            gradient, so every rank decides alike. Default: ``"raise"``.

    Raises:
        ValueError: for an invalid argument; the message names it. Also, from
            ``fit`` on every rank, when the ranks were given different
            configurations (see :meth:`configuration`): the message lists each
            differing field with its values and ranks. ``on_train_begin``
            checks this with two small allgathers, before the broadcast and
            before the first gradient.
    """

    def __init__(self, optimizer, schedule: BatchSchedule, budget, micro_batch_size, *,
                 leftover="drop", broadcast=True, on_nonfinite="raise"):
        super().__init__()
        if not hasattr(optimizer, "start_round"):
            raise ValueError("optimizer must come from crpsgd_hvd.keras.round_optimizer, "
                             f"got {type(optimizer).__name__}")
        if not isinstance(schedule, BatchSchedule):
            raise ValueError(f"schedule must be a crpsgd_hvd BatchSchedule, got {type(schedule).__name__}")
        self.optimizer = optimizer
        self.schedule = schedule
        self.budget = check_budget(schedule, budget)
        self.micro_batch_size = check_int("micro_batch_size", micro_batch_size, minimum=1)
        self.leftover = check_choice("leftover", leftover, LEFTOVER_POLICIES)
        self.broadcast = broadcast
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)
        self.num_workers = optimizer.process_set.size()
        self.state = RoundState()
        self.accounting = CommunicationAccounting(num_workers=self.num_workers)
        self.plan = make_plan(schedule, self.budget, self.num_workers, leftover=self.leftover)
        # Samples that this rank's fit steps have read, skipped rounds included: the data position.
        self.samples_drawn = 0
        self.skipped_rounds = 0
        # The dataset's seed, shuffle and shard length, from round_dataset; and those of a loaded checkpoint.
        self.data_source = None
        self._checkpoint_data_source = None
        self._sizes = ()
        self._position = 0
        self._batch = None
        self._step_running = False

    @property
    def steps(self):
        """``fit`` steps (micro-batches) left in the plan; the whole plan for a fresh callback.

        Read it before ``fit``. It counts no repeats of skipped rounds.
        """
        return len(self.planned_micro_batch_sizes())

    @property
    def step_running(self):
        """True between ``on_train_batch_begin`` and ``on_train_batch_end`` of a ``fit`` step."""
        return self._step_running

    @property
    def round_open(self):
        """True from a round's first ``fit`` step until the end of its last."""
        return self._position < len(self._sizes)

    def planned_micro_batch_sizes(self):
        """Return the size of every ``fit`` step left in the plan, in order, assuming no skipped round."""
        sizes = list(self._sizes[self._position:])
        state = self.state.advance(self._batch) if self.round_open else self.state
        return sizes + self._inner_micro_batch_sizes(state)

    def _inner_micro_batch_sizes(self, state):
        sizes = []
        while (batch := next_round_batch(self.schedule, self.budget, state, self.leftover)) is not None:
            sizes.extend(micro_batch_sizes(batch, self.micro_batch_size))
            state = state.advance(batch)
        return sizes

    def current_micro_batch(self):
        """Return (size, position) of the micro-batch that the running ``fit`` step must read.

        ``position`` counts the samples this rank has read before it, so a
        dataset can find its place in its sample stream.

        Raises:
            RuntimeError: outside a ``fit`` step, when a dataset reads ahead.
        """
        if not self._step_running:
            raise RuntimeError("a micro-batch was requested outside a fit step of CRPSGDCallback: the "
                               "dataset must be read step by step, without prefetch")
        return self._sizes[self._position], self.samples_drawn

    def use_data_source(self, description):
        """Record the dataset that feeds this callback, a JSON-ready dict such as {"seed": 3, ...}.

        :func:`crpsgd_hvd.keras.round_dataset` calls it. The description is
        saved in checkpoints, and after :meth:`load_state_dict` a dataset
        with another description is rejected, because its sample stream would
        not continue the saved one.

        Raises:
            ValueError: if ``description`` differs from the loaded checkpoint's.
        """
        check_same_data_source(self._checkpoint_data_source, description)
        self.data_source = description

    def configuration(self):
        """Return the settings that every rank must share, as a JSON-ready dict.

        The schedule, budget, micro-batch size, leftover policy, the
        optimizer's Horovod settings and the shapes of the model's trainable
        variables. Call it once ``fit`` has set the model.
        """
        return {
            "schedule": self.schedule.describe(),
            "budget": self.budget,
            "micro_batch_size": self.micro_batch_size,
            "leftover": self.leftover,
            "on_nonfinite": self.on_nonfinite,
            **self.optimizer.round_configuration(),
            "trainable_variable_shapes": [v.shape.as_list() for v in self.model.trainable_variables],
        }

    def state_dict(self):
        """Return the callback's progress after a completed round, as a JSON-ready dict.

        The round index and samples count, the accounting, the data position
        (``samples_drawn``), the skipped rounds and the settings the progress
        is measured against. The model's and optimizer's variables are not
        part of it: :func:`crpsgd_hvd.keras.save_checkpoint` saves them beside it.

        Raises:
            RuntimeError: inside a round, because the round's partial
                gradient accumulation is not saved.
        """
        if self.round_open:
            raise RuntimeError(f"cannot save state inside round {self.state.rounds + 1}, after {self._position} "
                               f"of its {len(self._sizes)} micro-batches, because its partial gradient "
                               "accumulation is not saved: save after the round's last fit step, for example "
                               "with RoundCheckpoint")
        return {
            "kind": type(self).__name__,
            "settings": self._saved_settings(),
            "round_state": self.state.state_dict(),
            "accounting": self.accounting.state_dict(),
            "samples_drawn": self.samples_drawn,
            "skipped_rounds": self.skipped_rounds,
            "data_source": self.data_source,
        }

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` saved by a callback of the same class and settings.

        Raises:
            ValueError: if the state comes from another callback class or other settings.
            RuntimeError: inside a round.
        """
        if self.round_open:
            raise RuntimeError(f"cannot load state inside round {self.state.rounds + 1}: load before fit")
        if state["kind"] != type(self).__name__:
            raise ValueError(f"state was saved by a {state['kind']}, but this callback is a {type(self).__name__}: "
                             "resume with the callback class of the saved run")
        mine = self._saved_settings()
        differences = [f"{key} {state['settings'].get(key)!r} (this run: {mine[key]!r})" for key in mine
                       if state["settings"].get(key) != mine[key]]
        if differences:
            raise ValueError("state was saved with other settings: " + "; ".join(differences)
                             + ". Resume with the settings of the saved run")

        saved_source = state.get("data_source")
        if self.data_source is not None:
            check_same_data_source(saved_source, self.data_source)

        self._checkpoint_data_source = saved_source
        self.state = RoundState.from_state_dict(state["round_state"])
        self.accounting.load_state_dict(state["accounting"])
        self.samples_drawn = check_int("state['samples_drawn']", state["samples_drawn"], minimum=0)
        self.skipped_rounds = check_int("state['skipped_rounds']", state["skipped_rounds"], minimum=0)
        self._sizes, self._position, self._batch = (), 0, None

    def _saved_settings(self):
        # JSON round trip, so that tuples compare equal to the lists read back from a file.
        return json.loads(json.dumps({"schedule": self.schedule.describe(), "budget": self.budget,
                                      "micro_batch_size": self.micro_batch_size, "leftover": self.leftover}))

    def on_train_begin(self, logs=None):
        if self.model.optimizer is not self.optimizer:
            raise ValueError("the model must be compiled with this callback's optimizer")
        # Checked before the broadcast, so that ranks whose variables differ in shape never reach it.
        check_same_on_every_rank(self.configuration(), self.optimizer.process_set, "crpsgd.keras.configuration",
                                 "configuration")
        if self.broadcast:
            hvd_tf.broadcast_variables(self.model.variables, root_rank=0)
        # Built now, after the broadcast, so every rank starts from rank 0's anchor.
        self.optimizer.build_round_state(self.model.trainable_variables)
        num_params = sum(int(v.shape.num_elements()) for v in self.model.trainable_variables)
        bytes_per_param = self.model.trainable_variables[0].dtype.size
        self.plan = make_plan(self.schedule, self.budget, self.num_workers, num_params, bytes_per_param,
                              self.leftover)
        self._payload_bytes = sum(int(v.shape.num_elements()) * v.dtype.size
                                  for v in self.model.trainable_variables)
        if hvd.rank() == 0:
            logger.info("CR-PSGD plan: %d rounds, %d fit steps of at most %d samples",
                        self.plan.num_rounds, self.steps, self.micro_batch_size)

    def on_train_batch_begin(self, batch, logs=None):
        if not self.round_open:
            self._start_round()
        self.optimizer.set_micro_batch_weight(self._sizes[self._position] / self._batch)
        self._step_running = True

    def on_train_batch_end(self, batch, logs=None):
        self._step_running = False
        self.samples_drawn += self._sizes[self._position]
        self._position += 1
        if self.round_open:
            return

        while self.accounting.allreduce_calls < int(self.optimizer.allreduce_count.numpy()):
            self.accounting.record_allreduce(self._payload_bytes)
        if not bool(self.optimizer.round_finite.numpy()):
            self._reject_round(logs)
            return
        self.state = self.state.advance(self._batch)
        self.accounting.record_round(self._batch)
        if logs is not None:
            logs.update(round=self.state.rounds, B_t=self._batch, **self._totals())
        if next_round_batch(self.schedule, self.budget, self.state, self.leftover) is None:
            self.on_budget_spent()

    def _reject_round(self, logs):
        """Handle a round whose averaged gradient is not finite, which the optimizer did not apply."""
        message = f"{self._describe_round()}: the averaged gradient contains NaN or infinite values"
        if self.on_nonfinite == "raise":
            raise FloatingPointError(f"{message}; no step was taken. Pass on_nonfinite='skip' to drop such "
                                     "rounds, or find the rank whose loss is not finite")
        self.skipped_rounds += 1
        if hvd.rank() == 0:
            warnings.warn(f"{message}; skipped it without a step, and the next round repeats round "
                          f"{self.state.rounds + 1} with fresh samples", RuntimeWarning, stacklevel=2)
        if logs is not None:
            logs.update(self._totals())

    def _describe_round(self):
        return (f"round {self.state.rounds + 1} (batch {self._batch}, after {self.state.samples} samples "
                "per worker)")

    def on_train_end(self, logs=None):
        remaining = self.steps
        if remaining and not self.model.stop_training and hvd.rank() == 0:
            logger.warning("fit ended with %d fit steps of the plan left, %s: call fit again with "
                           "steps_per_epoch=callback.steps to continue. A round skipped for a non-finite "
                           "gradient needs its fit steps again", remaining,
                           "inside a round" if self.round_open else "between rounds")

    def on_budget_spent(self):
        """Stop training; :class:`CatalystCallback` starts the next inner call instead."""
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._totals())

    def _start_round(self):
        batch = next_round_batch(self.schedule, self.budget, self.state, self.leftover)
        if batch is None:
            raise RuntimeError(f"fit ran past the budget of {self.budget} samples per worker: pass "
                               "steps_per_epoch=callback.steps, read before fit, and epochs=1")
        self._batch = batch
        self._sizes = micro_batch_sizes(batch, self.micro_batch_size)
        self._position = 0
        self.optimizer.start_round(len(self._sizes))

    def _totals(self):
        return {"rounds": self.accounting.rounds, "samples": self.accounting.samples,
                "bytes_sent": self.accounting.bytes_sent, "skipped_rounds": self.skipped_rounds}


class CatalystCallback(CRPSGDCallback):
    r"""Drive Algorithm 2 (CR-PSGD-Catalyst) from ``model.fit``.

    Outer iteration k runs Algorithm 1 on h(x) = f(x) + (theta/2) ||x - y||^2
    from the anchor y = y_{k-1}: the optimizer adds theta (x - y) to each
    round's averaged gradient. When the inner budget is spent the anchor moves
    to the current weights, the schedule restarts at t = 1 and, with
    ``reset_optimizer_state``, the optimizer's slots (momentum) are zeroed;
    ``optimizer.iterations`` keeps counting rounds across outer iterations.
    The anchor covers trainable variables only, not BatchNorm statistics.

    Args:
        optimizer, schedule, micro_batch_size, leftover, broadcast, on_nonfinite: as for
            :class:`CRPSGDCallback`; the budget of each inner call comes
            from ``loop``.
        loop (CatalystLoop): outer iterations and inner budget.
        theta (float): proximal weight, >= 0.
        reset_optimizer_state (bool): zero the optimizer's slots at each
            outer iteration, as a fresh call of Algorithm 1 would. Default: True.
    """

    def __init__(self, optimizer, schedule, loop: CatalystLoop, theta, micro_batch_size, *,
                 reset_optimizer_state=True, leftover="drop", broadcast=True, on_nonfinite="raise"):
        if not isinstance(loop, CatalystLoop):
            raise ValueError(f"loop must be a crpsgd_hvd CatalystLoop, got {type(loop).__name__}")
        super().__init__(optimizer, schedule, loop.inner_budget, micro_batch_size, leftover=leftover,
                         broadcast=broadcast, on_nonfinite=on_nonfinite)
        self.loop = loop
        self.theta = check_real("theta", theta, at_least=0.0)
        self.reset_optimizer_state = bool(reset_optimizer_state)
        self.catalyst_state = CatalystState()

    def planned_micro_batch_sizes(self):
        """Return the size of every ``fit`` step left over all outer iterations, assuming no skipped round."""
        if next_outer_iteration(self.loop, self.catalyst_state) is None:
            return []
        later_outer = self.loop.num_outer - self.catalyst_state.outer - 1
        return super().planned_micro_batch_sizes() + self._inner_micro_batch_sizes(RoundState()) * later_outer

    def _describe_round(self):
        return f"outer iteration {self.catalyst_state.outer + 1}, {super()._describe_round()}"

    def state_dict(self):
        """Return CRPSGDCallback's state plus the completed outer iterations; the anchor is a variable."""
        return {**super().state_dict(), "catalyst_state": self.catalyst_state.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.catalyst_state = CatalystState.from_state_dict(state["catalyst_state"])

    def _saved_settings(self):
        settings = {**super()._saved_settings(), "catalyst_loop": self.loop.describe(), "theta": self.theta,
                    "reset_optimizer_state": self.reset_optimizer_state}
        return json.loads(json.dumps(settings))

    def configuration(self):
        """Return CRPSGDCallback's shared settings plus the outer loop, theta and the optimizer-reset choice."""
        return {**super().configuration(), "catalyst_loop": self.loop.describe(), "theta": self.theta,
                "reset_optimizer_state": self.reset_optimizer_state}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.optimizer.proximal_weight.assign(self.theta)

    def on_budget_spent(self):
        self.optimizer.move_anchor()
        self.catalyst_state = self.catalyst_state.advance()
        if next_outer_iteration(self.loop, self.catalyst_state) is None:
            self.model.stop_training = True
            return
        self.state = RoundState()
        if self.reset_optimizer_state:
            self.optimizer.reset_slots()

    def _totals(self):
        return {**super()._totals(), "outer": self.catalyst_state.outer}


def check_same_data_source(saved, current):
    """Raise ValueError if a checkpoint's dataset description ``saved`` is known and differs from ``current``."""
    if saved is not None and saved != current:
        raise ValueError(f"the checkpoint's data was read from a dataset with {saved}, this dataset has {current}: "
                         "pass round_dataset the seed, shuffle and shard of the saved run")
