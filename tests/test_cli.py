"""Tests for crpsgd_hvd.cli: the ``crpsgd-hvd plan`` command."""

import argparse
import json
import pathlib
import subprocess
import sys

import pytest

from crpsgd_hvd.cli import check_schedule_flags, main
from crpsgd_hvd.plan import make_plan
from crpsgd_hvd.schedules import ConstantSchedule, GeometricSchedule

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_json(capsys, *args):
    assert main(["plan", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def run_error(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", *args])
    return exit_info.value.code, capsys.readouterr().err


def test_plan_table(capsys):
    assert main(["plan"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert any(line.startswith("rounds: 65 ") for line in lines)


def test_plan_table_matches_format_table(capsys):
    main(["plan", "--b1", "4", "--rho", "1.5", "--budget", "1000", "--workers", "3", "--params", "10"])

    assert capsys.readouterr().out == make_plan(
        GeometricSchedule(4, 1.5), 1000, num_workers=3, num_params=10).format_table() + "\n"


def test_plan_json_defaults(capsys):
    assert run_json(capsys) == make_plan(GeometricSchedule(2, 1.1), 10_000).to_dict()


def test_plan_json_options(capsys):
    got = run_json(capsys, "--b1", "32", "--rho", "1.02", "--b-max", "512", "--budget", "50000",
                   "--workers", "8", "--params", "272474", "--bytes-per-param", "2")

    assert got == make_plan(GeometricSchedule(32, 1.02, 512), 50_000, num_workers=8, num_params=272_474,
                            bytes_per_param=2).to_dict()


def test_plan_json_exponent_budget(capsys):
    assert run_json(capsys, "--budget", "1e4") == make_plan(GeometricSchedule(2, 1.1), 10_000).to_dict()


def test_plan_json_constant(capsys):
    got = run_json(capsys, "--schedule", "constant", "--b1", "8", "--budget", "100")

    assert got == make_plan(ConstantSchedule(8), 100).to_dict()


def test_plan_json_final_round(capsys):
    got = run_json(capsys, "--leftover", "final_round")

    assert got["totals"]["samples_per_worker"] == 10_000


def test_plan_rejects_rho_one(capsys):
    code, err = run_error(capsys, "--rho", "1.0")

    assert code == 2
    assert "--rho must be > 1.0, got 1.0" in err


def test_plan_rejects_non_integer_b1(capsys):
    code, err = run_error(capsys, "--b1", "2.5")

    assert code == 2
    assert "--b1 must be an integer, got 2.5" in err


def test_plan_rejects_budget_below_b1(capsys):
    code, err = run_error(capsys, "--b1", "4", "--budget", "3")

    assert code == 2
    assert "--budget must be >= the first batch B1 = 4" in err


def test_plan_rejects_zero_workers(capsys):
    code, err = run_error(capsys, "--workers", "0")

    assert code == 2
    assert "--workers must be >= 1, got 0" in err


def test_plan_rejects_b_max_below_b1(capsys):
    code, err = run_error(capsys, "--b1", "32", "--b-max", "16")

    assert code == 2
    assert "--b-max must be >= b1 = 32, got 16" in err


def test_plan_rejects_unknown_leftover(capsys):
    code, err = run_error(capsys, "--leftover", "keep")

    assert code == 2
    assert "--leftover" in err


def test_plan_rejects_rho_for_constant(capsys):
    code, err = run_error(capsys, "--schedule", "constant", "--rho", "1.2")

    assert code == 2
    assert "--rho and --b-max apply to --schedule geometric only" in err


def test_plan_error_prints_usage(capsys):
    _, err = run_error(capsys, "--rho", "1.0")

    assert err.startswith("usage: crpsgd-hvd")


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])

    assert exit_info.value.code == 2


def test_module_subprocess():
    # `python -m` puts the working directory first on sys.path, so the repository root needs no install.
    result = subprocess.run([sys.executable, "-m", "crpsgd_hvd.cli", "plan", "--json"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["rounds"] == 65


def test_plan_catalyst_theorem(capsys):
    data = run_json(capsys, "--catalyst", "theorem", "--budget", "1000", "--workers", "4",
                    "--b1", "2", "--rho", "1.5")

    # K = floor(sqrt(4 * 1000)) = 63 inner calls of floor(sqrt(1000 / 4)) = 15 gradients;
    # batches 2, 3, 4, 6 fill 15, so each call makes 4 rounds.
    assert data["catalyst"] == {"mode": "theorem", "num_outer": 63, "inner_budget": 15}
    assert data["totals"]["rounds_per_outer"] == 4
    assert data["totals"]["rounds"] == 63 * 4


def test_plan_catalyst_epoch_table(capsys):
    assert main(["plan", "--catalyst", "epoch", "--shard-size", "30", "--outer", "5", "--b1", "2",
                 "--rho", "2"]) == 0

    assert "5 outer iterations x 4 rounds = 20 rounds" in capsys.readouterr().out


def test_plan_catalyst_epoch_needs_outer(capsys):
    code, err = run_error(capsys, "--catalyst", "epoch", "--shard-size", "30")

    assert code == 2
    assert "--outer is required with --catalyst epoch" in err


def schedule_flag_error(capsys, **flags):
    """Run check_schedule_flags on an example-like parser; return (exit status, stderr) or None if it passes."""
    parser = argparse.ArgumentParser(prog="example")
    args = argparse.Namespace(**{"b1": 2, "rho": 1.1, **flags})
    try:
        check_schedule_flags(parser, args)
    except SystemExit as exit_info:
        return exit_info.code, capsys.readouterr().err
    return None


@pytest.mark.parametrize("flags, message", [
    ({"rho": 0.9}, "--rho must be > 1.0, got 0.9"),
    ({"b1": 0}, "--b1 must be >= 1, got 0"),
    ({"b_max": 1, "b1": 2}, "--b-max must be >= b1 = 2, got 1"),
    ({"budget": 1}, "--budget must be >= the first batch B1 = 2 so that at least one round runs, got 1"),
    ({"psgd_batch": 0}, "--psgd-batch must be >= 1, got 0"),
    ({"budget": 10, "psgd_batch": 20}, "--psgd-batch must be <= --budget = 10, so that PSGD takes a step, got 20"),
])
def test_schedule_flag_errors_name_flag(capsys, flags, message):
    status, err = schedule_flag_error(capsys, **flags)

    assert status == 2
    assert err.startswith("usage: example")
    assert f"example: error: {message}" in err


def test_valid_schedule_flags_pass(capsys):
    assert schedule_flag_error(capsys, b_max=40, budget=4000, psgd_batch=2) is None
