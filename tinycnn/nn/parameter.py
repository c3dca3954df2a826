"""Parameter: a Tensor that a Module learns.

A Parameter is an ordinary :class:`~tinycnn.tensor.Tensor` with
``requires_grad=True``. Being a subclass is what matters: assigning one to a
Module attribute (``self.weight = Parameter(...)``) registers it, so it shows up
in ``module.parameters()``, in the ``state_dict`` and in the optimizer.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A learnable tensor: registered by Modules, updated by optimizers.

    Args:
        data: a Tensor or array (NumPy or CuPy) whose values it takes. The dtype
            is kept (a float64 array gives a float64 parameter); Python lists of
            floats become float32.
        requires_grad: True (the default) for weights the optimizer updates.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data
        dtype = data.dtype if hasattr(data, "dtype") else None
        super().__init__(data, requires_grad=requires_grad, device=backend.device_of(data), dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
