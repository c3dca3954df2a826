"""The model zoo: a small CNN, LeNet-5, CIFAR ResNets and a small VGG-style net.

``get_model(name, num_classes, in_channels)`` builds any of them by name, as the
``tinycnn train --model`` option does.
"""

from .base import ZooModel, count_parameters
from .lenet import LeNet5, lenet5
from .resnet import BasicBlock, ResNet, resnet20, resnet32, resnet56
from .small import SmallCNN, small_cnn
from .vgg import VGG, vgg_small

MODELS = {
    "small_cnn": small_cnn,
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
}


def get_model(name: str, num_classes: int = 10, in_channels: int = 3, **kwargs):
    """A fresh model from the zoo, by name (see ``MODELS``)."""
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key](num_classes=num_classes, in_channels=in_channels, **kwargs)


__all__ = [
    "MODELS", "get_model", "count_parameters", "ZooModel", "LeNet5", "lenet5", "ResNet", "BasicBlock",
    "resnet20", "resnet32", "resnet56", "VGG", "vgg_small", "SmallCNN", "small_cnn",
]
