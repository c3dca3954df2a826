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
    ``H_out = (H + 2*padding - dilation*(kernel_h - 1) - 1) // stride + 1``, the division
    rounded up with ``ceil_mode=True`` (GoogLeNet, SqueezeNet: 112 -> 56 with a 3x3 window
    at stride 2, where the floor gives 55). ``stride`` defaults to ``kernel_size``
    (non-overlapping windows); ``dilation`` spaces a window's pixels.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation
        self.ceil_mode = ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_WindowPool2d):
    """Mean over each ``kernel_size`` window (zero padding counts in the mean, as PyTorch's default).

    Shapes: ``(N, C, H, W) -> (N, C, H_out, W_out)``, sizes as :class:`MaxPool2d`.
    """

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size.

    Shapes: ``(N, C, H, W) -> (N, C, *output_size)``. ``AdaptiveAvgPool2d(1)``
    is global average pooling (ResNet's head); ``AdaptiveAvgPool2d((6, 6))`` is AlexNet's,
    whose windows overlap when the size does not divide (13 -> 6: windows of 3 rows).
    Output window i covers input rows ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH) - 1``.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
