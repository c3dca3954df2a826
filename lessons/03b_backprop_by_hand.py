"""Lesson 3b - Backprop through a CNN by hand.

Autograd computed every gradient so far. Here we write each backward ourselves, on raw
NumPy arrays: the convolution's (a matrix product, then col2im), max pooling's (the
gradient is routed to each window's maximum), batch norm's (derived step by step, then in
one line) and softmax cross-entropy's (p - y). Each is checked against tinycnn's autograd
and against finite differences in float64; then a whole small CNN is backpropagated by
hand and compared with loss.backward().
"""

# ---------------------------------------------------------------------------------------
# Lesson 1 showed that backward() is the chain rule applied node by node, and lesson 2
# checked every op's backward numerically. But each op's backward was still a black box:
# where does the gradient of a convolution come from, and why does batch norm's backward
# have three terms? This lesson opens the boxes. It is the one place in the course where
# you should have a pencil: every formula below is derived in the comments, implemented in
# a few lines of NumPy, and then checked twice - against tinycnn's autograd (which must
# agree to rounding: 1e-16 to 1e-14 in float64, depending on the size of the numbers) and
# against central differences (which agree to about 1e-9 to 1e-11 of the gradient's size,
# the limit of the difference quotient, as lesson 2 showed).
#
# One convention carries the whole lesson. A layer computes Y = f(X, W). Its backward is
# handed dY = dL/dY - the "upstream" gradient, with exactly Y's shape - and returns
# dX = dL/dX and dW = dL/dW, with X's and W's shapes. By the chain rule
#
#     dL/dX[i] = sum over every output j of  dL/dY[j] * dY[j]/dX[i]
#
# and the whole art is to write that sum without ever building the (huge, mostly zero)
# Jacobian dY/dX. To test a backward we pick a random dY and define L = sum(Y * dY): then
# dL/dY is exactly dY, and tinycnn's `y.backward(dY)` starts from the same upstream
# gradient.
# ---------------------------------------------------------------------------------------

import importlib
import inspect
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
import tinycnn.functional as F  # noqa: E402
from tinycnn import nn  # noqa: E402
from tinycnn.data import Shapes  # noqa: E402
from tinycnn.functional import conv as reference_conv, loss as reference_loss  # noqa: E402
from tinycnn.functional import math as reference_math  # noqa: E402
from tinycnn.functional import norm as reference_norm, pool as reference_pool  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

# (tinycnn.functional.linear is also the name of the function linear(): import the module by its path)
reference_linear = importlib.import_module("tinycnn.functional.linear")

lesson = Lesson(__file__, __doc__)
rng = np.random.default_rng(lesson.args.seed)
PACKAGE_ROOT = Path(tinycnn.__file__).resolve().parent.parent


def where(obj) -> str:
    """Where to read a function of tinycnn: 'tinycnn/functional/conv.py, Conv2d.backward, lines a-b'."""
    lines, first = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj)).resolve().relative_to(PACKAGE_ROOT)
    return f"{path}, {obj.__qualname__}, lines {first}-{first + len(lines) - 1}"


def numeric_gradient(loss_of, array, eps=1e-6):
    """dL/d(array) by central differences: loss_of() is re-run with each element nudged by +-eps."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)     # views: writing flat[k] nudges array
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        plus = loss_of()
        flat[k] = saved - eps
        minus = loss_of()
        flat[k] = saved
        flat_grad[k] = (plus - minus) / (2 * eps)
    return grad


def autograd_gradients(op, arrays, upstream):
    """What tinycnn's autograd gives for op(*tensors).backward(upstream), on each floor.

    Returns {"reference": [grad of each array], "fast": [...]}. The reference floor is the
    code this lesson reads (tinycnn/functional/); the fast floor is what the engine runs
    by default (tinycnn/fast/), and must give the same numbers.
    """
    results = {}
    for floor_name, floor in (("reference", tinycnn.reference_floor), ("fast", tinycnn.fast_floor)):
        with floor():
            tensors = [tinycnn.tensor(a, dtype=tinycnn.float64, requires_grad=True) for a in arrays]
            op(*tensors).backward(upstream)
            results[floor_name] = [t.grad.numpy() for t in tensors]
    return results


def max_difference(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def report(names, by_hand, autograd, numeric):
    """One line per gradient: max |by hand - autograd| on both floors, and against finite differences."""
    for k, name in enumerate(names):
        print(f"  {name:<8} {max_difference(by_hand[k], autograd['reference'][k]):12.1e}"
              f"{max_difference(by_hand[k], autograd['fast'][k]):12.1e}"
              f"{relative_difference(by_hand[k], numeric[k]):14.1e}")


def relative_difference(a, b) -> float:
    """max |a - b| / max |b|: finite differences are only as good as the size of the values allows."""
    return max_difference(a, b) / max(float(np.abs(b).max()), 1e-300)


HEADER = (f"  {'':<8} {'vs reference':>12}{'vs fast':>12}{'vs numeric':>14}\n"
          f"  {'':<8} {'max |diff|':>12}{'max |diff|':>12}{'(relative)':>14}")

# ---------------------------------------------------------------------------------------
# 1. The building block: a matrix product
#
# Y = W @ X with W (O, K) and X (K, L):  Y[o, l] = sum_k W[o, k] * X[k, l].
# W[o, k] appears in the outputs Y[o, l] of row o only, each time multiplied by X[k, l]:
#
#     dW[o, k] = sum_l dY[o, l] * X[k, l]       ->   dW = dY @ X.T      (O, L) @ (L, K) = (O, K)
#     dX[k, l] = sum_o dY[o, l] * W[o, k]       ->   dX = W.T @ dY      (K, O) @ (O, L) = (K, L)
#
# A trick to remember them: each gradient has its variable's shape, and there is only one
# way to multiply dY with the other factor (transposed or not) to get that shape.
# Everything below that involves weights - convolution, linear layers - reduces to this.
# ---------------------------------------------------------------------------------------
print("1. A matrix product Y = W @ X: dW = dY @ X.T, dX = W.T @ dY")
W = rng.standard_normal((3, 4))
X = rng.standard_normal((4, 5))
dY = rng.standard_normal((3, 5))
by_hand = [dY @ X.T, W.T @ dY]
autograd = autograd_gradients(lambda w, x: w @ x, [W, X], dY)
numeric = [numeric_gradient(lambda: np.sum((W @ X) * dY), W), numeric_gradient(lambda: np.sum((W @ X) * dY), X)]
print(HEADER)
report(["dW", "dX"], by_hand, autograd, numeric)

# Read the columns: against autograd (on both floors) the difference is 0 or a few 1e-16
# (the same sums, perhaps added in another order); against finite differences, relative
# to the gradient's size, 1e-9 or less (the difference quotient's own error, lesson 2).
# That pattern - rounding against autograd, 1e-9 or less against numeric - is what
# "correct" looks like in every table below. A wrong backward misses by 1e-2 or more.

# ---------------------------------------------------------------------------------------
# 2. Convolution: the backward is a matrix product, then col2im
#
# Lesson 3 wrote the forward as im2col + one matrix product:
#
#     cols = im2col(x)           (N, C*KH*KW, L)   one column per window, L = OH*OW
#     Y    = Wm @ cols + b       (N, O, L)         Wm = W reshaped to (O, C*KH*KW)
#
# So the backward is section 1's two rules, applied to every image n and summed:
#
#     dWm   = sum_n dY_n @ cols_n.T               (O, C*KH*KW), reshaped to W's shape
#     dcols = Wm.T @ dY_n                          (N, C*KH*KW, L)
#     db    = dY summed over n, h, w              (O,): b is added to every output pixel
#
# dcols holds the gradient of every *copy* of every pixel. A pixel of x was copied into
# every window that contains it, and each copy influenced different outputs, so by the
# chain rule its gradient is the SUM of its copies' gradients. That is col2im: the
# adjoint of im2col, which adds every column back onto its window. Overlapping windows
# overlap in col2im too - that is where the additions happen.
#
# Our im2col and col2im loop over the windows (one output pixel at a time), the most
# literal way to write them. tinycnn's reference floor loops over the KH*KW offsets
# inside a window instead (far fewer iterations, whole strided views at a time); the
# printout after this section says where to read it.
# ---------------------------------------------------------------------------------------


def output_size(h, w, k, stride, pad):
    return (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1


def im2col_windows(x, k, stride, pad):
    """(N, C, H, W) -> (N, C*k*k, OH*OW): column i*OW + j holds the window of output pixel (i, j)."""
    n, c, h, w = x.shape
    oh, ow = output_size(h, w, k, stride, pad)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c * k * k, oh * ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = padded[:, :, i * stride:i * stride + k, j * stride:j * stride + k]   # (N, C, k, k)
            cols[:, :, i * ow + j] = window.reshape(n, -1)
    return cols


def col2im_windows(cols, x_shape, k, stride, pad):
    """The adjoint of im2col: (N, C*k*k, OH*OW) -> (N, C, H, W), each column ADDED onto its window."""
    n, c, h, w = x_shape
    oh, ow = output_size(h, w, k, stride, pad)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(oh):
        for j in range(ow):
            padded[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += cols[:, :, i * ow + j].reshape(n, c, k, k)
    return padded[:, :, pad:pad + h, pad:pad + w]        # the padding's gradient is dropped: it is not an input


def conv_forward(x, w, b, stride=1, pad=0):
    """x (N, C, H, W), w (O, C, k, k), b (O,) -> y (N, O, OH, OW), and what the backward needs."""
    n, _, h, width = x.shape
    o, _, k, _ = w.shape
    cols = im2col_windows(x, k, stride, pad)                     # (N, C*k*k, L)
    y = w.reshape(o, -1) @ cols + b[:, None]                     # (O, Ck²) @ (N, Ck², L) -> (N, O, L)
    return y.reshape(n, o, *output_size(h, width, k, stride, pad)), (x.shape, w, cols, stride, pad)


def conv_backward(dy, cache):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, k, k), db (O,)."""
    x_shape, w, cols, stride, pad = cache
    n, o = dy.shape[:2]
    dy_matrix = dy.reshape(n, o, -1)                                         # (N, O, L)
    dw = (dy_matrix @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)  # dY @ cols.T, summed over images
    db = dy.sum(axis=(0, 2, 3))
    dcols = w.reshape(o, -1).T @ dy_matrix                                   # Wm.T @ dY: (N, Ck², L)
    dx = col2im_windows(dcols, x_shape, w.shape[2], stride, pad)
    return dx, dw, db


print("\n2. Convolution by hand: dW = dY @ cols.T, dX = col2im(W.T @ dY)")

# First, is our col2im really the adjoint of our im2col? For any x and any columns c,
# <im2col(x), c> must equal <x, col2im(c)> - that is what "adjoint" means, and it is
# exactly the property that makes col2im the right backward for im2col.
x_probe = rng.standard_normal((2, 3, 7, 7))
c_probe = rng.standard_normal(im2col_windows(x_probe, 3, 2, 1).shape)
left = np.sum(im2col_windows(x_probe, 3, 2, 1) * c_probe)
right = np.sum(x_probe * col2im_windows(c_probe, x_probe.shape, 3, 2, 1))
print(f"adjoint test, 3x3 windows, stride 2, padding 1: <im2col(x), c> = {left:.12f}, "
      f"<x, col2im(c)> = {right:.12f}")

n_images = lesson.pick(quick=2, default=2, full=4)
size = lesson.pick(quick=5, default=7, full=9)
for stride, pad in [(1, 1), (2, 1), (1, 0)]:
    x = rng.standard_normal((n_images, 2, size, size))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    y, cache = conv_forward(x, w, b, stride, pad)
    dy = rng.standard_normal(y.shape)
    by_hand = conv_backward(dy, cache)
    autograd = autograd_gradients(lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=stride, padding=pad), [x, w, b], dy)

    def loss_of():
        return np.sum(conv_forward(x, w, b, stride, pad)[0] * dy)

    numeric = [numeric_gradient(loss_of, a) for a in (x, w, b)]
    forward_check = max_difference(y, F.conv2d(tinycnn.tensor(x, dtype=tinycnn.float64), tinycnn.tensor(w, dtype=tinycnn.float64),
                                               tinycnn.tensor(b, dtype=tinycnn.float64), stride=stride, padding=pad).numpy())
    print(f"x {x.shape}, w {w.shape}, stride {stride}, padding {pad} -> y {y.shape}; "
          f"forward vs F.conv2d {forward_check:.1e}")
    print(HEADER)
    report(["dx", "dw", "db"], by_hand, autograd, numeric)

print(f"read it in tinycnn: {where(reference_conv.im2col)}")
print(f"                    {where(reference_conv.col2im)}")
print(f"                    {where(reference_conv.Conv2d.backward)}")

# Each table should show the pattern of section 1 (rounding against autograd, 1e-9 or less
# against finite differences) for every stride and padding; the adjoint test should print
# the same number twice, to the last digits. Now open tinycnn's code at the lines
# printed above: Conv2d.backward is these same three lines (with a `groups` axis added),
# and col2im's `view += ...` is our `+=`: "windows overlap: add, not assign".
#
# Figure conv_backward.png makes col2im visible on one 6x6 channel, 3x3 kernel, padding 1:
#   (a) the kernel;
#   (b) dY that is 1 at one output pixel and 0 elsewhere: dX is the kernel itself, placed
#       on that pixel's window - one output's gradient goes back to exactly the inputs it
#       read, each weighted by the weight that read it;
#   (c) col2im of all ones: how many windows cover each pixel (9 inside, 6 on the edges,
#       4 in the corners, because padding 1 lets the windows hang over the border);
#   (d) a random dY and the dX it produces: a sum of kernels stamped everywhere, which is
#       why people say "the backward of a convolution is a convolution" (with the kernel
#       flipped - the fast floor computes it that way, tinycnn/fast/conv.py).
kernel = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0], [-2.0, 0.0, 1.0]])
one_hot_dy = np.zeros((1, 1, 6, 6))
one_hot_dy[0, 0, 2, 3] = 1.0
figure_cache = conv_forward(np.zeros((1, 1, 6, 6)), kernel[None, None], np.zeros(1), 1, 1)[1]
dx_one_hot = conv_backward(one_hot_dy, figure_cache)[0][0, 0]
coverage = col2im_windows(np.ones((1, 9, 36)), (1, 1, 6, 6), 3, 1, 1)[0, 0]
random_dy = rng.standard_normal((1, 1, 6, 6))
dx_random = conv_backward(random_dy, figure_cache)[0][0, 0]
print(f"\nfigure: one output's gradient lands on its window, sum {dx_one_hot.sum():g} = the kernel's sum "
      f"{kernel.sum():g}; windows covering a corner / edge / inner pixel: "
      f"{coverage[0, 0]:g} / {coverage[0, 2]:g} / {coverage[2, 2]:g}")

fig, axes = plt.subplots(2, 3, figsize=(11, 7.5), layout="constrained")
panels = [(kernel, "(a) the kernel w (3x3)", True),
          (one_hot_dy[0, 0], "(b) dY: 1 at output pixel (2, 3)", True),
          (dx_one_hot, "dX = col2im(w.T @ dY): the kernel,\nplaced on that pixel's window", True),
          (coverage, "(c) col2im(all ones): how many\nwindows cover each pixel", True),
          (random_dy[0, 0], "(d) a random dY ...", False),
          (dx_random, "... and its dX", False)]
for ax, (matrix, title, numbers) in zip(axes.flat, panels):
    signed = matrix.min() < 0
    limit = np.abs(matrix).max() or 1.0
    image = ax.imshow(matrix, cmap="coolwarm" if signed else "Blues", vmin=-limit if signed else 0, vmax=limit)
    if numbers:
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=10,
                    color="white" if not signed and value > limit / 2 else "black")
    else:
        fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(title=title, xticks=[], yticks=[])
axes[0, 1].add_patch(plt.Rectangle((2.5, 1.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
axes[0, 2].add_patch(plt.Rectangle((1.5, 0.5), 3, 3, fill=False, edgecolor="black", linewidth=2))
fig.suptitle("The backward of a convolution: each output's gradient goes back onto its window (6x6 input, padding 1)")
fig.savefig(lesson.figure("conv_backward.png"))
plt.close(fig)

# ---------------------------------------------------------------------------------------
# 3. Max pooling: the gradient is routed, not computed
#
# y = max(window). Inside one window, nudging the largest input by a little moves y by
# the same little; nudging any other input (not far enough to overtake) moves y not at
# all. So dy/dx is 1 for the window's maximum and 0 for the rest: the backward copies
# each output's gradient to the position of its window's maximum - the argmax, which the
# forward must remember - and sends nothing anywhere else. No multiplication at all:
# max pooling is a router. Where windows overlap (a 3x3 window with stride 2), one input
# can be the maximum of two windows and then receives the sum of both gradients (the
# chain rule's sum over outputs, as in col2im).
#
# Ties. If two inputs of a window hold the same maximum, the max is not differentiable
# there (raising either one raises y; lowering either one does not), and a library must
# pick a rule. tinycnn's: the whole gradient goes to the first maximum in row-major order
# within the window (as PyTorch does on the CPU). np.argmax on the flattened window
# returns exactly that first maximum. Ties are not exotic: after a ReLU, every window
# that lies on a zero region is all zeros.
# ---------------------------------------------------------------------------------------


def maxpool_forward(x, k, stride):
    """x (N, C, H, W) -> y (N, C, OH, OW), the maximum of each k x k window (no padding)."""
    n, c, h, w = x.shape
    oh, ow = output_size(h, w, k, stride, 0)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)      # index of the maximum inside its window, row-major
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k].reshape(n, c, k * k)
            argmax[:, :, i, j] = window.argmax(axis=2)      # the FIRST maximum on a tie
            y[:, :, i, j] = window.max(axis=2)
    return y, (x.shape, k, stride, argmax)


def maxpool_backward(dy, cache):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each dy goes to its window's argmax, nowhere else."""
    x_shape, k, stride, argmax = cache
    n, c, oh, ow = dy.shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    images, channels = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(oh):
        for j in range(ow):
            row, col = np.divmod(argmax[:, :, i, j], k)       # the maximum's place inside the window
            dx[images, channels, i * stride + row, j * stride + col] += dy[:, :, i, j]   # += : windows may overlap
    return dx


print("\n3. Max pooling by hand: each output's gradient goes to its window's maximum")
for k, stride in [(2, 2), (3, 2)]:
    x = rng.standard_normal((n_images, 3, size + 1, size + 1))    # random floats: no ties
    y, cache = maxpool_forward(x, k, stride)
    dy = rng.standard_normal(y.shape)
    by_hand = [maxpool_backward(dy, cache)]
    autograd = autograd_gradients(lambda x_: F.max_pool2d(x_, k, stride), [x], dy)
    numeric = [numeric_gradient(lambda: np.sum(maxpool_forward(x, k, stride)[0] * dy), x)]
    print(f"x {x.shape}, {k}x{k} windows, stride {stride} -> y {y.shape}")
    print(HEADER)
    report(["dx"], by_hand, autograd, numeric)

# Now a small map built to show the routing, with a tie and with overlapping windows.
routing_map = np.array([[1, 3, 2, 0, 4],
                        [2, 0, 1, 7, 1],
                        [5, 5, 1, 2, 0],
                        [5, 0, 9, 3, 6],
                        [1, 2, 4, 1, 2]], dtype=np.float64)[None, None]
routing = {}
for k, stride, crop in [(2, 2, 4), (3, 2, 5)]:
    x = np.ascontiguousarray(routing_map[..., :crop, :crop])
    y, cache = maxpool_forward(x, k, stride)
    dy = np.arange(1.0, y.size + 1).reshape(y.shape)           # 1, 2, 3, 4: see which output sent what
    dx = maxpool_backward(dy, cache)
    autograd = autograd_gradients(lambda x_: F.max_pool2d(x_, k, stride), [x], dy)
    routing[k] = (x[0, 0], y[0, 0], dy[0, 0], dx[0, 0])
    print(f"\n{k}x{k} windows, stride {stride}, on\n{x[0, 0]}\nmaxima y =\n{y[0, 0]}\ndy =\n{dy[0, 0]}\ndx by hand =\n{dx[0, 0]}")
    print(f"max |by hand - tinycnn|: reference floor {max_difference(dx, autograd['reference'][0]):.1e}, "
          f"fast floor {max_difference(dx, autograd['fast'][0]):.1e}")

tie_map = np.ascontiguousarray(routing_map[..., 2:4, 0:2])          # the window [[5, 5], [5, 0]]
tie_numeric = numeric_gradient(lambda: float(maxpool_forward(tie_map, 2, 2)[0].sum()), tie_map)
print(f"\nthe tied window {tie_map[0, 0].tolist()}: tinycnn's gradient "
      f"{autograd_gradients(lambda x_: F.max_pool2d(x_, 2), [tie_map], np.ones((1, 1, 1, 1)))['fast'][0][0, 0].tolist()}, "
      f"central differences {np.round(tie_numeric[0, 0], 6).tolist()}")
print(f"read it in tinycnn: {where(reference_pool.MaxPool2d.backward)}")

# What to look for. With 2x2 windows, stride 2, each window's number in dy reappears once
# in dx, at that window's maximum; everything else is 0. The bottom-left window holds
# 5, 5, 5, 0: a three-way tie, and its gradient (3) goes to the first 5 (row 2, column 0),
# on both floors of tinycnn. With 3x3 windows and stride 2 the windows share a row and a
# column: the 9 at (3, 2) is the maximum of both bottom windows, so dx there is the sum
# of their two gradients (3 + 4 = 7), and the other two windows send theirs to the 5 and
# the 7. Look at the tied window's line too: central differences do not agree with any
# rule there (each tied element gets 0.5, because raising it raises the max but lowering
# it does not) - the max has no derivative at a tie, and any fixed rule that hands out the
# gradient once is fine. Gradient checks therefore use random floats, where ties do not
# happen. tinycnn's MaxPool2d.backward finds the maxima again by comparing each window
# offset with the output and keeps an `unclaimed` mask so that only the first one gets
# the gradient: the same rule as our argmax, written without a loop over windows.

fig, axes = plt.subplots(2, 4, figsize=(14, 7), layout="constrained")
colors = ["tab:red", "tab:green", "tab:orange", "tab:purple"]
for row, k in enumerate((2, 3)):
    x_map, y_map, dy_map, dx_map = routing[k]
    stride = 2
    for ax, matrix, title in zip(axes[row], (x_map, y_map, dy_map, dx_map),
                                 (f"x with its {k}x{k} windows (stride 2)", "y = max of each window",
                                  "dY (the upstream gradient)", "dX: dY routed to the maxima")):
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(matrix.max(), 1))
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=12,
                    color="black" if value <= matrix.max() / 2 else "white")
        ax.set(title=title, xticks=[], yticks=[])
    for window in range(4):
        i, j = divmod(window, 2)
        inset = 0.06 * window if k == 3 else 0.05           # overlapping windows drawn slightly apart
        axes[row, 0].add_patch(plt.Rectangle((j * stride - 0.5 + inset, i * stride - 0.5 + inset), k - 2 * inset,
                                             k - 2 * inset, fill=False, edgecolor=colors[window], linewidth=2.5))
        axes[row, 2].add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor=colors[window],
                                             linewidth=2.5))
fig.suptitle("Max pooling's backward: each window's gradient goes to its maximum (tie: the first in row-major order)")
fig.savefig(lesson.figure("maxpool_routing.png"))
plt.close(fig)

# ---------------------------------------------------------------------------------------
# 4. Batch norm: a backward worth deriving
#
# Per channel, over its M = N*H*W values (lesson 9 uses it; tinycnn/functional/norm.py):
#
#     mu    = mean(x)                      sigma = sqrt(var + eps)
#     xc    = x - mu                       x_hat = xc / sigma
#     var   = mean(xc^2)                   y     = gamma * x_hat + beta
#
# Unlike every op so far, each output depends on EVERY input of its channel, through mu
# and var. We walk the graph backwards one node at a time, as autograd would, adding up
# the contributions where a value was used twice:
#
#     dbeta  = sum(dy)                     beta was added to every output
#     dgamma = sum(dy * x_hat)             gamma multiplied every x_hat
#     dx_hat = gamma * dy
#     x_hat = xc * (1/sigma) uses xc twice: directly, and inside sigma (through var):
#       dsigma = sum(dx_hat * xc) * (-1/sigma^2)
#       dvar   = dsigma / (2 sigma)                             d sqrt(v)/dv = 1/(2 sqrt(v))
#       dxc    = dx_hat / sigma  +  dvar * 2 xc / M             the direct path + the path through var
#     xc = x - mu uses x twice: directly, and inside mu:
#       dmu    = -sum(dxc)
#       dx     = dxc + dmu / M                                  mu = sum(x) / M
#
# Now substitute. dsigma = -(gamma/sigma) sum(dy x_hat), so the second term of dxc is
# -(gamma/sigma) x_hat sum(dy x_hat) / M. Summing dxc over the channel, that term vanishes
# (sum(x_hat) = 0, because x_hat has mean 0), so dmu = -(gamma/sigma) sum(dy). Putting it
# together:
#
#     dx = (1/M) * (gamma/sigma) * (M*dy - sum(dy) - x_hat * sum(dy * x_hat))
#
# Three terms, one line, no mu or var left - the form libraries implement. The middle term
# removes the part of dy that would shift the whole channel, the last one the part that
# would scale it: batch norm undoes any shift or scaling of its input, so the gradient has
# no component in those directions. The two checks below print exactly that:
# sum(dx) = 0 and sum(dx * x_hat) = 0 per channel.
# ---------------------------------------------------------------------------------------
BN_EPS = 1e-5
AXES = (0, 2, 3)                      # every axis but the channel axis


def batchnorm_forward(x, gamma, beta, eps=BN_EPS):
    """x (N, C, H, W), gamma and beta (C,) -> y (N, C, H, W), training mode (batch statistics)."""
    mu = x.mean(axis=AXES, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=AXES, keepdims=True)
    sigma = np.sqrt(var + eps)
    x_hat = xc / sigma
    y = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    return y, (xc, sigma, x_hat, gamma)


def batchnorm_backward_staged(dy, cache):
    """The graph walked backwards node by node: dy -> dx, dgamma, dbeta."""
    xc, sigma, x_hat, gamma = cache
    m = dy.size // dy.shape[1]                                   # values per channel
    dbeta = dy.sum(axis=AXES)
    dgamma = (dy * x_hat).sum(axis=AXES)
    dx_hat = gamma[None, :, None, None] * dy
    dsigma = (dx_hat * xc).sum(axis=AXES, keepdims=True) * (-1 / sigma ** 2)
    dvar = dsigma / (2 * sigma)
    dxc = dx_hat / sigma + dvar * 2 * xc / m
    dmu = -dxc.sum(axis=AXES, keepdims=True)
    dx = dxc + dmu / m
    return dx, dgamma, dbeta


def batchnorm_backward(dy, cache):
    """The same, in the compact form: dx = (1/M) (gamma/sigma) (M dy - sum(dy) - x_hat sum(dy x_hat))."""
    _, sigma, x_hat, gamma = cache
    m = dy.size // dy.shape[1]
    sum_dy = dy.sum(axis=AXES, keepdims=True)
    sum_dy_xhat = (dy * x_hat).sum(axis=AXES, keepdims=True)
    dx = (gamma[None, :, None, None] / sigma) * (m * dy - sum_dy - x_hat * sum_dy_xhat) / m
    return dx, sum_dy_xhat.reshape(-1), sum_dy.reshape(-1)


print("\n4. Batch norm by hand: staged, then in one line")
x = rng.standard_normal((lesson.pick(quick=3, default=4, full=8), 3, 3, 3)) * 2 + 1
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
y, cache = batchnorm_forward(x, gamma, beta)
dy = rng.standard_normal(y.shape)
staged, compact = batchnorm_backward_staged(dy, cache), batchnorm_backward(dy, cache)
print(f"x {x.shape}: M = {x.size // x.shape[1]} values per channel; staged vs compact formula: max |diff| "
      f"{max(max_difference(a, b) for a, b in zip(staged, compact)):.1e}")
autograd = autograd_gradients(lambda x_, g_, b_: F.batch_norm(x_, None, None, g_, b_, training=True, eps=BN_EPS),
                              [x, gamma, beta], dy)
numeric = [numeric_gradient(lambda: np.sum(batchnorm_forward(x, gamma, beta)[0] * dy), a) for a in (x, gamma, beta)]
print(HEADER)
report(["dx", "dgamma", "dbeta"], compact, autograd, numeric)
print("per channel:")
for eps in (BN_EPS, 0.0):
    _, eps_cache = batchnorm_forward(x, gamma, beta, eps)
    dx_bn, x_hat = batchnorm_backward(dy, eps_cache)[0], eps_cache[2]
    print(f"  eps = {eps:g}: sum(dx) = {np.array2string(dx_bn.sum(axis=AXES), precision=1)}, "
          f"sum(dx * x_hat) = {np.array2string((dx_bn * x_hat).sum(axis=AXES), precision=1)}, "
          f"while sum |dx| = {np.array2string(np.abs(dx_bn).sum(axis=AXES), precision=1)}")
print(f"read it in tinycnn: {where(reference_norm.BatchNorm.backward)}")

# The staged and compact versions agree to rounding, and both match autograd and
# finite differences in the table's pattern. sum(dx) is rounding-small (~1e-16) while
# the gradient itself is of order ten: the shift direction really is gone. sum(dx * x_hat)
# is small but not rounding-small with eps = 1e-5 - about eps/var relative to the
# gradient, because eps makes x_hat's variance var/(var + eps), a hair below 1 - and drops
# to rounding with eps = 0: the scale direction is gone too, up to eps.
# tinycnn's BatchNorm.backward writes the compact form with means instead of sums
# (divide the bracket by M: dy - mean(dy) - x_hat * mean(dy * x_hat)), and its eval mode,
# where mu and sigma are constants (running averages), keeps only the first term: dx =
# gamma/sigma * dy. That is the whole difference between train and eval backward.

# ---------------------------------------------------------------------------------------
# 5. Softmax cross-entropy: the gradient is p - y
#
# Logits z (N, K), labels t (N,). p = softmax(z), and the loss is the mean over the batch
# of -log p[n, t_n]. For one sample, write the log-probability of the true class out:
#
#     log p_t = z_t - log(sum_j exp(z_j))
#
#     d(-log p_t)/dz_k = -[k == t] + exp(z_k) / sum_j exp(z_j) = p_k - [k == t]
#
# so the gradient of the mean loss is dz = (p - onehot(t)) / N: the predicted
# distribution minus the true one. The true class's logit is pushed up by 1 - p_t (a lot
# when the network is wrong, hardly at all when it is sure and right); every other logit
# is pushed down by its own probability. Each row sums to 0.
#
# The same answer comes out of the long way round, through p: dL/dp_k = -[k == t]/(N p_t),
# then softmax's backward dz = p * (dp - sum(dp * p)). But that route divides by p_t, and
# when the network is confidently wrong p_t underflows to 0 in floating point: 0 * inf =
# nan. The fused form never divides - which is why losses take logits (lesson 4).
# ---------------------------------------------------------------------------------------


def softmax_cross_entropy(z, labels):
    """Logits z (N, K), labels (N,) -> the mean loss, and p for the backward (log-sum-exp, stable)."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(z)), labels].mean(), (np.exp(log_p), labels)


def softmax_cross_entropy_backward(cache):
    """dL/dz = (p - onehot) / N, shape (N, K) (the loss is the last node: its upstream gradient is 1)."""
    p, labels = cache
    dz = p.copy()
    dz[np.arange(len(p)), labels] -= 1
    return dz / len(p)


def through_probabilities(cache):
    """The long way: dL/dp = -onehot / (N p), then softmax's backward p * (dp - sum(dp * p))."""
    p, labels = cache
    onehot = np.eye(p.shape[1])[labels]
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = -onehot / (len(p) * p)
        return p * (dp - (dp * p).sum(axis=1, keepdims=True))


print("\n5. Softmax cross-entropy by hand: dz = (p - onehot) / N")
z = rng.standard_normal((lesson.pick(quick=4, default=6, full=8), 5)) * 2
labels = rng.integers(0, 5, len(z))
loss, cache = softmax_cross_entropy(z, labels)
dz = softmax_cross_entropy_backward(cache)
tinycnn_loss = F.cross_entropy(tinycnn.tensor(z, dtype=tinycnn.float64), tinycnn.tensor(labels)).item()
print(f"loss by hand {loss:.15f}, F.cross_entropy {tinycnn_loss:.15f}")
autograd = autograd_gradients(lambda z_: F.cross_entropy(z_, tinycnn.tensor(labels)), [z], np.array(1.0))
numeric = [numeric_gradient(lambda: softmax_cross_entropy(z, labels)[0], z)]
print(HEADER)
report(["dz"], [dz], autograd, numeric)
print(f"rows of dz sum to {np.abs(dz.sum(axis=1)).max():.1e}; the true classes' entries are all negative: "
      f"{bool((dz[np.arange(len(z)), labels] < 0).all())}; through p instead: max |diff| "
      f"{max_difference(through_probabilities(cache), dz):.1e}")
confident_wrong = np.array([[800.0, 0.0, 0.0]])                   # sure of class 0; the label is 2
_, wrong_cache = softmax_cross_entropy(confident_wrong, np.array([2]))
print(f"logits {confident_wrong[0].tolist()}, label 2: p - onehot = {softmax_cross_entropy_backward(wrong_cache)[0].tolist()}, "
      f"through p = {through_probabilities(wrong_cache)[0].tolist()}")
print(f"read it in tinycnn: {where(reference_loss.CrossEntropy.backward)}")

# The loss matches F.cross_entropy to the last digit or so, the gradient matches in the
# usual pattern, and the long way through p agrees - until p_t underflows: on the
# confidently wrong sample the fused gradient is the clean [1, 0, -1] (push the wrong
# class down, the right one up, by the most they can be pushed) while the route through p
# gives nan. tinycnn's CrossEntropy.backward is our function plus label smoothing: exp of
# the saved log-probabilities, minus the target distribution at the labels, times 1/N.

# ---------------------------------------------------------------------------------------
# 6. A whole CNN, backpropagated by hand
#
# Now the pieces in one network, the shape of lessons 5 and 9's blocks:
#
#     x -> conv 3x3 (pad 1) -> batch norm -> ReLU -> max pool 2x2 -> flatten -> linear -> loss
#
# The one piece not derived yet is ReLU: y = max(x, 0), so dx = dy where x > 0, else 0 -
# a gate. (Flatten is a reshape: its backward reshapes back.) Backprop is then the forward
# read in reverse, each layer's backward handing its dX to the layer before as that
# layer's dY. We build the same network in tinycnn (nn.Conv2d, nn.BatchNorm2d, ... in
# float64), copy its initial weights into plain arrays, run our forward and backward on
# those, and compare every parameter's gradient with what loss.backward() puts in .grad.
# ---------------------------------------------------------------------------------------
print("\n6. A whole CNN, by hand and by loss.backward()")
batch = lesson.pick(quick=4, default=8, full=16)
side = 12
shapes = Shapes(train=True, n=batch, size=side, seed=lesson.args.seed)
images = (shapes.images / 255.0 - 0.5) / 0.3                       # (N, 3, 12, 12), normalised, float64
targets = shapes.labels

model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(4 * (side // 2) ** 2, 6)).double()
params = {name: p.numpy().copy() for name, p in model.named_parameters()}   # our own copies of the weights
print("parameters: " + ", ".join(f"{name} {tuple(value.shape)}" for name, value in params.items()))


def network_forward(x, p):
    """Our forward on raw arrays; returns the loss and every layer's cache."""
    conv_out, conv_cache = conv_forward(x, p["0.weight"], p["0.bias"], 1, 1)
    bn_out, bn_cache = batchnorm_forward(conv_out, p["1.weight"], p["1.bias"])
    relu_out = np.maximum(bn_out, 0)
    pool_out, pool_cache = maxpool_forward(relu_out, 2, 2)
    flat = pool_out.reshape(len(x), -1)
    logits = flat @ p["5.weight"].T + p["5.bias"]                     # a linear layer: x @ W.T + b
    loss, loss_cache = softmax_cross_entropy(logits, targets)
    return loss, (conv_cache, bn_cache, bn_out, pool_cache, pool_out.shape, flat, loss_cache)


def network_backward(p, caches):
    """Our backward: the forward in reverse, each dX becoming the previous layer's dY."""
    conv_cache, bn_cache, bn_out, pool_cache, pool_shape, flat, loss_cache = caches
    grads = {}
    d_logits = softmax_cross_entropy_backward(loss_cache)               # (N, 6)
    grads["5.weight"] = d_logits.T @ flat                               # section 1's rules, for x @ W.T
    grads["5.bias"] = d_logits.sum(axis=0)
    d_flat = d_logits @ p["5.weight"]
    d_relu_out = maxpool_backward(d_flat.reshape(pool_shape), pool_cache)
    d_bn_out = d_relu_out * (bn_out > 0)                                # ReLU: a gate
    d_conv_out, grads["1.weight"], grads["1.bias"] = batchnorm_backward(d_bn_out, bn_cache)
    _, grads["0.weight"], grads["0.bias"] = conv_backward(d_conv_out, conv_cache)
    return grads


loss_by_hand, caches = network_forward(images, params)
grads_by_hand = network_backward(params, caches)
grads_autograd, losses = {}, {}
for floor_name, floor in (("reference", tinycnn.reference_floor), ("fast", tinycnn.fast_floor)):
    with floor():
        model.zero_grad()
        loss_tensor = nn.CrossEntropyLoss()(model(tinycnn.tensor(images, dtype=tinycnn.float64)),
                                            tinycnn.tensor(targets))
        loss_tensor.backward()
        losses[floor_name] = loss_tensor.item()
        grads_autograd[floor_name] = {name: p.grad.numpy() for name, p in model.named_parameters()}
print(f"loss: by hand {loss_by_hand:.15f}, tinycnn {losses['reference']:.15f} (reference floor), "
      f"{losses['fast']:.15f} (fast floor)")

# Finite differences cost two forward passes per weight: we check up to 60 weights of each
# parameter (spread evenly over it), enough to catch a wrong formula or a misplaced index.
checked_per_parameter = lesson.pick(quick=12, default=60, full=1000)
numeric_grads = {}
for name, value in params.items():
    flat_value, grad = value.reshape(-1), np.full(value.size, np.nan)
    for k in np.unique(np.linspace(0, value.size - 1, min(value.size, checked_per_parameter)).astype(int)):
        saved = flat_value[k]
        flat_value[k] = saved + 1e-6
        plus = network_forward(images, params)[0]
        flat_value[k] = saved - 1e-6
        minus = network_forward(images, params)[0]
        flat_value[k] = saved
        grad[k] = (plus - minus) / 2e-6
    numeric_grads[name] = grad.reshape(value.shape)

print(f"{'':<24}{'max |by hand - ...|':^44}")
print(f"{'parameter':<10}{'shape':>14}{'reference':>12}{'fast':>11}{'numeric (checked)':>21}{'max |grad|':>12}")
agreement = {}
for name in params:                         # from the input to the output
    grad = grads_by_hand[name]
    checked = ~np.isnan(numeric_grads[name])
    agreement[name] = (max_difference(grad, grads_autograd["reference"][name]),
                       max_difference(grad, grads_autograd["fast"][name]),
                       max_difference(grad[checked], numeric_grads[name][checked]))
    print(f"{name:<10}{str(grad.shape):>14}{agreement[name][0]:12.1e}{agreement[name][1]:11.1e}"
          f"{agreement[name][2]:14.1e} ({checked.sum():3d}){np.abs(grad).max():12.1e}")
print(f"largest difference from loss.backward() over all {sum(v.size for v in params.values())} parameters: "
      f"{max(max(a[:2]) for a in agreement.values()):.1e}")
print(f"read it in tinycnn: {where(reference_linear.Linear.backward)}")
print(f"                    {where(reference_math.ReLU.backward)}")
print(f"                    {where(tinycnn.Tensor.backward)} (the loop that calls each backward in turn)")

# The table is the point of the lesson: every gradient of the network, computed by our
# six small backward functions, matches loss.backward() to rounding (the last line:
# ~1e-16 in float64) on both floors, and matches finite differences to ~1e-10 (absolute
# here, for gradients of size 0.05 to 0.5: the "max |grad|" column).
# One row deserves a second look: 0.bias, the convolution's bias. Its gradient is
# rounding-small ("max |grad|" column) - not a bug. Batch norm subtracts each channel's
# mean, so a constant added to the channel before it changes nothing; the loss does not
# depend on that bias at all (our sum(dx) = 0 from section 4, seen from the other side).
# That is why a convolution followed by batch norm is built with bias=False (lesson 9).

fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
names = list(agreement)
positions = np.arange(len(names))
for offset, (column, label) in enumerate([(0, "by hand vs loss.backward(), reference floor"),
                                          (1, "by hand vs loss.backward(), fast floor"),
                                          (2, "by hand vs finite differences")]):
    values = [max(agreement[name][column], 1e-18) for name in names]
    ax.bar(positions + (offset - 1) * 0.27, values, width=0.27, label=label)
ax.set(xticks=positions, xticklabels=names, yscale="log", ylabel="max |difference| (log scale; 0 not drawn)",
       title="A CNN backpropagated by hand: every gradient agrees with autograd to rounding (float64)")
ax.set_ylim(1e-18, 1e-5)
ax.legend(fontsize=8, loc="upper left")
ax.grid(axis="y", alpha=0.3)
fig.savefig(lesson.figure("whole_network_agreement.png"))
plt.close(fig)

# And the gradients do what gradients are for: a few steps of plain gradient descent,
# using nothing but network_backward, on this one batch.
steps = lesson.pick(quick=10, default=40, full=100)
for step in range(steps + 1):
    loss_value, caches = network_forward(images, params)
    if step in (0, steps // 2, steps):
        print(f"gradient descent with our own gradients, step {step:3d}: loss {loss_value:.4f}")
    for name, grad in network_backward(params, caches).items():
        params[name] -= 0.1 * grad

# The loss falls from about log(6) = 1.79 (a uniform guess over the six classes) towards
# zero: the hand-written backward trains the network. Everything a deep-learning library
# adds on top - the graph recording, the topological order, optimizers - automates
# exactly what network_backward does by hand.

# What to remember
#   * A backward receives dY (Y's shape) and returns dX, dW (their shapes); where a value
#     is used more than once, its gradients add up.
#   * Matrix product: dW = dY @ X.T, dX = W.T @ dY. Convolution is that, around im2col:
#     dW = sum over images of dY @ cols.T, dX = col2im(W.T @ dY), col2im adding the
#     overlapping windows back together.
#   * Max pooling routes each gradient to its window's maximum (ties: the first one);
#     ReLU gates it; neither multiplies.
#   * Batch norm: dx = (1/M) (gamma/sigma) (M dy - sum(dy) - x_hat sum(dy x_hat)); the
#     gradient has no component along a shift (or, up to eps, a scaling) of the channel.
#   * Softmax cross-entropy: dz = (p - onehot) / N, computed from the logits, never by
#     dividing by p.
#   * Check a hand-written backward against autograd (rounding, ~1e-16 to 1e-14) and
#     against finite differences (~1e-9 or better, relative) in float64.

# ---------------------------------------------------------------------------------------
# Where this lives (tinycnn's reference floor: the code this lesson re-derived; the
# printouts above give the line numbers of each function)
#   tinycnn/functional/conv.py     im2col, col2im, Conv2d.forward/backward
#   tinycnn/functional/pool.py     MaxPool2d.backward (first maximum wins a tie)
#   tinycnn/functional/norm.py     BatchNorm.backward (the compact formula, with means)
#   tinycnn/functional/loss.py     CrossEntropy.backward (softmax minus the target)
#   tinycnn/functional/linear.py   Linear.backward;  tinycnn/functional/math.py  ReLU.backward
#   tinycnn/tensor.py              Function (forward/backward on raw arrays), Tensor.backward
#   tinycnn/fast/conv.py           the fast floor's input gradient, a "full" convolution
#                                  with the flipped kernel (the same numbers, faster)
# ---------------------------------------------------------------------------------------

# Questions (answers below)
#   1. A convolution has 16 input channels, 32 filters of 3x3, and sees an 8x8 output map
#      per image for a batch of 4. What are the shapes of cols, dY as a matrix, and dW
#      before the reshape?
#   2. Why does col2im add (+=) instead of assign (=)? What would go wrong with "=" for a
#      3x3 convolution with stride 1, and what for a 2x2 convolution with stride 2?
#   3. A max-pooling window holds [[2, 7], [7, 1]] and its output's gradient is 0.5.
#      What does tinycnn put in dx for this window? What would central differences say?
#   4. Why is the gradient of a convolution's bias zero when batch norm follows it?
#   5. The network says p = (0.7, 0.2, 0.1) and the label is class 1, batch size 1. What is
#      dL/dz, and which logit moves the most in a gradient step?
#
# Answers
#   1. cols: (4, 16*3*3, 8*8) = (4, 144, 64); dY: (4, 32, 64); dW = sum_n dY_n @ cols_n.T:
#      (32, 144), reshaped to (32, 16, 3, 3).
#   2. Windows overlap: with stride 1 an interior pixel sits in 9 windows, and its
#      gradient is the sum of the gradients of its 9 copies; "=" would keep only the last
#      copy's. With a 2x2 kernel and stride 2 the windows tile the image without
#      overlapping, so "=" would happen to give the right answer - a bug that the usual
#      tests (stride 1, 3x3) catch and that this case would hide.
#   3. [[0, 0.5], [0, 0]]: the whole gradient to the first 7 in row-major order (row 0,
#      column 1). Central differences give 0.5 * 0.5 = 0.25 to each 7 (raising one raises
#      the max, lowering it does not): the max has no derivative at a tie.
#   4. Batch norm subtracts each channel's batch mean, so adding a constant b to every
#      value of the channel leaves its output unchanged: the loss does not depend on b.
#      Equivalently, sum(dx) = 0 over each channel, and db is that sum.
#   5. dz = p - onehot = (0.7, -0.8, 0.1): the true class's logit (class 1) moves the most,
#      upwards (a step subtracts lr * dz); class 0's, the confident wrong answer, down by
#      almost as much.

# Exercises: lessons/exercises/03b_backprop_by_hand.py — check your work with: python lessons/check.py 03b

lesson.finish()
