"""Exercises for lesson 11 - Transfer learning.

    python lessons/check.py 11

11.1  Prepare a trained LeNet-5 for a new task: a new last layer, frozen features.
11.2  Fine-tuning with two learning rates: small for the borrowed features, large for the head.
"""

from tinycnn import nn


# ---------------------------------------------------------------------------------------
# Exercise 11.1 - a new head, frozen features
#
# `model` is a tinycnn.models.lenet5 (model.features: the convolutions; model.classifier:
# Flatten, Linear 400->120, ReLU, Linear 120->84, ReLU, Linear 84->10). Make it answer a
# new question with `num_classes` classes:
#   * replace the last Linear layer of model.classifier by a new nn.Linear(84, num_classes)
#     (keep the other classifier layers: they are trained weights too);
#   * switch off the gradient of every parameter of model.features (requires_grad_(False));
#   * return the list of the parameters that still require a gradient (for the optimizer).
# ---------------------------------------------------------------------------------------
def prepare_for_transfer(model, num_classes):
    """Changes `model` in place; returns the parameters to train."""
    raise NotImplementedError("exercise 11.1: new head, frozen features")


# ---------------------------------------------------------------------------------------
# Exercise 11.2 - two learning rates
#
# Fine-tuning often moves the borrowed layers slowly and the new ones fast. An optimizer
# takes parameter groups, each a dict with its own settings (tinycnn/optim/optimizer.py):
#
#     optim.SGD([{"params": [...], "lr": 0.001}, {"params": [...]}], lr=0.01)
#
# Return such a list of two groups for a lenet5: model.features' parameters with lr
# `features_lr`, model.classifier's with lr `head_lr`. The checker builds optim.SGD from it
# and checks how far each layer moves in one step.
# ---------------------------------------------------------------------------------------
def finetuning_groups(model, features_lr, head_lr):
    """-> [{"params": ..., "lr": features_lr}, {"params": ..., "lr": head_lr}]"""
    raise NotImplementedError("exercise 11.2: parameter groups")
