"""Lesson 12 - Adversarial examples.

A change of every pixel by a tenth of its range - faint static to us - makes a 97-99%
accurate LeNet-5 misread a third of the digits, often confidently. The fast gradient sign
method (FGSM) finds such changes with one gradient: accuracy against the size of the
change, random noise of the same size for comparison, pictures of fooled digits, and a
first defence (adversarial training).
"""

# ---------------------------------------------------------------------------------------
# Training follows the gradient of the loss with respect to the *weights*, downhill, to
# make the network right. Nothing stops us from taking the gradient with respect to the
# *input image* and walking uphill, to make it wrong. Szegedy et al. (2014) found that tiny,
# carefully chosen changes fool neural networks; Goodfellow, Shlens & Szegedy (2015)
# explained why and gave the one-step recipe used here. This lesson needs MNIST
# (--data-dir DIR with mnist/ in it, or --download).
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import functional as F
from tinycnn import models, optim, viz
from tinycnn.data import MNIST, MNIST_MEAN, MNIST_STD, Compose, DataLoader, Normalize, Subset, ToFloat
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__, needs_data=True, uses_lenet5=True)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. A trained network
#
# Lesson 6's LeNet-5 if its weights are found (and good); otherwise (or with --lenet5
# train) one epoch of training here, which reaches about 97-98%. What follows holds for both.
# ---------------------------------------------------------------------------------------
prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])
mnist_train = lesson.dataset(MNIST, train=True)
mnist_test = lesson.dataset(MNIST, train=False)

model = lesson.mnist_lenet5()

# ---------------------------------------------------------------------------------------
# 2. The gradient with respect to the image
#
# We attack in *pixel* units, so that a change of 0.1 means "10% of the way from black to
# white". The network was trained on normalised images, (pixel - mean) / std; we do that
# step on a Tensor, inside the graph, so the gradient flows back to the pixels. The image
# is made a Tensor with requires_grad=True, and after backward its `.grad` holds
# d loss / d pixel for every pixel. (The weights get gradients too; we throw them away.)
# ---------------------------------------------------------------------------------------
MEAN, STD = MNIST_MEAN[0], MNIST_STD[0]


def logits_of(net, pixels):
    """The network's scores for a Tensor of images with pixels in [0, 1]."""
    return net((pixels - MEAN) / STD)


def input_gradient(net, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d loss / d pixels for a batch: float (N, 1, 28, 28) -> same shape."""
    x = tinycnn.tensor(pixels, requires_grad=True, device=lesson.device)
    loss = F.cross_entropy(logits_of(net, x), tinycnn.tensor(labels, device=lesson.device))
    loss.backward()
    net.zero_grad()
    return x.grad.numpy()


# ---------------------------------------------------------------------------------------
# 3. The fast gradient sign method
#
#     x_adv = clip(x + epsilon * sign(d loss / d x), 0, 1)
#
# Move *every* pixel by the same small amount epsilon, each in the direction that raises
# the loss. Why so effective: the score of a class is (roughly) a sum of weight x pixel
# over 784 pixels. Nudging each pixel by epsilon in the sign of its weight changes that sum
# by epsilon * sum|w| - the small changes all add up, none cancels. In high dimension, a
# change that is tiny per pixel is big in total. (The clip keeps a valid image.)
# ---------------------------------------------------------------------------------------


def fgsm(net, pixels: np.ndarray, labels: np.ndarray, epsilon: float) -> np.ndarray:
    return np.clip(pixels + epsilon * np.sign(input_gradient(net, pixels, labels)), 0.0, 1.0).astype(np.float32)


def random_signs(pixels: np.ndarray, epsilon: float, rng) -> np.ndarray:
    """The same size of change, in random directions: +-epsilon per pixel."""
    return np.clip(pixels + epsilon * rng.choice([-1.0, 1.0], size=pixels.shape), 0.0, 1.0).astype(np.float32)


def predict(net, pixels: np.ndarray) -> tuple:
    """(predicted classes, their probabilities) for float pixels in [0, 1]."""
    with tinycnn.no_grad():
        probs = F.softmax(logits_of(net, tinycnn.tensor(pixels, device=lesson.device)), dim=1).numpy()
    return probs.argmax(axis=1), probs.max(axis=1)


n_test = lesson.pick(quick=200, default=2000, full=10000)
test_pixels = mnist_test.images[:n_test].astype(np.float32) / 255
test_labels = mnist_test.labels[:n_test]
epsilons = lesson.pick(quick=[0.0, 0.1, 0.25], default=[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
                       full=[0.0, 0.02, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3])


def accuracy_under_attack(net, attack, epsilon: float, batch: int = 500) -> float:
    correct = 0
    for start in range(0, n_test, batch):
        x, y = test_pixels[start:start + batch], test_labels[start:start + batch]
        correct += int((predict(net, attack(net, x, y, epsilon))[0] == y).sum())
    return correct / n_test


rng = np.random.default_rng(lesson.args.seed)
fgsm_accuracy = [accuracy_under_attack(model, fgsm, eps) for eps in epsilons]
noise_accuracy = [accuracy_under_attack(model, lambda net, x, y, eps: random_signs(x, eps, rng), eps)
                  for eps in epsilons]
print(f"\naccuracy on {n_test:,} test digits when every pixel may change by epsilon:")
print(f"{'epsilon':>8} {'FGSM':>8} {'random +-eps':>13}")
for eps, a, b in zip(epsilons, fgsm_accuracy, noise_accuracy):
    print(f"{eps:8.3f} {100 * a:7.2f}% {100 * b:12.2f}%")

# The table is the lesson in numbers; compare its two columns row by row. Random changes of
# +-epsilon per pixel should cost little: nothing at small epsilon, and only a few points
# at the largest (the network has seen messy digits), against tens of points for FGSM. The *same size* of change, pointed by the gradient,
# brings the accuracy down steeply: look at how much is left at epsilon = 0.1, and at
# 0.25-0.3, where it should be near or below chance (10%). Epsilon = 0.1 is a
# faint grey haze on the black background; you still read every digit effortlessly.

# ---------------------------------------------------------------------------------------
# 4. Looking at them
# ---------------------------------------------------------------------------------------
show_eps = 0.15
x, y = test_pixels[:200], test_labels[:200]
adversarial = fgsm(model, x, y, show_eps)
clean_pred, clean_prob = predict(model, x)
adv_pred, adv_prob = predict(model, adversarial)
fooled = np.flatnonzero((clean_pred == y) & (adv_pred != y))[:6]
images, titles = [], []
for i in fooled:
    images += [x[i], adversarial[i] - x[i], adversarial[i]]
    titles += [f"{clean_pred[i]} ({100 * clean_prob[i]:.0f}%)", f"perturbation ±{show_eps}",
               f"{adv_pred[i]} ({100 * adv_prob[i]:.0f}%)"]
if fooled.size:
    viz.plot_image_grid(np.stack(images), lesson.figure("fooled_digits.png"), ncols=6, titles=titles,
                        title=f"Original (prediction) | FGSM perturbation | adversarial (prediction), epsilon {show_eps}")
    print(f"\nat epsilon {show_eps}, {int(((clean_pred == y) & (adv_pred != y)).sum())} of the first 200 test digits "
          f"flip from right to wrong; e.g. a {y[fooled[0]]} read as {adv_pred[fooled[0]]} with "
          f"{100 * adv_prob[fooled[0]]:.0f}% confidence")

# fooled_digits.png: each group of three is a digit the network got right, the change
# FGSM made, and the result with the network's new answer. In the middle picture white is
# +eps, black -eps and grey no change: the background gets brighter almost everywhere
# (it can only go up from black, so the clip cancels every "darker" there - grey),
# and parts of the strokes get dimmer. To us it is faint static; to the network it is the
# pattern that moves its score most. Note the confidence of many wrong answers: the
# network is not unsure, it is wrong - and often sure of it.

eps_row = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
i = fooled[0] if fooled.size else 0
row = np.stack([fgsm(model, x[i:i + 1], y[i:i + 1], eps)[0] for eps in eps_row])
row_pred, row_prob = predict(model, row)
viz.plot_image_grid(row, lesson.figure("epsilon_steps.png"), ncols=len(eps_row),
                    titles=[f"eps {e}: {p} ({100 * q:.0f}%)" for e, p, q in zip(eps_row, row_pred, row_prob)],
                    title="One digit under growing FGSM perturbations (prediction, confidence)")

# ---------------------------------------------------------------------------------------
# 5. A first defence: adversarial training
#
# If the network is fooled by FGSM images, show it FGSM images during training, with their
# true labels (Goodfellow et al. 2015). Below is the plain training loop (what `fit`
# does), with one change: every batch is trained on half clean, half FGSM images made on
# the spot against the current weights. We fine-tune a copy of our network this way.
# ---------------------------------------------------------------------------------------
robust = models.lenet5().to(lesson.device)
robust.load_state_dict(model.state_dict())
optimizer = optim.Adam(robust.parameters(), lr=1e-3)
train_eps = 0.15
n_adv = lesson.pick(quick=500, default=10000, full=55000)
loader = DataLoader(Subset(mnist_train, np.arange(n_adv)), batch_size=64, shuffle=True, seed=lesson.args.seed,
                    device=lesson.device)   # no transform: pixels in [0, 1]
start = time.perf_counter()
for pixels, labels in loader:
    half = len(labels) // 2
    clean = pixels.numpy()
    attacked = fgsm(robust, clean[half:], labels.numpy()[half:], train_eps)   # against the current weights
    batch = tinycnn.tensor(np.concatenate([clean[:half], attacked]), device=lesson.device)
    loss = F.cross_entropy(logits_of(robust, batch), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"\nadversarial training: {n_adv:,} digits (half of each batch attacked with epsilon {train_eps}) "
      f"in {time.perf_counter() - start:.0f}s")
robust_accuracy = [accuracy_under_attack(robust, fgsm, eps) for eps in epsilons]
print(f"{'epsilon':>8} {'before':>8} {'after':>8}")
for eps, a, b in zip(epsilons, fgsm_accuracy, robust_accuracy):
    print(f"{eps:8.3f} {100 * a:7.2f}% {100 * b:7.2f}%")

# ---------------------------------------------------------------------------------------
# 6. A stronger attack: many small steps
#
# FGSM takes one step of size epsilon, in the direction the gradient had at the clean
# image. Projected gradient descent (PGD; Madry et al. 2018) takes many smaller steps,
# re-computing the gradient each time, and after each step clips the change back into the
# allowed box [x - eps, x + eps] (and into [0, 1]). It finds the weak spots FGSM steps over.
# ---------------------------------------------------------------------------------------


def pgd(net, pixels: np.ndarray, labels: np.ndarray, epsilon: float, steps: int = 10) -> np.ndarray:
    step_size = 2.5 * epsilon / steps
    adv = pixels.copy()
    for _ in range(steps):
        adv = adv + step_size * np.sign(input_gradient(net, adv, labels))
        adv = np.clip(np.clip(adv, pixels - epsilon, pixels + epsilon), 0.0, 1.0).astype(np.float32)
    return adv


pgd_steps = lesson.pick(quick=3, default=10, full=20)
print(f"\nat epsilon {train_eps}, FGSM (1 step) against PGD ({pgd_steps} steps):")
for name, net in (("original network", model), ("after adversarial training", robust)):
    one_step = accuracy_under_attack(net, fgsm, train_eps)
    many_steps = accuracy_under_attack(net, lambda n, x, y, e: pgd(n, x, y, e, pgd_steps), train_eps)
    print(f"  {name:<27} FGSM {100 * one_step:6.2f}%   PGD {100 * many_steps:6.2f}%")
# PGD should do clearly more damage than FGSM on both networks: a one-step attack
# overstates how robust a network is. Compare the adversarially trained network's two
# numbers: its robustness is real (both should be above the original network's), but
# smaller than FGSM says. Part of what FGSM training buys is robustness to FGSM itself -
# the gradient at the clean image can stop pointing anywhere useful - not to small
# changes in general. Training against PGD is the defence that holds up best today, at
# several times the training cost.

viz.plot_curves({"FGSM, original network": (epsilons, [100 * a for a in fgsm_accuracy]),
                 "random ±epsilon noise, original network": (epsilons, [100 * a for a in noise_accuracy]),
                 "FGSM, after adversarial training": (epsilons, [100 * a for a in robust_accuracy])},
                lesson.figure("accuracy_vs_epsilon.png"), xlabel="epsilon (largest change per pixel, 1 = black to white)",
                ylabel="test accuracy (%)", title="LeNet-5 under attack")

# accuracy_vs_epsilon.png sums it up. Adversarial training should lift the FGSM curve a
# lot - for attacks up to about the epsilon it trained with - at little cost on clean
# digits (the epsilon = 0 row of the before/after table). Be careful with the win, though:
# FGSM is a single-step attack, one of the cheapest there is, and section 6 measured what
# a patient attacker does to the same network.
#
# The deeper point: a network can be 97-99% accurate and still see the world very
# differently from us. Its decision depends on many tiny pixel-level cues that add up,
# and that is also what lesson 13 tries to look at, and lesson 14 stresses with natural
# rather than malicious changes.

print(f"\nlesson 12 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/tensor.py               requires_grad on an input: backward fills the image's .grad
#   tinycnn/functional/loss.py      cross_entropy, whose gradient FGSM follows
#   tinycnn/functional/conv.py      conv2d's backward for the input (col2im): how the gradient
#                                   reaches the pixels
#   tinycnn/models/lenet.py         the attacked network
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Why does a change of 0.1 per pixel, invisible to us, move the network's scores so much?
#   2. Why does random noise of the same size do almost nothing?
#   3. What does PGD do that FGSM does not, and why is it stronger?
#   4. Why can FGSM training look like a strong defence and not be one?
#
# Answers (try first)
#   1. A score is roughly a sum of weight x pixel over 784 pixels; moving each pixel by eps
#      in the sign of its weight adds eps * sum|w|: all small changes add up.
#   2. Random signs mostly cancel: the change of the score grows like sqrt(784) * eps *
#      typical |w|, not 784 * eps * typical |w|.
#   3. It takes many small steps, recomputing the gradient each time and projecting back
#      into the allowed box, so it follows the loss surface where it curves instead of
#      trusting one linear step.
#   4. The network can learn to make its gradient at clean images uninformative ("gradient
#      masking"), which defeats FGSM without removing nearby adversarial examples; an
#      iterative attack still finds them.
#
# Exercises: lessons/exercises/12_adversarial_examples.py — check your work with: python lessons/check.py 12
