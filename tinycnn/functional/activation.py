"""Activation functions beyond those in math.py (relu, sigmoid, tanh live there).

The "hard" ones are piecewise linear stand-ins for smooth curves, cheap on phones
(MobileNetV3): ``hardtanh`` clips (``relu6`` is hardtanh into [0, 6], MobileNetV2's
activation), ``hardsigmoid`` is a ramp from 0 at -3 to 1 at +3, ``hardswish`` is x times
that ramp. ``silu`` (also called swish, EfficientNet's activation) is x * sigmoid(x).

At a kink the derivative is PyTorch's choice: hardtanh and hardsigmoid pass no gradient
at their corners; hardswish takes the middle piece's slope at both (-0.5 at -3, 1.5 at 3).
"""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .math import relu  # noqa: F401  (re-exported: the activations are found in one place)

__all__ = ["relu", "leaky_relu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "silu"]


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


class Hardtanh(Function):
    """min(max(x, min_val), max_val); the gradient passes only strictly inside (min_val, max_val)."""

    def forward(self, x, min_val, max_val):
        self.inside = (x > min_val) & (x < max_val)
        return get_array_module(x).clip(x, x.dtype.type(min_val), x.dtype.type(max_val))

    def backward(self, grad):
        return grad * self.inside


class Hardsigmoid(Function):
    """0 for x <= -3, 1 for x >= 3, x/6 + 1/2 between; the gradient is 1/6 strictly between."""

    def forward(self, x):
        xp = get_array_module(x)
        self.inside = (x > -3) & (x < 3)
        return xp.clip(x + x.dtype.type(3), 0, 6) / x.dtype.type(6)

    def backward(self, grad):
        return grad * self.inside / grad.dtype.type(6)


class Hardswish(Function):
    """x * hardsigmoid(x): 0 for x <= -3, x for x >= 3, x*(x + 3)/6 between.

    Gradient: 0 for x < -3, x/3 + 1/2 for -3 <= x <= 3, 1 for x > 3.
    """

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return x * xp.clip(x + x.dtype.type(3), 0, 6) / x.dtype.type(6)   # x * relu6(x + 3) / 6

    def backward(self, grad):
        xp = get_array_module(grad)
        x = self.x
        slope = xp.where(x < -3, 0, xp.where(x > 3, 1, x / x.dtype.type(3) + x.dtype.type(0.5)))
        return grad * slope.astype(grad.dtype, copy=False)


class SiLU(Function):
    """x * sigmoid(x); the gradient is s + x*s*(1 - s) = s * (1 + x*(1 - s)), s = sigmoid(x)."""

    def forward(self, x):
        xp = get_array_module(x)
        # sigmoid as exp(-log(1 + e^-x)): no overflow for large |x| (as math.py's Sigmoid)
        self.x, self.s = x, xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)
        return x * self.s

    def backward(self, grad):
        s = self.s
        return grad * (s * (1 + self.x * (1 - s)))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """ReLU that lets a small slope through for negative inputs. Shape unchanged."""
    return LeakyReLU.apply(x, negative_slope=float(negative_slope))


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """Clip into [min_val, max_val]; the gradient is 1 strictly inside, else 0. Shape unchanged."""
    min_val, max_val = float(min_val), float(max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val must be <= max_val, got min_val={min_val}, max_val={max_val}")
    return Hardtanh.apply(x, min_val=min_val, max_val=max_val)


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6): ReLU capped at 6 (MobileNetV2), i.e. ``hardtanh(x, 0, 6)``. Shape unchanged."""
    return Hardtanh.apply(x, min_val=0.0, max_val=6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6: a straight-line sigmoid, 0 below -3 and 1 above 3. Shape unchanged."""
    return Hardsigmoid.apply(x)


def hardswish(x: Tensor) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3). Shape unchanged."""
    return Hardswish.apply(x)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x), also called swish (EfficientNet). Shape unchanged."""
    return SiLU.apply(x)
