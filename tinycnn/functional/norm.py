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

from .. import fast
from ..backend import get_array_module
from ..tensor import Function, Tensor

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """x: (N, C) or (N, C, H, W); weight, bias, running stats: (C,) -> same shape as x."""

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))             # every axis but the channel axis
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)     # a (C,) vector broadcast against x
        count = x.size // x.shape[1]                      # M, values per channel
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)   # (C,), var biased (1/M)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (count / (count - 1))   # unbiased
        else:
            mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
        std = xp.sqrt(var + eps).astype(x.dtype)                               # (C,)
        x_hat = (x - mean.reshape(shape)) / std.reshape(shape)
        out = x_hat if weight is None else x_hat * weight.reshape(shape).astype(x.dtype)
        if bias is not None:
            out = out + bias.reshape(shape).astype(x.dtype)
        self.x_hat, self.std, self.weight, self.axes, self.shape = x_hat, std, weight, axes, shape
        self.training = training
        return out

    def backward(self, grad):
        grad_x = grad_weight = grad_bias = None
        shape, axes, x_hat = self.shape, self.axes, self.x_hat
        if self.needs_input_grad[1]:
            grad_weight = (grad * x_hat).sum(axis=axes)                         # (C,)
        if self.needs_input_grad[2]:
            grad_bias = grad.sum(axis=axes)                                     # (C,)
        if self.needs_input_grad[0]:
            scale = 1 / self.std if self.weight is None else self.weight.astype(grad.dtype) / self.std
            if self.training:   # the batch statistics depend on x: two more terms
                grad_x = scale.reshape(shape) * (grad - grad.mean(axis=axes).reshape(shape)
                                                 - x_hat * (grad * x_hat).mean(axis=axes).reshape(shape))
            else:               # the running statistics are constants
                grad_x = grad * scale.reshape(shape)
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
    params = dict(running_mean=running_mean, running_var=running_var, training=bool(training),
                  momentum=float(momentum), eps=float(eps))
    if fast.enabled():   # the fast floor: few passes over memory, a large batch on every core (tinycnn/fast/norm.py)
        return fast.BatchNorm.apply(x, weight, bias, **params)
    return BatchNorm.apply(x, weight, bias, **params)
