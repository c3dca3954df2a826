"""Exercises for lesson 14 - Robustness.

    python lessons/check.py 14

14.1  A Gaussian blur, as a convolution with a bell-shaped kernel.
14.2  Predict: does dimming a *normalised* image scale the first layer's response?
"""

import math

import numpy as np


# ---------------------------------------------------------------------------------------
# Exercise 14.1 - Gaussian blur
#
# Build the (k, k) kernel of lesson 14: radius r = ceil(2.5 * sigma), t = -r .. r,
# bell = exp(-t^2 / (2 sigma^2)), kernel = outer(bell, bell) normalised to sum to 1.
# Convolve every image and channel with it, with zero padding r (the output keeps the
# input's size). Use F.conv2d on a (C, 1, k, k) weight with groups=C, or plain NumPy.
# ---------------------------------------------------------------------------------------
def gaussian_blur(x, sigma):
    """x: float32 array (N, C, H, W) -> float32 array (N, C, H, W)."""
    raise NotImplementedError("exercise 14.1: Gaussian blur")


# ---------------------------------------------------------------------------------------
# Exercise 14.2 - predict
#
# Low light multiplies every pixel by a factor a < 1. The network does not see pixels: it
# sees normalised pixels, (x - mean) / std with MNIST's mean 0.1307 and std 0.3081. Take a
# conv layer *without bias* applied to the normalised image. Is its response to the dimmed
# image, a = 0.25, exactly 0.25 times its response to the original (True or False)?
# ---------------------------------------------------------------------------------------
PREDICTED_RESPONSE_SCALES_BY_A = None  # True or False
