"""The ``crpsgd-hvd`` command: ``crpsgd-hvd plan`` prints a training plan."""

import argparse
import sys

from crpsgd_hvd.plan import make_plan
from crpsgd_hvd.rounds import LEFTOVER_POLICIES
from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule


def build_parser():
    parser = argparse.ArgumentParser(prog="crpsgd-hvd", description=(
        "Tools for communication-reduced parallel SGD (CR-PSGD) on Horovod."))
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="print the rounds, samples and bytes of a run before it starts")
    plan.add_argument("--schedule", choices=("geometric", "constant"), default="geometric",
                      help="geometric: B_t = floor(rho^(t-1) B1), capped at --b-max; constant: B_t = B1")
    plan.add_argument("--b1", type=float, default=2, help="first per-worker batch B1 (default: 2)")
    plan.add_argument("--rho", type=float, default=1.1, help="growth factor rho > 1 (default: 1.1)")
    plan.add_argument("--b-max", type=float, default=None, help="cap on the per-worker batch (default: none)")
    plan.add_argument("--budget", type=float, default=10_000,
                      help="T, stochastic gradients per worker (default: 10000)")
    plan.add_argument("--workers", type=float, default=1, help="N, number of workers (default: 1)")
    plan.add_argument("--params", type=float, default=0,
                      help="gradient elements allreduced per round, for the byte counts (default: 0)")
    plan.add_argument("--bytes-per-param", type=float, default=4,
                      help="bytes per gradient element on the wire (default: 4, float32)")
    plan.add_argument("--leftover", choices=LEFTOVER_POLICIES, default="drop",
                      help="drop the samples the last full round cannot use, or spend them "
                           "in a final smaller round (default: drop)")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def run_plan(args):
    if args.schedule == "constant":
        schedule = ConstantSchedule(args.b1)
    else:
        schedule = GeometricSchedule(args.b1, args.rho, args.b_max)
    plan = make_plan(schedule, args.budget, num_workers=args.workers, num_params=args.params,
                     bytes_per_param=args.bytes_per_param, leftover=args.leftover)
    print(plan.to_json() if args.json else plan.format_table())


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            run_plan(args)
    except ValueError as error:
        # Invalid values get argparse's usage line and exit status 2.
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
