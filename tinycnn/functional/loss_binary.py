"""Binary cross-entropy: one yes/no probability per element.

For a predicted probability p and a target t in [0, 1]::

    bce(p, t) = -(t log p + (1 - t) log(1 - p))

``binary_cross_entropy`` takes probabilities (after a sigmoid). log(0) is -inf, so,
as PyTorch does, each log is clamped at -100: a confidently wrong prediction costs 100,
not inf. ``binary_cross_entropy_with_logits`` takes the scores x before the sigmoid and
is the one to use: with p = sigmoid(x) the loss simplifies to

    bce = max(x, 0) - x t + log(1 + exp(-|x|))

which never overflows (exp of a non-positive number) and never takes log(0); its
gradient is simply ``sigmoid(x) - t``. ``pos_weight`` w multiplies the positive term:
``-(w t log p + (1 - t) log(1 - p))``, to weigh rare positives up.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .loss_regression import _reduce

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]

_LOG_FLOOR = -100.0   # PyTorch's clamp of log p and log(1 - p)
_EPS = 1e-12          # PyTorch's floor of p (1 - p) in the gradient


class BinaryCrossEntropy(Function):
    """p, t: any shape (the same) -> elementwise loss. Backward: (p - t) / (p (1 - p)) per element."""

    def forward(self, p, t):
        xp = get_array_module(p)
        with np.errstate(divide="ignore"):      # log(0) = -inf is expected here: clamped next (NumPy only warns)
            log_p = xp.maximum(xp.log(p), _LOG_FLOOR)
            log_1mp = xp.maximum(xp.log1p(-p), _LOG_FLOOR)
        self.p, self.t = p, t
        return -(t * log_p + (1 - t) * log_1mp)

    def backward(self, grad):
        xp = get_array_module(grad)
        p, t = self.p, self.t
        return grad * (p - t) / xp.maximum(p * (1 - p), _EPS), None


class BinaryCrossEntropyWithLogits(Function):
    """x, t: any shape (the same) -> elementwise loss. Backward: ``(1 - t) - w' sigmoid(-x)``,
    w' = 1 + (pos_weight - 1) t (= sigmoid(x) - t without pos_weight)."""

    def forward(self, x, t, pos_weight):
        xp = get_array_module(x)
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)   # log(1 + exp(-x)) = -log sigmoid(x)
        weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
        self.x, self.t, self.weight = x, t, weight
        return (1 - t) * x + weight * softplus_neg

    def backward(self, grad):
        xp = get_array_module(grad)
        x = self.x
        sigmoid_neg = xp.exp(-xp.logaddexp(0, x))                          # sigmoid(-x), stable both ways
        return grad * ((1 - self.t) - self.weight * sigmoid_neg), None


def _raw_target(name, input: Tensor, target):
    raw = target.data if isinstance(target, Tensor) else target
    xp = get_array_module(input.data)
    raw = xp.asarray(raw, dtype=input.dtype)
    if tuple(raw.shape) != tuple(input.shape):
        raise ValueError(f"{name}: target should have the input's shape {tuple(input.shape)}, got {tuple(raw.shape)} "
                         "(for (N, 1) scores and (N,) labels: target.view_as(input) or input.squeeze(1))")
    return raw


def binary_cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """BCE of probabilities ``input`` (in [0, 1], after a sigmoid) against ``target`` (same shape, in [0, 1])."""
    raw_target = _raw_target("binary_cross_entropy", input, target)
    xp = get_array_module(input.data)
    if input.numel() and xp is np and (input.data.min() < 0 or input.data.max() > 1):
        raise ValueError("binary_cross_entropy: input must be probabilities in [0, 1] (apply sigmoid first, or use "
                         f"binary_cross_entropy_with_logits), got values in [{input.data.min()}, {input.data.max()}]")
    return _reduce("binary_cross_entropy", BinaryCrossEntropy.apply(input, raw_target), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean", pos_weight=None) -> Tensor:
    """BCE of ``sigmoid(input)`` against ``target`` (same shape, in [0, 1]), computed stably from the scores.

    ``pos_weight``: a number or an array broadcasting against the input (one weight per class
    for (N, C) scores) that multiplies the loss of positive targets.
    """
    raw_target = _raw_target("binary_cross_entropy_with_logits", input, target)
    if pos_weight is not None:
        pos_weight = pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight
        pos_weight = get_array_module(input.data).asarray(pos_weight, dtype=input.dtype)
    loss = BinaryCrossEntropyWithLogits.apply(input, raw_target, pos_weight=pos_weight)
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)
