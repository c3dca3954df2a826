"""ResNet-20/32/56 for CIFAR-10, and torchvision's ResNet-18 for ImageNet (at the end).

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
from ..functional import math as M
from .base import ZooModel
from .blocks import check_small_input


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


# --------------------------------------------------------------------------- torchvision's ImageNet ResNets
class ImageNetBasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convs with batch norm, plus the shortcut.

    ``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``. Where the shape changes,
    the shortcut is ``downsample`` (a 1x1 conv with stride and a batch norm: the paper's
    option B); elsewhere it is the identity. Child names as torchvision's, so its weights load.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ImageNetResNet(ZooModel):
    """torchvision's ``ResNet`` with basic blocks: (N, in_channels, H, W) -> (N, num_classes).

    A 7x7 stride-2 conv and a 3x3 stride-2 max pooling (the stem: 224 -> 56), four stages of
    basic blocks with 64, 128, 256 and 512 maps (the last three halve the size in their first
    block: 56 -> 7), global average pooling and a linear layer.
    """

    def __init__(self, blocks_per_stage, num_classes: int = 1000, in_channels: int = 3, small_input: bool = False):
        super().__init__()
        self.small_input = check_small_input("resnet", small_input)
        # small_input: the stem at stride 1 and without its max pooling (see resnet18's docstring)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=1 if small_input else 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        for index, (width, blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage)):
            stride = 1 if index == 0 else 2
            stage = [ImageNetBasicBlock(channels, width, stride)]
            stage += [ImageNetBasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():   # torchvision's initialisation (the Linear keeps PyTorch's default)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(M.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False) -> ImageNetResNet:
    """ResNet-18, torchvision's twin (two basic blocks per stage).

    Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
    CVPR 2016 (arXiv:1512.03385), table 1. Reference implementation: torchvision 0.29
    ``torchvision.models.resnet18`` (same module tree and state_dict keys, same outputs).

    Parameters: 11,689,512 at 1000 classes, 11,181,642 at 10 classes.
    Forward multiply-adds (conv + linear): 1,814,073,344 at 224x224, 563,287,040
    at 32x32 with ``small_input=True``.

    ``small_input=True`` (32x32 images): ``conv1`` (7x7) runs at stride 1 and ``maxpool``
    becomes an Identity, so the stages see 32, 16, 8 and 4 pixels (the CIFAR ports' layout;
    they also shrink the 7x7 kernel to 3x3, which this keeps at 7x7 so every weight keeps its
    shape).
    """
    return ImageNetResNet((2, 2, 2, 2), num_classes, in_channels, small_input=small_input)
