"""CRPSGD under horovodrun -np 2 against a single-process float64 reference on the union of samples."""

import json
import sys
from pathlib import Path

import pytest
import torch

from crpsgd_hvd import GeometricSchedule, micro_batch_sizes, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

sys.path.insert(0, str(WORKERS))
from common import SETTINGS, make_model, rank_samples  # noqa: E402

NUM_WORKERS = 2


def reference_rounds(initial, batches):
    """Yield the parameters after each round of full-batch SGD on both ranks' samples."""
    model = make_model()
    with torch.no_grad():
        for param, value in zip(model.parameters(), initial):
            param.copy_(torch.tensor(value, dtype=torch.float64))
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                weight_decay=SETTINGS["weight_decay"])
    samples = [rank_samples(rank) for rank in range(NUM_WORKERS)]
    position = 0
    for batch in batches:
        inputs = torch.cat([x[position:position + batch] for x, _ in samples])
        targets = torch.cat([y[position:position + batch] for _, y in samples])
        position += batch
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        yield [p.detach().clone() for p in model.parameters()]


def run_job(tmp_path, micro_batch_size, leftover, extra=()):
    result = horovodrun("exactness.py", tmp_path, micro_batch_size, leftover, np=NUM_WORKERS, extra=extra)
    assert result.returncode == 0, result.stdout
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]


@pytest.mark.parametrize("micro_batch_size, leftover", [(1, "drop"), (7, "final_round"), (1000, "drop")])
def test_rounds_match_reference(tmp_path, micro_batch_size, leftover):
    ranks = run_job(tmp_path, micro_batch_size, leftover)
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    expected_batches = planned_batches(schedule, SETTINGS["budget"], leftover)

    assert ranks[0]["initial"] == ranks[1]["initial"], "the broadcast did not give both ranks rank 0's start"
    for rank in ranks:
        assert [r["batch"] for r in rank["rounds"]] == expected_batches
        assert rank["plan_batches"] == expected_batches
        sizes = [tuple(r["micro_batches"]) for r in rank["rounds"]]
        assert sizes == [micro_batch_sizes(b, micro_batch_size) for b in expected_batches]

    reference = reference_rounds(ranks[0]["initial"], expected_batches)
    for t, expected in enumerate(reference):
        for rank in ranks:
            got = [torch.tensor(value, dtype=torch.float64) for value in rank["rounds"][t]["params"]]
            for param_got, param_expected in zip(got, expected):
                torch.testing.assert_close(param_got, param_expected, rtol=0, atol=1e-12,
                                           msg=lambda m: f"round {t + 1}: {m}")


def count_allreduce_responses(timeline_path, prefix):
    """Count collective executions of tensors whose names start with ``prefix``.

    Horovod's timeline lists, per tensor, an ALLREDUCE start when its response
    begins; the tensors of one fused response start together, before any of
    them reaches the Gloo allreduce. So each maximal run of consecutive
    ALLREDUCE starts in the file is one collective.
    """
    text = Path(timeline_path).read_text().rstrip().rstrip(",")
    events = json.loads(text if text.endswith("]") else text + "]")
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name" and "name" in e["args"]}
    responses, in_run = 0, False
    for event in events:
        if event.get("ph") != "B" or not names.get(event.get("pid"), "").startswith(prefix):
            continue
        starts_response = event["name"] == "ALLREDUCE"
        if starts_response and not in_run:
            responses += 1
        in_run = starts_response
    return responses


def test_one_allreduce_per_round(tmp_path):
    timeline = tmp_path / "timeline.json"
    ranks = run_job(tmp_path, 4, "drop", extra=("--timeline-filename", str(timeline)))
    rounds = len(ranks[0]["rounds"])

    assert rounds == len(planned_batches(
        GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"]), SETTINGS["budget"]))
    payload = sum(p.numel() for p in make_model().parameters()) * 8  # float64 gradients
    for rank in ranks:
        assert rank["accounting"]["rounds"] == rounds
        assert rank["accounting"]["allreduce_calls"] == rounds
        assert rank["accounting"]["payload_bytes"] == rounds * payload
        # A ring allreduce over 2 workers sends 2 (N - 1) / N = 1 payload per worker.
        assert rank["accounting"]["bytes_sent"] == rounds * payload
    assert count_allreduce_responses(timeline, "grouped_allreduce.") == rounds
