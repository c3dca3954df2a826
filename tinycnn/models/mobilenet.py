"""MobileNetV2: inverted residual blocks built on depthwise-separable convolutions.

Paper: M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted
Residuals and Linear Bottlenecks", CVPR 2018 (arXiv:1801.04381).
Reference implementation: torchvision 0.29 ``torchvision.models.mobilenet_v2``; this is its
twin (same module tree and state_dict keys, same outputs with the same weights).

A standard 3x3 conv from C to C channels costs ``9 C^2`` multiply-adds per pixel. MobileNet
splits it into a *depthwise* 3x3 conv (``groups = C``: each channel filtered on its own,
``9 C``) and a *pointwise* 1x1 conv that mixes the channels (``C^2``): about 8-9 times
cheaper. An inverted residual block widens the channels t times with a 1x1 conv (ReLU6),
filters them depthwise (ReLU6), and narrows them back with a 1x1 conv with no activation
(the "linear bottleneck"); when the shape allows, the input is added back.

    (N, 3, 224, 224) -> conv 3x3/2 32 -> 17 inverted residual blocks (16, 24, 32, 64, 96, 160,
    320 channels) -> conv 1x1 1280 (N, 1280, 7, 7) -> global average pool -> dropout -> linear

Parameters: 3,504,872 at 1000 classes, 2,236,682 at 10 classes.
Forward multiply-adds (conv + linear): 300,774,272 at 224x224,
87,976,448 at 32x32 with ``small_input=True``.

``width_mult`` (the paper's width multiplier, e.g. 0.5, 0.75, 1.4) scales every layer's
channels, rounded by :func:`~tinycnn.models.blocks.make_divisible` to multiples of 8; the last
conv keeps at least 1280 channels.

``small_input=True`` (32x32 images): the stem conv ``features.0`` and the depthwise conv of
the first 24-channel block (``features.2.conv.1``) run at stride 1, as in the well-known
CIFAR port, so the last blocks see 4x4 maps (224 px: 7x7). Every weight keeps its shape.
"""

from __future__ import annotations

from .. import functional as F
from .. import nn
from .base import ZooModel
from .blocks import Conv2dNormActivation, check_small_input, make_divisible

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenet_v2"]

# (expansion t, output channels c, blocks n, stride s of the first block): the paper's table 2
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    """Expand (1x1, ReLU6), filter (depthwise 3x3, ReLU6), project (1x1, no activation).

    ``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``; the input is added to
    the output when stride is 1 and the channels match. ``conv`` holds the layers in order
    (no expansion layer when ``expand_ratio`` is 1).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(in_channels, hidden, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden, activation_layer=nn.ReLU6),  # depthwise
            nn.Conv2d(hidden, out_channels, 1, bias=False),   # pointwise projection, linear (no activation)
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(ZooModel):
    """MobileNetV2: (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 round_nearest: int = 8, dropout: float = 0.2, small_input: bool = False):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"mobilenet_v2: width_mult must be positive, got {width_mult}")
        self.small_input = check_small_input("mobilenet_v2", small_input)
        channels = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        # small_input: the stem and the first 24-channel block at stride 1 (see the module docstring)
        layers = [Conv2dNormActivation(in_channels, channels, stride=1 if small_input else 2,
                                       activation_layer=nn.ReLU6)]
        for expand, width, blocks, first_stride in INVERTED_RESIDUAL_SETTING:
            if small_input and width == 24:
                first_stride = 1
            out_channels = make_divisible(width * width_mult, round_nearest)
            for i in range(blocks):
                layers.append(InvertedResidual(channels, out_channels, first_stride if i == 0 else 1, expand))
                channels = out_channels
        layers.append(Conv2dNormActivation(channels, self.last_channel, kernel_size=1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for module in self.modules():   # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(F.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False,
                 **kwargs) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018), torchvision's twin; ``width_mult`` scales the channels."""
    return MobileNetV2(num_classes, in_channels, width_mult=width_mult, small_input=small_input, **kwargs)
