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
from .activation import (
    Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh,
)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .flatten import Flatten
from .identity import Identity
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .squeeze_excitation import SqueezeExcitation
from .stochastic_depth import StochasticDepth

__all__ = [
    "init",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Conv2d",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "ReLU",
    "LeakyReLU",
    "ReLU6",
    "Hardtanh",
    "SiLU",
    "Hardswish",
    "Hardsigmoid",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Identity",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "SqueezeExcitation",
    "StochasticDepth",
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "functional",
]

# PyTorch's path to the functional ops: ``import tinycnn.nn.functional as F`` gives the very
# module ``tinycnn.functional`` (one set of ops, two names), as the import system looks in
# sys.modules before it looks for a file.
import sys as _sys  # noqa: E402

from .. import functional  # noqa: E402

_sys.modules[__name__ + ".functional"] = functional
