"""DenseNet-121: every layer reads the concatenation of all the maps before it in its block.

Paper: G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017 (arXiv:1608.06993).
Reference implementation: torchvision 0.29 ``torchvision.models.densenet121``; this is its
twin (same module tree and state_dict keys, same outputs with the same weights).

Where ResNet adds a block's input to its output, a dense block concatenates: layer i of a
block gets ``in_channels + i * growth_rate`` channels (all earlier maps) and adds
``growth_rate`` (32) new ones. Each layer is a bottleneck, BN-ReLU-conv 1x1 to
``bn_size * growth_rate`` (128) channels, then BN-ReLU-conv 3x3 to ``growth_rate``. Between
blocks a transition (BN-ReLU-conv 1x1 halving the channels, 2x2 average pooling) shrinks the
maps. Features are reused instead of relearned, so the net is narrow: 8.0M parameters.

    (N, 3, 224, 224) -> conv 7x7/2 64 -> pool 3/2 (N, 64, 56, 56)
    -> dense block 6 layers (256 ch) -> transition (128 ch, 28x28) -> block 12 (512) -> transition (256, 14x14)
    -> block 24 (1024) -> transition (512, 7x7) -> block 16 (1024) -> BN -> ReLU -> global pool -> linear

Parameters: 7,978,856 at 1000 classes, 6,964,106 at 10 classes.
Forward multiply-adds (conv + linear): 2,834,161,664 at 224x224,
896,215,040 at 32x32 with ``small_input=True``.

``small_input=True`` (32x32 images): ``features.conv0`` (7x7) runs at stride 1 and
``features.pool0`` becomes an Identity, so the four blocks see 32, 16, 8 and 4 pixels.
Every weight keeps its shape.

Loading torchvision's published ImageNet weights: that file predates torchvision's current
names and spells ``norm1`` as ``norm.1`` (likewise ``relu.1``, ``conv.1``, ``norm.2``, ...);
torchvision renames them when it loads the file, and :func:`rename_legacy_keys` does the
same here.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from .. import functional as F
from .. import nn
from .base import ZooModel
from .blocks import check_small_input

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet", "densenet121", "rename_legacy_keys"]


class DenseLayer(nn.Module):
    """BN-ReLU-conv 1x1 (to ``bn_size * growth_rate``), BN-ReLU-conv 3x3 (to ``growth_rate``).

    Takes the list of the block's maps so far, ``[(N, c_0, H, W), (N, c_1, H, W), ...]``, and
    returns only the new ones, ``(N, growth_rate, H, W)``.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float = 0.0):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, earlier_maps):
        x = F.cat(earlier_maps, 1) if isinstance(earlier_maps, (list, tuple)) else earlier_maps
        bottleneck = self.conv1(self.relu1(self.norm1(x)))
        new_maps = self.conv2(self.relu2(self.norm2(bottleneck)))
        if self.drop_rate > 0:
            new_maps = F.dropout(new_maps, self.drop_rate, self.training)
        return new_maps


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers (``denselayer1``, ``denselayer2``, ...), each fed all earlier maps.

    ``(N, C, H, W) -> (N, C + num_layers * growth_rate, H, W)``.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float = 0.0):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size,
                                                            drop_rate))

    def forward(self, x):
        maps = [x]
        for layer in self.values():
            maps.append(layer(maps))
        return F.cat(maps, 1)


class Transition(nn.Sequential):
    """BN, ReLU, conv 1x1 to ``out_channels``, 2x2 average pooling: ``(N, C, H, W) -> (N, out, H/2, W/2)``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_channels)),
            ("relu", nn.ReLU()),
            ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


class DenseNet(ZooModel):
    """DenseNet-BC: (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, growth_rate: int = 32, block_config=(6, 12, 24, 16), num_init_features: int = 64,
                 bn_size: int = 4, drop_rate: float = 0.0, num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False):
        super().__init__()
        self.small_input = check_small_input("densenet", small_input)
        self.features = nn.Sequential(OrderedDict([
            # small_input: the stem at stride 1 and without its max pooling (see the module docstring)
            ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=1 if small_input else 2,
                                padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU()),
            ("pool0", nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate))
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)
        for module in self.modules():   # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = F.relu(self.features(x))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(F.flatten(x, 1))


def densenet121(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, **kwargs) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017), torchvision's twin: growth 32, blocks of 6, 12, 24, 16 layers."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels,
                    small_input=small_input, **kwargs)


_LEGACY_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def rename_legacy_keys(state_dict) -> OrderedDict:
    """torchvision's published DenseNet weights with today's key names: ``...denselayer1.norm.1.weight``
    becomes ``...denselayer1.norm1.weight``; other keys pass unchanged (in their order)."""
    renamed = OrderedDict()
    for key, value in state_dict.items():
        match = _LEGACY_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed
