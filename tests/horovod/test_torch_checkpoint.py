"""Checkpoint and resume under horovodrun -np 2: resumed runs end where an uninterrupted run ends."""

import json
import sys

import pytest
import torch

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

sys.path.insert(0, str(WORKERS))
from common import SETTINGS  # noqa: E402
from resume import SAVE_AFTER, SAVE_AFTER_OUTER, SHARD_LENGTHS  # noqa: E402

NUM_WORKERS = 2


def assert_same_tensors(got, expected, label):
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                                   rtol=0, atol=1e-12, msg=lambda m: f"{label}, tensor {index}: {m}")


def read_ranks(directory, mode):
    return [json.loads((directory / f"{mode}_rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Run the saving job, then the resuming job in new processes; return their directory and output."""
    directory = tmp_path_factory.mktemp("checkpoints")
    saved = horovodrun("resume.py", directory, "save", np=NUM_WORKERS, timeout=120)
    assert saved.returncode == 0, saved.stdout
    resumed = horovodrun("resume.py", directory, "resume", np=NUM_WORKERS, timeout=120)
    assert resumed.returncode == 0, resumed.stdout
    return directory, saved.stdout


def test_resume_matches_uninterrupted_run(jobs):
    directory, _ = jobs
    before, after = read_ranks(directory, "save"), read_ranks(directory, "resume")

    batches = planned_batches(GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"]),
                              SETTINGS["budget"])
    for rank in range(NUM_WORKERS):
        reference = before[rank]["crpsgd"]
        assert reference["round_state"] == {"rounds": len(batches), "samples": sum(batches)}
        # Rank 0's 7-sample shard wrapped into new epochs; the sampler counts them.
        shard = SHARD_LENGTHS[rank]
        assert reference["sampler"]["epoch"] * shard + reference["sampler"]["position"] == sum(batches)
        assert_same_tensors(before[rank]["crpsgd-saving"]["params"], reference["params"], f"rank {rank} saving")
        for t in SAVE_AFTER:
            run = after[rank][f"crpsgd-{t}"]
            assert_same_tensors(run["params"], reference["params"], f"rank {rank} resumed after round {t}")
            assert run["round_state"] == reference["round_state"]
            assert run["accounting"] == reference["accounting"]
            assert run["sampler"] == reference["sampler"]

        reference = before[rank]["catalyst"]
        assert reference["outer"] == 3
        for k in SAVE_AFTER_OUTER:
            run = after[rank][f"catalyst-{k}"]
            assert_same_tensors(run["params"], reference["params"], f"rank {rank} resumed after outer {k}")
            assert_same_tensors(run["anchor"], reference["anchor"], f"rank {rank} anchor after outer {k}")
            assert run["outer"] == 3
            assert run["accounting"] == reference["accounting"]
            assert run["sampler"] == reference["sampler"]


def test_checkpoint_inside_round_rejected(jobs):
    directory, output = jobs

    for rank in range(NUM_WORKERS):
        assert (f"rank {rank} RuntimeError: cannot save state inside round 2, because its partial gradient "
                "accumulation is not saved: save after step()") in output
    assert not (directory / "inside-round").exists()
