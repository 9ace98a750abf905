"""examples/tf/logistic_regression.py on tiny sizes under horovodrun -np 2."""

import json
import math

import pytest

from tests.horovod.launch import horovodrun

pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")

# The same well-conditioned tiny problem as the PyTorch example's test.
TINY = ["--dim", 20, "--samples-per-worker", 2000, "--budget", 2000, "--lr", 0.1, "--mu", 0.05, "--verbose", 0]
RELATIVE_TOLERANCE = 0.05


def test_keras_crpsgd_matches_psgd(tmp_path):
    result = horovodrun("examples/tf/logistic_regression.py", *TINY, "--out-dir", tmp_path, np=2, timeout=300)
    assert result.returncode == 0, result.stdout
    crpsgd, psgd = json.loads((tmp_path / "results.json").read_text())["results"]

    # B1 = 2, rho = 1.1: the loop of Algorithm 1 for T = 2000, computed here.
    batches, t = [], 1
    while sum(batches) + math.floor(2 * 1.1 ** (t - 1)) <= 2000:
        batches.append(math.floor(2 * 1.1 ** (t - 1)))
        t += 1
    assert crpsgd["rounds"] == len(batches)
    assert crpsgd["gradients_per_worker"] == sum(batches)
    assert crpsgd["optimizer_iterations"] == len(batches)
    assert crpsgd["epoch_logs"]["rounds"] == len(batches)
    assert psgd["rounds"] == 1000
    assert psgd["optimizer_iterations"] == 1000

    assert psgd["final_objective"] < 0.5 * math.log(2)
    assert crpsgd["final_objective"] <= psgd["final_objective"] * (1 + RELATIVE_TOLERANCE)
