"""Looking inside one trained model: every layer's output, saliency and Grad-CAM for one image.

This is lesson 13's toolbox (``lessons/13_what_the_network_sees.py``) made to work on any
model of the zoo, so that ``tinycnn explore`` can show a student *their own* model:

* :func:`display_layers` names the layers a student would list when reading the model:
  the children of the model, with every ``Sequential`` opened up (LeNet-5's
  ``features.0`` conv, ``features.1`` ReLU, ...; a ResNet's blocks ``layer1.0``, ...);
* :class:`Recorder` keeps the output of every module called during one forward pass
  (tinycnn's modules have no hooks: it swaps each module's ``forward`` for a wrapper
  for the length of a ``with`` block, then puts it back);
* :meth:`ModelView.look` runs one image forward *and* backward once: the gradient of the
  chosen class's score reaches both the input (saliency, Simonyan et al. 2014) and the
  last spatial feature maps, kept with ``retain_grad`` (Grad-CAM, Selvaraju et al. 2017).

Everything here returns NumPy arrays; turning them into pictures is :mod:`.pictures`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .. import backend, nn
from ..tensor import Tensor

__all__ = ["ModelView", "Recorder", "Call", "Look", "display_layers", "place_on_input"]

# Layers whose output is a summary of the maps before them, never a Grad-CAM target.
_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def display_layers(model) -> list:
    """The names of the layers to show, in definition order: children, with Sequentials opened."""
    names = []

    def visit(prefix: str, module) -> None:
        for name, child in module.named_children():
            if child is None:
                continue
            if isinstance(child, nn.Sequential):
                visit(f"{prefix}{name}.", child)
            else:
                names.append(f"{prefix}{name}")

    visit("", model)
    return names


@dataclass
class Call:
    """One module call seen by a :class:`Recorder`: who, on what size, and what came out."""

    name: str
    module: object
    input_shape: tuple | None  # shape of the first positional input
    output: Tensor


class Recorder:
    """Keep the output of every named module called inside a ``with`` block, in call order.

        with Recorder(model) as calls:
            logits = model(x)
        calls  # [Call("features.0", Conv2d, (1, 1, 28, 28), Tensor (1, 6, 28, 28)), ...]

    A module records *after* it returns, so a block's inner layers come before the block.
    Not for two threads at once on one model (:class:`ModelView` holds a lock).
    """

    def __init__(self, model):
        self.model = model
        self.calls: list = []
        self._wrapped: list = []

    def __enter__(self) -> list:
        for name, module in self.model.named_modules():
            if module is self.model:
                continue
            module.forward = self._recording(name, module, module.forward)  # an instance attribute hides the method
            self._wrapped.append(module)
        return self.calls

    def _recording(self, name, module, forward):
        def recorded(*args, **kwargs):
            out = forward(*args, **kwargs)
            shape = tuple(args[0].shape) if args and hasattr(args[0], "shape") else None
            self.calls.append(Call(name, module, shape, out))
            return out

        return recorded

    def __exit__(self, *exc) -> None:
        for module in self._wrapped:
            del module.forward  # the class's forward shows through again
        self._wrapped.clear()


@dataclass
class Look:
    """What :meth:`ModelView.look` finds for one image (NumPy arrays, batch dimension dropped).

    Attributes:
        probabilities: softmax of the logits, (classes,).
        target: the class the explanations are for (the top class unless asked otherwise).
        normalised: the input as the first layer receives it, (C, H, W) float32.
        outputs: [(layer name, output array)] for the display layers, in call order;
            maps are (C, H, W), vectors (F,).
        saliency: |d score / d pixel|, the largest over the channels, (H, W).
        cam: Grad-CAM on the last spatial maps, (h, w), or None when the model has none.
        cam_layer: the name of that layer.
        cam_grid: (start, jump) of the cam's cells on the input (see :func:`receptive_field_grid`).
        cam_on_input: the cam placed over the input pixels (H, W) (see :func:`place_on_input`).
    """

    probabilities: np.ndarray
    target: int
    normalised: np.ndarray
    outputs: list = field(default_factory=list)
    saliency: np.ndarray | None = None
    cam: np.ndarray | None = None
    cam_layer: str | None = None
    cam_grid: tuple | None = None
    cam_on_input: np.ndarray | None = None


class ModelView:
    """One trained model, ready to be looked into, one image at a time.

    Args:
        model: a tinycnn model (e.g. from :func:`tinycnn.runner.model_from_checkpoint`).
        meta: the checkpoint's meta: ``classes``, ``image_shape`` (C, H, W), ``mean``, ``std``.
        device: where the model is (``"cpu"``, ``"cuda"``).
    """

    def __init__(self, model, meta: dict, device: str = "cpu"):
        self.model = model.eval()
        self.model.requires_grad_(False)  # gradients are wanted for the input and maps only, not the weights
        self.meta = meta
        self.device = device
        self.classes = list(meta["classes"])
        self.image_shape = tuple(int(n) for n in meta["image_shape"])
        self.mean = np.asarray(meta["mean"], dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(meta["std"], dtype=np.float32).reshape(-1, 1, 1)
        self.lock = threading.Lock()  # one image at a time: the Recorder changes the model while it runs
        self.layer_names = display_layers(model)
        self.layers = self._summary()

    # ------------------------------------------------------------------ the layers
    def _summary(self) -> list:
        """[{name, type, description, output_shape, parameters}] from one forward pass of a blank image."""
        blank = np.zeros(self.image_shape, dtype=np.uint8)
        with self.lock:
            calls = self._forward(self.normalise(blank), grad=False)[1]
        shown = set(self.layer_names)
        layers = []
        for call in calls:
            if call.name not in shown:
                continue
            module = call.module
            layers.append({
                "name": call.name,
                "type": type(module).__name__,
                "description": module.extra_repr() or type(module).__name__,
                "output_shape": list(call.output.shape[1:]),
                "parameters": int(sum(p.data.size for p in module.parameters())),
            })
        return layers

    def first_conv_weight(self) -> np.ndarray | None:
        """The first convolution's weights (out, in, kh, kw) as NumPy, or None without a convolution."""
        for module in self.model.modules():
            if isinstance(module, nn.Conv2d):
                return backend.to_numpy(module.weight.data)
        return None

    def first_conv_name(self) -> str | None:
        for name, module in self.model.named_modules():
            if isinstance(module, nn.Conv2d):
                return name
        return None

    # ------------------------------------------------------------------ one image
    def normalise(self, image: np.ndarray) -> np.ndarray:
        """uint8 (C, H, W) -> float32 (C, H, W): pixels / 255, then (x - mean) / std per channel, as in training."""
        if tuple(image.shape) != self.image_shape:
            raise ValueError(f"the model takes images of shape {self.image_shape}, got {tuple(image.shape)}")
        return ((image.astype(np.float32) / 255.0 - self.mean) / self.std).astype(np.float32)

    def _forward(self, normalised: np.ndarray, grad: bool):
        x = Tensor(normalised[None], requires_grad=grad, device=self.device)
        with Recorder(self.model) as calls:
            logits = self.model(x)
        return x, calls, logits

    def look(self, image: np.ndarray, target: int | None = None) -> Look:
        """Run ``image`` (uint8 (C, H, W), already the model's size) forward and backward once.

        ``target``: the class to explain (default: the predicted one).
        """
        if target is not None and not 0 <= target < len(self.classes):
            raise ValueError(f"target must be a class index in [0, {len(self.classes)}), got {target}")
        normalised = self.normalise(image)
        with self.lock:
            x, calls, logits = self._forward(normalised, grad=True)
            scores = backend.to_numpy(logits.data)[0].astype(np.float64)
            probabilities = np.exp(scores - scores.max())
            probabilities /= probabilities.sum()
            target = int(np.argmax(scores)) if target is None else int(target)

            shown = set(self.layer_names)
            cam_call = _grad_cam_target(calls, shown)
            if cam_call is not None:
                cam_call.output.retain_grad()
            # The score (the logit, before softmax) of the target class; one backward gives both gradients.
            choose = np.zeros(logits.shape, dtype=np.float32)
            choose[0, target] = 1.0
            (logits * Tensor(choose, device=self.device)).sum().backward()

            saliency = np.abs(backend.to_numpy(x.grad.data)[0]).max(axis=0)
            cam = cam_grid = cam_on_input = None
            if cam_call is not None:
                maps = backend.to_numpy(cam_call.output.data)[0]                 # A_k: (K, h, w)
                alpha = backend.to_numpy(cam_call.output.grad.data)[0].mean(axis=(1, 2), keepdims=True)  # (K, 1, 1)
                cam = np.maximum((alpha * maps).sum(axis=0), 0.0)               # ReLU(sum_k alpha_k A_k): (h, w)
                cam_grid = receptive_field_grid(calls, cam_call, self.image_shape[1:])
                cam_on_input = place_on_input(cam, *cam_grid, self.image_shape[1:])
            outputs = [(call.name, backend.to_numpy(call.output.data)[0]) for call in calls if call.name in shown]
        return Look(probabilities, target, normalised, outputs, saliency, cam,
                    cam_call.name if cam_call is not None else None, cam_grid, cam_on_input)

    def predict_batch(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Softmax probabilities (N, classes) for uint8 images (N, C, H, W), a batch at a time."""
        from ..runner import prepare_images
        from ..train import predict

        parts = []
        with self.lock:
            for start in range(0, len(images), batch_size):
                parts.append(predict(self.model, prepare_images(images[start: start + batch_size], self.meta,
                                                                self.device)))
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)))


def _grad_cam_target(calls: list, shown: set):
    """The call whose output Grad-CAM looks at: the last display layer with spatial maps (N, K, h, w),
    h*w > 1, that is not a pooling layer (LeNet-5: the ReLU after conv2, 10x10; a ResNet: its last block)."""
    for call in reversed(calls):
        if call.name not in shown:
            continue
        shape = call.output.shape
        if len(shape) == 4 and shape[2] * shape[3] > 1 and not isinstance(call.module, _POOLING):
            return call
    return None


def _window(module):
    """(kernel, stride, padding) per axis of a conv or pooling window, as (2,) arrays; dilation folded in."""
    def pair(value):
        return np.array(value if isinstance(value, (tuple, list)) else (value, value), dtype=np.float64)

    kernel = pair(module.kernel_size)
    if isinstance(module, nn.Conv2d):
        kernel = pair(module.dilation) * (kernel - 1) + 1
    return kernel, pair(module.stride), pair(module.padding)


def receptive_field_grid(calls: list, target: Call, input_size) -> tuple:
    """Where the cells of ``target``'s maps sit on the input: (start, jump), each (2,) for (rows, columns).

    Cell i's centre is at input pixel ``start + i * jump`` (pixel centres are whole numbers). Each
    convolution or pooling window on the main path moves it: its window's centre is ``(k - 1) / 2 - p``
    cells in, and its stride multiplies the step. (Layers such as ReLU or batch norm keep the grid.)
    A window applied to maps of another size than the main path's (a ResNet's shortcut) is skipped.
    """
    start, jump = np.zeros(2), np.ones(2)
    size = tuple(input_size)
    for call in calls:
        if call.input_shape is not None and isinstance(call.module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            if tuple(call.input_shape[2:]) == size:
                kernel, stride, padding = _window(call.module)
                start = start + ((kernel - 1) / 2 - padding) * jump
                jump = jump * stride
                size = tuple(call.output.shape[2:])
        if call is target:
            break
    return start, jump


def place_on_input(cam: np.ndarray, start, jump, input_size, scale: int = 1) -> np.ndarray:
    """A coarse map (h, w) laid over the input grid (H * scale, W * scale), bilinearly between cell centres.

    Cell (i, j) is centred on input pixel ``start + (i, j) * jump``; pixels beyond half a cell
    outside the map get 0 (LeNet-5's 10x10 Grad-CAM covers the central 20x20 pixels, not all 28x28).
    """
    out_h, out_w = int(input_size[0]) * scale, int(input_size[1]) * scale
    axes = []
    for axis, (n_out, n_cells) in enumerate(((out_h, cam.shape[0]), (out_w, cam.shape[1]))):
        pixel = (np.arange(n_out) + 0.5) / scale - 0.5          # output sample -> input pixel coordinate
        cell = (pixel - start[axis]) / jump[axis]                # -> cell coordinate
        inside = (cell >= -0.5) & (cell <= n_cells - 0.5)
        cell = np.clip(cell, 0, n_cells - 1)
        low = np.floor(cell).astype(int)
        high = np.minimum(low + 1, n_cells - 1)
        axes.append((low, high, cell - low, inside))
    (r0, r1, fr, rin), (c0, c1, fc, cin) = axes
    top = cam[r0][:, c0] * (1 - fc) + cam[r0][:, c1] * fc
    bottom = cam[r1][:, c0] * (1 - fc) + cam[r1][:, c1] * fc
    placed = top * (1 - fr)[:, None] + bottom * fr[:, None]
    return placed * (rin[:, None] & cin[None, :])
