"""Dropout: randomly zero activations while training, so units cannot co-adapt.

"Inverted" dropout: every element is kept with probability 1 - p and the kept
ones are scaled by 1 / (1 - p). The expected value of each output then equals
its input, so evaluation needs no rescaling: dropout is the identity there.
The random mask comes from tinycnn's seeded generator (``tinycnn.manual_seed``).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, get_rng
from ..tensor import Function, Tensor

__all__ = ["dropout", "dropout2d"]


class Dropout(Function):
    """x: any shape -> same shape; out = x * mask, mask = keep / (1 - p). Backward: g * mask."""

    def forward(self, x, p):
        xp = get_array_module(x)
        draw_dtype = np.float32 if x.dtype == np.float32 else np.float64  # the generator's two dtypes
        keep = get_rng(xp, x).random(x.shape, dtype=draw_dtype) >= p          # True with probability 1 - p
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


class Dropout2d(Function):
    """x: (N, C, H, W) or (C, H, W) -> same; whole channels zeroed: mask (N, C, 1, 1) or (C, 1, 1).

    Neighbouring pixels of a feature map are strongly correlated, so dropping single
    pixels hardly removes information; dropping a channel does. Backward: g * mask.
    """

    def forward(self, x, p):
        xp = get_array_module(x)
        draw_dtype = np.float32 if x.dtype == np.float32 else np.float64
        keep = get_rng(xp).random(x.shape[:-2] + (1, 1), dtype=draw_dtype) >= p   # one draw per channel
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each channel of (N, C, H, W) (or (C, H, W)) with probability ``p``, scale the rest by 1/(1-p)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be a probability in [0, 1], got {p!r}")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    if not training or p == 0:
        return x
    return Dropout2d.apply(x, p=float(p))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).

    In evaluation (``training=False``) or with ``p=0`` it returns ``x`` unchanged;
    ``p=1`` gives zeros.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    return Dropout.apply(x, p=float(p))
