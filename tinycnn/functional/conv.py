"""2-D convolution: im2col + one matrix product per group, a few images at a time.

Forward (see im2col.py for the column layout)::

    cols = im2col(x)                          # (C*KH*KW, windows)
    out  = weight.reshape(O, C*KH*KW) @ cols  # (O, windows)  -> (N, O, OH, OW) + bias

Backward, for ``grad`` = dLoss/dout laid out like ``out`` as (O, windows)::

    grad_weight = grad @ cols.T               # (O, C*KH*KW)
    grad_cols   = weight.T @ grad             # (C*KH*KW, windows)
    grad_x      = col2im(grad_cols)           # (N, C, H, W)
    grad_bias   = grad summed over the windows

Batch blocking (CPU)
--------------------
The column matrix is KH*KW times the size of the input: 80 MB for a batch of 128
images of 16x32x32 and a 3x3 kernel. Built for the whole batch at once, it is
written to main memory by im2col and read back by the GEMM, and the CPU waits on
memory more than it computes. So on the CPU both passes run over *chunks* of a few
images whose column matrix (about ``CHUNK_BYTES``) stays in the cache between
im2col and the GEMM. The backward builds each chunk's columns again rather than
keeping the forward's (cheaper than a round trip through memory, and the columns
of the whole batch are never held). On 2 cores this made the forward of ResNet-20's
convolutions about 2x faster, and a whole training step about 1.3x
(benchmarks/profile_step.py). On a GPU the whole batch is one chunk: its memory is
fast and one large GEMM keeps it busy, where many small ones would not.

The chunks are independent, so on a CPU with several cores they are dealt out to
worker threads (``map_chunks`` in parallel.py): each worker runs its chunks start to
finish, im2col and a single-threaded GEMM, in its own core's cache. That beat one
thread driving a multi-threaded BLAS by about 1.4x on a ResNet-20 training step (2 cores).

The input gradient as a convolution
-----------------------------------
For a stride-1 convolution the input gradient has a second form
(``USE_FULL_CONVOLUTION``): it is itself a convolution, of the output gradient
(padded by DH*(KH-1)-PH, a "full" convolution) with the kernel flipped in both
spatial axes and with its in/out channels swapped::

    grad_x = conv2d(grad, flip(weight).transpose(in, out), padding=dilation*(K-1) - padding)

That is one im2col of ``grad`` and a GEMM with inner dimension O*KH*KW, instead
of a GEMM with inner dimension only O (BLAS is slow on such thin products) and
a col2im (KH*KW strided adds). With chunks in the cache it is 1.5x faster for the
"same" convolutions of ResNet blocks; ``_use_full_convolution`` picks it where its
column matrix is no larger than col2im's.

For a "same" convolution (stride 1, 2*PW == DW*(KW-1), as in ResNet blocks) the full
convolution's column matrix gives the weight gradient too: it holds every output
gradient value that meets each pixel of x, so ``grad_weight`` is one GEMM of those
columns with x itself, laid out by its zero padding (``_weight_from_full_possible``).
The backward pass of such a layer then builds one column matrix instead of two.

Scratch memory
--------------
On the CPU every chunk reuses the same padded-image and column arrays (workspace.py):
the padding of a reused array is already zero, and nothing is allocated per chunk.

With ``groups=G`` the channels split into G independent convolutions: input
channels [g*C/G, (g+1)*C/G) meet only output channels [g*O/G, (g+1)*O/G).
The G products are one batched ``matmul`` over a leading group axis.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backend import get_array_module
from ..tensor import Function, Tensor
from .im2col import (ConvGeometry, col2im, columns_to_nchw, im2col, nchw_to_columns, pad_images, padded_as_columns,
                     pair)
from ..parallel import get_num_threads, map_chunks
from .workspace import workspace

__all__ = ["conv2d"]

# Size of one chunk's column matrix on the CPU: about the size of one core's L2 cache. On a
# 2-core EPYC (2 MB L2 per core, 32 MB L3), 2 and 4 MB gave the fastest training steps, 1 MB
# and 6-8 MB were 5-25% slower, and the whole batch at once 1.4x (ResNet-20) to 1.7x (LeNet-5).
CHUNK_BYTES = 2 * 2**20

# Compute stride-1 input gradients as a full convolution where that is cheaper (see above).
USE_FULL_CONVOLUTION = True

# Reuse the padded images and column matrices from chunk to chunk on the CPU (workspace.py).
USE_WORKSPACES = True


def image_chunks(geometry: ConvGeometry, itemsize: int, xp) -> list:
    """(slice of the batch, its geometry) pairs, each chunk at most about ``CHUNK_BYTES`` of
    columns on the CPU; on a GPU the whole batch is one chunk.

    With several workers (parallel.py) the chunk count is rounded up to a multiple of
    theirs, so that each gets as many: 3 chunks on 2 workers would leave one idle half the time.
    """
    n, c = geometry.x_shape[:2]
    if xp is not np:
        return [(slice(0, n), geometry)]
    kh, kw = geometry.kernel
    bytes_per_image = c * kh * kw * geometry.columns_per_image * itemsize
    size = min(n, max(1, CHUNK_BYTES // bytes_per_image))
    workers = get_num_threads()
    count = -(-n // size)                           # chunks of that size
    if workers > 1 and count > 1:
        count = min(n, -(-count // workers) * workers)
        size = -(-n // count)
    full, last = geometry.for_images(size), geometry.for_images(n % size or size)  # at most two geometries
    return [(slice(start, start + size), full) if start + size <= n else (slice(start, n), last)
            for start in range(0, n, size)]


def _workspace(geometry: ConvGeometry, dtype, xp, role: str):
    """The reusable scratch arrays for this chunk shape on the CPU (workspace.py); None on a GPU."""
    return workspace(geometry, dtype, role) if xp is np and USE_WORKSPACES else None


def _convolve_chunk(x, weight_matrix, geometry: ConvGeometry, bias, out):
    """One chunk of the forward pass, written into ``out``.

    x: (n, C, H, W), weight_matrix: (G, O/G, C/G*KH*KW), bias: (O,) or None, out: (n, O, OH, OW)
    """
    xp = get_array_module(x)
    groups = weight_matrix.shape[0]
    cols = im2col(x, geometry, _workspace(geometry, x.dtype, xp, "input"))  # (C*KH*KW, windows)
    cols = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])    # (G, C/G*KH*KW, windows)
    out_columns = xp.matmul(weight_matrix, cols)                           # (G, O/G, windows)
    columns_to_nchw(out_columns.reshape(out.shape[1], -1), geometry, bias, out=out)


def _convolve(x, weight_matrix, geometry: ConvGeometry, bias=None):
    """The forward pass, chunk by chunk.

    x: (N, C, H, W), weight_matrix: (G, O/G, C/G*KH*KW), bias: (O,) or None -> (N, O, OH, OW)
    """
    xp = get_array_module(x)
    groups, group_out, _ = weight_matrix.shape
    out = xp.empty((x.shape[0], groups * group_out) + geometry.out_size, dtype=x.dtype)

    def convolve_chunk(chunk, chunk_geometry):
        _convolve_chunk(x[chunk], weight_matrix, chunk_geometry, bias, out[chunk])

    map_chunks(convolve_chunk, image_chunks(geometry, x.dtype.itemsize, xp))
    return out


class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/G, KH, KW), bias: (O,) or None -> (N, O, OH, OW)."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        geometry = ConvGeometry(tuple(x.shape), tuple(weight.shape[2:]), stride, padding, dilation)
        weight_matrix = weight.reshape(groups, weight.shape[0] // groups, -1)  # (G, O/G, C/G*KH*KW)
        self.geometry, self.groups, self.weight_shape = geometry, groups, weight.shape
        if self.needs_input_grad[1]:
            self.x = x                          # the weight gradient needs the windows again
        if self.needs_input_grad[0]:
            self.weight_matrix = weight_matrix  # the input gradient needs the weight
        return _convolve(x, weight_matrix, geometry, bias)

    def backward(self, grad):
        xp = get_array_module(grad)
        geometry, groups = self.geometry, self.groups
        need_x, need_weight, need_bias = self.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        full_convolution = need_x and USE_FULL_CONVOLUTION and _use_full_convolution(geometry, self.weight_shape)
        # With a full convolution of a "same" convolution, its columns give the weight gradient too.
        weight_from_full = need_weight and full_convolution and _weight_from_full_possible(geometry)
        if need_x:
            grad_x = xp.empty(geometry.x_shape, dtype=grad.dtype)
            if full_convolution:
                flipped = _flipped_kernel(self.weight_matrix, self.weight_shape)
        x = self.x if need_weight else None

        def chunk_backward(chunk, chunk_geometry):
            """Write this chunk's part of grad_x; return its part of the weight gradient
            (laid out as the accumulator of the path taken, see below)."""
            grad_weight_part = None
            if full_convolution:
                full_geometry = _full_geometry(chunk_geometry, grad[chunk].shape)
                grad_cols = im2col(grad[chunk], full_geometry, _workspace(full_geometry, grad.dtype, xp, "grad"))
                grad_cols = grad_cols.reshape(groups, -1, grad_cols.shape[1])  # (G, O/G*KH*KW, windows of x)
                out_columns = xp.matmul(flipped, grad_cols)                    # (G, C/G, windows of x)
                columns_to_nchw(out_columns.reshape(geometry.x_shape[1], -1), full_geometry, out=grad_x[chunk])
            if weight_from_full:
                # grad_weight[o, c, i, j] = sum over pixels of x[c] * grad_cols[(o, KH-1-i, KW-1-j)]
                # (see _weight_from_full_possible): no im2col of x, only its padding.
                padded = pad_images(x[chunk], chunk_geometry, _workspace(chunk_geometry, grad.dtype, xp, "input"))
                x_columns = padded_as_columns(padded, chunk_geometry)          # (C, windows of x)
                x_columns = x_columns.reshape(groups, -1, x_columns.shape[1])  # (G, C/G, windows of x)
                # (the long matrices' side first, as below: OpenBLAS runs it faster)
                grad_weight_part = xp.matmul(grad_cols, x_columns.transpose(0, 2, 1))  # (G, O/G*KH*KW, C/G)
            elif need_weight or (need_x and not full_convolution):
                grad_columns = nchw_to_columns(grad[chunk], chunk_geometry)    # (O, windows)
                grad_columns = grad_columns.reshape(groups, -1, grad_columns.shape[1])  # (G, O/G, windows)
            if need_weight and not weight_from_full:
                cols = im2col(x[chunk], chunk_geometry, _workspace(chunk_geometry, grad.dtype, xp, "input"))
                cols = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])  # (G, C/G*KH*KW, windows)
                # cols @ grad.T rather than grad @ cols.T: the same numbers, but OpenBLAS
                # runs this orientation about 1.5x faster for these long, thin matrices.
                grad_weight_part = xp.matmul(cols, grad_columns.transpose(0, 2, 1))  # (G, C/G*KH*KW, O/G)
            if need_x and not full_convolution:
                grad_cols = xp.matmul(self.weight_matrix.transpose(0, 2, 1), grad_columns)  # (G, C/G*KH*KW, windows)
                # (a workspace of its own: col2im writes into the padding, which im2col's must keep zero)
                grad_x[chunk] = col2im(grad_cols.reshape(-1, grad_cols.shape[-1]), chunk_geometry,
                                       _workspace(chunk_geometry, grad.dtype, xp, "col2im"))
            return grad_weight_part

        grad_weight_sum = map_chunks(chunk_backward, image_chunks(geometry, grad.dtype.itemsize, xp))
        if weight_from_full:
            grad_weight = _unflipped_weight_gradient(grad_weight_sum, self.weight_shape)
        elif need_weight:
            grad_weight = grad_weight_sum.transpose(0, 2, 1).reshape(self.weight_shape)
        if need_bias:
            grad_bias = grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2).sum(axis=0)
        return grad_x, grad_weight, grad_bias

@functools.lru_cache(maxsize=256)
def _full_geometry(geometry: ConvGeometry, grad_shape) -> ConvGeometry:
    """The geometry of the input gradient as a stride-1 convolution over ``grad`` (N, O, OH, OW).

    (Cached: every chunk of every step asks for one of a few.)"""
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    return ConvGeometry(tuple(grad_shape), (kh, kw), (1, 1), (dh * (kh - 1) - ph, dw * (kw - 1) - pw), (dh, dw))


def _full_convolution_possible(geometry: ConvGeometry) -> bool:
    """Stride 1 (with a stride, the gradient would need zeros between its pixels) and
    padding <= dilation*(K-1) (the full convolution's padding must not be negative)."""
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    return geometry.stride == (1, 1) and ph <= dh * (kh - 1) and pw <= dw * (kw - 1)


def _use_full_convolution(geometry: ConvGeometry, weight_shape) -> bool:
    """Whether the input gradient is cheaper as a full convolution than as GEMM + col2im.

    When possible (see ``_full_convolution_possible``), it wins when its column matrix,
    (O*KH*KW, N*H*RW'), is no larger than col2im's (C*KH*KW, N*OH*RW): true for
    "same" convolutions with O == C, as in every ResNet block, false for LeNet's
    6 -> 16 unpadded 5x5 conv (the full convolution would pad the small 10x10
    gradient to 18x18).
    """
    if not _full_convolution_possible(geometry):
        return False
    n, c, h, w = geometry.x_shape
    out_channels = weight_shape[0]
    full = _full_geometry(geometry, (n, out_channels) + geometry.out_size)
    return out_channels * h * full.row_width <= c * geometry.out_size[0] * geometry.row_width


def _weight_from_full_possible(geometry: ConvGeometry) -> bool:
    """Whether the full convolution's columns can give the weight gradient as well.

    The weight gradient correlates x with the output gradient::

        grad_weight[o, c, i, j] = sum over n, h, w of x[n, c, h, w] * grad[n, o, h + PH - i*DH, w + PW - j*DW]

    and the full convolution's column matrix holds exactly those gradient values, in row
    (o, KH-1-i, KW-1-j) and in the column of x's pixel (h, w). So it is one GEMM of x,
    laid out as those columns, with the columns we already have for the input gradient:
    no im2col of x. x is laid out so (``padded_as_columns``, a view of the padded images)
    when the full convolution's row width, W + DW*(KW-1), equals x's padded width
    W + 2*PW: a "same" convolution.
    """
    (_, kw), (_, pw), (_, dw) = geometry.kernel, geometry.padding, geometry.dilation
    return 2 * pw == dw * (kw - 1)


def _unflipped_weight_gradient(grad_weight_flipped, weight_shape):
    """(G, O/G*KH*KW, C/G) indexed (o, KH-1-i, KW-1-j, c) -> (O, C/G, KH, KW) indexed (o, c, i, j)."""
    groups = grad_weight_flipped.shape[0]
    out_channels, group_in, kh, kw = weight_shape
    grad = grad_weight_flipped.reshape(groups, out_channels // groups, kh, kw, group_in)[:, :, ::-1, ::-1]
    return grad.transpose(0, 1, 4, 2, 3).reshape(weight_shape)


def _flipped_kernel(weight_matrix, weight_shape):
    """The kernel of the full convolution: flipped in space, in/out channels swapped.

    weight_matrix: (G, O/G, C/G*KH*KW) -> (G, C/G, O/G*KH*KW)

    x's pixel (h, w) met the weight offset (i, j) in the output pixel (h + PH - i*DH, ...),
    so grad_x[c, h, w] = sum over o, i, j of weight[o, c, i, j] * grad[o, h + PH - i*DH, ...]:
    a correlation of grad (padded by DH*(KH-1)-PH) with the kernel flipped (offset
    KH-1-i reads grad at h - PH' + ...) and its channel axes swapped (sum over o, one
    output per c).
    """
    xp = get_array_module(weight_matrix)
    groups, group_out, _ = weight_matrix.shape
    group_in, kh, kw = weight_shape[1:]
    kernel = weight_matrix.reshape(groups, group_out, group_in, kh, kw)[..., ::-1, ::-1]        # flipped
    kernel = kernel.transpose(0, 2, 1, 3, 4).reshape(groups, group_in, group_out * kh * kw)   # in <-> out
    return xp.ascontiguousarray(kernel)


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
