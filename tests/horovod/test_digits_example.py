"""The digits example (examples/torch/digits_catalyst.py) on tiny sizes under horovodrun -np 2."""

import json

from tests.horovod.launch import horovodrun

# load_digits has 1797 samples: 359 held out (20%), 1438 for training, 719 per worker.
SHARD_SIZE = 719
TINY = ["--outer", 4, "--b1", 8, "--rho", 1.3, "--b-max", 64, "--eval-points", 10, "--no-progress"]
# Ten classes, so guessing scores 0.1; half the held-out digits right is clearly learned.
MIN_ACCURACY = 0.5


def test_catalyst_learns_digits_with_fewer_rounds(tmp_path):
    result = horovodrun("examples/torch/digits_catalyst.py", *TINY, "--out-dir", tmp_path, np=2, timeout=240)
    assert result.returncode == 0, result.stdout
    summary = json.loads((tmp_path / "results.json").read_text())
    catalyst, psgd = summary["results"]

    assert summary["config"]["shard_size"] == SHARD_SIZE
    assert summary["config"]["test_size"] == 1797 - 2 * SHARD_SIZE
    assert (tmp_path / "loss.png").stat().st_size > 10_000
    assert "CR-PSGD-Catalyst" in result.stdout

    # One epoch per outer iteration, all of it spent (leftover="final_round").
    assert catalyst["gradients_per_worker"] == 4 * SHARD_SIZE
    assert psgd["gradients_per_worker"] == (4 * SHARD_SIZE // 8) * 8
    assert psgd["rounds"] == 4 * SHARD_SIZE // 8
    assert catalyst["rounds"] == catalyst["planned_rounds"]
    assert catalyst["allreduce_calls"] == catalyst["rounds"]
    assert catalyst["rounds"] * 2 < psgd["rounds"]

    assert catalyst["test_accuracy"] > MIN_ACCURACY
    assert psgd["test_accuracy"] > MIN_ACCURACY
    assert catalyst["history"]["train_loss"][-1] < catalyst["history"]["train_loss"][0]
