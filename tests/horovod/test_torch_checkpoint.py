"""Checkpoint and resume under horovodrun -np 2: resumed runs end where an uninterrupted run ends."""

import json
import math
import shutil
import sys

import pytest
import torch

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

sys.path.insert(0, str(WORKERS))
from common import LOCAL_SGD, SETTINGS  # noqa: E402
from resume import SAVE_AFTER, SHARD_LENGTHS, catalyst_points  # noqa: E402
from resume_local_sgd import OTHER_INTERVAL, POLICIES, SAVE_AFTER_STEP  # noqa: E402

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
    return directory, saved.stdout + resumed.stdout


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
        assert_same_tensors(before[rank]["catalyst-saving"]["params"], reference["params"],
                            f"rank {rank} Catalyst saving")
        for point in catalyst_points():
            run = after[rank][f"catalyst-{point}"]
            label = f"rank {rank} Catalyst resumed after {point} (outer iteration or outer.round)"
            assert_same_tensors(run["params"], reference["params"], label)
            assert_same_tensors(run["anchor"], reference["anchor"], f"{label}, anchor")
            assert run["outer"] == 3
            assert run["accounting"] == reference["accounting"]
            assert run["sampler"] == reference["sampler"]


def test_checkpoint_inside_round_rejected(jobs):
    directory, output = jobs

    for rank in range(NUM_WORKERS):
        assert (f"rank {rank} RuntimeError: cannot save state inside round 2, because its partial gradient "
                "accumulation is not saved: save after step()") in output
    assert not (directory / "inside-round").exists()


def test_more_workers_resume_fails(jobs):
    directory, _ = jobs
    result = horovodrun("resume.py", directory, "more-workers", np=NUM_WORKERS + 1, timeout=120)
    saved = directory / "crpsgd-1"

    assert result.returncode == 0, result.stdout
    for rank in range(NUM_WORKERS):
        assert (f"rank {rank} ValueError: checkpoint {saved / f'rank{rank}.pt'} was saved by rank {rank} of 2 "
                f"workers, this is rank {rank} of 3: resume with the same number of workers") in result.stdout
    assert (f"rank 2 FileNotFoundError: checkpoint file {saved / 'rank2.pt'} not found: {saved} has the files of "
            "ranks [0, 1] only. Resume with the number of workers that saved them") in result.stdout


def test_catalyst_wrong_open_outer_rejected(jobs):
    _, output = jobs

    for rank in range(NUM_WORKERS):
        assert (f"rank {rank} ValueError: state['open_outer'] must be None or 2, the outer iteration after "
                "the saved progress (1 completed), got 3") in output


@pytest.fixture(scope="module")
def local_sgd_jobs(tmp_path_factory):
    """Run LocalSGD's saving job, then its resuming job in new processes; return their directory and output.

    Between the two, the "mixed" checkpoint gets rank 0's file from after
    step 3 and rank 1's from after step 5.
    """
    directory = tmp_path_factory.mktemp("local_sgd_checkpoints")
    saved = horovodrun("resume_local_sgd.py", directory, "save", np=NUM_WORKERS, timeout=120)
    assert saved.returncode == 0, saved.stdout
    (directory / "mixed").mkdir()
    shutil.copy(directory / "local-3" / "rank0.pt", directory / "mixed" / "rank0.pt")
    shutil.copy(directory / "local-5" / "rank1.pt", directory / "mixed" / "rank1.pt")
    resumed = horovodrun("resume_local_sgd.py", directory, "resume", np=NUM_WORKERS, timeout=120)
    assert resumed.returncode == 0, resumed.stdout
    return directory, saved.stdout + resumed.stdout


def read_local_sgd_ranks(directory, mode):
    return [torch.load(directory / f"{mode}_rank{rank}.pt", weights_only=True) for rank in range(NUM_WORKERS)]


def saved_parameters(directory, name, rank):
    state = torch.load(directory / name / f"rank{rank}.pt", weights_only=True)
    return list(state["method"]["model"].values())


def assert_equal_tensors(got, expected, label):
    assert len(got) == len(expected), label
    for index, (a, b) in enumerate(zip(got, expected)):
        assert torch.equal(a, b), f"{label}, tensor {index}: largest difference {(a - b).abs().max().item()}"


def test_local_sgd_checkpoints_differ_between_averages(local_sgd_jobs):
    directory, _ = local_sgd_jobs
    num_steps = LOCAL_SGD["budget"] // LOCAL_SGD["batch_size"]

    for optimizer_state, _ in POLICIES:
        for step in SAVE_AFTER_STEP:
            name = f"{optimizer_state}-{step}"
            ranks = [saved_parameters(directory, name, rank) for rank in range(NUM_WORKERS)]
            averaged = step % LOCAL_SGD["interval"] == 0 or step == num_steps
            same = all(torch.equal(a, b) for a, b in zip(*ranks))
            # Right after an average both ranks have the mean. Between averages each rank has its own model.
            assert same == averaged, f"{name}: ranks hold equal parameters: {same}"


def test_local_sgd_resume_matches_uninterrupted_run(local_sgd_jobs):
    directory, _ = local_sgd_jobs
    before, after = read_local_sgd_ranks(directory, "save"), read_local_sgd_ranks(directory, "resume")
    num_steps = LOCAL_SGD["budget"] // LOCAL_SGD["batch_size"]
    samples = num_steps * LOCAL_SGD["batch_size"]

    for rank in range(NUM_WORKERS):
        for optimizer_state, _ in POLICIES:
            reference = before[rank][optimizer_state]
            assert reference["steps_done"] == num_steps
            assert reference["accounting"]["rounds"] == math.ceil(num_steps / LOCAL_SGD["interval"])
            assert reference["accounting"]["samples"] == samples
            assert reference["sampler"]["epoch"] * SHARD_LENGTHS[rank] + reference["sampler"]["position"] == samples
            saving = before[rank][f"{optimizer_state}-saving"]
            assert_equal_tensors(saving["params"], reference["params"], f"rank {rank} {optimizer_state} saving")

            for step in SAVE_AFTER_STEP:
                label = f"rank {rank} {optimizer_state}, resumed after step {step}"
                run = after[rank][f"{optimizer_state}-{step}"]
                assert_equal_tensors(run["params"], reference["params"], label)
                assert_equal_tensors(run["momentum"], reference["momentum"], f"{label}, momentum")
                assert run["steps_done"] == num_steps, label
                assert run["accounting"] == reference["accounting"], label
                assert run["sampler"] == reference["sampler"], label
    # Different shards keep the ranks' momentum apart under the "local" policy.
    assert not torch.equal(before[0]["local"]["momentum"][0], before[1]["local"]["momentum"][0])


def test_local_sgd_checkpoint_inside_step_rejected(local_sgd_jobs):
    directory, output = local_sgd_jobs

    for rank in range(NUM_WORKERS):
        message = (f"rank {rank} RuntimeError: cannot save state inside local step 2, because its partial "
                   "gradient accumulation is not saved: save after step()")
        assert output.count(message) == len(POLICIES), output
    assert not (directory / "inside-step").exists()


def test_local_sgd_load_with_other_interval_fails(local_sgd_jobs):
    _, output = local_sgd_jobs

    for rank in range(NUM_WORKERS):
        message = (f"rank {rank} ValueError: state was saved with other settings than this LocalSGD's: "
                   f"interval: {LOCAL_SGD['interval']} in the state, {OTHER_INTERVAL} here. "
                   "Build LocalSGD with the saved settings to resume from this state")
        assert message in output, output


def test_local_sgd_files_of_different_steps_fail(local_sgd_jobs):
    _, output = local_sgd_jobs

    for rank in range(NUM_WORKERS):
        message = (f"rank {rank} ValueError: the checkpoint progress must be the same on every rank, but it "
                   "differs: local_steps: 3 on ranks [0], 5 on ranks [1].")
        assert message in output, output
