"""Train a small float64 model with CRPSGDCatalyst and save gradients, parameters and anchors per round.

Rank r consumes its samples (rows of its own seeded tensor) in order, so the
test can rebuild the union of both ranks' samples for every round.

Usage: catalyst.py OUT_DIR MODE RESET MICRO_BATCH_SIZE
  MODE "epoch" or "theorem"; RESET 1 to clear optimizer state every outer iteration, 0 to keep it.
"""

import json
import sys

import horovod.torch as hvd
import torch

from crpsgd_hvd import CatalystLoop, GeometricSchedule
from crpsgd_hvd.torch import CRPSGDCatalyst, fit_catalyst

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import CATALYST, make_model, rank_samples  # noqa: E402


class RecordingCatalyst(CRPSGDCatalyst):
    """Keeps the gradient each round's step uses: the allreduced mean plus the proximal term."""

    def after_allreduce(self):
        super().after_allreduce()
        self.step_gradient = [p.grad.detach().clone().tolist() for p in self._trainable]


def as_lists(tensors):
    return [t.detach().tolist() for t in tensors]


def anchored_names():
    """Return the state_dict entries of a BatchNorm model and how many tensors its anchor holds."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)).double()
    model[2].bias.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    catalyst = CRPSGDCatalyst(model, torch.optim.SGD(trainable, lr=0.1), GeometricSchedule(2, 2.0),
                              CatalystLoop.per_epoch(10, 1), theta=1.0, micro_batch_size=4)
    return {"state_dict": list(model.state_dict()), "anchor_tensors": len(catalyst.anchor)}


def main():
    out_dir, mode, reset, micro_batch_size = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
    hvd.init()
    torch.manual_seed(1234 + hvd.rank())  # different on each rank: the broadcast must fix it
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=CATALYST["lr"], momentum=CATALYST["momentum"],
                                weight_decay=CATALYST["weight_decay"])
    if mode == "epoch":
        loop, leftover = CatalystLoop.per_epoch(CATALYST["shard"], CATALYST["outer"]), "final_round"
    else:
        loop, leftover = CatalystLoop.theorem(CATALYST["theorem_budget"], hvd.size()), "drop"
    catalyst = RecordingCatalyst(model, optimizer, GeometricSchedule(CATALYST["b1"], CATALYST["rho"]), loop,
                                 theta=CATALYST["theta"], micro_batch_size=micro_batch_size, leftover=leftover,
                                 reset_optimizer_state=reset)
    inputs, targets = rank_samples(hvd.rank())
    position = 0

    def draw(size):
        nonlocal position
        position += size
        return inputs[position - size:position], targets[position - size:position]

    def loss_fn(samples):
        x, y = samples
        return torch.nn.functional.mse_loss(model(x), y)

    initial = as_lists(model.parameters())
    rounds, outer_ends = [], []
    fit_catalyst(catalyst, draw, loss_fn, progress=False,
                 callback=lambda result: rounds.append({
                     "outer": catalyst.catalyst_state.outer + 1, "round": result.round, "batch": result.batch_size,
                     "gradient": catalyst.step_gradient, "params": as_lists(model.parameters()),
                     "anchor": as_lists(catalyst.anchor)}),
                 outer_callback=lambda k, results: outer_ends.append({"k": k, "anchor": as_lists(catalyst.anchor)}))

    saved = catalyst.state_dict()
    with open(f"{out_dir}/rank{hvd.rank()}.json", "w") as file:
        json.dump({"initial": initial, "rounds": rounds, "outer_ends": outer_ends,
                   "accounting": catalyst.accounting.state_dict(),
                   "plan": catalyst.catalyst_plan.to_dict()["totals"],
                   "saved_outer": saved["catalyst_state"]["outer"], "saved_anchor": as_lists(saved["anchor"]),
                   "batchnorm": anchored_names()}, file)


if __name__ == "__main__":
    main()
