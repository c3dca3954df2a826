"""Tensor and the reverse-mode autograd engine.

A :class:`Tensor` wraps a raw array (``numpy.ndarray`` on the CPU, ``cupy.ndarray``
on a GPU) in ``.data``. Every differentiable operation is a :class:`Function`:
its ``forward`` computes on raw arrays and remembers what its ``backward`` will
need; its ``backward`` turns the gradient of the output into gradients of the
inputs. Applying a Function to Tensors records it as the output's ``_ctx`` (its
"creator"), so the Tensors and Functions of a computation form a graph.

``loss.backward()`` then

1. sorts the graph so that every tensor comes after all tensors computed from it
   (reverse topological order), with an explicit stack, never recursion, so a
   chain of 100,000 ops is fine;
2. walks that order once, calling each Function's ``backward`` and summing the
   gradients that reach a tensor along different paths;
3. adds the gradients of leaf tensors (the ones you created, such as weights)
   into their ``.grad``, as PyTorch does, so two backward calls accumulate;
4. frees each Function's saved arrays once used, unless ``retain_graph=True``.

The ops themselves live in :mod:`tinycnn.functional.math`; the methods below
(``+``, ``@``, ``.sum()`` ...) only call them.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np

from . import backend

__all__ = [
    "Tensor",
    "Function",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "zeros",
    "ones",
    "full",
    "zeros_like",
    "ones_like",
    "randn",
    "rand",
    "randint",
    "arange",
    "linspace",
    "ValuesIndices",
]


# --------------------------------------------------------------------------- grad mode
_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside a :func:`no_grad` block."""
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = mode
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Context manager (and decorator) in which ops record no graph.

    Use it for evaluation and for parameter updates::

        with tinycnn.no_grad():
            logits = model(images)
    """
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager that turns graph recording back on inside ``no_grad``."""
    return _set_grad_enabled(True)


# --------------------------------------------------------------------------- Function
class Function:
    """One differentiable operation, written on raw arrays.

    Subclasses implement

    * ``forward(self, *arrays, **params) -> array``: compute the output and keep
      on ``self`` whatever ``backward`` needs (inputs, masks, shapes);
    * ``backward(self, grad_output) -> grad or tuple of grads``: one gradient per
      positional input of ``forward``, each with that input's shape (``None``
      for an input that needs none; ``self.needs_input_grad[i]`` says which do).

    Call an op with ``MyFunction.apply(*inputs, **params)``: inputs may be
    Tensors or plain constants (Python numbers, arrays), which get no gradient.
    """

    inputs: tuple | None = None
    needs_input_grad: tuple = ()

    @classmethod
    def apply(cls, *inputs, **params) -> "Tensor":
        fn = cls()
        fn.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        raw_inputs = [x.data if isinstance(x, Tensor) else x for x in inputs]
        with backend.device_scope(*raw_inputs):   # CuPy allocates on the current GPU: make it the inputs'
            output = fn.forward(*raw_inputs, **params)
            output = _as_array(output, raw_inputs)
        if _grad_enabled and any(fn.needs_input_grad):
            fn.inputs = inputs
            return Tensor.from_op(output, fn)
        return Tensor.from_op(output, None)

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def release(self) -> None:
        """Drop the saved arrays (called once the backward pass has used them)."""
        needs = self.needs_input_grad
        self.__dict__.clear()
        self.needs_input_grad = needs
        self.inputs = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _as_array(value, like_arrays):
    """Make ``value`` an array of the same module as the inputs.

    NumPy returns scalars (``np.float32``) instead of 0-d arrays from ops on
    0-d arrays; the engine wants arrays everywhere.
    """
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return value
    xp = backend.get_array_module(*like_arrays)
    return xp.asarray(value)


# --------------------------------------------------------------------------- dtypes
def _resolve_dtype(dtype):
    """A ``numpy.dtype`` from a dtype, its type or its name ("float64"); None stays None."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: expected a NumPy dtype or a name like 'float32'") from None


def _default_dtype(array_dtype) -> np.dtype:
    """float data -> float32; integer and boolean data keep their kind."""
    kind = array_dtype.kind
    if kind == "f":
        return np.dtype(np.float32)
    if kind in "iub":
        return array_dtype
    raise TypeError(
        f"tinycnn tensors hold floating, integer or boolean data; got dtype {array_dtype} "
        "(complex, string and object arrays are not supported)"
    )


# --------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes:
        data: the raw ``numpy.ndarray`` (CPU) or ``cupy.ndarray`` (GPU).
        requires_grad: whether gradients flow to this tensor.
        grad: a Tensor of the same shape holding the accumulated gradient
            (leaf tensors only, or after ``retain_grad()``), else None.
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__
    _post_accumulate_hooks = ()  # per tensor once one is registered (see register_post_accumulate_grad_hook)

    def __init__(self, data, requires_grad: bool = False, device=None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if device is None:
            device = backend.device_of(data)
        xp = backend.array_module(device)
        dtype = _resolve_dtype(dtype)
        if xp is np:
            array = np.array(backend.to_numpy(data) if backend.is_cupy_array(data) else data, dtype=dtype, copy=True)
        else:
            with backend._cuda_device(backend.parse_device(device)):
                array = xp.array(data, dtype=dtype, copy=True)
        if dtype is None and array.dtype != _default_dtype(array.dtype):
            with backend.device_scope(array):   # the cast's copy on the array's GPU, not the current one
                array = array.astype(_default_dtype(array.dtype))
        self.data = array
        self.grad: Tensor | None = None
        self._ctx: Function | None = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def from_op(cls, array, ctx: Function | None) -> "Tensor":
        """Wrap an op's output array without copying or converting it."""
        out = cls.__new__(cls)
        out.data = array
        out.grad = None
        out._ctx = ctx
        out._retains_grad = False
        out.requires_grad = ctx is not None
        return out

    # ------------------------------------------------------------------ facts
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not computed by a recorded op (inputs, weights)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        """The Function that computed this tensor (None for leaves)."""
        return self._ctx

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape, or the length of one dimension (PyTorch's ``size``)."""
        return self.shape if dim is None else self.shape[dim]

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None) -> "Tensor":
        """This tensor on another device and/or with another dtype (differentiable).

        ``to("cuda")``, ``to(tinycnn.float64)`` and ``to(device, dtype)``, as PyTorch's.
        """
        if device is not None and not isinstance(device, str):   # to(dtype): PyTorch's other form
            if dtype is not None:
                raise TypeError(f"to(): got a dtype twice ({device!r} and {dtype!r})")
            device, dtype = None, device
        out = self
        if dtype is not None and _resolve_dtype(dtype) != self.dtype:
            out = _math.cast(out, _resolve_dtype(dtype))
        if device is not None and backend.parse_device(device) != self.device:
            out = _math.to_device(out, backend.parse_device(device))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)

    def long(self) -> "Tensor":
        return self.to(dtype=np.int64)

    def int(self) -> "Tensor":
        return self.to(dtype=np.int32)

    def bool(self) -> "Tensor":
        return self.to(dtype=np.bool_)

    def contiguous(self) -> "Tensor":
        """This tensor (tinycnn's ops accept any memory layout, so there is nothing to do)."""
        return self

    # A one-element tensor converts to a Python number, so int(t), float(t) and
    # classes[label] (an index) work as in PyTorch.
    def __int__(self) -> int:
        return int(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be used as an index, this one is {self.dtype}")
        return int(self.item())

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory, no gradient)."""
        return Tensor.from_op(self.data, None)

    def clone(self) -> "Tensor":
        """A copy of the data that stays in the graph."""
        return _math.clone(self)

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, this one is {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` each time backward has added this leaf's gradient into ``.grad``.

        The engine visits a tensor once per backward, after every path to it has been
        summed, so when the hook runs ``self.grad`` is final for this backward. Data
        parallelism uses it to start sending a gradient while the backward goes on
        (:mod:`tinycnn.distributed`). Returns a handle whose ``remove()`` takes the hook off.
        """
        if not self.is_leaf:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors (weights, inputs) accumulate "
                               "a .grad; this tensor was computed by " + type(self._ctx).__name__)
        hooks = self.__dict__.setdefault("_post_accumulate_hooks", [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient: None (the default), or zeros in place (the array is kept)."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad.data[...] = 0

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf.

        ``gradient`` is d(something)/d(self); it may be omitted for a
        one-element tensor (a loss), where it is 1.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation has requires_grad=True (or it ran under no_grad())"
            )
        xp = backend.get_array_module(self.data)
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element output, this one has shape {self.shape}; "
                    "pass gradient= of that shape, or reduce it first (e.g. .sum())"
                )
            seed = xp.ones_like(self.data)
        else:
            seed = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=self.dtype)
            if tuple(seed.shape) != self.shape:
                raise ValueError(f"backward(): gradient has shape {tuple(seed.shape)}, the tensor has {self.shape}")

        grads = {id(self): seed}  # tensor id -> gradient of the output w.r.t. it
        for node in _reverse_topological_order(self):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._ctx is None or node._retains_grad:
                with backend.device_scope(grad):
                    node._accumulate_grad(grad)
                for hook in node._post_accumulate_hooks:  # the gradient is final now
                    hook(node)
            fn = node._ctx
            if fn is None:
                continue
            if fn.inputs is None:
                raise RuntimeError(
                    "Trying to backward through the graph a second time: its saved arrays were "
                    "freed by the first backward(); call backward(retain_graph=True) the first time"
                )
            with backend.device_scope(grad):   # the backward runs where its output's gradient is
                input_grads = fn.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for inp, inp_grad, needed in zip(fn.inputs, input_grads, fn.needs_input_grad):
                if not needed or inp_grad is None:
                    continue
                inp_grad = _as_array(inp_grad, [grad])
                if inp_grad.dtype != inp.data.dtype:
                    inp_grad = inp_grad.astype(inp.data.dtype)
                if tuple(inp_grad.shape) != inp.shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {tuple(inp_grad.shape)} "
                        f"for an input of shape {inp.shape}"
                    )
                key = id(inp)
                # out-of-place sum: a backward may hand the same array to two inputs
                with backend.device_scope(inp_grad):
                    grads[key] = grads[key] + inp_grad if key in grads else inp_grad
            if not retain_graph:
                fn.release()

    def _accumulate_grad(self, grad) -> None:
        if self.grad is None:
            # copy: the array may be shared with another input's gradient
            self.grad = Tensor.from_op(grad.copy(), None)
        else:
            self.grad.data = self.grad.data + grad

    # ------------------------------------------------------------------ operators
    # Each one only calls the op in functional/math.py, where its backward is.
    def __add__(self, other): return _math.add(self, other)
    def __radd__(self, other): return _math.add(other, self)
    def __sub__(self, other): return _math.sub(self, other)
    def __rsub__(self, other): return _math.sub(other, self)
    def __mul__(self, other): return _math.mul(self, other)
    def __rmul__(self, other): return _math.mul(other, self)
    def __truediv__(self, other): return _math.div(self, other)
    def __rtruediv__(self, other): return _math.div(other, self)
    def __pow__(self, other): return _math.pow(self, other)
    def __rpow__(self, other): return _math.pow(other, self)
    def __matmul__(self, other): return _math.matmul(self, other)
    def __rmatmul__(self, other): return _math.matmul(other, self)
    def __neg__(self): return _math.neg(self)
    def __getitem__(self, index): return _math.getitem(self, index)

    # comparisons give boolean tensors and no gradient
    def __lt__(self, other): return _math.compare(self, other, "less")
    def __le__(self, other): return _math.compare(self, other, "less_equal")
    def __gt__(self, other): return _math.compare(self, other, "greater")
    def __ge__(self, other): return _math.compare(self, other, "greater_equal")
    def __eq__(self, other): return _math.compare(self, other, "equal")
    def __ne__(self, other): return _math.compare(self, other, "not_equal")

    # integer and logical operators: no gradient (an error, not a silent cut, if one was wanted)
    def __mod__(self, other): return _no_grad_op(self, other, "remainder", "%")
    def __rmod__(self, other): return _no_grad_op(other, self, "remainder", "%")
    def __floordiv__(self, other): return _no_grad_op(self, other, "floor_divide", "//")
    def __rfloordiv__(self, other): return _no_grad_op(other, self, "floor_divide", "//")
    def __and__(self, other): return _no_grad_op(self, other, "bitwise_and", "&")
    def __or__(self, other): return _no_grad_op(self, other, "bitwise_or", "|")
    def __xor__(self, other): return _no_grad_op(self, other, "bitwise_xor", "^")
    def __invert__(self): return Tensor.from_op(backend.get_array_module(self.data).invert(self.data), None)

    def exp(self): return _math.exp(self)
    def log(self): return _math.log(self)
    def sqrt(self): return _math.sqrt(self)
    def tanh(self): return _math.tanh(self)
    def sigmoid(self): return _math.sigmoid(self)
    def relu(self): return _math.relu(self)
    def abs(self): return _math.abs(self)
    def clip(self, min=None, max=None): return _math.clip(self, min, max)
    clamp = clip

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """PyTorch's ``max``: the largest value with no ``dim``; with ``dim`` (``x.max(1)``) a
        ``(values, indices)`` pair. NumPy's form, ``x.max(axis=1)``, gives the values only."""
        return _max_or_min(self, "max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Like :meth:`max`, for the smallest value."""
        return _max_or_min(self, "min", dim, keepdim, axis, keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Index of the largest value along ``dim`` (of the flattened tensor without one); int64."""
        return _math.argmax(self, axis, bool(keepdims or keepdim), dim=dim)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _math.argmin(self, axis, bool(keepdims or keepdim), dim=dim)

    # PyTorch's names of the comparisons: boolean tensors, no gradient
    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other

    def reshape(self, *shape): return _math.reshape(self, *shape)
    view = reshape
    def view_as(self, other): return _math.reshape(self, *other.shape)
    def reshape_as(self, other): return _math.reshape(self, *other.shape)
    def transpose(self, dim0, dim1): return _math.transpose(self, dim0, dim1)
    def permute(self, *dims): return _math.permute(self, *dims)
    def flatten(self, start_dim=0, end_dim=-1): return _math.flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return _math.squeeze(self, dim)
    def unsqueeze(self, dim): return _math.unsqueeze(self, dim)
    def expand(self, *shape): return _math.broadcast_to(self, *shape)

    @property
    def T(self) -> "Tensor":
        """All dimensions reversed (the matrix transpose for 2-D tensors)."""
        return _math.permute(self, *reversed(range(self.ndim)))

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    __hash__ = object.__hash__  # tensors are identities (== is elementwise)


class _HookHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` takes the hook off."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _no_grad_op(a, b, ufunc_name: str, symbol: str) -> Tensor:
    """``a % b``, ``a & b`` ...: computed outside the graph; refused when a gradient was wanted."""
    for x in (a, b):
        if isinstance(x, Tensor) and x.requires_grad and is_grad_enabled():
            raise RuntimeError(f"'{symbol}' has no gradient in tinycnn, and this tensor requires one; "
                               "use it on .detach()ed or integer tensors")
    return _math.compare(a, b, ufunc_name)


class ValuesIndices(NamedTuple):
    """What ``x.max(dim)``, ``x.min(dim)``, ``tinycnn.max(x, dim)`` return, as in PyTorch:
    unpack it (``values, indices = x.max(1)``) or read ``.values`` / ``.indices``."""

    values: Tensor
    indices: Tensor


def _max_or_min(x: Tensor, which: str, dim, keepdim, axis, keepdims):
    """max/min the PyTorch way (a pair for a dim) or the NumPy way (``axis=``: values only)."""
    if dim is None:
        reduce = _math.max if which == "max" else _math.min
        return reduce(x, axis, bool(keepdims))                   # all elements, or NumPy's axis= form
    if axis is not None:
        raise TypeError(f"{which}(): give either dim (PyTorch: values and indices) or axis (NumPy: values), not both")
    if isinstance(dim, Tensor):                                  # torch.max(a, b): the elementwise maximum
        return (_math.maximum if which == "max" else _math.minimum)(x, dim)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{which}(dim): dim must be an int, got {type(dim).__name__} {dim!r}")
    keepdim = bool(keepdim or keepdims)
    # values: the max reduction (a gradient shared by tied maxima; PyTorch's goes to the index)
    values = (_math.max if which == "max" else _math.min)(x, dim, keepdim)
    indices = (_math.argmax if which == "max" else _math.argmin)(x, dim, keepdim)
    return ValuesIndices(values, indices)


def _reverse_topological_order(root: Tensor) -> list:
    """Tensors of the graph ending at ``root``, each before all its inputs.

    Iterative depth-first search: a node goes on the ``order`` list only after
    every tensor it was computed from; reversing the list gives outputs first.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None and node._ctx.inputs is not None:
            for inp in node._ctx.inputs:
                if isinstance(inp, Tensor) and inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    order.reverse()
    return order


# --------------------------------------------------------------------------- constructors
def tensor(data, requires_grad: bool = False, device="cpu", dtype=None) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, list or array).

    Floating data becomes float32 unless ``dtype`` is given; integer and boolean
    data keep their kind.
    """
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape must be non-negative integers, got {shape}")
    return tuple(int(n) for n in shape)


def _filled(fill, shape, dtype, device, requires_grad) -> Tensor:
    xp = backend.array_module(device)
    dtype = _resolve_dtype(dtype) or np.dtype(np.float32)
    with _on(device):
        array = xp.full(shape, fill, dtype=dtype)
    return Tensor.from_op(array, None).requires_grad_(requires_grad)


def _on(device):
    """Context that makes ``device`` current for CuPy allocations (no-op on CPU)."""
    device = backend.parse_device(device)
    if device == "cpu":
        return contextlib.nullcontext()
    return backend._cuda_device(device)


def zeros(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(0, _shape_args(shape), dtype, device, requires_grad)


def ones(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(1, _shape_args(shape), dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(fill_value, _shape_args((shape,)), dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _filled(0, t.shape, dtype or t.dtype, t.device, requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _filled(1, t.shape, dtype or t.dtype, t.device, requires_grad)


def _random(draw, shape, dtype, device, requires_grad, generator=None) -> Tensor:
    xp = backend.array_module(device)
    dtype = _resolve_dtype(dtype) or np.dtype(np.float32)
    if generator is not None:      # a tinycnn.Generator draws on the CPU; the result moves to the device
        array = backend.to_device(draw(generator.rng, shape).astype(dtype, copy=False), backend.parse_device(device))
        return Tensor.from_op(array, None).requires_grad_(requires_grad)
    with _on(device):
        array = draw(backend.get_rng(xp, device), shape).astype(dtype, copy=False)
    return Tensor.from_op(array, None).requires_grad_(requires_grad)


def randn(*shape, dtype=None, device="cpu", requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from tinycnn's seeded generator (or ``generator``)."""
    return _random(lambda rng, s: rng.standard_normal(s), _shape_args(shape), dtype, device, requires_grad, generator)


def rand(*shape, dtype=None, device="cpu", requires_grad=False, generator=None) -> Tensor:
    """Uniform samples in [0, 1) from tinycnn's seeded generator (or ``generator``)."""
    return _random(lambda rng, s: rng.random(s), _shape_args(shape), dtype, device, requires_grad, generator)


def randint(*args, size=None, dtype=np.int64, device="cpu", generator=None) -> Tensor:
    """Integers drawn uniformly from [low, high), PyTorch's signature:

    ``randint(high, size)``, ``randint(low, high, size)`` (size a tuple), or size as a keyword.
    """
    if size is None and args:
        *args, size = args
    if size is None or len(args) not in (1, 2):
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got {len(args) + (size is not None)} "
                        "arguments")
    low, high = (0, args[0]) if len(args) == 1 else args
    if not low < high:
        raise ValueError(f"randint: needs low < high, got low={low}, high={high}")
    shape = _shape_args((size,))
    return _random(lambda rng, s: rng.integers(low, high, size=s), shape, dtype, device, False, generator)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Evenly spaced values in [start, end): int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    xp = backend.array_module(device)
    with _on(device):
        array = xp.arange(start, end, step)
        if dtype is None:
            dtype = _default_dtype(np.dtype(array.dtype))
        array = array.astype(_resolve_dtype(dtype))
    return Tensor.from_op(array, None).requires_grad_(requires_grad)


def linspace(start, end, steps, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    with _on(device):
        array = xp.linspace(start, end, steps).astype(_resolve_dtype(dtype) or np.float32)
    return Tensor.from_op(array, None).requires_grad_(requires_grad)


# The ops behind the methods above; imported last because they build on Tensor.
from .functional import math as _math  # noqa: E402
