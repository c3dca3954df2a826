"""2-D convolution: im2col + one matrix product per group.

Forward::

    cols = im2col(x)                          # (C*KH*KW, OH*OW*N)
    out  = weight.reshape(O, C*KH*KW) @ cols  # (O, OH*OW*N)  -> (N, O, OH, OW)

Backward, for ``grad`` = dLoss/dout laid out as (O, OH*OW*N)::

    grad_weight = grad @ cols.T               # (O, C*KH*KW)
    grad_cols   = weight.T @ grad             # (C*KH*KW, OH*OW*N)
    grad_x      = col2im(grad_cols)           # (N, C, H, W)
    grad_bias   = grad summed over everything but O

With ``groups=G`` the channels split into G independent convolutions: input
channels [g*C/G, (g+1)*C/G) meet only output channels [g*O/G, (g+1)*O/G).
The G products are one batched ``matmul`` over a leading group axis.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .im2col import col2im, conv_output_size, im2col, pair

__all__ = ["conv2d"]


class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/G, KH, KW), bias: (O,) or None -> (N, O, OH, OW)."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        out_channels, group_channels, kh, kw = weight.shape
        oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
        ow = conv_output_size(w, kw, stride[1], padding[1], dilation[1])

        cols = im2col(x, (kh, kw), stride, padding, dilation)        # (C*KH*KW, OH*OW*N)
        cols = cols.reshape(groups, group_channels * kh * kw, -1)    # (G, C/G*KH*KW, OH*OW*N)
        weight_matrix = weight.reshape(groups, out_channels // groups, -1)  # (G, O/G, C/G*KH*KW)
        out_t = xp.matmul(weight_matrix, cols)                       # (G, O/G, OH*OW*N)

        # Back to (N, O, OH, OW): this transposing copy is needed anyway, so the bias rides along.
        out_t = out_t.reshape(out_channels, oh, ow, n).transpose(3, 0, 1, 2)
        out = xp.empty((n, out_channels, oh, ow), dtype=x.dtype)
        if bias is None:
            out[...] = out_t
        else:
            xp.add(out_t, bias.reshape(1, out_channels, 1, 1), out=out)

        self.x_shape, self.weight_shape = x.shape, weight.shape
        self.conv_args = ((kh, kw), stride, padding, dilation)
        self.groups = groups
        if self.needs_input_grad[1]:
            self.cols = cols             # the weight gradient needs the windows
        if self.needs_input_grad[0]:
            self.weight_matrix = weight_matrix  # the input gradient needs the weight
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        out_channels = self.weight_shape[0]
        # (N, O, OH, OW) -> (G, O/G, OH*OW*N), the layout of the forward's product
        grad_t = xp.ascontiguousarray(grad.transpose(1, 2, 3, 0)).reshape(self.groups, out_channels // self.groups, -1)

        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_cols = xp.matmul(self.weight_matrix.transpose(0, 2, 1), grad_t)  # (G, C/G*KH*KW, OH*OW*N)
            grad_x = col2im(grad_cols.reshape(-1, grad_cols.shape[-1]), self.x_shape, *self.conv_args)
        if self.needs_input_grad[1]:
            grad_weight = xp.matmul(grad_t, self.cols.transpose(0, 2, 1)).reshape(self.weight_shape)
        if self.needs_input_grad[2]:
            grad_bias = grad_t.reshape(out_channels, -1).sum(axis=1)
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
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
