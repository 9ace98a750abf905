"""CRPSGDCatalyst under horovodrun -np 2 against a single-process float64 reference of Algorithm 2."""

import json
import sys

import pytest
import torch

from tests.horovod.launch import WORKERS, horovodrun

sys.path.insert(0, str(WORKERS))
from common import CATALYST, make_model, rank_samples  # noqa: E402

NUM_WORKERS = 2
# Batches of one inner call with B1 = 2, rho = 1.5: 2, 3, 4 (4.5), 6 (6.75), 10 (10.125), ...
# Epoch mode: 2 + 3 + 4 + 6 = 15 of 20 samples, then a final round of 5 (leftover="final_round").
# Theorem mode: T_in = 6 holds 2 + 3, and the next batch, 4, does not fit (leftover="drop").
JOBS = {
    "epoch": {"reset": 1, "micro_batch_size": 4, "outer": 3, "batches": [2, 3, 4, 6, 5]},
    "theorem": {"reset": 0, "micro_batch_size": 1, "outer": 12, "batches": [2, 3]},
}


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=CATALYST["lr"], momentum=CATALYST["momentum"],
                           weight_decay=CATALYST["weight_decay"])


def reference_rounds(initial, job):
    """Yield (k, gradient of h_theta, parameters after the step, anchor) for every round of Algorithm 2."""
    model = make_model()
    with torch.no_grad():
        for param, value in zip(model.parameters(), initial):
            param.copy_(torch.tensor(value, dtype=torch.float64))
    anchor = [p.detach().clone() for p in model.parameters()]
    samples = [rank_samples(rank) for rank in range(NUM_WORKERS)]
    optimizer, position = make_optimizer(model), 0
    for k in range(1, job["outer"] + 1):
        if job["reset"]:
            optimizer = make_optimizer(model)
        for batch in job["batches"]:
            inputs = torch.cat([x[position:position + batch] for x, _ in samples])
            targets = torch.cat([y[position:position + batch] for _, y in samples])
            position += batch
            optimizer.zero_grad()
            proximal = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            h_theta = torch.nn.functional.mse_loss(model(inputs), targets) + 0.5 * CATALYST["theta"] * proximal
            h_theta.backward()
            gradient = [p.grad.detach().clone() for p in model.parameters()]
            optimizer.step()
            yield k, gradient, [p.detach().clone() for p in model.parameters()], [a.clone() for a in anchor]
        anchor = [p.detach().clone() for p in model.parameters()]


def as_tensors(values):
    return [torch.tensor(value, dtype=torch.float64) for value in values]


def assert_tensors_equal(got, expected, message):
    for got_tensor, expected_tensor in zip(as_tensors(got), expected, strict=True):
        torch.testing.assert_close(got_tensor, expected_tensor, rtol=0, atol=1e-12, msg=lambda m: f"{message}: {m}")


@pytest.fixture(scope="module", params=sorted(JOBS))
def job_result(request, tmp_path_factory):
    mode, job = request.param, JOBS[request.param]
    out_dir = tmp_path_factory.mktemp(f"catalyst_{mode}")
    result = horovodrun("catalyst.py", out_dir, mode, job["reset"], job["micro_batch_size"], np=NUM_WORKERS)
    assert result.returncode == 0, result.stdout
    ranks = [json.loads((out_dir / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]
    return job, ranks


def test_rounds_match_plan(job_result):
    job, ranks = job_result
    rounds_per_outer = len(job["batches"])

    for rank in ranks:
        assert rank["plan"]["outer_iterations"] == job["outer"]
        assert rank["plan"]["rounds_per_outer"] == rounds_per_outer
        assert rank["plan"]["rounds"] == job["outer"] * rounds_per_outer
        assert [r["batch"] for r in rank["rounds"]] == job["batches"] * job["outer"]
        assert [r["round"] for r in rank["rounds"]] == list(range(1, rounds_per_outer + 1)) * job["outer"]
        assert rank["accounting"]["rounds"] == job["outer"] * rounds_per_outer
        assert rank["accounting"]["allreduce_calls"] == rank["accounting"]["rounds"]
        assert rank["accounting"]["samples"] == job["outer"] * sum(job["batches"])


def test_gradient_and_parameters_match_reference(job_result):
    job, ranks = job_result

    assert ranks[0]["initial"] == ranks[1]["initial"], "the broadcast did not give both ranks rank 0's start"
    reference = list(reference_rounds(ranks[0]["initial"], job))
    assert len(reference) == len(ranks[0]["rounds"])
    for index, (k, gradient, params, _) in enumerate(reference):
        for rank_index, rank in enumerate(ranks):
            got = rank["rounds"][index]
            where = f"rank {rank_index}, outer {k}, round {got['round']}"
            assert got["outer"] == k, where
            assert_tensors_equal(got["gradient"], gradient, f"{where}: gradient of h_theta")
            assert_tensors_equal(got["params"], params, f"{where}: parameters")


def test_anchor_moves_once_per_inner_call(job_result):
    job, ranks = job_result
    reference = list(reference_rounds(ranks[0]["initial"], job))

    for rank in ranks:
        anchors = [r["anchor"] for r in rank["rounds"]]
        moves = sum(1 for before, after in zip(anchors, anchors[1:]) if before != after)
        assert moves == job["outer"] - 1, "the anchor must change only between inner calls"
        assert anchors[0] == rank["initial"], "y_0 must be the broadcast start"
        for index, (k, _, _, anchor) in enumerate(reference):
            assert_tensors_equal(anchors[index], anchor, f"outer {k}: anchor y_{k - 1}")

        assert [end["k"] for end in rank["outer_ends"]] == list(range(1, job["outer"] + 1))
        last_rounds = [r for r, nxt in zip(rank["rounds"], rank["rounds"][1:] + [None])
                       if nxt is None or nxt["outer"] != r["outer"]]
        for end, last in zip(rank["outer_ends"], last_rounds, strict=True):
            assert end["anchor"] == last["params"], f"y_{end['k']} must equal the parameters after its inner call"
        assert rank["saved_outer"] == job["outer"]
        assert rank["saved_anchor"] == rank["outer_ends"][-1]["anchor"]


def test_anchor_skips_buffers_and_frozen(job_result):
    _, ranks = job_result

    for rank in ranks:
        # Linear(3, 4), BatchNorm1d(4), Linear(4, 1) with the last bias frozen: 9 state_dict entries,
        # of which 5 are trainable parameters (2 + 2 + 1).
        assert len(rank["batchnorm"]["state_dict"]) == 9
        assert "1.running_mean" in rank["batchnorm"]["state_dict"]
        assert rank["batchnorm"]["anchor_tensors"] == 5
