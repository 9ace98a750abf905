"""Models for the examples: a small CNN for 8x8 digits and ResNet20 for CIFAR-10."""

import torch
from torch import nn
from torch.nn import functional

__all__ = ["DigitsCNN", "ResNet20"]


class DigitsCNN(nn.Sequential):
    """Two 3x3 convolutions (16 and 32 channels), one 2x2 max-pool and a linear layer.

    Input: ``(batch, 1, 8, 8)`` images, such as scikit-learn's handwritten
    digits; output: ``(batch, num_classes)`` logits. 9,930 parameters for 10 classes.
    """

    def __init__(self, num_classes=10):
        super().__init__(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 4 * 4, num_classes),
        )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut around them.

    Where the block halves the resolution and doubles the channels, the
    shortcut subsamples by 2 and pads the new channels with zeros, so it has
    no parameters (option A of He et al., 2016, the one used for CIFAR-10).
    """

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x):
        out = functional.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra_channels:
            half = self.extra_channels // 2
            shortcut = functional.pad(shortcut, (0, 0, 0, 0, half, self.extra_channels - half))
        return functional.relu(out + shortcut)


class ResNet20(nn.Module):
    """ResNet20 for 32x32 images (He et al., 2016, section 4.2, n = 3).

    A 3x3 convolution to 16 channels, then 3 stages of 3 basic blocks at 16,
    32 and 64 channels (the second and third stages start with stride 2),
    global average pooling and a linear layer: 20 weighted layers and
    269,722 parameters for 10 classes. Input: ``(batch, 3, 32, 32)``.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, in_channels = [], 16
        for out_channels, stride in ((16, 1), (32, 2), (64, 2)):
            for index in range(3):
                blocks.append(BasicBlock(in_channels, out_channels, stride if index == 0 else 1))
                in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x):
        out = functional.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = torch.flatten(functional.adaptive_avg_pool2d(out, 1), 1)
        return self.fc(out)
