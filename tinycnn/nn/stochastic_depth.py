"""StochasticDepth: drop a residual branch for random images while training (identity in evaluation)."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["StochasticDepth"]


class StochasticDepth(Module):
    """``F.stochastic_depth(x, p, mode, self.training)``, as ``torchvision.ops.StochasticDepth``.

    Put it at the end of a residual branch: ``x + self.stochastic_depth(branch(x))``. While
    training, each image's branch (``mode="row"``) or the whole batch's (``mode="batch"``) is
    zeroed with probability ``p`` and the survivors are scaled by 1/(1-p); in evaluation
    (``model.eval()``) it is the identity. Shapes: (N, ...) -> same.
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"StochasticDepth: p must be a probability in [0, 1], got {p!r}")
        if mode not in ("row", "batch"):
            raise ValueError(f"StochasticDepth: mode must be 'row' or 'batch', got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x):
        return F.stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
