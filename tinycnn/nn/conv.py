"""Conv2d: a learnable 2-D convolution layer."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..windows import pair
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D convolution over an image batch (cross-correlation, as in PyTorch).

    Shapes:
        input ``(N, C_in, H, W)`` -> output ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H + 2*padding - dilation*(kernel_h - 1) - 1) // stride + 1``
        (the same for W).

    Parameters:
        weight: ``(C_out, C_in // groups, kernel_h, kernel_w)``
        bias: ``(C_out,)``, or None with ``bias=False``.

    Initialisation as PyTorch: ``kaiming_uniform_(weight, a=sqrt(5))``, i.e.
    uniform on ``±1/sqrt(fan_in)``, and the bias uniform on ``±1/sqrt(fan_in)``
    with ``fan_in = C_in // groups * kernel_h * kernel_w``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                f"divisible by groups ({groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        self.groups = groups
        weight_shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty((out_channels,), dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """PyTorch's default init (see the class docstring)."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
