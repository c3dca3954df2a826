"""CrossEntropyLoss: the classification loss, as a Module."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Module):
    """Softmax + negative log-likelihood of the target class, in one stable op.

    Shapes:
        logits ``(N, num_classes)``, target ``(N,)`` integer class indices
        -> a scalar with ``reduction="mean"`` or ``"sum"``, ``(N,)`` with ``"none"``.

    ``label_smoothing=eps`` trains towards ``(1 - eps)`` on the target class and
    ``eps / num_classes`` spread over all classes.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.reduction = reduction

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing, reduction=self.reduction)

    def extra_repr(self) -> str:
        settings = []
        if self.label_smoothing != 0.0:
            settings.append(f"label_smoothing={self.label_smoothing}")
        if self.reduction != "mean":
            settings.append(f"reduction={self.reduction!r}")
        return ", ".join(settings)
