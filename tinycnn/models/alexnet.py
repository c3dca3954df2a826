"""AlexNet, the network that won ImageNet 2012, as torchvision builds it.

Paper: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012; the one-GPU variant of A. Krizhevsky,
"One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997 (64, 192,
384, 256, 256 maps, no local response normalisation).
Reference implementation: torchvision 0.29 ``torchvision.models.alexnet``; this is its twin
(same module tree and state_dict keys, same outputs with the same weights).

    (N, 3, 224, 224) -> conv 11x11/4 64 -> pool 3/2 -> conv 5x5 192 -> pool 3/2
    -> conv 3x3 384 -> conv 3x3 256 -> conv 3x3 256 -> pool 3/2 -> (N, 256, 6, 6)
    -> adaptive average pool to 6x6 -> flatten 9216 -> dropout, linear 4096 -> dropout, linear 4096
    -> linear num_classes

Five convolutions learn the features, three large linear layers (58.6M of the 61.1M
parameters) classify them; ReLU and dropout were the paper's new ideas.

Parameters: 61,100,840 at 1000 classes, 57,044,810 at 10 classes.
Forward multiply-adds (conv + linear, see ``flops.py``): 714,188,480 at 224x224,
874,004,480 at 32x32 with ``small_input=True``.

``small_input=True`` (32x32 images): ``features.0`` runs at stride 1 with padding 5 (the
11x11 kernel then keeps the 32x32 size) and the first max pooling ``features.2`` becomes an
Identity, so the image reaches the last pooling at 7x7 instead of vanishing. Every weight
keeps its shape.
"""

from __future__ import annotations

from .. import nn
from .. import functional as F
from .base import ZooModel
from .blocks import check_small_input

__all__ = ["AlexNet", "alexnet"]


class AlexNet(ZooModel):
    """AlexNet: (N, in_channels, H, W) -> (N, num_classes); H, W >= 63 (>= 7 with ``small_input``)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, small_input: bool = False):
        super().__init__()
        self.small_input = check_small_input("alexnet", small_input)
        # small_input: stride 1 with "same" padding ((11 - 1) / 2 = 5) keeps 32x32, and no first pooling
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=1 if small_input else 4, padding=5 if small_input else 2),
            nn.ReLU(),
            nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))   # any input size -> the 6x6 the classifier expects
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(F.flatten(x, 1))


def alexnet(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, **kwargs) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012), torchvision's twin: 61.1M parameters at 1000 classes."""
    return AlexNet(num_classes, in_channels, small_input=small_input, **kwargs)
