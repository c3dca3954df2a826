"""Activation layers (no parameters): ReLU, LeakyReLU, ReLU6, Hardtanh, Sigmoid, Tanh, SiLU,
Hardswish, Hardsigmoid, Softmax, LogSoftmax.

``inplace`` is accepted wherever PyTorch has it (torchvision builds its models with
``inplace=True``), so PyTorch code runs unchanged; tinycnn always computes a new array
(simpler autograd, same result).
"""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "ReLU6", "Hardtanh", "Sigmoid", "Tanh", "SiLU", "Hardswish", "Hardsigmoid",
           "Softmax", "LogSoftmax"]


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


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

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


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


class Hardtanh(Module):
    """Clip into ``[min_val, max_val]`` elementwise. Shapes: any -> same."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val must be <= max_val, got min_val={min_val}, max_val={max_val}")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)`` elementwise (MobileNetV2): Hardtanh into [0, 6]. Shapes: any -> same."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, x):
        return F.relu6(x)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class SiLU(Module):
    """``x * sigmoid(x)`` elementwise, also called swish (EfficientNet). Shapes: any -> same."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.silu(x)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Hardswish(Module):
    """``x * relu6(x + 3) / 6`` elementwise (MobileNetV3). Shapes: any -> same."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.hardswish(x)


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6`` elementwise, in [0, 1] (MobileNetV3's gates). Shapes: any -> same."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.hardsigmoid(x)


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
