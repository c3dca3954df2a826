"""The fast floor's ReLU: a large batch split over the cores; on a GPU a fused backward.

Computes exactly what the reference computes (functional/math.py, ``ReLU``): the same
``max(x, 0)`` and ``grad * (out > 0)`` per element, only in parts.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function
from .kernels import relu_backward
from .workers import batch_parts, map_parts

__all__ = ["ReLU"]


class ReLU(Function):
    """x: any shape -> same shape."""

    def forward(self, x):
        xp = get_array_module(x)
        self.out = xp.empty_like(x)
        # A large batch in parts, one per core (workers.py): every element is on its own.
        map_parts(lambda part: xp.maximum(x[part], 0, out=self.out[part]), batch_parts(x))
        return self.out

    def backward(self, grad):
        return relu_backward(grad, self.out)   # one fused pass on a GPU (kernels/relu.py), in parts on the CPU
