"""Exercises for lesson 10b - Initialisation, normalisation and a training checklist.

    python lessons/check.py 10b

10b.1  Normalise a data set per channel (the statistics of the training images).
10b.2  Overfit one small batch: the first test of any new model and training loop.
10b.3  Predict: batch norm on a single image, in train and in eval mode.
"""

import numpy as np

from tinycnn import nn, optim


# ---------------------------------------------------------------------------------------
# Exercise 10b.1 - per-channel normalisation
#
# Compute each channel's mean and standard deviation over every image and pixel of
# `images` (uint8, (N, C, H, W), pixel values 0-255), on the scale 0-1 (divide by 255
# first). Return the normalised images, float32, (x / 255 - mean[c]) / std[c], and the
# two (C,) arrays. (Those are the numbers behind MNIST_MEAN, SHAPES_STD, ...)
# ---------------------------------------------------------------------------------------
def normalise_per_channel(images):
    """images (N, C, H, W) uint8 -> (normalised float32 (N, C, H, W), mean (C,), std (C,))."""
    raise NotImplementedError("exercise 10b.1: per-channel normalisation")


# ---------------------------------------------------------------------------------------
# Exercise 10b.2 - overfit one batch
#
# Before a long run, check that the model and the loop *can* learn: train on one small
# batch, over and over, until the loss is near 0. If it cannot memorise 16 images, there
# is a bug (a missing zero_grad, a wrong label, a frozen layer, a learning rate far off).
#
# Train `model` on (images, labels) for `steps` steps with optim.Adam at learning rate
# `lr` and the mean cross-entropy loss, and return the list of the losses (floats), one
# per step. The checker gives you a small CNN and 16 Shapes images and expects the last
# loss below 0.05 and every image classified right.
# ---------------------------------------------------------------------------------------
def overfit_one_batch(model, images, labels, steps=40, lr=1e-2):
    """images: Tensor (B, C, H, W); labels: Tensor (B,) -> list of `steps` losses."""
    raise NotImplementedError("exercise 10b.2: overfit one batch")


# ---------------------------------------------------------------------------------------
# Exercise 10b.3 - predict
#
# bn = nn.BatchNorm2d(4), trained for a while, so its running mean and variance hold the
# statistics of the training data. Now one image arrives at inference.
#
# (a) The image is (1, 4, 8, 8) and the model was left in train mode (bn.train()). Compared
#     with bn.eval() on the same image, is the output "the same", "different", or does
#     the call raise an "error"?
# (b) The input is (1, 4, 1, 1) - one value per channel, as after global average pooling -
#     again in train mode: "the same" as eval, "different", or an "error"?
# ---------------------------------------------------------------------------------------
PREDICTED_ONE_IMAGE_TRAIN_MODE = None  # "the same", "different" or "error"
PREDICTED_ONE_VALUE_TRAIN_MODE = None  # "the same", "different" or "error"
