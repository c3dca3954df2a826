"""Dropout: randomly zero activations while training."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode and scale the
    rest by ``1 / (1 - p)`` so the expected value is unchanged; in eval mode
    the input passes through. Shapes: any -> same.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) (or (C, H, W)) with probability ``p`` in training
    mode, scaling the rest by ``1 / (1 - p)``; identity in eval mode. Shapes: same -> same.
    """

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)
