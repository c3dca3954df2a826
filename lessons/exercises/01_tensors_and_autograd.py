"""Exercises for lesson 1 - Tensors and autograd.

Fill in each function or class below where it says `raise NotImplementedError(...)`, and set
each PREDICTED_... variable before you run anything. Then check your work:

    python lessons/check.py 01

1.1  A new op with its own backward: softplus(x) = log(1 + exp(x)).
1.2  Central differences for a whole array, in float64.
1.3  Predict: what does .grad hold after two backward() calls?
"""

import numpy as np

import tinycnn


# ---------------------------------------------------------------------------------------
# Exercise 1.1 - a new Function
#
# softplus(x) = log(1 + exp(x)) is a smooth ReLU. Write it as a tinycnn.Function (lesson 2,
# section 3 shows the pattern): `forward` works on a raw NumPy array and saves what
# `backward` needs; `backward` turns dL/d(output) into dL/d(input).
#
# Two things the checker looks for:
#   * the forward must not overflow: softplus(1000) is 1000, not inf (hint: for x > 0,
#     log(1 + exp(x)) = x + log(1 + exp(-x)); np.logaddexp does this for you);
#   * the backward must pass tinycnn.gradcheck in float64. The derivative of softplus is
#     the sigmoid, 1 / (1 + exp(-x)).
# ---------------------------------------------------------------------------------------
class Softplus(tinycnn.Function):
    """x: any shape -> the same shape, log(1 + exp(x)) elementwise."""

    def forward(self, x):
        raise NotImplementedError("exercise 1.1: softplus forward")

    def backward(self, grad):
        raise NotImplementedError("exercise 1.1: softplus backward")


def softplus(x):
    """Apply the op to a Tensor: softplus(tinycnn.tensor(...)) records it in the graph."""
    return Softplus.apply(x)


# ---------------------------------------------------------------------------------------
# Exercise 1.2 - finite differences for a whole array
#
# Lesson 1 nudged one weight at a time by hand. Write the general tool: for a function f
# that takes a float64 NumPy array x and returns a Python float, return the array of
# central differences (f(x + h e_i) - f(x - h e_i)) / (2h), one per element of x.
# x keeps its shape; do not leave it changed when you return. The checker compares your
# result with exact derivatives to 1e-8 - a one-sided difference (f(x + h) - f(x)) / h is
# not accurate enough, which is the point.
# ---------------------------------------------------------------------------------------
def numeric_gradient(f, x, h=1e-6):
    """f: float64 array (any shape) -> float; returns df/dx as an array of x's shape."""
    raise NotImplementedError("exercise 1.2: central differences")


# ---------------------------------------------------------------------------------------
# Exercise 1.3 - predict
#
#     w = tinycnn.tensor(3.0, requires_grad=True)
#     (w * w).backward()           # first graph: L1 = w^2
#     (5 * w + w).backward()       # a second graph: L2 = 5w + w (w is used twice)
#
# What number does w.grad hold afterwards? Work it out on paper, then set it here. The
# checker runs these three lines.
# ---------------------------------------------------------------------------------------
PREDICTED_W_GRAD = None  # a number
