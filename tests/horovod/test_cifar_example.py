"""The CIFAR-10 example on a tiny set in the CIFAR-10 pickle format, under horovodrun -np 2."""

import json

from tests.horovod.launch import horovodrun
from tests.test_datasets import write_tiny_cifar

# write_tiny_cifar writes 5 batches of 3 images: 15 training images, 7 per worker as shards.
TINY = ["--epochs", 2, "--b1", 2, "--rho", 2.0, "--b-max", 4, "--psgd-batch", 2, "--micro-batch-size", 4,
        "--data-per-worker", "shard", "--eval-samples", 4, "--no-plot", "--no-progress"]


def test_cifar_example_runs_on_tiny_set(tmp_path):
    data_dir = write_tiny_cifar(tmp_path / "cifar")
    result = horovodrun("examples/torch/cifar10_catalyst.py", "--data-dir", data_dir, *TINY,
                        "--out-dir", tmp_path / "out", np=2, timeout=240)
    assert result.returncode == 0, result.stdout
    catalyst, psgd = json.loads((tmp_path / "out" / "results.json").read_text())["results"]

    # Each epoch of 7 samples: batches 2, 4, then a final round of 1.
    assert catalyst["rounds"] == catalyst["planned_rounds"] == 2 * 3
    assert catalyst["gradients_per_worker"] == 2 * 7
    assert psgd["rounds"] == 2 * 7 // 2
    assert 0.0 <= catalyst["test_accuracy"] <= 1.0


def test_cifar_example_names_missing_folder(tmp_path):
    result = horovodrun("examples/torch/cifar10_catalyst.py", "--data-dir", tmp_path / "absent", *TINY,
                        "--out-dir", tmp_path / "out", np=2, timeout=120)

    assert result.returncode != 0
    assert "FileNotFoundError: CIFAR-10 folder" in result.stdout
    assert "absent' not found" in result.stdout
