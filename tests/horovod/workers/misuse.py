"""Call CRPSGD the wrong way on every rank and print each error; exit 0 if all were raised.

Usage: misuse.py CASE
  CASE "invalid_micro_batch": constructs CRPSGD with micro_batch_size=0 and lets the error escape.
  CASE "loop_errors": checks the errors of a misordered loop and prints them.
  CASE "one_rank_invalid": only rank 1 passes an invalid budget; rank 0 goes on to the broadcast.
"""

import sys

import horovod.torch as hvd
import torch

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.torch import CRPSGD, LocalSGD


def make():
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def expect(error_type, action):
    try:
        action()
    except error_type as error:
        print(f"rank {hvd.rank()} {error_type.__name__}: {error}", flush=True)
        return
    raise SystemExit(f"rank {hvd.rank()}: expected {error_type.__name__}")


def loop_errors():
    model, optimizer = make()
    crpsgd = CRPSGD(model, optimizer, GeometricSchedule(4, 2.0), budget=12, micro_batch_size=3)
    expect(RuntimeError, crpsgd.step)
    spec = crpsgd.next_round()
    expect(RuntimeError, crpsgd.next_round)
    loss = model(torch.ones(3, 3)).mean()
    expect(ValueError, lambda: crpsgd.backward(loss, 2))
    crpsgd.backward(loss, spec.micro_batch_sizes[0])
    expect(RuntimeError, crpsgd.step)
    expect(RuntimeError, crpsgd.state_dict)
    crpsgd.backward(model(torch.ones(1, 3)).mean(), spec.micro_batch_sizes[1])
    crpsgd.step()
    expect(ValueError, lambda: CRPSGD(model, crpsgd.optimizer, GeometricSchedule(2, 2.0), 10,
                                      micro_batch_size=1))
    fresh_optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expect(ValueError, lambda: CRPSGD(model, fresh_optimizer, GeometricSchedule(2, 2.0), 10, micro_batch_size=1))
    expect(ValueError, lambda: LocalSGD(model, fresh_optimizer, batch_size=2, budget=10, interval=2))


def main():
    hvd.init()
    case = sys.argv[1]
    if case == "invalid_micro_batch":
        model, optimizer = make()
        CRPSGD(model, optimizer, GeometricSchedule(2, 1.1), budget=100, micro_batch_size=0)
    elif case == "one_rank_invalid":
        model, optimizer = make()
        budget = 1 if hvd.rank() == 1 else 100
        CRPSGD(model, optimizer, GeometricSchedule(2, 1.1), budget=budget, micro_batch_size=4)
    elif case == "loop_errors":
        loop_errors()
        print(f"rank {hvd.rank()} all errors raised", flush=True)


if __name__ == "__main__":
    main()
