"""The ``crpsgd-hvd`` command: ``crpsgd-hvd plan`` prints a training plan."""

import argparse
import contextlib
import sys

from crpsgd_hvd.catalyst import CATALYST_MODES, CatalystLoop
from crpsgd_hvd.plan import make_catalyst_plan, make_plan
from crpsgd_hvd.rounds import LEFTOVER_POLICIES, planned_batches
from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule


# Library argument names and the flags that set them, so errors name the flag to change.
# The examples share the schedule's flags.
SCHEDULE_FLAGS = {"b1": "--b1", "rho": "--rho", "b_max": "--b-max", "budget": "--budget"}
FLAGS = {**SCHEDULE_FLAGS, "num_workers": "--workers", "num_params": "--params",
         "bytes_per_param": "--bytes-per-param", "num_outer": "--outer", "shard_size": "--shard-size",
         "batch_size": "--b1"}


def count(text):
    """Parse a count, accepting integral floats such as 1e4; other floats pass on for the library to reject."""
    value = float(text)
    return int(value) if value.is_integer() else value


def build_parser():
    parser = argparse.ArgumentParser(prog="crpsgd-hvd", description=(
        "Tools for communication-reduced parallel SGD (CR-PSGD) on Horovod."))
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="print the rounds, samples and bytes of a run before it starts")
    plan.set_defaults(command_parser=plan)
    plan.add_argument("--schedule", choices=("geometric", "constant"), default="geometric",
                      help="geometric: B_t = floor(rho^(t-1) B1), capped at --b-max; constant: B_t = B1")
    plan.add_argument("--b1", type=count, default=2, help="first per-worker batch B1 (default: 2)")
    plan.add_argument("--rho", type=float, default=None,
                      help="growth factor rho > 1, with --schedule geometric (default: 1.1)")
    plan.add_argument("--b-max", type=count, default=None, help="cap on the per-worker batch (default: none)")
    plan.add_argument("--budget", type=count, default=10_000,
                      help="T, stochastic gradients per worker (default: 10000)")
    plan.add_argument("--workers", type=count, default=1, help="N, number of workers (default: 1)")
    plan.add_argument("--params", type=count, default=0,
                      help="gradient elements allreduced per round, for the byte counts (default: 0)")
    plan.add_argument("--bytes-per-param", type=count, default=4,
                      help="bytes per gradient element on the wire (default: 4, float32)")
    plan.add_argument("--leftover", choices=LEFTOVER_POLICIES, default="drop",
                      help="drop the samples the last full round cannot use, or spend them "
                           "in a final smaller round (default: drop)")
    plan.add_argument("--catalyst", choices=CATALYST_MODES, default=None,
                      help="plan CR-PSGD-Catalyst (Algorithm 2). theorem: floor(sqrt(N T)) inner calls of "
                           "floor(sqrt(T / N)) gradients for the total budget --budget; epoch: --outer inner "
                           "calls of one epoch of --shard-size samples each (default: plain CR-PSGD)")
    plan.add_argument("--outer", type=count, default=None,
                      help="K, the number of outer iterations, with --catalyst epoch")
    plan.add_argument("--shard-size", type=count, default=None,
                      help="samples in each worker's shard, with --catalyst epoch")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def run_plan(args):
    if args.schedule == "constant":
        if args.rho is not None or args.b_max is not None:
            raise ValueError("--rho and --b-max apply to --schedule geometric only; "
                             "the constant schedule uses --b1 in every round")
        schedule = ConstantSchedule(args.b1)
    else:
        schedule = GeometricSchedule(args.b1, 1.1 if args.rho is None else args.rho, args.b_max)
    sizes = {"num_workers": args.workers, "num_params": args.params,
             "bytes_per_param": args.bytes_per_param, "leftover": args.leftover}
    if args.catalyst is None:
        plan = make_plan(schedule, args.budget, **sizes)
    else:
        plan = make_catalyst_plan(schedule, catalyst_loop(args), **sizes)
    print(plan.to_json() if args.json else plan.format_table())


def catalyst_loop(args):
    if args.catalyst == "theorem":
        return CatalystLoop.theorem(args.budget, args.workers)
    missing = [option for option, value in (("--outer", args.outer), ("--shard-size", args.shard_size))
               if value is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                         "with --catalyst epoch")
    return CatalystLoop.per_epoch(args.shard_size, args.outer)


def flag_message(error, flags):
    """Return the error's message with a leading library argument name replaced by its flag in ``flags``."""
    message = str(error)
    name = message.split(" ", 1)[0]
    return flags[name] + message[len(name):] if name in flags else message


@contextlib.contextmanager
def flag_errors(parser, flags):
    """Turn a ValueError raised inside the block into ``parser``'s usage error, which names the flag.

    The parser prints its usage line and the message, then exits with status
    2. Under horovodrun every rank parses the same arguments, so every rank
    exits this way, without a traceback.
    """
    try:
        yield
    except ValueError as error:
        parser.error(flag_message(error, flags))


def check_schedule_flags(parser, args):
    """Check the examples' schedule flags after parsing, so a bad value gets ``parser``'s usage error.

    Reads ``args.b1`` and ``args.rho`` and, where the parser defines them,
    ``args.b_max``, ``args.budget`` (T >= B1) and ``args.psgd_batch`` (the
    constant batch of classical PSGD, also <= T).
    """
    b_max, budget, psgd_batch = (getattr(args, name, None) for name in ("b_max", "budget", "psgd_batch"))
    with flag_errors(parser, {**SCHEDULE_FLAGS, "batch_size": "--psgd-batch"}):
        schedule = GeometricSchedule(args.b1, args.rho, b_max)
        if budget is not None:
            planned_batches(schedule, budget)
        if psgd_batch is not None:
            ConstantSchedule(psgd_batch)
    if None not in (budget, psgd_batch) and psgd_batch > budget:
        parser.error(f"--psgd-batch must be <= --budget = {budget}, so that PSGD takes a step, got {psgd_batch}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    with flag_errors(args.command_parser, FLAGS):
        if args.command == "plan":
            run_plan(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
