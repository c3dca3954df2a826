"""FAST FLOOR: everything in tinycnn that exists only for speed, each piece beside the
reference op it must equal.

The reference floor (``tinycnn/functional/``, ``tinycnn/optim/``) is the engine as a student
writes it: each op on the whole batch, forward beside backward. This package holds what makes
it a real tool, and the tests hold every piece equal to its reference (tests/test_floors.py):

    conv.py        conv2d in chunks that stay in the cache; the input gradient as a full convolution
    depthwise.py   depthwise conv2d: the grouped GEMM on large maps, channels-last multiply-adds on small ones
    columns.py     the column layout for fast copies, and the reused scratch arrays (Workspace)
    workers.py     worker threads, one per core: convolution chunks, parts of a batch
    activation.py  ReLU, pool.py max pooling, norm.py batch norm: a large batch split over the cores
    linear.py      the linear layer's products with BLAS kept off the workers' cores
    kernels/       fused CuPy kernels (batch norm, ReLU backward, SGD and Adam updates) with their CPU references
    allocator.py   glibc malloc tuning (applied by the ``tinycnn`` command and the benchmarks)
    switch.py      the switch: ``TINYCNN_FAST=0`` or ``tinycnn.set_fast(False)`` runs the reference floor

The reference floor names this package only at its dispatch points, one line per op::

    if fast.enabled():
        return fast.Conv2d.apply(x, weight, bias, ...)

This package imports the backend, the autograd engine (``Function``) and the shared window
arithmetic (``tinycnn/windows.py``); never ``nn/``, the training loop or the command line.
"""

from .activation import ReLU
from .allocator import keep_freed_memory
from .conv import Conv2d
from .depthwise import DepthwiseConv2d, depthwise_conv2d
from .kernels import adam_step, sgd_momentum_step
from .linear import Linear
from .norm import BatchNorm
from .pool import MaxPool2d
from .switch import enabled, fast_floor, reference_floor, set_fast
from .workers import get_num_threads, set_num_threads

__all__ = ["enabled", "set_fast", "reference_floor", "fast_floor", "describe", "keep_freed_memory",
           "get_num_threads", "set_num_threads", "Conv2d", "DepthwiseConv2d", "depthwise_conv2d", "ReLU", "MaxPool2d",
           "BatchNorm", "Linear",
           "sgd_momentum_step", "adam_step"]


def describe() -> str:
    """One line on the active floor, for ``tinycnn info``."""
    from . import allocator

    if not enabled():
        return "reference (TINYCNN_FAST=0 or tinycnn.set_fast(False): whole-batch ops, as the lessons read them)"
    return (f"fast (chunks on the workers, fused kernels on a GPU; malloc tuning "
            f"{'on' if allocator.malloc_tuned else 'off'}); TINYCNN_FAST=0 for the reference floor")
