"""Containers: Sequential (runs its layers in order), ModuleList and ModuleDict (just hold them)."""

from __future__ import annotations

from collections import OrderedDict

from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


def _check_module(value, owner: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner} holds Modules, got {type(value).__name__}")
    return value


class Sequential(Module):
    """Layers applied one after the other: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Children are named ``"0"``, ``"1"``, ... (or by the keys of an OrderedDict),
    which is where state_dict keys like ``features.0.weight`` come from.
    Supports ``len``, iteration, ``seq[i]``, ``seq[i:j]`` (a new Sequential
    sharing the layers) and ``append``.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, _check_module(module, "Sequential"))
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), _check_module(module, "Sequential"))

    def _index(self, index: int) -> int:
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for a {type(self).__name__} of length {size}")
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules.keys())[self._index(index)]
        setattr(self, key, _check_module(module, type(self).__name__))

    def __delitem__(self, index) -> None:
        keys = list(self._modules.keys())
        for key in keys[index] if isinstance(index, slice) else [keys[self._index(index)]]:
            delattr(self, key)
        # renumber 0..n-1 so that append() and state_dict keys stay consecutive, as PyTorch does
        modules = list(self._modules.values())
        self._modules.clear()
        for position, module in enumerate(modules):
            self.add_module(str(position), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        """Add a layer at the end (named by its position)."""
        self.add_module(str(len(self)), _check_module(module, type(self).__name__))
        return self

    def extend(self, modules) -> "Sequential":
        for module in modules:
            self.append(module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(Module):
    """A Python list of Modules that registers them (so their parameters are found).

    A plain ``list`` attribute hides its layers from ``parameters()`` and the
    state_dict; a ModuleList does not. It has no ``forward``: you loop over it.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index: int) -> int:
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for a ModuleList of length {size}")
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(self._index(index))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, str(self._index(index)), _check_module(module, "ModuleList"))

    def __delitem__(self, index) -> None:
        modules = list(self._modules.values())
        del modules[index]
        self._modules.clear()  # renumber 0..n-1, as PyTorch does
        self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), _check_module(module, "ModuleList"))
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, _check_module(module, "ModuleList"))
        self._modules.clear()
        self.extend(modules)


class ModuleDict(Module):
    """A dict of Modules that registers them under their keys (``heads["digits"]`` ->
    state_dict keys ``heads.digits.weight``). Keys keep their insertion order.
    Like ModuleList it has no ``forward``: you pick the module to call.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; it holds {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys are strings (they become state_dict names), got {type(key).__name__}")
        self.add_module(key, _check_module(module, "ModuleDict"))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        """Add ``(key, module)`` pairs from a dict (in its order) or from an iterable of pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module
