"""Exercises for lesson 7 - Optimizers.

    python lessons/check.py 07

7.1  SGD with momentum (and Nesterov), one step, in place.
7.2  Adam, one step, in place.
7.3  Predict the largest learning rate at which plain SGD still converges on the valley.
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# Exercise 7.1 - momentum
#
# PyTorch's formulation (lesson 7, section 1), for a parameter p with gradient g:
#
#     v <- mu * v + g
#     p <- p - lr * v                      (plain momentum)
#     p <- p - lr * (g + mu * v)           (nesterov=True; v is the *new* v)
#
# Update p and v in place (p[...] = ..., p -= ..., v *= ...): the caller keeps using the
# same arrays. The checker compares with optim.SGD(momentum=mu, nesterov=...) step by step.
# ---------------------------------------------------------------------------------------
def momentum_step(p, g, v, lr, mu=0.9, nesterov=False):
    """p, g, v: float arrays of the same shape. Changes p and v in place; returns nothing."""
    raise NotImplementedError("exercise 7.1: SGD with momentum")


# ---------------------------------------------------------------------------------------
# Exercise 7.2 - Adam
#
# At step t (1 for the first step), with m and s the running averages (zeros at first):
#
#     m <- b1 m + (1 - b1) g            s <- b2 s + (1 - b2) g^2
#     m_hat = m / (1 - b1^t)            s_hat = s / (1 - b2^t)      (bias correction)
#     p <- p - lr * m_hat / (sqrt(s_hat) + eps)
#
# Update p, m and s in place. The checker compares with optim.Adam for 20 steps.
# ---------------------------------------------------------------------------------------
def adam_step(p, g, m, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """p, g, m, s: float arrays of the same shape; t: the step number (from 1)."""
    raise NotImplementedError("exercise 7.2: Adam")


# ---------------------------------------------------------------------------------------
# Exercise 7.3 - predict
#
# Plain SGD (mu = 0) on lesson 7's valley f(x, y) = 0.5 * (x^2 + 40 y^2). One step maps
# y to y - lr * 40 y = (1 - 40 lr) y, and x to (1 - lr) x. Above which learning rate does
# the y coordinate blow up instead of shrinking? The checker runs 200 steps of *your*
# momentum_step with mu = 0 at 0.98x and at 1.02x your answer, and expects the first
# to converge and the second to diverge.
# ---------------------------------------------------------------------------------------
PREDICTED_LARGEST_STABLE_LR = None  # a number
