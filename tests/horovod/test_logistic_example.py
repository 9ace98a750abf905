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
    crpsgd, psgd = summary["results"]

    assert (tmp_path / "objective.png").stat().st_size > 10_000
    assert "final objective" in result.stdout
    # At x1 = 0 every margin is 0, so the objective is log 2 exactly.
    assert math.isclose(crpsgd["history"]["objective"][0], math.log(2), rel_tol=1e-12)
    assert math.isclose(psgd["history"]["objective"][0], math.log(2), rel_tol=1e-12)

    assert psgd["rounds"] == 2000 // 2
    assert crpsgd["rounds"] == crpsgd["planned_rounds"]
    assert crpsgd["allreduce_calls"] == crpsgd["rounds"]
    assert crpsgd["rounds"] * 10 < psgd["rounds"]
    assert crpsgd["gradients_per_worker"] <= 2000

    assert psgd["final_objective"] < 0.5 * math.log(2)
    assert crpsgd["final_objective"] <= psgd["final_objective"] * (1 + RELATIVE_TOLERANCE)
