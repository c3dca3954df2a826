"""default_collate: a list of samples -> one batch, by stacking (PyTorch's rules).

A map-style dataset returns one sample at a time, e.g. ``(image (C, H, W), label)``.
The loader gathers ``batch_size`` of them and collates them field by field:

* Tensors and NumPy/CuPy arrays of one shape -> stacked into a Tensor (B, *shape),
  dtype kept (a float64 array stays float64, as in PyTorch);
* Python ints -> int64 (B,); bools -> bool (B,); floats -> float32 (B,)
  (tinycnn's default float; PyTorch makes float64 here); NumPy scalars keep their dtype;
* tuples and lists -> a tuple of the collated fields; dicts -> a dict, key by key;
* strings -> a list of strings (nothing to stack).

Anything else needs your own ``collate_fn(list_of_samples) -> batch``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["default_collate"]


def default_collate(batch: list):
    """Collate a list of samples into a batch (see the module docstring for the rules)."""
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty list of samples")
    first = batch[0]
    if isinstance(first, Tensor) or isinstance(first, np.ndarray) or backend.is_cupy_array(first):
        return _stack(batch)
    if isinstance(first, (bool, np.bool_)):
        return Tensor.from_op(np.asarray(batch, dtype=np.bool_), None)
    if isinstance(first, np.generic):
        return Tensor.from_op(np.asarray(batch, dtype=first.dtype), None)
    if isinstance(first, numbers.Integral):
        return Tensor.from_op(np.asarray(batch, dtype=np.int64), None)
    if isinstance(first, numbers.Real):
        return Tensor.from_op(np.asarray(batch, dtype=np.float32), None)
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        sizes = {len(sample) for sample in batch}
        if len(sizes) != 1:
            raise ValueError(f"default_collate: every sample must have the same number of fields, got sizes {sorted(sizes)}")
        return tuple(default_collate(list(field)) for field in zip(*batch))
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(first).__name__}; samples may be Tensors, arrays, "
        "numbers, strings, or tuples/lists/dicts of those; pass collate_fn= to batch other types"
    )


def _stack(items: list) -> Tensor:
    """Tensors or arrays of one shape -> a Tensor (B, *shape), on the first item's device."""
    arrays = [item.data if isinstance(item, Tensor) else item for item in items]
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"default_collate: cannot stack samples of different shapes {sorted(shapes)}; resize them in the "
            "dataset, or pass a collate_fn that pads them"
        )
    xp = backend.get_array_module(*arrays)
    return Tensor.from_op(xp.stack(arrays), None)
