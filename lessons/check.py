"""Check your solutions to the exercises in lessons/exercises/.

    python lessons/check.py 03          # the exercises of lesson 3 (also: 3, 03b, 10b)
    python lessons/check.py all         # every lesson's
    python lessons/check.py 03 --file my_copy.py     # check another copy of lesson 3's file
    python lessons/check.py all --dir some/folder    # files NN_name.py in another folder

One line per exercise: "ok", "not done yet" (a NotImplementedError: a stub still in place,
or a PREDICTED_... still None) or "wrong: what was expected and what came". The exit
status is 0 only when every exercise checked is ok.

Every check runs *your* code: gradcheck on your backward, your update rule against
tinycnn's optimizer, your prediction against the experiment it is about. tinycnn's own
implementation serves only as the reference your results are compared with.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import tinycnn
import tinycnn.functional as F
from tinycnn import models, nn, optim

EXERCISES_DIR = Path(__file__).resolve().parent / "exercises"
CHECKS: dict = {}   # lesson key ("03", "03b") -> [(number, title, check function)]


def exercise(number: str, title: str):
    """Register the decorated function as the check of exercise `number` ("3.1", "3b.2")."""
    lesson = number.split(".")[0]
    key = lesson[:-1].zfill(2) + "b" if lesson.endswith("b") else lesson.zfill(2)

    def register(check):
        CHECKS.setdefault(key, []).append((number, title, check))
        return check
    return register


# ------------------------------------------------------------------------ helpers for checks
def predicted(module, name: str, allowed=None):
    """The student's prediction `name`; NotImplementedError while it is None."""
    value = getattr(module, name, None)
    if value is None:
        raise NotImplementedError(f"set {name}")
    if allowed is not None and value not in allowed:
        raise AssertionError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def close(name: str, got, expected, rtol=1e-6, atol=1e-8):
    """Assert two arrays (or numbers) agree, saying where and by how much they do not."""
    got_array, expected_array = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got_array.shape != expected_array.shape:
        raise AssertionError(f"{name}: expected shape {expected_array.shape}, got {got_array.shape}")
    if not np.all(np.isfinite(got_array)):
        raise AssertionError(f"{name}: expected finite numbers, got {int((~np.isfinite(got_array)).sum())} "
                             f"inf/nan of {got_array.size}")
    bad = np.abs(got_array - expected_array) > atol + rtol * np.abs(expected_array)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.abs(got_array - expected_array)), got_array.shape)
        where = f" at index {tuple(int(i) for i in worst)}" if got_array.ndim else ""
        raise AssertionError(f"{name}: {int(bad.sum())} of {bad.size} values differ; worst{where}: expected "
                             f"{expected_array[worst]:.10g}, got {got_array[worst]:.10g} (off by "
                             f"{abs(got_array[worst] - expected_array[worst]):.2g})")


def number(name: str, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{name} must be a number, got {value!r}")
    return float(value)


def function_from(forward, backward):
    """A tinycnn.Function whose forward and backward are the given functions of raw arrays.

    forward(*arrays) -> array;  backward(saved arrays, grad) -> tuple of input gradients.
    """
    class Wrapped(tinycnn.Function):
        def forward(self, *arrays):
            self.saved = arrays
            return forward(*arrays)

        def backward(self, grad):
            return backward(self.saved, grad)
    return Wrapped


def float64(*shape, rng, grad=True, scale=1.0):
    return tinycnn.tensor(rng.standard_normal(shape) * scale, dtype=tinycnn.float64, requires_grad=grad)


# ==================================================================================== lesson 1
@exercise("1.1", "softplus as a Function")
def check_softplus(ex):
    rng = np.random.default_rng(1)
    x = np.array([-1000.0, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 1000.0])
    with np.errstate(over="ignore"):
        out = ex.softplus(tinycnn.tensor(x, dtype=tinycnn.float64)).numpy()
    close("softplus(x) for x = -1000 .. 1000", out, np.logaddexp(0.0, x), rtol=1e-9, atol=1e-12)
    tinycnn.gradcheck(lambda t: ex.softplus(t), [float64(3, 4, rng=rng, scale=3.0)], names=["x"])


@exercise("1.2", "central differences")
def check_numeric_gradient(ex):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    got = ex.numeric_gradient(lambda a: float(np.sum(np.sin(a) * a ** 2)), x)
    if not np.array_equal(x, before):
        raise AssertionError("numeric_gradient changed x: put every element back after nudging it")
    # one-sided differences are off by ~1e-6 here, central ones by ~1e-10
    close("numeric_gradient of sum(sin(x) x^2)", got, np.cos(x) * x ** 2 + 2 * x * np.sin(x), rtol=1e-7, atol=1e-8)
    w = rng.standard_normal(5)
    close("numeric_gradient of exp(w . v)", ex.numeric_gradient(lambda v: float(np.exp(w @ v)), np.zeros(5)),
          w, rtol=1e-7, atol=1e-8)


@exercise("1.3", "predict: gradients accumulate")
def check_accumulation(ex):
    guess = number("PREDICTED_W_GRAD", predicted(ex, "PREDICTED_W_GRAD"))
    w = tinycnn.tensor(3.0, requires_grad=True)
    (w * w).backward()
    (5 * w + w).backward()
    actual = w.grad.item()
    if abs(guess - actual) > 1e-6:
        raise AssertionError(f"you predicted {guess:g}; w.grad holds {actual:g}")


# ==================================================================================== lesson 2
@exercise("2.1", "fix the softmax backward")
def check_fixed_softmax(ex):
    rng = np.random.default_rng(3)
    tinycnn.gradcheck(lambda t: ex.FixedSoftmax.apply(t), [float64(3, 5, rng=rng)], names=["x"])


@exercise("2.2", "gradient checking by hand")
def check_analytic_and_numeric(ex):
    rng = np.random.default_rng(4)
    x = float64(2, 3, rng=rng)
    w = rng.standard_normal((3, 4))
    fn = lambda t: (t @ tinycnn.tensor(w, dtype=tinycnn.float64)).tanh()   # noqa: E731
    before = x.numpy().copy()
    analytic, numeric = ex.analytic_and_numeric(fn, x, seed=7)
    if not np.array_equal(x.numpy(), before):
        raise AssertionError("analytic_and_numeric changed x: put every element back after nudging it")
    r = np.random.default_rng(7).standard_normal((2, 4))
    h = np.tanh(before @ w)
    expected = ((1 - h ** 2) * r) @ w.T        # d/dx sum(tanh(x w) * r)
    close("analytic", analytic, expected, rtol=1e-9, atol=1e-12)
    close("numeric", numeric, expected, rtol=1e-6, atol=1e-8)
    # it must also see a bug: the buggy softmax's two arrays disagree
    z = float64(2, 4, rng=rng)
    bad_analytic, bad_numeric = ex.analytic_and_numeric(lambda t: ex.BuggySoftmax.apply(t), z, seed=1)
    if np.allclose(bad_analytic, bad_numeric, rtol=1e-3, atol=1e-5):
        raise AssertionError("on BuggySoftmax your analytic and numeric gradients agree; they should not "
                             "(is numeric computed from fn's outputs, with the same r?)")


@exercise("2.3", "predict: a bug hidden by a symmetric W")
def check_symmetric_bug(ex):
    guess = predicted(ex, "PREDICTED_CAUGHT_WITH_SYMMETRIC_W", (True, False))

    class BuggyMatMul(tinycnn.Function):
        def forward(self, x, w):
            self.x, self.w = x, w
            return x @ w

        def backward(self, grad):
            return grad @ self.w, self.x.T @ grad          # the lesson's bug: w instead of w.T
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 4))
    try:
        tinycnn.gradcheck(lambda x, w: BuggyMatMul.apply(x, w), [float64(3, 4, rng=rng), a + a.T])
        caught = False
    except tinycnn.GradcheckError:
        caught = True
    if guess != caught:
        raise AssertionError(f"you predicted {guess}; gradcheck {'failed' if caught else 'passed'} "
                             "(with W == W.T, grad @ W equals grad @ W.T: test with random, unsymmetric inputs)")


# ==================================================================================== lesson 3
@exercise("3.1", "conv backward with loops")
def check_conv_backward(ex):
    rng = np.random.default_rng(6)
    op = function_from(lambda x, w, b, stride, padding: ex.conv2d_loops(x, w, b, stride, padding),
                       lambda saved, g: ex.conv2d_backward_loops(saved[0], saved[1], g, saved[3], saved[4])[:3]
                       + (None, None))
    for stride, padding, size in ((1, 0, 5), (2, 1, 5), (1, 1, 4)):
        x, w, b = float64(2, 2, size, size, rng=rng), float64(3, 2, 3, 3, rng=rng), float64(3, rng=rng)
        try:
            tinycnn.gradcheck(lambda x, w, b: op.apply(x, w, b, stride, padding), [x, w, b], names=["x", "w", "b"])
        except tinycnn.GradcheckError as error:
            raise AssertionError(f"stride {stride}, padding {padding}: {error}") from None
    # the same numbers as tinycnn's autograd on a larger case (an oracle, not your code)
    x, w = float64(2, 3, 7, 6, rng=rng), float64(4, 3, 3, 2, rng=rng)
    out = F.conv2d(x, w, float64(4, rng=rng), stride=2, padding=1)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    got = ex.conv2d_backward_loops(x.numpy(), w.numpy(), g, 2, 1)
    close("grad_x (x 2x3x7x6, w 4x3x3x2, stride 2, padding 1)", got[0], x.grad.numpy(), rtol=1e-9, atol=1e-10)
    close("grad_w (same case)", got[1], w.grad.numpy(), rtol=1e-9, atol=1e-10)


@exercise("3.2", "the output-size formula")
def check_output_size(ex):
    for size in (5, 8, 28, 32):
        for kernel in (1, 2, 3, 5):
            for stride in (1, 2, 3):
                for padding in (0, 1, 2):
                    for dilation in (1, 2):
                        if dilation * (kernel - 1) + 1 > size + 2 * padding:
                            continue
                        x = tinycnn.zeros(1, 1, size, size)
                        expected = F.conv2d(x, tinycnn.zeros(1, 1, kernel, kernel), stride=stride,
                                            padding=padding, dilation=dilation).shape[2]
                        got = ex.output_size(size, kernel, stride, padding, dilation)
                        if got != expected:
                            raise AssertionError(f"size {size}, kernel {kernel}, stride {stride}, padding {padding}, "
                                                 f"dilation {dilation}: F.conv2d gives {expected}, you gave {got!r}")


@exercise("3.3", "im2col with loops")
def check_im2col(ex):
    from tinycnn.functional.conv import im2col
    rng = np.random.default_rng(8)
    for shape, (kh, kw), stride, padding in (((1, 1, 4, 4), (3, 3), 1, 0), ((2, 3, 6, 5), (3, 2), 2, 1)):
        x = rng.standard_normal(shape)
        expected = im2col(x, (kh, kw), stride=(stride, stride), padding=(padding, padding), dilation=(1, 1))
        close(f"im2col of {shape}, kernel {kh}x{kw}, stride {stride}, padding {padding}",
              ex.im2col_loops(x, kh, kw, stride, padding), expected, rtol=0, atol=0)


# =================================================================================== lesson 3b
@exercise("3b.1", "col2im, the adjoint of im2col")
def check_col2im(ex):
    from tinycnn.functional.conv import col2im, im2col
    rng = np.random.default_rng(9)
    for shape, k, stride, padding in (((1, 1, 4, 4), 3, 1, 0), ((2, 3, 7, 6), 3, 2, 1), ((2, 2, 5, 5), 2, 1, 1)):
        args = (k, k), (stride, stride), (padding, padding), (1, 1)
        x = rng.standard_normal(shape)
        cols = rng.standard_normal(im2col(x, *args).shape)
        got = ex.col2im(cols, shape, k, k, stride, padding)
        close(f"col2im for x {shape}, kernel {k}, stride {stride}, padding {padding}", got, col2im(cols, shape, *args),
              rtol=1e-12, atol=1e-12)
        lhs, rhs = float((im2col(x, *args) * cols).sum()), float((x * got).sum())
        if abs(lhs - rhs) > 1e-9 * max(1.0, abs(lhs)):
            raise AssertionError(f"<im2col(x), cols> = {lhs:.10g} but <x, col2im(cols)> = {rhs:.10g}")


@exercise("3b.2", "max-pool gradient routing")
def check_max_pool_backward(ex):
    rng = np.random.default_rng(10)
    for shape, k, stride in (((2, 3, 6, 6), 2, 2), ((1, 2, 7, 7), 3, 2), ((1, 1, 4, 4), 2, 1)):
        x = float64(*shape, rng=rng)
        out = F.max_pool2d(x, k, stride=stride)
        g = rng.standard_normal(out.shape)
        out.backward(g)
        close(f"max-pool gradient, x {shape}, window {k}, stride {stride}",
              ex.max_pool_backward(x.numpy(), g, k, stride), x.grad.numpy(), rtol=1e-12, atol=1e-12)
    ties = np.zeros((1, 1, 4, 4))                     # every window's values are equal: the first one wins
    x = tinycnn.tensor(ties, dtype=tinycnn.float64, requires_grad=True)
    out = F.max_pool2d(x, 2, stride=2)
    out.backward(np.ones(out.shape))
    close("max-pool gradient on a map of equal values (ties go to the first maximum)",
          ex.max_pool_backward(ties, np.ones(out.shape), 2, 2), x.grad.numpy(), rtol=0, atol=0)


@exercise("3b.3", "batch norm backward")
def check_batch_norm_backward(ex):
    rng = np.random.default_rng(11)
    op = function_from(lambda x, gamma, beta: _batch_norm_forward(x, gamma, beta),
                       lambda saved, g: ex.batch_norm_backward(saved[0], saved[1], g, 1e-5))
    tinycnn.gradcheck(lambda x, gamma, beta: op.apply(x, gamma, beta),
                      [float64(6, 3, rng=rng, scale=2.0), float64(3, rng=rng), float64(3, rng=rng)],
                      names=["x", "gamma", "beta"])


def _batch_norm_forward(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta


# ==================================================================================== lesson 4
@exercise("4.1", "softmax cross-entropy: loss and gradient")
def check_softmax_cross_entropy(ex):
    rng = np.random.default_rng(12)
    for scale in (1.0, 1000.0):
        z = rng.standard_normal((5, 4)) * scale
        y = rng.integers(0, 4, 5)
        logits = tinycnn.tensor(z, dtype=tinycnn.float64, requires_grad=True)
        loss = F.cross_entropy(logits, tinycnn.tensor(y))
        loss.backward()
        with np.errstate(all="ignore"):
            got_loss, got_grad = ex.softmax_cross_entropy(z.copy(), y)
        close(f"loss (logits of size ~{scale:g})", number("loss", got_loss), loss.item(), rtol=1e-9, atol=1e-9)
        close(f"gradient (logits of size ~{scale:g})", got_grad, logits.grad.numpy(), rtol=1e-7, atol=1e-12)
    y = rng.integers(0, 3, 4)
    op = function_from(lambda z: np.asarray(ex.softmax_cross_entropy(z, y)[0]),
                       lambda saved, g: (g * ex.softmax_cross_entropy(saved[0], y)[1],))
    tinycnn.gradcheck(lambda z: op.apply(z), [float64(4, 3, rng=rng)], names=["logits"])


@exercise("4.2", "predict: overlapping max pooling")
def check_overlapping_pool(ex):
    at_7 = number("PREDICTED_GRADIENT_AT_7", predicted(ex, "PREDICTED_GRADIENT_AT_7"))
    at_6 = number("PREDICTED_GRADIENT_AT_6", predicted(ex, "PREDICTED_GRADIENT_AT_6"))
    fmap = tinycnn.tensor([[[[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0],
                             [0.0, 1.0, 7.0, 2.0], [2.0, 6.0, 3.0, 1.0]]]], requires_grad=True)
    out = F.max_pool2d(fmap, 2, stride=1)
    out.backward(np.ones(out.shape, dtype=np.float32))
    grad = fmap.grad.numpy()[0, 0]
    if (at_7, at_6) != (grad[2, 2], grad[3, 1]):
        raise AssertionError(f"you predicted {at_7:g} at the 7 and {at_6:g} at the 6; the gradient is "
                             f"{grad[2, 2]:g} and {grad[3, 1]:g} (each window that a pixel wins sends it its 1)")


# ==================================================================================== lesson 5
@exercise("5.1", "confusion matrix and recall")
def check_confusion(ex):
    from tinycnn import viz
    rng = np.random.default_rng(13)
    labels, predictions = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    labels[labels == 4] = 3                          # class 4 has no examples: its recall is 0.0
    counts = ex.confusion_matrix(labels, predictions, 5)
    expected = viz.confusion_matrix(labels, predictions, 5)
    close("confusion_matrix (rows: true classes, columns: predictions)", counts, expected, rtol=0, atol=0)
    recall = ex.per_class_recall(expected)
    close("per_class_recall", recall, [expected[k, k] / max(expected[k].sum(), 1) for k in range(5)],
          rtol=1e-12, atol=1e-12)


@exercise("5.2", "one training step")
def check_train_step(ex):
    rng = np.random.default_rng(14)
    images = tinycnn.tensor(rng.standard_normal((4, 8, 2, 6, 6)).astype(np.float32))
    labels = tinycnn.tensor(rng.integers(0, 3, (4, 8)))

    def make():
        tinycnn.manual_seed(0)
        return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    mine, reference = make(), make()
    mine_opt = optim.SGD(mine.parameters(), lr=0.1, momentum=0.9)
    ref_opt = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for step in range(4):
        loss = ex.train_step(mine, mine_opt, images[step], labels[step])
        ref_loss = F.cross_entropy(reference(images[step]), labels[step])
        ref_opt.zero_grad()
        ref_loss.backward()
        ref_opt.step()
        close(f"the loss returned at step {step + 1}", number("train_step's return value", loss), ref_loss.item(),
              rtol=1e-5, atol=1e-6)
        for (name, p), q in zip(mine.named_parameters(), reference.parameters()):
            close(f"{name} after step {step + 1}", p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6)


# ==================================================================================== lesson 6
@exercise("6.1", "counting parameters")
def check_parameter_counts(ex):
    for cin, cout, k, bias in ((1, 6, 5, True), (6, 16, 5, True), (3, 8, 3, False), (16, 32, 1, True)):
        layer = nn.Conv2d(cin, cout, k, bias=bias)
        got = ex.conv_parameters(cin, cout, k, bias)
        if got != models.count_parameters(layer):
            raise AssertionError(f"conv_parameters({cin}, {cout}, {k}, bias={bias}): nn.Conv2d has "
                                 f"{models.count_parameters(layer)}, you gave {got!r}")
    for fin, fout, bias in ((400, 120, True), (84, 10, True), (10, 3, False)):
        got = ex.linear_parameters(fin, fout, bias)
        if got != models.count_parameters(nn.Linear(fin, fout, bias=bias)):
            raise AssertionError(f"linear_parameters({fin}, {fout}, bias={bias}): nn.Linear has "
                                 f"{models.count_parameters(nn.Linear(fin, fout, bias=bias))}, you gave {got!r}")
    guess = predicted(ex, "PREDICTED_LENET5_PARAMETERS")
    actual = models.count_parameters(models.lenet5())
    if guess != actual:
        raise AssertionError(f"you predicted {guess!r} parameters for LeNet-5; it has {actual:,}")


@exercise("6.2", "the cosine schedule")
def check_cosine(ex):
    for total, lr_max, lr_min in ((12, 0.05, 0.0), (7, 0.1, 1e-3)):
        param = nn.Parameter(tinycnn.zeros(1))
        opt = optim.SGD([param], lr=lr_max)
        schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=lr_min)
        for epoch in range(total + 1):
            close(f"cosine_lr({epoch}, {total}, {lr_max}, {lr_min})",
                  number("cosine_lr", ex.cosine_lr(epoch, total, lr_max, lr_min)), opt.param_groups[0]["lr"],
                  rtol=1e-9, atol=1e-12)
            opt.step()
            schedule.step()


# ==================================================================================== lesson 7
def _optimizer_race(step_student, make_optimizer, n_state, steps=20, seed=15):
    """Run a student's in-place update rule and a tinycnn optimizer on the same gradients."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(6)
    param = nn.Parameter(tinycnn.tensor(p.copy(), dtype=tinycnn.float64))
    opt = make_optimizer([param])
    state = [np.zeros(6) for _ in range(n_state)]
    for t in range(1, steps + 1):
        g = rng.standard_normal(6) * 10 ** rng.uniform(-3, 1)
        step_student(p, g.copy(), *state, t)
        param.grad = tinycnn.tensor(g, dtype=tinycnn.float64)
        opt.step()
        close(f"the parameter after step {t}", p, param.numpy(), rtol=1e-9, atol=1e-12)


@exercise("7.1", "SGD with momentum and Nesterov")
def check_momentum(ex):
    for nesterov in (False, True):
        _optimizer_race(lambda p, g, v, t: ex.momentum_step(p, g, v, 0.05, 0.9, nesterov),
                        lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=nesterov), 1)


@exercise("7.2", "Adam")
def check_adam(ex):
    _optimizer_race(lambda p, g, m, s, t: ex.adam_step(p, g, m, s, t, 0.01, (0.9, 0.999), 1e-8),
                    lambda params: optim.Adam(params, lr=0.01), 2)


@exercise("7.3", "predict: the largest stable learning rate")
def check_largest_lr(ex):
    lr = number("PREDICTED_LARGEST_STABLE_LR", predicted(ex, "PREDICTED_LARGEST_STABLE_LR"))
    if lr <= 0:
        raise AssertionError(f"a learning rate is positive, got {lr}")

    def final_y(rate):
        p, v = np.array([-9.0, 1.5]), np.zeros(2)
        for _ in range(200):
            ex.momentum_step(p, np.array([p[0], 40 * p[1]]), v, rate, 0.0)
        return abs(p[1])
    below, above = final_y(0.98 * lr), final_y(1.02 * lr)
    if not (below < 1.5 and above > 1.5):
        raise AssertionError(f"at 0.98x your rate ({0.98 * lr:.4g}) |y| went from 1.5 to {below:.3g}, at 1.02x "
                             f"({1.02 * lr:.4g}) to {above:.3g}: the edge of divergence is elsewhere "
                             "(when is |1 - 40 lr| < 1?)")


# ==================================================================================== lesson 8
@exercise("8.1", "AdamW's decoupled weight decay")
def check_adamw(ex):
    _optimizer_race(lambda p, g, m, s, t: ex.adamw_step(p, g, m, s, t, 0.01, (0.9, 0.999), 1e-8, 0.1),
                    lambda params: optim.AdamW(params, lr=0.01, weight_decay=0.1), 2)


def _fit_regression(step, loss_scale, steps=3000):
    """Full-batch gradient descent on loss_scale * mean squared error; returns the final weight norm."""
    rng = np.random.default_rng(16)
    inputs = rng.standard_normal((64, 16))
    best = rng.standard_normal(16)
    targets = inputs @ best
    w, m, s = np.zeros(16), np.zeros(16), np.zeros(16)
    for t in range(1, steps + 1):
        grad = loss_scale * 2 * inputs.T @ (inputs @ w - targets) / len(inputs)
        step(w, grad, m, s, t, 0.01, (0.9, 0.999), 1e-8, 0.1)
    return float(np.linalg.norm(w)), float(np.linalg.norm(best))


@exercise("8.2", "predict: AdamW against Adam + L2 with small gradients")
def check_adamw_prediction(ex):
    guess = predicted(ex, "PREDICTED_CHANGE", ("larger", "smaller", "same"))
    adam_norm, best_norm = _fit_regression(ex.adam_l2_step, 1e-3)
    adamw_norm, _ = _fit_regression(ex.adamw_step, 1e-3)
    ratio = adamw_norm / max(adam_norm, 1e-12)
    outcome = "same" if abs(ratio - 1) <= 0.1 else "larger" if ratio > 1 else "smaller"
    if guess != outcome:
        raise AssertionError(f"you predicted {guess!r}; the final weight norm was {adam_norm:.3f} with Adam + L2 and "
                             f"{adamw_norm:.3f} with your AdamW (the best weights: {best_norm:.3f}), so {outcome!r}")


@exercise("8.3", "inverted dropout")
def check_dropout(ex):
    x = np.random.default_rng(17).uniform(1.0, 2.0, (400, 250))
    for p in (0.2, 0.5):
        out = np.asarray(ex.dropout(x, p, np.random.default_rng(18)))
        if out.shape != x.shape:
            raise AssertionError(f"dropout returned shape {out.shape}, expected {x.shape}")
        dropped = out == 0
        if abs(dropped.mean() - p) > 0.01:
            raise AssertionError(f"p = {p}: {100 * dropped.mean():.1f}% of the values are zero, expected about {100 * p:g}%")
        close(f"p = {p}: the values kept", out[~dropped], x[~dropped] / (1 - p), rtol=1e-12, atol=0)
    close("dropout in evaluation (training=False)", ex.dropout(x, 0.5, np.random.default_rng(0), training=False), x,
          rtol=0, atol=0)
    close("dropout with p = 0", ex.dropout(x, 0.0, np.random.default_rng(0)), x, rtol=0, atol=0)


# ==================================================================================== lesson 9
@exercise("9.1", "He initialisation")
def check_he(ex):
    for shape in ((64, 32, 3, 3), (200, 400)):
        weight = nn.Parameter(tinycnn.zeros(*shape))
        returned = ex.he_normal_(weight, np.random.default_rng(19))
        if returned is not weight:
            raise AssertionError("he_normal_ should return the weight it was given (initialised in place)")
        if weight.dtype != np.float32:
            raise AssertionError(f"he_normal_ changed the weight's dtype to {weight.dtype}")
        values = weight.numpy()
        fan_in = int(np.prod(shape[1:]))
        if abs(values.std() / math.sqrt(2 / fan_in) - 1) > 0.03 or abs(values.mean()) > 0.05 * values.std():
            raise AssertionError(f"weight {shape}: std {values.std():.4g} and mean {values.mean():.2g}; expected std "
                                 f"sqrt(2 / fan_in) = {math.sqrt(2 / fan_in):.4g} (fan_in = {fan_in}) and mean 0")
        if abs(np.mean(np.abs(values)) / values.std() - math.sqrt(2 / math.pi)) > 0.02:
            raise AssertionError(f"weight {shape}: the values do not look normally distributed")


def _plain_net(depth=19, channels=16):
    layers, cin = [], 3
    for _ in range(depth):
        layers += [nn.Conv2d(cin, channels, 3, padding=1), nn.ReLU()]
        cin = channels
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 6))


def _first_last_gradients(net, images, labels):
    net.zero_grad()
    F.cross_entropy(net(images), labels).backward()
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    return [float(np.linalg.norm(c.weight.grad.numpy())) for c in (convs[0], convs[-1])]


@exercise("9.2", "predict: the gradient table with He initialisation")
def check_he_gradients(ex):
    ranges = {"below 0.1": (0, 0.1), "0.1 to 10": (0.1, 10), "10 to 1000": (10, 1000), "above 1000": (1000, math.inf)}
    guess = predicted(ex, "PREDICTED_LAST_OVER_FIRST", tuple(ranges))
    from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Normalize, Shapes, ToFloat
    data = Shapes(train=True, n=16, size=8, seed=0)
    # float64: in float32 the default-initialised net's tiny signals become denormal numbers, which
    # the CPU computes on up to 100x more slowly
    images = tinycnn.tensor(Normalize(SHAPES_MEAN, SHAPES_STD)(ToFloat()(data.images)), dtype=tinycnn.float64)
    labels = tinycnn.tensor(data.labels)
    tinycnn.manual_seed(0)
    default = _plain_net().double()
    he = _plain_net().double()
    rng = np.random.default_rng(20)
    with tinycnn.no_grad():
        for module in he:
            if isinstance(module, nn.Conv2d):
                ex.he_normal_(module.weight, rng)
                module.bias.data[...] = 0.0
    d_first, d_last = _first_last_gradients(default, images, labels)
    h_first, h_last = _first_last_gradients(he, images, labels)
    ratio = h_last / max(h_first, 1e-300)
    outcome = next(name for name, (low, high) in ranges.items() if low <= ratio < high)
    print(f"      gradient norm of the first and last conv: default init {d_first:.2e} / {d_last:.2e} "
          f"(last/first {d_last / max(d_first, 1e-300):.1e}); He init {h_first:.2e} / {h_last:.2e} "
          f"(last/first {ratio:.2g})")
    if guess != outcome:
        raise AssertionError(f"you predicted {guess!r}; with your He initialisation last/first is {ratio:.3g}")


@exercise("9.3", "a block that starts as the identity")
def check_identity_block(ex):
    tinycnn.manual_seed(0)
    block = ex.IdentityStartBlock(4)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != 2 or len(norms) != 2:
        raise AssertionError(f"expected two Conv2d and two BatchNorm2d layers, found {len(convs)} and {len(norms)}")
    rng = np.random.default_rng(21)
    x = tinycnn.tensor(rng.standard_normal((4, 4, 6, 6)).astype(np.float32), requires_grad=True)
    out = block(x)
    close("the block's output at initialisation (should be relu(x))", out.numpy(), np.maximum(x.numpy(), 0),
          rtol=1e-6, atol=1e-6)
    (out * tinycnn.tensor(rng.standard_normal(out.shape).astype(np.float32))).sum().backward()
    gamma_grads = [float(np.abs(m.weight.grad.numpy()).max()) if m.weight.grad is not None else 0.0 for m in norms]
    if max(gamma_grads) == 0:
        raise AssertionError("no batch norm scale got a gradient: is the residual branch part of the output?")
    opt = optim.SGD(block.parameters(), lr=0.1)
    opt.step()
    with tinycnn.no_grad():
        after = block(x).numpy()
    if np.allclose(after, np.maximum(x.numpy(), 0), atol=1e-6):
        raise AssertionError("after one SGD step the block is still exactly relu(x): its branch cannot learn")


# =================================================================================== lesson 10
@exercise("10.1", "random crop and flip")
def check_crop_flip(ex):
    rng = np.random.default_rng(22)
    images = rng.integers(1, 255, (300, 3, 8, 8)).astype(np.uint8)
    original = images.copy()
    out = np.asarray(ex.random_crop_flip(images, 2, np.random.default_rng(23)))
    if not np.array_equal(images, original):
        raise AssertionError("random_crop_flip changed its input")
    if out.shape != images.shape or out.dtype != images.dtype:
        raise AssertionError(f"expected {images.shape} {images.dtype}, got {out.shape} {out.dtype}")
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    seen = set()
    for i in range(len(images)):
        found = [(top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
                 if np.array_equal(out[i], padded[i, :, top:top + 8, left:left + 8][:, :, ::-1 if flip else 1])]
        if not found:
            raise AssertionError(f"image {i} is not a crop (or a mirrored crop) of the padded input")
        seen.add(found[0])
    offsets = {(top, left) for top, left, _ in seen}
    flips = {flip for _, _, flip in seen}
    if len(offsets) < 25 or len(flips) < 2:
        raise AssertionError(f"over 300 images only {len(offsets)} of 25 offsets and flips {sorted(flips)} occurred")


@exercise("10.2", "the step schedule")
def check_step_lr(ex):
    param = nn.Parameter(tinycnn.zeros(1))
    opt = optim.SGD([param], lr=0.1)
    schedule = optim.lr_scheduler.MultiStepLR(opt, milestones=[32000, 48000], gamma=0.1)
    for iteration in range(64001):
        if iteration in (0, 1, 31999, 32000, 32001, 47999, 48000, 64000):
            close(f"step_lr({iteration})", number("step_lr", ex.step_lr(iteration)), opt.param_groups[0]["lr"],
                  rtol=1e-9, atol=0)
        schedule.step()
    close("step_lr(10, base_lr=1.0, milestones=(5, 8), gamma=0.5)",
          number("step_lr", ex.step_lr(10, 1.0, (5, 8), 0.5)), 0.25, rtol=1e-12, atol=0)


# ================================================================================== lesson 10b
@exercise("10b.1", "per-channel normalisation")
def check_normalise(ex):
    rng = np.random.default_rng(24)
    images = np.stack([rng.integers(0, 100, (50, 8, 8)), rng.integers(100, 256, (50, 8, 8))], axis=1).astype(np.uint8)
    normalised, mean, std = ex.normalise_per_channel(images)
    x = images.astype(np.float64) / 255
    close("mean per channel", mean, x.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-9)
    close("std per channel", std, x.std(axis=(0, 2, 3)), rtol=1e-6, atol=1e-9)
    if np.asarray(normalised).dtype != np.float32:
        raise AssertionError(f"the normalised images should be float32, got {np.asarray(normalised).dtype}")
    close("the normalised images", normalised,
          (x - x.mean(axis=(0, 2, 3))[:, None, None]) / x.std(axis=(0, 2, 3))[:, None, None], rtol=1e-5, atol=1e-5)


@exercise("10b.2", "overfit one batch")
def check_overfit(ex):
    from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Normalize, Shapes, ToFloat
    data = Shapes(train=True, n=16, size=16, seed=1)
    images = tinycnn.tensor(Normalize(SHAPES_MEAN, SHAPES_STD)(ToFloat()(data.images)))
    labels = tinycnn.tensor(data.labels)
    tinycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 4 * 4, 6))
    losses = [number("a loss", loss) for loss in ex.overfit_one_batch(model, images, labels, steps=40, lr=1e-2)]
    if len(losses) != 40:
        raise AssertionError(f"expected 40 losses (one per step), got {len(losses)}")
    if not losses[-1] < 0.05:
        raise AssertionError(f"the loss went from {losses[0]:.3f} to {losses[-1]:.3f}; expected below 0.05")
    model.eval()
    with tinycnn.no_grad():
        right = int((model(images).numpy().argmax(axis=1) == data.labels).sum())
    if right != 16:
        raise AssertionError(f"after training, {right} of the 16 images are classified right (in eval mode)")


@exercise("10b.3", "predict: batch norm on one image")
def check_bn_one_image(ex):
    options = ("the same", "different", "error")
    guesses = [predicted(ex, name, options) for name in ("PREDICTED_ONE_IMAGE_TRAIN_MODE",
                                                         "PREDICTED_ONE_VALUE_TRAIN_MODE")]
    tinycnn.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    rng = np.random.default_rng(25)
    for _ in range(50):                                   # training batches set the running statistics
        bn(tinycnn.tensor((rng.standard_normal((16, 4, 8, 8)) * 3 + 2).astype(np.float32)))
    outcomes = []
    for shape in ((1, 4, 8, 8), (1, 4, 1, 1)):
        x = tinycnn.tensor((rng.standard_normal(shape) * 3 + 2).astype(np.float32))
        bn.eval()
        with tinycnn.no_grad():
            evaluated = bn(x).numpy()
        bn.train()
        try:
            with tinycnn.no_grad():
                trained = bn(x).numpy()
            outcomes.append("the same" if np.allclose(trained, evaluated, atol=1e-4) else "different")
        except (ValueError, RuntimeError):
            outcomes.append("error")
    for name, guess, outcome in zip(("(a) one image, 8x8", "(b) one value per channel"), guesses, outcomes):
        if guess != outcome:
            raise AssertionError(f"{name}: you predicted {guess!r}; in train mode the output was {outcome!r}")


# =================================================================================== lesson 11
@exercise("11.1", "a new head, frozen features")
def check_transfer(ex):
    tinycnn.manual_seed(0)
    model = models.lenet5()
    old = {name: p.numpy().copy() for name, p in model.named_parameters()}
    params = ex.prepare_for_transfer(model, 4)
    x = tinycnn.tensor(np.random.default_rng(26).standard_normal((3, 1, 28, 28)).astype(np.float32))
    out = model(x)
    if out.shape != (3, 4):
        raise AssertionError(f"the model's output should be (3, 4) for 4 classes, got {out.shape}")
    frozen = [name for name, p in model.named_parameters() if name.startswith("features.") and p.requires_grad]
    if frozen:
        raise AssertionError(f"these feature weights still require a gradient: {', '.join(frozen)}")
    named = dict(model.named_parameters())
    trainable = sorted(name for name, p in named.items() if any(p is q for q in params))
    expected = sorted(name for name in named if name.startswith("classifier."))
    if trainable != expected:
        raise AssertionError(f"the returned parameters should be the classifier's ({', '.join(expected)}), "
                             f"got {', '.join(trainable) or 'none of the model'}")
    for name in ("classifier.1.weight", "classifier.3.weight"):
        close(f"{name} (a trained layer to keep)", named[name].numpy(), old[name], rtol=0, atol=0)
    opt = optim.SGD(params, lr=0.1)
    F.cross_entropy(out, tinycnn.tensor([0, 1, 3])).backward()
    opt.step()
    close("features.0.weight after a step (frozen)", named["features.0.weight"].numpy(), old["features.0.weight"],
          rtol=0, atol=0)


@exercise("11.2", "two learning rates")
def check_groups(ex):
    tinycnn.manual_seed(0)
    model = models.lenet5()
    groups = ex.finetuning_groups(model, 1e-3, 1e-1)
    opt = optim.SGD(groups, lr=0.5)
    x = tinycnn.tensor(np.random.default_rng(27).standard_normal((4, 1, 28, 28)).astype(np.float32))
    F.cross_entropy(model(x), tinycnn.tensor([0, 1, 2, 3])).backward()
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        lr = 1e-3 if name.startswith("features.") else 1e-1
        close(f"{name} after one step (lr {lr:g})", p.numpy(), before[name] - lr * grads[name], rtol=1e-5, atol=1e-7)


# =================================================================================== lesson 12
def _tiny_classifier(seed=0):
    tinycnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _mean_loss(model, x, labels):
    with tinycnn.no_grad():
        return F.cross_entropy(model(tinycnn.tensor(x)), tinycnn.tensor(labels)).item()


@exercise("12.1", "one FGSM step")
def check_fgsm(ex):
    rng = np.random.default_rng(28)
    model = _tiny_classifier()
    x = rng.uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    pixels = tinycnn.tensor(x, requires_grad=True)
    F.cross_entropy(model(pixels), tinycnn.tensor(labels)).backward()
    expected = np.clip(x + 0.1 * np.sign(pixels.grad.numpy()), 0, 1)
    model.zero_grad()
    got = ex.fgsm(model, x.copy(), labels, 0.1)
    close("the FGSM images (epsilon 0.1)", got, expected, rtol=0, atol=1e-6)
    stale = [name for name, p in model.named_parameters() if p.grad is not None and np.abs(p.grad.numpy()).max() > 0]
    if stale:
        raise AssertionError(f"fgsm left gradients on the model's weights ({', '.join(stale)}): call model.zero_grad()")


@exercise("12.2", "projected gradient descent")
def check_pgd(ex):
    rng = np.random.default_rng(29)
    model = _tiny_classifier(1)
    x = rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    with tinycnn.no_grad():
        labels = model(tinycnn.tensor(x)).numpy().argmax(axis=1)       # attack the model's own answers
    adversarial = np.asarray(ex.pgd(model, x.copy(), labels, epsilon=0.1, step_size=0.025, steps=10))
    if adversarial.shape != x.shape:
        raise AssertionError(f"pgd returned shape {adversarial.shape}, expected {x.shape}")
    change = np.abs(adversarial - x).max()
    if change > 0.1 + 1e-6 or adversarial.min() < 0 or adversarial.max() > 1:
        raise AssertionError(f"the images must stay within 0.1 of x and in [0, 1]: largest change {change:.4f}, "
                             f"range [{adversarial.min():.3f}, {adversarial.max():.3f}]")
    pixels = tinycnn.tensor(x, requires_grad=True)
    F.cross_entropy(model(pixels), tinycnn.tensor(labels)).backward()
    one_step = np.clip(x + 0.1 * np.sign(pixels.grad.numpy()), 0, 1)
    clean, fgsm_loss, pgd_loss = (_mean_loss(model, a, labels) for a in (x, one_step, adversarial))
    if not pgd_loss > max(clean, fgsm_loss):
        raise AssertionError(f"mean loss: clean {clean:.4f}, one FGSM step {fgsm_loss:.4f}, your PGD {pgd_loss:.4f}; "
                             "10 projected steps should raise it more than one step")


# =================================================================================== lesson 13
@exercise("13.1", "saliency")
def check_saliency(ex):
    rng = np.random.default_rng(30)
    tinycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6))
    images = rng.standard_normal((5, 3, 7, 7)).astype(np.float32)
    sal, predicted_classes = ex.saliency(model, images)
    for i in range(len(images)):                     # one image at a time: the reference
        x = tinycnn.tensor(images[i:i + 1], requires_grad=True)
        scores = model(x)
        c = int(scores.numpy().argmax())
        scores[0, c].backward()
        if int(np.asarray(predicted_classes)[i]) != c:
            raise AssertionError(f"image {i}: the model predicts class {c}, you returned {predicted_classes[i]}")
        close(f"saliency of image {i}", np.asarray(sal)[i], np.abs(x.grad.numpy()[0]).max(axis=0), rtol=1e-5, atol=1e-7)
    model.zero_grad()


@exercise("13.2", "Grad-CAM")
def check_grad_cam(ex):
    rng = np.random.default_rng(31)
    tinycnn.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
                             nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    images = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    cam, predicted_classes = ex.grad_cam(features, head, images)
    cam = np.asarray(cam)
    if cam.shape != (4, 4, 4):
        raise AssertionError(f"expected one 4x4 map per image, (4, 4, 4), got {cam.shape}")
    for i in range(len(images)):
        maps = features(tinycnn.tensor(images[i:i + 1]))
        maps.retain_grad()
        scores = head(maps)
        c = int(scores.numpy().argmax())
        scores[0, c].backward()
        alpha = maps.grad.numpy()[0].mean(axis=(1, 2))
        expected = np.maximum(np.tensordot(alpha, maps.numpy()[0], axes=1), 0)
        if int(np.asarray(predicted_classes)[i]) != c:
            raise AssertionError(f"image {i}: the model predicts class {c}, you returned {predicted_classes[i]}")
        close(f"Grad-CAM of image {i}", cam[i], expected, rtol=1e-4, atol=1e-7)


# =================================================================================== lesson 14
@exercise("14.1", "Gaussian blur")
def check_blur(ex):
    rng = np.random.default_rng(32)
    x = rng.uniform(0, 1, (2, 3, 12, 10)).astype(np.float32)
    for sigma in (0.6, 1.6):
        radius = math.ceil(2.5 * sigma)
        t = np.arange(-radius, radius + 1)
        bell = np.exp(-t ** 2 / (2 * sigma ** 2))
        kernel = np.outer(bell, bell) / bell.sum() ** 2
        weight = np.repeat(kernel[None, None], 3, axis=0).astype(np.float32)          # (3, 1, k, k)
        expected = F.conv2d(tinycnn.tensor(x), tinycnn.tensor(weight), padding=radius, groups=3).numpy()
        close(f"the blurred images (sigma {sigma})", ex.gaussian_blur(x, sigma), expected, rtol=1e-4, atol=1e-5)


@exercise("14.2", "predict: dimming a normalised image")
def check_low_light(ex):
    guess = predicted(ex, "PREDICTED_RESPONSE_SCALES_BY_A", (True, False))
    from tinycnn.data import MNIST_MEAN, MNIST_STD
    rng = np.random.default_rng(33)
    pixels = rng.uniform(0, 1, (4, 1, 12, 12)).astype(np.float32)
    tinycnn.manual_seed(0)
    conv = nn.Conv2d(1, 6, 5, bias=False)
    with tinycnn.no_grad():
        def response(images):
            return conv(tinycnn.tensor((images - MNIST_MEAN[0]) / MNIST_STD[0])).numpy()
        original, dimmed = response(pixels), response(0.25 * pixels)
    scales = bool(np.allclose(dimmed, 0.25 * original, rtol=1e-4, atol=1e-5))
    if guess != scales:
        raise AssertionError(f"you predicted {guess}; the largest |response(dimmed) - 0.25 response(original)| is "
                             f"{np.abs(dimmed - 0.25 * original).max():.3g} (normalising subtracts a mean that dimming "
                             "does not shrink)")


# =================================================================================== lesson 15
@exercise("15.1", "combining the shares' gradients")
def check_combine(ex):
    rng = np.random.default_rng(34)
    x, y = rng.standard_normal((10, 5)), rng.integers(0, 3, 10)
    w0 = rng.standard_normal((5, 3))

    def gradient(start, stop):
        w = tinycnn.tensor(w0, dtype=tinycnn.float64, requires_grad=True)
        F.cross_entropy(tinycnn.tensor(x[start:stop], dtype=tinycnn.float64) @ w, tinycnn.tensor(y[start:stop])).backward()
        return w.grad.numpy()
    cuts = [0, 4, 7, 10]                                   # shares of 4, 3 and 3 images
    shares = [gradient(a, b) for a, b in zip(cuts, cuts[1:])]
    close("the combined gradient (shares of 4, 3, 3 images)",
          ex.combine_gradients(shares, [b - a for a, b in zip(cuts, cuts[1:])]), gradient(0, 10),
          rtol=1e-12, atol=1e-14)


@exercise("15.2", "ring all-reduce, step by step")
def check_ring(ex):
    rng = np.random.default_rng(35)
    for ranks in (2, 3, 4):
        vectors = [rng.standard_normal(ranks * 3) for _ in range(ranks)]
        full = np.split(sum(vectors), ranks)
        chunks = [np.split(v.copy(), ranks) for v in vectors]
        holds = [[{r} for _ in range(ranks)] for r in range(ranks)]   # whose values each chunk should sum
        for step in range(ranks - 1):
            ex.reduce_scatter_step(chunks, step)
            sent = [(r, (r - step) % ranks, set(holds[r][(r - step) % ranks])) for r in range(ranks)]
            for r, c, contributors in sent:
                holds[(r + 1) % ranks][c] |= contributors
            for r in range(ranks):
                for c in range(ranks):
                    expected = sum(np.split(vectors[k], ranks)[c] for k in holds[r][c])
                    close(f"{ranks} ranks, after reduce-scatter step {step}: rank {r}'s chunk {c} (the sum of ranks "
                          f"{sorted(holds[r][c])})", chunks[r][c], expected, rtol=1e-12, atol=1e-12)
        for r in range(ranks):
            close(f"{ranks} ranks, after reduce-scatter: rank {r}'s chunk {(r + 1) % ranks} (the full sum)",
                  chunks[r][(r + 1) % ranks], full[(r + 1) % ranks], rtol=1e-12, atol=1e-12)
        for step in range(ranks - 1):
            ex.all_gather_step(chunks, step)
        for r in range(ranks):
            close(f"{ranks} ranks, after all-gather: rank {r}'s vector", np.concatenate(chunks[r]), sum(vectors),
                  rtol=1e-12, atol=1e-12)


# =================================================================================== lesson 16
@exercise("16.1", "the receptive field")
def check_receptive_field(ex):
    stacks = [[(3, 1), (3, 1)], [(3, 1)] * 3, [(1, 1), (3, 1)], [(7, 2), (3, 2)],
              [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)], [(11, 4), (3, 2), (5, 1)]]
    for layers in stacks:
        # the experiment: weights all 1 (poolings as convolutions too), so no contribution cancels
        convs = [nn.Conv2d(1, 1, k, stride=s, bias=False) for k, s in layers]
        for conv in convs:
            conv.weight.data[...] = 1.0
        x = tinycnn.tensor(np.ones((1, 1, 64, 64)), dtype=tinycnn.float64, requires_grad=True)
        out = nn.Sequential(*convs).to(tinycnn.float64)(x)
        out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
        columns = np.flatnonzero(x.grad.numpy()[0, 0].any(axis=0))
        measured = int(columns[-1] - columns[0] + 1)
        got = ex.receptive_field(list(layers))
        if number(f"receptive_field({layers})", got) != measured:
            raise AssertionError(f"layers (kernel, stride) {layers}: one output pixel's gradient reaches {measured} "
                                 f"input pixels across, you returned {got}")


@exercise("16.2", "a depthwise-separable block")
def check_depthwise_separable(ex):
    rng = np.random.default_rng(36)
    block = ex.DepthwiseSeparable(8, 16, stride=2)
    for name, kind in (("depthwise", nn.Conv2d), ("bn1", nn.BatchNorm2d), ("pointwise", nn.Conv2d),
                       ("bn2", nn.BatchNorm2d)):
        if not isinstance(getattr(block, name, None), kind):
            raise AssertionError(f"the block needs an attribute {name}, a {kind.__name__}; "
                                 f"found {type(getattr(block, name, None)).__name__}")
    shapes = {"depthwise.weight": (8, 1, 3, 3), "pointwise.weight": (16, 8, 1, 1)}
    for name, shape in shapes.items():
        got = tuple(dict(block.named_parameters())[name].shape) if name in dict(block.named_parameters()) else None
        if got != shape:
            raise AssertionError(f"{name}: expected shape {shape} (in=8, out=16), got {got}")
    expected_count = 8 * 9 + 8 * 16 + 2 * 8 + 2 * 16     # two convs without bias, two batch norms' scale and shift
    if models.count_parameters(block) != expected_count:
        raise AssertionError(f"expected {expected_count:,} parameters (convs without bias, two batch norms), "
                             f"got {models.count_parameters(block):,}")
    for bn, c in ((block.bn1, 8), (block.bn2, 16)):          # batch norms that do something, in eval mode
        bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
        bn.bias.data[...] = rng.standard_normal(c) * 0.1
        bn.running_mean.data[...] = rng.standard_normal(c) * 0.1
        bn.running_var.data[...] = rng.uniform(0.5, 1.5, c)
    block.eval()
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)

    def batch_norm(y, bn):
        scale = bn.weight.numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
        return (y - bn.running_mean.numpy()[:, None, None]) * scale[:, None, None] + bn.bias.numpy()[:, None, None]
    with tinycnn.no_grad():
        y = F.conv2d(tinycnn.tensor(x), block.depthwise.weight, stride=2, padding=1, groups=8).numpy()
        y = np.maximum(batch_norm(y, block.bn1), 0)
        y = F.conv2d(tinycnn.tensor(y.astype(np.float32)), block.pointwise.weight).numpy()
        expected = np.maximum(batch_norm(y, block.bn2), 0)
        got = block(tinycnn.tensor(x)).numpy()
    close("the block's output (eval mode, stride 2, 8 -> 16 channels, 9x9 input)", got, expected, rtol=1e-4, atol=1e-5)
    macs = models.count_flops(block, (8, 9, 9))
    if macs != 5 * 5 * (8 * 9 + 8 * 16):
        raise AssertionError(f"a 9x9 input at stride 2 gives 5x5 outputs: expected 25 * (8*9 + 8*16) = "
                             f"{5 * 5 * (8 * 9 + 8 * 16):,} multiply-adds, count_flops counts {macs:,}")


@exercise("16.3", "predict: half the width, twice the resolution")
def check_efficientnet_scaling(ex):
    options = {"about 1/4": 0.25, "about 1/2": 0.5, "about 1": 1.0, "about 2": 2.0, "about 4": 4.0}
    guesses = {what: predicted(ex, f"PREDICTED_{what}_RATIO", tuple(options)) for what in ("MACS", "PARAMS")}
    baseline = models.efficientnet_b0(num_classes=10, small_input=True)
    half = models.efficientnet_b0(num_classes=10, width_mult=0.5, small_input=True)
    measured = {"MACS": models.count_flops(half, (3, 64, 64)) / models.count_flops(baseline, (3, 32, 32)),
                "PARAMS": models.count_parameters(half) / models.count_parameters(baseline)}
    for what, ratio in measured.items():
        nearest = min(options, key=lambda option: abs(math.log(options[option] / ratio)))
        if guesses[what] != nearest:
            raise AssertionError(f"you predicted {guesses[what]!r} for the {what.lower()}; the measured ratio is "
                                 f"{ratio:.2f} ({nearest})")


# ================================================================================== the runner
def lesson_key(text: str) -> str:
    """'3' -> '03', '03b' -> '03b', '10B' -> '10b'."""
    match = re.fullmatch(r"0*(\d{1,2})([bB]?)", text.strip())
    if not match:
        raise ValueError(f"expected a lesson number like 03, 3, 03b or 'all', got {text!r}")
    return match.group(1).zfill(2) + match.group(2).lower()


def exercise_file(folder: Path, key: str) -> Path:
    found = sorted(p for p in folder.glob(f"{key}_*.py"))
    if not found:
        raise FileNotFoundError(f"no exercise file {key}_*.py in {folder}")
    return found[0]


def load(path: Path):
    name = "exercises_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_checks(key: str, path: Path, verbose: bool = False) -> bool:
    """Check one exercise file; print one line per exercise; True when all pass."""
    print(f"{path.name}:")
    try:
        module = load(path)
    except Exception as error:   # a syntax error, a failing import: every exercise of the file fails
        print(f"  could not import {path}: {type(error).__name__}: {error}")
        for number_, title, _ in CHECKS[key]:
            print(f"  exercise {number_:<4} {title} ... wrong: the file does not import")
        return False
    all_ok = True
    for number_, title, check in CHECKS[key]:
        start = time.perf_counter()
        tinycnn.manual_seed(0)
        try:
            with np.errstate(all="ignore"):
                check(module)
            verdict = "ok"
        except NotImplementedError as error:
            verdict = "not done yet (NotImplementedError" + (f": {error})" if str(error) else ")")
        except AssertionError as error:   # includes tinycnn.GradcheckError
            verdict = f"wrong: {error}"
        except Exception as error:
            verdict = f"wrong: your code raised {type(error).__name__}: {error}"
            if verbose:
                traceback.print_exc()
        seconds = time.perf_counter() - start
        all_ok &= verdict == "ok"
        timing = f"  ({seconds:.1f}s)" if verbose else ""
        print(f"  exercise {number_:<4} {title} ... {verdict}{timing}", flush=True)
    return all_ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lesson", help="lesson number (03, 3, 03b, 10b) or 'all'")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--file", type=Path, help="check this file instead of lessons/exercises/NN_*.py")
    where.add_argument("--dir", type=Path, default=EXERCISES_DIR, help="folder holding the NN_name.py files")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks and the time of each check")
    args = parser.parse_args(argv)
    try:
        keys = sorted(CHECKS) if args.lesson == "all" else [lesson_key(args.lesson)]
        if args.lesson == "all" and args.file:
            raise ValueError("--file checks one lesson's file: give its number, not 'all'")
        for key in keys:
            if key not in CHECKS:
                raise ValueError(f"lesson {key} has no exercises; those with exercises: {', '.join(sorted(CHECKS))}")
        paths = [args.file if args.file else exercise_file(args.dir, key) for key in keys]
    except (ValueError, FileNotFoundError) as error:
        print(f"check.py: {error}", file=sys.stderr)
        return 2
    results = [run_checks(key, path, args.verbose) for key, path in zip(keys, paths)]
    total = sum(len(CHECKS[k]) for k in keys)
    print(f"\n{'all ' + str(total) + ' exercises pass' if all(results) else 'not all exercises pass yet'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
