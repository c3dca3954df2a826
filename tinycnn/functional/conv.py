"""2-D convolution: im2col + one matrix product per group.

Forward (see im2col.py for the column layout)::

    cols = im2col(x)                          # (C*KH*KW, windows)
    out  = weight.reshape(O, C*KH*KW) @ cols  # (O, windows)  -> (N, O, OH, OW) + bias

Backward, for ``grad`` = dLoss/dout laid out like ``out`` as (O, windows)::

    grad_weight = grad @ cols.T               # (O, C*KH*KW)
    grad_cols   = weight.T @ grad             # (C*KH*KW, windows)
    grad_x      = col2im(grad_cols)           # (N, C, H, W)
    grad_bias   = grad summed over the windows

For a stride-1 convolution the input gradient has a second form (switched on by
``USE_FULL_CONVOLUTION``, see there why it is off): it is itself a convolution, of the output
gradient (padded by KH-1-PH, a "full" convolution) with the kernel flipped in
both spatial axes and with its in/out channels swapped::

    grad_x = conv2d(grad, flip(weight).transpose(in, out), padding=dilation*(K-1) - padding)

That is one im2col of ``grad`` and a GEMM with inner dimension O*KH*KW, instead
of a GEMM with inner dimension only O (BLAS is slow on such thin products) and
a col2im (KH*KW strided adds over the whole image). It does not help on the CPU:
the im2col of ``grad`` costs about what col2im did, and OpenBLAS's thin GEMM turned
out no slower than the wide one.

With ``groups=G`` the channels split into G independent convolutions: input
channels [g*C/G, (g+1)*C/G) meet only output channels [g*O/G, (g+1)*O/G).
The G products are one batched ``matmul`` over a leading group axis.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .im2col import ConvGeometry, col2im, columns_to_nchw, im2col, nchw_to_columns, pair

__all__ = ["conv2d"]


class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/G, KH, KW), bias: (O,) or None -> (N, O, OH, OW)."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        xp = get_array_module(x)
        geometry = ConvGeometry(tuple(x.shape), tuple(weight.shape[2:]), stride, padding, dilation)
        cols = im2col(x, geometry)                                             # (C*KH*KW, windows)
        cols = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])   # (G, C/G*KH*KW, windows)
        weight_matrix = weight.reshape(groups, weight.shape[0] // groups, -1)  # (G, O/G, C/G*KH*KW)
        out_columns = xp.matmul(weight_matrix, cols)                            # (G, O/G, windows)
        out = columns_to_nchw(out_columns.reshape(weight.shape[0], -1), geometry, bias)

        self.geometry, self.groups, self.weight_shape = geometry, groups, weight.shape
        if self.needs_input_grad[1]:
            self.cols = cols                    # the weight gradient needs the windows
        if self.needs_input_grad[0]:
            self.weight_matrix = weight_matrix  # the input gradient needs the weight
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        out_channels = self.weight_shape[0]
        grad_columns = nchw_to_columns(grad, self.geometry)                    # (O, windows)
        grad_columns = grad_columns.reshape(self.groups, out_channels // self.groups, -1)

        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0] and USE_FULL_CONVOLUTION and _use_full_convolution(self.geometry, self.weight_shape):
            grad_x = _input_grad_by_full_convolution(grad, self.weight_matrix, self.geometry, self.weight_shape)
        elif self.needs_input_grad[0]:
            grad_cols = xp.matmul(self.weight_matrix.transpose(0, 2, 1), grad_columns)  # (G, C/G*KH*KW, windows)
            grad_x = col2im(grad_cols.reshape(-1, grad_cols.shape[-1]), self.geometry)
        if self.needs_input_grad[1]:
            # (cols @ grad.T).T rather than grad @ cols.T: the same numbers, but OpenBLAS
            # runs this orientation about 1.5x faster for these long, thin matrices.
            grad_weight = xp.matmul(self.cols, grad_columns.transpose(0, 2, 1)).transpose(0, 2, 1)
            grad_weight = grad_weight.reshape(self.weight_shape)
        if self.needs_input_grad[2]:
            grad_bias = grad_columns.reshape(out_channels, -1).sum(axis=1)   # garbage columns are 0
        return grad_x, grad_weight, grad_bias


# The full-convolution input gradient (below) is correct and tested, but measured no
# faster than GEMM + col2im on the CPU for any LeNet-5 or ResNet-20 layer (ResNet
# blocks: 0.9-1.0x; LeNet's 6 -> 16 conv: 0.4x), so it is off by default.
USE_FULL_CONVOLUTION = False


def _full_geometry(geometry: ConvGeometry, grad_shape) -> ConvGeometry:
    """The geometry of the input gradient as a stride-1 convolution over ``grad`` (N, O, OH, OW)."""
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    return ConvGeometry(tuple(grad_shape), (kh, kw), (1, 1), (dh * (kh - 1) - ph, dw * (kw - 1) - pw), (dh, dw))


def _full_convolution_possible(geometry: ConvGeometry) -> bool:
    """Stride 1 (with a stride, the gradient would need zeros between its pixels) and
    padding <= dilation*(K-1) (the full convolution's padding must not be negative)."""
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    return geometry.stride == (1, 1) and ph <= dh * (kh - 1) and pw <= dw * (kw - 1)


def _use_full_convolution(geometry: ConvGeometry, weight_shape) -> bool:
    """Whether the input gradient is cheaper as a full convolution than as GEMM + col2im.

    When possible (see ``_full_convolution_possible``), it wins when its im2col matrix,
    (O*KH*KW, H*N*RW'), is no larger than col2im's (C*KH*KW, OH*N*RW): true for
    "same" convolutions with O == C, as in every ResNet block (measured 1.5-2x
    faster there), false for LeNet's 6 -> 16 unpadded 5x5 conv (the full
    convolution would pad the small 10x10 gradient to 18x18).
    """
    if not _full_convolution_possible(geometry):
        return False
    n, c, h, w = geometry.x_shape
    out_channels = weight_shape[0]
    full = _full_geometry(geometry, (n, out_channels) + geometry.out_size)
    return out_channels * h * full.row_width <= c * geometry.out_size[0] * geometry.row_width


def _input_grad_by_full_convolution(grad, weight_matrix, geometry: ConvGeometry, weight_shape):
    """dLoss/dx of a stride-1 convolution as a convolution of ``grad``.

    grad: (N, O, OH, OW), weight_matrix: (G, O/G, C/G*KH*KW) -> (N, C, H, W)

    x's pixel (h, w) met the weight offset (i, j) in the output pixel (h + PH - i*DH, ...),
    so grad_x[c, h, w] = sum over o, i, j of weight[o, c, i, j] * grad[o, h + PH - i*DH, ...]:
    a correlation of grad (padded by DH*(KH-1)-PH) with the kernel flipped (offset
    KH-1-i reads grad at h - PH' + ...) and its channel axes swapped (sum over o, one
    output per c).
    """
    xp = get_array_module(grad)
    groups, group_out, _ = weight_matrix.shape
    group_in, kh, kw = weight_shape[1:]
    full = _full_geometry(geometry, grad.shape)
    cols = im2col(grad, full)                                            # (O*KH*KW, H*N*RW')
    cols = cols.reshape(groups, group_out * kh * kw, cols.shape[1])     # (G, O/G*KH*KW, windows)
    kernel = weight_matrix.reshape(groups, group_out, group_in, kh, kw)[..., ::-1, ::-1]  # flipped
    kernel = kernel.transpose(0, 2, 1, 3, 4).reshape(groups, group_in, group_out * kh * kw)  # in <-> out
    grad_columns = xp.matmul(kernel, cols)                              # (G, C/G, windows)
    return columns_to_nchw(grad_columns.reshape(groups * group_in, -1), full)


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
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
