"""ResNet-20/32/56 for CIFAR-10.

Source: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016 (arXiv:1512.03385), section 4.2. A 3x3 convolution with 16 maps, then three
stages of n basic blocks with 16, 32 and 64 maps (feature maps 32x32, 16x16, 8x8; the first
block of stages 2 and 3 halves the size with stride 2), global average pooling and a linear
layer: 6n + 2 weighted layers. n = 3, 5, 9 give ResNet-20, -32, -56 (0.27M, 0.46M, 0.85M
parameters).

A basic block computes relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)). Where the shape
changes, the paper's option A shortcut takes every second pixel and pads the new channels
with zeros (no parameters); option B uses a 1x1 convolution with batch norm instead.
"""

from .. import nn
from .base import ZooModel
from ..functional import math as M


class DownsampleA(nn.Module):
    """Option A shortcut: (N, C, H, W) -> (N, C + 2*pad, H/2, W/2), new channels zero."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x):
        half = x[:, :, ::2, ::2]
        pad = self.extra_channels // 2
        return M.pad(half, ((0, 0), (pad, self.extra_channels - pad), (0, 0), (0, 0)))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the shortcut. (N, C_in, H, W) -> (N, C_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Sequential()  # identity
        elif shortcut == "A":
            self.shortcut = DownsampleA(out_channels - in_channels)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(ZooModel):
    """CIFAR ResNet with 6n+2 layers. (N, in_channels, 32, 32) -> (N, num_classes)."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A"):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"resnet: shortcut must be 'A' (zero padding) or 'B' (1x1 conv), got {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, 16, n, 1, shortcut)
        self.layer2 = self._stage(16, 32, n, 2, shortcut)
        self.layer3 = self._stage(32, 64, n, 2, shortcut)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():  # He initialisation, as the paper
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out" if isinstance(module, nn.Conv2d) else "fan_in",
                                        nonlinearity="relu")

    @staticmethod
    def _stage(in_channels, out_channels, blocks, stride, shortcut):
        layers = [BasicBlock(in_channels, out_channels, stride, shortcut)]
        layers += [BasicBlock(out_channels, out_channels, 1, shortcut) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


def resnet20(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    """ResNet-20 (He et al. 2015, CIFAR variant, n=3): 0.27M parameters."""
    return ResNet(3, num_classes, in_channels, shortcut)


def resnet32(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    """ResNet-32 (He et al. 2015, CIFAR variant, n=5): 0.46M parameters."""
    return ResNet(5, num_classes, in_channels, shortcut)


def resnet56(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> ResNet:
    """ResNet-56 (He et al. 2015, CIFAR variant, n=9): 0.85M parameters."""
    return ResNet(9, num_classes, in_channels, shortcut)
