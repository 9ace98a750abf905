"""examples/tf/digits_catalyst.py on two outer iterations under horovodrun -np 2."""

import json

import pytest

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import horovodrun

pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")
pytest.importorskip("sklearn", reason="the digits come from scikit-learn")

# 1,797 digits, 359 held out, 1,438 left: 719 per worker.
SHARD_SIZE = 719


def test_keras_catalyst_learns_digits(tmp_path):
    result = horovodrun("examples/tf/digits_catalyst.py", "--outer", 2, "--verbose", 0, "--out-dir", tmp_path,
                        np=2, timeout=400)
    assert result.returncode == 0, result.stdout
    catalyst, psgd = json.loads((tmp_path / "results.json").read_text())["results"]
    inner = planned_batches(GeometricSchedule(8, 1.2, 128), SHARD_SIZE, "final_round")

    assert catalyst["rounds"] == 2 * len(inner)
    assert catalyst["epoch_logs"]["rounds"] == 2 * len(inner)
    assert catalyst["epoch_logs"]["outer"] == 2
    assert catalyst["gradients_per_worker"] == 2 * SHARD_SIZE
    assert psgd["rounds"] == 2 * SHARD_SIZE // 8
    assert catalyst["rounds"] * 2 < psgd["rounds"]
    # Ten classes: chance is 0.1.
    assert catalyst["test_accuracy"] > 0.5
    assert psgd["test_accuracy"] > 0.5
