"""Exercises for lesson 5 - A first CNN.

    python lessons/check.py 05

5.1  The confusion matrix and per-class recall, from labels and predictions.
5.2  One training step, written out: forward, loss, zero_grad, backward, step.
"""

import numpy as np

from tinycnn import nn


# ---------------------------------------------------------------------------------------
# Exercise 5.1 - confusion matrix and recall
#
# counts[t, p] = how many examples of true class t were predicted as class p (rows: true
# classes, columns: predictions). The recall of class t is the fraction of its examples
# predicted right: counts[t, t] / (sum of row t); use 0.0 for a class with no examples.
# (Try it without a Python loop over the examples: np.add.at or np.bincount.)
# ---------------------------------------------------------------------------------------
def confusion_matrix(labels, predictions, num_classes):
    """labels, predictions: (N,) ints in [0, num_classes) -> int array (num_classes, num_classes)."""
    raise NotImplementedError("exercise 5.1: confusion matrix")


def per_class_recall(counts):
    """counts (K, K) from confusion_matrix -> recall per class, float array (K,)."""
    raise NotImplementedError("exercise 5.1: per-class recall")


# ---------------------------------------------------------------------------------------
# Exercise 5.2 - one training step
#
# Lesson 5, section 2 wrote the loop out once. Write one step of it: the model's scores
# for `images`, the mean cross-entropy loss against `labels` (nn.CrossEntropyLoss), then
# forget the previous gradients, backpropagate and let the optimizer step. Return the
# loss as a Python float.
#
# The checker trains a small network with your step and with the package's, from the same
# weights on the same batches, and compares the weights after every step - a forgotten
# zero_grad shows up from the second step on.
# ---------------------------------------------------------------------------------------
loss_fn = nn.CrossEntropyLoss()


def train_step(model, optimizer, images, labels):
    """images: Tensor (B, C, H, W), labels: Tensor (B,) -> the batch's loss (float)."""
    raise NotImplementedError("exercise 5.2: one training step")
