"""Small VGG-style nets: stacks of 3x3 convolutions with batch norm, halved by max pooling.

Source: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556): depth from small 3x3 kernels, channels doubled
whenever the feature map is halved. Batch norm after each convolution follows Ioffe &
Szegedy 2015. These are scaled down for 28x28 and 32x32 images and a CPU.
"""

from .. import nn
from .base import ZooModel


def _conv_bn_relu(in_channels, out_channels):
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


class VGG(ZooModel):
    """Conv blocks (each a list of channel widths, ending in 2x2 max pooling), global
    average pooling and a linear classifier. (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, blocks, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        layers, channels = [], in_channels
        for widths in blocks:
            for width in widths:
                layers += _conv_bn_relu(channels, width)
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg_small(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """A 7-layer VGG-style net: (32, 32) pool (64, 64) pool (128, 128) pool, then linear."""
    return VGG([(32, 32), (64, 64), (128, 128)], num_classes, in_channels, dropout=0.25)

