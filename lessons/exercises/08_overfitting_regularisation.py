"""Exercises for lesson 8 - Overfitting and regularisation.

    python lessons/check.py 08

8.1  Switch Adam's L2 penalty to AdamW's decoupled weight decay.
8.2  Predict: with small gradients, which keeps larger weights, Adam + L2 or AdamW?
8.3  Inverted dropout.
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# Given: one step of Adam with weight decay as an L2 penalty (what optim.Adam's
# weight_decay does, and what lesson 8 uses): the decay is added to the gradient, so it is
# divided by sqrt(s) like the rest of the gradient.
# ---------------------------------------------------------------------------------------
def adam_l2_step(p, g, m, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """p, g, m, s: float arrays of one shape, updated in place; t: step number from 1."""
    b1, b2 = betas
    g = g + weight_decay * p                      # the L2 penalty's gradient, wd * p
    m[...] = b1 * m + (1 - b1) * g
    s[...] = b2 * s + (1 - b2) * g * g
    p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(s / (1 - b2 ** t)) + eps)


# ---------------------------------------------------------------------------------------
# Exercise 8.1 - AdamW
#
# Loshchilov & Hutter's "decoupled" weight decay takes the decay out of the gradient: the
# moments see only g, and the weight itself shrinks by a factor (1 - lr * weight_decay)
# each step, before the Adam update. Write it (copy adam_l2_step and change two lines).
# The checker compares with optim.AdamW for 20 steps.
# ---------------------------------------------------------------------------------------
def adamw_step(p, g, m, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """p, g, m, s: float arrays of one shape, updated in place; t: step number from 1."""
    raise NotImplementedError("exercise 8.1: AdamW's decoupled weight decay")


# ---------------------------------------------------------------------------------------
# Exercise 8.2 - predict
#
# The checker fits a linear regression (16 weights; the best weights have a norm of
# about 5) by full-batch gradient descent, 3000 steps at lr 0.01 with weight_decay = 0.1,
# once with adam_l2_step and once with your adamw_step. The loss is measured in units
# that make its gradients small: it is 0.001 * the mean squared error (think of a loss
# summed over few pixels, or a layer whose gradients arrive small, like the first layers
# of lesson 9's plain net).
#
# Compared with Adam + L2, will AdamW's final weight norm be "larger", "smaller" or the
# "same" (within 10%)?
# ---------------------------------------------------------------------------------------
PREDICTED_CHANGE = None  # "larger", "smaller" or "same"


# ---------------------------------------------------------------------------------------
# Exercise 8.3 - inverted dropout
#
# In training, zero each element of x with probability p (draw the mask with rng.random)
# and scale the survivors by 1 / (1 - p), so that every element keeps its expected value.
# In evaluation (training=False), and for p = 0, return x unchanged.
# ---------------------------------------------------------------------------------------
def dropout(x, p, rng, training=True):
    """x: float array, p in [0, 1), rng: np.random.Generator -> array of x's shape."""
    raise NotImplementedError("exercise 8.3: inverted dropout")
