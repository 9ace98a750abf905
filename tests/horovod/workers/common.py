"""Model, samples and settings shared by the Horovod workers and the tests' references."""

import torch

SETTINGS = {"b1": 3, "rho": 1.5, "b_max": 40, "budget": 200, "lr": 0.05, "momentum": 0.9,
            "weight_decay": 0.01}
# Local SGD: 10 local steps of 4 samples, averaged after steps 3, 6, 9 and 10.
LOCAL_SGD = {"batch_size": 4, "budget": 40, "interval": 3}


def make_model():
    """A two-layer float64 network; biases included so every parameter kind is covered."""
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def rank_samples(rank, count=256):
    """Return rank ``rank``'s samples in the order it consumes them."""
    generator = torch.Generator().manual_seed(100 + rank)
    inputs = torch.randn(count, 5, generator=generator, dtype=torch.float64)
    targets = torch.randn(count, 2, generator=generator, dtype=torch.float64)
    return inputs, targets

# CR-PSGD-Catalyst: epoch mode spends SHARD samples per inner call for OUTER calls;
# theorem mode gets THEOREM_BUDGET per worker, so K = isqrt(2 * 72) = 12 calls of isqrt(36) = 6.
CATALYST = {"b1": 2, "rho": 1.5, "theta": 0.5, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01,
            "shard": 20, "outer": 3, "theorem_budget": 72}
