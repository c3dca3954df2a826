"""Batch normalisation layers: BatchNorm1d and BatchNorm2d.

In training mode the layer normalises each channel with the mean and variance
of the current batch, and keeps exponential running averages of them
(``running = (1 - momentum) * running + momentum * batch_stat``, the variance
unbiased). In eval mode it normalises with those running averages instead, so
a single image gives the same answer as it would inside any batch.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Shared machinery; subclasses only say which input ranks they take.

    Parameters (with ``affine=True``): weight ``(C,)`` = 1, bias ``(C,)`` = 0.
    Buffers (with ``track_running_stats=True``): running_mean ``(C,)`` = 0,
    running_var ``(C,)`` = 1, num_batches_tracked ``()`` int64 = 0.
    ``momentum=None`` makes the running stats a cumulative (equal-weight) average.
    """

    _expected_ranks: tuple = ()
    _expected_layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.empty((num_features,), dtype=np.float32))
            self.bias = Parameter(np.empty((num_features,), dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def _batches_counted(self) -> int:
        """``num_batches_tracked`` as a Python int, kept on the host: reading the buffer on a GPU
        every step would wait for the GPU (a host synchronisation per layer per step). The buffer
        is read once, and again whenever it may have changed outside forward: a new array
        (``.to()``), a ``load_state_dict`` (counted by Module), a reset."""
        data, known = self.num_batches_tracked.data, getattr(self, "_host_count_key", None)
        if known is not None and known[0] is data and known[1] == Module.state_loads:
            self._host_count += 1
        else:
            self._host_count = int(data)     # one read (this step's increment included)
            self._host_count_key = (data, Module.state_loads)
        return self._host_count

    def reset_running_stats(self) -> None:
        self._host_count_key = None
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _optional_state_keys(self) -> set:
        # Checkpoints written before PyTorch 0.4.1 have no num_batches_tracked.
        return {"num_batches_tracked"}

    def _check_input(self, x) -> None:
        if x.ndim not in self._expected_ranks:
            ranks = " or ".join(f"{r}-D" for r in self._expected_ranks)
            raise ValueError(
                f"{type(self).__name__}: expected {ranks} input {self._expected_layout}, "
                f"got {x.ndim}-D input of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected {self.num_features} channels in dimension 1, "
                f"got input of shape {tuple(x.shape)}"
            )

    def forward(self, x):
        self._check_input(x)
        # momentum=None means a cumulative moving average: weight 1/n for batch n
        average_factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1  # a counter, not part of the graph
            if self.momentum is None:
                average_factor = 1.0 / self._batches_counted()
        # Batch statistics while training, or when there are no running ones to use.
        use_batch_stats = self.training or self.running_mean is None
        # In training without tracking, pass no running stats so none are updated.
        track = not self.training or self.track_running_stats
        # F.batch_norm takes (N, C) or (N, C, H, W): view a sequence (N, C, L) as (N, C, L, 1)
        sequence_shape = tuple(x.shape) if x.ndim == 3 else None
        if sequence_shape is not None:
            x = F.reshape(x, *sequence_shape, 1)
        out = F.batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            average_factor,
            self.eps,
        )
        return F.reshape(out, *sequence_shape) if sequence_shape is not None else out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` input: statistics per channel C.

    Shapes: input ``(N, C)`` or ``(N, C, L)`` -> output of the same shape.
    """

    _expected_ranks = (2, 3)
    _expected_layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` input: statistics per channel over N, H and W.

    Shapes: input ``(N, C, H, W)`` -> output ``(N, C, H, W)``.
    """

    _expected_ranks = (4,)
    _expected_layout = "(N, C, H, W)"
