"""Optimizer: the base class of SGD, Adam and AdamW.

An optimizer holds the parameters in ``param_groups``: a list of dicts, each
with its ``params`` and its own settings (``lr``, ``weight_decay`` ...), as in
PyTorch. That is how one model trains its backbone with a small lr and its head
with a large one::

    SGD([{"params": model.features.parameters(), "lr": 1e-3},
         {"params": model.classifier.parameters()}], lr=1e-2, momentum=0.9)

Per-parameter state (momentum buffers, Adam's moments) lives in ``self.state``,
keyed by the Parameter itself, on the parameter's device. Subclasses write
``step()``; the update changes each parameter's array in place, so the model
(and anything else holding the array) sees the new values.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from ..tensor import Tensor, enable_grad

__all__ = ["Optimizer"]


class _RequiredParameter:
    """Marks a setting without a default (SGD's ``lr``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``state_dict``.

    Args:
        params: an iterable of Parameters, or of dicts ``{"params": ..., "lr": ...}``.
        defaults: the settings a group gets when it does not give its own.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Parameter -> dict of its state
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                "but got a single Tensor (wrap it in a list: [param])"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own settings (e.g. unfreezing layers)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for param in group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (one computed by an op); use a Parameter")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name!r}")
            group.setdefault(name, default)
        already = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in already for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (None by default, or zero them in place)."""
        for group in self.param_groups:
            for param in group["params"]:
                param.zero_grad(set_to_none)

    def step(self, closure=None):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _evaluate(closure):
        """Run ``closure`` (which recomputes the loss) with gradients on; None without one."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------------ state_dict
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [...]}`` as PyTorch.

        Parameters are replaced by their index (counting through all groups in
        order), so the dict describes the optimizer without holding the model.
        Arrays are NumPy copies (saveable with ``numpy.savez``).
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            saved = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            saved["params"] = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                saved["params"].append(index_of[id(param)])
            groups.append(saved)
        state = {}
        for group in self.param_groups:
            for param in group["params"]:
                if param in self.state:
                    state[index_of[id(param)]] = {
                        key: backend.to_numpy(value).copy() if _is_array(value) else copy.deepcopy(value)
                        for key, value in self.state[param].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and state saved by :meth:`state_dict`.

        The groups must have the same sizes as this optimizer's. Arrays are
        copied to each parameter's device, floating ones cast to its dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, this optimizer has {len(self.param_groups)}"
            )
        own_sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if own_sizes != saved_sizes:
            raise ValueError(
                f"loaded state dict's parameter groups hold {saved_sizes} parameters, this optimizer's hold {own_sizes}"
            )
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, param in zip(saved["params"], group["params"]):
                param_of[index] = param

        self.state = {}
        for index, values in state_dict["state"].items():
            index = int(index)
            if index not in param_of:
                raise ValueError(f"loaded state dict has state for parameter {index}, which no group holds")
            param = param_of[index]
            self.state[param] = {key: _to_param(value, param) for key, value in values.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = copy.deepcopy(value)

    def _parameters_to_update(self):
        """``(group, parameter, its state)`` for every parameter that has a gradient, in order.

        The state is a dict (empty before the first step) on the parameter's device.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    yield group, param, self._state_on_device(param)

    def _state_on_device(self, param) -> dict:
        """``param``'s state, its arrays first moved to ``param``'s device: ``Module.to()`` after
        some steps moves the parameters, not this state (CuPy would refuse NumPy buffers)."""
        state = self.state.setdefault(param, {})
        for key, value in state.items():
            if _is_array(value) and backend.device_of(value) != param.device:
                state[key] = backend.to_device(value, param.device)
        return state

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for index, group in enumerate(self.param_groups):
            text += f"\nParameter Group {index}"
            for key in sorted(group):
                if key != "params":
                    text += f"\n    {key}: {group[key]}"
        return text + "\n)"


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or backend.is_cupy_array(value)


def _to_param(value, param: Tensor):
    """A copy of a saved state value on ``param``'s device (floating arrays in its dtype)."""
    if not _is_array(value):
        return copy.deepcopy(value)
    if value.dtype.kind == "f":
        value = value.astype(param.dtype)
    array = backend.to_device(value, param.device)
    return array.copy() if array is value else array
