"""Differentiable operations, each a Function with its forward and backward.

``tinycnn.functional`` follows ``torch.nn.functional``: import it as ``F``.
"""

from .math import (  # noqa: F401
    abs, add, argmax, broadcast_to, cat, clamp, clip, clone, concatenate, div, exp,
    flatten, getitem, log, matmul, max, maximum, mean, min, minimum, mul, neg, pad,
    permute, pow, relu, reshape, sigmoid, sqrt, squeeze, stack, sub, sum, tanh,
    transpose, unbroadcast, unsqueeze, where,
)
