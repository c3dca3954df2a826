"""VGG: stacks of 3x3 convolutions with batch norm, halved by max pooling.

Two kinds live here: ``vgg_small``, scaled down for 28x28 and 32x32 images and a CPU, and
torchvision's ImageNet VGGs with batch norm (``vgg11_bn``, ``vgg16_bn``), twins of
torchvision 0.29's models of the same names (same state_dict keys, same outputs).

Source: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556): depth from small 3x3 kernels, channels doubled
whenever the feature map is halved. Batch norm after each convolution follows Ioffe &
Szegedy 2015.
"""

from .. import nn
from .. import functional as F
from .base import ZooModel
from .blocks import check_small_input


def _conv_bn_relu(in_channels, out_channels):
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


class VGG(ZooModel):
    """Conv blocks (each a list of channel widths, ending in 2x2 max pooling), global
    average pooling and a linear classifier. (N, in_channels, H, W) -> (N, num_classes)."""

    def __init__(self, blocks, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        layers, channels = [], in_channels
        for widths in blocks:
            for width in widths:
                layers += _conv_bn_relu(channels, width)
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg_small(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """A 7-layer VGG-style net: (32, 32) pool (64, 64) pool (128, 128) pool, then linear."""
    return VGG([(32, 32), (64, 64), (128, 128)], num_classes, in_channels, dropout=0.25)



# --------------------------------------------------------------------------- torchvision's ImageNet VGGs
# Each entry is a conv's output channels, or "M" for a 2x2 max pooling (Simonyan & Zisserman's
# table 1: configuration A is VGG-11, D is VGG-16).
VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class ImageNetVGG(ZooModel):
    """torchvision's VGG with batch norm (``vgg11_bn``, ``vgg16_bn``): (N, in_channels, H, W) -> (N, num_classes).

    ``features``: for each entry of the configuration, Conv2d 3x3 (padding 1, with bias),
    BatchNorm2d and ReLU, or a 2x2 max pooling; ``avgpool`` brings any map to 7x7;
    ``classifier``: Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
    Linear(4096, num_classes). Five poolings take 224 to 7 (and 32 to 1, which the
    adaptive pooling copies to 7x7). ``init_weights=False`` skips torchvision's initialisation
    (a second pass over 130M weights) and keeps the layers' default, for weights about to be loaded.
    """

    def __init__(self, config, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
                 small_input: bool = False, init_weights: bool = True):
        super().__init__()
        self.small_input = check_small_input("vgg", small_input)   # VGG has no strided stem: nothing to change
        layers, channels = [], in_channels
        for entry in config:
            if entry == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.BatchNorm2d(entry), nn.ReLU()]
                channels = entry
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules() if init_weights else []:   # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(F.flatten(x, 1))


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, **kwargs) -> ImageNetVGG:
    """VGG-11 with batch norm (configuration A), torchvision's twin.

    Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015 (arXiv:1409.1556); batch norm after each conv as torchvision's
    ``vgg11_bn`` (reference implementation, torchvision 0.29).

    Parameters: 132,868,840 at 1000 classes, 128,812,810 at 10 classes.
    Forward multiply-adds (conv + linear): 7,609,090,048 at 224x224, 272,343,040 at 32x32.
    ``small_input`` changes nothing (accepted for a uniform zoo): VGG has no strided stem, and
    the CIFAR ports keep all five poolings (32 -> 1).
    """
    return ImageNetVGG(VGG_CONFIGS["vgg11"], num_classes, in_channels, small_input=small_input, **kwargs)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, **kwargs) -> ImageNetVGG:
    """VGG-16 with batch norm (configuration D), torchvision's twin.

    Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015 (arXiv:1409.1556); batch norm after each conv as torchvision's
    ``vgg16_bn`` (reference implementation, torchvision 0.29).

    Parameters: 138,365,992 at 1000 classes, 134,309,962 at 10 classes.
    Forward multiply-adds (conv + linear): 15,470,264,320 at 224x224, 432,775,168 at 32x32.
    ``small_input`` changes nothing (accepted for a uniform zoo): VGG has no strided stem, and
    the CIFAR ports keep all five poolings (32 -> 1).
    """
    return ImageNetVGG(VGG_CONFIGS["vgg16"], num_classes, in_channels, small_input=small_input, **kwargs)
