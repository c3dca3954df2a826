"""Flatten: merge a range of dimensions into one (conv features -> Linear input)."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flatten dimensions ``start_dim..end_dim`` into one.

    Shapes: with the defaults, ``(N, C, H, W) -> (N, C*H*W)``: the batch
    dimension stays.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
