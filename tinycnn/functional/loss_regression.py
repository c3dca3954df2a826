"""Losses between two tensors of the same shape: mean squared error and mean absolute error.

Both are a few elementwise ops and a reduction, so they are written with the
differentiable ops of math.py; their gradients come from those ops' backwards::

    mse_loss: mean((input - target)**2)   d/d input = 2 (input - target) / n
    l1_loss:  mean(|input - target|)      d/d input = sign(input - target) / n   (0 where equal)

``target`` may require a gradient too (it gets the negated one).
"""

from __future__ import annotations

from ..tensor import Tensor
from . import math as _math

__all__ = ["mse_loss", "l1_loss"]


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _difference(name: str, input: Tensor, target) -> Tensor:
    # PyTorch only warns when the shapes differ and broadcasts; (N, 1) against (N,) then
    # silently compares every prediction with every target. Here it is an error.
    target_shape = tuple(getattr(target, "shape", ()))
    if tuple(input.shape) != target_shape:
        raise ValueError(f"{name}: input and target need the same shape, got {tuple(input.shape)} and {target_shape} "
                         "(reshape one, e.g. target.view_as(input))")
    return _math.sub(input, target)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error. input, target: the same shape -> () (or that shape with "none")."""
    diff = _difference("mse_loss", input, target)
    return _reduce("mse_loss", diff * diff, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error. input, target: the same shape -> () (or that shape with "none")."""
    return _reduce("l1_loss", _math.abs(_difference("l1_loss", input, target)), reduction)
