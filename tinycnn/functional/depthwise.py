"""Depthwise convolution: every input channel convolved with its own K filters (the reference floor).

A depthwise convolution is ``conv2d`` with ``groups == C``: input channel c meets only the
output channels c*K .. c*K + K-1 (K, the channel multiplier, is ``out_channels / C``, 1 in
MobileNet and EfficientNet). The weight is (C*K, 1, KH, KW). Each group is one input
channel, so the grouped im2col + GEMM would run C tiny products (inner dimension KH*KW = 9),
for which BLAS is no help. Instead we multiply-accumulate over the KH*KW kernel offsets,
as pooling does (functional/pool.py): the pixels at offset (i, j) of every window are one
strided view of the padded input (``offset_view``, tinycnn/windows.py), an (N, C, OH, OW)
array, and one vectorised multiply-add handles that offset for every image, channel and
output pixel at once::

    out[n, c, k, y, x] = sum over i, j of padded[n, c, y*SH + i*DH, x*SW + j*DW] * weight[c, k, i, j]

Backward, per offset (i, j), through the same views::

    grad_weight[c, k, i, j]  = sum over n, y, x of window_ij[n, c, y, x] * grad[n, c, k, y, x]
    grad_padded at window_ij += sum over k of grad[n, c, k, y, x] * weight[c, k, i, j]   (windows overlap: add)

Python loops only over the KH*KW offsets, never over channels or pixels. The fast floor
(tinycnn/fast/depthwise.py) runs the same arithmetic a few images at a time on every core.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function
from ..windows import offset_view, output_size, pad_images, unpad

__all__ = ["DepthwiseConv2d"]


class DepthwiseConv2d(Function):
    """x: (N, C, H, W), weight: (C*K, 1, KH, KW), bias: (C*K,) or None -> (N, C*K, OH, OW)."""

    def forward(self, x, weight, bias, stride, padding, dilation):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        (kh, kw), (dh, dw) = weight.shape[2:], dilation
        out_size = output_size(x.shape[2:], (kh, kw), stride, padding, dilation)       # (OH, OW)
        padded = pad_images(x, padding)                                              # (N, C, Hp, Wp)
        filters = weight.reshape(c, -1, kh, kw)                                       # (C, K, KH, KW)
        out = xp.zeros((n, c, filters.shape[1]) + out_size, dtype=x.dtype)            # (N, C, K, OH, OW)
        for i in range(kh):
            for j in range(kw):
                window = offset_view(padded, i * dh, j * dw, stride, out_size)       # (N, C, OH, OW)
                out += window[:, :, None] * filters[:, :, i, j][:, :, None, None]    # every k of every c
        out = out.reshape((n, weight.shape[0]) + out_size)                           # (N, C*K, OH, OW)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        if self.needs_input_grad[1]:
            self.padded = padded                # the weight gradient needs the windows again
        self.filters, self.x_shape, self.args = filters, x.shape, (stride, padding, dilation, out_size)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        n, c = self.x_shape[:2]
        filters = self.filters
        _, multiplier, kh, kw = filters.shape
        stride, padding, (dh, dw), out_size = self.args
        grad_out = grad.reshape((n, c, multiplier) + out_size)                       # (N, C, K, OH, OW)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_padded = xp.zeros((n, c) + tuple(s + 2 * p for s, p in zip(self.x_shape[2:], padding)),
                                   dtype=grad.dtype)
            for i in range(kh):
                for j in range(kw):
                    window = offset_view(grad_padded, i * dh, j * dw, stride, out_size)  # (N, C, OH, OW)
                    window += xp.einsum("nckyx,ck->ncyx", grad_out, filters[:, :, i, j])
            grad_x = unpad(grad_padded, padding)
        if self.needs_input_grad[1]:
            grad_filters = xp.empty(filters.shape, dtype=grad.dtype)                 # (C, K, KH, KW)
            for i in range(kh):
                for j in range(kw):
                    window = offset_view(self.padded, i * dh, j * dw, stride, out_size)
                    grad_filters[:, :, i, j] = xp.einsum("ncyx,nckyx->ck", window, grad_out)
            grad_weight = grad_filters.reshape(c * multiplier, 1, kh, kw)
        if self.needs_input_grad[2]:
            grad_bias = grad.sum(axis=(0, 2, 3))                                      # (C*K,)
        return grad_x, grad_weight, grad_bias
