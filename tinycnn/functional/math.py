"""Element-wise math, matmul, reductions and shape ops, each with its backward.

Every op is a :class:`~tinycnn.tensor.Function` working on raw arrays, followed
by the small public function that applies it. Arrays may be NumPy or CuPy:
``xp = get_array_module(...)`` picks the module, so one code path serves both.

Binary ops broadcast like NumPy. Broadcasting copies an input along new or
size-1 axes, so in the backward the gradient of such an input is the *sum*
over those axes: :func:`unbroadcast` does it.
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import backend, fast
from ..backend import get_array_module
from ..tensor import Function, Tensor

__all__ = [
    "unbroadcast", "add", "sub", "mul", "div", "pow", "neg", "matmul",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "clip", "clamp",
    "maximum", "minimum", "where", "sum", "mean", "max", "min", "argmax", "argmin",
    "reshape", "transpose", "permute", "flatten", "squeeze", "unsqueeze",
    "broadcast_to", "getitem", "concatenate", "cat", "stack", "pad",
    "cast", "to_device", "clone", "compare",
]


def _shape(x) -> tuple:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched.

    grad: (broadcast shape) -> (shape).
    """
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


# --------------------------------------------------------------------------- arithmetic
class Add(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        return a - b

    def backward(self, grad):
        return unbroadcast(grad, self.a_shape), unbroadcast(-grad, self.b_shape)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        grad_a = unbroadcast(grad * self.b, _shape(self.a)) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * self.a, _shape(self.b)) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        grad_a = unbroadcast(grad / self.b, _shape(self.a)) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad * self.a / (self.b * self.b), _shape(self.b)) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Pow(Function):
    """a ** b. d/da = b * a**(b-1); d/db = a**b * log(a) (defined for a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, grad):
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(grad * self.b * self.a ** (self.b - 1), _shape(self.a))
        if self.needs_input_grad[1]:
            xp = get_array_module(self.out)
            a = xp.asarray(self.a)   # 2 ** t: a Python number, whose "a > 0" CuPy's where cannot take
            log_a = xp.log(xp.where(a > 0, a, 1))  # 0 where a <= 0 (no real log)
            grad_b = unbroadcast(grad * self.out * log_a, _shape(self.b))
        return grad_a, grad_b


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class MatMul(Function):
    """a @ b with NumPy's rules: batched over leading dims, 1-D operands promoted.

    a: (..., n, k), b: (..., k, m) -> (..., n, m).
    Backward: grad_a = grad @ b^T, grad_b = a^T @ grad, batch dims summed back.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        a, b = self.a, self.b
        # Promote 1-D operands to matrices, as matmul did, so one formula serves all.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        grad2 = grad.reshape(out_shape)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(grad2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(a2.swapaxes(-1, -2) @ grad2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


def _operand_device(x):
    """Where an operand's data lives, or None for numbers (and NumPy 0-d arrays), which go anywhere."""
    if isinstance(x, Tensor):
        return x.device
    if backend.is_cupy_array(x) or (isinstance(x, np.ndarray) and x.ndim > 0):
        return backend.device_of(x)
    return None


def _operands(name, a, b):
    """``(a, b)`` checked (types, devices) and ready for an op: a 0-d NumPy array becomes a scalar."""
    _check_operands(name, a, b)
    return _scalar_if_0d(a), _scalar_if_0d(b)


def _check_operands(name, a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: at least one operand must be a Tensor")
    for x in (a, b):
        if isinstance(x, Tensor) or isinstance(x, (int, float, bool, np.number)):
            continue
        if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
            continue
        raise TypeError(f"{name}: unsupported operand of type {type(x).__name__}; expected a Tensor, array or number")
    _check_same_device(name, a, b)


def _scalar_if_0d(x):
    """A 0-d NumPy array as a NumPy scalar: CuPy's kernels take numbers and ``np.generic``, not
    NumPy arrays (``gpu_tensor * np.array(0.5)`` would raise); the value and dtype stay the same."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def _check_same_device(name, x, y, x_is="operands", y_is=None):
    """Raise tinycnn's mixed-device error (CuPy's own is a TypeError about implicit conversion)."""
    device_x, device_y = _operand_device(x), _operand_device(y)
    if device_x is not None and device_y is not None and device_x != device_y:
        what = f"{x_is} and {y_is} are" if y_is else "operands are"
        raise RuntimeError(f"{name}: {what} on different devices ({device_x} and {device_y}); move one with .to()")


def _binary(function, name):
    def op(a, b):
        return function.apply(*_operands(name, a, b))

    op.__name__ = name
    op.__doc__ = f"Element-wise ``{name}`` with NumPy broadcasting; numbers mix in freely."
    return op


add = _binary(Add, "add")
sub = _binary(Sub, "sub")
mul = _binary(Mul, "mul")
div = _binary(Div, "div")
pow = _binary(Pow, "pow")


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's ``@`` rules (batched, 1-D promoted)."""
    a, b = _operands("matmul", a, b)
    if builtins.min(np.ndim(a.data if isinstance(a, Tensor) else a), np.ndim(b.data if isinstance(b, Tensor) else b)) == 0:
        raise ValueError("matmul: both operands need at least one dimension (use * for scalars)")
    return MatMul.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


# --------------------------------------------------------------------------- element-wise
class Exp(Function):
    def forward(self, x):
        self.out = get_array_module(x).exp(x)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    def forward(self, x):
        self.out = get_array_module(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class Tanh(Function):
    def forward(self, x):
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, x):
        xp = get_array_module(x)
        # 1 / (1 + e^-x) written as exp(-log(1 + e^-x)): no overflow for large |x|
        self.out = xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class ReLU(Function):
    """max(x, 0); the gradient passes where x > 0 (0 at x == 0, as PyTorch).

    The backward reads the output (out > 0 exactly where x > 0), so no mask is kept.
    """

    def forward(self, x):
        # max(x, 0), not x * (x > 0): that gives -0.0 for x < 0
        self.out = get_array_module(x).maximum(x, 0)
        return self.out

    def backward(self, grad):
        return grad * (self.out > 0)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, grad):
        return grad * get_array_module(self.x).sign(self.x)


class Clip(Function):
    """Clamp into [low, high]; the gradient passes where low <= x <= high."""

    def forward(self, x, low, high):
        xp = get_array_module(x)
        self.mask = xp.ones(x.shape, dtype=bool)
        if low is not None:
            self.mask &= x >= low
        if high is not None:
            self.mask &= x <= high
        return xp.clip(x, low, high)

    def backward(self, grad):
        return grad * self.mask, None, None


class Maximum(Function):
    """Element-wise max of two arrays; a tie splits the gradient in half."""

    def forward(self, a, b):
        xp = get_array_module(a, b)
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        out = xp.maximum(a, b)
        self.a_wins = (a > b).astype(out.dtype)
        self.tie = (a == b).astype(out.dtype)
        return out

    def backward(self, grad):
        share_a = self.a_wins + 0.5 * self.tie
        return unbroadcast(grad * share_a, self.a_shape), unbroadcast(grad * (1 - share_a), self.b_shape)


class Where(Function):
    """where(condition, a, b): a where condition holds, else b."""

    def forward(self, condition, a, b):
        self.condition = condition
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        return get_array_module(condition, a, b).where(condition, a, b)

    def backward(self, grad):
        zero = grad.dtype.type(0)
        xp = get_array_module(grad)
        return (
            None,
            unbroadcast(xp.where(self.condition, grad, zero), self.a_shape),
            unbroadcast(xp.where(self.condition, zero, grad), self.b_shape),
        )


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    if fast.enabled():   # the fast floor: a large batch on every core, a fused backward on a GPU (fast/activation.py)
        return fast.ReLU.apply(x)
    return ReLU.apply(x)


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def clip(x: Tensor, min=None, max=None) -> Tensor:
    """Clamp values into [min, max] (either bound may be None)."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    return Clip.apply(x, min, max)


clamp = clip


def maximum(a, b) -> Tensor:
    return Maximum.apply(*_operands("maximum", a, b))


def minimum(a, b) -> Tensor:
    a, b = _operands("minimum", a, b)
    return -Maximum.apply(-a, -b)


def where(condition, a, b) -> Tensor:
    """Pick from ``a`` where ``condition`` is true, else from ``b`` (broadcasting)."""
    a, b = _operands("where", a, b)
    condition = condition.data if isinstance(condition, Tensor) else condition
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got {condition.dtype}")
    for x in (a, b):
        _check_same_device("where", condition, x, "the condition", "an operand")
    return Where.apply(condition, a, b)


# --------------------------------------------------------------------------- reductions
def _normalize_axes(axis, ndim: int) -> tuple:
    """Axes as a sorted tuple of non-negative ints (None -> all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        result.append(int(a) % builtins.max(ndim, 1))
    return tuple(sorted(set(result))) if ndim else ()


def _pick_axis(axis, dim):
    if dim is not None and axis is not None:
        raise TypeError("give either axis or dim, not both")
    return dim if dim is not None else axis


def _expand_reduced(grad, axes: tuple, keepdims: bool, shape: tuple):
    """Broadcast a reduced gradient back to the input's shape."""
    xp = get_array_module(grad)
    if not keepdims:
        grad = xp.expand_dims(grad, axes) if axes else grad
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, x, axes, keepdims):
        self.shape, self.axes, self.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _expand_reduced(grad, self.axes, self.keepdims, self.shape), None, None


class Mean(Function):
    def forward(self, x, axes, keepdims):
        self.shape, self.axes, self.keepdims = x.shape, axes, keepdims
        self.count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _expand_reduced(grad / self.count, self.axes, self.keepdims, self.shape), None, None


class Max(Function):
    """Maximum over axes; tied maxima share the gradient equally."""

    def forward(self, x, axes, keepdims):
        self.shape, self.axes, self.keepdims = x.shape, axes, keepdims
        out_kept = x.max(axis=axes, keepdims=True)
        mask = (x == out_kept).astype(x.dtype)
        self.share = mask / mask.sum(axis=axes, keepdims=True)
        return out_kept if keepdims else out_kept.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, grad):
        return _expand_reduced(grad, self.axes, self.keepdims, self.shape) * self.share, None, None


def _keep(keepdims, keepdim):
    """NumPy's ``keepdims`` or PyTorch's ``keepdim`` (whichever was given)."""
    return keepdims if keepdim is None else keepdim


def _reduce(function, x, axis, keepdims, dim):
    axes = _normalize_axes(_pick_axis(axis, dim), x.ndim)
    if x.ndim > 0 and 0 in [x.shape[a] for a in axes] and function is not Sum:
        raise ValueError(f"{function.__name__.lower()}: cannot reduce an empty axis (shape {x.shape})")
    return function.apply(x, axes, bool(keepdims))


def sum(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Sum over ``axis`` (alias ``dim``): an int, a tuple, or None for all."""
    return _reduce(Sum, x, axis, _keep(keepdims, keepdim), dim)


def mean(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return _reduce(Mean, x, axis, _keep(keepdims, keepdim), dim)


def max(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Largest value over ``axis``; the gradient is split among tied maxima.

    (``tinycnn.max(x, dim)`` and ``x.max(dim)``, PyTorch's forms, give a (values, indices) pair.)
    """
    return _reduce(Max, x, axis, _keep(keepdims, keepdim), dim)


def min(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return -_reduce(Max, -x, axis, _keep(keepdims, keepdim), dim)


def _arg_reduce(name, x, axis, keepdims, dim):
    axis = _pick_axis(axis, dim)
    if axis is not None:
        axes = _normalize_axes(axis, x.ndim)
        if len(axes) != 1:
            raise ValueError(f"{name}: reduces one axis (or all), got {axis}")
        axis = axes[0]
    out = getattr(x.data, name)(axis=axis)
    if keepdims and axis is not None:
        out = get_array_module(out).expand_dims(out, axis)
    return Tensor.from_op(get_array_module(x.data).asarray(out).astype(np.int64), None)


def argmax(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Index of the largest value (int64, no gradient); over all elements (flattened) when no axis."""
    return _arg_reduce("argmax", x, axis, _keep(keepdims, keepdim), dim)


def argmin(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Index of the smallest value (int64, no gradient); over all elements (flattened) when no axis."""
    return _arg_reduce("argmin", x, axis, _keep(keepdims, keepdim), dim)


# --------------------------------------------------------------------------- shapes
class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.in_shape), None


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, grad):
        return grad.transpose(self.inverse), None


class BroadcastTo(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return unbroadcast(grad, self.in_shape), None


def reshape(x: Tensor, *shape) -> Tensor:
    """Same data, new shape (one dimension may be -1)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        np.empty(x.shape, dtype=np.bool_).reshape(shape)  # validate cheaply, NumPy's message
    except ValueError as error:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} into {shape} ({error})") from None
    return Reshape.apply(x, tuple(shape))


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder dimensions: ``permute(x, 0, 2, 3, 1)`` turns NCHW into NHWC."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if sorted(d % builtins.max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions of shape {x.shape}")
    return Permute.apply(x, tuple(d % x.ndim for d in dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (PyTorch's ``transpose``)."""
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, tuple(dims))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) with start_dim=1."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Drop size-1 dimensions (all of them, or only ``dim``)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        dim = dim % x.ndim
        shape = x.shape if x.shape[dim] != 1 else x.shape[:dim] + x.shape[dim + 1:]
    return reshape(x, shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim``."""
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def broadcast_to(x: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return BroadcastTo.apply(x, tuple(shape))


# --------------------------------------------------------------------------- indexing, joining
class GetItem(Function):
    """x[index] for ints, slices, None, Ellipsis, integer and boolean arrays."""

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        return x[index]

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_x = xp.zeros(self.in_shape, dtype=grad.dtype)
        if _has_array_index(self.index):
            backend.scatter_add(grad_x, self.index, grad)  # an index may repeat: add, not assign
        else:
            grad_x[self.index] = grad  # basic indexing picks each element at most once
        return grad_x, None


def _has_array_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") or isinstance(p, (list, np.ndarray)) for p in parts)


def getitem(x: Tensor, index) -> Tensor:
    def raw(part):
        if isinstance(part, Tensor):
            return part.data
        if isinstance(part, list):
            return get_array_module(x.data).asarray(part)
        return part

    index = tuple(raw(p) for p in index) if isinstance(index, tuple) else raw(index)
    return GetItem.apply(x, index)


class Concatenate(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = [int(b) for b in np.cumsum([a.shape[axis] for a in arrays])[:-1]]  # split points
        return get_array_module(*arrays).concatenate(arrays, axis=axis)

    def backward(self, grad):
        return tuple(get_array_module(grad).split(grad, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        return get_array_module(*arrays).stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(grad.take(i, axis=self.axis) for i in range(grad.shape[self.axis]))


def _check_joinable(name, tensors):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{name}: expects a sequence of Tensors")
    return tensors


def concatenate(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join tensors along an existing axis (PyTorch calls it ``cat``)."""
    tensors = _check_joinable("concatenate", tensors)
    for t in tensors[1:]:
        _check_same_device("concatenate", tensors[0], t)
    axis = _pick_axis(axis if dim is None else None, dim) % tensors[0].ndim
    for t in tensors[1:]:
        if t.ndim != tensors[0].ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis):
            raise ValueError(f"concatenate: shapes {tensors[0].shape} and {t.shape} differ outside axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = _check_joinable("stack", tensors)
    for t in tensors[1:]:
        _check_same_device("stack", tensors[0], t)
    axis = _pick_axis(axis if dim is None else None, dim) % (tensors[0].ndim + 1)
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors need the same shape, got {tensors[0].shape} and {t.shape}")
    return Stack.apply(*tensors, axis=axis)


class Pad(Function):
    def forward(self, x, pad_width, value):
        self.interior = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape))
        return get_array_module(x).pad(x, pad_width, mode="constant", constant_values=value)

    def backward(self, grad):
        return grad[self.interior], None, None


def pad(x: Tensor, pad_width, value=0.0) -> Tensor:
    """Pad with a constant, NumPy style: ``pad_width`` is an int, a (before, after)
    pair for every axis, or one pair per axis, e.g. ``((0, 0), (0, 0), (1, 1), (1, 1))``
    pads H and W of an NCHW tensor by one pixel."""
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
    return Pad.apply(x, tuple(tuple(int(v) for v in row) for row in widths), value)


# --------------------------------------------------------------------------- dtype, device, copy
class Cast(Function):
    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.in_dtype), None


class ToDevice(Function):
    def forward(self, x, device):
        self.in_device = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, grad):
        return backend.to_device(grad, self.in_device), None


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad


def cast(x: Tensor, dtype) -> Tensor:
    if x.requires_grad and np.dtype(dtype).kind != "f":
        return Tensor.from_op(x.data.astype(dtype), None)  # integers carry no gradient
    return Cast.apply(x, np.dtype(dtype))


def to_device(x: Tensor, device: str) -> Tensor:
    return ToDevice.apply(x, device)


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def compare(a, b, ufunc_name: str) -> Tensor:
    """a < b, a == b, ...: a boolean tensor, outside the graph."""
    _check_same_device(ufunc_name, a, b)
    raw_a = _scalar_if_0d(a.data if isinstance(a, Tensor) else a)
    raw_b = _scalar_if_0d(b.data if isinstance(b, Tensor) else b)
    xp = get_array_module(raw_a, raw_b)
    return Tensor.from_op(xp.asarray(getattr(xp, ufunc_name)(raw_a, raw_b)), None)
