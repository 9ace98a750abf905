"""Keras checkpoint and resume under horovodrun -np 2: resumed runs end where an uninterrupted run ends."""

import json
import math
import sys

import numpy as np
import pytest

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")

sys.path.insert(0, str(WORKERS))
from keras_common import CATALYST, SETTINGS  # noqa: E402
from keras_resume import (INSIDE_ROUND_RUN, OTHER_DATA_SEED, SAVE_AFTER, SAVE_AFTER_CATALYST,  # noqa: E402
                          SHARD_LENGTHS)

NUM_WORKERS = 2
SCHEDULE = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
# (batches of every round in order, micro-batch size, save points) per callback, as the worker sets them up.
RUNS = {
    "crpsgd": (planned_batches(SCHEDULE, SETTINGS["budget"]), 2, SAVE_AFTER),
    "catalyst": (planned_batches(SCHEDULE, CATALYST["inner_budget"]) * CATALYST["outer"], 3, SAVE_AFTER_CATALYST),
}


def read_ranks(directory, mode):
    return [json.loads((directory / f"{mode}_rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]


def assert_arrays_equal(got, expected, label):
    assert len(got) == len(expected), label
    for index, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=f"{label}, array {index}")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Run the saving job, then the resuming job in new processes; return their directory and output."""
    directory = tmp_path_factory.mktemp("keras_checkpoints")
    saved = horovodrun("keras_resume.py", directory, "save", np=NUM_WORKERS, timeout=300)
    assert saved.returncode == 0, saved.stdout
    resumed = horovodrun("keras_resume.py", directory, "resume", np=NUM_WORKERS, timeout=300)
    assert resumed.returncode == 0, resumed.stdout
    return directory, saved.stdout, resumed.stdout


@pytest.mark.parametrize("method", ["crpsgd", "catalyst"])
def test_resume_matches_uninterrupted_run(jobs, method):
    directory, _, _ = jobs
    before, after = read_ranks(directory, "save"), read_ranks(directory, "resume")
    batches, micro_batch_size, points = RUNS[method]

    for rank in range(NUM_WORKERS):
        reference = before[rank][method]
        assert reference["state"]["accounting"]["rounds"] == len(batches)
        assert reference["state"]["samples_drawn"] == sum(batches)
        assert reference["iterations"] == len(batches)
        assert reference["steps_left"] == 0
        assert_arrays_equal(reference["weights"], before[0][method]["weights"], f"rank {rank} against rank 0")
        for k in points:
            label = f"rank {rank}, {method} resumed after round {k}"
            stopped = before[rank][f"{method}-{k}-stopped"]
            steps_left = sum(math.ceil(b / micro_batch_size) for b in batches[k:])
            assert stopped["state"]["accounting"]["rounds"] == k, label
            assert stopped["state"]["samples_drawn"] == sum(batches[:k]), label
            assert stopped["steps_left"] == steps_left, label
            assert after[rank][f"{method}-{k}-steps"] == steps_left, label

            run = after[rank][f"{method}-{k}"]
            assert_arrays_equal(run["weights"], reference["weights"], label)
            assert_arrays_equal(run["optimizer"], reference["optimizer"], label + ", optimizer")
            assert run["iterations"] == reference["iterations"], label
            assert run["allreduce_count"] == reference["allreduce_count"], label
            assert run["state"] == reference["state"], label
            if method == "catalyst":
                assert_arrays_equal(run["anchor"], reference["anchor"], label + ", anchor")


def test_catalyst_stops_at_outer_boundary(jobs):
    directory, _, _ = jobs
    before = read_ranks(directory, "save")
    rounds_per_outer = len(planned_batches(SCHEDULE, CATALYST["inner_budget"]))

    for rank in range(NUM_WORKERS):
        for k in SAVE_AFTER_CATALYST:
            state = before[rank][f"catalyst-{k}-stopped"]["state"]
            assert state["catalyst_state"] == {"outer": k // rounds_per_outer}
            assert state["round_state"]["rounds"] == k % rounds_per_outer


def test_one_file_per_rank(jobs):
    directory, _, _ = jobs

    for method, (_, _, points) in RUNS.items():
        for k in points:
            files = sorted(path.name for path in (directory / f"{method}-{k}").iterdir())
            assert files == [f"rank{rank}.npz" for rank in range(NUM_WORKERS)]


def test_checkpoint_inside_round_rejected(jobs):
    directory, output, _ = jobs
    message = ("RuntimeError: cannot save state inside round 2, after 1 of its 2 micro-batches, because its "
               "partial gradient accumulation is not saved")

    for rank in range(NUM_WORKERS):
        assert f"rank {rank} {message}" in output
    assert not (directory / "inside-round").exists()
    assert INSIDE_ROUND_RUN in SAVE_AFTER


def test_load_with_other_budget_rejected(jobs):
    _, _, output = jobs
    message = ("ValueError: state was saved with other settings: budget 200 (this run: 180). "
               "Resume with the settings of the saved run")

    for rank in range(NUM_WORKERS):
        assert f"rank {rank} {message}" in output


def test_resume_with_other_data_seed_rejected(jobs):
    _, _, output = jobs

    for rank in range(NUM_WORKERS):
        saved = {"seed": 50 + rank, "shuffle": True, "length": SHARD_LENGTHS[rank]}
        current = {**saved, "seed": OTHER_DATA_SEED}
        message = (f"rank {rank} data ValueError: the checkpoint's data was read from a dataset with {saved}, "
                   f"this dataset has {current}: pass round_dataset the seed, shuffle and shard of the saved run")
        assert message in output
