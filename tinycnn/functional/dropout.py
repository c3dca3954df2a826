"""Dropout and stochastic depth: randomly zero activations while training, so units cannot co-adapt.

"Inverted" dropout: every element is kept with probability 1 - p and the kept
ones are scaled by 1 / (1 - p). The expected value of each output then equals
its input, so evaluation needs no rescaling: dropout is the identity there.
The random mask comes from tinycnn's seeded generator (``tinycnn.manual_seed``).

Stochastic depth (Huang et al., 2016; EfficientNet's blocks) is dropout of a whole
residual branch: ``x + stochastic_depth(branch(x), p, "row")`` drops the branch for some
images of the batch (one draw per image), so the network is a random shallower one at each
step and the full-depth one in evaluation.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, get_rng
from ..tensor import Function, Tensor

__all__ = ["dropout", "dropout2d", "stochastic_depth"]


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


class StochasticDepth(Function):
    """x: (N, ...) -> same; out = x * mask with one draw per image, mask (N, 1, ..., 1) ("row"),
    or one for the whole batch, mask (1, ..., 1) ("batch"). Backward: g * mask."""

    def forward(self, x, p, mode):
        xp = get_array_module(x)
        draw_dtype = np.float32 if x.dtype == np.float32 else np.float64
        mask_shape = ((x.shape[0],) if mode == "row" else (1,)) + (1,) * (x.ndim - 1)
        keep = get_rng(xp, x).random(mask_shape, dtype=draw_dtype) >= p   # True with probability 1 - p
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:
    """Zero whole images ("row": one draw per image of the batch) or the whole batch ("batch": one draw)
    with probability ``p``, and scale what survives by 1/(1-p) (as ``torchvision.ops.stochastic_depth``).

    input: (N, ...) -> same shape. The identity when ``training=False`` or ``p=0``; ``p=1`` gives zeros.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"stochastic_depth: p must be a probability in [0, 1], got {p!r}")
    if mode not in ("row", "batch"):
        raise ValueError(f"stochastic_depth: mode must be 'row' or 'batch', got {mode!r}")
    if input.ndim < 1:
        raise ValueError("stochastic_depth: expected a batch (N, ...), got a 0-d tensor")
    if not training or p == 0:
        return input
    return StochasticDepth.apply(input, p=float(p), mode=mode)


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
