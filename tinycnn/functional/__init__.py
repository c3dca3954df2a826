"""Differentiable operations, each a Function with its forward and backward.

``tinycnn.functional`` follows ``torch.nn.functional``: import it as ``F``.
"""

from .math import (  # noqa: F401
    abs, add, argmax, broadcast_to, cat, clamp, clip, clone, concatenate, div, exp,
    flatten, getitem, log, matmul, max, maximum, mean, min, minimum, mul, neg, pad,
    permute, pow, relu, reshape, sigmoid, sqrt, squeeze, stack, sub, sum, tanh,
    transpose, unbroadcast, unsqueeze, where,
)
from .activation import leaky_relu  # noqa: F401
from .conv import conv2d  # noqa: F401
from .dropout import dropout  # noqa: F401
from .linear import linear  # noqa: F401
from .loss import cross_entropy, log_softmax, softmax  # noqa: F401
from .norm import batch_norm  # noqa: F401
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
