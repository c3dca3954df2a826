"""SqueezeExcitation: reweight a feature map's channels by gates computed from the map itself.

Hu et al., "Squeeze-and-Excitation Networks" (2018); MobileNetV3 and EfficientNet put one in
every block. Three steps:

    squeeze:  s = avgpool(x)                                 (N, C, H, W) -> (N, C, 1, 1)
    excite:   g = scale_activation(fc2(activation(fc1(s))))  (N, C, 1, 1), each gate in (0, 1)
    scale:    out = x * g                                    broadcast over H, W -> (N, C, H, W)

fc1 narrows C to ``squeeze_channels`` and fc2 widens it back: a bottleneck that lets every
channel's gate depend on all channels' averages. fc1 and fc2 are 1x1 convolutions with bias
(on a 1x1 map, a linear layer), named and shaped as torchvision's, so the state_dict keys
are ``fc1.weight (S, C, 1, 1)``, ``fc1.bias (S,)``, ``fc2.weight (C, S, 1, 1)``, ``fc2.bias (C,)``.
"""

from __future__ import annotations

from .activation import ReLU, Sigmoid
from .conv import Conv2d
from .module import Module
from .pooling import AdaptiveAvgPool2d

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(Module):
    """Channel gating, as ``torchvision.ops.SqueezeExcitation``. Shapes: (N, C, H, W) -> same.

    Args:
        input_channels: C, the channels of the input (and of the output).
        squeeze_channels: the bottleneck's width (often C/4 or the block's input channels/4).
        activation: the layer class between fc1 and fc2 (ReLU; SiLU in EfficientNet).
        scale_activation: the layer class that makes the gates (Sigmoid; Hardsigmoid in MobileNetV3).
    """

    def __init__(self, input_channels: int, squeeze_channels: int, activation=ReLU, scale_activation=Sigmoid):
        super().__init__()
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, x):
        """The gates: (N, C, H, W) -> (N, C, 1, 1)."""
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))

    def forward(self, x):
        return x * self._scale(x)
