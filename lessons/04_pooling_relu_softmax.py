"""Lesson 4 - Pooling, ReLU and softmax cross-entropy.

What each of these layers does to the numbers, and where each sends the gradient: ReLU,
max and average pooling on a 4x4 example, softmax and its temperature, and the loss.
Then why the loss is one fused, stable op: naive softmax overflows at logits of ~90.
"""

# ---------------------------------------------------------------------------------------
# Lesson 3's convolutions are linear: a stack of them is still one linear map. Three small
# ops turn a pile of filters into a classifier: ReLU (the non-linearity), pooling (shrink
# the maps, keep the strongest evidence) and softmax cross-entropy (turn scores into
# probabilities and measure how wrong they are). Each is simple; each has a backward you
# should be able to predict before you print it.
# ---------------------------------------------------------------------------------------

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
import tinycnn.functional as F  # noqa: E402
from tinycnn import viz  # noqa: E402
from tinycnn.data import Shapes  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
np.set_printoptions(precision=4, suppress=True)

# ---------------------------------------------------------------------------------------
# 1. ReLU: keep the positive part
#
# relu(x) = max(x, 0). Its derivative is 1 where x > 0 and 0 where x < 0: the gradient
# passes through the units that fired and stops at the others. (At exactly 0 the
# derivative is undefined; tinycnn, like PyTorch, uses 0.) Leaky ReLU lets a small slope
# through on the negative side, so a unit that never fires still gets some gradient.
# (The code: class ReLU in tinycnn/functional/math.py, four lines.)
# ---------------------------------------------------------------------------------------
print("1. ReLU")
x = tinycnn.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
y = F.relu(x)
y.sum().backward()
print("x              ", x.numpy())
print("relu(x)        ", y.numpy() + 0.0)   # + 0.0 prints -0.0 as 0.0
print("d relu / dx    ", x.grad.numpy())
x.grad = None
F.leaky_relu(x, 0.1).sum().backward()
print("leaky_relu(x)  ", F.leaky_relu(x, 0.1).numpy())
print("d leaky / dx   ", x.grad.numpy())

# ---------------------------------------------------------------------------------------
# 2. Max and average pooling on a 4x4 example
#
# A 2x2 pooling with stride 2 cuts the map into four 2x2 windows and keeps one number per
# window: the largest (max pooling) or the mean (average pooling). The map shrinks 4x.
#
# Backward: average pooling spreads each output's gradient evenly, 1/4 to each of its four
# inputs. Max pooling sends the whole gradient to the one input that *was* the maximum and
# nothing to the other three - "the winner takes the gradient". We backpropagate a
# gradient of ones to see exactly where it lands. (The code: tinycnn/functional/pool.py,
# one vectorized step per offset inside the window.)
# ---------------------------------------------------------------------------------------
print("\n2. Pooling a 4x4 map")
fmap = tinycnn.tensor([[[[1.0, 3.0, 2.0, 0.0],
                         [4.0, 2.0, 1.0, 5.0],
                         [0.0, 1.0, 7.0, 2.0],
                         [2.0, 6.0, 3.0, 1.0]]]], requires_grad=True)
print("input (1, 1, 4, 4):\n", fmap.numpy()[0, 0])
for name, pool in [("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)]:
    fmap.grad = None
    out = pool(fmap, 2)
    out.backward(np.ones(out.shape, dtype=np.float32))
    print(f"{name}(x, 2) -> {out.shape}:\n{out.numpy()[0, 0]}")
    print(f"gradient reaching the input (ones sent back):\n{fmap.grad.numpy()[0, 0]}")

# In the printout above the max-pool gradient is a mask with one 1 per window, at the
# positions of 4, 5, 6 and 7; the average-pool gradient is 0.25 everywhere. During
# training, only the winning pixel of each window learns from a max-pooled layer.

# ---------------------------------------------------------------------------------------
# 3. What pooling does to a real feature map
#
# Take a Shapes image, detect edges with the Sobel filters of lesson 3, keep the positive
# responses with ReLU, then max-pool twice. The maps shrink 32 -> 16 -> 8, but the figure
# stays recognisable: max pooling keeps "there was an edge somewhere in this window" and
# forgets exactly where - the small shift invariance that helps classification.
# ---------------------------------------------------------------------------------------
print("\n3. Conv -> ReLU -> max pool on a Shapes image")
shapes = Shapes(train=False, n=6, seed=lesson.args.seed)
n_images = lesson.pick(quick=2, default=3, full=6)
grey = tinycnn.tensor(shapes.images[:n_images].mean(axis=1, keepdims=True) / 255.0)      # (n, 1, 32, 32)
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
# ReLU throws away negative responses, so "dark to bright" and "bright to dark" need two
# filters, +Sobel and -Sobel (trained CNNs often learn such opposite pairs): 4 filters.
bank = tinycnn.tensor(np.stack([sobel_x, -sobel_x, sobel_x.T, -sobel_x.T])[:, None])    # (4, 1, 3, 3)
# Pad by repeating the border pixels (not zeros): zero padding next to a bright background
# would itself look like a strong edge all around the frame.
padded = tinycnn.tensor(np.pad(grey.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))
edges = F.relu(F.conv2d(padded, bank))                                                    # (n, 4, 32, 32)
edges = edges.sum(axis=1, keepdims=True)          # all four edge directions in one map
pooled1 = F.max_pool2d(edges, 2)
pooled2 = F.max_pool2d(pooled1, 2)
averaged2 = F.avg_pool2d(F.avg_pool2d(edges, 2), 2)
tiles, titles = [], []
for i in range(n_images):
    for name, t in [("image", grey), ("relu(edges)", edges), ("max pool", pooled1),
                    ("max pool x2", pooled2), ("avg pool x2", averaged2)]:
        tiles.append(t.numpy()[i, 0])
        titles.append(f"{name} {t.shape[2]}x{t.shape[3]}")
# plot_image_grid needs equal sizes: upsample the small maps by repeating pixels (nearest)
tiles = [np.kron(t, np.ones((32 // t.shape[0], 32 // t.shape[1]))) for t in tiles]
viz.plot_image_grid(np.array(tiles), lesson.figure("pooling_feature_maps.png"), titles=titles, ncols=5,
                    title="Edges (4 Sobel filters, ReLU), then 2x2 pooling twice: max keeps peaks, avg dilutes them")
for name, t in [("relu(edges)", edges), ("max pool", pooled1), ("max pool x2", pooled2), ("avg pool x2", averaged2)]:
    print(f"  {name:<12} shape {t.shape}, mean {t.numpy().mean():.3f}, max {t.numpy().max():.3f}")

# The mean printed above rises after each max pooling (each window keeps its largest
# value), while average pooling keeps the mean and lowers the peaks: a thin outline,
# averaged with its empty neighbours, fades. That is why CNNs for classification usually
# max-pool inside the network and average only at the very end (global average pooling).

# ---------------------------------------------------------------------------------------
# 4. Softmax and cross-entropy
#
# The last layer produces one score (logit) z_k per class. Softmax turns them into
# probabilities:   p_k = exp(z_k) / sum_j exp(z_j)   - positive, summing to 1, and the
# largest logit gets the largest share. Cross-entropy is the negative log-probability of
# the true class y:   L = -log p_y.  Its gradient with respect to the logits is famously
# simple:   dL/dz = p - onehot(y)   - push the true class's logit up by (1 - p_y), every
# other one down by its probability.
# ---------------------------------------------------------------------------------------
print("\n4. Softmax and cross-entropy")
logits = tinycnn.tensor([[2.0, 1.0, 0.1]], requires_grad=True)
target = tinycnn.tensor([0])
probs = F.softmax(logits, dim=1)
loss = F.cross_entropy(logits, target)
loss.backward()
print(f"logits          {logits.numpy()[0]}")
print(f"softmax         {probs.numpy()[0]}  (sum {probs.numpy().sum():.4f})")
print(f"loss            {loss.item():.4f} = -log({probs.numpy()[0, 0]:.4f})")
print(f"dL/dlogits      {logits.grad.numpy()[0]}")
print(f"p - onehot(0)   {probs.numpy()[0] - np.eye(3)[0]}")

# The true class 0 already has the largest probability (the first entry of the softmax
# line), so the loss, -log of it, is modest; the gradient matches p - onehot exactly. Note that it sums to zero:
# adding the same number to every logit changes nothing (softmax is shift-invariant) -
# which is exactly the trick that makes it stable, in section 6.

# ---------------------------------------------------------------------------------------
# 5. Temperature: how peaked is the softmax?
#
# Dividing the logits by a temperature T before the softmax sharpens (T < 1) or flattens
# (T > 1) the distribution: as T -> 0 it becomes the one-hot of the largest logit (an
# argmax), as T -> infinity it becomes uniform. Figure softmax_temperature.png draws p_k(T)
# for the logits above.
#
# So what makes a network "confident"? Not large logits: softmax only sees the
# *differences* between them (section 4's shift invariance). Logits [102, 101, 100.1] give
# exactly the probabilities of [2, 1, 0.1], and [100, 100, 100] is as unsure as can be.
# Dividing by T scales the gaps: a confident network is one whose winning logit stands far
# above the others.
# ---------------------------------------------------------------------------------------
print("\n5. Temperature")
temperatures = np.logspace(-1.5, 1.5, lesson.pick(quick=31, default=121, full=301))
scaled = tinycnn.tensor(logits.numpy() / temperatures[:, None])     # one row per temperature
curves = F.softmax(scaled, dim=1).numpy()                           # (len(T), 3)
for T in (0.1, 1.0, 10.0):
    print(f"  T = {T:>4}: p = {F.softmax(logits / T, dim=1).numpy()[0]}")
print(f"  logits + 100 = {logits.numpy()[0] + 100}: p = {F.softmax(logits + 100, dim=1).numpy()[0]} (the same)")
print(f"  logits [100, 100, 100]:  p = {F.softmax(tinycnn.tensor([[100.0, 100.0, 100.0]]), dim=1).numpy()[0]}"
      " (large, but no gap: uniform)")
viz.plot_curves({f"class {k} (logit {logits.numpy()[0, k]:g})": (np.log10(temperatures), curves[:, k])
                 for k in range(3)},
                lesson.figure("softmax_temperature.png"), xlabel="log10(temperature T)",
                ylabel="softmax(z / T)", title="Low T: argmax;  high T: uniform (1/3 each)")

# ---------------------------------------------------------------------------------------
# 6. Why the loss is one fused, stable op
#
# Write softmax cross-entropy straight from the formula with tinycnn ops,
#     loss = -log( exp(z_y) / sum_j exp(z_j) ),
# and it works for the small logits above. But float32 exp overflows to inf just above
# z = 88.7 (e^88.7 ~ 3.4e38, the largest float32); below about -87 it loses precision
# (denormal numbers, fewer and fewer digits) and below about -103.9 it is exactly 0.
# Then inf / inf = nan, and log(0) = -inf. Trained networks do produce logits in the
# hundreds (and a diverging run produces anything), so this is not academic.
#
# The fix is the log-sum-exp trick: softmax does not change when the same m is subtracted
# from every logit (section 4), so take m = max_j z_j:
#     log p_y = z_y - m - log( sum_j exp(z_j - m) )
# Now every exponent is <= 0 (no overflow) and the largest term is exactly exp(0) = 1, so
# the sum is >= 1 and its log never sees 0 (no -inf). F.cross_entropy does this in one
# fused Function whose backward is the clean p - onehot(y), never dividing by a tiny p.
# ---------------------------------------------------------------------------------------
print("\n6. Naive versus fused softmax cross-entropy (float32)")
with np.errstate(over="ignore"):
    print(f"  float32: exp(88) = {np.exp(np.float32(88)):.3g}, exp(89) = {np.exp(np.float32(89))}, "
          f"exp(-100) = {np.exp(np.float32(-100)):.3g} (denormal), exp(-104) = {np.exp(np.float32(-104))}")


def naive_cross_entropy(z, y):
    """-log softmax(z)[y], straight from the formula (z: (1, C), y: an int)."""
    e = z.exp()
    p = e / e.sum(axis=1, keepdims=True)
    return -p[0, y].log()


def log_sum_exp_cross_entropy(z, y):
    """The same, with the max subtracted first: every exponent <= 0."""
    m = z.max(axis=1, keepdims=True).detach()      # a constant shift: no gradient needed
    shifted = z - m
    log_p = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_p[0, y]


print(f"  {'logits':<16}{'naive loss':>12}{'naive grad':>24}{'log-sum-exp':>13}"
      f"{'F.cross_entropy':>17}{'its grad':>20}")
scales = [1.0, 10.0, 50.0, 60.0, 100.0, 1000.0]
rows = {"naive": [], "log-sum-exp by hand": [], "F.cross_entropy": []}
for s in scales:
    # class 1 is the true class, and the network is confidently wrong: logits [s, -s]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):  # NumPy would warn
        z = tinycnn.tensor([[s, -s]], requires_grad=True)
        naive = naive_cross_entropy(z, 1)
        naive.backward()
        naive_grad = z.grad.numpy()[0]
        by_hand = log_sum_exp_cross_entropy(tinycnn.tensor([[s, -s]]), 1)
        z2 = tinycnn.tensor([[s, -s]], requires_grad=True)
        fused = F.cross_entropy(z2, tinycnn.tensor([1]))
        fused.backward()
    rows["naive"].append(naive.item())
    rows["log-sum-exp by hand"].append(by_hand.item())
    rows["F.cross_entropy"].append(fused.item())
    print(f"  {str([s, -s]):<16}{naive.item():>12.4g}{str(naive_grad):>24}{by_hand.item():>13.4g}"
          f"{fused.item():>17.4g}{str(z2.grad.numpy()[0]):>20}")

# Read the table above row by row. The true loss for logits [s, -s] with class 1 true is
# 2s + log(1 + e^-2s), about 2s. At small s all three columns agree. As s grows, watch the
# naive column: first it drifts off 2s (p_1 = e^-2s has become a denormal float32, with
# only a digit or two left) and its gradient turns to nan (the backward of log divides by
# that tiny p_1, and 1/p_1 overflows float32); a little further p_1 underflows to exactly
# 0 and the loss is inf; and once exp(s) itself overflows (s > 88.7), p = [inf/inf, 0/inf]
# = [nan, 0]. One such batch and every weight in the network becomes nan after the update.
# The log-sum-exp version and F.cross_entropy give 2s at every scale, with the bounded
# gradient [1, -1] (= p - onehot). Where the naive loss first goes wrong:
with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
    for s_value in (50.0,):
        p_true = (tinycnn.tensor([[s_value, -s_value]]).exp() / tinycnn.tensor([[s_value, -s_value]]).exp().sum()).numpy()[0, 1]
        print(f"  s = {s_value:g}: the naive p_1 = {p_true:.3g} (exact e^-{2 * s_value:g} = {np.exp(-2 * s_value):.3g}), "
              f"naive loss {rows['naive'][scales.index(s_value)]:.6g} instead of {2 * s_value:g}")

# Figure naive_vs_fused_loss.png: the exact loss 2s as a thin grey line, the two stable
# forms as lines on it, the naive loss as red circles where it is finite and red triangles
# at the top where it is inf or nan - a denser set of s than the table.
dense = np.logspace(0, 3, lesson.pick(quick=13, default=37, full=61))
dense_rows = {"naive": [], "log-sum-exp by hand": [], "F.cross_entropy": []}
with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
    for s_value in dense:
        z = tinycnn.tensor([[s_value, -s_value]])
        dense_rows["naive"].append(naive_cross_entropy(z, 1).item())
        dense_rows["log-sum-exp by hand"].append(log_sum_exp_cross_entropy(z, 1).item())
        dense_rows["F.cross_entropy"].append(F.cross_entropy(z, tinycnn.tensor([1])).item())
fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
ax.plot(dense, 2 * dense + np.log1p(np.exp(-2 * dense)), color="0.75", linewidth=7, label="exact: 2s + log(1 + e^-2s)")
ax.plot(dense, dense_rows["F.cross_entropy"], color="tab:blue", linewidth=2, label="F.cross_entropy (fused)")
ax.plot(dense, dense_rows["log-sum-exp by hand"], color="tab:orange", linestyle=(0, (4, 4)), linewidth=2,
        label="log-sum-exp by hand")
naive = np.array(dense_rows["naive"])
finite = np.isfinite(naive)
ax.plot(dense[finite], naive[finite], "o", color="tab:red", markersize=6, markerfacecolor="none",
        markeredgewidth=1.5, label="naive: finite")
top = 2 * dense.max() * 3
ax.plot(dense[~finite], np.full((~finite).sum(), top), "^", color="tab:red", markersize=7,
        label="naive: inf or nan")
ax.set(xscale="log", yscale="log", xlabel="s (logits [s, -s], true class 1)", ylabel="loss",
       title="Naive softmax cross-entropy breaks; the log-sum-exp form does not")
ax.axvline(88.7, color="0.4", linestyle=":", linewidth=1)
ax.text(88.7, 1.5, " exp(s) overflows\n float32 (s > 88.7)", fontsize=8, color="0.3")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8, loc="upper left")
fig.savefig(lesson.figure("naive_vs_fused_loss.png"))
plt.close(fig)

# What to remember
#   * ReLU passes gradient only through units that fired.
#   * Max pooling keeps the strongest response per window and routes the gradient to that
#     one pixel; average pooling shares it out evenly.
#   * Softmax turns logits into probabilities; cross-entropy's gradient is p - onehot(y).
#   * Never write log(softmax) by hand: subtract the max (log-sum-exp), or use the fused
#     F.cross_entropy / nn.CrossEntropyLoss, which take raw logits.

lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/functional/activation.py  ReLU, leaky ReLU, softmax, log_softmax (forward + backward)
#   tinycnn/functional/pool.py        max and average pooling: the gradient routed to the
#                                     window's winner, or shared out evenly
#   tinycnn/functional/loss.py        cross_entropy: log-sum-exp forward, p - onehot backward
#   tinycnn/windows.py                the window offsets pooling and convolution share
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. A 2x2 max pool receives the gradient [[1, 2], [3, 4]] at its output of a 4x4 input.
#      How many input pixels get a non-zero gradient, and what values?
#   2. Softmax of [5, 5, 5] and of [0, 0, 0]: which is more confident?
#   3. Why does the gradient of softmax cross-entropy with respect to the logits sum to 0?
#   4. Why must a network's last layer feed raw logits (no softmax) to F.cross_entropy?
#
# Answers (try first)
#   1. Four: one per window, the pixel that was the maximum gets that window's value (1, 2,
#      3 or 4); the other twelve get 0 (ties aside).
#   2. Neither: both are uniform (1/3 each). Only the gaps between logits matter.
#   3. It is p - onehot(y); p sums to 1 and onehot(y) sums to 1. Equivalently, adding the
#      same number to every logit does not change the loss, so the gradient has no
#      component along (1, 1, ..., 1).
#   4. F.cross_entropy applies log-softmax itself, stably (log-sum-exp); a softmax before
#      it would be applied twice, squash the gradients, and bring back the overflow.
#
# Exercises: lessons/exercises/04_pooling_relu_softmax.py — check your work with: python lessons/check.py 04
