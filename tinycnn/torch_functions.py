"""The functions PyTorch has at ``torch.*``, under the same names at ``tinycnn.*``.

``torch.flatten(x, 1)``, ``torch.max(outputs, 1)``, ``torch.from_numpy(a)``: each is one
line that hands over to a Tensor method or a differentiable op in
:mod:`tinycnn.functional` (where the forward and backward are). They accept a raw
NumPy/CuPy array where PyTorch takes a tensor, because ``outputs.data`` is the raw
array in tinycnn (PyTorch's tutorials write ``torch.max(outputs.data, 1)``).
"""

from __future__ import annotations

import numpy as np

from . import backend
from .functional import loss as _loss
from .functional import math as _math
from .tensor import Tensor, _resolve_dtype, tensor

__all__ = [
    "flatten", "argmax", "argmin", "max", "min", "sum", "mean", "exp", "log", "sqrt", "abs", "tanh",
    "sigmoid", "softmax", "log_softmax", "from_numpy", "as_tensor", "numel", "eq", "is_tensor",
]


def _tensor(x) -> Tensor:
    """A Tensor for ``x``: Tensors as they are, raw arrays wrapped without a copy."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return Tensor.from_op(x, None)
    raise TypeError(f"expected a Tensor (or a NumPy/CuPy array), got {type(x).__name__}")


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dimensions start_dim..end_dim merged into one: ``flatten(x, 1)`` makes (N, C, H, W) -> (N, C*H*W)."""
    return _math.flatten(_tensor(input), start_dim, end_dim)


def max(input, dim=None, keepdim: bool = False):
    """The largest value; with ``dim`` a (values, indices) pair; with a tensor, the elementwise maximum."""
    return _tensor(input).max(dim, keepdim)


def min(input, dim=None, keepdim: bool = False):
    """The smallest value; with ``dim`` a (values, indices) pair; with a tensor, the elementwise minimum."""
    return _tensor(input).min(dim, keepdim)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input).argmin(dim, keepdim)


def sum(input, dim=None, keepdim: bool = False) -> Tensor:
    return _math.sum(_tensor(input), dim, keepdim)


def mean(input, dim=None, keepdim: bool = False) -> Tensor:
    return _math.mean(_tensor(input), dim, keepdim)


def exp(input) -> Tensor:
    return _math.exp(_tensor(input))


def log(input) -> Tensor:
    return _math.log(_tensor(input))


def sqrt(input) -> Tensor:
    return _math.sqrt(_tensor(input))


def abs(input) -> Tensor:
    return _math.abs(_tensor(input))


def tanh(input) -> Tensor:
    return _math.tanh(_tensor(input))


def sigmoid(input) -> Tensor:
    return _math.sigmoid(_tensor(input))


def softmax(input, dim: int) -> Tensor:
    return _loss.softmax(_tensor(input), dim)


def log_softmax(input, dim: int) -> Tensor:
    return _loss.log_softmax(_tensor(input), dim)


def eq(input, other) -> Tensor:
    return _tensor(input) == other


def numel(input) -> int:
    return _tensor(input).numel()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype (float64 stays float64, as in PyTorch):
    writing into one shows in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: tensors hold floating, integer or boolean data, got dtype {array.dtype}")
    return Tensor.from_op(array, None)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory when it can.

    A Tensor, or a NumPy/CuPy array already of that dtype and on that device, is used as is
    (an array keeps its dtype, as with :func:`from_numpy`); anything else (lists, numbers) is
    copied as by :func:`tinycnn.tensor`.
    """
    dtype = _resolve_dtype(dtype)
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        out = Tensor.from_op(data, None) if data.dtype.kind in "fiub" else tensor(data)
        return out.to(device=device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device or "cpu")
