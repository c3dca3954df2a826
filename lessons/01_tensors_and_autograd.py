"""Lesson 1 - Tensors and autograd.

A tensor is an array that remembers how it was computed. We build a tiny neuron by hand,
walk the graph it records, run backward() and check every gradient against finite
differences; then gradient accumulation, retain_graph and no_grad().
"""

# ---------------------------------------------------------------------------------------
# Everything a neural network learns, it learns by gradient descent: nudge each weight a
# little against the derivative of the loss with respect to that weight. A CNN has tens of
# thousands of weights, so we need those derivatives automatically, exactly, and fast.
# That machinery is *reverse-mode automatic differentiation* (autograd), and it is the
# first thing tinycnn builds. This lesson uses it the way you would use PyTorch's.
# ---------------------------------------------------------------------------------------

import numpy as np

import tinycnn
from tinycnn import viz
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__)

# ---------------------------------------------------------------------------------------
# 1. A tensor is an array
#
# `tinycnn.tensor` wraps a NumPy array (a CuPy array on a GPU) in `.data`. Floating data
# becomes float32, the type networks train in; integers stay integers (class labels).
# Arithmetic works elementwise and broadcasts exactly like NumPy.
# ---------------------------------------------------------------------------------------
print("1. Tensors")
a = tinycnn.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
b = tinycnn.tensor([10.0, 20.0, 30.0])
labels = tinycnn.tensor([3, 1, 4])
print(f"a: shape {a.shape}, dtype {a.dtype};  labels: dtype {labels.dtype}")
print("a + b (b is broadcast over the rows):\n", a + b)
print("a @ b (matrix times vector):", a @ b)
print("a.sum(axis=0):", a.sum(axis=0), "  a.mean():", a.mean().item())

# ---------------------------------------------------------------------------------------
# 2. A graph, recorded as we compute
#
# Ask a tensor to track gradients with `requires_grad=True`. Every operation applied to it
# is then recorded: the result remembers the Function that made it (`grad_fn`) and that
# Function remembers its inputs. Here is one neuron with two inputs, a tanh activation
# and a squared-error loss against the target t:
#
#     z = w1*x1 + w2*x2 + b        y = tanh(z)        L = (y - t)^2
#
# The inputs x and the target t are data (no gradient wanted); w and b are the weights.
# ---------------------------------------------------------------------------------------
print("\n2. A neuron, recorded as a graph")
x = tinycnn.tensor([0.5, -1.5])
t = 0.8
w = tinycnn.tensor([0.3, -0.2], requires_grad=True)
b = tinycnn.tensor(0.1, requires_grad=True)

wx = w * x              # elementwise: (w1*x1, w2*x2)
s = wx.sum()
z = s + b
y = z.tanh()
err = y - t
loss = err ** 2
print(f"z = {z.item():.6f}   y = tanh(z) = {y.item():.6f}   L = (y - t)^2 = {loss.item():.6f}")
print("loss ->", loss)


# Nothing mysterious is stored: follow `grad_fn` and each Function's `inputs` from the loss
# back to the leaves, and you have walked the whole graph. Leaves are the tensors we made
# ourselves (`is_leaf`); a leaf with requires_grad=True is where gradients are collected.
def show_graph(tensor, names, depth=0, shown=None):
    """Print the graph that ends at `tensor`, one node per line, inputs indented; a node
    reached a second time (a tensor used twice) is named, not printed again."""
    shown = set() if shown is None else shown
    pad = "    " * depth
    name = names.get(id(tensor), "")
    if id(tensor) in shown and tensor.grad_fn is not None:
        print(f"{pad}{name or 'tensor'}  <- the same node again (its graph is printed above)")
        return
    shown.add(id(tensor))
    if tensor.grad_fn is None:
        kind = "leaf, requires_grad" if tensor.requires_grad else "constant"
        print(f"{pad}{name or 'tensor'} ({kind}) shape {tensor.shape}")
        return
    print(f"{pad}{name or 'tensor'} = {type(tensor.grad_fn).__name__}(...)  shape {tensor.shape}")
    for inp in tensor.grad_fn.inputs:
        if isinstance(inp, tinycnn.Tensor):
            show_graph(inp, names, depth + 1, shown)
        elif isinstance(inp, (int, float)) and not isinstance(inp, bool):
            print(f"{pad}    {inp!r} (a Python number: a constant)")
        # other arguments (an axis, a flag) are settings of the op, not part of the graph


show_graph(loss, {id(loss): "L", id(err): "err", id(y): "y", id(z): "z", id(s): "s", id(wx): "wx",
                  id(w): "w", id(b): "b", id(x): "x"})

# The printout above reads bottom-up like the formula: wx = Mul(w, x), s = Sum(wx),
# z = Add(s, b), y = Tanh(z), err = Sub(y, 0.8), L = Pow(err, 2). Its leaves are w, b
# (weights: gradients wanted) and x, 0.8, 2 (constants: the backward pass will not waste
# work on them).
#
# This neuron happens to print as a tree, because every tensor is used once. In general
# the graph is a DAG (a directed acyclic graph): a tensor used twice has two arrows leaving
# it, and backward() must add up the gradient arriving along each. Here y = tanh(z) feeds
# both factors of y * y, and the walk reaches y twice:
y_twice = y * y
show_graph(y_twice, {id(y_twice): "y*y", id(y): "y", id(z): "z", id(s): "s", id(wx): "wx",
                     id(w): "w", id(b): "b", id(x): "x"})
# y is one node with two arrows into Mul. backward() visits it once, after adding the two
# gradients that arrive (y and y: 2y in all) - section 3 explains the order that makes
# this possible.

# ---------------------------------------------------------------------------------------
# 3. backward(): the chain rule, run in reverse
#
# `loss.backward()` sorts the graph so every tensor comes after everything computed from
# it, then walks it once from L back to the leaves. Each Function turns "dL/d(my output)"
# into "dL/d(my inputs)" - that is all the chain rule asks. The leaves' gradients land in
# `.grad`.
#
# By hand, for this neuron:
#     dL/dy = 2 (y - t)      dy/dz = 1 - tanh(z)^2 = 1 - y^2      dz/dwi = xi,  dz/db = 1
# so  dL/dwi = 2 (y - t) (1 - y^2) xi   and   dL/db = 2 (y - t) (1 - y^2).
# ---------------------------------------------------------------------------------------
print("\n3. backward()")
loss.backward()
y_value = y.item()
dL_dz = 2 * (y_value - t) * (1 - y_value ** 2)
print(f"autograd:  dL/dw = {w.grad.numpy()},  dL/db = {b.grad.item():.6f}")
print(f"by hand:   dL/dw = {dL_dz * x.numpy()},  dL/db = {dL_dz:.6f}")

# ---------------------------------------------------------------------------------------
# 4. Checking with finite differences
#
# The definition of a derivative gives an independent check that needs no calculus at all:
# nudge one weight by a small h both ways and see how the loss moves,
#
#     dL/dw  ~  (L(w + h) - L(w - h)) / (2h)        (central differences; error ~ h^2)
#
# We compute it in float64 (float32 has only ~7 significant digits: subtracting two nearly
# equal losses would cancel most of them - section 7 shows how badly).
# ---------------------------------------------------------------------------------------
print("\n4. Finite differences")


def neuron_loss(w_values, b_value):
    """The same neuron, in float64, on plain numbers (no graph needed)."""
    z = float(np.dot(w_values, x.numpy().astype(np.float64))) + b_value
    return (np.tanh(z) - t) ** 2


h = 1e-6
w0, b0 = w.numpy().astype(np.float64), float(b.item())
numeric_w = []
for i in range(len(w0)):
    bump = np.zeros_like(w0)
    bump[i] = h
    numeric_w.append((neuron_loss(w0 + bump, b0) - neuron_loss(w0 - bump, b0)) / (2 * h))
numeric_b = (neuron_loss(w0, b0 + h) - neuron_loss(w0, b0 - h)) / (2 * h)

print(f"{'gradient':<10}{'autograd':>14}{'finite diff.':>14}{'|difference|':>14}")
for name, auto, numeric in [("dL/dw1", w.grad.numpy()[0], numeric_w[0]),
                            ("dL/dw2", w.grad.numpy()[1], numeric_w[1]),
                            ("dL/db", b.grad.item(), numeric_b)]:
    print(f"{name:<10}{auto:>14.7f}{numeric:>14.7f}{abs(auto - numeric):>14.2e}")

# Look at the last column: the differences are around 1e-8, the float32 rounding of
# autograd's result (float32 keeps ~7 digits of numbers near 0.5), not a mistake. A wrong
# formula would miss by something like the gradient itself. Lesson 2 turns this check into a tool, `tinycnn.gradcheck`, and runs it on
# every layer of the library.

# ---------------------------------------------------------------------------------------
# 5. Gradients accumulate
#
# backward() *adds* into `.grad`; it never overwrites. That is what you want when a weight
# is used in several places (the contributions must be summed), and it is why every
# training loop calls `optimizer.zero_grad()` before `loss.backward()`. Forget it, and the
# second step uses the sum of two batches' gradients.
# ---------------------------------------------------------------------------------------
print("\n5. Accumulation")
print(f"after one backward:              w.grad = {w.grad.numpy()}")
loss_again = (((w * x).sum() + b).tanh() - t) ** 2   # a fresh graph, same numbers
loss_again.backward()
print(f"after a second backward (added): w.grad = {w.grad.numpy()}   (exactly twice)")
w.grad = None                                         # what zero_grad() does
b.grad = None

# A graph can be walked only once: backward() frees the arrays each Function saved for it
# (a CNN's saved activations are most of its memory). Walking it again is an error, unless
# the first call asked to keep them with retain_graph=True.
try:
    loss_again.backward()
except RuntimeError as error:
    print(f"backward() twice on one graph -> RuntimeError: {error}")

# With retain_graph=True the saved arrays stay, and a second walk works (and, again, adds):
loss_kept = (((w * x).sum() + b).tanh() - t) ** 2
loss_kept.backward(retain_graph=True)
first = w.grad.numpy().copy()
loss_kept.backward()                                  # the last walk may free the arrays
print(f"retain_graph=True: first walk w.grad = {first}, after the second {w.grad.numpy()} (twice again)")
w.grad = None
b.grad = None

# ---------------------------------------------------------------------------------------
# 6. no_grad(): computing without recording
#
# Evaluation and the weight update itself need no graph. Inside `tinycnn.no_grad()` ops
# record nothing: no grad_fn, no saved arrays, less memory and time. `detach()` does the
# same for one tensor: same numbers, cut from the graph.
# ---------------------------------------------------------------------------------------
print("\n6. no_grad()")
with tinycnn.no_grad():
    y_eval = ((w * x).sum() + b).tanh()
print(f"inside no_grad:  requires_grad={y_eval.requires_grad}, grad_fn={y_eval.grad_fn}")
y_train = ((w * x).sum() + b).tanh()
print(f"outside:         requires_grad={y_train.requires_grad}, grad_fn={y_train.grad_fn}")
print(f"detached:        requires_grad={y_train.detach().requires_grad}")

# One step of gradient descent by hand, the update under no_grad (an optimizer does
# exactly this for every parameter): the loss goes down.
learning_rate = 0.5
for step in range(3):
    loss = ((((w * x).sum() + b).tanh() - t) ** 2)
    w.grad = b.grad = None
    loss.backward()
    with tinycnn.no_grad():
        w.data -= learning_rate * w.grad.data     # in place: w stays the same leaf tensor
        b.data -= learning_rate * b.grad.data
    print(f"step {step}: loss {loss.item():.6f}")

# The loss printed above falls at every step (by a lot at the first, less after): the
# neuron's output moves towards the target 0.8. Every training loop in these lessons is this loop, with an
# optimizer doing the update and a CNN in place of the neuron.

# ---------------------------------------------------------------------------------------
# 7. A function and its derivative, along a line
#
# Autograd works on whole arrays at once. Take f(u) = u * tanh(u - 1) * exp(-u^2 / 8) at
# many points u; each f(u_i) depends only on u_i, so the gradient of sum_i f(u_i) with
# respect to u_i is just f'(u_i). One backward() gives the whole derivative curve, which
# we draw beside the finite-difference one (figure derivative.png: the finite differences
# are dots, which should sit on the autograd line; the printed maximum difference says how
# close - far below what the eye can see).
# ---------------------------------------------------------------------------------------
print("\n7. f and f' along a line")
n_points = lesson.pick(quick=101, default=401, full=2001)


def f(u):
    """Works on tinycnn tensors (recording a graph) and on NumPy arrays alike."""
    if isinstance(u, tinycnn.Tensor):
        return u * (u - 1).tanh() * (-(u ** 2) / 8).exp()
    return u * np.tanh(u - 1) * np.exp(-u ** 2 / 8)


def f_prime_exact(u):
    """The product rule, by hand: (a b c)' = a' b c + a b' c + a b c'."""
    th, e = np.tanh(u - 1), np.exp(-u ** 2 / 8)
    return th * e + u * (1 - th ** 2) * e + u * th * e * (-u / 4)


u = tinycnn.linspace(-6.0, 6.0, n_points, dtype=tinycnn.float64, requires_grad=True)
f(u).sum().backward()
u_np = u.numpy()
auto_derivative = u.grad.numpy()
fd_derivative = (f(u_np + 1e-6) - f(u_np - 1e-6)) / 2e-6
print(f"{n_points} points in [-6, 6], float64: max |autograd - exact| = "
      f"{np.abs(auto_derivative - f_prime_exact(u_np)).max():.1e}, "
      f"max |autograd - finite difference| = {np.abs(auto_derivative - fd_derivative).max():.1e}")
fd_name = "f'(u), finite differences (dots)"
viz.plot_curves({"f(u)": (u_np, f(u_np)),
                 "f'(u), autograd": (u_np, auto_derivative),
                 fd_name: (u_np[::max(1, n_points // 50)], fd_derivative[::max(1, n_points // 50)])},
                lesson.figure("derivative.png"), xlabel="u", ylabel="value",
                title="f(u) = u tanh(u-1) exp(-u²/8) and its derivative",
                styles={"f(u)": {"color": "0.6", "linestyle": "--"},
                        "f'(u), autograd": {"linewidth": 2.5},
                        fd_name: {"linestyle": "none", "marker": "o", "markersize": 5, "color": "black"}})

# ---------------------------------------------------------------------------------------
# 8. How small should h be?
#
# Finite differences have two errors pulling opposite ways. The *truncation* error of
# central differences shrinks like h^2. The *rounding* error grows like (machine epsilon)
# / h: f(u+h) and f(u-h) agree in most digits, and subtracting them leaves only the
# noise. Below, the error of the finite-difference derivative at u = 1.5, in float32 and in
# float64, for h from 1e-1 down to 1e-12 (figure finite_difference_error.png).
# ---------------------------------------------------------------------------------------
print("\n8. Finite-difference error against the step h (at u = 1.5)")
u1 = 1.5
exact = float(f_prime_exact(u1))
steps = np.logspace(-1, -12, 45)
errors = {}
for dtype in (np.float32, np.float64):
    errs = []
    for step in steps:
        hi, lo = dtype(u1) + dtype(step), dtype(u1) - dtype(step)
        approx = (f(np.array(hi, dtype)) - f(np.array(lo, dtype))) / (hi - lo) if hi != lo else np.nan
        errs.append(abs(float(approx) - exact) if np.isfinite(approx) else np.nan)
    errors[dtype.__name__] = np.array(errs)
for name, errs in errors.items():
    best = np.nanargmin(errs)
    print(f"{name}: smallest error {errs[best]:.1e} at h = {steps[best]:.0e}; "
          f"at h = 1e-6 the error is {errs[np.argmin(np.abs(steps - 1e-6))]:.1e}")
viz.plot_curves({name: (steps, np.maximum(errs, 1e-17)) for name, errs in errors.items()},
                lesson.figure("finite_difference_error.png"), xlabel="step h",
                ylabel="|finite difference - exact derivative|", logy=True, logx=True,
                title="Rounding error (small h, left) vs truncation error (large h, right)")

# The V shape of the figure is the whole story: rounding error on the left (tiny h),
# truncation error on the right (large h). Compare the two printed lines: float32's best error is only a few
# millionths, at a large step near 1e-2, and at h = 1e-6 its error is a sizeable fraction
# of the derivative itself (which is about 1 here): useless for checking a gradient. In
# float64 the bottom of the V lies near h = 1e-6, with an error around 1e-11 - some 11
# correct digits. That is why gradient checking (lesson 2) runs in float64 with h = 1e-6. (The float32 curve stops near h = 1e-7: below that,
# 1.5 + h rounds back to 1.5 in float32, and the difference quotient is 0/0.)
#
# (The float64 curve is jagged on the rounding side because rounding errors are
# pseudo-random; on the truncation side it is a straight line of slope 2 - the h^2.)
#
# What to remember
#   * A tensor with requires_grad=True records every op applied to it: grad_fn -> inputs.
#   * backward() applies the chain rule once, in reverse, and *adds* into leaf .grad.
#   * Check gradients with central differences, in float64.
#   * Use no_grad() whenever you don't need gradients.

lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/tensor.py           Tensor, requires_grad, grad_fn, backward() (the topological
#                               sort and the reverse walk), no_grad, detach, retain_graph
#   tinycnn/functional/math.py  the Functions in the graph above (Mul, Sum, Add, Tanh, Pow, ...),
#                               each backward beside its forward, broadcasting-aware
#   tinycnn/gradcheck.py        the finite-difference check of section 4, as a tool (lesson 2)
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Why does backward() add into .grad instead of overwriting it?
#   2. In section 2's y * y, what gradient reaches y, and how does the engine get it?
#   3. Why do gradient checks run in float64 with h around 1e-6, not float32?
#   4. What do no_grad() and detach() each save, and when would you use each?
#
# Answers (try first)
#   1. A tensor used in several places must receive the sum of the gradients from each use
#      (the multivariable chain rule); adding is what makes that work. The price: a training
#      loop must zero the gradients before each backward, or batches pile up.
#   2. d(y^2)/dy = 2y: the Mul's backward sends y (the other factor) along each of its two
#      input edges, and both land on y and are added before y passes its gradient on to z.
#      The topological order guarantees y is processed only after all its users.
#   3. Central differences subtract two nearly equal numbers; the rounding error grows like
#      machine epsilon / h. float32's epsilon (~1e-7) leaves almost no correct digits at
#      h = 1e-6; float64's (~1e-16) leaves about 11 (section 8's figure and printout).
#   4. no_grad() records no graph for a whole block (evaluation, the optimizer's update):
#      no saved arrays, less memory and time. detach() returns one tensor cut from the
#      graph (same numbers), e.g. to log a value or to stop gradients flowing into a part.
#
# Exercises: lessons/exercises/01_tensors_and_autograd.py — check your work with: python lessons/check.py 01
