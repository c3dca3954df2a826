"""Fused element-wise CuPy kernels, each beside its plain CPU reference (part of the fast floor).

Every fusion is an :class:`ElementwiseFusion`: a CuPy ``ElementwiseKernel`` (three
strings of CUDA C++) and a *reference* that computes the same with ordinary array
operations. Calling it dispatches::

    CuPy arrays (one float dtype), TINYCNN_FUSED_KERNELS != 0  ->  the kernel (built on first use)
    anything else (NumPy arrays above all)                     ->  the reference

so on the CPU nothing changes, and on the GPU the tests check kernel == reference.

The fusions, and where they are used:

- ``batch_norm_apply``:    ``centered * scale + bias``               (fast/norm.py, forward)
- ``batch_norm_backward``: ``grad * k1 + centered * k2 + k3``        (fast/norm.py, backward)
- ``relu_backward``:       ``grad * (out > 0)``                      (fast/activation.py, ReLU)
- ``sgd_momentum_step``:   weight decay, momentum buffer, update     (optim/sgd.py dispatches here)
- ``adam_step``:           weight decay, both moments, update        (optim/adam.py dispatches here, Adam and AdamW)

The SGD and Adam references are the in-place form of the update rules in optim/sgd.py and
optim/adam.py, operation for operation (tests/test_floors.py checks they give the same bits).

Not fused here: a convolution's bias add, already folded into the copy that lays
out the GEMM's result (fast/columns.py, ``columns_to_nchw``); a following ReLU
could join that same copy.
"""

from .adam import ADAM_STEP, adam_step
from .batchnorm import BATCH_NORM_APPLY, BATCH_NORM_BACKWARD, batch_norm_apply, batch_norm_backward
from .elementwise import ElementwiseFusion, fused_kernels_enabled
from .relu import RELU_BACKWARD, relu_backward
from .sgd import SGD_MOMENTUM_STEP, sgd_momentum_step

# Every fusion, for the tests (each must compile, and equal its reference on a GPU).
FUSIONS = (BATCH_NORM_APPLY, BATCH_NORM_BACKWARD, RELU_BACKWARD, SGD_MOMENTUM_STEP, ADAM_STEP)

__all__ = [
    "ElementwiseFusion", "fused_kernels_enabled", "FUSIONS",
    "batch_norm_apply", "batch_norm_backward", "relu_backward", "sgd_momentum_step", "adam_step",
]
