"""The main job (examples/torch/logistic_regression.py) on tiny sizes under horovodrun -np 2."""

import json
import math

from tests.horovod.launch import horovodrun

# A well-conditioned tiny version of the paper's problem: d = 20 gives
# L close to (d + 4) / 4 = 6, so gamma = 0.1 is stable, and mu = 0.05 makes
# the few large-batch steps of CR-PSGD enough to catch up with PSGD.
TINY = ["--dim", 20, "--samples-per-worker", 2000, "--budget", 2000, "--lr", 0.1, "--mu", 0.05,
        "--no-progress"]
# CR-PSGD's final objective may exceed PSGD's by at most this fraction.
RELATIVE_TOLERANCE = 0.05


def test_crpsgd_matches_psgd_with_fewer_rounds(tmp_path):
    result = horovodrun("examples/torch/logistic_regression.py", *TINY, "--out-dir", tmp_path, np=2, timeout=240)
    assert result.returncode == 0, result.stdout
    summary = json.loads((tmp_path / "results.json").read_text())
    crpsgd, psgd, local_sgd = summary["results"]

    assert (tmp_path / "objective.png").stat().st_size > 10_000
    assert "final objective" in result.stdout
    # At x1 = 0 every margin is 0, so the objective is log 2 exactly.
    assert math.isclose(crpsgd["history"]["objective"][0], math.log(2), rel_tol=1e-12)
    assert math.isclose(psgd["history"]["objective"][0], math.log(2), rel_tol=1e-12)
    assert math.isclose(local_sgd["history"]["objective"][0], math.log(2), rel_tol=1e-12)

    assert psgd["rounds"] == 2000 // 2
    assert psgd["allreduce_calls"] == 2000 // 2
    # Local SGD at the default H = 16: ceil(1000 / 16) = 63 averages of the parameters.
    assert local_sgd["method"] == "local SGD H=16"
    assert local_sgd["rounds"] == 63
    assert local_sgd["allreduce_calls"] == 63
    assert local_sgd["gradients_per_worker"] == 2000
    assert local_sgd["final_objective"] < 0.5 * math.log(2)
    assert crpsgd["rounds"] == crpsgd["planned_rounds"]
    assert crpsgd["allreduce_calls"] == crpsgd["rounds"]
    assert crpsgd["rounds"] * 10 < psgd["rounds"]
    assert crpsgd["gradients_per_worker"] <= 2000

    assert psgd["final_objective"] < 0.5 * math.log(2)
    assert crpsgd["final_objective"] <= psgd["final_objective"] * (1 + RELATIVE_TOLERANCE)


def test_sweep_picks_largest_interval_when_models_agree(tmp_path):
    # With --same-shard every worker draws the same samples, so the workers'
    # models stay equal, averaging changes nothing, and local SGD reproduces
    # PSGD exactly for every H: even with a tolerance of 0 the largest H passes.
    args = ["--dim", 20, "--samples-per-worker", 500, "--budget", 200, "--lr", 0.1, "--mu", 0.05,
            "--no-progress", "--no-plot", "--same-shard", "--sweep-intervals", "2,5,40", "--sweep-rtol", 0]
    result = horovodrun("examples/torch/logistic_regression.py", *args, "--out-dir", tmp_path, np=2, timeout=240)
    assert result.returncode == 0, result.stdout
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    summary = json.loads((tmp_path / "results.json").read_text())

    psgd_objective = summary["results"][1]["final_objective"]
    assert sweep["reference_objective"] == psgd_objective
    assert [row["interval"] for row in sweep["intervals"]] == [2, 5, 40]
    assert [row["rounds"] for row in sweep["intervals"]] == [50, 20, 3]
    for row in sweep["intervals"]:
        assert row["final_objective"] == psgd_objective, row
    assert sweep["chosen_interval"] == 40
    assert summary["config"]["local_sgd_interval"] == 40
    assert summary["results"][2]["method"] == "local SGD H=40"
    assert "<- chosen" in result.stdout


def test_invalid_rho_usage_error_every_rank(tmp_path):
    result = horovodrun("examples/torch/logistic_regression.py", *TINY, "--rho", 0.9, "--out-dir", tmp_path,
                        np=2, timeout=120)

    assert result.returncode != 0
    for rank in range(2):
        assert f"[{rank}]<stderr>:logistic_regression.py: error: --rho must be > 1.0, got 0.9" in result.stdout
        assert f"[{rank}]<stderr>:Traceback" not in result.stdout
    assert not (tmp_path / "results.json").exists()
