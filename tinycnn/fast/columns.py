"""The fast convolution's column matrices, and the scratch arrays it reuses to build them.

The reference convolution (functional/conv.py) lays its columns out as a textbook does,
(N, C*KH*KW, OH*OW). This module lays them out for speed, measured in benchmarks/layers.py:

1. The padded input is stored as (C, Hp, N, W): one image row of every image next to each
   other. Converting from (N, C, H, W) moves whole rows.
2. The windows are ordered (out_row, image, out_col): cols is (C*KH*KW, OH * N * RW).
3. The "wide row" trick (stride 1 along W): compute RW = Wp (the full padded width) output
   columns per row instead of OW. The extra KW-1 columns are garbage (their windows run over
   the row's end) and are dropped, but now a window row of all N images is ONE contiguous run
   in memory, and so is the whole (out_row, image, out_col) block when the stride along H is
   1 too. im2col then copies, and col2im adds, runs of OH*N*Wp numbers instead of OW. The
   price: Wp/OW times more columns (1.06x for 32x32 with 3x3 padding 1). (Laid out per
   image, the runs would be OH*Wp: 140 numbers for LeNet-5's second convolution, whose
   col2im then took 4x longer.)

A :class:`Workspace` owns the arrays of one chunk shape (the convolution runs a few images,
"a chunk", at a time: fast/conv.py) and builds columns in them:

* ``padded`` (C, Hp + 1, n, Wp) is zeroed once. Afterwards only its interior is ever written,
  so the border stays zero: padding costs nothing.
* ``windows`` is the (C, KH, KW, OH, n, RW) view of ``padded`` whose copy is im2col.
* the column matrix (C*KH*KW, OH*n*RW) receives that copy; col2im sums into a padded array of
  its own (it writes into the padding, which im2col's must keep zero).

Allocating these afresh for every chunk costs more than it seems (the padded array must be
zeroed, a full write, and building the strided view takes Python time), so on the CPU a
thread keeps its workspaces from chunk to chunk and step to step (:func:`workspace`). On a
GPU the batch is one chunk and CuPy's memory pool already recycles allocations: there every
call gets a fresh workspace. A workspace's arrays are overwritten by the next chunk of the
same shape: whatever is computed from them must be used (or copied) before then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..backend import get_array_module
from ..windows import conv_output_size

__all__ = ["ConvGeometry", "Workspace", "workspace", "clear_workspaces", "columns_to_nchw", "nchw_to_columns",
           "padded_as_columns"]

# Reuse the padded images and column matrices from chunk to chunk on the CPU.
USE_WORKSPACES = True

# How many workspaces a thread keeps (least recently used dropped first). ResNet-20 uses
# about a dozen (a layer shape x full and last chunk x input and gradient); a few MB each.
MAX_WORKSPACES = 48


@dataclass(frozen=True)
class ConvGeometry:
    """All sizes of one convolution: input (N, C, H, W), kernel (KH, KW), stride, padding, dilation.

    The derived sizes are computed once per object (``cached_property``): a convolution
    asks for them in every chunk.
    """

    x_shape: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple

    @cached_property
    def out_size(self) -> tuple:
        """(OH, OW)."""
        return tuple(conv_output_size(self.x_shape[2 + a], self.kernel[a], self.stride[a], self.padding[a],
                                      self.dilation[a]) for a in (0, 1))

    @cached_property
    def wide_rows(self) -> bool:
        """Use the wide-row trick (possible when the stride along W is 1)."""
        return self.stride[1] == 1

    @cached_property
    def row_width(self) -> int:
        """RW, output columns computed per row: the padded width Wp with wide rows, else OW."""
        return self.x_shape[3] + 2 * self.padding[1] if self.wide_rows else self.out_size[1]

    @cached_property
    def padded_shape(self) -> tuple:
        """(C, Hp, N, Wp), plus one spare zero row that a wide row of the last window reads into."""
        n, c, h, w = self.x_shape
        return (c, h + 2 * self.padding[0] + int(self.wide_rows), n, w + 2 * self.padding[1])

    @cached_property
    def columns_per_image(self) -> int:
        """OH * RW: how many of cols' columns each image adds."""
        return self.out_size[0] * self.row_width

    def for_images(self, count: int) -> "ConvGeometry":
        """The same convolution over a batch of ``count`` images (for batch blocking)."""
        return replace(self, x_shape=(count,) + tuple(self.x_shape[1:]))


def _windows(padded, geometry: ConvGeometry):
    """A view of padded (C, Hp, N, Wp) as (C, KH, KW, OH, N, RW); nothing is copied.

    ``windows[c, i, j, y, n, x] = padded[c, y*SH + i*DH, n, x*SW + j*DW]``: the pixel at
    kernel offset (i, j) of window (y, x) of image n. Strides say how many bytes one step
    along each axis skips, so one array can be seen as another without copying (and must be
    used with care: NumPy does not check that a strided view stays inside the array, which is
    what the spare row is for).
    """
    xp = get_array_module(padded)
    c, _, n, _ = padded.shape
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    stride_c, stride_row, stride_n, stride_col = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded,
        shape=(c, kh, kw, geometry.out_size[0], n, geometry.row_width),
        strides=(stride_c, stride_row * dh, stride_col * dw, stride_row * sh, stride_n, stride_col * sw),
    )


class Workspace:
    """The arrays of one chunk geometry and dtype, and the column operations that use them."""

    def __init__(self, geometry: ConvGeometry, dtype, xp=np):
        n, c, h, w = geometry.x_shape
        ph, pw = geometry.padding
        self.geometry, self.xp = geometry, xp
        self.padded = xp.zeros(geometry.padded_shape, dtype=dtype)      # (C, Hp + 1, n, Wp), border zero
        self.interior = self.padded[:, ph:ph + h, :, pw:pw + w]          # (C, H, n, W) view
        self.windows = _windows(self.padded, geometry)                   # (C, KH, KW, OH, n, RW) view
        self._cols_by_window = self._cols = None                         # made on first im2col
        self._sums = self._sums_by_window = None                         # made on first col2im

    def pad(self, x):
        """x (n, C, H, W) -> the padded images (C, Hp + 1, n, Wp), zero around."""
        self.interior[...] = x.transpose(1, 2, 0, 3)  # (n, C, H, W) -> (C, H, n, W)
        return self.padded

    def im2col(self, x):
        """Copy every sliding window of ``x`` into a column.

        x: (n, C, H, W) -> cols (C*KH*KW, OH*n*RW), rows ordered (c, i, j), columns (y, n, x).
        """
        self.pad(x)
        if self._cols is None:
            c, kh, kw = self.windows.shape[:3]
            self._cols_by_window = self.xp.empty(self.windows.shape, dtype=self.padded.dtype)
            self._cols = self._cols_by_window.reshape(c * kh * kw, -1)   # the same memory as a matrix
        self._cols_by_window[...] = self.windows       # the copy that makes the view a matrix
        return self._cols

    def col2im(self, cols):
        """Add every column back onto the pixels of its window: the adjoint of im2col.

        cols: (C*KH*KW, OH*n*RW) -> (n, C, H, W), a transposed view of this workspace's sums.

        Columns of wide-row garbage windows must be zero (``nchw_to_columns`` makes the
        gradient so), since they are added too.
        """
        n, c, h, w = self.geometry.x_shape
        (kh, kw), (ph, pw) = self.geometry.kernel, self.geometry.padding
        if self._sums is None:
            self._sums = self.xp.empty(self.geometry.padded_shape, dtype=self.padded.dtype)
            self._sums_by_window = _windows(self._sums, self.geometry)   # writable view of the sums
        self._sums.fill(0)
        cols = cols.reshape(c, kh, kw, self.geometry.out_size[0], n, self.geometry.row_width)
        for i in range(kh):
            for j in range(kw):
                # Windows overlap, so add, not assign. `view += ...` writes into the sums.
                # (Within one offset (i, j) no two windows share a pixel, so the add is safe.)
                view = self._sums_by_window[:, i, j]
                view += cols[:, i, j]
        image = self._sums[:, ph:ph + h, :, pw:pw + w]  # drop the padding: (C, H, n, W)
        return image.transpose(2, 0, 1, 3)


_local = threading.local()


def workspace(geometry: ConvGeometry, dtype, xp, role: str) -> Workspace:
    """The workspace for ``geometry`` and ``dtype``: on the CPU this thread's, made on first use
    and kept; on a GPU (or with ``USE_WORKSPACES`` off) a fresh one.

    ``role`` keeps apart workspaces that are alive at the same time with the same geometry: the
    backward pass holds the input's padded images ("input") and the padded output gradient
    ("grad") together.
    """
    if xp is not np or not USE_WORKSPACES:
        return Workspace(geometry, dtype, xp)
    cache = getattr(_local, "workspaces", None)
    if cache is None:
        cache = _local.workspaces = OrderedDict()
    key = (geometry, np.dtype(dtype).str, role)
    found = cache.get(key)
    if found is None:
        found = cache[key] = Workspace(geometry, dtype)
        if len(cache) > MAX_WORKSPACES:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


def clear_workspaces() -> None:
    """Drop this thread's workspaces (their memory goes back to the allocator)."""
    _local.workspaces = OrderedDict()


def columns_to_nchw(out_columns, geometry: ConvGeometry, bias=None, out=None):
    """The GEMM's output back to an image batch, adding the bias on the way.

    out_columns: (O, OH*N*RW) -> (N, O, OH, OW); garbage wide-row columns are dropped.
    ``out``, if given, is the (N, O, OH, OW) array to write into.
    """
    xp = get_array_module(out_columns)
    n = geometry.x_shape[0]
    out_channels = out_columns.shape[0]
    oh, ow = geometry.out_size
    rows = out_columns.reshape(out_channels, oh, n, geometry.row_width)[..., :ow]
    rows = rows.transpose(2, 0, 1, 3)  # (N, O, OH, OW), a view
    if out is None:
        out = xp.empty((n, out_channels, oh, ow), dtype=out_columns.dtype)
    if bias is None:
        out[...] = rows
    else:
        xp.add(rows, bias.reshape(1, out_channels, 1, 1), out=out)  # the copy we need anyway adds the bias
    return out


def nchw_to_columns(grad, geometry: ConvGeometry):
    """The inverse layout change, for the output's gradient.

    grad: (N, O, OH, OW) -> (O, OH*N*RW), zero in the garbage wide-row columns.
    """
    xp = get_array_module(grad)
    n, out_channels, oh, ow = grad.shape
    if geometry.row_width == ow:
        return xp.ascontiguousarray(grad.transpose(1, 2, 0, 3)).reshape(out_channels, -1)
    columns = xp.zeros((out_channels, oh, n, geometry.row_width), dtype=grad.dtype)
    columns[..., :ow] = grad.transpose(1, 2, 0, 3)
    return columns.reshape(out_channels, -1)


def padded_as_columns(padded, geometry: ConvGeometry):
    """Padded images seen, without a copy, as the columns of their own pixels.

    padded: (C, Hp + 1, N, Wp) from ``Workspace.pad`` -> (C, H*N*Wp), a view whose column
    (h, n, w) is pixel (h, w) of image n for w < W, and zero for W <= w < Wp.

    That is the layout of a convolution's output when its rows are Wp wide: the full
    convolution of the input gradient (conv.py) has one output per input pixel, and for a
    "same" convolution its row width is Wp. The view starts at the first pixel and runs on
    through the right padding of each row and the left padding of the next, which are
    zeros, as the garbage columns must be.
    """
    c, _, n, padded_width = padded.shape
    h = geometry.x_shape[2]
    ph, pw = geometry.padding
    start = (ph * n) * padded_width + pw           # pixel (0, 0) of image 0
    return padded.reshape(c, -1)[:, start:start + h * n * padded_width]
