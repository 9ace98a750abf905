"""Guards under horovodrun -np 2: mismatched settings (CRPSGD, LocalSGD), non-finite gradients, a crashing rank."""

import json
import sys
import time

import pytest
import torch

from crpsgd_hvd import GeometricSchedule, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

sys.path.insert(0, str(WORKERS))
from common import LOCAL_SGD, SETTINGS, make_model, rank_samples  # noqa: E402
from faults import LOCAL_SGD_MISMATCH, POISONED_ROUND  # noqa: E402

NUM_WORKERS = 2


@pytest.fixture(scope="module")
def guards_job(tmp_path_factory):
    directory = tmp_path_factory.mktemp("guards")
    result = horovodrun("faults.py", directory, "guards", np=NUM_WORKERS, timeout=120)
    assert result.returncode == 0, result.stdout
    ranks = [json.loads((directory / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]
    return result.stdout, ranks


def reference_skipping(skipped_round):
    """Return the parameters of full-batch SGD on both ranks' samples, with one round's samples discarded.

    Built like the workers' model from rank 0's seed, since the broadcast
    gives every rank rank 0's start.
    """
    torch.manual_seed(1234)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    samples = [rank_samples(rank) for rank in range(NUM_WORKERS)]
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    position = 0
    for t, batch in enumerate(planned_batches(schedule, SETTINGS["budget"]), start=1):
        if t == skipped_round:
            position += batch  # the rejected attempt used these samples
        inputs = torch.cat([x[position:position + batch] for x, _ in samples])
        targets = torch.cat([y[position:position + batch] for _, y in samples])
        position += batch
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
    return [p.detach() for p in model.parameters()]


def test_mismatched_configuration_fails_every_rank(guards_job):
    output, _ = guards_job

    message = ("ValueError: the configuration must be the same on every rank, but it differs: "
               "budget: 200 on ranks [0], 120 on ranks [1]; micro_batch_size: 4 on ranks [0], 5 on ranks [1]")
    for rank in range(NUM_WORKERS):
        assert f"rank {rank} {message}" in output


def test_nonfinite_gradient_raises_every_rank(guards_job):
    output, _ = guards_job

    # Rounds 1 and 2 used 3 + 4 samples per worker; round 3's batch is floor(1.5^2 * 3) = 6.
    message = "FloatingPointError: round 3 (batch 6, after 7 samples per worker): the averaged gradient contains NaN"
    for rank in range(NUM_WORKERS):
        assert f"rank {rank} {message}" in output


def test_nonfinite_gradient_skips_round(guards_job):
    _, ranks = guards_job
    batches = planned_batches(GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"]),
                              SETTINGS["budget"])
    expected = reference_skipping(POISONED_ROUND)

    for rank, data in enumerate(ranks):
        skipped = [a for a in data["attempts"] if a["skipped"]]
        assert skipped == [{"round": 3, "batch": 6, "skipped": True, "samples": 7}]
        assert [a["round"] for a in data["attempts"] if not a["skipped"]] == list(range(1, len(batches) + 1))
        assert data["round_state"] == {"rounds": len(batches), "samples": sum(batches)}
        assert data["accounting"]["rounds"] == len(batches)
        # The skipped round's allreduce did happen, so it is counted.
        assert data["accounting"]["allreduce_calls"] == len(batches) + 1
        for got, want in zip(data["params"], expected, strict=True):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want, rtol=0, atol=1e-12)
    assert len(ranks[0]["warnings"]) == 1
    assert ranks[0]["warnings"][0].startswith("round 3 (batch 6, after 7 samples per worker)")
    assert ranks[1]["warnings"] == [], "only rank 0 warns for the job"


@pytest.mark.parametrize("case, evidence", [
    ("crash", "[1]<stderr>:RuntimeError: rank 1 fails on purpose at the start of round 3"),
    ("kill", "[1]<stdout>:rank 1 fails on purpose at the start of round 3"),
])
def test_crashing_rank_ends_job(tmp_path, case, evidence):
    started = time.monotonic()
    result = horovodrun("faults.py", tmp_path, case, np=NUM_WORKERS, timeout=90)
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    assert evidence in result.stdout
    # launch.horovodrun raises after 90 s; ending well inside that shows rank 0 was not left waiting.
    assert elapsed < 60, f"the job took {elapsed:.0f} s to end after rank 1 failed"


def test_local_sgd_mismatched_configuration_fails_every_rank(tmp_path):
    started = time.monotonic()
    result = horovodrun("faults.py", tmp_path, "local_sgd_mismatch", np=NUM_WORKERS, timeout=90)
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    message = ("ValueError: the configuration must be the same on every rank, but it differs: "
               f"interval: {LOCAL_SGD['interval']} on ranks [0], {LOCAL_SGD_MISMATCH['interval']} on ranks [1]; "
               f'optimizer_state: "local" on ranks [0], "{LOCAL_SGD_MISMATCH["optimizer_state"]}" on ranks [1]. '
               "Pass the same configuration to every rank")
    for rank in range(NUM_WORKERS):
        assert f"[{rank}]<stderr>:{message}" in result.stdout, result.stdout
    # Both ranks raise before the broadcast, so neither waits for the other.
    assert elapsed < 60, f"the job took {elapsed:.0f} s to end"


def test_local_sgd_nonfinite_average_raises_every_rank(tmp_path):
    result = horovodrun("faults.py", tmp_path, "local_sgd_nan", np=NUM_WORKERS, timeout=90)

    assert result.returncode == 0, result.stdout
    # Rank 1's NaN inputs in local step 2 reach both ranks through the average after step 3 (H = 3).
    message = ("FloatingPointError: averaging round 1 (after local step 3): the averaged parameters contain "
               "NaN or infinite values")
    for rank in range(NUM_WORKERS):
        assert f"rank {rank} {message}" in result.stdout
