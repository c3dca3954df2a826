"""The fully connected layer's op: y = x @ weight.T + bias."""

from __future__ import annotations

from .. import fast
from ..tensor import Function, Tensor

__all__ = ["linear"]


class Linear(Function):
    """x: (..., in), weight: (out, in), bias: (out,) or None -> (..., out).

    Leading dimensions of x are flattened into one batch axis so each pass is a
    single matrix product:
        grad_x = grad @ weight,   grad_weight = grad.T @ x,   grad_bias = grad summed over the batch.
    """

    def forward(self, x, weight, bias):
        self.x_shape = x.shape
        x2 = x.reshape(-1, x.shape[-1])                      # (B, in)
        out = x2 @ weight.T                                  # (B, out)
        if bias is not None:
            out += bias
        self.x2, self.weight = x2, weight
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, grad):
        grad2 = grad.reshape(-1, grad.shape[-1])             # (B, out)
        grad_x = (grad2 @ self.weight).reshape(self.x_shape) if self.needs_input_grad[0] else None
        grad_weight = grad2.T @ self.x2 if self.needs_input_grad[1] else None
        grad_bias = grad2.sum(axis=0) if self.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map of the last axis: x (..., in) -> (..., out) with weight (out, in)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: expected a 2-D weight (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {tuple(x.shape)}), "
                         f"weight expects {weight.shape[1]} (weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias should have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if fast.enabled():   # the fast floor: BLAS kept off the cores that tinycnn's workers use (fast/linear.py)
        return fast.Linear.apply(x, weight, bias)
    return Linear.apply(x, weight, bias)
