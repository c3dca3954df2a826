"""The model zoo: a small CNN, LeNet-5, CIFAR ResNets, a small VGG-style net, and torchvision's
ImageNet architectures as twins.

``get_model(name, num_classes, in_channels)`` builds any of them by name, as the
``tinycnn train --model`` option does.

The twins (``alexnet``, ``vgg11_bn``, ``vgg16_bn``, ``googlenet``, ``resnet18``,
``mobilenet_v2``, ``densenet121``, ``efficientnet_b0``, ``squeezenet1_1``) have torchvision
0.29's module tree: the same ``state_dict`` keys in the same order and shapes, and with the
same weights the same outputs in eval mode. So torchvision's ImageNet weights load into them::

    model = tinycnn.models.resnet18()
    model.load_state_dict(tinycnn.load_state_dict_file("resnet18-f37072fd.pth"))

Each takes ``small_input=True`` for 32x32 images: the CIFAR adaptation, which runs the stem at
stride 1 and drops its max pooling (each model's docstring says exactly what changes) and keeps
every weight's shape, so ImageNet weights still load. Their default ``num_classes`` is 1000,
ImageNet's, as torchvision's (``get_model`` defaults to 10, as for the rest of the zoo).
``count_flops(model, (3, 224, 224))`` counts a model's forward multiply-adds.
"""

from .alexnet import AlexNet, alexnet
from .base import ZooModel, count_parameters
from .densenet import DenseNet, densenet121
from .efficientnet import EfficientNet, efficientnet_b0
from .flops import count_flops
from .googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from .lenet import LeNet5, lenet5
from .mobilenet import MobileNetV2, mobilenet_v2
from .resnet import BasicBlock, ImageNetResNet, ResNet, resnet18, resnet20, resnet32, resnet56
from .small import SmallCNN, small_cnn
from .squeezenet import SqueezeNet, squeezenet1_1
from .vgg import VGG, ImageNetVGG, vgg11_bn, vgg16_bn, vgg_small

MODELS = {
    "small_cnn": small_cnn,
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    # torchvision twins
    "alexnet": alexnet,
    "vgg11_bn": vgg11_bn,
    "vgg16_bn": vgg16_bn,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "densenet121": densenet121,
    "efficientnet_b0": efficientnet_b0,
    "squeezenet1_1": squeezenet1_1,
}

# The models that take ``small_input`` (a 32x32 adaptation of an ImageNet stem).
TAKES_SMALL_INPUT = ("alexnet", "vgg11_bn", "vgg16_bn", "googlenet", "resnet18", "mobilenet_v2", "densenet121",
                     "efficientnet_b0", "squeezenet1_1")


def get_model(name: str, num_classes: int = 10, in_channels: int = 3, **kwargs):
    """A fresh model from the zoo, by name (see ``MODELS``)."""
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key](num_classes=num_classes, in_channels=in_channels, **kwargs)


__all__ = [
    "MODELS", "TAKES_SMALL_INPUT", "get_model", "count_parameters", "count_flops", "ZooModel", "LeNet5", "lenet5",
    "ResNet", "BasicBlock", "resnet20", "resnet32", "resnet56", "VGG", "vgg_small", "SmallCNN", "small_cnn",
    "AlexNet", "alexnet", "ImageNetVGG", "vgg11_bn", "vgg16_bn", "GoogLeNet", "GoogLeNetOutputs", "googlenet",
    "ImageNetResNet", "resnet18", "MobileNetV2", "mobilenet_v2", "DenseNet", "densenet121", "EfficientNet",
    "efficientnet_b0", "SqueezeNet", "squeezenet1_1",
]
