"""Differentiable operations, each a Function with its forward and backward.

``tinycnn.functional`` follows ``torch.nn.functional``: import it as ``F``. It is also
importable under PyTorch's path, ``import tinycnn.nn.functional as F`` (the same module).
"""

from .math import (  # noqa: F401
    abs, add, argmax, argmin, broadcast_to, cat, clamp, clip, clone, concatenate, div, exp,
    flatten, getitem, log, matmul, max, maximum, mean, min, minimum, mul, neg, pad,
    permute, pow, relu, reshape, sigmoid, sqrt, squeeze, stack, sub, sum, tanh,
    transpose, unbroadcast, unsqueeze, where,
)
from .activation import hardsigmoid, hardswish, hardtanh, leaky_relu, relu6, silu  # noqa: F401
from .conv import conv2d  # noqa: F401
from .dropout import dropout, dropout2d, stochastic_depth  # noqa: F401
from .encoding import one_hot  # noqa: F401
from .linear import linear  # noqa: F401
from .loss import cross_entropy, log_softmax, nll_loss, softmax  # noqa: F401
from .loss_binary import binary_cross_entropy, binary_cross_entropy_with_logits  # noqa: F401
from .loss_regression import l1_loss, mse_loss  # noqa: F401
from .norm import batch_norm  # noqa: F401
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
