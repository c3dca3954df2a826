"""The fast floor's batch normalization: few passes over memory, a large batch split over the cores.

Computes what the reference computes (functional/norm.py, ``BatchNorm``; equal to about
1e-12 in float64: the per-channel sums are added in another order). What it adds, for
speed (batch norm is memory-bound):

* the per-channel sums are ``einsum`` contractions (one pass, no temporary array; NumPy's
  ``sum`` over the axes (0, 2, 3) of an NCHW array is 2-3x slower);
* the output ``x_hat * weight + bias`` is computed as ``centered * (weight * inv_std) + bias``,
  and the backward as ``grad_x = g * k1 + centered * k2 + k3`` with per-channel k1, k2, k3:
  each one fused pass on a GPU (kernels/batchnorm.py);
* a large batch is handled in parts, one per core (workers.py): each part's sums are added
  up in part order (so the result does not depend on timing), and each part writes its
  slice of ``centered``.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Function
from .kernels import batch_norm_apply, batch_norm_backward
from .workers import batch_parts, map_parts, sum_in_order

__all__ = ["BatchNorm"]


def _channel_sum(xp, spec, a):
    """Sum over every axis but the channel axis (1): (N, C, ...) -> (C,)."""
    if xp is np:
        return xp.einsum(spec, a)
    return a.sum(axis=(0,) + tuple(range(2, a.ndim)))


def _channel_dot(xp, spec, a, b):
    """Per-channel dot product of two (N, C, ...) arrays -> (C,).

    NumPy: ``einsum``, one pass and no temporary. CuPy: ``einsum`` would become two transposed
    copies and C tiny GEMMs, so a product and one reduction kernel instead.
    """
    if xp is np:
        return xp.einsum(spec, a, b)
    return (a * b).sum(axis=(0,) + tuple(range(2, a.ndim)))


class BatchNorm(Function):
    """x: (N, C) or (N, C, H, W); weight, bias, running stats: (C,) -> same shape as x.

    Called as the reference's ``BatchNorm`` is.
    """

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        channels = x.shape[1]
        shape = (1, channels) + (1,) * (x.ndim - 2)     # a (C,) vector broadcast against x
        count = x.size // channels                     # M, values per channel
        axes = "nchw"[:2] + "hw"[:x.ndim - 2]            # einsum names of x's axes: "nchw" or "nc"
        self.sum_spec = f"{axes}->c"                      # sum over every axis but the channel axis
        self.dot_spec = f"{axes},{axes}->c"               # per-channel dot product of two arrays

        parts = batch_parts(x)
        centered = xp.empty_like(x)
        if training:
            mean = sum_in_order(map_parts(lambda part: _channel_sum(xp, self.sum_spec, x[part]), parts)) / count

            def center(part):
                xp.subtract(x[part], mean.reshape(shape), out=centered[part])
                return _channel_dot(xp, self.dot_spec, centered[part], centered[part])

            var = sum_in_order(map_parts(center, parts)) / count     # biased, as used for normalizing
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (count / (count - 1))
        else:
            mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
            map_parts(lambda part: xp.subtract(x[part], mean.reshape(shape), out=centered[part]), parts)

        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        scale = inv_std if weight is None else inv_std * weight.astype(x.dtype)  # (C,): weight / std
        if bias is None:
            out = centered * scale.reshape(shape)      # = weight * x_hat, in one pass
        else:
            out = batch_norm_apply(centered, scale.reshape(shape), bias.reshape(shape).astype(x.dtype))

        self.training, self.shape, self.count = training, shape, count
        self.centered, self.inv_std, self.scale = centered, inv_std, scale   # x_hat = centered * inv_std
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        shape, count, inv_std = self.shape, self.count, self.inv_std
        grad_x = grad_weight = grad_bias = None
        needs_weight, needs_bias = self.needs_input_grad[1], self.needs_input_grad[2]

        need_grad_sum, need_dot = self.training or needs_bias, self.training or needs_weight

        def sums(part):
            return (_channel_sum(xp, self.sum_spec, grad[part]) if need_grad_sum else None,
                    _channel_dot(xp, self.dot_spec, grad[part], self.centered[part]) if need_dot else None)

        grad_sums, dot_sums = zip(*map_parts(sums, batch_parts(grad)))  # one part per core (see forward)
        grad_sum = sum_in_order(grad_sums)                              # None where not needed
        # sum(g * x_hat) per channel = inv_std * sum(g * centered)
        grad_x_hat_sum = inv_std * sum_in_order(dot_sums) if need_dot else None
        if needs_weight:
            grad_weight = grad_x_hat_sum
        if needs_bias:
            grad_bias = grad_sum

        if self.needs_input_grad[0]:
            if self.training:
                # scale * (g - mean(g) - x_hat * mean(g * x_hat)), with x_hat = centered * inv_std
                k2 = -self.scale * inv_std * grad_x_hat_sum / count            # (C,) per centered
                k3 = -self.scale * grad_sum / count                           # (C,) constant
                grad_x = batch_norm_backward(grad, self.centered, self.scale.reshape(shape),
                                             k2.reshape(shape), k3.reshape(shape))
            else:
                grad_x = grad * self.scale.reshape(shape)
        return grad_x, grad_weight, grad_bias
