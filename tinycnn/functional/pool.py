"""Pooling: max, average, and adaptive (e.g. global) average over 2-D windows.

A pooling window at output pixel (oh, ow) covers input rows
``oh*SH .. oh*SH + KH - 1`` and columns ``ow*SW .. ow*SW + KW - 1`` (after
padding). Instead of looping over windows, we loop over the KH * KW *offsets*
inside a window: the pixels at offset (i, j) of every window form one strided
view of the input, ``x[:, :, i::SH, j::SW]`` cut to OH x OW (``offset_view``,
tinycnn/windows.py). Each step is then one vectorized operation on a whole
(N, C, OH, OW) array. The backward adds the gradient back through the same views.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import backend, fast
from ..backend import get_array_module
from ..tensor import Function, Tensor
from ..windows import extra_reach, offset_view, pad_images, pair, pool_output_size, unpad
from .math import mean

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


class MaxPool2d(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW), the largest value of every window.

    The gradient of each output goes to the one input that was the maximum; on a
    tie, to the first of them in row-major window order (as PyTorch on the CPU).
    The forward keeps no argmax: the backward finds the maxima again by comparing
    each offset with the output (plain comparisons are much faster in NumPy than
    the masked updates that tracking an argmax in the forward would take).

    ``dilation`` spaces a window's pixels (offset (i, j) reads row i*DH, column j*DW);
    ``extra`` = (EH, EW) rows and columns of -inf past the bottom and right padding give
    ceil mode's last windows, which hang over the edge, something to read.
    """

    def forward(self, x, kernel_size, stride, padding, dilation, extra, out_size):
        xp = get_array_module(x)
        (kh, kw), (dh, dw) = kernel_size, dilation
        padded = pad_images(x, padding, -np.inf, extra)               # padding never wins the max
        out = offset_view(padded, 0, 0, stride, out_size).copy()      # (N, C, OH, OW)
        for i in range(kh):
            for j in range(kw):
                out = xp.maximum(out, offset_view(padded, i * dh, j * dw, stride, out_size))
        self.padded, self.out = padded, out
        self.args = kernel_size, stride, padding, dilation, extra, out_size
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        (kh, kw), stride, padding, (dh, dw), extra, out_size = self.args
        grad_padded = xp.zeros(self.padded.shape, dtype=grad.dtype)
        unclaimed = xp.ones(self.out.shape, dtype=bool)     # windows whose maximum is not found yet
        for i in range(kh):
            for j in range(kw):
                is_max = (offset_view(self.padded, i * dh, j * dw, stride, out_size) == self.out) & unclaimed
                unclaimed &= ~is_max                          # on a tie, only the first maximum gets the gradient
                window = offset_view(grad_padded, i * dh, j * dw, stride, out_size)
                window += grad * is_max                       # windows may overlap: add
        return unpad(grad_padded, padding, extra)


class AvgPool2d(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW), the mean of every window.

    Padded zeros count in the mean (PyTorch's default ``count_include_pad=True``),
    so every window divides by KH * KW.
    """

    def forward(self, x, kernel_size, stride, padding, out_size):
        xp = get_array_module(x)
        padded = pad_images(x, padding, 0.0)
        kh, kw = kernel_size
        out = xp.zeros(x.shape[:2] + tuple(out_size), dtype=x.dtype)
        for k in range(kh * kw):
            out += offset_view(padded, k // kw, k % kw, stride, out_size)
        out /= kh * kw
        self.padded_shape = padded.shape
        self.args = kernel_size, stride, padding, out_size
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        (kh, kw), stride, padding, out_size = self.args
        share = grad / (kh * kw)  # every input of a window gets an equal share
        grad_padded = xp.zeros(self.padded_shape, dtype=grad.dtype)
        for k in range(kh * kw):
            window = offset_view(grad_padded, k // kw, k % kw, stride, out_size)
            window += share
        return unpad(grad_padded, padding)


def _pool_args(name, x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Check a pooling call; return (kernel, stride, padding, dilation, extra, output size) as pairs
    (``extra``: the rows and columns ceil mode's last windows reach past the padding, windows.py)."""
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    kernel = pair(kernel_size, "kernel_size", name)
    stride = kernel if stride is None else pair(stride, "stride", name)
    padding = pair(padding, "padding", name)
    dilation = pair(dilation, "dilation", name)
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0 or min(dilation) < 1:
        raise ValueError(f"{name}: kernel_size and stride must be >= 1, padding >= 0 and dilation >= 1, "
                         f"got kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{name}: padding should be at most half of the kernel size, "
                         f"got padding={padding} for kernel_size={kernel}")
    h, w = x.shape[2:]
    reach = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if reach[0] > h + 2 * padding[0] or reach[1] > w + 2 * padding[1]:
        spread = f" with dilation {dilation}" if dilation != (1, 1) else ""
        raise ValueError(f"{name}: kernel {reach[0]}x{reach[1]}{spread} is larger than the padded input "
                         f"{h + 2 * padding[0]}x{w + 2 * padding[1]} (input {h}x{w}, padding {padding})")
    out_size = tuple(pool_output_size(*args, ceil_mode=bool(ceil_mode))
                     for args in zip((h, w), kernel, stride, padding, dilation))
    extra = extra_reach((h, w), kernel, stride, padding, dilation, out_size)
    return kernel, stride, padding, dilation, extra, out_size


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """Max over KH x KW windows. x: (N, C, H, W) -> (N, C, OH, OW).

    ``stride`` defaults to ``kernel_size`` (non-overlapping windows); padding counts as -inf;
    ``dilation`` spaces the window's pixels. OH = floor((H + 2*padding - DH*(KH-1) - 1) / stride) + 1,
    rounded up instead with ``ceil_mode=True`` (as GoogLeNet and SqueezeNet pool), where a last
    window that would start past the left padding and the input is dropped.
    """
    kernel, stride, padding, dilation, extra, out_size = _pool_args("max_pool2d", x, kernel_size, stride, padding,
                                                                    dilation, ceil_mode)
    args = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, extra=extra, out_size=out_size)
    if fast.enabled():   # the fast floor: a large batch split over the cores (tinycnn/fast/pool.py)
        return fast.MaxPool2d.apply(x, **args)
    return MaxPool2d.apply(x, **args)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over KH x KW windows (padded zeros count). x: (N, C, H, W) -> (N, C, OH, OW)."""
    kernel, stride, padding, _, _, out_size = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, kernel_size=kernel, stride=stride, padding=padding, out_size=out_size)


# --------------------------------------------------------------------------- adaptive
def _adaptive_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) matrix whose row i averages input cells [start_i, end_i).

    PyTorch's windows: start_i = floor(i * in / out), end_i = ceil((i + 1) * in / out).
    """
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@functools.lru_cache(maxsize=64)
def _adaptive_matrix_on(in_size: int, out_size: int, dtype: str, device: str):
    """``_adaptive_matrix`` as an array of ``dtype`` on ``device``, built and copied there once
    (not on every forward: on a GPU each copy is a host -> device transfer). Read-only."""
    return backend.to_device(_adaptive_matrix(in_size, out_size).astype(dtype), device)


class AdaptiveAvgPool2d(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW) with windows chosen to cover the input.

    A window is a rectangle of rows x columns, so its mean is separable: average
    the rows with ``rows (OH, H)``, the columns with ``cols (OW, W)``:
    ``out = rows @ x @ cols.T``, and the backward is ``rows.T @ grad @ cols``.
    """

    def forward(self, x, out_size):
        xp = get_array_module(x)
        device = backend.device_of(x)
        self.rows = _adaptive_matrix_on(x.shape[2], out_size[0], x.dtype.name, device)
        self.cols = _adaptive_matrix_on(x.shape[3], out_size[1], x.dtype.name, device)
        return xp.einsum("ih,nchw,jw->ncij", self.rows, x, self.cols, optimize=True)

    def backward(self, grad):
        xp = get_array_module(grad)
        return xp.einsum("ih,ncij,jw->nchw", self.rows, grad, self.cols, optimize=True)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size. x: (N, C, H, W) -> (N, C, OH, OW).

    ``output_size`` is an int or a pair (None keeps that input size).
    ``output_size=1`` is global average pooling, as at the end of a ResNet.
    """
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[2:]
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    out_h, out_w = (h if output_size[0] is None else output_size[0],
                    w if output_size[1] is None else output_size[1])
    out_h, out_w = pair((out_h, out_w), "output_size", "adaptive_avg_pool2d")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be >= 1, got {output_size}")
    if (out_h, out_w) == (1, 1):
        return mean(x, axis=(2, 3), keepdims=True)  # global pooling: one mean per channel
    if h % out_h == 0 and w % out_w == 0:
        kernel = (h // out_h, w // out_w)  # even split: plain non-overlapping windows
        return avg_pool2d(x, kernel, kernel)
    return AdaptiveAvgPool2d.apply(x, out_size=(out_h, out_w))
