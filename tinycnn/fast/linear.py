"""The fast floor's linear layer: the reference's two products, with BLAS kept off the workers' cores.

Computes what the reference computes (functional/linear.py): ``x @ weight.T + bias`` and
its three gradients. Only the BLAS thread count differs: while tinycnn's own workers use the
cores (workers.py), a product large enough for BLAS to use several threads runs on one.
"""

from __future__ import annotations

from ..tensor import Function
from .workers import single_threaded_blas

__all__ = ["Linear"]


class Linear(Function):
    """x: (..., in), weight: (out, in), bias: (out,) or None -> (..., out)."""

    def forward(self, x, weight, bias):
        self.x_shape = x.shape
        x2 = x.reshape(-1, x.shape[-1])                      # (B, in)
        with single_threaded_blas(x2, x2.shape[0] * weight.size):
            out = x2 @ weight.T                              # (B, out)
        if bias is not None:
            out += bias
        self.x2, self.weight = x2, weight
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, grad):
        grad2 = grad.reshape(-1, grad.shape[-1])             # (B, out)
        with single_threaded_blas(grad2, grad2.shape[0] * self.weight.size):
            grad_x = (grad2 @ self.weight).reshape(self.x_shape) if self.needs_input_grad[0] else None
            grad_weight = grad2.T @ self.x2 if self.needs_input_grad[1] else None
        grad_bias = grad2.sum(axis=0) if self.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias
