"""Exercises for lesson 4 - Pooling, ReLU and softmax cross-entropy.

    python lessons/check.py 04

4.1  Derive softmax cross-entropy's gradient and implement loss and gradient, stably.
4.2  Predict: where does overlapping max pooling send the gradient?
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# Exercise 4.1 - softmax cross-entropy, forward and backward
#
# For logits z (N, K) and integer labels y (N,), the mean loss is
#
#     L = (1/N) sum_n -log p[n, y_n],     p[n, k] = exp(z[n, k]) / sum_j exp(z[n, j])
#
# First derive dL/dz on paper (write log p[n, k] = z[n, k] - log sum_j exp(z[n, j]) and
# differentiate; you should get (p - onehot(y)) / N). Then return both the loss (a float)
# and the gradient (N, K), using plain NumPy, in a way that stays finite for logits of
# size 1000 (lesson 4, section 6: subtract each row's max first).
# The checker compares both with F.cross_entropy and its backward, and runs gradcheck.
# ---------------------------------------------------------------------------------------
def softmax_cross_entropy(z, y):
    """z (N, K) float, y (N,) int -> (mean loss as a float, dL/dz (N, K))."""
    raise NotImplementedError("exercise 4.1: softmax cross-entropy: loss and gradient")


# ---------------------------------------------------------------------------------------
# Exercise 4.2 - predict
#
# The 4x4 feature map of lesson 4, section 2:
#
#     1 3 2 0
#     4 2 1 5
#     0 1 7 2
#     2 6 3 1
#
# Max pooling with a 2x2 window and stride 1 (windows overlap: the output is 3x3). Send
# back a gradient of ones, out.backward(ones). How much gradient lands on the 7? And on
# the 6?
# ---------------------------------------------------------------------------------------
PREDICTED_GRADIENT_AT_7 = None  # a number
PREDICTED_GRADIENT_AT_6 = None  # a number
