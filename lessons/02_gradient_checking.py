"""Lesson 2 - Gradient checking.

Every layer's backward is hand-written, so every one can be wrong. We check them all with
tinycnn.gradcheck (central differences in float64) and print a table of errors; then we
plant bugs in two custom Functions and watch the check catch what shapes cannot.
"""

# ---------------------------------------------------------------------------------------
# Lesson 1 compared one gradient with finite differences by hand. A CNN library has a few
# dozen ops, each with a backward written by a person, and a wrong backward is the worst
# kind of bug: nothing crashes, the loss still goes down (more slowly), and you conclude
# the architecture is bad. The cure is mechanical: check every op numerically, in float64,
# on small random inputs, and keep those checks in the tests forever.
# ---------------------------------------------------------------------------------------

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
import tinycnn.functional as F  # noqa: E402
from tinycnn import viz  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
rng = np.random.default_rng(lesson.args.seed)

# ---------------------------------------------------------------------------------------
# 1. What gradcheck does
#
# `tinycnn.gradcheck(fn, inputs)` runs `fn` forward and backward once, then nudges every
# element of every floating input by +-eps and measures how the output moves. An op with
# many outputs is first reduced to one number, L = sum(fn(x) * r) with fixed random r, so
# a wrong gradient of any output element shows up (a plain sum could let errors cancel).
# It passes when |analytic - numeric| <= atol + rtol * |numeric| for every element, and
# otherwise raises GradcheckError naming the worst element.
#
# gradcheck answers yes or no. To also see *how close* each op comes, we compute the same
# numeric gradient ourselves - the whole algorithm is these few lines - and report the
# relative error  ||analytic - numeric|| / (||analytic|| + ||numeric||)  over all inputs.
# ---------------------------------------------------------------------------------------


def numeric_and_analytic(fn, inputs, eps=1e-6):
    """(analytic, numeric) gradients of sum(fn(*inputs) * r), flattened and concatenated.

    Checked inputs are the float64 tensors with requires_grad=True; others are constants.
    """
    out = fn(*inputs)
    r = rng.standard_normal(out.shape)
    (out * tinycnn.tensor(r, dtype=tinycnn.float64)).sum().backward()
    analytic, numeric = [], []
    for x in inputs:
        if not (isinstance(x, tinycnn.Tensor) and x.requires_grad):
            continue
        analytic.append(x.grad.numpy().ravel().copy())
        flat = x.data.reshape(-1)           # a view: writing to it perturbs x
        grad = np.zeros(flat.size)
        with tinycnn.no_grad():
            for k in range(flat.size):
                original = flat[k]
                flat[k] = original + eps
                plus = (fn(*inputs).numpy() * r).sum()
                flat[k] = original - eps
                minus = (fn(*inputs).numpy() * r).sum()
                flat[k] = original
                grad[k] = (plus - minus) / (2 * eps)
        numeric.append(grad)
    return np.concatenate(analytic), np.concatenate(numeric)


def relative_error(analytic, numeric):
    return np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300)


def randn(*shape, grad=True):
    """A float64 tensor of standard normal values (gradient checks always run in float64)."""
    return tinycnn.tensor(rng.standard_normal(shape), dtype=tinycnn.float64, requires_grad=grad)


def seeded_dropout(x):
    # Dropout draws a random mask on every call; gradcheck calls fn many times, so each call
    # must draw the *same* mask: reseed the generator first.
    tinycnn.manual_seed(123)
    return F.dropout(x, p=0.5, training=True)


# ---------------------------------------------------------------------------------------
# 2. Every layer, checked
#
# Small sizes on purpose: the numeric gradient costs two forward passes per input element.
# Each case exercises the awkward parts of its op: stride and padding for conv2d,
# overlapping windows for max pooling, batch statistics (every output depends on every
# input of its channel) for batch norm, label smoothing for the loss.
# ---------------------------------------------------------------------------------------
n = lesson.pick(quick=2, default=2, full=4)       # batch size of the checks
size = lesson.pick(quick=5, default=7, full=9)   # image height and width
labels = tinycnn.tensor(rng.integers(0, 5, n))

cases = {
    # name: (fn, inputs)
    "linear": (F.linear, [randn(n, 6), randn(4, 6), randn(4)]),
    "conv2d s1 p1": (lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1),
                     [randn(n, 2, size, size), randn(3, 2, 3, 3), randn(3)]),
    "conv2d s2 p1": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                     [randn(n, 2, size, size), randn(3, 2, 3, 3), randn(3)]),
    "conv2d 5x5 p2": (lambda x, w: F.conv2d(x, w, padding=2), [randn(n, 1, size, size), randn(2, 1, 5, 5)]),
    "max_pool2d 2": (lambda x: F.max_pool2d(x, 2), [randn(n, 2, size + 1, size + 1)]),
    "max_pool2d 3 s2 p1": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [randn(n, 2, size, size)]),
    "avg_pool2d 2": (lambda x: F.avg_pool2d(x, 2), [randn(n, 2, size + 1, size + 1)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 1), [randn(n, 3, size, size)]),
    "batch_norm (train)": (lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
                           [randn(n + 2, 3, 4, 4), randn(3), randn(3)]),
    "batch_norm (eval)": (lambda x, g, b: F.batch_norm(x, np.zeros(3), np.ones(3), g, b, training=False),
                          [randn(n, 3, 4, 4), randn(3), randn(3)]),
    "relu": (F.relu, [randn(n, 10)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [randn(n, 10)]),
    "dropout (seeded)": (seeded_dropout, [randn(n, 10)]),
    "sigmoid": (F.sigmoid, [randn(n, 10)]),
    "tanh": (F.tanh, [randn(n, 10)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [randn(n, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [randn(n, 5)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, labels), [randn(n, 5)]),
    "cross_entropy ls=0.1": (lambda z: F.cross_entropy(z, labels, label_smoothing=0.1), [randn(n, 5)]),
}

print(f"{'op':<22}{'inputs checked':>16}{'gradcheck':>11}{'rel. error':>12}{'seconds':>9}")
errors = {}
start_all = time.perf_counter()
for name, (fn, inputs) in cases.items():
    start = time.perf_counter()
    checked = sum(x.numel() for x in inputs if isinstance(x, tinycnn.Tensor) and x.requires_grad)
    try:
        verdict = "pass" if tinycnn.gradcheck(fn, inputs) else "?"
    except tinycnn.GradcheckError:
        verdict = "FAIL"
    analytic, numeric = numeric_and_analytic(fn, inputs)
    errors[name] = relative_error(analytic, numeric)
    print(f"{name:<22}{checked:>16}{verdict:>11}{errors[name]:>12.1e}{time.perf_counter() - start:>9.2f}")
print(f"{len(cases)} ops checked in {time.perf_counter() - start_all:.1f}s; "
      f"worst relative error {max(errors.values()):.1e} ({max(errors, key=errors.get)})")

# Read the table above: every op should pass, with relative errors around 1e-10 to 1e-9
# (the line under the table prints the worst). That is the size of float64 rounding
# amplified by the 1/(2 eps) of the difference quotient - lesson 1's figure showed that
# ~1e-10 is about all h = 1e-6 can resolve. A backward with a real mistake is off by 1e-2
# or more, as we will see next: there is a
# gap of many orders of magnitude between "right" and "wrong", which is what makes the
# check trustworthy. (Max pooling and ReLU have kinks, where the derivative jumps; with
# random inputs no element lands within eps of one, so the check is safe there too.)

# ---------------------------------------------------------------------------------------
# 3. Writing your own op - and getting it wrong
#
# An op is a `tinycnn.Function`: `forward` computes on raw NumPy arrays and saves what
# backward needs; `backward` turns dL/d(output) into dL/d(input). Here is sigmoid,
# s = 1 / (1 + exp(-x)), whose derivative is s * (1 - s) - written correctly, and written
# the way a tired person writes it, forgetting the factor (1 - s).
# ---------------------------------------------------------------------------------------


class GoodSigmoid(tinycnn.Function):
    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))
        return self.s

    def backward(self, grad):
        return grad * self.s * (1.0 - self.s)


class BuggySigmoid(GoodSigmoid):
    def backward(self, grad):
        return grad * self.s              # BUG: forgot the factor (1 - s)


# A second, subtler bug: a matrix product y = x @ W whose backward for x uses W where it
# should use W.T. For a square W the shapes agree, so nothing complains - the engine checks
# that each gradient has its input's shape, and this one does.

class GoodMatMul(tinycnn.Function):
    def forward(self, x, w):
        self.x, self.w = x, w
        return x @ w

    def backward(self, grad):
        return grad @ self.w.T, self.x.T @ grad


class BuggyMatMul(GoodMatMul):
    def backward(self, grad):
        return grad @ self.w, self.x.T @ grad   # BUG: w instead of w.T (same shape when square)


print("\nOur own Functions:")
x_check = randn(n, 6)
w_check = randn(6, 6)
custom = {
    "GoodSigmoid": (lambda x: GoodSigmoid.apply(x), [x_check]),
    "BuggySigmoid": (lambda x: BuggySigmoid.apply(x), [x_check]),
    "GoodMatMul": (lambda x, w: GoodMatMul.apply(x, w), [x_check, w_check]),
    "BuggyMatMul": (lambda x, w: BuggyMatMul.apply(x, w), [x_check, w_check]),
}
pairs = {}
for name, (fn, inputs) in custom.items():
    for x in inputs:
        x.grad = None
    try:
        tinycnn.gradcheck(fn, inputs, names=["x", "w"][:len(inputs)])
        print(f"  {name:<13} passes")
    except tinycnn.GradcheckError as error:
        print(f"  {name:<13} GradcheckError: {error}")
    for x in inputs:
        x.grad = None
    pairs[name] = numeric_and_analytic(fn, inputs)
    errors[name] = relative_error(*pairs[name])
    print(f"  {'':<13} relative error {errors[name]:.1e}")

# gradcheck stops at the first input that fails. Which of BuggyMatMul's two gradients is
# wrong? Check w alone by passing x as a constant (requires_grad=False):
tinycnn.gradcheck(lambda x, w: BuggyMatMul.apply(x, w), [x_check.detach(), w_check], names=["x", "w"])
print("  BuggyMatMul with x held constant: the gradient for w passes - the bug is in the x formula")

correct = [err for name, err in errors.items() if not name.startswith("Buggy")]
buggy = [err for name, err in errors.items() if name.startswith("Buggy")]
print(f"  worst correct op: {max(correct):.1e};  best buggy op: {min(buggy):.1e}  -> a gap of "
      f"{np.log10(min(buggy) / max(correct)):.0f} orders of magnitude between right and wrong")

# Figure gradcheck_digits.png puts all of them side by side as "digits of agreement",
# -log10(relative error): look for 9-10 digits on every library op and our correct
# versions, and less than one digit on the two bugs.
viz.plot_bars({name: -np.log10(max(err, 1e-17)) for name, err in errors.items()},
              lesson.figure("gradcheck_digits.png"), ylabel="-log10(relative error)",
              title="Digits of agreement between backward() and finite differences (float64)")

# The messages above point at the culprit: the check names the input whose gradient is
# wrong (x, for both bugs; the matmul's w-gradient passes), how many elements are off,
# and the worst one's analytic and numeric values. Note how far apart the relative errors
# are (the "gap" line above): the correct ops sit near 1e-10, the buggy ones near 1.

# ---------------------------------------------------------------------------------------
# 4. The picture of a bug
#
# Plot every analytic gradient element against its numeric twin. A correct backward puts
# every point on the diagonal. The buggy sigmoid's points lie on a steeper fan: each is
# too large by the factor 1 / (1 - s) (the missing factor); the buggy matmul's are
# scattered, because they are the right numbers added up in the wrong places.
# (tinycnn.viz has no scatter plot, so this figure uses matplotlib directly.)
# ---------------------------------------------------------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
for ax, (good, bad) in zip(axes, [("GoodSigmoid", "BuggySigmoid"), ("GoodMatMul", "BuggyMatMul")]):
    for name, marker in ((good, "o"), (bad, "x")):
        analytic, numeric = pairs[name]
        ax.scatter(numeric, analytic, marker=marker, s=22, label=f"{name} (rel. err. {errors[name]:.0e})")
    low = min(ax.get_xlim()[0], ax.get_ylim()[0])
    high = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([low, high], [low, high], "k--", linewidth=0.8, label="analytic = numeric")
    ax.set(xlabel="numeric gradient (finite differences)", ylabel="analytic gradient (backward)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
fig.suptitle("A correct backward lies on the diagonal; a buggy one does not")
fig.savefig(lesson.figure("buggy_backward.png"))
plt.close(fig)

# What to remember
#   * Check every hand-written backward numerically, in float64, on small random inputs.
#   * Reduce many outputs with random weights, not a plain sum, so errors cannot cancel.
#   * Correct ops agree to ~1e-10; bugs miss by 1e-2 or more. Shapes catch none of the
#     interesting bugs - a transposed matrix has the right shape.
#   * Random ops (dropout) must draw the same randomness on every call: fix the seed.

lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/gradcheck.py         gradcheck and GradcheckError: the loop of section 1, with the
#                                random reduction, per-input reports and tolerances
#   tinycnn/tensor.py            Function: forward on raw arrays, backward, apply()
#   tinycnn/functional/conv.py, pool.py, norm.py, activation.py, dropout.py, loss.py, linear.py
#                                the backward formulas the table above checked
#   tests/test_autograd.py       how the library keeps these checks in its tests
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Why is the output reduced with fixed random weights r instead of a plain sum?
#   2. Why does a relative error of 1e-10 count as "exact", and 1e-2 as a bug?
#   3. BuggyMatMul's gradient has the right shape. What check would catch it without
#      finite differences, and why do shapes catch so few backward bugs?
#   4. Why must dropout draw the same mask on every call of a gradient check?
#
# Answers (try first)
#   1. With a plain sum only the sum over outputs of each gradient is tested; errors of
#      opposite sign in different outputs can cancel (a softmax's rows of a plain sum have
#      gradient 0 whatever the backward says). Random weights make cancellation unlikely.
#   2. float64 rounding amplified by 1/(2h) gives errors around 1e-10 (lesson 1, section 8);
#      a wrong formula is off by a fraction of the gradient itself. Nothing correct lands in
#      between, so the many orders of magnitude of gap make the verdict unambiguous.
#   3. Only a numeric or algebraic one (e.g. the identity <dL/dx, v> = directional
#      derivative). Shapes only catch a mismatched layout; transposes of square matrices,
#      missing factors and wrong signs keep the shape.
#   4. The numeric gradient compares f(x + h) with f(x - h): if a new mask were drawn for
#      each, the difference would measure the change of mask, not of x.
#
# Exercises: lessons/exercises/02_gradient_checking.py — check your work with: python lessons/check.py 02
