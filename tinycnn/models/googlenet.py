"""GoogLeNet (Inception v1): parallel branches of 1x1, 3x3 and pooled convolutions, concatenated.

Paper: C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke,
A. Rabinovich, "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842).
Reference implementation: torchvision 0.29 ``torchvision.models.googlenet``; this is its twin
(same module tree and state_dict keys, same outputs with the same weights). Like torchvision,
it adds batch norm (eps 0.001) after every convolution, and its "5x5" branch uses a 3x3
kernel (torchvision's known deviation, kept so that its weights load).

An Inception module looks at the same input through four branches at once, a 1x1 conv, a
1x1 then 3x3, a 1x1 then "5x5", and a 3x3 max pooling then 1x1, and stacks their maps along
the channels; the 1x1 convolutions first shrink the channels so that the larger kernels stay
cheap. Two auxiliary classifiers (``aux1`` after ``inception4a``, ``aux2`` after
``inception4d``) add their losses, weighted 0.3 in the paper, during training only, to give
the early layers a stronger gradient.

    (N, 3, 224, 224) -> conv 7x7/2 64 -> pool -> conv 1x1 64 -> conv 3x3 192 -> pool (N, 192, 28, 28)
    -> inception 3a, 3b -> pool -> 4a (aux1), 4b, 4c, 4d (aux2), 4e -> pool -> 5a, 5b (N, 1024, 7, 7)
    -> global average pool -> dropout -> linear num_classes

Outputs: in eval mode, or with ``aux_logits=False``, the logits ``(N, num_classes)``; in
training mode with the auxiliary heads, a :class:`GoogLeNetOutputs` ``(logits, aux_logits2,
aux_logits1)``, as torchvision's. ``tinycnn``'s training loop adds the auxiliary losses with
the weight ``GoogLeNetOutputs.aux_loss_weight`` (0.3, the paper's).

Parameters (with the auxiliary heads, torchvision's default): 13,004,888 at 1000
classes, 9,960,638 at 10 classes; without them (``aux_logits=False``):
6,624,904 and 5,610,154.
Forward multiply-adds (conv + linear, eval mode, so without the auxiliary heads):
1,498,376,192 at 224x224, 460,040,192 at 32x32 with ``small_input=True``.

``small_input=True`` (32x32 images): ``conv1`` (7x7) runs at stride 1 and ``maxpool1``
becomes an Identity, so the 32x32 image reaches the Inception 5 modules at 4x4 (224 reaches
them at 7x7). Every weight keeps its shape.
"""

from __future__ import annotations

from collections import namedtuple

from .. import functional as F
from .. import nn
from .base import ZooModel
from .blocks import check_small_input

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "BasicConv2d", "googlenet"]


class GoogLeNetOutputs(namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])):
    """What GoogLeNet returns in training with its auxiliary heads (torchvision's field names)."""

    aux_loss_weight = 0.3   # each auxiliary loss counts 0.3 times the main one (the paper, section 5)


class BasicConv2d(nn.Module):
    """Conv2d (no bias), BatchNorm2d (eps 0.001), ReLU. (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches on the same input, concatenated along the channels.

    ``(N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``; every branch
    keeps the size (padding 1 for the 3x3s, a stride-1 pooling).
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))  # 3x3: see the module docstring
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return F.cat(branches, 1)


class InceptionAux(nn.Module):
    """An auxiliary classifier: pool to 4x4, conv 1x1 to 128, linear 1024, dropout, linear.

    ``(N, in_channels, H, W) -> (N, num_classes)``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))   # 14x14 at 224 px; any size -> 4x4
        x = F.relu(self.fc1(F.flatten(x, 1)))
        return self.fc2(self.dropout(x))


class GoogLeNet(ZooModel):
    """GoogLeNet: (N, in_channels, H, W) -> (N, num_classes) (see the module docstring for training outputs)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.2, dropout_aux: float = 0.7,
                 small_input: bool = False, init_weights: bool = True):
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError(f"googlenet: transform_input re-normalises 3 RGB channels, got in_channels={in_channels}")
        self.small_input = check_small_input("googlenet", small_input)
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        # small_input: the stem at stride 1 and without its first max pooling (see the module docstring)
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=1 if small_input else 2, padding=3)
        self.maxpool1 = nn.Identity() if small_input else nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection (the paper's table 1)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        for module in self.modules() if init_weights else []:   # torchvision's initialisation
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                # torchvision draws from a normal truncated at +-2; at std 0.01 that cut is 200
                # standard deviations away and never happens, so a plain normal is the same thing
                nn.init.normal_(module.weight, 0.0, 0.01)

    def _transform_input(self, x):
        """Turn an image normalised with ImageNet's mean and std into one normalised with 0.5 and
        0.5 (the normalisation of the original weights): torchvision's ``transform_input``."""
        if not self.transform_input:
            return x
        channels = []
        for c, (mean, std) in enumerate([(0.485, 0.229), (0.456, 0.224), (0.406, 0.225)]):
            channels.append(x[:, c:c + 1] * (std / 0.5) + (mean - 0.5) / 0.5)
        return F.cat(channels, 1)

    def forward(self, x):
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        with_aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(F.flatten(self.avgpool(x), 1)))
        if with_aux:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False, aux_logits: bool = True,
              **kwargs) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's twin, auxiliary heads on by default."""
    return GoogLeNet(num_classes, in_channels, aux_logits=aux_logits, small_input=small_input, **kwargs)

