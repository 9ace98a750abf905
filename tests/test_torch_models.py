"""Tests for crpsgd_hvd.torch.models: shapes and parameter counts derived by hand."""

import torch

from crpsgd_hvd.torch.models import DigitsCNN, ResNet20


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_resnet20_parameter_count():
    stem = 3 * 16 * 9 + 2 * 16                                   # 3x3 conv without bias, BatchNorm
    stage1 = 6 * (16 * 16 * 9 + 2 * 16)
    stage2 = 16 * 32 * 9 + 5 * 32 * 32 * 9 + 6 * 2 * 32          # the first conv widens 16 -> 32
    stage3 = 32 * 64 * 9 + 5 * 64 * 64 * 9 + 6 * 2 * 64
    head = 64 * 10 + 10

    assert count(ResNet20()) == stem + stage1 + stage2 + stage3 + head == 269_722


def test_resnet20_layers_and_output():
    model = ResNet20()
    weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]

    assert len(weighted) == 20
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_digits_cnn_shape():
    model = DigitsCNN()

    assert count(model) == (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 16 * 10 + 10)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
