"""Layers and models: ``tinycnn.nn`` follows ``torch.nn``.

    from tinycnn import nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 14 * 14, 10),
    )

One concept per file: ``module.py`` (the Module base: registration, state_dict,
train/eval, to), ``parameter.py``, then one file per layer family, and
``init.py`` for weight initialisation.
"""

from . import init
from .activation import LeakyReLU, ReLU
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss
from .module import Module
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "init",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Conv2d",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "ReLU",
    "LeakyReLU",
    "Dropout",
    "Flatten",
    "CrossEntropyLoss",
]
