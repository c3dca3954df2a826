"""Lesson 7 - Optimizers.

SGD, SGD with momentum, Nesterov momentum and Adam: first as paths across a 2-D valley and
the Rosenbrock banana (tinycnn tensors + tinycnn.optim), then training the same small CNN
on Shapes from the same start. Finally the learning rate: too small, right, too large.
"""

# ---------------------------------------------------------------------------------------
# backward() gives the gradient; the optimizer decides what to do with it. Plain gradient
# descent takes a step of lr * gradient. That is slow in long narrow valleys (it zig-zags
# across and crawls along) - and a loss surface of a network is full of them. Momentum
# and Adam are two answers. We first watch them where we can see everything, on functions
# of two variables, then on a real network.
# ---------------------------------------------------------------------------------------

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
from tinycnn import nn, optim, viz  # noqa: E402
from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Compose, DataLoader, Normalize, Shapes, ToFloat  # noqa: E402
from tinycnn.train import evaluate  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. The update rules (as tinycnn.optim implements them, PyTorch's formulation)
#
#   SGD:        p <- p - lr * g
#   momentum:   v <- mu * v + g;          p <- p - lr * v
#               a running sum of past gradients: directions that agree add up (speed
#               along the valley), directions that flip sign cancel (less zig-zag).
#   Nesterov:   v <- mu * v + g;          p <- p - lr * (g + mu * v)
#               looks one momentum step ahead: brakes earlier before overshooting.
#   Adam:       m <- b1 m + (1-b1) g;     s <- b2 s + (1-b2) g^2   (bias-corrected)
#               p <- p - lr * m / (sqrt(s) + eps)
#               momentum, divided by a running size of each coordinate's gradient: every
#               parameter gets its own step size, about lr, whatever the gradient's scale.
#
# Each rule is a few lines of array code: sgd_update in tinycnn/optim/sgd.py, adam_update
# in tinycnn/optim/adam.py (weight decay included).
# ---------------------------------------------------------------------------------------


def make_optimizer(name, params, lr):
    if name == "SGD":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if name == "Nesterov":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "Adam":
        return optim.Adam(params, lr=lr)
    raise ValueError(name)


# ---------------------------------------------------------------------------------------
# 2. Paths on two toy surfaces
#
# The point (x, y) is a tinycnn tensor with requires_grad=True, the "loss" is a formula
# built from tinycnn ops, and the optimizers are the real ones from tinycnn.optim: the same
# code that trains a CNN, moving two numbers instead of sixty thousand.
#
#   valley:      f = 0.5 * (x^2 + 40 y^2)      - an ill-conditioned bowl: 40 times more
#                                                 curved across (y) than along (x)
#   Rosenbrock:  f = (1 - x)^2 + 100 (y - x^2)^2  - a curved, flat-bottomed banana valley,
#                                                 minimum at (1, 1)
# ---------------------------------------------------------------------------------------
print("1. Optimizer paths on 2-D functions")


def valley(p):
    return 0.5 * (p[0] ** 2 + 40 * p[1] ** 2)


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


problems = {
    # name: (function, start, steps, learning rate per optimizer, plot window, minimum)
    "valley": (valley, (-9.0, 1.5), lesson.pick(quick=50, default=50, full=100),
               {"SGD": 0.01, "momentum": 0.01, "Nesterov": 0.01, "Adam": 0.5}, ((-10, 2), (-2.2, 2.2)), (0.0, 0.0)),
    "Rosenbrock": (rosenbrock, (-1.2, 1.0), lesson.pick(quick=300, default=1000, full=3000),
                   {"SGD": 5e-4, "momentum": 5e-4, "Nesterov": 5e-4, "Adam": 0.05}, ((-2, 2), (-1, 3)), (1.0, 1.0)),
}
paths = {}
for problem, (fn, start, toy_steps, rates, _, minimum) in problems.items():
    for name, lr in rates.items():
        point = tinycnn.tensor(start, dtype=tinycnn.float64, requires_grad=True)
        optimizer = make_optimizer(name, [point], lr)
        path = [point.numpy().copy()]
        for _ in range(toy_steps):
            loss = fn(point)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            path.append(point.numpy().copy())
        paths[problem, name] = np.array(path)
        distance = np.linalg.norm(path[-1] - np.array(minimum))
        print(f"  {problem:<10} {name:<9} lr {lr:<7g} after {toy_steps} steps: f = {fn(path[-1]):.3g}, "
              f"at ({path[-1][0]:+.2f}, {path[-1][1]:+.2f}), distance to the minimum {distance:.3f}")

# The three SGD variants share one learning rate on each surface, so the comparison shows
# what momentum adds; Adam, whose steps have a different scale (about lr per coordinate),
# gets its own. Read the numbers above with figure optimizer_paths.png (each run's end is
# a square). On the valley, plain SGD at lr 0.01 has damped the steep y direction at once
# but crawls along the flat x direction (each step shrinks x by only 1%): after 50 steps
# it is still far from the minimum, with the largest f of the four. Momentum, with the same
# lr, builds up speed along the valley floor, overshoots and swings back; Nesterov's
# look-ahead brakes earlier and swings less. Adam starts along the diagonal (equal-size
# steps in x and y, whatever the gradients) and should end closest.
#
# On Rosenbrock every optimizer quickly drops into the curved valley; the race is along its
# flat floor to (1, 1). Plain SGD's square should sit part-way along the banana, far from
# the star (its dots, every 100 steps, bunch up as the floor gets flatter), while momentum,
# Nesterov and Adam reach the neighbourhood of the minimum: compare the printed f values,
# which differ by orders of magnitude.

fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
colors = {"SGD": "tab:blue", "momentum": "tab:orange", "Nesterov": "tab:green", "Adam": "tab:red"}
for ax, (problem, (fn, start, toy_steps, rates, (xlim, ylim), minimum)) in zip(axes, problems.items()):
    xs, ys = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    zs = fn(np.stack([xs, ys]))
    ax.contour(xs, ys, np.log10(zs + 1e-3), levels=25, cmap="Greys", linewidths=0.7)
    for name in reversed(list(rates)):        # Adam first, so the SGD paths are drawn on top
        path = paths[problem, name]
        # long runs: a dot every tenth of the run, so the speed along the path is visible
        ax.plot(path[:, 0], path[:, 1], ".-", color=colors[name], markersize=3 if toy_steps <= 100 else 6,
                markevery=1 if toy_steps <= 100 else toy_steps // 10, linewidth=1.2,
                label=f"{name} (lr {rates[name]:g})")
        ax.plot(*path[-1], "s", color=colors[name], markersize=9, markeredgecolor="black")   # where it ended
    ax.plot(*start, "ko", markersize=6)
    ax.plot(*minimum, "k*", markersize=14)
    ax.set(xlim=xlim, ylim=ylim, title=f"{problem}: {toy_steps} steps from o towards the minimum *\n"
                                        f"(squares: where each run ended"
                                        f"{'' if toy_steps <= 100 else f'; dots every {toy_steps // 10} steps'})",
           xlabel="x", ylabel="y")
    ax.legend(fontsize=8, loc="lower right" if problem == "valley" else "upper right")
fig.suptitle("Optimizer paths (contours: log f)")
fig.savefig(lesson.figure("optimizer_paths.png"))
plt.close(fig)

# ---------------------------------------------------------------------------------------
# 3. The same race on a CNN
#
# Now a real network: a small CNN like lesson 5's (two conv-BN-ReLU-pool blocks and a
# linear layer) on Shapes images drawn at 16x16 pixels, so that the seven training runs of
# this lesson fit in a couple of minutes on a CPU. To make the comparison fair, every run
# starts from the *same* initial weights (one state_dict, loaded into a fresh model each
# time) and sees the *same* batches in the same order (a loader with a fixed seed). Only
# the optimizer differs. As on the valley, SGD, momentum and Nesterov share lr = 0.01;
# Adam uses its usual lr = 1e-3.
# ---------------------------------------------------------------------------------------
steps = lesson.pick(quick=12, default=300, full=1500)
batch_size = lesson.pick(quick=16, default=32, full=64)
n_train = lesson.pick(quick=192, default=batch_size * steps, full=10000)
train_set = Shapes(train=True, n=n_train, size=16, seed=lesson.args.seed)
test_set = Shapes(train=False, n=lesson.pick(quick=120, default=1000, full=2000), size=16, seed=lesson.args.seed)
prepare = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
test_loader = DataLoader(test_set, batch_size=250, transform=prepare, device=lesson.device)
print(f"\n2. A small CNN on 16x16 Shapes: {steps} steps of batch {batch_size} per run "
      f"({steps * batch_size / n_train:.1f} epoch(s) of {n_train} images)")


def make_net():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),     # 16 -> 8
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),    # 8 -> 4
        nn.Flatten(), nn.Linear(32 * 4 * 4, 6))


tinycnn.manual_seed(lesson.args.seed)
initial_state = make_net().state_dict()


def train_run(name, lr):
    """Train from the shared start for `steps` steps; returns (per-step losses, test accuracy, seconds)."""
    model = make_net()
    model.load_state_dict(initial_state)
    model.to(lesson.device)
    optimizer = make_optimizer(name, model.parameters(), lr)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=1234, transform=prepare,
                        device=lesson.device)
    loss_fn = nn.CrossEntropyLoss()
    losses, start = [], time.perf_counter()
    while len(losses) < steps:
        for images, labels in loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps or not np.isfinite(losses[-1]):
                break
        if not np.isfinite(losses[-1]):
            break
    accuracy = evaluate(model, test_loader)["accuracy"] if np.isfinite(losses[-1]) else float("nan")
    return np.array(losses), accuracy, time.perf_counter() - start


def smooth(values, window=None):
    """Moving average of the per-step losses (a single batch's loss is noisy)."""
    window = window or max(1, min(20, len(values) // 10))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


runs = {}
for name, lr in [("SGD", 0.01), ("momentum", 0.01), ("Nesterov", 0.01), ("Adam", 1e-3)]:
    losses, accuracy, seconds = train_run(name, lr)
    runs[name, lr] = (losses, accuracy)
    tail = losses[-max(1, steps // 10):].mean()
    print(f"  {name:<9} lr {lr:<6g} loss: first step {losses[0]:.3f}, mean of the last 10% of steps {tail:.3f}; "
          f"test accuracy {100 * accuracy:.1f}%  ({seconds:.0f}s)")
viz.plot_curves({f"{name} (lr {lr:g})": smooth(losses) for (name, lr), (losses, _) in runs.items()},
                lesson.figure("optimizers_loss.png"), xlabel="step", ylabel="training loss (moving average)",
                title="Small CNN on 16x16 Shapes: same start, same batches, four optimizers")

# In the numbers above (and optimizers_loss.png) all four start at about log(6) = 1.79,
# the loss of guessing uniformly among 6 classes. Plain SGD at lr 0.01 should make the
# slowest progress (the highest final loss, the lowest accuracy). Momentum, with the same
# lr, should be clearly faster: along consistent directions its steps add up to
# lr / (1 - 0.9) = 10 lr. Nesterov is usually a little better still. Adam moves every
# weight by about lr per step regardless of its gradient's scale, so it needs no tuning
# of the rate to the size of the gradients - which is why it is the forgiving default for
# a new problem, while well-tuned SGD with momentum (lesson 6) remains the classic choice
# for the last percent on image data. (With a few hundred steps the test accuracies are
# still far from lesson 5's; the ordering of the runs is the point here, and with one
# seed and 1,000 test images, differences of a few points between the better three are
# within noise.)

# ---------------------------------------------------------------------------------------
# 4. The learning rate: too small, right, too large
#
# The one setting that matters most. Plain SGD with lr 1e-4, 1e-2, 1e-1 and 10:
#   * too small: every step is tiny; the loss hardly moves in the steps we can afford;
#   * about right: steady progress - and in this range, larger is faster;
#   * too large: each step overshoots the valley it is in and lands higher on the other
#     side, where the gradient is larger still: the loss explodes. The weights it leaves
#     behind are huge; with ReLUs most units end up always off ("dead"), and the network
#     never recovers. Push further and the numbers overflow to inf, then nan.
# ---------------------------------------------------------------------------------------
print("\n3. Learning rates for plain SGD")
lr_runs = {0.01: runs["SGD", 0.01]}
for lr in (1e-4, 0.1, 10.0):
    with np.errstate(all="ignore"):           # a diverging run may overflow; NumPy would warn
        losses, accuracy, _ = train_run("SGD", lr)
    lr_runs[lr] = (losses, accuracy)
for lr in sorted(lr_runs):
    losses, accuracy = lr_runs[lr]
    finite = np.isfinite(losses)
    tail = losses[-max(1, steps // 10):].mean()
    if not finite.all():
        first_bad = int(np.argmin(finite))
        print(f"  lr {lr:<6g} diverged: loss {losses[0]:.3f}, then up to {np.nanmax(losses[finite]):.3g}, "
              f"and {losses[first_bad]} at step {first_bad}: training stopped there")
    else:
        peak = losses.max()
        print(f"  lr {lr:<6g} loss {losses[0]:.3f} -> {tail:.3f} (mean of the last 10%), highest {peak:.3g}; "
              f"test accuracy {100 * accuracy:.1f}%")
curves = {}
for lr in sorted(lr_runs):
    losses = lr_runs[lr][0]
    # clip at 10 (and draw inf/nan there too), or the explosion would flatten the other curves
    curves[f"SGD lr {lr:g}"] = smooth(np.where(np.isfinite(losses), np.minimum(losses, 10.0), 10.0))
viz.plot_curves(curves, lesson.figure("learning_rates.png"), xlabel="step",
                ylabel="training loss (moving average; above 10 drawn at 10)", logy=True,
                title="Too small (flat), right (falling), too large (explodes at once, then dead)")

# The printout above tells the story. At 1e-4 the loss should still be near the 1.79 of
# guessing after all the steps: nothing learned. At 1e-2 it falls slowly, at 1e-1 faster
# (despite a bump early on: see its "highest") - the best of the four. At 10 the loss
# jumps within the first few steps to an astronomical value (its "highest"), then comes
# back down - but only to about the loss of guessing or above, and stays there, with
# chance accuracy on the test set (1 in 6). In learning_rates.png its curve starts at the
# clip (10), falls in the first few dozen steps and then runs flat above all the others:
# it does not diverge forever, it is dead. The one huge step threw the weights so far
# that most ReLUs are off for every input and the network outputs about the same scores
# whatever it sees; no gradient can bring those units back.
# When a loss explodes or goes nan, the first suspect is the learning rate (the second,
# lesson 4's naive softmax).
#
# A good rate sits just below the edge of divergence. Schedules make that practical:
# a short warm-up at a small rate, a large rate while far from any minimum, a small one to
# settle at the end - the one-cycle schedule of lesson 5 and the cosine of lesson 6.
#
# What to remember
#   * Momentum accumulates consistent gradient directions and damps oscillating ones.
#   * Adam adapts a step size per parameter: robust to gradient scale, a good default.
#   * Compare optimizers from the same initial weights on the same batches.
#   * The learning rate is the first thing to tune: too small wastes time, too large
#     diverges to nan.

print(f"\nThe lesson took {time.perf_counter() - started:.0f}s.")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/optim/sgd.py           sgd_update: plain, momentum and Nesterov, weight decay
#   tinycnn/optim/adam.py          adam_update: the two running averages, bias correction, eps
#   tinycnn/optim/optimizer.py     what every optimizer shares: param groups, zero_grad, state
#   tinycnn/optim/lr_scheduler.py  the schedules that keep the rate just below divergence
#   tinycnn/tensor.py              the two-number "loss" of section 2 is a graph like any other
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. With momentum 0.9, how large does a step become along a direction whose gradient
#      stays the same, compared with plain SGD at the same lr?
#   2. Why does plain SGD crawl along the valley's x direction but not along y?
#   3. Why does Adam's first path on the valley run along the diagonal?
#   4. After lr = 10 the loss comes back down, but only to about log(6) or above, and stays
#      there. Why is the network not learning any more?
#
# Answers (try first)
#   1. The velocity sums g + 0.9 g + 0.81 g + ... = g / (1 - 0.9) = 10 g: ten times the step.
#   2. The step is lr times the gradient; along x the curvature is 1, so x shrinks by
#      1 - lr = 0.99 per step; along y it is 40, so y shrinks by 1 - 40 lr = 0.6 per step.
#   3. At the start m / sqrt(s) is about sign(g) for each coordinate: both coordinates move
#      by about lr, whatever their gradients' sizes.
#   4. The huge first steps threw the weights so far that most ReLUs are off for every
#      input: those units pass no gradient, and the output no longer depends on the image,
#      so it can do no better than guessing (a loss at or above log 6, chance accuracy).
#
# Exercises: lessons/exercises/07_optimizers.py — check your work with: python lessons/check.py 07
