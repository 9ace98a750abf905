"""Elastic CR-PSGD worker: resized through host discovery, or losing a worker in the middle of a round.

Run as ``elastic.py DIRECTORY MODE`` under ``horovodrun --host-discovery-script``,
where DIRECTORY contains ``data.pt`` (written by the test) and the ``hosts`` file
that the discovery script prints. Every rank appends one JSON line per round
to ``DIRECTORY/rounds-<pid>.jsonl``: the round, its rank and number of
workers, the data-set indices it processed and, on rank 0, the parameters
after the round.

Modes:
    resize: start with 2 workers; after round GROW_AFTER rank 0 lists a
        third slot, after round SHRINK_AFTER it lists two again.
    mismatch: rank 1 passes another micro-batch size, which the check in
        the first sync() rejects on every rank.
    small_data: the data set is smaller than the plan's largest global
        batch, which the constructor rejects on every rank.
    save: run with 2 workers, save a checkpoint after round SAVE_AFTER and stop.
    resume: load that checkpoint with 3 workers and finish the run.
    failure: start with 3 workers, two on ``localhost`` and one on
        ``127.0.0.1``; the one on ``127.0.0.1`` kills itself with SIGKILL
        at the start of round FAIL_IN. The others wait SURVIVOR_DELAY seconds
        before computing their shares. Then a survivor that notices the loss
        at once has no allreduce in flight yet, and Horovod rejects the one
        it starts. In most runs the other survivor notices only when Gloo's
        receive times out after 30 s, with its allreduce already in flight.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.torch.elastic import (ElasticCRPSGD, ElasticState, GlobalBatchSampler, fit_elastic,
                                      load_elastic_checkpoint, save_elastic_checkpoint, wait_for_host_update)

# Per-worker batches at N_ref = 2: 2, 2, 3, 3, 4, 6, 7, 9, 11, 14, then a final round of 5.
SETTINGS = {"b1": 2, "rho": 1.25, "budget": 66, "leftover": "final_round", "reference_workers": 2,
            "micro_batch_size": 2, "lr": 0.5, "momentum": 0.9, "seed": 11, "samples": 50, "features": 3}
GROW_AFTER, SHRINK_AFTER, FAIL_IN, SAVE_AFTER = 3, 7, 5, 6
SURVIVOR_DELAY = 1.0


def make_data(seed=5):
    """Return (inputs, targets) of a small logistic-regression data set in float64."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(SETTINGS["samples"], SETTINGS["features"], generator=generator, dtype=torch.float64)
    targets = (torch.rand(SETTINGS["samples"], generator=generator, dtype=torch.float64) < 0.5).double()
    return inputs, targets


def make_model():
    torch.manual_seed(3)
    return torch.nn.Linear(SETTINGS["features"], 1).double()


def loss_of(model, inputs, targets):
    return torch.nn.functional.binary_cross_entropy_with_logits(model(inputs).squeeze(1), targets)


def main(directory, mode):
    directory = Path(directory)
    hvd.init()
    inputs, targets = torch.load(directory / "data.pt")
    if mode == "small_data":
        inputs, targets = inputs[:20], targets[:20]
    indices = torch.arange(len(inputs))
    model = make_model()
    micro_batch_size = SETTINGS["micro_batch_size"] + (hvd.rank() if mode == "mismatch" else 0)
    crpsgd = ElasticCRPSGD(
        model, torch.optim.SGD(model.parameters(), lr=SETTINGS["lr"], momentum=SETTINGS["momentum"]),
        GeometricSchedule(b1=SETTINGS["b1"], rho=SETTINGS["rho"]), SETTINGS["budget"],
        reference_workers=SETTINGS["reference_workers"], micro_batch_size=micro_batch_size,
        data=GlobalBatchSampler((inputs, targets, indices), seed=SETTINGS["seed"]),
        leftover=SETTINGS["leftover"])
    state = ElasticState(crpsgd)
    checkpoint = directory / "elastic.pt"
    if mode == "resume":
        load_elastic_checkpoint(checkpoint, state)
    log = directory / f"rounds-{os.getpid()}.jsonl"
    processed = []
    # A reset drops the samples of a round that a failure interrupted.
    state.register_reset_callbacks([processed.clear])
    on_loopback_host = os.environ.get("HOROVOD_HOSTNAME") == "127.0.0.1"
    delayed = []

    def loss_fn(samples):
        batch_inputs, batch_targets, batch_indices = samples
        if mode == "failure" and crpsgd.state.rounds + 1 == FAIL_IN:
            if on_loopback_host:
                os.kill(os.getpid(), signal.SIGKILL)
            if not delayed:
                delayed.append(True)
                time.sleep(SURVIVOR_DELAY)
        processed.extend(batch_indices.tolist())
        return loss_of(model, batch_inputs, batch_targets)

    def after_round(state, result):
        record = {"round": result.round, "rank": hvd.rank(), "size": hvd.size(), "indices": list(processed),
                  "global_batch": result.global_batch_size, "skipped": result.skipped}
        if hvd.rank() == 0:
            record["parameters"] = [p.detach().flatten().tolist() for p in model.parameters()]
            record["accounting"] = result.accounting
        with log.open("a") as file:
            file.write(json.dumps(record) + "\n")
        processed.clear()
        if mode == "save" and result.round == SAVE_AFTER:
            save_elastic_checkpoint(checkpoint, state)
            print(f"rank {hvd.rank()} stops after saving round {result.round}", flush=True)
            raise SystemExit(0)
        if mode == "resize" and result.round in (GROW_AFTER, SHRINK_AFTER):
            target_size = 3 if result.round == GROW_AFTER else 2
            if hvd.size() != target_size:
                if hvd.rank() == 0:
                    (directory / "hosts").write_text(f"localhost:{target_size}\n")
                wait_for_host_update(state)

    results = fit_elastic(state, loss_fn, callback=after_round, progress=False)
    print(f"rank {hvd.rank()} of {hvd.size()} finished after round {results[-1].round}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
