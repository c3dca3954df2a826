"""Counting a model's work: the multiply-adds of its convolutions and linear layers.

Papers and torchvision's model tables give a model's cost as "FLOPs" but count
**multiply-adds** (one multiplication and one addition = one MAC): a 3x3 convolution
from 64 to 128 channels on a 56x56 map costs ``128*56*56 * 64*3*3`` MACs. That is
what :func:`count_flops` counts, per image, for every ``Conv2d`` and ``Linear``:

* Conv2d: ``C_out * H_out * W_out * (C_in / groups) * kh * kw``;
* Linear: ``in_features * out_features``.

Biases, batch norm, activations, pooling and additions are left out: they are a
few percent of the total in these models, and the convention leaves them out too.

For the nine torchvision twins at 224x224 these counts equal, to the three decimals given,
the GFLOPs torchvision 0.29 publishes with its weights (``meta["_ops"]``): AlexNet 0.714,
VGG-11-BN 7.609, VGG-16-BN 15.47, GoogLeNet 1.498, ResNet-18 1.814, MobileNetV2 0.301,
DenseNet-121 2.834, EfficientNet-B0 0.386, SqueezeNet 1.1 0.349 (``python -m tinycnn.models``).

It runs one forward pass on a zero image (batch 1, eval mode, no graph) and reads
each layer's output shape, so it needs no formula per architecture: whatever path
the input takes through the model is what gets counted.
"""

from __future__ import annotations

import numpy as np

from .. import backend, nn
from ..tensor import Tensor, no_grad

__all__ = ["count_flops", "conv_macs", "linear_macs"]


def conv_macs(conv: nn.Conv2d, output_shape) -> int:
    """Multiply-adds of one Conv2d per image; ``output_shape`` is ``(N, C_out, H_out, W_out)``."""
    kh, kw = conv.kernel_size
    _, c_out, h_out, w_out = output_shape
    return c_out * h_out * w_out * (conv.in_channels // conv.groups) * kh * kw


def linear_macs(linear: nn.Linear, output_shape) -> int:
    """Multiply-adds of one Linear per input row; ``output_shape`` is ``(N, ..., out_features)``."""
    rows_per_image = int(np.prod(output_shape[1:-1], dtype=np.int64)) if len(output_shape) > 2 else 1
    return rows_per_image * linear.in_features * linear.out_features


def count_flops(model: nn.Module, input_shape, by_layer: bool = False):
    """Forward multiply-adds (MACs) of ``model``'s Conv2d and Linear layers for one image.

    ``input_shape`` is ``(C, H, W)`` (or ``(1, C, H, W)``). Returns an int, or with
    ``by_layer=True`` a dict ``{layer name: MACs}`` in the order the forward ran them.
    The model's train/eval mode is restored afterwards.
    """
    shape = tuple(int(n) for n in input_shape)
    if len(shape) == 4:
        if shape[0] != 1:
            raise ValueError(f"count_flops: counts one image; give input_shape (C, H, W) or (1, C, H, W), got {shape}")
        shape = shape[1:]
    if len(shape) != 3:
        raise ValueError(f"count_flops: input_shape must be (C, H, W), got {tuple(input_shape)}")
    counted = {}

    def counting(name, layer, formula):
        forward = layer.forward

        def forward_and_count(x):
            out = forward(x)
            counted[name] = counted.get(name, 0) + formula(layer, out.shape)  # a layer run twice counts twice
            return out

        return forward_and_count

    layers = [(name, layer, conv_macs if isinstance(layer, nn.Conv2d) else linear_macs)
              for name, layer in model.named_modules() if isinstance(layer, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    parameter = next(model.parameters(), None)
    dtype = parameter.data.dtype if parameter is not None else np.float32
    device = backend.device_of(parameter.data) if parameter is not None else "cpu"
    try:
        for name, layer, formula in layers:
            layer.forward = counting(name, layer, formula)   # an instance attribute hides the class's forward
        model.eval()
        with no_grad():
            model(Tensor(np.zeros((1, *shape), dtype=dtype), device=device))
    finally:
        for _, layer, _ in layers:
            del layer.forward
        model.train(was_training)
    return counted if by_layer else sum(counted.values())
