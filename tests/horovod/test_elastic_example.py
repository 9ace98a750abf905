"""The elastic example on tiny sizes: resized from 2 to 3 workers and back, against a fixed 2-worker job."""

import json
import math

from tests.horovod.launch import horovodrun, horovodrun_elastic, write_host_discovery

EXAMPLE = "examples/torch/elastic_logistic_regression.py"
TINY = ["--dim", 20, "--samples-per-worker", 300, "--budget", 300, "--lr", 0.1, "--mu", 0.05,
        "--micro-batch-size", 16, "--reference-workers", 2, "--no-progress"]


def test_resized_run_matches_fixed_run(tmp_path):
    resized_dir, fixed_dir = tmp_path / "resized", tmp_path / "fixed"
    resized_dir.mkdir()
    discovery = write_host_discovery(resized_dir, "localhost:2\n")

    resized = horovodrun_elastic(EXAMPLE, *TINY, "--hosts-file", resized_dir / "hosts", "--resize", "5:3,12:2",
                                 "--out-dir", resized_dir, np=2, min_np=2, max_np=3, discovery_script=discovery,
                                 timeout=240)
    fixed = horovodrun(EXAMPLE, *TINY, "--no-plot", "--out-dir", fixed_dir, np=2, timeout=240)

    assert resized.returncode == 0, resized.stdout
    assert fixed.returncode == 0, fixed.stdout
    resized_history = json.loads((resized_dir / "results.json").read_text())["history"]
    fixed_history = json.loads((fixed_dir / "results.json").read_text())["history"]
    rounds = len(fixed_history["round"]) - 1
    assert resized_history["workers"][1:] == [2] * 5 + [3] * 7 + [2] * (rounds - 12)
    assert "rounds 6-12: 3 workers" in resized.stdout
    # Rank 0 logs every change of workers; Horovod skips sync() when workers only leave.
    assert "elastic CR-PSGD: 2 workers at round 0 of" in resized.stdout
    assert "elastic CR-PSGD: 3 workers at round 5 of" in resized.stdout
    assert "elastic CR-PSGD: 2 workers at round 12 of" in resized.stdout
    # At x1 = 0 every margin is 0, so the objective is log 2 exactly.
    assert math.isclose(resized_history["objective"][0], math.log(2), rel_tol=1e-12)
    assert resized_history["objective"][-1] < 0.8 * math.log(2)
    # The rounds do not depend on the number of workers; float32 sums in another order differ slightly.
    for resized_value, fixed_value in zip(resized_history["objective"], fixed_history["objective"]):
        assert math.isclose(resized_value, fixed_value, rel_tol=1e-5)
    assert (resized_dir / "objective.png").stat().st_size > 10_000
