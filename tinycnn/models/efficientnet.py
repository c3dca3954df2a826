"""EfficientNet-B0: MBConv blocks with squeeze-and-excitation, scaled by compound multipliers.

Paper: M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (arXiv:1905.11946).
Reference implementation: torchvision 0.29 ``torchvision.models.efficientnet_b0``; this is its
twin (same module tree and state_dict keys, same outputs with the same weights).

The B0 baseline was found by architecture search; its block is MobileNetV2's inverted
residual (expand 1x1, depthwise kxk, project 1x1) with SiLU activations and a
squeeze-and-excitation gate after the depthwise conv: each channel is scaled by a number in
(0, 1) computed from the whole image's average of all channels. Residual branches are
dropped at random in training (stochastic depth, with a probability rising linearly from 0
to 0.2 over the blocks). The paper's point is *compound scaling*: a bigger model multiplies
the width (channels) by ``w``, the depth (blocks per stage) by ``d`` and the resolution
together (B1: w 1.0, d 1.1; B2: 1.1, 1.2; ... B7: 2.0, 3.1).

    (N, 3, 224, 224) -> conv 3x3/2 32 -> 7 stages of MBConv (16, 24, 40, 80, 112, 192, 320
    channels; 1, 2, 2, 3, 3, 4, 1 blocks) -> conv 1x1 1280 (N, 1280, 7, 7) -> pool -> dropout -> linear

Parameters: 5,288,548 at 1000 classes, 4,020,358 at 10 classes.
Forward multiply-adds (conv + linear): 385,814,752 at 224x224,
116,167,168 at 32x32 with ``small_input=True``.

``width_mult`` and ``depth_mult`` are the compound multipliers (channels rounded to multiples
of 8 by :func:`~tinycnn.models.blocks.make_divisible`, blocks per stage rounded up).

``small_input=True`` (32x32 images): the stem conv ``features.0`` and the depthwise conv of the
first 24-channel block (``features.2.0``) run at stride 1, as MobileNetV2's CIFAR port, so the
last stages see 4x4 maps (224 px: 7x7). Every weight keeps its shape.
"""

from __future__ import annotations

import math

from .. import functional as F
from .. import nn
from .base import ZooModel
from .blocks import Conv2dNormActivation, check_small_input, make_divisible

__all__ = ["MBConv", "EfficientNet", "efficientnet_b0"]

# (expansion, kernel, stride of the first block, input channels, output channels, blocks): the paper's table 1
B0_STAGES = [
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
]


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation.

    ``(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride)``. ``block`` holds:
    expand 1x1 (SiLU; absent when ``expand_ratio`` is 1), depthwise ``kernel`` x ``kernel``
    (SiLU), squeeze-and-excitation (squeezing to ``in_channels // 4``), project 1x1 (no
    activation). With stride 1 and equal channels, the input is added back after
    ``stochastic_depth`` (which drops the whole branch of an image with probability
    ``stochastic_depth_prob`` in training, and is the identity in eval).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: float,
                 stochastic_depth_prob: float):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"MBConv: stride must be 1 or 2, got {stride}")
        self.use_res_connect = stride == 1 and in_channels == out_channels
        expanded = make_divisible(in_channels * expand_ratio)
        layers = []
        if expanded != in_channels:
            layers.append(Conv2dNormActivation(in_channels, expanded, kernel_size=1, activation_layer=nn.SiLU))
        layers += [
            Conv2dNormActivation(expanded, expanded, kernel_size=kernel, stride=stride, groups=expanded,
                                 activation_layer=nn.SiLU),                           # depthwise
            nn.SqueezeExcitation(expanded, max(1, in_channels // 4), activation=nn.SiLU),
            Conv2dNormActivation(expanded, out_channels, kernel_size=1, activation_layer=None),  # linear projection
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, x):
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(ZooModel):
    """EfficientNet (B0 stages scaled by ``width_mult`` and ``depth_mult``): (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, depth_mult: float = 1.0,
                 dropout: float = 0.2, stochastic_depth_prob: float = 0.2, small_input: bool = False):
        super().__init__()
        if not (width_mult > 0 and depth_mult > 0):
            raise ValueError(f"efficientnet: width_mult and depth_mult must be positive, got {width_mult}, {depth_mult}")
        self.small_input = check_small_input("efficientnet", small_input)
        stages = [(expand, kernel, stride, make_divisible(c_in * width_mult), make_divisible(c_out * width_mult),
                   int(math.ceil(blocks * depth_mult)))
                  for expand, kernel, stride, c_in, c_out, blocks in B0_STAGES]
        # small_input: the stem and the first 24-channel block at stride 1 (see the module docstring)
        layers = [Conv2dNormActivation(in_channels, stages[0][3], stride=1 if small_input else 2,
                                       activation_layer=nn.SiLU)]
        total_blocks, block_index = sum(stage[5] for stage in stages), 0
        for stage_index, (expand, kernel, stride, c_in, c_out, blocks) in enumerate(stages):
            if small_input and stage_index == 1:
                stride = 1
            stage = []
            for i in range(blocks):
                drop = stochastic_depth_prob * block_index / total_blocks   # deeper blocks are dropped more often
                stage.append(MBConv(c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand, drop))
                block_index += 1
            layers.append(nn.Sequential(*stage))
        last_in = stages[-1][4]
        layers.append(Conv2dNormActivation(last_in, 4 * last_in, kernel_size=1, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(4 * last_in, num_classes))
        for module in self.modules():   # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(F.flatten(x, 1))


def efficientnet_b0(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, depth_mult: float = 1.0,
                    small_input: bool = False, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le 2019), torchvision's twin; ``width_mult``/``depth_mult`` scale it."""
    return EfficientNet(num_classes, in_channels, width_mult=width_mult, depth_mult=depth_mult,
                        small_input=small_input, **kwargs)
