"""Exercises for lesson 3 - Convolution.

    python lessons/check.py 03

3.1  Write a convolution's backward with loops, and pass gradcheck.
3.2  The output-size formula (with dilation).
3.3  im2col with loops over the windows.
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# The forward you are given: lesson 3's definition, as loops.
#
#     out[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * xpad[n, c, i*s + u, j*s + v]
# ---------------------------------------------------------------------------------------
def conv2d_loops(x, w, b, stride=1, padding=0):
    """x (N, C, H, W), w (O, C, KH, KW), b (O,) -> (N, O, OH, OW)."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    window = xpad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, o, i, j] = (window * w[o]).sum() + b[o]
    return out


# ---------------------------------------------------------------------------------------
# Exercise 3.1 - the backward, with loops
#
# Given grad = dL/dout (N, O, OH, OW), return (dL/dx, dL/dw, dL/db) with the shapes of x,
# w and b. Read the forward's formula term by term: each product w[o, c, u, v] *
# xpad[n, c, i*s + u, j*s + v] sends grad[n, o, i, j] * (the other factor) to each of its
# two factors, and b[o] gets every grad[n, o, :, :]. Work on a padded gradient for x and
# cut the padding off at the end. Loops over n, o, i, j (and NumPy inside) are fine.
#
# The checker wraps your backward and the forward above in a tinycnn.Function and runs
# tinycnn.gradcheck on it (float64, stride 1 and 2, padding 0 and 1).
# ---------------------------------------------------------------------------------------
def conv2d_backward_loops(x, w, grad, stride=1, padding=0):
    """x (N, C, H, W), w (O, C, KH, KW), grad (N, O, OH, OW) -> (grad_x, grad_w, grad_b)."""
    raise NotImplementedError("exercise 3.1: conv backward with loops")


# ---------------------------------------------------------------------------------------
# Exercise 3.2 - output size
#
# Lesson 3 gave OH = floor((H + 2*padding - KH) / stride) + 1. A *dilated* kernel spreads
# its KH taps `dilation` pixels apart (dilation 1: the ordinary kernel). Write the general
# formula for one axis. The checker compares it with the shapes F.conv2d returns.
# ---------------------------------------------------------------------------------------
def output_size(size, kernel, stride=1, padding=0, dilation=1):
    """One axis: input size, kernel size, stride, padding, dilation -> output size (an int)."""
    raise NotImplementedError("exercise 3.2: the output-size formula")


# ---------------------------------------------------------------------------------------
# Exercise 3.3 - im2col with loops
#
# Copy every window of the zero-padded input into a column: (N, C, H, W) -> (N, C*KH*KW,
# OH*OW). Rows are ordered (c, u, v) - channel first, then the row and column inside the
# window - and columns go through the windows row by row (window (i, j) is column
# i*OW + j). Then w.reshape(O, -1) @ cols[n] is image n's convolution, as in the lesson.
# The checker compares with tinycnn.functional.conv.im2col.
# ---------------------------------------------------------------------------------------
def im2col_loops(x, kh, kw, stride=1, padding=0):
    """x (N, C, H, W) -> columns (N, C*KH*KW, OH*OW)."""
    raise NotImplementedError("exercise 3.3: im2col with loops")
