"""im2col and col2im: turn a convolution into one matrix product.

A convolution multiplies every KH x KW window of the input with the kernel.
``im2col`` copies each window into a column of a matrix, so the whole
convolution becomes ``weight (O, C*KH*KW) @ cols (C*KH*KW, windows)``: one big
GEMM, which BLAS (CPU) or cuBLAS (GPU) runs at close to peak speed.
``col2im`` is its adjoint: it adds every column back onto the input pixels it
came from (a pixel inside several windows collects several contributions). It
turns the gradient of the columns into the gradient of the input.

Layout, "batch last". The columns are ordered (OH, OW, N), batch innermost:
``cols[(c, kh, kw), (oh, ow, n)]``. We first copy the input once into a
padded (C, H, W, N) array. Then every copy below moves runs of N (or OW * N)
contiguous numbers, and the col2im accumulation adds long contiguous runs too.
With the batch in the middle (N, C, H, W), the innermost runs would be only
OW numbers long, and NumPy's per-run overhead would dominate for small images.

Both functions loop only over the KH * KW kernel offsets, never over pixels or
batch items; each step is one vectorized strided copy or add.
"""

from __future__ import annotations

from ..backend import get_array_module

__all__ = ["pair", "conv_output_size", "im2col", "col2im"]


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


def _pad_batch_last(x, padding):
    """x: (N, C, H, W) -> (C, H + 2*PH, W + 2*PW, N), zeros around the image."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    if ph == 0 and pw == 0:
        return xp.ascontiguousarray(x.transpose(1, 2, 3, 0))
    padded = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    padded[:, ph:ph + h, pw:pw + w, :] = x.transpose(1, 2, 3, 0)
    return padded


def im2col(x, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """Copy every sliding window of ``x`` into a column.

    x: (N, C, H, W) -> cols (C*KH*KW, OH*OW*N)

    ``cols[(c, kh, kw), (oh, ow, n)] = x_padded[n, c, oh*SH + kh*DH, ow*SW + kw*DW]``.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh = conv_output_size(h, kh, sh, padding[0], dh)
    ow = conv_output_size(w, kw, sw, padding[1], dw)
    padded = _pad_batch_last(x, padding)  # (C, Hp, Wp, N)
    # A view, no copy yet: windows[c, i, j, y, x, n] is pixel (y*SH + i*DH, x*SW + j*DW)
    # of channel c, image n. Strides tell NumPy how many bytes one step along each axis skips.
    stride_c, stride_h, stride_w, stride_n = padded.strides
    windows = xp.lib.stride_tricks.as_strided(
        padded,
        shape=(c, kh, kw, oh, ow, n),
        strides=(stride_c, stride_h * dh, stride_w * dw, stride_h * sh, stride_w * sw, stride_n),
    )
    # The one copy that makes the view a matrix (a no-op for a 1x1, stride-1 kernel).
    return xp.ascontiguousarray(windows).reshape(c * kh * kw, oh * ow * n)


def col2im(cols, x_shape: tuple, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """Add every column back onto the pixels of its window (the adjoint of im2col).

    cols: (C*KH*KW, OH*OW*N) -> (N, C, H, W)
    """
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    padded = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # The pixels that kernel offset (i, j) touched, as a strided view of `padded`.
            # Windows overlap, so we must add, not assign. Writing through a named view
            # (`window += ...`) updates `padded` in place without a temporary copy.
            window = padded[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw, :]
            window += cols[:, i, j]
    image = padded[:, ph:ph + h, pw:pw + w, :]  # drop the padding
    return xp.ascontiguousarray(image.transpose(3, 0, 1, 2))
