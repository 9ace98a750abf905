"""Elastic CR-PSGD under horovodrun --min-np/--max-np with a host discovery script on this machine.

Both jobs must follow, round by round, the trajectory of full-batch SGD in
one process on the global batches that the documented dealing rule gives,
whatever the number of workers in each round.
"""

import json
import sys

import pytest
import torch

from tests.elastic_reference import reference_global_batches
from tests.horovod.launch import WORKERS, horovodrun_elastic, write_host_discovery

sys.path.insert(0, str(WORKERS))
from elastic import (FAIL_IN, GROW_AFTER, SAVE_AFTER, SETTINGS, SHRINK_AFTER, loss_of, make_data,  # noqa: E402
                     make_model)

# B_t = floor(2 * 1.25^(t - 1)) for t = 1..10 sums to 61; the final round spends the 5 left of 66.
PER_WORKER_BATCHES = [2, 2, 3, 3, 4, 6, 7, 9, 11, 14, 5]
GLOBAL_BATCHES = [SETTINGS["reference_workers"] * batch for batch in PER_WORKER_BATCHES]


def reference_parameters(batches):
    """Return the parameters after each round of SGD with momentum on each global batch, in one process."""
    inputs, targets = make_data()
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"])
    trajectory = []
    for batch in batches:
        optimizer.zero_grad()
        index = torch.tensor(batch)
        loss_of(model, inputs[index], targets[index]).backward()
        optimizer.step()
        trajectory.append([p.detach().flatten().tolist() for p in model.parameters()])
    return trajectory


def start_elastic_job(directory, mode, hosts, np, min_np, max_np):
    """Run the worker in ``mode`` as an elastic job on the listed loopback hosts; return the CompletedProcess."""
    torch.save(make_data(), directory / "data.pt")
    discovery = write_host_discovery(directory, hosts)
    return horovodrun_elastic("elastic.py", directory, mode, np=np, min_np=min_np, max_np=max_np,
                              discovery_script=discovery, timeout=240)


def run_elastic_job(directory, mode, hosts, np, min_np, max_np):
    """Run a job that must succeed; return its output and every rank's round records."""
    result = start_elastic_job(directory, mode, hosts, np, min_np, max_np)
    assert result.returncode == 0, result.stdout
    records = [json.loads(line) for path in sorted(directory.glob("rounds-*.jsonl"))
               for line in path.read_text().splitlines()]
    return result.stdout, records


def rounds_by_number(records):
    """Group the records by round; a round logged twice (repeated after a failure) keeps its last run."""
    grouped = {}
    for record in records:
        grouped.setdefault(record["round"], {})[record["rank"]] = record
    return grouped


def check_against_reference(records):
    """Assert that each round's shares, global batch and parameters match the references."""
    expected_batches = reference_global_batches(SETTINGS["samples"], SETTINGS["seed"], GLOBAL_BATCHES)
    expected_parameters = reference_parameters(expected_batches)
    grouped = rounds_by_number(records)
    assert sorted(grouped) == list(range(1, len(GLOBAL_BATCHES) + 1))

    sizes = []
    for number, by_rank in sorted(grouped.items()):
        size = by_rank[0]["size"]
        sizes.append(size)
        assert sorted(by_rank) == list(range(size)), f"round {number}: ranks {sorted(by_rank)}"
        shares = [by_rank[rank]["indices"] for rank in range(size)]
        dealt = [index for share in shares for index in share]
        assert len(set(dealt)) == len(dealt), f"round {number}: a sample was processed twice: {shares}"
        assert dealt == expected_batches[number - 1], f"round {number}"
        assert max(map(len, shares)) - min(map(len, shares)) <= 1, f"round {number}: uneven shares {shares}"
        for got, want in zip(by_rank[0]["parameters"], expected_parameters[number - 1]):
            assert torch.allclose(torch.tensor(got), torch.tensor(want), rtol=0, atol=1e-12), f"round {number}"
    return sizes


def test_reference_epochs_contain_each_sample_once():
    dealt = [i for batch in reference_global_batches(SETTINGS["samples"], SETTINGS["seed"], GLOBAL_BATCHES)
             for i in batch]
    length = SETTINGS["samples"]
    assert len(dealt) > 2 * length  # the rounds cross at least two epoch ends
    for start in range(0, len(dealt) - length + 1, length):
        assert sorted(dealt[start:start + length]) == list(range(length))


@pytest.fixture(scope="module")
def resize_job(tmp_path_factory):
    return run_elastic_job(tmp_path_factory.mktemp("elastic-resize"), "resize", "localhost:2\n",
                           np=2, min_np=2, max_np=3)


def test_resize_follows_single_process_reference(resize_job):
    _, records = resize_job
    sizes = check_against_reference(records)
    expected = [2] * GROW_AFTER + [3] * (SHRINK_AFTER - GROW_AFTER) + [2] * (len(GLOBAL_BATCHES) - SHRINK_AFTER)
    assert sizes == expected


def test_resize_keeps_accounting_of_every_round(resize_job):
    _, records = resize_job
    last = rounds_by_number(records)[len(GLOBAL_BATCHES)][0]["accounting"]
    assert last["rounds"] == len(GLOBAL_BATCHES)
    assert last["allreduce_calls"] == len(GLOBAL_BATCHES)
    assert last["samples"] * SETTINGS["reference_workers"] == sum(GLOBAL_BATCHES)
    # Ring model: 4 parameters of 8 bytes, 2 (N - 1) / N of them sent per round with N workers present.
    sizes = [2] * GROW_AFTER + [3] * (SHRINK_AFTER - GROW_AFTER) + [2] * (len(GLOBAL_BATCHES) - SHRINK_AFTER)
    assert last["bytes_sent"] == sum(round(2 * (n - 1) * 32 / n) for n in sizes)


@pytest.fixture(scope="module")
def failure_job(tmp_path_factory):
    return run_elastic_job(tmp_path_factory.mktemp("elastic-failure"), "failure",
                           "localhost:2\n127.0.0.1:1\n", np=3, min_np=2, max_np=3)


def test_failed_worker_round_is_repeated_by_the_others(failure_job):
    output, records = failure_job
    sizes = check_against_reference(records)
    assert sizes == [3] * (FAIL_IN - 1) + [2] * (len(GLOBAL_BATCHES) - FAIL_IN + 1)
    # The killed worker logged the rounds before FAIL_IN only, as rank 2.
    assert max(r["round"] for r in records if r["rank"] == 2) == FAIL_IN - 1
    # One grouped allreduce per round, the repeated round included: a survivor whose allreduce
    # was rejected must not fall back to one allreduce per parameter.
    last = rounds_by_number(records)[len(GLOBAL_BATCHES)][0]["accounting"]
    assert last["allreduce_calls"] == len(GLOBAL_BATCHES)


def test_checkpoint_resumes_with_more_workers(tmp_path):
    saved, _ = run_elastic_job(tmp_path, "save", "localhost:2\n", np=2, min_np=2, max_np=2)
    assert (tmp_path / "elastic.pt").exists(), saved

    _, records = run_elastic_job(tmp_path, "resume", "localhost:3\n", np=3, min_np=3, max_np=3)

    sizes = check_against_reference(records)
    assert sizes == [2] * SAVE_AFTER + [3] * (len(GLOBAL_BATCHES) - SAVE_AFTER)


@pytest.mark.parametrize("mode, message", [
    ("mismatch", "the configuration must be the same on every rank, but it differs: "
                 "micro_batch_size: 2 on ranks [0], 3 on ranks [1]"),
    ("small_data", "the largest global batch of the plan, 28 = reference_workers 2 x B_t, must be <= the "
                   "data set length 20"),
])
def test_invalid_setup_fails_every_rank(tmp_path, mode, message):
    result = start_elastic_job(tmp_path, mode, "localhost:2\n", np=2, min_np=2, max_np=2)

    assert result.returncode != 0
    for rank in range(2):
        assert any(line.startswith(f"[{rank}]") and message in line for line in result.stdout.splitlines()), \
            result.stdout
