"""The fast floor's depthwise convolution: the reference's multiply-add per kernel offset
(functional/depthwise.py), a few images at a time, on every core.

It computes what the reference computes, offset by offset in the same order, so the output
and the input gradient are the same numbers; the weight gradient adds its per-chunk sums
in another order (tests/test_new_ops.py holds the two floors equal). What it adds, for speed:

* chunks of a few images whose padded input, output and one scratch array (about
  ``CHUNK_BYTES`` together) stay in the core's cache across the KH*KW passes over them,
  where the whole batch would stream through main memory once per offset;
* the chunks dealt out to the worker threads (``map_chunks``, workers.py), the weight
  gradient's per-chunk sums added up in chunk order (the same result in every run);
* products written into the scratch array (``out=``) rather than a fresh temporary per
  offset; with a channel multiplier of 1 (MobileNet, EfficientNet) a plain broadcast
  multiply in place of the reference's einsum over K.

On a GPU the whole batch is one chunk (its memory is fast, and one large kernel launch per
offset keeps it busy).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Function
from ..windows import offset_view, output_size, pad_images, unpad
from .workers import get_num_threads, map_chunks

__all__ = ["DepthwiseConv2d", "CHUNK_BYTES"]

# What one chunk's padded input, output and scratch arrays may take: about one core's L2 cache.
CHUNK_BYTES = 1 * 2**20


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


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), weight: (C*K, 1, KH, KW), bias: (C*K,) or None -> (N, C*K, OH, OW).

    Called as the reference's ``DepthwiseConv2d`` is (functional/conv.py chooses between them).
    """

    def forward(self, x, weight, bias, stride, padding, dilation):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        kh, kw = weight.shape[2:]
        out_size = output_size(x.shape[2:], (kh, kw), stride, padding, dilation)
        filters = weight.reshape(c, -1, kh, kw)                                        # (C, K, KH, KW)
        multiplier = filters.shape[1]
        out = xp.empty((n, c, multiplier) + out_size, dtype=x.dtype)                   # (N, C, K, OH, OW)
        self.x, self.filters, self.args = x, filters, (stride, padding, dilation, out_size)
        # per offset, the columns of the filters as (C, K, 1, 1): broadcast over the pixels
        taps = [filters[:, :, i, j][:, :, None, None] for i in range(kh) for j in range(kw)]

        def forward_chunk(chunk, _):
            padded = pad_images(x[chunk], padding)
            out_chunk = out[chunk]
            scratch = xp.empty(out_chunk.shape, dtype=x.dtype)
            for k, tap in enumerate(taps):
                window = offset_view(padded, k // kw * dilation[0], k % kw * dilation[1], stride, out_size)
                if k == 0:
                    xp.multiply(window[:, :, None], tap, out=out_chunk)
                else:
                    xp.multiply(window[:, :, None], tap, out=scratch)
                    out_chunk += scratch

        per_image = (c * (x.shape[2] + 2 * padding[0]) * (x.shape[3] + 2 * padding[1])
                     + 2 * c * multiplier * out_size[0] * out_size[1]) * x.dtype.itemsize
        map_chunks(forward_chunk, _image_chunks(n, per_image, xp))
        out = out.reshape((n, weight.shape[0]) + out_size)                             # (N, C*K, OH, OW)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        x, filters = self.x, self.filters
        n, c = x.shape[:2]
        _, multiplier, kh, kw = filters.shape
        stride, padding, (dh, dw), out_size = self.args
        need_x, need_weight, need_bias = self.needs_input_grad[:3]
        grad_out = grad.reshape((n, c, multiplier) + out_size)                         # (N, C, K, OH, OW)
        grad_x = xp.empty(x.shape, dtype=grad.dtype) if need_x else None
        offsets = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]

        def backward_chunk(chunk, _):
            g = grad_out[chunk]
            part = None
            if need_weight:   # (C, K, KH*KW): this chunk's sums of window * grad, per offset
                padded = pad_images(x[chunk], padding)
                part = xp.empty((c, multiplier, kh * kw), dtype=grad.dtype)
                for k, (top, left) in enumerate(offsets):
                    window = offset_view(padded, top, left, stride, out_size)
                    part[:, :, k] = xp.einsum("ncyx,nckyx->ck", window, g)
            if need_x:
                size = g.shape[0]
                grad_padded = xp.zeros((size, c) + tuple(s + 2 * p for s, p in zip(x.shape[2:], padding)),
                                       dtype=grad.dtype)
                scratch = xp.empty((size, c) + out_size, dtype=grad.dtype)
                for k, (top, left) in enumerate(offsets):
                    window = offset_view(grad_padded, top, left, stride, out_size)
                    if multiplier == 1:
                        xp.multiply(g[:, :, 0], filters[:, 0, k // kw, k % kw][:, None, None], out=scratch)
                    else:
                        scratch[...] = xp.einsum("nckyx,ck->ncyx", g, filters[:, :, k // kw, k % kw])
                    window += scratch
                grad_x[chunk] = unpad(grad_padded, padding)
            return part

        per_image = (2 * c * (x.shape[2] + 2 * padding[0]) * (x.shape[3] + 2 * padding[1])
                     + c * (multiplier + 1) * out_size[0] * out_size[1]) * grad.dtype.itemsize
        weight_sum = map_chunks(backward_chunk, _image_chunks(n, per_image, xp))
        grad_weight = weight_sum.reshape(c * multiplier, 1, kh, kw) if need_weight else None
        grad_bias = grad.reshape(n, grad.shape[1], -1).sum(axis=2).sum(axis=0) if need_bias else None
        return grad_x, grad_weight, grad_bias
