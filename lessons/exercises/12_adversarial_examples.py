"""Exercises for lesson 12 - Adversarial examples.

    python lessons/check.py 12

12.1  One FGSM step.
12.2  Projected gradient descent: many small FGSM steps, kept within epsilon.
"""

import numpy as np

import tinycnn
import tinycnn.functional as F


# ---------------------------------------------------------------------------------------
# Exercise 12.1 - the fast gradient sign method
#
#     x_adv = clip(x + epsilon * sign(d loss / d x), 0, 1)
#
# `model` maps a Tensor of images (N, C, H, W), pixels in [0, 1], to logits (N, K); the
# loss is the mean cross-entropy against `labels`. Make x a Tensor with requires_grad=True,
# run forward and backward, read x.grad, and return the attacked images as a float32
# NumPy array. Leave no gradients behind on the model's weights (model.zero_grad()).
# ---------------------------------------------------------------------------------------
def fgsm(model, x, labels, epsilon):
    """x: float32 array (N, C, H, W) in [0, 1]; labels: int array (N,) -> float32 array like x."""
    raise NotImplementedError("exercise 12.1: one FGSM step")


# ---------------------------------------------------------------------------------------
# Exercise 12.2 - projected gradient descent (Madry et al. 2018)
#
# FGSM takes one step of the full size. PGD takes `steps` steps of size `step_size`, each
# an FGSM step from where the last one ended, and after each step projects back: clip the
# change to [-epsilon, +epsilon] around the *original* x, and the image to [0, 1]. It is a
# much stronger attack for the same epsilon. (You may call your fgsm.)
# ---------------------------------------------------------------------------------------
def pgd(model, x, labels, epsilon, step_size, steps):
    """x: float32 array (N, C, H, W) in [0, 1] -> float32 array like x, within epsilon of x."""
    raise NotImplementedError("exercise 12.2: projected gradient descent")
