"""Activation layers (no parameters): ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


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


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise, in (0, 1). Shapes: any -> same."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """``tanh(x)`` elementwise, in (-1, 1). Shapes: any -> same."""

    def forward(self, x):
        return F.tanh(x)


def _check_dim(name: str, dim):
    # PyTorch guesses a dim when none is given (and warns); guessing wrong is silent here, so ask.
    if dim is None:
        raise TypeError(f"{name}: give the dimension to normalise over, e.g. {name}(dim=1) for (N, C) scores")
    return dim


class Softmax(Module):
    """Probabilities along ``dim``: non-negative, summing to 1. Shapes: any -> same."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = _check_dim("Softmax", dim)

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably. Shapes: any -> same.

    Ends a classifier trained with :class:`NLLLoss` (together: cross-entropy).
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = _check_dim("LogSoftmax", dim)

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
