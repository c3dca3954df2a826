"""Exercises for lesson 9 - Depth, batch norm and residual connections.

    python lessons/check.py 09

9.1  He initialisation for convolution and linear weights.
9.2  Predict the gradient table of the plain 19-convolution net with He initialisation.
9.3  A residual block that starts as the identity (zero-initialised last BN scale).
"""

import math

import numpy as np

import tinycnn
import tinycnn.functional as F
from tinycnn import nn


# ---------------------------------------------------------------------------------------
# Exercise 9.1 - He initialisation
#
# Lesson 9's plain net loses signal at every layer: the default initialisation gives each
# weight a variance of 1/(3 * fan_in), and a ReLU keeps only half of the energy. He et al.
# (2015) draw the weights from a normal distribution with variance 2 / fan_in, where
# fan_in is the number of inputs of one output: in_channels * KH * KW for a conv weight
# (O, C, KH, KW), in_features for a linear weight (out, in). Then each conv + ReLU keeps
# the signal's size.
#
# Fill weight.data in place with such draws (use rng.standard_normal) and return weight.
# Keep the dtype: weight.data[...] = ... does.
# ---------------------------------------------------------------------------------------
def he_normal_(weight, rng):
    """weight: a conv (O, C, KH, KW) or linear (out, in) Parameter; rng: np.random.Generator."""
    raise NotImplementedError("exercise 9.1: He initialisation")


# ---------------------------------------------------------------------------------------
# Exercise 9.2 - predict the gradient table
#
# The checker builds lesson 9's plain net (19 convolutions with ReLU, no batch norm),
# re-initialises every convolution with *your* he_normal_ (biases 0), and measures at
# initialisation, on one batch, the gradient norm of the last convolution's weights
# divided by the first's (the lesson's "last/first" column; with the default
# initialisation it is around a million or more).
# With He initialisation, in which range will last/first be?
# ---------------------------------------------------------------------------------------
PREDICTED_LAST_OVER_FIRST = None  # "below 0.1", "0.1 to 10", "10 to 1000" or "above 1000"


# ---------------------------------------------------------------------------------------
# Exercise 9.3 - a block that starts as the identity
#
# Lesson 9's residual block computes relu(x + bn2(conv2(relu(bn1(conv1(x)))))). At
# initialisation F(x) = bn2(...) has unit variance, so the block is *not* the identity.
# Goyal et al. (2017) set the last batch norm's scale (gamma, bn2.weight) to zero: then
# F(x) = 0 and the block starts as relu(x + 0) = relu(x), and learns its correction from
# there (gamma still gets a gradient).
#
# Build the block in __init__ (two 3x3 convs with padding 1 and no bias, two BatchNorm2d)
# with bn2.weight zeroed, and write forward.
# ---------------------------------------------------------------------------------------
class IdentityStartBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        raise NotImplementedError("exercise 9.3: the block's layers, with bn2's scale zeroed")

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        raise NotImplementedError("exercise 9.3: the block's forward")
