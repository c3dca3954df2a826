"""Batch normalization's two element-wise passes, fused (see functional/norm.py for the math).

Both work on a batch ``(N, C, H, W)`` (or ``(N, C)``) and per-channel coefficients
shaped ``(1, C, 1, 1)`` (or ``(1, C)``) that broadcast against it.

Forward, after the per-channel statistics::

    out = centered * scale + bias          # centered = x - mean, scale = weight / std

Backward in training mode, with per-channel k1 = scale, k2, k3 (norm.py derives them)::

    grad_x = grad * k1 + centered * k2 + k3

Plain array code makes 2 passes (3 reads, 2 writes) for the forward and 5 for the
backward; each fused kernel reads its inputs once and writes once.
"""

from __future__ import annotations

from ... import backend
from .elementwise import ElementwiseFusion

__all__ = ["BATCH_NORM_APPLY", "BATCH_NORM_BACKWARD", "batch_norm_apply", "batch_norm_backward"]


def _apply_reference(centered, scale, bias, result=None):
    out = backend.get_array_module(centered).multiply(centered, scale, out=result)
    out += bias                       # in place: no second temporary
    return out


BATCH_NORM_APPLY = ElementwiseFusion(
    name="tinycnn_batch_norm_apply",
    in_params="T centered, T scale, T bias",
    out_params="T out",
    operation="out = centered * scale + bias",
    reference=_apply_reference,
)


def _backward_reference(grad, centered, k1, k2, k3, result=None):
    grad_x = backend.get_array_module(grad).multiply(grad, k1, out=result)
    grad_x += centered * k2
    grad_x += k3
    return grad_x


BATCH_NORM_BACKWARD = ElementwiseFusion(
    name="tinycnn_batch_norm_backward",
    in_params="T grad, T centered, T k1, T k2, T k3",
    out_params="T grad_x",
    operation="grad_x = grad * k1 + centered * k2 + k3",
    reference=_backward_reference,
)


def batch_norm_apply(centered, scale, bias):
    """``centered * scale + bias``: centered (N, C, ...), scale and bias (1, C, 1, ...) -> (N, C, ...)."""
    return BATCH_NORM_APPLY(centered, scale, bias)


def batch_norm_backward(grad, centered, k1, k2, k3):
    """``grad * k1 + centered * k2 + k3``: grad, centered (N, C, ...), k1..k3 (1, C, 1, ...) -> (N, C, ...)."""
    return BATCH_NORM_BACKWARD(grad, centered, k1, k2, k3)
