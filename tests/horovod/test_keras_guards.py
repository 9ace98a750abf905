"""Guards of the Keras adapter under horovodrun -np 2: mismatched settings."""

import time

import pytest

from tests.horovod.launch import horovodrun

pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")

NUM_WORKERS = 2
MISMATCH = "ValueError: the configuration must be the same on every rank, but it differs: "


@pytest.fixture(scope="module")
def guards_output(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keras_guards")
    result = horovodrun("keras_faults.py", directory, "guards", np=NUM_WORKERS, timeout=240)
    assert result.returncode == 0, result.stdout
    return result.stdout


def test_mismatched_budget_fails_every_rank(guards_output):
    message = MISMATCH + ("budget: 200 on ranks [0], 120 on ranks [1]; "
                          "micro_batch_size: 4 on ranks [0], 5 on ranks [1]. Pass the same configuration to every rank")

    for rank in range(NUM_WORKERS):
        assert f"rank {rank} crpsgd {message}" in guards_output


def test_mismatched_theta_fails_every_rank(guards_output):
    message = MISMATCH + "theta: 0.5 on ranks [0], 0.25 on ranks [1]. Pass the same configuration to every rank"

    for rank in range(NUM_WORKERS):
        assert f"rank {rank} catalyst {message}" in guards_output


def test_mismatched_shapes_end_job(tmp_path):
    started = time.monotonic()
    result = horovodrun("keras_faults.py", tmp_path, "shapes", np=NUM_WORKERS, timeout=180)
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    message = MISMATCH + ("trainable_variable_shapes: [[5, 4], [4], [4, 2], [2]] on ranks [0], "
                          "[[5, 3], [3], [3, 2], [2]] on ranks [1]")
    for rank in range(NUM_WORKERS):
        assert f"[{rank}]<stderr>:{message}" in result.stdout
    # launch.horovodrun gives up after 180 s. The job ends soon after both ranks raise, and the
    # 120 s bound leaves room for TensorFlow's start-up on a busy machine.
    assert elapsed < 120, f"the job took {elapsed:.0f} s to end after the mismatch"
