"""Batched affine warps (rotate, zoom, shift) by sampling on a grid.

To warp an image, do not push source pixels forward (that leaves holes): for
every *output* pixel, ask where it came from in the *input* and read the value
there. With coordinates measured from the image centre, an output pixel ``p``
comes from::

    source = R(angle)^-1 @ (p - shift) / zoom        (the inverse of: zoom, rotate, shift)

:func:`affine_matrices` builds these inverse maps as a (N, 2, 3) array, one per
image; :func:`affine_grid_sample` evaluates them for every pixel of every image at
once, (N, H, W) source coordinates, and reads the input there, by nearest pixel
or bilinearly (a weighted mean of the 4 surrounding pixels). Source points
outside the image read ``fill``.
"""

from __future__ import annotations

import numpy as np

from .. import backend

__all__ = ["affine_matrices", "affine_grid_sample"]


def affine_matrices(angle, zoom, shift_x, shift_y):
    """Inverse affine maps (N, 2, 3): output coords -> input coords, both about the centre.

    ``angle`` (radians, > 0 turns counter-clockwise as displayed, like ``np.rot90``),
    ``zoom`` (> 1 enlarges), ``shift_x``/``shift_y`` (pixels, > 0 moves right/down): (N,) each.
    """
    xp = backend.get_array_module(angle)
    # Image rows grow downwards, so turning counter-clockwise *on screen* is turning by
    # -angle in the usual (x right, y up) sense: the inverse map rotates by +angle.
    cos, sin = xp.cos(angle) / zoom, -xp.sin(angle) / zoom
    matrices = xp.empty((angle.shape[0], 2, 3), dtype=xp.float32)
    # [[cos, sin], [-sin, cos]], already divided by zoom.
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, sin
    matrices[:, 1, 0], matrices[:, 1, 1] = -sin, cos
    matrices[:, 0, 2] = -(cos * shift_x + sin * shift_y)
    matrices[:, 1, 2] = -(-sin * shift_x + cos * shift_y)
    return matrices


def affine_grid_sample(images, matrices, interpolation: str = "bilinear", fill: float = 0.0):
    """Warp each image (N, C, H, W) by its inverse map ``matrices`` (N, 2, 3).

    Returns (N, C, H, W) of the input's dtype (integer images are rounded back).
    """
    xp = backend.get_array_module(images)
    n, channels, height, width = images.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    out_y = (xp.arange(height, dtype=xp.float32) - cy)[None, :, None]     # (1, H, 1)
    out_x = (xp.arange(width, dtype=xp.float32) - cx)[None, None, :]      # (1, 1, W)
    m = matrices[:, :, :, None, None]                                     # (N, 2, 3, 1, 1)
    src_x = m[:, 0, 0] * out_x + m[:, 0, 1] * out_y + m[:, 0, 2] + cx     # (N, H, W)
    src_y = m[:, 1, 0] * out_x + m[:, 1, 1] * out_y + m[:, 1, 2] + cy
    batch = xp.arange(n)[:, None, None, None]
    channel = xp.arange(channels)[None, :, None, None]
    values = images.astype(xp.float32, copy=False)

    def read(y, x):
        """values at integer (y, x) (N, H, W) -> (N, C, H, W); ``fill`` where outside."""
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        y, x = xp.clip(y, 0, height - 1), xp.clip(x, 0, width - 1)
        picked = values[batch, channel, y[:, None], x[:, None]]
        return xp.where(inside[:, None], picked, xp.float32(fill))

    if interpolation == "nearest":
        out = read(xp.rint(src_y).astype(xp.int64), xp.rint(src_x).astype(xp.int64))
    elif interpolation == "bilinear":
        x0, y0 = xp.floor(src_x), xp.floor(src_y)
        wx, wy = (src_x - x0)[:, None], (src_y - y0)[:, None]             # (N, 1, H, W) weights
        x0, y0 = x0.astype(xp.int64), y0.astype(xp.int64)
        top = read(y0, x0) * (1 - wx) + read(y0, x0 + 1) * wx
        bottom = read(y0 + 1, x0) * (1 - wx) + read(y0 + 1, x0 + 1) * wx
        out = top * (1 - wy) + bottom * wy
    else:
        raise ValueError(f"affine_grid_sample: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")

    if np.issubdtype(images.dtype, xp.integer):
        info = np.iinfo(images.dtype)
        return xp.clip(xp.rint(out), info.min, info.max).astype(images.dtype)
    return out.astype(images.dtype, copy=False)
