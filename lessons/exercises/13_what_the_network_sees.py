"""Exercises for lesson 13 - What the network sees.

    python lessons/check.py 13

13.1  A saliency map: |d score / d pixel| for the predicted class.
13.2  Grad-CAM, from a network split into its feature part and its head.
"""

import numpy as np

import tinycnn


# ---------------------------------------------------------------------------------------
# Exercise 13.1 - saliency
#
# For each image, take the score (logit) of the class the model predicts for it, and its
# gradient with respect to the input pixels. Return |gradient|, maximised over the colour
# channels, (N, H, W), and the predicted classes (N,). One backward for the whole batch
# is enough: image i's score depends only on image i. Leave no gradients on the model.
# ---------------------------------------------------------------------------------------
def saliency(model, images):
    """images: float32 array (N, C, H, W) -> (saliency (N, H, W), predicted (N,) ints)."""
    raise NotImplementedError("exercise 13.1: saliency")


# ---------------------------------------------------------------------------------------
# Exercise 13.2 - Grad-CAM
#
# The network is split in two: maps = features(x) are the last convolution's feature maps
# A (N, K, h, w), and scores = head(maps) the logits (N, classes). For each image's
# predicted class c:
#
#     alpha[n, k] = mean over positions of d s_c / d A[n, k]
#     cam[n]      = ReLU( sum_k alpha[n, k] * A[n, k] )          (h, w)
#
# To get d s_c / d A, call maps.retain_grad() before the head, then backward (lesson 13,
# section 5). Return cam (N, h, w) and the predicted classes. Leave no gradients behind.
# ---------------------------------------------------------------------------------------
def grad_cam(features, head, images):
    """images: float32 array (N, C, H, W) -> (cam (N, h, w), predicted (N,) ints)."""
    raise NotImplementedError("exercise 13.2: Grad-CAM")
