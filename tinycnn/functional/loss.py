"""softmax, log_softmax and the cross-entropy loss, all numerically stable.

softmax(x)_i = exp(x_i) / sum_j exp(x_j). Computed literally, exp(1000) is inf.
Subtracting the row maximum first changes nothing mathematically (it cancels
between numerator and denominator) but keeps every exponent <= 0::

    log_softmax(x) = (x - max) - log(sum(exp(x - max)))

nll_loss is the negative log-likelihood alone, for a model that ends in
log_softmax (PyTorch's MNIST example): ``nll_loss(log_softmax(x, 1), y)`` equals
``cross_entropy(x, y)``. cross_entropy fuses the two into one Function, because its gradient is then simply ``softmax(logits) - target
distribution``: no division by a tiny probability, nothing to overflow.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..tensor import Function, Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "nll_loss"]


def _log_softmax(x, dim: int):
    """Raw-array log_softmax along ``dim``, shifted by the maximum for stability."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


class LogSoftmax(Function):
    """x: any shape -> same shape. Backward: g - softmax(x) * sum(g) along dim."""

    def forward(self, x, dim):
        self.dim = dim
        self.out = _log_softmax(x, dim)
        return self.out

    def backward(self, grad):
        xp = get_array_module(grad)
        return grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True)


class Softmax(Function):
    """x: any shape -> same shape, summing to 1 along dim. Backward: y * (g - sum(g * y))."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        exps = xp.exp(x - x.max(axis=dim, keepdims=True))
        self.dim = dim
        self.out = exps / exps.sum(axis=dim, keepdims=True)
        return self.out

    def backward(self, grad):
        y = self.out
        return y * (grad - (grad * y).sum(axis=self.dim, keepdims=True))


def _check_dim(name, x, dim):
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{name}: dim {dim} is out of range for a {x.ndim}-D input of shape {tuple(x.shape)}")
    return dim % x.ndim


def softmax(x: Tensor, dim: int) -> Tensor:
    """Probabilities along ``dim``: non-negative, summing to 1."""
    return Softmax.apply(x, dim=_check_dim("softmax", x, dim))


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) along ``dim``, computed without overflow or log(0)."""
    return LogSoftmax.apply(x, dim=_check_dim("log_softmax", x, dim))


class CrossEntropy(Function):
    """logits: (N, C) float, target: (N,) int class indices -> () or (N,) loss.

    With label smoothing eps, the target distribution of a sample with class y is
    ``q = (1 - eps) * onehot(y) + eps / C`` (PyTorch's definition), so

        loss = (1 - eps) * (-log_p[y]) + eps * mean_c(-log_p[c])

    and d loss / d logits = softmax(logits) - q (times 1/N for the mean).

    ``targets_checked=False`` (on a GPU, see :func:`cross_entropy`): a target outside
    [0, C) makes that sample's loss and gradient NaN, instead of reading another class.
    """

    def forward(self, logits, target, label_smoothing, reduction, targets_checked=True):
        xp = get_array_module(logits)
        n, classes = logits.shape
        log_probs = _log_softmax(logits, dim=1)
        target, self.in_range = _indexable_targets(target, classes, targets_checked)
        loss = -log_probs[xp.arange(n), target]                          # (N,) negative log-likelihood
        if label_smoothing > 0:
            loss = (1 - label_smoothing) * loss - label_smoothing * log_probs.mean(axis=1)
        self.log_probs, self.target = log_probs, target
        self.label_smoothing, self.reduction = label_smoothing, reduction
        return _reduced(_nan_out_of_range(loss, self.in_range), reduction)

    def backward(self, grad):
        xp = get_array_module(grad)
        n, classes = self.log_probs.shape
        smoothing = self.label_smoothing
        grad_logits = xp.exp(self.log_probs)                             # softmax
        grad_logits[xp.arange(n), self.target] -= 1 - smoothing           # minus q ...
        if smoothing > 0:
            grad_logits -= smoothing / classes                            # ... its uniform part
        if self.reduction == "mean":
            grad_logits *= grad / n
        elif self.reduction == "sum":
            grad_logits *= grad
        else:
            grad_logits *= grad[:, None]
        return _nan_out_of_range(grad_logits, self.in_range), None


def _indexable_targets(target, classes: int, targets_checked: bool):
    """(targets safe to index with, (N,) bool "in range" or None).

    Checked targets (the CPU) are used as they are. Unchecked ones (a GPU): CuPy would wrap an
    out-of-range index around (class -1 reads class C-1), so such a target reads class 0 instead,
    and the mask marks its sample, whose loss and gradient :func:`_nan_out_of_range` makes NaN.
    """
    if targets_checked:
        return target, None
    in_range = (target >= 0) & (target < classes)
    return get_array_module(target).where(in_range, target, 0), in_range


def _nan_out_of_range(values, in_range):
    """``values`` (N,) or (N, C) with the samples outside ``in_range`` set to NaN (None: unchanged)."""
    if in_range is None:
        return values
    mask = in_range if values.ndim == 1 else in_range[:, None]
    return get_array_module(values).where(mask, values, values.dtype.type(np.nan))


def _reduced(loss, reduction: str):
    """Per-sample losses (N,) -> their mean, their sum, or themselves (``"none"``)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _class_targets(name, scores: Tensor, target, scores_name: str = "input"):
    """The raw int64 targets (N,) for scores (N, C), on the scores' device, and whether
    their range was checked (on the CPU; on a GPU that check would wait for the GPU)."""
    raw_target = target.data if isinstance(target, Tensor) else target
    raw_scores = scores.data if isinstance(scores, Tensor) else scores
    xp = get_array_module(raw_scores)
    if xp is np and backend.is_cupy_array(raw_target):
        raise RuntimeError(f"{name}: {scores_name} are on the CPU but target is on {backend.device_of(raw_target)}; "
                           "move one with .to()")
    raw_target = xp.asarray(raw_target)   # a NumPy target meets GPU scores: copied to the GPU
    if scores.ndim != 2:
        raise ValueError(f"{name}: expected {scores_name} of shape (N, C), got {tuple(scores.shape)}")
    n, classes = scores.shape
    if raw_target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices (e.g. int64), got {raw_target.dtype}")
    if tuple(raw_target.shape) != (n,):
        raise ValueError(f"{name}: target should have shape ({n},) to match {scores_name} {tuple(scores.shape)}, "
                         f"got {tuple(raw_target.shape)}")
    checked = _check_targets_at_once(xp)
    if n > 0 and not checked:
        _defer_target_check(raw_target, classes, name)
    if n > 0 and checked:
        low, high = int(raw_target.min()), int(raw_target.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name}: target {bad} is out of range for {classes} classes "
                             f"(expected values in [0, {classes - 1}])")
    return raw_target.astype(np.int64, copy=False), checked


def cross_entropy(logits: Tensor, target, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy between class scores and integer class labels.

    Args:
        logits: (N, C) unnormalized scores.
        target: (N,) integer classes in [0, C) (a Tensor or an array).
        label_smoothing: in [0, 1]; mixes the one-hot target with the uniform distribution.
        reduction: "mean" (default), "sum", or "none" for the (N,) per-sample losses.

    A target outside [0, C) raises on the CPU. On a GPU, checking it would copy the
    targets' minimum and maximum to the host and wait for the GPU at every step, so
    there such a sample's loss (and so the mean or sum) comes out NaN, and the check is
    deferred: a flag on the GPU remembers it, and :func:`raise_if_targets_were_out_of_range`
    reads it when the host waits anyway (``tinycnn.train``'s loops call it every 10 steps).
    """
    raw_target, targets_checked = _class_targets("cross_entropy", logits, target, "logits")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return CrossEntropy.apply(logits, raw_target,
                              label_smoothing=float(label_smoothing), reduction=reduction,
                              targets_checked=targets_checked)


class NLLLoss(Function):
    """log_probs: (N, C) float, target: (N,) int classes -> () or (N,): ``-log_probs[i, target[i]]``.

    Backward: -1 at each sample's target class, 0 elsewhere (times 1/N for the mean).
    ``targets_checked=False`` (GPU): an out-of-range target gives that sample a NaN loss.
    """

    def forward(self, log_probs, target, reduction, targets_checked=True):
        xp = get_array_module(log_probs)
        n, classes = log_probs.shape
        target, self.in_range = _indexable_targets(target, classes, targets_checked)
        loss = -log_probs[xp.arange(n), target]                           # (N,)
        self.shape, self.target, self.reduction = log_probs.shape, target, reduction
        return _reduced(_nan_out_of_range(loss, self.in_range), reduction)

    def backward(self, grad):
        xp = get_array_module(grad)
        n = self.shape[0]
        per_sample = {"mean": xp.broadcast_to(grad / n, (n,)), "sum": xp.broadcast_to(grad, (n,))}.get(self.reduction, grad)
        grad_input = xp.zeros(self.shape, dtype=grad.dtype)
        grad_input[xp.arange(n), self.target] = -per_sample
        return _nan_out_of_range(grad_input, self.in_range), None


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the target class, for inputs that are log-probabilities.

    Args:
        input: (N, C) log-probabilities, usually ``log_softmax(logits, dim=1)``.
        target: (N,) integer classes in [0, C).
        reduction: "mean" (default), "sum", or "none" for the (N,) per-sample losses.

    A target outside [0, C) raises on the CPU and gives NaN on a GPU (see :func:`cross_entropy`).
    """
    raw_target, targets_checked = _class_targets("nll_loss", input, target, "log-probabilities")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return NLLLoss.apply(input, raw_target, reduction=reduction, targets_checked=targets_checked)


# --------------------------------------------------------------------------- deferred target checks (GPU)
def _check_targets_at_once(xp) -> bool:
    """Whether cross_entropy checks its targets as it is called: on the CPU (cheap), not on a GPU."""
    return xp is np


_out_of_range: dict = {}  # device -> (device-side bool "some target was out of range", classes, loss name)


def _defer_target_check(target, classes: int, name: str = "cross_entropy") -> None:
    """Remember, on the target's device, whether any target lies outside [0, classes): no waiting."""
    bad = ((target < 0) | (target >= classes)).any()
    device = backend.device_of(target)
    if device in _out_of_range:
        bad = bad | _out_of_range[device][0]
    _out_of_range[device] = (bad, classes, name)


def raise_if_targets_were_out_of_range() -> None:
    """Read the deferred checks (one host read per device for all calls since the last read) and clear
    them; raise if a target was out of range. Call it where the host waits for the device anyway."""
    pending = list(_out_of_range.items())
    _out_of_range.clear()
    for device, (bad, classes, name) in pending:
        if bool(bad):
            raise ValueError(f"{name}: a target on {device} was out of range for {classes} classes "
                             f"(expected values in [0, {classes - 1}]; on a GPU this is checked without waiting "
                             f"at every step, so it was seen up to 10 steps late)")
