"""The losses as Modules: CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss"]


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


class _Loss(Module):
    """A loss with a ``reduction``: "mean" (default), "sum" or "none"."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class NLLLoss(_Loss):
    """Negative log-likelihood of the target class. Shapes: log-probabilities ``(N, C)``
    (from ``LogSoftmax(dim=1)``), target ``(N,)`` integer classes -> scalar, or ``(N,)`` with "none"."""

    def forward(self, log_probs, target):
        return F.nll_loss(log_probs, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``mean((input - target)**2)``. Shapes: input, target the same -> scalar."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``mean(|input - target|)``. Shapes: input, target the same -> scalar."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (after a sigmoid). Shapes: input, target the same -> scalar.

    Prefer :class:`BCEWithLogitsLoss` on the raw scores: it is stable where this one clamps.
    """

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of ``sigmoid(input)``, computed stably from the scores.
    Shapes: input, target the same (targets in [0, 1]) -> scalar.

    ``pos_weight``: weight of the positive targets' loss (one per class for (N, C) scores).
    """

    def __init__(self, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction, pos_weight=self.pos_weight)
