"""Lesson 3 - Convolution.

A convolution slides small filters over an image. We write it as plain loops, then as
im2col + one matrix product (what F.conv2d does), check both give the same numbers and
time them; we time the engine's fast floor against the reference im2col; then we apply
hand-made edge filters (Sobel, Laplacian, blur) to images.
"""

# ---------------------------------------------------------------------------------------
# A fully connected layer on a 32x32 RGB image needs 3072 weights per output and treats
# the pixel at the top left as unrelated to its neighbour. A convolution instead uses one
# small filter (say 3x3) at every position: a few weights, shared across the image, that
# look for the same local pattern (an edge, a corner) wherever it is. This lesson builds
# convolution from its definition and then the fast way.
# ---------------------------------------------------------------------------------------

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
import tinycnn.functional as F  # noqa: E402
from tinycnn import viz  # noqa: E402
from tinycnn.functional.conv import im2col  # noqa: E402
from tinycnn.data import Shapes  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
rng = np.random.default_rng(lesson.args.seed)

# ---------------------------------------------------------------------------------------
# 1. The definition, as loops
#
# Input x: (N, C, H, W) - N images, C channels. Filters w: (O, C, KH, KW) - O filters, each
# spanning *all* C input channels. Output: (N, O, OH, OW). Output pixel (n, o, i, j) is the
# dot product of filter o with the window of image n whose top-left corner is at
# (i*stride, j*stride) in the zero-padded input, plus a bias:
#
#     out[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * xpad[n, c, i*s + u, j*s + v]
#
# (Deep-learning "convolution" does not flip the filter; mathematicians call this
# cross-correlation. With learned filters the difference does not matter.)
# ---------------------------------------------------------------------------------------


def conv2d_loops(x, w, b, stride=1, padding=0):
    """The definition, written for reading: x (N, C, H, W), w (O, C, KH, KW), b (O,)."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    window = xpad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, o, i, j] = (window * w[o]).sum() + b[o]
    return out


def conv2d_all_loops(x, w, b, stride=1, padding=0, as_lists=False):
    """The same, with the innermost sum over (c, u, v) as Python loops too: nothing left to
    NumPy. ``as_lists``: read the numbers from Python lists instead of NumPy arrays."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w_list = w
    if as_lists:
        xpad, w_list = xpad.tolist(), w.tolist()
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    total = float(b[o])
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                total += float(w_list[o][c][u][v] * xpad[n][c][i * stride + u][j * stride + v])
                    out[n, o, i, j] = total
    return out


# ---------------------------------------------------------------------------------------
# 2. im2col: the whole convolution as one matrix product
#
# Every output pixel is a dot product of the filter with one window. Copy every window
# into a column of a matrix ("image to columns"): C*KH*KW rows, one column per output
# position. Flatten each filter into a row. Then ALL the dot products are one matrix
# product:   (O, C*KH*KW) @ (C*KH*KW, OH*OW) -> (O, OH*OW), reshaped to (O, OH, OW).
#
# Here it is on the smallest example that shows the idea: a 4x4 input holding 0..15 and
# one 3x3 filter. There are 2x2 = 4 windows, so the column matrix is 9 x 4.
# ---------------------------------------------------------------------------------------
print("1. im2col on a 4x4 input, 3x3 filter")
tiny = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
tiny_filter = np.array([[1, 2, 0], [0, -1, 1], [2, 0, -1]], dtype=np.float32).reshape(1, 1, 3, 3)
columns = np.stack([tiny[0, 0, i:i + 3, j:j + 3].ravel() for i in range(2) for j in range(2)], axis=1)
print("input:\n", tiny[0, 0])
print("columns (one window per column):\n", columns)
print("filter as a row:", tiny_filter.ravel())
by_gemm = (tiny_filter.reshape(1, 9) @ columns).reshape(2, 2)
by_conv = F.conv2d(tinycnn.tensor(tiny), tinycnn.tensor(tiny_filter)).numpy()[0, 0]
print("row @ columns, reshaped to 2x2:\n", by_gemm)
print("F.conv2d gives the same:\n", by_conv)

# tinycnn's own im2col (tinycnn/functional/conv.py, the "reference floor": read it, it is a
# dozen lines) builds the same columns for a whole batch, (N, C*KH*KW, OH*OW), without a
# loop over windows: for each of the KH*KW kernel offsets (i, j) it copies one strided view
# of the padded input, the pixel at offset (i, j) of every window at once.
reference_columns = im2col(tiny, (3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1))
print("tinycnn.functional.conv.im2col(x), shape", reference_columns.shape, "- the same columns:",
      np.array_equal(reference_columns[0], columns))

# The first column above is the top-left window (0 1 2 / 4 5 6 / 8 9 10) read row by row.
# Neighbouring windows overlap, so every interior pixel is copied into several columns:
# im2col trades memory (up to KH*KW = 9 times the input) for speed, because a matrix
# product is the one operation that BLAS libraries run at close to the machine's peak.
# Figure im2col.png shows the three matrices.

fig, axes = plt.subplots(1, 3, figsize=(10, 4.2), layout="constrained",
                         gridspec_kw={"width_ratios": [4, 4, 2]})
for ax, matrix, title in [(axes[0], tiny[0, 0], "input x (4x4)"),
                          (axes[1], columns, "im2col(x): 9 rows x 4 windows"),
                          (axes[2], by_gemm, "filter row @ columns\n= output (2x2)")]:
    ax.imshow(matrix, cmap="Blues", aspect="equal")
    for (r, c), value in np.ndenumerate(matrix):
        dark = value > (matrix.min() + matrix.max()) / 2
        ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set(title=title, xticks=[], yticks=[])
for k, color in enumerate(["tab:red", "tab:green", "tab:orange", "tab:purple"]):
    i, j = divmod(k, 2)
    inset = 0.05 + 0.05 * k                     # so the four overlapping windows stay apart
    axes[0].add_patch(plt.Rectangle((j - 0.5 + inset, i - 0.5 + inset), 3 - 2 * inset, 3 - 2 * inset,
                                    fill=False, edgecolor=color, linewidth=2))
    axes[1].add_patch(plt.Rectangle((k - 0.45, -0.45), 0.9, 8.9, fill=False, edgecolor=color, linewidth=2))
fig.suptitle("A convolution as one matrix product: each coloured window becomes one column")
fig.savefig(lesson.figure("im2col.png"))
plt.close(fig)

# ---------------------------------------------------------------------------------------
# 3. Same numbers, very different speed
#
# Now a realistic layer: a batch of 32x32 RGB images, 16 filters of 3x3, padding 1.
# tinycnn's F.conv2d builds the columns without any loop over pixels (im2col above) and
# calls one matrix product per group of channels.
# ---------------------------------------------------------------------------------------
print("\n2. Loops versus im2col + GEMM")
batch = lesson.pick(quick=2, default=16, full=64)
x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
w = (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float32)
b = rng.standard_normal(16).astype(np.float32)

start = time.perf_counter()
out_loops = conv2d_loops(x, w, b, stride=1, padding=1)
seconds_loops = time.perf_counter() - start

x_t, w_t, b_t = tinycnn.tensor(x), tinycnn.tensor(w), tinycnn.tensor(b)
F.conv2d(x_t, w_t, b_t, padding=1)                       # warm-up (first call allocates)
repeats = 20
start = time.perf_counter()
for _ in range(repeats):
    out_gemm = F.conv2d(x_t, w_t, b_t, padding=1).numpy()
seconds_gemm = (time.perf_counter() - start) / repeats

print(f"input {x.shape}, filters {w.shape} -> output {out_gemm.shape}")
print(f"max |loops - F.conv2d| = {np.abs(out_loops - out_gemm).max():.2e}   (float32 rounding)")
print(f"loops:      {1000 * seconds_loops:9.1f} ms")
print(f"im2col+GEMM:{1000 * seconds_gemm:9.2f} ms   -> {seconds_loops / seconds_gemm:,.0f}x faster")

# The two outputs agree to float32 rounding (the sums are added in a different order), and
# the matrix product is two to three orders of magnitude faster (the exact factor printed
# above depends on the machine, the batch size and how busy the machine is).
#
# Our "loops" are even generous: the innermost C*KH*KW = 27 multiply-adds of each output
# pixel run in NumPy, as one `(window * w[o]).sum()`. Writing that sum as three more Python
# loops does 27 Python multiply-adds instead of one NumPy call per output pixel. You might
# expect it to be 27 times slower; measure instead (on one image):
one = x[:1]
seconds = {}
for name, run in [("inner sum in NumPy (conv2d_loops)", lambda: conv2d_loops(one, w, b, padding=1)),
                  ("inner sum in Python, numbers read from NumPy arrays",
                   lambda: conv2d_all_loops(one, w, b, padding=1)),
                  ("inner sum in Python, numbers read from Python lists",
                   lambda: conv2d_all_loops(one, w, b, padding=1, as_lists=True))]:
    start = time.perf_counter()
    result = run()
    seconds[name] = time.perf_counter() - start
    assert np.abs(result - out_loops[:1]).max() < 1e-4
baseline = seconds["inner sum in NumPy (conv2d_loops)"]
for name, took in seconds.items():
    print(f"  {name:<53} {1000 * took:7.0f} ms  ({took / baseline:.1f}x the first)")
# Nowhere near 27x (the printout says how far). Each version is dominated by the
# interpreter's overhead per step, not by arithmetic: a NumPy call on 27 numbers costs
# about as much as a few dozen Python steps (so pure Python on lists comes close), and
# reading a NumPy array one element at a time is slow (each read builds a Python object).
# The lesson is the same either way: any per-pixel Python loop is hopeless; what matters is
# handing the machine one big operation. Every CNN library since Caffe has used some form
# of the im2col trick (or the FFT or Winograd tricks beside it) instead of loops.

# Strided and padded convolutions are the same code; check two more settings:
for stride, padding in [(2, 1), (1, 0)]:
    a = conv2d_loops(x[:2], w, b, stride=stride, padding=padding)
    c = F.conv2d(tinycnn.tensor(x[:2]), w_t, b_t, stride=stride, padding=padding).numpy()
    print(f"stride {stride}, padding {padding}: output {c.shape[2:]}, max difference {np.abs(a - c).max():.1e}")

# ---------------------------------------------------------------------------------------
# The two floors: what you read, and what the engine runs
#
# The im2col convolution in tinycnn/functional/conv.py is the *reference floor*: the whole
# batch at once, forward and backward (the three rules of a matrix product, then col2im)
# on one screen. By default the engine runs a second version of the same op, the *fast
# floor* (tinycnn/fast/conv.py), which computes the same numbers (tests/test_floors.py holds
# them equal) but: works a few images at a time so that the columns stay in the CPU's cache
# between im2col and the matrix product; runs those chunks on every core; lays the columns
# out for long, fast copies; and computes the input gradient as a convolution of its own.
# `TINYCNN_FAST=0` (or `tinycnn.set_fast(False)`) runs everything on the reference floor.
# What the fast floor buys, measured on this machine for one forward + backward of a
# ResNet-sized layer (16 -> 16 channels of 32x32, 3x3, padding 1):
# ---------------------------------------------------------------------------------------
print("\n3. The reference floor against the fast floor (forward + backward)")
layer_batch = lesson.pick(quick=8, default=64, full=128)
layer_x = tinycnn.tensor(rng.standard_normal((layer_batch, 16, 32, 32)).astype(np.float32), requires_grad=True)
layer_w = tinycnn.tensor((rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32), requires_grad=True)


def forward_backward():
    layer_x.grad = layer_w.grad = None
    out = F.conv2d(layer_x, layer_w, padding=1)
    out.sum().backward()
    return out.numpy(), layer_x.grad.numpy()


times = {"reference": [], "fast": []}
results = {}
for round_ in range(lesson.pick(quick=2, default=5, full=9)):  # alternate the floors: a busy moment hits both
    for name, floor in (("reference", tinycnn.reference_floor), ("fast", tinycnn.fast_floor)):
        with floor():
            start = time.perf_counter()
            results[name] = forward_backward()
            times[name].append(time.perf_counter() - start)
reference_ms, fast_ms = (1000 * float(np.median(times[name][1:] or times[name])) for name in ("reference", "fast"))
difference = max(np.abs(r - f).max() / np.abs(r).max() for r, f in zip(results["reference"], results["fast"]))
print(f"batch {layer_batch}: reference floor {reference_ms:7.1f} ms, fast floor {fast_ms:7.1f} ms "
      f"-> the fast floor is {reference_ms / fast_ms:.1f}x faster; outputs and gradients differ by "
      f"{difference:.1e} of their largest value (float32 rounding: the sums are added in another order)")

# ---------------------------------------------------------------------------------------
# 4. Output size
#
#     OH = floor((H + 2*padding - KH) / stride) + 1
#
# Padding 1 keeps a 3x3 convolution's output as large as its input ("same"); stride 2
# halves it. The shapes printed below are what F.conv2d returns for a 32x32 input.
# ---------------------------------------------------------------------------------------
print("\n4. Output sizes for a 32x32 input")
probe = tinycnn.zeros(1, 1, 32, 32)
for k, s, p in [(3, 1, 0), (3, 1, 1), (3, 2, 1), (5, 1, 2), (5, 1, 0), (7, 2, 3)]:
    shape = F.conv2d(probe, tinycnn.zeros(1, 1, k, k), stride=s, padding=p).shape
    print(f"  kernel {k}x{k}, stride {s}, padding {p}: {shape[2]}x{shape[3]}"
          f"   (formula: ({32} + 2*{p} - {k}) // {s} + 1 = {(32 + 2 * p - k) // s + 1})")

# ---------------------------------------------------------------------------------------
# 5. Filters you can read: edges, curvature, blur
#
# Before CNNs learned their filters, image processing designed them by hand. Each of these
# 3x3 filters answers one question about the neighbourhood of a pixel:
#   * Sobel x: how much brighter is the right than the left? (vertical edges)
#   * Sobel y: the same, bottom versus top (horizontal edges)
#   * Laplacian: how different is the pixel from the average of its neighbours? (outlines,
#     corners; zero on flat areas and on straight ramps)
#   * Gaussian blur: a weighted average (smoothing away the pixel noise)
# Stacked, they are one weight tensor (4, 1, 3, 3): a conv layer is a bank of filters
# applied in one call. We apply it to images from tinycnn's built-in Shapes set (drawn on
# the fly, no download), turned grey by averaging the colour channels.
# ---------------------------------------------------------------------------------------
print("\n5. Hand-made filters on Shapes images")
filters = {
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "blur": [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
}
bank = np.array(list(filters.values()), dtype=np.float32)[:, None]     # (4, 1, 3, 3)
bank[3] /= bank[3].sum()                                                 # the blur averages
viz.plot_filters(bank, lesson.figure("hand_made_filters.png"),
                 title="Sobel x, Sobel y, Laplacian, blur (grey = 0, light = +, dark = -)")

shapes = Shapes(train=False, n=6, seed=lesson.args.seed)
n_show = lesson.pick(quick=2, default=4, full=6)
grey = shapes.images[:n_show].astype(np.float32).mean(axis=1, keepdims=True) / 255.0   # (n, 1, 32, 32)
responses = F.conv2d(tinycnn.tensor(grey), tinycnn.tensor(bank), padding=1).numpy()     # (n, 4, 32, 32)
magnitude = np.sqrt(responses[:, 0] ** 2 + responses[:, 1] ** 2)                         # edge strength
for name, channel in zip(filters, responses.transpose(1, 0, 2, 3)):
    print(f"  {name:<10} response range [{channel.min():+.2f}, {channel.max():+.2f}], "
          f"mean |response| {np.abs(channel).mean():.3f}")

tiles, titles = [], []
for i in range(n_show):
    row = [grey[i, 0], responses[i, 0], responses[i, 1], magnitude[i], responses[i, 2], responses[i, 3]]
    tiles += row
    titles += [shapes.classes[shapes.labels[i]], "Sobel x", "Sobel y", "|gradient|", "Laplacian", "blur"]
viz.plot_image_grid(np.array(tiles), lesson.figure("filter_responses.png"), titles=titles, ncols=6,
                    title="Filter responses (each panel scaled to its own range; mid-grey = 0)")

# In filter_responses.png: Sobel x lights up the left and right sides of each figure (one
# side bright, the other dark: the sign says which way the brightness changes), Sobel y
# the top and bottom; their combined magnitude sqrt(Sx^2 + Sy^2) traces the whole outline.
# The Laplacian also marks the outline, strongest at corners and tips, and speckles with
# the pixel noise - a second derivative amplifies noise, which is why edge detectors blur
# first. The mean |response| numbers above say the same: the blur keeps the image's
# brightness, the derivative filters are near zero except at edges.

# ---------------------------------------------------------------------------------------
# 6. Weight sharing gives translation equivariance
#
# The same filter is applied at every position, so shifting the input shifts the output by
# the same amount - a CNN does not need to learn "a star in the top left" and "a star in
# the bottom right" separately. Check: shift an image 5 pixels right, convolve, compare
# with the shifted response (away from the borders, where zeros were padded in).
# ---------------------------------------------------------------------------------------
shifted = np.zeros_like(grey[:1])
shifted[..., 5:] = grey[:1, ..., :-5]
response_of_shifted = F.conv2d(tinycnn.tensor(shifted), tinycnn.tensor(bank), padding=1).numpy()
shifted_response = np.zeros_like(responses[:1])
shifted_response[..., 5:] = responses[:1, ..., :-5]
inner = (slice(None), slice(None), slice(1, -1), slice(7, -1))
print(f"\n6. conv(shift(x)) vs shift(conv(x)), away from the borders: max difference "
      f"{np.abs(response_of_shifted[inner] - shifted_response[inner]).max():.1e}")

# Zero (to float32 rounding): convolution commutes with shifting. Pooling (lesson 4) then
# adds a little *invariance*: a feature moved by a pixel often lands in the same window.
#
# What to remember
#   * Convolution = the same small filter dotted with every window; a layer = a filter bank.
#   * im2col + GEMM computes it as one matrix product: same numbers, orders of magnitude
#     faster than loops, at the cost of memory.
#   * OH = (H + 2p - K) // s + 1; padding (K-1)/2 keeps the size, stride 2 halves it.
#   * Hand-made filters detect edges; a CNN learns its own (lesson 5 shows them).

lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/functional/conv.py   im2col, col2im and conv2d's forward and backward (the
#                                reference floor: the whole batch, one GEMM per group)
#   tinycnn/windows.py           the output-size formula and window arithmetic of section 4
#   tinycnn/fast/conv.py, tinycnn/fast/columns.py   the fast floor: chunks, workers, layouts
#   tinycnn/nn/conv.py           Conv2d, the module that holds a filter bank as a Parameter
#   tinycnn/data/shapes.py       the Shapes images of section 5
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. A conv layer has 16 filters of 3x3 over 3 channels. What is the shape of its weight,
#      and of the im2col matrix for one 32x32 image with padding 1?
#   2. What does im2col cost in memory, and why is it still worth it?
#   3. A 7x7 convolution with stride 2 and padding 3 on a 224x224 input: output size?
#   4. Why does a convolution not care where in the image an edge is? What breaks that?
#
# Answers (try first)
#   1. Weight (16, 3, 3, 3); columns (3*3*3, 32*32) = (27, 1024); the GEMM is
#      (16, 27) @ (27, 1024) -> (16, 1024) -> (16, 32, 32).
#   2. Each input pixel is copied into up to KH*KW columns (9x for 3x3). It pays because
#      one large matrix product runs near the machine's peak, while loops (or many small
#      dot products) spend their time in overhead.
#   3. (224 + 2*3 - 7) // 2 + 1 = 112.
#   4. The same weights are applied at every position (translation equivariance, section
#      6). Zero padding at the borders, strides (a shift by one pixel is not a shift of
#      the output grid) and the flatten + linear layers at the end break it.
#
# Exercises: lessons/exercises/03_convolution.py — check your work with: python lessons/check.py 03
