"""Guards of the Keras adapter under horovodrun -np 2: mismatched settings, non-finite gradients."""

import json
import sys
import time

import numpy as np
import pytest

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")

sys.path.insert(0, str(WORKERS))
from keras_common import SETTINGS, reference_rounds  # noqa: E402
from keras_faults import POISONED_ROUND  # noqa: E402

NUM_WORKERS = 2
MISMATCH = "ValueError: the configuration must be the same on every rank, but it differs: "


@pytest.fixture(scope="module")
def guards_job(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keras_guards")
    result = horovodrun("keras_faults.py", directory, "guards", np=NUM_WORKERS, timeout=300)
    assert result.returncode == 0, result.stdout
    ranks = [json.loads((directory / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]
    return result.stdout, ranks


@pytest.fixture(scope="module")
def guards_output(guards_job):
    return guards_job[0]


def reference_weights(initial, skipped_round=None, rounds=None):
    """Return the reference weights after the first ``rounds`` rounds of the plan (all of them by default)."""
    batches = planned_batches(GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"]),
                              SETTINGS["budget"])
    return list(reference_rounds(initial, batches[:rounds], NUM_WORKERS, skipped_round))[-1]


def assert_weights_equal(got, expected, label):
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(np.array(a), b, rtol=0, atol=1e-12, err_msg=f"{label}, variable {index}")


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


def test_nonfinite_gradient_raises_every_rank(guards_job):
    output, ranks = guards_job
    # Rounds 1 and 2 used 3 + 4 samples per worker; round 3's batch is floor(1.5^2 * 3) = 6.
    message = ("FloatingPointError: round 3 (batch 6, after 7 samples per worker): the averaged gradient "
               "contains NaN or infinite values; no step was taken")
    initial = ranks[0]["raise"]["initial"]
    after_two_rounds = reference_weights(initial, rounds=POISONED_ROUND - 1)

    for rank, data in enumerate(ranks):
        assert f"rank {rank} {message}" in output
        assert data["raise"]["initial"] == initial
        assert data["raise"]["iterations"] == POISONED_ROUND - 1
        assert data["raise"]["round_state"] == {"rounds": 2, "samples": 7}
        assert_weights_equal(data["raise"]["weights"], after_two_rounds, f"rank {rank} after the error")


def test_nonfinite_gradient_skips_round(guards_job):
    _, ranks = guards_job
    batches = planned_batches(GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"]),
                              SETTINGS["budget"])
    expected = reference_weights(ranks[0]["skip"]["initial"], skipped_round=POISONED_ROUND)

    for rank, data in enumerate(ranks):
        skip = data["skip"]
        assert skip["initial"] == ranks[0]["skip"]["initial"]
        assert skip["round_state"] == {"rounds": len(batches), "samples": sum(batches)}
        assert skip["iterations"] == len(batches)
        assert skip["skipped_rounds"] == 1
        assert skip["samples_drawn"] == sum(batches) + batches[POISONED_ROUND - 1]
        assert skip["accounting"]["rounds"] == len(batches)
        # The skipped round's allreduce did happen, so it is counted.
        assert skip["allreduce_count"] == len(batches) + 1
        assert skip["accounting"]["allreduce_calls"] == len(batches) + 1
        assert skip["history"]["rounds"] == [len(batches)]
        assert skip["history"]["skipped_rounds"] == [1]
        assert_weights_equal(skip["weights"], expected, f"rank {rank}")
    assert len(ranks[0]["skip"]["warnings"]) == 1
    assert ranks[0]["skip"]["warnings"][0].startswith("round 3 (batch 6, after 7 samples per worker)")
    assert ranks[1]["skip"]["warnings"] == [], "only rank 0 warns for the job"
