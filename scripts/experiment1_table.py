"""Write the markdown results table of a logistic-regression run from its results.json and sweep.json.

Usage: python scripts/experiment1_table.py OUT_DIR [--command "the command that made OUT_DIR"]
"""

import argparse
import json
from pathlib import Path


def format_results(results):
    lines = ["| method | gradients / worker | rounds | allreduce calls | bytes / worker | total bytes "
             "| final objective | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['method']} | {r['gradients_per_worker']} | {r['rounds']} | {r['allreduce_calls']} "
                     f"| {r['bytes_per_worker']} | {r['total_bytes']} | {r['final_objective']:.6f} "
                     f"| {r['wall_seconds']:.1f} |")
    return lines


def format_sweep(sweep):
    lines = [f"Local SGD sweep against PSGD's final objective {sweep['reference_objective']:.6f}: "
             f"H passes when its final objective is at most {sweep['limit']:.6f} "
             f"(relative tolerance {sweep['rtol']:.1%}). Largest passing H: {sweep['chosen_interval']}.",
             "", "| H | rounds | final objective | vs PSGD | within |", "|---:|---:|---:|---:|---|"]
    for row in sweep["intervals"]:
        within = "yes" if row["final_objective"] <= sweep["limit"] else "no"
        lines.append(f"| {row['interval']} | {row['rounds']} | {row['final_objective']:.6f} "
                     f"| {row['relative_excess']:+.2%} | {within} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder with results.json (and sweep.json, if a sweep ran)")
    parser.add_argument("--command", default=None, help="the command that produced the folder, quoted in the table")
    args = parser.parse_args()

    summary = json.loads((args.out_dir / "results.json").read_text())
    config = summary["config"]
    lines = [f"# Logistic regression: N = {config['workers']}, d = {config['dim']}, "
             f"M = {config['samples_per_worker']}, mu = {config['mu']}, T = {config['budget']}", ""]
    if args.command:
        lines += ["Regenerate with:", "", "```bash", args.command, "```", ""]
    lines += [f"CR-PSGD: B1 = {config['b1']}, rho = {config['rho']}; PSGD and local SGD: batch "
              f"{config['psgd_batch']}, local SGD H = {config['local_sgd_interval']}; all with gamma = "
              f"{config['lr']}, x1 = 0, seed {config['seed']}.", ""]
    lines += format_results(summary["results"])
    sweep_path = args.out_dir / "sweep.json"
    if sweep_path.exists():
        lines += [""] + format_sweep(json.loads(sweep_path.read_text()))
    lines += ["", "![objective against gradient calls and against rounds](objective.png)"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
