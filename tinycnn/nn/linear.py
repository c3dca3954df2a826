"""Linear: a fully connected layer, ``y = x @ weight.T + bias``."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Fully connected layer.

    Shapes:
        input ``(N, *, in_features)`` -> output ``(N, *, out_features)``.

    Parameters:
        weight: ``(out_features, in_features)`` (PyTorch's layout: one row per output)
        bias: ``(out_features,)``, or None with ``bias=False``.

    Initialisation as PyTorch: weight and bias uniform on ``±1/sqrt(in_features)``
    (``kaiming_uniform_(weight, a=sqrt(5))`` works out to that bound).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty((out_features,), dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
