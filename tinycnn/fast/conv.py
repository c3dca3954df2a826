"""The fast floor's conv2d: the reference's im2col + GEMM (functional/conv.py), a few images at a time.

It computes what the reference computes (tests/test_floors.py holds the two equal), with
the same three rules: columns times weight forward; weight gradient from the columns;
column gradient from the weight, added back by col2im. What it adds, each for speed:

Batch blocking (CPU)
--------------------
The column matrix is KH*KW times the size of the input: 80 MB for a batch of 128 images of
16x32x32 and a 3x3 kernel. Built for the whole batch at once, it is written to main memory
by im2col and read back by the GEMM, and the CPU waits on memory more than it computes. So
on the CPU both passes run over *chunks* of a few images whose column matrix (about
``CHUNK_BYTES``) stays in the cache between im2col and the GEMM. The backward builds each
chunk's columns again rather than keeping the forward's (cheaper than a round trip through
memory, and the columns of the whole batch are never held). On 2 cores this made the forward
of ResNet-20's convolutions about 2x faster, and a whole training step about 1.3x
(benchmarks/profile_step.py). On a GPU the whole batch is one chunk: its memory is fast and
one large GEMM keeps it busy, where many small ones would not.

The columns are laid out for fast copies (columns.py: (C, H, N, W) rows, "wide rows"), and
every chunk reuses the same padded-image and column arrays (columns.py, ``Workspace``).

All cores
---------
The chunks are independent, so on a CPU with several cores they are dealt out to worker
threads (``map_chunks`` in workers.py): each worker runs its chunks start to finish, im2col
and a single-threaded GEMM, in its own core's cache. That beat one thread driving a
multi-threaded BLAS by about 1.4x on a ResNet-20 training step (2 cores).

The input gradient as a convolution
-----------------------------------
For a stride-1 convolution the input gradient has a second form (``USE_FULL_CONVOLUTION``):
it is itself a convolution, of the output gradient (padded by DH*(KH-1)-PH, a "full"
convolution) with the kernel flipped in both spatial axes and with its in/out channels
swapped::

    grad_x = conv2d(grad, flip(weight).transpose(in, out), padding=dilation*(K-1) - padding)

That is one im2col of ``grad`` and a GEMM with inner dimension O*KH*KW, instead of a GEMM
with inner dimension only O (BLAS is slow on such thin products) and a col2im (KH*KW strided
adds). With chunks in the cache it is 1.5x faster for the "same" convolutions of ResNet
blocks; ``_use_full_convolution`` picks it where its column matrix is no larger than col2im's.

For a "same" convolution (stride 1, 2*PW == DW*(KW-1), as in ResNet blocks) the full
convolution's column matrix gives the weight gradient too: it holds every output gradient
value that meets each pixel of x, so ``grad_weight`` is one GEMM of those columns with x
itself, laid out by its zero padding (``_weight_from_full_possible``). The backward pass of
such a layer then builds one column matrix instead of two.

With ``groups=G`` the G products are one batched ``matmul`` over a leading group axis.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backend import get_array_module
from ..tensor import Function
from .columns import ConvGeometry, columns_to_nchw, nchw_to_columns, padded_as_columns, workspace
from .workers import get_num_threads, map_chunks

__all__ = ["Conv2d", "image_chunks"]

# Size of one chunk's column matrix on the CPU: about the size of one core's L2 cache. On a
# 2-core EPYC (2 MB L2 per core, 32 MB L3), 2 and 4 MB gave the fastest training steps, 1 MB
# and 6-8 MB were 5-25% slower, and the whole batch at once 1.4x (ResNet-20) to 1.7x (LeNet-5).
CHUNK_BYTES = 2 * 2**20

# Compute stride-1 input gradients as a full convolution where that is cheaper (see above).
USE_FULL_CONVOLUTION = True


def image_chunks(geometry: ConvGeometry, itemsize: int, xp) -> list:
    """(slice of the batch, its geometry) pairs, each chunk at most about ``CHUNK_BYTES`` of
    columns on the CPU; on a GPU the whole batch is one chunk.

    With several workers (workers.py) the chunk count is rounded up to a multiple of theirs,
    so that each gets as many: 3 chunks on 2 workers would leave one idle half the time.
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


class Conv2d(Function):
    """x: (N, C, H, W), weight: (O, C/G, KH, KW), bias: (O,) or None -> (N, O, OH, OW).

    Called as the reference's ``Conv2d`` is (functional/conv.py chooses between them).
    """

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        xp = get_array_module(x)
        geometry = ConvGeometry(tuple(x.shape), tuple(weight.shape[2:]), stride, padding, dilation)
        weight_matrix = weight.reshape(groups, weight.shape[0] // groups, -1)  # (G, O/G, C/G*KH*KW)
        self.geometry, self.groups, self.weight_shape = geometry, groups, weight.shape
        if self.needs_input_grad[1]:
            self.x = x                          # the weight gradient needs the windows again
        if self.needs_input_grad[0]:
            self.weight_matrix = weight_matrix  # the input gradient needs the weight
        out = xp.empty((x.shape[0], weight.shape[0]) + geometry.out_size, dtype=x.dtype)

        def forward_chunk(chunk, chunk_geometry):
            cols = workspace(chunk_geometry, x.dtype, xp, "input").im2col(x[chunk])  # (C*KH*KW, windows)
            cols = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])     # (G, C/G*KH*KW, windows)
            out_columns = xp.matmul(weight_matrix, cols)                            # (G, O/G, windows)
            columns_to_nchw(out_columns.reshape(out.shape[1], -1), chunk_geometry, bias, out=out[chunk])

        map_chunks(forward_chunk, image_chunks(geometry, x.dtype.itemsize, xp))
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        geometry = self.geometry
        need_x, need_weight, need_bias = self.needs_input_grad[:3]
        grad_x = xp.empty(geometry.x_shape, dtype=grad.dtype) if need_x else None
        if need_x and USE_FULL_CONVOLUTION and _use_full_convolution(geometry, self.weight_shape):
            method = _FullConvolutionBackward(self, grad, grad_x, need_weight)
        else:
            method = _Col2imBackward(self, grad, grad_x, need_weight)
        weight_sum = map_chunks(method.chunk, image_chunks(geometry, grad.dtype.itemsize, xp))
        grad_weight = method.weight_gradient(weight_sum) if need_weight else None
        grad_bias = grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2).sum(axis=0) if need_bias else None
        return grad_x, grad_weight, grad_bias


def _grad_columns(grad, chunk, chunk_geometry, groups: int):
    """A chunk of the output gradient as columns: (n, O, OH, OW) -> (G, O/G, windows)."""
    grad_columns = nchw_to_columns(grad[chunk], chunk_geometry)                # (O, windows)
    return grad_columns.reshape(groups, -1, grad_columns.shape[1])


def _weight_part_from_columns(conv: Conv2d, grad_columns, chunk, chunk_geometry):
    """A chunk's part of the weight gradient, the textbook way: im2col of x times the output gradient.

    grad_columns: (G, O/G, windows) -> (G, C/G*KH*KW, O/G), the weight gradient's matrix transposed.
    """
    xp, groups = get_array_module(grad_columns), conv.groups
    cols = workspace(chunk_geometry, grad_columns.dtype, xp, "input").im2col(conv.x[chunk])
    cols = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])        # (G, C/G*KH*KW, windows)
    # cols @ grad.T rather than grad @ cols.T: the same numbers, but OpenBLAS
    # runs this orientation about 1.5x faster for these long, thin matrices.
    return xp.matmul(cols, grad_columns.transpose(0, 2, 1))


def _from_transposed_matrix(grad_weight_matrix_t, weight_shape):
    """(G, C/G*KH*KW, O/G) -> (O, C/G, KH, KW)."""
    return grad_weight_matrix_t.transpose(0, 2, 1).reshape(weight_shape)


class _Col2imBackward:
    """The three rules of the reference, per chunk: weight gradient from the columns, column
    gradient from the weight, col2im."""

    def __init__(self, conv: Conv2d, grad, grad_x, need_weight: bool):
        self.conv, self.grad, self.grad_x, self.need_weight = conv, grad, grad_x, need_weight

    def chunk(self, chunk, chunk_geometry):
        """Write this chunk's part of grad_x; return its part of the weight gradient, (G, C/G*KH*KW, O/G)."""
        conv, grad = self.conv, self.grad
        xp = get_array_module(grad)
        grad_columns = _grad_columns(grad, chunk, chunk_geometry, conv.groups)                 # (G, O/G, windows)
        part = _weight_part_from_columns(conv, grad_columns, chunk, chunk_geometry) if self.need_weight else None
        if self.grad_x is not None:
            grad_cols = xp.matmul(conv.weight_matrix.transpose(0, 2, 1), grad_columns)       # (G, C/G*KH*KW, windows)
            columns = workspace(chunk_geometry, grad.dtype, xp, "input")
            self.grad_x[chunk] = columns.col2im(grad_cols.reshape(-1, grad_cols.shape[-1]))
        return part

    def weight_gradient(self, total):
        return _from_transposed_matrix(total, self.conv.weight_shape)


class _FullConvolutionBackward:
    """The input gradient as a full convolution of the output gradient (see the module docstring);
    for a "same" convolution the weight gradient from that convolution's columns too."""

    def __init__(self, conv: Conv2d, grad, grad_x, need_weight: bool):
        self.conv, self.grad, self.grad_x, self.need_weight = conv, grad, grad_x, need_weight
        self.flipped = _flipped_kernel(conv.weight_matrix, conv.weight_shape)   # (G, C/G, O/G*KH*KW)
        self.weight_from_full = need_weight and _weight_from_full_possible(conv.geometry)

    def chunk(self, chunk, chunk_geometry):
        """Write this chunk's part of grad_x; return its part of the weight gradient, laid out
        as ``weight_gradient`` expects."""
        conv, grad = self.conv, self.grad
        xp = get_array_module(grad)
        full_geometry = _full_geometry(chunk_geometry, grad[chunk].shape)
        grad_cols = workspace(full_geometry, grad.dtype, xp, "grad").im2col(grad[chunk])
        grad_cols = grad_cols.reshape(conv.groups, -1, grad_cols.shape[1])   # (G, O/G*KH*KW, windows of x)
        out_columns = xp.matmul(self.flipped, grad_cols)                     # (G, C/G, windows of x)
        columns_to_nchw(out_columns.reshape(conv.geometry.x_shape[1], -1), full_geometry, out=self.grad_x[chunk])
        if not self.need_weight:
            return None
        if not self.weight_from_full:
            return _weight_part_from_columns(conv, _grad_columns(grad, chunk, chunk_geometry, conv.groups), chunk,
                                             chunk_geometry)
        # grad_weight[o, c, i, j] = sum over pixels of x[c] * grad_cols[(o, KH-1-i, KW-1-j)]
        # (see _weight_from_full_possible): no im2col of x, only its padding.
        padded = workspace(chunk_geometry, grad.dtype, xp, "input").pad(conv.x[chunk])
        x_columns = padded_as_columns(padded, chunk_geometry)                  # (C, windows of x)
        x_columns = x_columns.reshape(conv.groups, -1, x_columns.shape[1])     # (G, C/G, windows of x)
        # (the long matrices' side first, as above: OpenBLAS runs it faster)
        return xp.matmul(grad_cols, x_columns.transpose(0, 2, 1))              # (G, O/G*KH*KW, C/G)

    def weight_gradient(self, total):
        if self.weight_from_full:
            return _unflipped_weight_gradient(total, self.conv.weight_shape)
        return _from_transposed_matrix(total, self.conv.weight_shape)


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
