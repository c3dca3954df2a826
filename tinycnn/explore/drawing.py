"""A digit drawn with the mouse, prepared the way MNIST's digits were.

MNIST's digits were not simply shrunk to 28x28 (LeCun, Cortes & Burges, the MNIST page):
each one was scaled, keeping its aspect ratio, to fit a 20x20 box (anti-aliased, so grey
edges appear), then placed in the 28x28 image so that its centre of mass sits at the
centre. A model trained on them expects exactly that: a digit drawn across a big canvas
and squashed to 28x28 would be larger and placed otherwise than anything it has seen, and
it answers worse. :func:`centre_like_mnist` repeats the recipe for any drawing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centre_like_mnist"]


def centre_like_mnist(drawing: np.ndarray, size: int = 28, box: int | None = None,
                      threshold: int = 10) -> np.ndarray | None:
    """A drawing (H, W) uint8, light ink on black, as a (size, size) uint8 image the MNIST way.

    1. crop to the bounding box of the ink (pixels above ``threshold``);
    2. scale it, keeping the aspect ratio, so its longer side is ``box`` pixels
       (20 for 28x28: the same share of the image for other sizes), by area averaging;
    3. paste it into a black (size, size) image so that its centre of mass lands on the centre.

    Returns None for a drawing with no ink.
    """
    from PIL import Image

    if drawing.ndim != 2:
        raise ValueError(f"centre_like_mnist: expected a grey drawing (H, W), got shape {drawing.shape}")
    box = box or max(1, round(size * 20 / 28))
    rows = np.flatnonzero((drawing > threshold).any(axis=1))
    cols = np.flatnonzero((drawing > threshold).any(axis=0))
    if rows.size == 0:
        return None
    ink = drawing[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    scale = box / max(ink.shape)
    height, width = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    resample = Image.BOX if scale <= 1 else Image.BILINEAR
    small = np.asarray(Image.fromarray(ink).resize((width, height), resample), dtype=np.float64)

    # Centre of mass of the scaled digit, then the shift that puts it at the image centre.
    total = small.sum()
    if total == 0:
        return None
    centre_row = (small.sum(axis=1) * np.arange(height)).sum() / total
    centre_col = (small.sum(axis=0) * np.arange(width)).sum() / total
    top = int(round((size - 1) / 2 - centre_row))
    left = int(round((size - 1) / 2 - centre_col))
    # Keep the whole digit inside the image (a very lopsided digit cannot be centred by mass alone).
    top = min(max(top, 0), size - height)
    left = min(max(left, 0), size - width)

    out = np.zeros((size, size), dtype=np.float64)
    out[top: top + height, left: left + width] = small
    return np.clip(out.round(), 0, 255).astype(np.uint8)
