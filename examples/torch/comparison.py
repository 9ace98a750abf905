"""Pieces shared by the classification examples: loss monitoring, the PSGD baseline, table and plot."""

import json
import os
import time

import horovod.torch as hvd
import torch
from torch.nn import functional

from crpsgd_hvd import CommunicationAccounting


class Monitor:
    """Evaluate the training loss on fixed samples of every shard and keep one method's history.

    ``samples`` is this worker's (images, labels) evaluation set, the whole
    shard or a fixed part of it. All workers must pass the same count, so the
    mean of their means is the mean over all of them. The evaluation costs one
    allreduce that no method's counters include, and its time is kept in
    ``seconds`` so that callers can exclude it from wall time.
    """

    def __init__(self, samples, micro_batch_size=1024):
        self.samples = samples
        self.micro_batch_size = micro_batch_size
        self.history = {"gradients_per_worker": [], "rounds": [], "train_loss": []}
        self.seconds = 0.0

    def __call__(self, model, gradients_per_worker, rounds):
        started = time.perf_counter()
        local = mean_over_batches(model, self.samples, self.micro_batch_size,
                                  lambda logits, labels: functional.cross_entropy(logits, labels, reduction="sum"))
        loss = hvd.allreduce(torch.tensor(local), name="eval.train_loss", op=hvd.Average).item()
        self.history["gradients_per_worker"].append(gradients_per_worker)
        self.history["rounds"].append(rounds)
        self.history["train_loss"].append(loss)
        self.seconds += time.perf_counter() - started
        return loss


def mean_over_batches(model, samples, micro_batch_size, total_fn):
    """Return total_fn summed over micro-batches, divided by the sample count, in eval mode."""
    images, labels = samples
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(labels), micro_batch_size):
            stop = start + micro_batch_size
            total += float(total_fn(model(images[start:stop]), labels[start:stop]))
    model.train(was_training)
    return total / len(labels)


def accuracy(model, samples, micro_batch_size=1024):
    """Return the fraction of ``samples`` whose largest logit is the label."""
    return mean_over_batches(model, samples, micro_batch_size,
                             lambda logits, labels: (logits.argmax(dim=1) == labels).sum())


def run_psgd(model, optimizer, draw, loss_fn, batch_size, steps, monitor, eval_every):
    """Run classical parallel SGD (one allreduce per step) and return (accounting, wall seconds).

    ``optimizer`` is a Horovod ``DistributedOptimizer``; the monitor is
    called at the start, every ``eval_every`` steps and after the last step.
    """
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    accounting = CommunicationAccounting(num_workers=hvd.size())
    payload = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    monitor(model, 0, 0)

    started = time.perf_counter()
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss_fn(draw(batch_size)).backward()
        optimizer.step()
        accounting.record_allreduce(payload)
        accounting.record_round(batch_size)
        if step % eval_every == 0 or step == steps:
            monitor(model, accounting.samples, accounting.rounds)
    return accounting, time.perf_counter() - started - monitor.seconds


def summarize(method, accounting, monitor, wall_seconds, planned_rounds, metric="train_loss", **extra):
    """Return one method's result: its counters, ``final_<metric>``, the history and ``extra`` fields."""
    return {
        "method": method,
        "gradients_per_worker": accounting.samples,
        "rounds": accounting.rounds,
        "planned_rounds": planned_rounds,
        "allreduce_calls": accounting.allreduce_calls,
        "bytes_per_worker": accounting.bytes_sent,
        "total_bytes": accounting.total_bytes_sent,
        f"final_{metric}": monitor.history[metric][-1],
        **extra,
        "wall_seconds": wall_seconds,
        "history": monitor.history,
    }


def write_results(out_dir, config, results, title, table, figure=None, **plot_options):
    """On rank 0's behalf: write results.json and, unless ``figure`` is None, the plot; print the table."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as file:
        json.dump({"config": config, "results": results}, file, indent=1)
    if figure is not None:
        plot(results, os.path.join(out_dir, figure), title, **plot_options)

    print(title)
    print(table)
    print(f"results in {out_dir}/results.json" + ("" if figure is None else f" and {figure}"))


def format_table(results):
    header = (f"{'method':<17} {'grads/worker':>12} {'rounds':>7} {'bytes/worker':>13} "
              f"{'train loss':>11} {'test acc':>9} {'wall s':>7}")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r['method']:<17} {r['gradients_per_worker']:>12} {r['rounds']:>7} "
                     f"{r['bytes_per_worker']:>13} {r['final_train_loss']:>11.4f} "
                     f"{r['test_accuracy']:>9.3f} {r['wall_seconds']:>7.2f}")
    return "\n".join(lines)


def plot(results, path, title, metric="train_loss", ylabel="training loss (cross-entropy)"):
    """Save ``history[metric]`` against gradient calls and against rounds, one line per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_gradients, by_rounds) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in results:
        history = r["history"]
        by_gradients.plot(history["gradients_per_worker"], history[metric], label=r["method"])
        # Round 0 (the start) has no place on a log axis.
        by_rounds.plot(history["rounds"][1:], history[metric][1:], label=r["method"])
    by_gradients.set_xlabel("stochastic gradient calls per worker (SFO)")
    by_rounds.set_xlabel("communication rounds (log scale)")
    by_rounds.set_xscale("log")
    for axis in (by_gradients, by_rounds):
        axis.set_ylabel(ylabel)
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
