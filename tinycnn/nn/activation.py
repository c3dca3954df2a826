"""Activation layers: ReLU and LeakyReLU (no parameters)."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU"]


class ReLU(Module):
    """``max(x, 0)`` elementwise. Shapes: any -> same.

    ``inplace`` is accepted so PyTorch code runs unchanged; tinycnn always
    computes a new array (simpler autograd, same result).
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x`` elementwise. Shapes: any -> same."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"
