"""A Keras optimizer that accumulates micro-batch gradients and allreduces once per round.

Horovod's Keras ``DistributedOptimizer`` accumulates gradients over a
``backward_passes_per_step`` fixed when it is built, adds them unweighted,
and advances ``optimizer.iterations`` on every micro-batch. CR-PSGD needs a
count that changes every round, weights proportional to each micro-batch's
samples, and one optimizer step per round. :func:`round_optimizer` builds an
optimizer on top of Horovod's (so Horovod's allreduce, compression, process
sets and callbacks stay in use) whose round length and micro-batch weight
are TensorFlow variables that :class:`crpsgd_hvd.keras.CRPSGDCallback` sets
between ``fit`` steps.
"""

import horovod.tensorflow.keras as hvd
import tensorflow as tf

__all__ = ["round_optimizer"]


class _RoundOptimizerMixin:
    """Round methods that :func:`round_optimizer` adds on top of Horovod's optimizer methods."""

    def _init_round_state(self, user_class, settings):
        self._user_class = user_class
        self._round_settings = settings
        with tf.init_scope():
            self.micro_batches_per_round = tf.Variable(1, dtype=tf.int64, trainable=False,
                                                       name="crpsgd_micro_batches_per_round")
            self.micro_batch_weight = tf.Variable(1.0, dtype=tf.float64, trainable=False,
                                                  name="crpsgd_micro_batch_weight")
            self.micro_batches_done = tf.Variable(0, dtype=tf.int64, trainable=False,
                                                  name="crpsgd_micro_batches_done")
            self.allreduce_count = tf.Variable(0, dtype=tf.int64, trainable=False,
                                               name="crpsgd_allreduce_count")
            self.proximal_weight = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                               name="crpsgd_proximal_weight")
            # Set by each round's allreduce; apply_gradients steps only when it is True.
            self.round_finite = tf.Variable(True, dtype=tf.bool, trainable=False, name="crpsgd_round_finite")
        self._accumulators = None
        self._anchors = None

    def start_round(self, num_micro_batches):
        """Expect ``num_micro_batches`` micro-batches before the next allreduce (eager call)."""
        self.micro_batches_per_round.assign(num_micro_batches)
        self.micro_batches_done.assign(0)

    def set_micro_batch_weight(self, weight):
        """Weight the next micro-batch's gradient by ``weight`` = its samples / B_t (eager call)."""
        self.micro_batch_weight.assign(weight)

    def compute_gradients(self, loss, var_list, tape=None):
        # Local gradients of the wrapped optimizer's class, without Horovod's allreduce.
        grads_and_vars = self._user_class.compute_gradients(self, loss, var_list, tape)
        grads, variables = zip(*grads_and_vars)
        self.build_round_state(variables)

        for accumulator, grad in zip(self._accumulators, grads):
            if grad is not None:
                weight = tf.cast(self.micro_batch_weight, accumulator.dtype)
                accumulator.assign_add(weight * tf.convert_to_tensor(grad))
        self.micro_batches_done.assign_add(1)
        accumulated = [accumulator.read_value() for accumulator in self._accumulators]

        def allreduce():
            self.allreduce_count.assign_add(1)
            reduced = self._allreduce(accumulated, variables)  # Horovod's collective
            # The allreduce gives every rank the same averaged gradient, so every rank sets the same flag.
            self.round_finite.assign(tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in reduced]))
            # CR-PSGD-Catalyst's theta (x - y), once per round; theta is 0 for plain CR-PSGD.
            return [g + tf.cast(self.proximal_weight, g.dtype) * (v - a)
                    for g, v, a in zip(reduced, variables, self._anchors)]

        reduced = tf.cond(self._round_complete(), allreduce, lambda: accumulated)
        return list(zip(reduced, variables))

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)

        def step():
            # The wrapped class's step: one update, one advance of iterations.
            with tf.control_dependencies([self._user_class.apply_gradients(self, grads_and_vars, *args, **kwargs)]):
                return self._end_round()

        def end_of_round():
            # A non-finite averaged gradient takes no step and leaves iterations as it is.
            # The callback then raises or skips the round.
            return tf.cond(self.round_finite, step, self._end_round)

        return tf.cond(self._round_complete(), end_of_round, lambda: tf.identity(self.iterations))

    def _end_round(self):
        resets = [accumulator.assign(tf.zeros_like(accumulator)) for accumulator in self._accumulators]
        resets.append(self.micro_batches_done.assign(0))
        with tf.control_dependencies(resets):
            return tf.identity(self.iterations)

    def _round_complete(self):
        return tf.equal(self.micro_batches_done, self.micro_batches_per_round)

    def round_configuration(self):
        """Return the Horovod settings that every rank must share, as a JSON-ready dict."""
        return dict(self._round_settings)

    def anchor_variables(self):
        """Return the proximal anchor y, one variable per trainable variable, or None before it is built."""
        return None if self._anchors is None else list(self._anchors)

    def move_anchor(self):
        """Set the proximal anchor y to the current trainable variables (eager call)."""
        for anchor, variable in zip(self._anchors, self._anchored_variables):
            anchor.assign(variable)

    def reset_slots(self):
        """Zero the wrapped optimizer's state (momentum and the like), keeping ``iterations``."""
        for variable in self.variables:
            if variable is not self.iterations:
                variable.assign(tf.zeros_like(variable))

    def build_round_state(self, variables):
        """Create the gradient accumulators and the anchor for ``variables``, once (eager call).

        The callback calls this after the initial broadcast, so the anchor
        starts at rank 0's weights; later calls, from inside ``fit``'s trace, do nothing.
        """
        if self._accumulators is not None:
            return
        # Created outside any tf.function trace, like the optimizer's own slots.
        with tf.init_scope():
            self._accumulators = [
                tf.Variable(tf.zeros(v.shape, dtype=v.dtype), trainable=False,
                            name=f"crpsgd_accumulator_{i}")
                for i, v in enumerate(variables)]
            self._anchored_variables = list(variables)
            self._anchors = [tf.Variable(v, trainable=False, name=f"crpsgd_anchor_{i}")
                             for i, v in enumerate(variables)]


def round_optimizer(optimizer, *, compression=None, op=None, process_set=None,
                    gradient_predivide_factor=1.0, sparse_as_dense=True):
    """Wrap a ``tf_keras`` optimizer for CR-PSGD rounds on Horovod.

    The result is an instance of a subclass of ``optimizer``'s class (as with
    Horovod), so it saves and restores like the original. Each ``fit`` step
    adds ``weight * gradient`` to local accumulators; on the round's last
    micro-batch Horovod allreduces the accumulated gradients and the wrapped
    optimizer steps once, advancing ``iterations`` once per round. When the
    averaged gradient contains a NaN or an infinity, the optimizer takes no step,
    zeroes the accumulators and sets ``round_finite`` to False, so that the
    callback can raise or skip the round.

    Args:
        optimizer: a ``tf_keras.optimizers.Optimizer`` (not already wrapped by Horovod).
        compression: Horovod compression. Default: ``hvd.Compression.none``.
        op: ``hvd.Average`` (default) or ``hvd.Sum``.
        process_set: Horovod process set. Default: all ranks.
        gradient_predivide_factor (float): as in Horovod. Default: 1.0.
        sparse_as_dense (bool): densify sparse gradients, which accumulation
            needs. Default: True.

    Raises:
        ValueError: for an unsupported ``op`` or an already wrapped optimizer.
    """
    if hasattr(optimizer, "_allreduce_grads"):
        raise ValueError("optimizer must be a plain tf_keras optimizer, got a Horovod "
                         "DistributedOptimizer: round_optimizer wraps the optimizer itself")
    op = hvd.Average if op is None else op
    if op not in (hvd.Average, hvd.Sum):
        raise ValueError(f"op must be hvd.Average or hvd.Sum, got {op!r}")

    user_class = type(optimizer)
    horovod_optimizer = hvd.DistributedOptimizer(
        optimizer, compression=compression or hvd.Compression.none, op=op,
        gradient_predivide_factor=gradient_predivide_factor, sparse_as_dense=sparse_as_dense,
        process_set=process_set or hvd.global_process_set)
    # Horovod's methods call super(self.__class__, self), so they only work in a
    # direct subclass of the user's class: the round class is one, with Horovod's
    # methods (closures over the options above) and the round methods on top.
    methods = {key: value for key, value in vars(type(horovod_optimizer)).items()
               if key not in ("__dict__", "__weakref__")}
    methods.update({key: value for key, value in vars(_RoundOptimizerMixin).items()
                    if callable(value) and not key.startswith("__")})
    round_class = type(user_class.__name__, (user_class,), methods)

    wrapped = round_class.from_config(optimizer.get_config())
    compression = compression or hvd.Compression.none
    wrapped._init_round_state(user_class, {
        "op": "Average" if op == hvd.Average else "Sum",
        "compression": getattr(compression, "__name__", type(compression).__name__),
        "gradient_predivide_factor": float(gradient_predivide_factor),
        "sparse_as_dense": bool(sparse_as_dense),
    })
    return wrapped
