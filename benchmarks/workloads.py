"""Models and data shared by the benchmarks: the CR-PSGD paper's logistic regression (d = 500) and a small CNN on 8x8 inputs."""

import torch

from crpsgd_hvd.problems import LogisticRegressionProblem

WORKLOADS = ("logistic", "cnn")


class DigitsCNN(torch.nn.Sequential):
    """Two 3x3 convolutions and a linear layer for 1 x 8 x 8 inputs and 10 classes (about 23,000 parameters)."""

    def __init__(self):
        super().__init__(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(64 * 2 * 2, 10))


def make_workload(name, rank, num_samples):
    """Return (model, shard tensors, loss_fn) for workload ``name`` on worker ``rank``.

    ``logistic``: LogisticRegressionProblem at d = 500 with ``num_samples`` samples
    per worker. ``cnn``: random 1 x 8 x 8 inputs (the size of scikit-learn's
    digits) with random labels, because only the cost per sample matters here.
    """
    torch.manual_seed(0)
    if name == "logistic":
        problem = LogisticRegressionProblem(dim=500, samples_per_worker=num_samples)
        features, labels = (torch.from_numpy(a).float() for a in problem.shard(rank))
        model = torch.nn.Linear(500, 1, bias=False)

        def loss_fn(samples):
            x, y = samples
            return torch.nn.functional.soft_margin_loss(model(x).reshape(-1), y)
        return model, (features, labels), loss_fn

    if name == "cnn":
        generator = torch.Generator().manual_seed(1 + rank)
        inputs = torch.randn(num_samples, 1, 8, 8, generator=generator)
        targets = torch.randint(0, 10, (num_samples,), generator=generator)
        model = DigitsCNN()

        def loss_fn(samples):
            x, y = samples
            return torch.nn.functional.cross_entropy(model(x), y)
        return model, (inputs, targets), loss_fn

    raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, got {name!r}")
