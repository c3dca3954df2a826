"""A small CNN that trains in seconds on a CPU: the default of ``tinycnn train``.

Three blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling (8, 16 and 32
maps), then one linear layer on the flattened maps. Batch norm (Ioffe & Szegedy 2015)
lets it train with a large learning rate; keeping the 4x4 map positions (flatten, not
global pooling) lets the last layer see where each part of a figure is.

    (N, C, 32, 32) -> block 8 -> (N, 8, 16, 16) -> block 16 -> (N, 16, 8, 8)
    -> block 32 -> (N, 32, 4, 4) -> flatten (N, 512) -> linear -> (N, num_classes)
"""

from .. import nn
from .base import ZooModel


def _block(in_channels: int, out_channels: int) -> list:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(), nn.MaxPool2d(2)]


class SmallCNN(ZooModel):
    """(N, in_channels, input_size, input_size) -> (N, num_classes); input_size 8 or more (each pooling
    halves the maps, rounding down, as MaxPool2d does)."""

    def __init__(self, num_classes: int = 6, in_channels: int = 3, input_size: int = 32, width: int = 8):
        super().__init__()
        if input_size < 8:
            raise ValueError(f"small_cnn: input_size must be at least 8 (three 2x2 poolings), got {input_size}")
        self.features = nn.Sequential(*_block(in_channels, width), *_block(width, 2 * width),
                                      *_block(2 * width, 4 * width))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * (input_size // 2 // 2 // 2) ** 2, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def small_cnn(num_classes: int = 6, in_channels: int = 3, input_size: int = 32) -> SmallCNN:
    """Three conv-BN-ReLU-pool blocks (8, 16, 32 maps) and a linear layer."""
    return SmallCNN(num_classes, in_channels, input_size)
