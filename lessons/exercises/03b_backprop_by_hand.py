"""Exercises for lesson 3b - Backprop through a CNN by hand.

    python lessons/check.py 03b

3b.1  col2im: add every column back onto its window (the adjoint of im2col).
3b.2  Max pooling's backward: route each gradient to the window's maximum.
3b.3  Batch norm's backward, derived and written in three lines.
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# Exercise 3b.1 - col2im
#
# im2col (tinycnn/functional/conv.py) copies every window of the padded input into a
# column: (N, C, H, W) -> (N, C*KH*KW, OH*OW), rows ordered (c, u, v), window (i, j) in
# column i*OW + j. Its backward, col2im, sends each column's numbers back to the pixels
# they were copied from - and since windows overlap, a pixel gets the *sum* of all its
# copies. Write it (loops over the windows, or over the KH*KW offsets as tinycnn does).
#
# The checker verifies the adjoint identity  <im2col(x), cols> = <x, col2im(cols)>  for
# random x and cols, and compares with tinycnn's col2im. With it, a convolution's input
# gradient is col2im(W.T @ grad): that is all the reference floor's backward does.
# ---------------------------------------------------------------------------------------
def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """cols (N, C*KH*KW, OH*OW), x_shape (N, C, H, W) -> (N, C, H, W)."""
    raise NotImplementedError("exercise 3b.1: col2im")


# ---------------------------------------------------------------------------------------
# Exercise 3b.2 - max pooling's backward
#
# Forward: out[n, c, i, j] = max of the k x k window at (i*stride, j*stride) (no padding).
# Backward: the whole grad[n, c, i, j] goes to the one input that was the window's
# maximum; the others get nothing from that window. Windows may overlap (stride < k):
# then an input can win several windows and collects every gradient it won (add).
# On a tie, give it to the first maximum in row-major order inside the window (what
# np.argmax returns on the flattened window; tinycnn and PyTorch do the same).
# ---------------------------------------------------------------------------------------
def max_pool_backward(x, grad, k, stride):
    """x (N, C, H, W), grad (N, C, OH, OW) -> dL/dx (N, C, H, W)."""
    raise NotImplementedError("exercise 3b.2: max-pool gradient routing")


# ---------------------------------------------------------------------------------------
# Exercise 3b.3 - batch norm's backward
#
# Training-mode batch norm on x (N, C) - one column per channel, M = N values each:
#
#     mean = x.mean(0)   var = x.var(0)   (biased, 1/M)   std = sqrt(var + eps)
#     x_hat = (x - mean) / std            out = gamma * x_hat + beta
#
# Given g = dL/dout (N, C), return (dL/dx, dL/dgamma, dL/dbeta). dgamma and dbeta are
# sums over the batch. For dx, remember that mean and var depend on every x of the column:
# follow the three paths (through x directly, through mean, through var) and simplify.
# The result fits on one line in terms of g, x_hat, gamma and std (lesson 3b derives it).
# The checker runs tinycnn.gradcheck on your formula in float64.
# ---------------------------------------------------------------------------------------
def batch_norm_backward(x, gamma, g, eps=1e-5):
    """x (N, C), gamma (C,), g (N, C) -> (grad_x (N, C), grad_gamma (C,), grad_beta (C,))."""
    raise NotImplementedError("exercise 3b.3: batch norm backward")
