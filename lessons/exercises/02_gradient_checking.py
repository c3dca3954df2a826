"""Exercises for lesson 2 - Gradient checking.

    python lessons/check.py 02

2.1  Fix the planted bug in a softmax's backward.
2.2  Write gradient checking yourself: analytic and numeric gradients of sum(f(x) * r).
2.3  Predict: does gradcheck catch the W-instead-of-W.T bug when W is symmetric?
"""

import numpy as np

import tinycnn


# ---------------------------------------------------------------------------------------
# Exercise 2.1 - fix a backward
#
# softmax along the last axis: s_k = exp(x_k) / sum_j exp(x_j). For an upstream gradient g
# (dL/ds), the gradient with respect to x is
#
#     dL/dx_k = s_k * (g_k - sum_j g_j s_j)
#
# BuggySoftmax below forgets the "- sum_j g_j s_j" term. Its gradients look plausible,
# have the right shape, and are wrong. Write FixedSoftmax.backward so that
# tinycnn.gradcheck passes (the checker runs it on float64 inputs of shape (3, 5)).
# ---------------------------------------------------------------------------------------
class BuggySoftmax(tinycnn.Function):
    """x: (..., K) -> (..., K), softmax over the last axis."""

    def forward(self, x):
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))    # subtract the max: no overflow
        self.s = shifted / shifted.sum(axis=-1, keepdims=True)
        return self.s

    def backward(self, grad):
        return self.s * grad                                   # BUG: a term is missing


class FixedSoftmax(BuggySoftmax):
    def backward(self, grad):
        raise NotImplementedError("exercise 2.1: the softmax backward, fixed")


# ---------------------------------------------------------------------------------------
# Exercise 2.2 - gradient checking by hand
#
# fn takes one float64 Tensor x and returns a Tensor of any shape. Reduce it to one number
# with fixed random weights, L = sum(fn(x) * r), with
#
#     r = np.random.default_rng(seed).standard_normal(output shape)
#
# and return two float64 NumPy arrays of x's shape:
#   analytic: dL/dx from backward() (build L with tinycnn ops, call L.backward(), read x.grad)
#   numeric:  central differences (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), element by
#             element (run fn under tinycnn.no_grad(): no graph is needed there).
# Leave x as you found it (its .data unchanged; you may set x.grad).
# ---------------------------------------------------------------------------------------
def analytic_and_numeric(fn, x, eps=1e-6, seed=0):
    """fn: Tensor -> Tensor; x: float64 Tensor with requires_grad=True. Returns (analytic, numeric)."""
    raise NotImplementedError("exercise 2.2: analytic and numeric gradients")


# ---------------------------------------------------------------------------------------
# Exercise 2.3 - predict
#
# Lesson 2's BuggyMatMul computes y = x @ W and returns grad @ W (instead of grad @ W.T) as
# the gradient for x. Suppose the test happens to use a *symmetric* W (W == W.T), say
# W = A + A.T for a random A. Does tinycnn.gradcheck then catch the bug?
# ---------------------------------------------------------------------------------------
PREDICTED_CAUGHT_WITH_SYMMETRIC_W = None  # True (it fails the check) or False (it passes)
