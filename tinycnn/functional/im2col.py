"""im2col and col2im: turn a convolution into one matrix product.

A convolution multiplies every KH x KW window of the input with the kernel.
``im2col`` copies each window into a column of a matrix, so the whole
convolution becomes ``weight (O, C*KH*KW) @ cols (C*KH*KW, windows)``: one big
GEMM, which BLAS (CPU) or cuBLAS (GPU) runs at close to peak speed.
``col2im`` is its adjoint: it adds every column back onto the input pixels it
came from (a pixel inside several windows collects several contributions). It
turns the gradient of the columns into the gradient of the input.

Neither loops over pixels or images. im2col is a single copy of a strided
*view* of the (zero-padded) input; col2im loops only over the KH * KW kernel
offsets, each step one vectorized add.

Memory layout (chosen for speed, measured in benchmarks/layers.py)
-----------------------------------------------------------------
NumPy copies and adds fast when the innermost contiguous runs are long. So:

1. The padded input is stored as (C, H, N, W): one image row of every image
   next to each other. Converting from (N, C, H, W) moves whole rows.
2. The windows are ordered (out_row, image, out_col): cols is
   (C*KH*KW, OH * N * RW).
3. The "wide row" trick (stride 1 along W): we compute RW = Wp (the full padded
   width) output columns per row instead of OW. The extra KW-1 columns are
   garbage (their windows run over the row's end) and are dropped, but now a
   window row of all N images is ONE contiguous run in memory, and so is the
   whole (out_row, image, out_col) block when the stride along H is 1 too.
   im2col then copies, and col2im adds, runs of OH*N*Wp numbers instead of OW.
   The price: Wp/OW times more columns (1.06x for 32x32 with 3x3 padding 1).
   (Laid out per image, (N, C, H, W), the runs would be OH*Wp: 140 numbers for
   LeNet-5's second convolution, whose col2im then took 4x longer.)

The convolution (conv.py) calls these on a few images at a time (N is then the
chunk's image count), so that the column matrix stays in the CPU's cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from ..backend import get_array_module

__all__ = ["pair", "conv_output_size", "ConvGeometry", "pad_images", "im2col", "col2im", "columns_to_nchw",
           "nchw_to_columns", "padded_as_columns"]


def pair(value, name: str = "argument", op: str = "conv2d") -> tuple:
    """``3 -> (3, 3)``; ``(3, 5)`` stays. For kernel_size, stride, padding, dilation."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0):
        return int(value), int(value)
    try:
        first, second = value
        return int(first), int(second)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Number of window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


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

    ``windows[c, i, j, y, n, x] = padded[c, y*SH + i*DH, n, x*SW + j*DW]``: the
    pixel at kernel offset (i, j) of window (y, x) of image n. Strides say how
    many bytes one step along each axis skips, so one array can be seen as
    another without copying (and must be used with care: NumPy does not check
    that a strided view stays inside the array, which is what the spare row is for).
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


def pad_images(x, geometry: ConvGeometry, workspace=None):
    """x (N, C, H, W) -> (C, Hp, N, Wp) with zeros around (and a spare zero row, see ``padded_shape``).

    With a ``workspace`` (workspace.py, CPU), into its ``padded`` array, whose border is already zero.
    """
    if workspace is None:
        _, _, h, w = x.shape
        ph, pw = geometry.padding
        padded = get_array_module(x).zeros(geometry.padded_shape, dtype=x.dtype)
        interior = padded[:, ph:ph + h, :, pw:pw + w]
    else:
        padded, interior = workspace.padded, workspace.interior
    interior[...] = x.transpose(1, 2, 0, 3)  # (N, C, H, W) -> (C, H, N, W)
    return padded


def im2col(x, geometry: ConvGeometry, workspace=None):
    """Copy every sliding window of ``x`` into a column.

    x: (N, C, H, W) -> cols (C*KH*KW, OH*N*RW), rows ordered (c, i, j), columns (y, n, x).

    With a ``workspace`` (workspace.py, CPU), the images go into its padded array and
    the columns into its ``cols``, which is returned: no allocation, no zeroing.
    """
    if workspace is not None:
        pad_images(x, geometry, workspace)
        workspace.cols_by_window[...] = workspace.windows       # the copy that makes the view a matrix
        return workspace.cols
    c = x.shape[1]
    kh, kw = geometry.kernel
    xp = get_array_module(x)
    # The one copy that makes the view a matrix.
    return xp.ascontiguousarray(_windows(pad_images(x, geometry), geometry)).reshape(c * kh * kw, -1)


def col2im(cols, geometry: ConvGeometry, workspace=None):
    """Add every column back onto the pixels of its window: the adjoint of im2col.

    cols: (C*KH*KW, OH*N*RW) -> (N, C, H, W) (a transposed view)

    Columns of wide-row garbage windows must be zero (``nchw_to_columns`` makes
    the gradient so), since they are added too. With a ``workspace`` (CPU), the sums
    are made in its padded array (zeroed first), and the result is a view of it.
    """
    xp = get_array_module(cols)
    n, c, h, w = geometry.x_shape
    (kh, kw), (ph, pw) = geometry.kernel, geometry.padding
    if workspace is None:
        padded = xp.zeros(geometry.padded_shape, dtype=cols.dtype)
        windows = _windows(padded, geometry)  # writable view of `padded`
    else:
        padded, windows = workspace.padded, workspace.windows
        padded.fill(0)
    cols = cols.reshape(c, kh, kw, geometry.out_size[0], n, geometry.row_width)
    for i in range(kh):
        for j in range(kw):
            # Windows overlap, so add, not assign. `view += ...` writes into `padded`.
            # (Within one offset (i, j) no two windows share a pixel, so the add is safe.)
            view = windows[:, i, j]
            view += cols[:, i, j]
    image = padded[:, ph:ph + h, :, pw:pw + w]  # drop the padding: (C, H, N, W)
    return image.transpose(2, 0, 1, 3)


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

    padded: (C, Hp + 1, N, Wp) from ``pad_images`` -> (C, H*N*Wp), a view whose column
    (h, n, w) is pixel (h, w) of image n for w < W, and zero for W <= w < Wp.

    That is the layout of a convolution's output when its rows are Wp wide: the full
    convolution of the input gradient (conv.py) has one output per input pixel, and
    for a "same" convolution its row width is Wp. The view starts at the first pixel
    and runs on through the right padding of each row and the left padding of the
    next, which are zeros, as the garbage columns must be.
    """
    c, _, n, padded_width = padded.shape
    h = geometry.x_shape[2]
    ph, pw = geometry.padding
    start = (ph * n) * padded_width + pw           # pixel (0, 0) of image 0
    return padded.reshape(c, -1)[:, start:start + h * n * padded_width]
