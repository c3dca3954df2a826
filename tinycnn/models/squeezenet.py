"""SqueezeNet 1.1: AlexNet's accuracy with 50 times fewer parameters, from fire modules.

Paper: F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer,
"SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
arXiv:1602.07360 (2016); version 1.1 is from the authors' repository (64 3x3 stem filters,
pooling moved earlier: 2.4 times less computation than 1.0).
Reference implementation: torchvision 0.29 ``torchvision.models.squeezenet1_1``; this is its
twin (same module tree and state_dict keys, same outputs with the same weights).

A fire module *squeezes* the channels with a 1x1 conv (e.g. to 16), then *expands* them with
1x1 and 3x3 convs side by side (64 each), concatenated: most filters are 1x1 (9 times
cheaper than 3x3) and the 3x3s see few input channels. There are no linear layers: a 1x1
conv to ``num_classes`` maps and global average pooling give the scores.

    (N, 3, 224, 224) -> conv 3x3/2 64 -> pool -> fire 128, 128 -> pool -> fire 256, 256 -> pool
    -> fire 384, 384, 512, 512 (N, 512, 13, 13) -> dropout -> conv 1x1 num_classes -> ReLU -> global pool

Parameters: 1,235,496 at 1000 classes, 727,626 at 10 classes.
Forward multiply-adds (conv): 349,151,936 at 224x224, 73,602,816
at 32x32 with ``small_input=True``.

``small_input=True`` (32x32 images): the stem conv ``features.0`` runs at stride 1 and the
first max pooling ``features.2`` is an Identity, so the fire modules see 30, 15 and 7 pixels.
Every weight keeps its shape.
"""

from __future__ import annotations

from .. import functional as F
from .. import nn
from .base import ZooModel
from .blocks import check_small_input

__all__ = ["Fire", "SqueezeNet", "squeezenet1_1"]


class Fire(nn.Module):
    """Squeeze (1x1 to ``squeeze_planes``, ReLU), then expand: 1x1 and 3x3 convs, ReLU, concatenated.

    ``(N, in_planes, H, W) -> (N, expand1x1_planes + expand3x3_planes, H, W)``.
    """

    def __init__(self, in_planes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_planes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return F.cat([self.expand1x1_activation(self.expand1x1(x)),
                      self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(ZooModel):
    """SqueezeNet 1.1: (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, small_input: bool = False):
        super().__init__()
        self.small_input = check_small_input("squeezenet", small_input)
        # small_input: the stem at stride 1 and without the first max pooling (see the module docstring)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=3, stride=1 if small_input else 2), nn.ReLU(),
            nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)   # one map per class
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), final_conv, nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)))
        for module in self.modules():   # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                if module is final_conv:
                    nn.init.normal_(module.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return F.flatten(self.classifier(self.features(x)), 1)


def squeezenet1_1(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.1 (Iandola et al. 2016), torchvision's twin: 1.2M parameters at 1000 classes."""
    return SqueezeNet(num_classes, in_channels, small_input=small_input, **kwargs)
