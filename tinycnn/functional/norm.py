"""Batch normalization: normalize each channel to mean 0, variance 1, then scale and shift.

Training (statistics of this batch, over every axis but the channel axis)::

    mean, var = x.mean(axes), x.var(axes)         # var is the biased (1/M) variance
    x_hat     = (x - mean) / sqrt(var + eps)
    out       = weight * x_hat + bias

and the running estimates move towards the batch's (in place)::

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   # unbiased

Evaluation uses running_mean and running_var instead of the batch's statistics.

Backward in one step (M = number of values per channel). Because mean and var
depend on every x, the gradient has three terms; summed, they simplify to::

    grad_x = weight / sqrt(var + eps) * (g - mean(g) - x_hat * mean(g * x_hat))

where the means are per channel. In evaluation the statistics are constants,
and grad_x = weight / sqrt(running_var + eps) * g.
"""

from __future__ import annotations

import math

from ..backend import get_array_module
from ..kernels import batch_norm_apply, batch_norm_backward
from ..parallel import batch_parts, map_parts, sum_in_order
from ..tensor import Function, Tensor

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """x: (N, C) or (N, C, H, W); weight, bias, running stats: (C,) -> same shape as x.

    Written for few passes over x (it is memory-bound): the per-channel sums are
    ``einsum`` contractions (one pass, no temporary array; NumPy's ``sum`` over the
    axes (0, 2, 3) of an NCHW array is 2-3x slower), the output is ``x_hat * weight
    + bias`` computed as ``centered * (weight * inv_std) + bias``, and the backward
    uses the per-channel form ``grad_x = g * k1 + centered * k2 + k3``.
    """

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        channels = x.shape[1]
        shape = (1, channels) + (1,) * (x.ndim - 2)     # a (C,) vector broadcast against x
        count = x.size // channels                     # M, values per channel
        axes = "nchw"[:2] + "hw"[:x.ndim - 2]            # einsum names of x's axes: "nchw" or "nc"
        self.sum_spec = f"{axes}->c"                      # sum over every axis but the channel axis
        self.dot_spec = f"{axes},{axes}->c"               # per-channel dot product of two arrays

        # A large batch is handled in parts, one per core (parallel.py): each part's sums are
        # added up in part order, and each part writes its slice of `centered`.
        parts = batch_parts(x)
        centered = xp.empty_like(x)
        if training:
            mean = sum_in_order(map_parts(lambda part: xp.einsum(self.sum_spec, x[part]), parts)) / count

            def center(part):
                xp.subtract(x[part], mean.reshape(shape), out=centered[part])
                return xp.einsum(self.dot_spec, centered[part], centered[part])

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
        else:                                          # ... + bias, one pass on a GPU (kernels/batchnorm.py)
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
            return (xp.einsum(self.sum_spec, grad[part]) if need_grad_sum else None,
                    xp.einsum(self.dot_spec, grad[part], self.centered[part]) if need_dot else None)

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
                # grad * scale + centered * k2 + k3, one pass on a GPU (kernels/batchnorm.py)
                grad_x = batch_norm_backward(grad, self.centered, self.scale.reshape(shape),
                                             k2.reshape(shape), k3.reshape(shape))
            else:
                grad_x = grad * self.scale.reshape(shape)
        return grad_x, grad_weight, grad_bias


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def batch_norm(x: Tensor, running_mean, running_var, weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over the channel axis 1 (PyTorch's argument order).

    Args:
        x: (N, C) or (N, C, H, W).
        running_mean, running_var: (C,) Tensors or arrays, updated in place when
            ``training`` (either may be None there); used instead of batch
            statistics when not training.
        weight, bias: (C,) learnable scale and shift, or None (1 and 0).
        training: use batch statistics (and update the running ones).
        momentum: how far the running estimates move towards this batch's.
        eps: added to the variance for numerical safety.
    """
    if x.ndim not in (2, 4):
        raise ValueError(f"batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    channels = x.shape[1]
    running_mean, running_var = _raw(running_mean), _raw(running_var)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} should have shape ({channels},) for an input with "
                             f"{channels} channels (input shape {tuple(x.shape)}), got {tuple(value.shape)}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
    if training and math.prod(x.shape) // max(channels, 1) <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input shape {tuple(x.shape)}")
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=bool(training), momentum=float(momentum), eps=float(eps))
