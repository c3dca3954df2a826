"""Pieces several ImageNet twins share: conv + norm + activation, channel rounding, small-input edits.

torchvision builds MobileNetV2's and EfficientNet's layers from one block, a
convolution followed by batch norm and an activation, held in a Sequential so
that their weights are named ``<block>.0.weight`` (the conv) and
``<block>.1.weight`` (the norm). :class:`Conv2dNormActivation` is that block
under its torchvision name, so the state_dict keys line up.
"""

from __future__ import annotations

from .. import nn

__all__ = ["Conv2dNormActivation", "make_divisible", "check_small_input"]


class Conv2dNormActivation(nn.Sequential):
    """Conv2d (no bias), BatchNorm2d, then an activation (None: no activation).

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``;
    the padding, ``(kernel_size - 1) // 2``, keeps the size at stride 1 ("same" padding
    for odd kernels). Children: ``0`` the conv, ``1`` the norm, ``2`` the activation.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation_layer=nn.ReLU):
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                      groups=groups, bias=False),   # the norm that follows has its own shift: a bias is redundant
            nn.BatchNorm2d(out_channels),
        ]
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), but never
    more than 10% below ``value``: how MobileNetV2 and EfficientNet round channel counts
    scaled by a width multiplier (hardware likes multiples of 8)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:   # rounding down must not remove more than 10% of the channels
        rounded += divisor
    return rounded


def check_small_input(name: str, small_input) -> bool:
    if not isinstance(small_input, bool):
        raise TypeError(f"{name}: small_input must be True or False, got {small_input!r}")
    return small_input
