"""Pick a training method by name: CR-PSGD and its two baselines, with one loop and one set of counters."""

from crpsgd_hvd._validation import check_choice
from crpsgd_hvd.schedules import BatchSchedule, ConstantSchedule
from crpsgd_hvd.torch.local_sgd import LocalSGD
from crpsgd_hvd.torch.optimizer import CRPSGD

__all__ = ["METHODS", "make_method"]

METHODS = ("crpsgd", "psgd", "local_sgd")


def make_method(name, model, optimizer, budget, *, schedule=None, batch_size=None, interval=None,
                micro_batch_size=None, **options):
    """Build the round driver for ``name``; all three count rounds, allreduce calls and bytes the same way.

    * ``"crpsgd"``: :class:`CRPSGD` with the growing ``schedule``, one
      allreduce of gradients per round.
    * ``"psgd"``: classical parallel SGD, :class:`CRPSGD` with
      ``ConstantSchedule(batch_size)``, so one allreduce of gradients per
      step of b samples per worker, floor(T / b) steps.
    * ``"local_sgd"``: :class:`LocalSGD`, plain local steps of ``batch_size``
      samples with the parameters averaged every ``interval`` steps.

    Args:
        name (str): one of ``METHODS``.
        model, optimizer: as for :class:`CRPSGD`; a plain torch optimizer.
        budget (int): T, stochastic gradients per worker.
        schedule (BatchSchedule): the batch schedule; ``"crpsgd"`` only.
        batch_size (int): b >= 1; ``"psgd"`` and ``"local_sgd"`` only.
        interval (int): H >= 1; ``"local_sgd"`` only.
        micro_batch_size (int, optional): the most samples per
            forward/backward pass. Default: the whole batch for
            ``"psgd"`` and ``"local_sgd"``; required for ``"crpsgd"``,
            whose batches grow.
        **options: further keyword arguments of the chosen class.

    Raises:
        ValueError: for an unknown ``name``, or a missing argument or one
            that does not apply to the method; the message names it.
    """
    check_choice("name", name, METHODS)
    method_arguments = {"schedule": schedule, "batch_size": batch_size, "interval": interval}
    needed = {"crpsgd": ("schedule",), "psgd": ("batch_size",), "local_sgd": ("batch_size", "interval")}[name]
    for argument, value in method_arguments.items():
        if argument in needed and value is None:
            raise ValueError(f"{argument} is required for method {name!r}, got None")
        if argument not in needed and value is not None:
            raise ValueError(f"{argument} applies only to methods that take it ({_takers(argument)}), "
                             f"not to {name!r}, got {value!r}")

    if name == "local_sgd":
        return LocalSGD(model, optimizer, batch_size, budget, interval, micro_batch_size=micro_batch_size,
                        **options)
    if name == "psgd":
        schedule = ConstantSchedule(batch_size)
        micro_batch_size = schedule.batch_size if micro_batch_size is None else micro_batch_size
    elif not isinstance(schedule, BatchSchedule):
        raise ValueError(f"schedule must be a crpsgd_hvd BatchSchedule, got {type(schedule).__name__}")
    if micro_batch_size is None:
        raise ValueError("micro_batch_size is required for method 'crpsgd', whose batch grows, got None")
    return CRPSGD(model, optimizer, schedule, budget, micro_batch_size=micro_batch_size, **options)


def _takers(argument):
    return {"schedule": "'crpsgd'", "batch_size": "'psgd', 'local_sgd'", "interval": "'local_sgd'"}[argument]
