"""Activation functions beyond those in math.py (relu, sigmoid, tanh live there)."""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .math import relu  # noqa: F401  (re-exported: the activations are found in one place)

__all__ = ["relu", "leaky_relu"]


class LeakyReLU(Function):
    """x if x > 0 else negative_slope * x; the gradient is 1 or negative_slope (at 0: the slope)."""

    def forward(self, x, negative_slope):
        xp = get_array_module(x)
        self.positive = x > 0
        self.negative_slope = negative_slope
        return xp.where(self.positive, x, x * x.dtype.type(negative_slope))

    def backward(self, grad):
        xp = get_array_module(grad)
        return xp.where(self.positive, grad, grad * grad.dtype.type(self.negative_slope))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """ReLU that lets a small slope through for negative inputs. Shape unchanged."""
    return LeakyReLU.apply(x, negative_slope=float(negative_slope))
