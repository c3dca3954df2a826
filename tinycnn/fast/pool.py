"""The fast floor's max pooling: the reference's loop over window offsets, a large batch split over the cores.

Computes exactly what the reference computes (functional/pool.py, ``MaxPool2d``): the same
maxima, and the gradient to the first maximum of each window. What it adds, for speed:

* every image is pooled on its own, so a large batch is split into parts, one per core
  (workers.py): about 1.7x faster on 2 cores for a LeNet-5 max pooling;
* windows that do not overlap (stride >= kernel) never share an input pixel, so the
  backward writes each offset's gradient straight into its view, with no temporary; when
  they also tile the input exactly (stride == kernel) nothing needs zeroing first.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..tensor import Function
from ..windows import offset_view, pad_images, unpad
from .workers import batch_parts, map_parts

__all__ = ["MaxPool2d"]


class MaxPool2d(Function):
    """x: (N, C, H, W) -> (N, C, OH, OW), called as the reference's ``MaxPool2d`` is."""

    def forward(self, x, kernel_size, stride, padding, dilation, extra, out_size):
        xp = get_array_module(x)
        padded = pad_images(x, padding, -np.inf, extra)  # padding never wins the max
        out = xp.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
        self.padded, self.out = padded, out
        self.args = kernel_size, stride, padding, dilation, extra, out_size
        map_parts(lambda part: self._forward_part(padded[part], out[part]), batch_parts(x))
        return out

    def _forward_part(self, padded, out):
        xp = get_array_module(out)
        (kh, kw), stride, _, (dh, dw), _, out_size = self.args
        out[...] = offset_view(padded, 0, 0, stride, out_size)
        for k in range(1, kh * kw):
            xp.maximum(out, offset_view(padded, k // kw * dh, k % kw * dw, stride, out_size), out=out)

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_padded = xp.empty(self.padded.shape, dtype=grad.dtype)
        map_parts(lambda part: self._backward_part(grad[part], self.padded[part], self.out[part], grad_padded[part]),
                  batch_parts(grad_padded))
        return unpad(grad_padded, self.args[2], self.args[4])

    def _backward_part(self, grad, padded, out, grad_padded):
        """The gradient of one part of the batch, written into its grad_padded (filled here)."""
        xp = get_array_module(grad)
        (kh, kw), stride, _, (dh, dw), _, out_size = self.args
        disjoint = stride[0] >= dh * (kh - 1) + 1 and stride[1] >= dw * (kw - 1) + 1   # stride >= a window's reach
        tiled = (dh, dw) == (1, 1) and (kh, kw) == tuple(stride) and (out_size[0] * kh, out_size[1] * kw) == padded.shape[2:]
        if not tiled:
            grad_padded[...] = 0
        unclaimed = xp.ones(out.shape, dtype=bool)  # windows whose maximum is not found yet
        is_max = xp.empty(out.shape, dtype=bool)    # reused for every offset: fewer fresh arrays
        for k in range(kh * kw):
            top, left = k // kw * dh, k % kw * dw
            xp.equal(offset_view(padded, top, left, stride, out_size), out, out=is_max)
            is_max &= unclaimed       # on a tie, only the first maximum gets the gradient
            unclaimed ^= is_max       # is_max is inside unclaimed: xor removes exactly those windows
            window = offset_view(grad_padded, top, left, stride, out_size)
            if disjoint:
                xp.multiply(grad, is_max, out=window)  # in place through the view
            else:
                window += grad * is_max
