"""one_hot: class indices -> rows of zeros with a single one."""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["one_hot"]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """indices: any shape S, integers in [0, C) -> int64 (*S, C), no gradient.

    ``num_classes=-1`` takes C = largest index + 1, as PyTorch does.
    """
    raw = tensor.data if isinstance(tensor, Tensor) else tensor
    xp = get_array_module(raw)
    raw = xp.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got dtype {raw.dtype}")
    if num_classes == -1:
        num_classes = int(raw.max()) + 1 if raw.size else 0
    if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes - 1}] for {num_classes} classes, "
                         f"got values in [{int(raw.min())}, {int(raw.max())}]")
    out = (raw[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor.from_op(out, None)
