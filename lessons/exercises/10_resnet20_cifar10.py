"""Exercises for lesson 10 - ResNet-20 on CIFAR-10.

    python lessons/check.py 10

10.1  The paper's augmentation: pad by 4, random 32x32 crop, random horizontal flip.
10.2  The paper's learning-rate schedule: 0.1, divided by 10 at 32k and 48k iterations.
"""

import numpy as np


# ---------------------------------------------------------------------------------------
# Exercise 10.1 - random crop and flip, a whole batch at once
#
# For each image of the batch independently: pad with `padding` zeros on every side, cut
# out a window of the original size at a random offset (top and left each uniform in
# 0 .. 2*padding, from rng.integers), and mirror it left-right with probability 1/2.
# Return a new array; leave `images` unchanged.
#
# The checker verifies that every output image is one of the (2*padding + 1)^2 * 2 crops
# of its padded input, and that over many images all offsets and both flips occur.
# ---------------------------------------------------------------------------------------
def random_crop_flip(images, padding, rng):
    """images (N, C, H, W) -> (N, C, H, W) of the same dtype; rng: np.random.Generator."""
    raise NotImplementedError("exercise 10.1: random crop and flip")


# ---------------------------------------------------------------------------------------
# Exercise 10.2 - the step schedule
#
# He et al. train ResNet-20 with SGD at lr 0.1, divided by 10 at iteration 32,000 and again
# at 48,000, and stop at 64,000. Write the learning rate used for (0-based) iteration
# `iteration`. The checker compares it with optim.lr_scheduler.MultiStepLR.
# ---------------------------------------------------------------------------------------
def step_lr(iteration, base_lr=0.1, milestones=(32000, 48000), gamma=0.1):
    """The learning rate at iteration `iteration` (0 = the first step)."""
    raise NotImplementedError("exercise 10.2: the step schedule")
