"""Arrays as small PNG pictures for the page (``data:`` URLs, so they travel inside the JSON).

The browser enlarges them with ``image-rendering: pixelated``, so a 10x10 feature map is
sent as 10x10 pixels (a hundred-odd bytes) and every cell stays a sharp square.

Colours:

* **maps that are never negative** (after ReLU or pooling): black (0) to white (the
  largest value *in the layer*), so a weak map looks weak next to a strong one;
* **maps with signs** (a convolution's raw output, weights): blue for negative, black
  for 0, orange for positive, symmetric around 0 (the largest magnitude in the layer);
* **heat** (saliency, Grad-CAM) over the input: dark blue to red to yellow, see-through
  where the heat is low.
"""

from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["png_data_url", "scale_layer", "colour", "overlay", "input_picture", "filter_pictures"]

# Colour ramps: (position 0..1, RGB) stops, interpolated linearly.
GREY = ((0.0, (0, 0, 0)), (1.0, (255, 255, 255)))
SIGNED = ((0.0, (80, 170, 255)), (0.5, (0, 0, 0)), (1.0, (255, 160, 40)))
HEAT = ((0.0, (20, 20, 120)), (0.35, (40, 120, 255)), (0.6, (80, 220, 120)), (0.8, (250, 220, 40)),
        (1.0, (255, 40, 20)))


def png_data_url(pixels: np.ndarray) -> str:
    """uint8 (H, W) grey or (H, W, 3) RGB -> ``"data:image/png;base64,..."``."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colour(values: np.ndarray, ramp) -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3) along a ramp of stops."""
    positions = np.array([p for p, _ in ramp])
    colours = np.array([c for _, c in ramp], dtype=np.float64)
    v = np.clip(values, 0.0, 1.0)
    rgb = np.stack([np.interp(v, positions, colours[:, k]) for k in range(3)], axis=-1)
    return rgb.round().astype(np.uint8)


def scale_layer(output: np.ndarray) -> dict:
    """How one layer's output is coloured: ``{"signed": bool, "low": float, "high": float}``.

    One scale for the whole layer (not one per map), so maps can be compared.
    """
    low, high = float(output.min()), float(output.max())
    if low < 0:
        top = max(abs(low), abs(high)) or 1.0
        return {"signed": True, "low": -top, "high": top}
    return {"signed": False, "low": 0.0, "high": high if high > 0 else 1.0}


def coloured(array: np.ndarray, scale: dict) -> np.ndarray:
    """An array (any shape) as uint8 RGB (..., 3) with a layer's scale."""
    if scale["signed"]:
        return colour(0.5 + 0.5 * array / scale["high"], SIGNED)
    return colour(array / scale["high"], GREY)


def input_picture(image: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W), C = 1 or 3 -> what PNG wants: (H, W) or (H, W, 3)."""
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def normalised_picture(normalised: np.ndarray) -> tuple:
    """The normalised input (C, H, W) as a picture: (uint8 picture, (low, high)).

    Grey inputs get the signed colours (0 = the training images' mean pixel is black);
    colour inputs are stretched to [0, 255] per image, as there is no one colour for a sign.
    """
    low, high = float(normalised.min()), float(normalised.max())
    if normalised.shape[0] == 1:
        return coloured(normalised[0], scale_layer(normalised)), (low, high)
    span = high - low if high > low else 1.0
    return ((normalised - low) / span * 255).round().astype(np.uint8).transpose(1, 2, 0), (low, high)


def overlay(image: np.ndarray, heat: np.ndarray, scale: int) -> np.ndarray:
    """The input (C, H, W) uint8, enlarged ``scale`` times, with ``heat`` ((H*scale, W*scale), >= 0) over it.

    Heat is divided by its largest value (the 99.5th percentile for speckled saliency
    maps, so one extreme pixel does not make all the others invisible).
    """
    base = input_picture(image)
    base = np.repeat(np.repeat(base, scale, axis=0), scale, axis=1).astype(np.float64)
    if base.ndim == 2:
        base = np.stack([base] * 3, axis=-1)
    base = 0.35 * base + 0.65 * base.mean(axis=-1, keepdims=True)  # muted, so the heat stands out
    top = float(np.percentile(heat, 99.5)) if heat.size else 0.0
    level = np.clip(heat / top, 0.0, 1.0) if top > 0 else np.zeros_like(heat)
    alpha = (0.75 * level ** 0.7)[..., None]
    blended = base * (1 - alpha) + colour(level, HEAT).astype(np.float64) * alpha
    return blended.round().astype(np.uint8)


def enlarge(heat: np.ndarray, scale: int) -> np.ndarray:
    """A heat map (H, W) enlarged ``scale`` times, bilinearly (smooth, for overlays)."""
    from PIL import Image

    h, w = heat.shape
    picture = Image.fromarray(heat.astype(np.float32)).resize((w * scale, h * scale), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float64)


def filter_pictures(weight: np.ndarray) -> list:
    """The first layer's filters (out, in, kh, kw) as pictures: signed colours for grey inputs,
    RGB for colour inputs (0 = grey, the strongest weight of the layer = full colour)."""
    top = float(np.abs(weight).max()) or 1.0
    pictures = []
    for kernel in weight:
        if kernel.shape[0] == 3:
            rgb = (0.5 + 0.5 * kernel / top).transpose(1, 2, 0)
            pictures.append(png_data_url((rgb * 255).round().astype(np.uint8)))
        else:  # grey input (or more channels): the first input channel
            pictures.append(png_data_url(colour(0.5 + 0.5 * kernel[0] / top, SIGNED)))
    return pictures
