"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (no parameters)."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class _WindowPool2d(Module):
    """What max and average pooling share: a window size, a stride (the window size unless
    given) and a padding."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_WindowPool2d):
    """Maximum over each ``kernel_size`` window.

    Shapes: ``(N, C, H, W) -> (N, C, H_out, W_out)`` with
    ``H_out = (H + 2*padding - kernel_h) // stride + 1``. ``stride`` defaults
    to ``kernel_size`` (non-overlapping windows).
    """

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_WindowPool2d):
    """Mean over each ``kernel_size`` window (zero padding counts in the mean, as PyTorch's default).

    Shapes: ``(N, C, H, W) -> (N, C, H_out, W_out)``, sizes as :class:`MaxPool2d`.
    """

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size.

    Shapes: ``(N, C, H, W) -> (N, C, *output_size)``. ``AdaptiveAvgPool2d(1)``
    is global average pooling (ResNet's head).
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
