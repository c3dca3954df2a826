"""Exercises for lesson 16 - A tour of architectures.

    python lessons/check.py 16

16.1  The receptive field of a stack of convolutions and poolings.
16.2  MobileNet's depthwise-separable block, as a module.
16.3  Predict what half the width and twice the resolution do to EfficientNet's cost.
"""

from tinycnn import nn


# ---------------------------------------------------------------------------------------
# Exercise 16.1 - the receptive field
#
# Lesson 16, section 2 found with a gradient that two stacked 3x3 convolutions see a 5x5
# patch of the input. Compute it for any stack: `layers` lists the layers from the input
# side, each as (kernel_size, stride) - a convolution or a pooling window, square, no
# dilation. Return the side, in input pixels, of the patch one output pixel depends on.
#
# Hint: walk from the input side and keep two numbers: the field so far, and how many input
# pixels apart two neighbouring pixels of the current layer's output are. A k-wide window
# widens the field by (k - 1) times that spacing; a stride s multiplies the spacing by s.
#
# The checker builds each stack from convolutions whose weights are all 1, takes the
# gradient of one output pixel with respect to the input and measures how wide its nonzero
# part is - the experiment of section 2.
# ---------------------------------------------------------------------------------------
def receptive_field(layers):
    """layers: a list of (kernel_size, stride) pairs, input side first -> the field's side (int)."""
    raise NotImplementedError("exercise 16.1: the receptive field")


# ---------------------------------------------------------------------------------------
# Exercise 16.2 - a depthwise-separable block
#
# MobileNet (v1) replaces each 3x3 convolution by two:
#
#   depthwise   3x3 convolution, in_channels -> in_channels, groups=in_channels, padding 1,
#               the block's stride, no bias; then BatchNorm2d and ReLU
#   pointwise   1x1 convolution, in_channels -> out_channels, no bias; then BatchNorm2d and ReLU
#
# (No bias: the batch norm right after has its own shift.) Build the layers in __init__
# under the names depthwise, bn1, pointwise, bn2 - the checker reads them - and write
# forward. With 8 input and 16 output channels the block has 8 * 9 + 8 * 16 convolution
# weights, against 8 * 16 * 9 for the standard 3x3 convolution it replaces.
# ---------------------------------------------------------------------------------------
class DepthwiseSeparable(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        raise NotImplementedError("exercise 16.2: the block's layers")

    def forward(self, x):
        """x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))."""
        raise NotImplementedError("exercise 16.2: the block's forward")


# ---------------------------------------------------------------------------------------
# Exercise 16.3 - predict: half the width, twice the resolution
#
# The checker builds the efficientnet_b0 twin for 32x32 images twice (small_input=True,
# 10 classes): the baseline, and one with width_mult=0.5 (every layer's channels halved,
# rounded to multiples of 8). It counts the multiply-adds of the baseline on a 32x32 image
# and of the half-width net on a 64x64 image (models.count_flops), and the parameters of
# both (models.count_parameters). Half-width net on 64x64 divided by baseline on 32x32:
# what are the two ratios, roughly? Think per layer first (lesson 16, section 8).
# ---------------------------------------------------------------------------------------
PREDICTED_MACS_RATIO = None  # "about 1/4", "about 1/2", "about 1", "about 2" or "about 4"
PREDICTED_PARAMS_RATIO = None  # "about 1/4", "about 1/2", "about 1", "about 2" or "about 4"
