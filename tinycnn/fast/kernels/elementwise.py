"""A fused element-wise operation: one CUDA kernel, and the plain array code it must equal.

Why fuse? On a GPU an element-wise expression such as ``grad * k1 + centered * k2 + k3``
is memory-bound: each NumPy-style operation is its own kernel that reads its inputs from
GPU memory and writes a temporary back, so that line makes four passes over memory and
three temporaries. Written as *one* CuPy ``ElementwiseKernel``, every element is read
once, combined in registers and written once::

    kernel = cupy.ElementwiseKernel(
        "T grad, T centered, T k1, T k2, T k3",     # inputs  (T: one float type for all)
        "T grad_x",                                 # outputs
        "grad_x = grad * k1 + centered * k2 + k3",  # C++ run for every element i
        "tinycnn_batch_norm_backward")

CuPy broadcasts the arguments like NumPy (a ``(1, C, 1, 1)`` array meets an
``(N, C, H, W)`` one), binds ``T`` to their dtype, casts Python numbers given for
``T`` parameters to it, and compiles the kernel (NVRTC) the first time it sees a new
dtype, caching the binary on disk.

:class:`ElementwiseFusion` keeps the kernel's three strings beside a *reference*: the
same formula written with ordinary array operations, which runs on NumPy and CuPy
alike. The CPU always runs the reference (so the fused kernels change no CPU number),
and the GPU tests check that kernel and reference agree.

A fusion either returns new arrays (``updates_in_place=False``: call it with the
inputs; CuPy allocates the outputs in the broadcast shape) or updates arrays in place
(``updates_in_place=True``: call it with the inputs, then the outputs, which the
operation may read before writing, as an optimizer reads and writes its parameters).

Set the environment variable ``TINYCNN_FUSED_KERNELS=0`` to run the references on
the GPU too (to compare speed, or to rule a kernel out when hunting a bug).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from ... import backend
from ...env import flag
from ..workers import batch_parts, map_parts

__all__ = ["ElementwiseFusion", "Param", "fused_kernels_enabled", "parse_params"]


def fused_kernels_enabled() -> bool:
    """False when the environment variable ``TINYCNN_FUSED_KERNELS`` is ``0`` (read at every call)."""
    return flag("TINYCNN_FUSED_KERNELS", True, "1: fused CuPy kernels on the GPU; 0: their plain references")


@dataclass(frozen=True)
class Param:
    """One parameter of a kernel, as CuPy reads ``"T grad"``: a type and a name."""

    type: str   # "T" (the type placeholder) or a NumPy dtype name such as "bool" or "float32"
    name: str


def parse_params(text: str) -> tuple:
    """``"T grad, bool nesterov"`` -> ``(Param("T", "grad"), Param("bool", "nesterov"))``."""
    params = []
    for part in text.split(","):
        words = part.split()
        if len(words) != 2:
            raise ValueError(f"kernel parameter {part.strip()!r}: expected 'type name', e.g. 'T grad' "
                             "('raw' parameters are not used in tinycnn's fusions)")
        params.append(Param(*words))
    return tuple(params)


# Floating dtypes the kernels are written for (T must be one of them).
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class ElementwiseFusion:
    """A fused element-wise kernel and its plain reference.

    Attributes:
        name: the kernel's name (CuPy's cache and profiler show it).
        in_params, out_params, operation: ``cupy.ElementwiseKernel``'s three strings.
        reference: the same computation with ``xp`` operations, taking the same
            arguments as the kernel; returns the output(s) (a tuple when there are several).
            A reference with one new output also takes ``result=``, an array to write
            it into (the CPU computes a large batch in parts, one per core).
        updates_in_place: False: called with the inputs only, returns new arrays.
            True: called with the inputs and then the outputs, updated in place.
        scalars: names of the inputs that are numbers, not arrays (the others are
            arrays); only the stand-alone CUDA source (``standalone.py``) needs this.
    """

    name: str
    in_params: str
    out_params: str
    operation: str
    reference: Callable
    updates_in_place: bool = False
    scalars: tuple = ()
    _kernel: object = field(default=None, repr=False)  # the cupy.ElementwiseKernel, once built

    # Parsed once, on first use: every call checks its argument count against them.
    @cached_property
    def inputs(self) -> tuple:
        return parse_params(self.in_params)

    @cached_property
    def outputs(self) -> tuple:
        return parse_params(self.out_params)

    @cached_property
    def arguments(self) -> tuple:
        """What a call takes: the inputs, then (when updating in place) the outputs."""
        return self.inputs + (self.outputs if self.updates_in_place else ())

    def uses_kernel(self, *args) -> bool:
        """Whether ``self(*args)`` runs the CUDA kernel (else the reference).

        The kernel runs when fused kernels are enabled and every array argument is a
        CuPy array of one float dtype (float32 or float64). Anything else, NumPy
        arrays above all, goes to the reference.
        """
        arrays = [a for a in args if isinstance(a, np.ndarray) or backend.is_cupy_array(a)]
        if not arrays or not all(backend.is_cupy_array(a) for a in arrays):
            return False  # NumPy data (or a mix): the reference
        if not fused_kernels_enabled():
            return False
        dtypes = {np.dtype(a.dtype) for a in arrays}
        return len(dtypes) == 1 and dtypes.pop() in _KERNEL_DTYPES

    def kernel(self):
        """The ``cupy.ElementwiseKernel``, built on first use and kept (CuPy compiles it
        per GPU and per dtype when called, and caches the binaries on disk)."""
        if self._kernel is None:
            cupy = backend._import_cupy()
            self._kernel = cupy.ElementwiseKernel(self.in_params, self.out_params, self.operation, self.name)
        return self._kernel

    def __call__(self, *args):
        if len(args) != len(self.arguments):
            raise TypeError(f"{self.name}: expected {len(self.arguments)} arguments "
                            f"({', '.join(p.name for p in self.arguments)}), got {len(args)}")
        if self.uses_kernel(*args):
            return self.kernel()(*args)
        if not self.updates_in_place and len(self.outputs) == 1:
            return self._reference_over_batch(args)
        return self.reference(*args)

    def _reference_over_batch(self, args):
        """The reference, with a large NumPy batch split by images over the CPU's workers
        (fast/workers.py); each part writes its slice of one output array (``result=``)."""
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        if not arrays:
            return self.reference(*args)
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        parts = batch_parts(max(arrays, key=lambda a: a.size))
        if len(parts) == 1:
            return self.reference(*args)
        result = np.empty(shape, dtype=np.result_type(*arrays))

        def run(part):
            # operands with the whole batch are cut to the part; broadcast ones ((1, C, 1, 1)) are not
            sliced = [a[part] if isinstance(a, np.ndarray) and a.shape[:1] == shape[:1] and a.ndim == len(shape)
                      else a for a in args]
            self.reference(*sliced, result=result[part])

        map_parts(run, parts)
        return result
