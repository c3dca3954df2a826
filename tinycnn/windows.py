"""Window arithmetic that both floors share: sizes, pairs, padding and offset views.

A convolution or pooling window at output pixel (y, x) covers the (padded) input rows
``y*SH + i*DH`` for the kernel offsets i = 0 .. KH-1, and likewise the columns. Instead of
looping over windows, the ops loop over the KH*KW *offsets*: the pixels at offset (i, j) of
every window form one strided view of the padded input (``offset_view``), an (N, C, OH, OW)
array on which one vectorized operation does the work of all windows at once.
"""

from __future__ import annotations

from .backend import get_array_module

__all__ = ["pair", "conv_output_size", "output_size", "pad_images", "unpad", "offset_view"]


def pair(value, name: str = "argument", op: str = "conv2d") -> tuple:
    """``3 -> (3, 3)``; ``(3, 5)`` stays. For kernel_size, stride, padding, dilation."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0):
        return int(value), int(value)
    try:
        first, second = value
        return int(first), int(second)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Number of window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_size(image_size: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple = (1, 1)) -> tuple:
    """(OH, OW) for an (H, W) image: ``conv_output_size`` along each axis."""
    return tuple(conv_output_size(*args) for args in zip(image_size, kernel, stride, padding, dilation))


def pad_images(x, padding: tuple, value: float = 0.0):
    """x (N, C, H, W) -> (N, C, H + 2*PH, W + 2*PW), ``value`` around each image (x itself without padding)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    padded = get_array_module(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def unpad(padded, padding: tuple):
    """The inverse of ``pad_images``, a view: (N, C, Hp, Wp) -> (N, C, Hp - 2*PH, Wp - 2*PW)."""
    ph, pw = padding
    return padded[:, :, ph:padded.shape[2] - ph, pw:padded.shape[3] - pw]


def offset_view(padded, top: int, left: int, stride: tuple, out_size: tuple):
    """The pixel at offset (top, left) of every window, a view: (N, C, Hp, Wp) -> (N, C, OH, OW).

    For kernel offset (i, j) with dilation (DH, DW), ``top = i*DH`` and ``left = j*DW``.
    Writing into the view writes into ``padded``.
    """
    (sh, sw), (oh, ow) = stride, out_size
    return padded[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]
