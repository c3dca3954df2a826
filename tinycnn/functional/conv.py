"""2-D convolution: im2col + one matrix product per group (the reference floor).

A convolution multiplies every KH x KW window of the input with the kernel. ``im2col``
copies each window into a column of a matrix, so the whole convolution becomes one matrix
product (GEMM), which BLAS (CPU) or cuBLAS (GPU) runs at close to peak speed::

    cols = im2col(x)                        # (N, C*KH*KW, OH*OW): one column per window
    out  = weight.reshape(O, C*KH*KW) @ cols  # (N, O, OH*OW) -> (N, O, OH, OW), + bias

The backward is the three rules of a matrix product, then the adjoint of im2col::

    grad_weight = sum over n of grad @ cols.T   # (O, C*KH*KW) -> (O, C, KH, KW)
    grad_cols   = weight.T @ grad               # (N, C*KH*KW, OH*OW)
    grad_x      = col2im(grad_cols)             # (N, C, H, W): each column added back onto its window

With ``groups=G`` the channels split into G independent convolutions: input channels
[g*C/G, (g+1)*C/G) meet only output channels [g*O/G, (g+1)*O/G). The G products are one
batched ``matmul`` over a group axis.

im2col and col2im loop only over the KH*KW kernel offsets, never over pixels or images:
the pixels at offset (i, j) of every window are one strided view of the padded input
(``offset_view``, tinycnn/windows.py), copied (im2col) or added to (col2im) in one step.

A depthwise convolution (``groups == C``, MobileNet's and EfficientNet's) is chosen at one
line of ``conv2d`` and has its own kernel (depthwise.py): with one channel per group, the
GEMMs would be C tiny products.

This is what a student reads. The engine runs the fast floor's version (tinycnn/fast/conv.py:
a few images at a time so the columns stay in the cache, on every core, with the input
gradient as a "full" convolution), which tests/test_floors.py holds equal to this one.
"""

from __future__ import annotations

from .. import fast
from ..backend import get_array_module
from ..tensor import Function, Tensor
from ..windows import offset_view, output_size, pad_images, pair, unpad
from .depthwise import DepthwiseConv2d

__all__ = ["conv2d", "im2col", "col2im"]


def im2col(x, kernel, stride, padding, dilation):
    """Copy every window of x into a column: (N, C, H, W) -> (N, C*KH*KW, OH*OW), rows ordered (c, i, j)."""
    n, c, h, w = x.shape
    (kh, kw), (dh, dw) = kernel, dilation
    out_size = output_size((h, w), kernel, stride, padding, dilation)          # (OH, OW)
    padded = pad_images(x, padding)                                           # (N, C, H + 2*PH, W + 2*PW)
    cols = get_array_module(x).empty((n, c, kh, kw) + out_size, dtype=x.dtype)  # (N, C, KH, KW, OH, OW)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = offset_view(padded, i * dh, j * dw, stride, out_size)
    return cols.reshape(n, c * kh * kw, -1)


def col2im(cols, x_shape, kernel, stride, padding, dilation):
    """Add every column back onto its window, the adjoint of im2col: (N, C*KH*KW, OH*OW) -> (N, C, H, W)."""
    n, c, h, w = x_shape
    (kh, kw), (ph, pw), (dh, dw) = kernel, padding, dilation
    out_size = output_size((h, w), kernel, stride, padding, dilation)          # (OH, OW)
    padded = get_array_module(cols).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    cols = cols.reshape((n, c, kh, kw) + out_size)
    for i in range(kh):
        for j in range(kw):
            view = offset_view(padded, i * dh, j * dw, stride, out_size)
            view += cols[:, :, i, j]              # windows overlap: add, not assign
    return unpad(padded, padding)


class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/G, KH, KW), bias: (O,) or None -> (N, O, OH, OW)."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        n, out_channels = x.shape[0], weight.shape[0]
        cols = im2col(x, weight.shape[2:], stride, padding, dilation)         # (N, C*KH*KW, L), L = OH*OW
        cols = cols.reshape(n, groups, -1, cols.shape[-1])                    # (N, G, C/G*KH*KW, L)
        weight_matrix = weight.reshape(groups, out_channels // groups, -1)    # (G, O/G, C/G*KH*KW)
        out = weight_matrix @ cols                                            # (N, G, O/G, L)
        out = out.reshape((n, out_channels) + output_size(x.shape[2:], weight.shape[2:], stride, padding, dilation))
        if bias is not None:
            out += bias.reshape(1, out_channels, 1, 1)
        if self.needs_input_grad[1]:
            self.cols = cols                    # the weight gradient needs the windows again
        self.weight_matrix, self.x_shape, self.weight_shape = weight_matrix, x.shape, weight.shape
        self.args = stride, padding, dilation
        return out

    def backward(self, grad):
        n, out_channels = grad.shape[:2]
        groups = self.weight_matrix.shape[0]
        grad_out = grad.reshape(n, groups, out_channels // groups, -1)        # (N, G, O/G, L)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_cols = self.weight_matrix.transpose(0, 2, 1) @ grad_out     # (N, G, C/G*KH*KW, L)
            grad_x = col2im(grad_cols.reshape(n, -1, grad_cols.shape[-1]), self.x_shape, self.weight_shape[2:],
                            *self.args)
        if self.needs_input_grad[1]:
            grad_weight = (grad_out @ self.cols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, O/G, C/G*KH*KW)
            grad_weight = grad_weight.reshape(self.weight_shape)
        if self.needs_input_grad[2]:
            grad_bias = grad.sum(axis=(0, 2, 3))                              # (O,)
        return grad_x, grad_weight, grad_bias


def _check_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """Raise a clear error for every way the arguments can disagree."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups, KH, KW), "
                         f"got shape {tuple(weight.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"conv2d: input is {x.dtype} but weight is {weight.dtype}; convert one of them")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if min(value) < low:
            raise ValueError(f"conv2d: {name} must be >= {low}, got {value}")
    n, c, h, w = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    if c != group_channels * groups:
        raise ValueError(
            f"conv2d: input has {c} channels, weight expects {group_channels * groups} "
            f"(weight shape {tuple(weight.shape)}, groups={groups})"
            if groups > 1 else
            f"conv2d: input has {c} channels, weight expects {group_channels} (weight shape {tuple(weight.shape)})"
        )
    if out_channels % groups != 0:
        raise ValueError(f"conv2d: out_channels {out_channels} is not divisible by groups={groups} "
                         f"(weight shape {tuple(weight.shape)})")
    reach_h, reach_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    padded_h, padded_w = h + 2 * padding[0], w + 2 * padding[1]
    if reach_h > padded_h or reach_w > padded_w:
        raise ValueError(
            f"conv2d: kernel ({reach_h}x{reach_w} with dilation {dilation}) is larger than the padded input "
            f"({padded_h}x{padded_w}: input {h}x{w}, padding {padding})"
        )
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"conv2d: bias should have shape ({out_channels},), got {tuple(bias.shape)}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) of a batch of images.

    Args:
        x: (N, C, H, W).
        weight: (O, C/groups, KH, KW).
        bias: (O,) or None.
        stride, padding, dilation: an int or an (h, w) pair. Padding adds zeros.
        groups: split channels into this many independent convolutions
            (``groups == C == O`` is a depthwise convolution).

    Returns:
        (N, O, OH, OW) with OH = floor((H + 2*padding - dilation*(KH-1) - 1) / stride) + 1.
    """
    stride = pair(stride, "stride")
    padding = pair(padding, "padding")
    dilation = pair(dilation, "dilation")
    _check_conv2d(x, weight, bias, stride, padding, dilation, groups)
    if groups == x.shape[1] > 1:   # depthwise: a multiply-add per kernel offset, no per-channel GEMMs (depthwise.py)
        if fast.enabled():   # the fast floor: the faster of this kernel and the grouped GEMM (fast/depthwise.py)
            return fast.depthwise_conv2d(x, weight, bias, stride, padding, dilation)
        return DepthwiseConv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    if fast.enabled():   # the fast floor: in chunks that stay in the cache, on every core (tinycnn/fast/conv.py)
        return fast.Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
