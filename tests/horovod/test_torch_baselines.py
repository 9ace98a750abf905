"""The baselines under horovodrun -np 2: local SGD against a single-process reference, and their counters."""

import json
import math
import sys

import pytest
import torch

from tests.horovod.launch import WORKERS, horovodrun
from tests.horovod.test_torch_exactness import count_allreduce_responses

sys.path.insert(0, str(WORKERS))
from common import LOCAL_SGD, SETTINGS, make_model, rank_samples  # noqa: E402

NUM_WORKERS = 2


def reference_local_sgd(initial, average_momentum):
    """Yield, after each local step, every rank's float64 parameters under local SGD.

    Each rank steps its own model and SGD optimizer on its own samples; after
    steps 3, 6, 9 and 10 the parameters (and, if asked, momentum buffers) are
    replaced by their mean over the ranks.
    """
    models, optimizers = [], []
    for _ in range(NUM_WORKERS):
        model = make_model()
        with torch.no_grad():
            for param, value in zip(model.parameters(), initial):
                param.copy_(torch.tensor(value, dtype=torch.float64))
        models.append(model)
        optimizers.append(torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"],
                                          weight_decay=SETTINGS["weight_decay"]))
    samples = [rank_samples(rank) for rank in range(NUM_WORKERS)]
    batch, interval = LOCAL_SGD["batch_size"], LOCAL_SGD["interval"]
    num_steps = LOCAL_SGD["budget"] // batch

    for step in range(1, num_steps + 1):
        for rank, (model, optimizer) in enumerate(zip(models, optimizers)):
            inputs, targets = (t[(step - 1) * batch:step * batch] for t in samples[rank])
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimizer.step()
        averaged = step % interval == 0 or step == num_steps
        if averaged:
            with torch.no_grad():
                for params in zip(*(model.parameters() for model in models)):
                    mean = sum(p.detach().clone() for p in params) / NUM_WORKERS
                    for p in params:
                        p.copy_(mean)
                    if average_momentum:
                        buffers = [optimizer.state[p]["momentum_buffer"] for optimizer, p in zip(optimizers, params)]
                        mean_buffer = sum(b.clone() for b in buffers) / NUM_WORKERS
                        for b in buffers:
                            b.copy_(mean_buffer)
        yield averaged, [[p.detach().clone() for p in model.parameters()] for model in models]


def run_worker(tmp_path, *args, extra=()):
    result = horovodrun("baselines.py", *args[:1], tmp_path, *args[1:], np=NUM_WORKERS, extra=extra)
    assert result.returncode == 0, result.stdout
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]


@pytest.mark.parametrize("optimizer_state, micro_batch_size", [("local", 3), ("average", 100)])
def test_local_sgd_matches_reference(tmp_path, optimizer_state, micro_batch_size):
    ranks = run_worker(tmp_path, "exactness", optimizer_state, micro_batch_size)

    assert ranks[0]["initial"] == ranks[1]["initial"], "the broadcast did not give both ranks rank 0's start"
    reference = reference_local_sgd(ranks[0]["initial"], average_momentum=optimizer_state == "average")
    num_steps = 0
    for step, (averaged, expected) in enumerate(reference, start=1):
        num_steps += 1
        for rank, got in enumerate(ranks):
            assert got["steps"][step - 1]["averaged"] == averaged, f"step {step}"
            params = [torch.tensor(value, dtype=torch.float64) for value in got["steps"][step - 1]["params"]]
            for param_got, param_expected in zip(params, expected[rank]):
                torch.testing.assert_close(param_got, param_expected, rtol=0, atol=1e-12,
                                           msg=lambda m: f"rank {rank}, step {step}: {m}")
    assert num_steps == len(ranks[0]["steps"]) == 10
    # The ranks hold different models between averages, so the test would notice a missing step.
    assert ranks[0]["steps"][0]["params"] != ranks[1]["steps"][0]["params"]

    # 5 -> 4 -> 2 float64 parameters: (5*4 + 4) + (4*2 + 2) = 34 elements of 8 bytes, and as
    # many momentum elements when the optimizer state is averaged too.
    payload = 34 * 8 * (2 if optimizer_state == "average" else 1)
    for rank in ranks:
        accounting = rank["accounting"]
        assert accounting["rounds"] == 4  # after steps 3, 6, 9, 10
        assert accounting["allreduce_calls"] == 4
        assert accounting["samples"] == 40
        assert accounting["payload_bytes"] == 4 * payload
        # A ring allreduce over 2 workers sends 2 (N - 1) / N = 1 payload per worker.
        assert accounting["bytes_sent"] == 4 * payload


def test_rounds_and_allreduces_per_method(tmp_path):
    timeline = tmp_path / "timeline.json"
    ranks = run_worker(tmp_path, "counts", extra=("--timeline-filename", str(timeline)))
    intervals = (1, 2, 3, 4, 7, 10, 25)
    local_steps = 21 // 2

    for rank in ranks:
        psgd = rank["psgd"]
        assert psgd["rounds"] == 20 // 2
        assert psgd["allreduce_calls"] == 20 // 2
        assert psgd["samples"] == 20
        for interval in intervals:
            accounting = rank["local_sgd"][str(interval)]
            assert accounting["rounds"] == math.ceil(local_steps / interval), interval
            assert accounting["allreduce_calls"] == math.ceil(local_steps / interval), interval
            assert accounting["samples"] == 2 * local_steps, interval

    # The timeline counts the collectives Horovod ran, independently of the counters.
    assert count_allreduce_responses(timeline, "grouped_allreduce.0.weight") == 20 // 2
    expected_averages = sum(math.ceil(local_steps / interval) for interval in intervals)
    assert count_allreduce_responses(timeline, "grouped_allreduce.local_sgd.average") == expected_averages
