"""Module: the base class of every layer and model.

A Module owns three kinds of things, each in its own ordered dict:

* ``_parameters``: learnable :class:`Parameter` s (weights, biases);
* ``_buffers``: Tensors that are state but not learned (BatchNorm's running
  mean), saved in the ``state_dict`` and moved by ``.to()`` like parameters;
* ``_modules``: child Modules (the layers of a model).

Plain attribute assignment fills them, as in PyTorch::

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(4, 2)                 # -> _modules["fc"]
            self.scale = Parameter(ones(2))        # -> _parameters["scale"]
            self.register_buffer("steps", zeros(1))  # -> _buffers["steps"]

        def forward(self, x):
            return self.fc(x) * self.scale

Everything else (``parameters()``, ``state_dict()``, ``train()``, ``to()``,
``repr``) walks that tree. A parameter's name in the ``state_dict`` is its path
through the tree joined by dots: ``features.0.weight``, exactly as PyTorch
names it, so checkpoints line up key for key.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor, _resolve_dtype, no_grad
from .parameter import Parameter

__all__ = ["Module"]

# What load_state_dict returns (PyTorch returns the same pair).
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _indent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first (for nested reprs)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _split_device_dtype(device, dtype):
    """Let ``to()`` take a dtype as its first argument, as PyTorch's does."""
    if device is not None and not isinstance(device, str):
        if dtype is not None:
            raise TypeError(f"to(): got a dtype twice ({device!r} and {dtype!r})")
        device, dtype = None, device
    device = None if device is None else backend.parse_device(device)
    dtype = _resolve_dtype(dtype)
    if dtype is not None and dtype.kind != "f":
        raise TypeError(f"Module.to() only accepts floating-point dtypes, got {dtype}")
    return device, dtype


class Module:
    """Base class for layers and models; subclasses define ``forward``.

    Attributes:
        training: True in training mode (the default), False after ``eval()``.
            Dropout and BatchNorm read it.
    """

    training: bool
    state_loads = 0   # load_state_dict calls so far, in any module (BatchNorm's host-side count reads it)

    def __init__(self):
        # object.__setattr__ because our own __setattr__ needs these dicts to exist
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward(self, ...) in the subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def _check_initialized(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() ran: call super().__init__() "
                f"first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, (Parameter, Module)):
            self._check_initialized(name)
            self.__dict__.pop(name, None)
            table = self._parameters if isinstance(value, Parameter) else self._modules
            for other in (self._parameters, self._buffers, self._modules):
                if other is not table:
                    other.pop(name, None)
            table[name] = value   # a replaced entry keeps its place (forward order, state_dict order), as PyTorch's
            return
        params = self.__dict__.get("_parameters")
        buffers = self.__dict__.get("_buffers")
        modules = self.__dict__.get("_modules")
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(a Parameter or None is expected; wrap the tensor: Parameter(t))"
                )
            params[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (a Tensor or None is expected)")
            buffers[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} (a Module or None is expected)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Called only when normal lookup fails: look in the three tables.
        for table_name in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(table_name)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table_name in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(table_name)
            if table is not None and name in table:
                del table[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, kind: str, name: str) -> None:
        self._check_initialized(name)
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        known = name in self._parameters or name in self._buffers or name in self._modules
        if hasattr(self, name) and not known:
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a ``None`` placeholder, e.g. for ``bias=False``)."""
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is saved and moved with the module but not learned.

        ``persistent=False`` keeps it out of the ``state_dict``.
        """
        self._check_name("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}")
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer({name!r}): got a Parameter; use register_parameter for learned tensors")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (what ``self.name = module`` does)."""
        self._check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module or None, got {type(module).__name__}")
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, prefix: str = "", memo: set | None = None):
        """Yield ``(path, module)`` for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(prefix + ("." if prefix else "") + name, memo)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Yield ``(name, module)`` for the direct children."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, table_name: str, prefix: str, recurse: bool):
        seen = set()  # a tensor shared by two layers is listed once
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, tensor in getattr(module, table_name).items():
                if tensor is None or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                yield module_prefix + ("." if module_prefix else "") + name, tensor

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield ``(dotted name, Parameter)``, e.g. ``("features.0.weight", p)``."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        """Yield every Parameter of this module and its descendants (give it to an optimizer)."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, then on self (e.g. custom init)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: Dropout passes inputs through, BatchNorm uses running stats."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of all parameters (None, or zeros in place)."""
        for param in self.parameters():
            param.zero_grad(set_to_none)

    # ------------------------------------------------------------------ devices and dtypes
    def to(self, device=None, dtype=None) -> Module:
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``.

        Works in place: each Parameter keeps its identity and only its ``.data``
        (and ``.grad``) array is replaced, so an optimizer built before ``to()``
        still updates the model. Integer buffers (``num_batches_tracked``) keep
        their dtype, as in PyTorch. Accepts ``to("cuda")``, ``to(tinycnn.float64)``
        and ``to(device=..., dtype=...)``.
        """
        device, dtype = _split_device_dtype(device, dtype)

        def convert(array):
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            if device is not None:
                array = backend.to_device(array, device)
            return array

        for module in self.modules():
            for tensor in list(module._parameters.values()) + list(module._buffers.values()):
                if tensor is None:
                    continue
                tensor.data = convert(tensor.data)
                if tensor.grad is not None:
                    tensor.grad.data = convert(tensor.grad.data)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    # ------------------------------------------------------------------ state_dict
    def _state_tensors(self, prefix: str = ""):
        """Yield ``(key, tensor)`` for every saved tensor, in PyTorch's order.

        Per module: its parameters, then its persistent buffers, then its
        children, depth first. ``None`` entries (``bias=False``) are skipped.
        """
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buffer
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_tensors(prefix + name + ".")

    def state_dict(self) -> OrderedDict:
        """Every parameter and persistent buffer as a NumPy array (a copy), by dotted name.

        Keys and shapes are PyTorch's for the same tree, e.g.
        ``features.0.weight (6, 1, 5, 5)``, ``bn.num_batches_tracked ()``.
        Save it with ``numpy.savez(path, **model.state_dict())``.
        """
        return OrderedDict((key, backend.to_numpy(tensor.data).copy()) for key, tensor in self._state_tensors())

    def _optional_state_keys(self) -> set:
        """Names (local to this module) that may be missing from a loaded state_dict."""
        return set()

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be NumPy/CuPy arrays or Tensors. They are copied into the
        existing tensors, keeping each one's dtype and device (a float64
        checkpoint loads into a float32 model as float32).

        Everything is checked before anything is copied. A shape mismatch is
        always an error; with ``strict=True`` (the default) missing and
        unexpected keys are errors too. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state_dict).__name__}")
        own = OrderedDict(self._state_tensors())
        optional = {
            prefix + ("." if prefix else "") + name
            for prefix, module in self.named_modules()
            for name in module._optional_state_keys()
        }
        missing = [key for key in own if key not in state_dict and key not in optional]
        unexpected = [key for key in state_dict if key not in own]
        mismatched = []
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            shape = tuple(getattr(value, "shape", np.shape(value)))
            if shape != tensor.shape:
                mismatched.append(f"{key}: checkpoint has shape {shape}, the model has {tensor.shape}")

        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if mismatched:
            problems.append("Size mismatch: " + "; ".join(mismatched) + ".")
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems)
            )

        Module.state_loads += 1
        with no_grad():
            for key, tensor in own.items():
                if key not in state_dict:
                    continue
                value = state_dict[key]
                array = value.data if isinstance(value, Tensor) else value
                array = backend.to_device(array, tensor.device)
                # In place: the array object (and any optimizer holding it) stays the same.
                tensor.data[...] = array.astype(tensor.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The settings shown inside the parentheses, e.g. ``"4, 2, bias=True"``."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _indent(repr(child), 2))
        main = type(self).__name__ + "("
        if not lines:
            return main + ")"
        if len(lines) == 1 and not self._modules:
            return main + lines[0] + ")"
        return main + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))
