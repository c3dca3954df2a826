"""The fast floor's depthwise convolution: the faster of two ways for each layer's shape.

``depthwise_conv2d`` (called from functional/conv.py's one dispatch line) chooses between

* the grouped im2col + GEMM (fast/conv.py, ``Conv2d`` with ``groups == C``): im2col copies
  the windows, then NumPy's ``matmul`` runs the C small products in one C loop. With no fused
  multiply-add in NumPy, this is hard to beat where the maps are large: 9 copies and one
  product, where a multiply-add per offset takes 9 multiplies and 9 adds;
* the reference's multiply-add per kernel offset (functional/depthwise.py), done here
  channels-last, a few images at a time on every core (``DepthwiseConv2d`` below). On small
  maps (the late, wide layers of MobileNet and EfficientNet: 672 channels at 4x4) the
  im2col's rows are a handful of pixels long and its copies crawl; channels-last, every
  multiply and add runs along all C channels at once.

The second way is used for output maps of at most ``MULTIPLY_ADD_MAX_PIXELS`` pixels and for
strided layers (whose GEMM backward cannot take fast/conv.py's full-convolution form and
falls back to col2im); benchmarks/depthwise.py measures both ways.

``DepthwiseConv2d`` computes what the reference computes, offset by offset in the same
order, so its output is the same numbers; the gradients add the same terms, the weight
gradient's in another order (tests/test_new_ops.py holds the floors equal). What it adds:

* channels-last layout (N, H, W, C): the per-offset view ``padded[:, i:i+OH, j:j+OW, :]``
  has the channels innermost, so NumPy's inner loops run over C (hundreds) rather than over
  OW (4 pixels); one transpose in and one out per chunk;
* chunks of a few images whose arrays (about ``CHUNK_BYTES``) stay in the core's cache across
  the KH*KW passes, dealt out to the worker threads (``map_chunks``, workers.py); the weight
  gradient's per-chunk sums added in chunk order (the same result in every run);
* products written into one scratch array (``out=``), not a fresh temporary per offset.

On a GPU the whole batch is one chunk.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Function
from ..windows import output_size
from .conv import Conv2d
from .workers import get_num_threads, map_chunks

__all__ = ["depthwise_conv2d", "DepthwiseConv2d", "CHUNK_BYTES", "MULTIPLY_ADD_MAX_PIXELS"]

# What one chunk's arrays may take: about one core's L2 cache.
CHUNK_BYTES = 1 * 2**20

# The multiply-add kernel for output maps of at most this many pixels (4x4), the grouped GEMM
# above (stride 1). Measured on 2 cores, float32, batch 64, forward: 576 channels at 4x4 1.6x
# and 1152 at 2x2 2x faster than the GEMM, 144 at 16x16 2x slower; stride 2, 144 channels
# 16x16: 1.3x faster, forward + backward 1.7x (benchmarks/depthwise.py).
MULTIPLY_ADD_MAX_PIXELS = 16


def depthwise_conv2d(x, weight, bias, stride, padding, dilation):
    """conv2d with groups == C on the fast floor: x (N, C, H, W), weight (C*K, 1, KH, KW) -> (N, C*K, OH, OW)."""
    oh, ow = output_size(x.shape[2:], weight.shape[2:], stride, padding, dilation)
    if oh * ow <= MULTIPLY_ADD_MAX_PIXELS or stride != (1, 1):   # small maps, or a strided one (see above)
        return DepthwiseConv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])


def _image_chunks(n: int, bytes_per_image: int, xp) -> list:
    """(slice of the batch, None) pairs for ``map_chunks``: each about ``CHUNK_BYTES``, their
    count a multiple of the workers'; on a GPU one chunk."""
    if xp is not np:
        return [(slice(0, n), None)]
    size = min(n, max(1, CHUNK_BYTES // bytes_per_image))
    count, workers = -(-n // size), get_num_threads()
    if workers > 1 and count > 1:
        count = min(n, -(-count // workers) * workers)
        size = -(-n // count)
    return [(slice(start, min(start + size, n)), None) for start in range(0, n, size)]


def _channels_last_padded(x, padding):
    """(n, C, H, W) -> (n, H + 2*PH, W + 2*PW, C), zeros around each image."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    padded[:, ph:ph + h, pw:pw + w] = x.transpose(0, 2, 3, 1)
    return padded


def _window(padded, top, left, stride, out_size):
    """Channels-last ``offset_view``: the pixel at (top, left) of every window, (n, OH, OW, C)."""
    (sh, sw), (oh, ow) = stride, out_size
    return padded[:, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), weight: (C*K, 1, KH, KW), bias: (C*K,) or None -> (N, C*K, OH, OW).

    Called as the reference's ``DepthwiseConv2d`` is.
    """

    def forward(self, x, weight, bias, stride, padding, dilation):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        kh, kw = weight.shape[2:]
        out_size = output_size((h, w), (kh, kw), stride, padding, dilation)
        taps = weight.reshape(c, -1, kh, kw).transpose(2, 3, 0, 1)                   # (KH, KW, C, K)
        multiplier = taps.shape[3]
        out = xp.empty((n, c * multiplier) + out_size, dtype=x.dtype)                  # (N, C*K, OH, OW)
        self.x, self.taps, self.args = x, taps, (stride, padding, dilation, out_size)

        def forward_chunk(chunk, _):
            padded = _channels_last_padded(x[chunk], padding)                          # (n, Hp, Wp, C)
            total = xp.empty(padded.shape[:1] + out_size + (c, multiplier), dtype=x.dtype)  # (n, OH, OW, C, K)
            scratch = xp.empty_like(total)
            for i in range(kh):
                for j in range(kw):
                    window = _window(padded, i * dilation[0], j * dilation[1], stride, out_size)  # (n, OH, OW, C)
                    if i == j == 0:
                        xp.multiply(window[..., None], taps[i, j], out=total)         # every k of every c
                    else:
                        xp.multiply(window[..., None], taps[i, j], out=scratch)
                        total += scratch
            out[chunk] = total.reshape(total.shape[:3] + (-1,)).transpose(0, 3, 1, 2)

        pixels = (h + 2 * padding[0]) * (w + 2 * padding[1])
        per_image = c * (pixels + 3 * multiplier * out_size[0] * out_size[1]) * x.dtype.itemsize
        map_chunks(forward_chunk, _image_chunks(n, per_image, xp))
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        x, taps = self.x, self.taps
        n, c, h, w = x.shape
        kh, kw, _, multiplier = taps.shape
        stride, (ph, pw), (dh, dw), out_size = self.args
        offsets = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]             # in the reference's order
        need_x, need_weight, need_bias = self.needs_input_grad[:3]
        grad_x = xp.empty(x.shape, dtype=grad.dtype) if need_x else None

        def backward_chunk(chunk, _):
            g = grad[chunk]
            size = g.shape[0]
            g = xp.ascontiguousarray(g.reshape((size, c, multiplier) + out_size).transpose(0, 3, 4, 1, 2))  # (n, OH, OW, C, K)
            scratch = xp.empty(g.shape[:4], dtype=grad.dtype)                          # (n, OH, OW, C)
            part = None
            if need_weight:   # (KH*KW, C, K): this chunk's sums of window * grad, per offset
                padded = _channels_last_padded(x[chunk], (ph, pw))
                part = xp.empty((kh * kw, c, multiplier), dtype=grad.dtype)
                for k, (top, left) in enumerate(offsets):
                    window = _window(padded, top, left, stride, out_size)
                    if multiplier == 1:   # (einsum reads both arrays once and writes no product array)
                        part[k, :, 0] = xp.einsum("nyxc,nyxc->c", window, g[..., 0])
                    else:
                        part[k] = xp.einsum("nyxc,nyxck->ck", window, g)
            if need_x:
                grad_padded = xp.zeros((size, h + 2 * ph, w + 2 * pw, c), dtype=grad.dtype)
                for k, (top, left) in enumerate(offsets):
                    tap = taps[k // kw, k % kw]                                         # (C, K)
                    if multiplier == 1:
                        xp.multiply(g[..., 0], tap[:, 0], out=scratch)
                    else:
                        scratch[...] = xp.einsum("nyxck,ck->nyxc", g, tap)
                    _window(grad_padded, top, left, stride, out_size)[...] += scratch  # windows overlap: add
                grad_x[chunk] = grad_padded[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
            return part

        pixels = (h + 2 * ph) * (w + 2 * pw)
        per_image = c * (2 * pixels + (multiplier + 1) * out_size[0] * out_size[1]) * grad.dtype.itemsize
        weight_sum = map_chunks(backward_chunk, _image_chunks(n, per_image, xp))       # (KH*KW, C, K)
        grad_weight = None
        if need_weight:
            grad_weight = weight_sum.reshape(kh, kw, c * multiplier).transpose(2, 0, 1).reshape(c * multiplier, 1, kh, kw)
        grad_bias = grad.reshape(n, grad.shape[1], -1).sum(axis=2).sum(axis=0) if need_bias else None
        return grad_x, grad_weight, grad_bias
