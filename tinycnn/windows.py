"""Window arithmetic that both floors share: sizes, pairs, padding and offset views.

A convolution or pooling window at output pixel (y, x) covers the (padded) input rows
``y*SH + i*DH`` for the kernel offsets i = 0 .. KH-1, and likewise the columns. Instead of
looping over windows, the ops loop over the KH*KW *offsets*: the pixels at offset (i, j) of
every window form one strided view of the padded input (``offset_view``), an (N, C, OH, OW)
array on which one vectorized operation does the work of all windows at once.
"""

from __future__ import annotations

from .backend import get_array_module

__all__ = ["pair", "conv_output_size", "pool_output_size", "output_size", "pad_images", "unpad", "extra_reach",
           "offset_view"]


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


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Window positions along one axis for pooling: ``conv_output_size``, or with ``ceil_mode``
    the division rounded up, so a last, partial window covers the rows the floor would drop.

    That last window must still start inside the input or its left padding (PyTorch's rule):
    one that would start in the right padding only is not counted. For 7 rows, kernel 2,
    stride 2: 3 windows, 4 with ceil_mode (the 4th covers row 6 only).
    """
    reach = dilation * (kernel - 1) + 1
    if not ceil_mode:
        return (size + 2 * padding - reach) // stride + 1
    count = -(-(size + 2 * padding - reach) // stride) + 1
    if (count - 1) * stride >= size + padding:
        count -= 1
    return count


def output_size(image_size: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple = (1, 1)) -> tuple:
    """(OH, OW) for an (H, W) image: ``conv_output_size`` along each axis."""
    return tuple(conv_output_size(*args) for args in zip(image_size, kernel, stride, padding, dilation))


def pad_images(x, padding: tuple, value: float = 0.0, extra: tuple = (0, 0)):
    """x (N, C, H, W) -> (N, C, H + 2*PH + EH, W + 2*PW + EW), ``value`` around each image
    (x itself without padding).

    ``extra`` = (EH, EW) adds that many more rows at the bottom and columns at the right:
    room for the last windows of ceil-mode pooling, which reach past the padding.
    """
    (ph, pw), (eh, ew) = padding, extra
    if ph == pw == eh == ew == 0:
        return x
    n, c, h, w = x.shape
    padded = get_array_module(x).full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def unpad(padded, padding: tuple, extra: tuple = (0, 0)):
    """The inverse of ``pad_images``, a view: (N, C, Hp, Wp) -> (N, C, Hp - 2*PH - EH, Wp - 2*PW - EW)."""
    (ph, pw), (eh, ew) = padding, extra
    return padded[:, :, ph:padded.shape[2] - ph - eh, pw:padded.shape[3] - pw - ew]


def extra_reach(image_size: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                out_size: tuple) -> tuple:
    """(EH, EW): how far the last of ``out_size`` windows reach past the padded image (0 if not).

    Only ceil-mode pooling has windows that do: its last window may hang over the bottom or
    right edge, and ``pad_images(..., extra=)`` adds that many rows or columns.
    """
    return tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
                 for size, k, s, p, d, o in zip(image_size, kernel, stride, padding, dilation, out_size))


def offset_view(padded, top: int, left: int, stride: tuple, out_size: tuple):
    """The pixel at offset (top, left) of every window, a view: (N, C, Hp, Wp) -> (N, C, OH, OW).

    For kernel offset (i, j) with dilation (DH, DW), ``top = i*DH`` and ``left = j*DW``.
    Writing into the view writes into ``padded``.
    """
    (sh, sw), (oh, ow) = stride, out_size
    return padded[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]
