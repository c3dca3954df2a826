"""Exercises for lesson 6 - LeNet-5 on MNIST.

    python lessons/check.py 06

6.1  Count the parameters of a convolution and of a linear layer; then of all LeNet-5.
6.2  The cosine learning-rate schedule.
"""

import math


# ---------------------------------------------------------------------------------------
# Exercise 6.1 - counting parameters
#
# A Conv2d(in_channels, out_channels, kernel_size k) holds out_channels filters of
# in_channels x k x k weights, plus one bias per filter. A Linear(in_features,
# out_features) holds an (out, in) weight matrix and a bias per output. Write both counts,
# then add up LeNet-5 (lesson 6, section 2: conv 1->6 5x5, conv 6->16 5x5, linear
# 400->120->84->10) by hand with them.
# ---------------------------------------------------------------------------------------
def conv_parameters(in_channels, out_channels, k, bias=True):
    """Number of weights (and biases) of a Conv2d with a k x k kernel."""
    raise NotImplementedError("exercise 6.1: conv parameter count")


def linear_parameters(in_features, out_features, bias=True):
    """Number of weights (and biases) of a Linear layer."""
    raise NotImplementedError("exercise 6.1: linear parameter count")


PREDICTED_LENET5_PARAMETERS = None  # an int, added up by hand with the two functions above


# ---------------------------------------------------------------------------------------
# Exercise 6.2 - the cosine schedule
#
# Lesson 6 lets the learning rate follow half a cosine, from lr_max at epoch 0 down to
# lr_min at epoch T:
#
#     lr(t) = lr_min + (lr_max - lr_min) * (1 + cos(pi * t / T)) / 2
#
# Write it. The checker compares it with optim.lr_scheduler.CosineAnnealingLR at every
# epoch of a run.
# ---------------------------------------------------------------------------------------
def cosine_lr(epoch, total_epochs, lr_max, lr_min=0.0):
    """The learning rate during epoch `epoch` (0 = the first) of `total_epochs`."""
    raise NotImplementedError("exercise 6.2: cosine learning rate")
