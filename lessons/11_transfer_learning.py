"""Lesson 11 - Transfer learning.

Features learnt on one task help on another: take LeNet-5 trained on MNIST digits (lesson
6's weights when present), keep its convolutions, and learn Fashion-MNIST clothes from only
10, 50 or 100 labelled images per class - with the features frozen, fine-tuned, or not
borrowed at all (training from scratch). Accuracy against the number of labels tells when
borrowing pays.
"""

# ---------------------------------------------------------------------------------------
# Labelled data is expensive. A radiologist's time, a botanist's, a lawyer's: often there
# are a few hundred labelled images, not 60,000. But the first layers of a CNN learn
# things that are not specific to one task - edges, strokes, corners, blobs (lesson 13
# shows them) - so a network trained on a big data set has already paid for them. Transfer
# learning reuses those layers for a new task and trains only what must be new.
#
# Here the big task is MNIST (digits) and the new one Fashion-MNIST (Xiao, Rasul & Vollgraf
# 2017): 28x28 grey images of ten kinds of clothing, made as a harder drop-in replacement
# for MNIST. Same image format, different world. This lesson needs both data sets (run it
# with --data-dir DIR, DIR holding mnist/ and fashion-mnist/, or --download).
# ---------------------------------------------------------------------------------------

import math
import time

import numpy as np

import tinycnn
from tinycnn import finetune, models, nn, optim, viz
from tinycnn.data import (
    FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD, Compose, DataLoader, FashionMNIST,
    Normalize, Subset, ToFloat,
)
from tinycnn.train import evaluate, fit
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__, needs_data=True, uses_lenet5=True)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. The source network: LeNet-5 trained on MNIST
#
# Lesson 6 saves its trained weights (in its --out folder and in a shared cache); if they
# are found (and good), we use them. If not - or with --lenet5 train - we train a LeNet-5
# here for one epoch, which reaches about 97-98% on MNIST: enough to have learnt useful
# strokes. The conclusions below hold for either network. `tinycnn.save` / `tinycnn.load` write and read a plain .npz file; a model's
# `state_dict()` is a dict from names ("features.0.weight", ...) to arrays.
# ---------------------------------------------------------------------------------------
mnist_prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])

source = lesson.mnist_lenet5()
source_state = {name: value.copy() for name, value in source.state_dict().items()}
print(source)

# LeNet-5 is in two parts (print above): `features`, the two convolutions with their ReLUs
# and poolings, turning a 28x28 image into 16 maps of 5x5 = 400 numbers; and `classifier`,
# three fully connected layers turning those 400 numbers into 10 digit scores. The
# features are what we borrow. The classifier answers "which digit?", a question
# Fashion-MNIST does not ask: it is replaced by a new, randomly initialised one.

# ---------------------------------------------------------------------------------------
# 2. The target task, with few labels
#
# From the Fashion-MNIST training set we draw k labelled images per class, for a few k;
# the smaller sets are part of the larger ones, as if labelling went on. We test on the
# Fashion-MNIST test set.
# ---------------------------------------------------------------------------------------
fashion_train = lesson.dataset(FashionMNIST, train=True)
fashion_test_full = lesson.dataset(FashionMNIST, train=False)
classes = list(fashion_train.classes)
per_class = lesson.pick(quick=[5, 20], default=[10, 50, 100], full=[10, 50, 100, 500, 1000])
n_test = lesson.pick(quick=300, default=2000, full=10000)
steps = lesson.pick(quick=10, default=200, full=600)       # the same training budget for every run
batch_size = 32

rng = np.random.default_rng(lesson.args.seed)
shuffled = [rng.permutation(np.flatnonzero(fashion_train.labels == c)) for c in range(10)]
fashion_test = Subset(fashion_test_full, np.arange(n_test))
prepare = Compose([ToFloat(), Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)])
test_loader = DataLoader(fashion_test, batch_size=500, transform=prepare, device=lesson.device)

first = np.concatenate([idx[:per_class[0]] for idx in shuffled])
viz.plot_image_grid(fashion_train.images[first], lesson.figure("few_labels.png"), ncols=per_class[0],
                    titles=[classes[c] for c in fashion_train.labels[first]],
                    title=f"All the labelled data of the smallest run: {per_class[0]} images per class")
print(f"\nFashion-MNIST classes: {', '.join(classes)}")
print(f"labels per class: {per_class}; every run: {steps} steps of {batch_size} images (Adam, lr 1e-3); "
      f"tested on {n_test:,} test images")

# ---------------------------------------------------------------------------------------
# 3. Three ways to start
#
#   frozen      MNIST features, frozen; only the new classifier learns. `requires_grad_(False)`
#               switches the gradient of every feature weight off, and the optimizer is
#               given only the classifier's parameters; backward stops at the features.
#               Only the 2,572 convolution weights are frozen - few, but they are the
#               ones that must learn *to see*; the classifier only combines what they see.
#   fine-tuned  MNIST features as the starting point, then everything trains.
#   scratch     the same network from random weights: no borrowing at all.
# ---------------------------------------------------------------------------------------


def new_classifier() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def build(method: str):
    """(model, the parameters to train) for one way to start."""
    model = models.lenet5()
    if method != "scratch":
        # Copy every weight whose name and shape match (tinycnn/finetune.py); here we offer
        # only the features, because MNIST's classifier has the same shape as the one
        # Fashion-MNIST needs but answers another question.
        features = {name: value for name, value in source_state.items() if name.startswith("features.")}
        finetune.load_matching(model, features)
    model.classifier = new_classifier()
    if method == "frozen":
        finetune.freeze(model, "features")                     # requires_grad = False for features.*
    model = model.to(lesson.device)
    return model, [p for p in model.parameters() if p.requires_grad]


for method in ("frozen", "fine-tuned", "scratch"):
    model, params = build(method)
    print(f"{method:<11} trains {sum(p.numel() for p in params):6,} of {sum(p.numel() for p in model.parameters()):,} "
          f"weights")

# ---------------------------------------------------------------------------------------
# 4. The experiment: 3 ways x a few label budgets
# ---------------------------------------------------------------------------------------
results = {method: [] for method in ("frozen", "fine-tuned", "scratch")}
print(f"\n{'labels/class':>12} {'frozen':>10} {'fine-tuned':>11} {'scratch':>10}")
for k in per_class:
    labelled = Subset(fashion_train, np.concatenate([idx[:k] for idx in shuffled]))
    for method in results:
        tinycnn.manual_seed(lesson.args.seed)                  # the same new classifier in every run
        model, params = build(method)
        loader = DataLoader(labelled, batch_size=min(batch_size, len(labelled)), shuffle=True,
                            seed=lesson.args.seed, transform=prepare, device=lesson.device)
        fit(model, loader, optim.Adam(params, lr=1e-3), epochs=math.ceil(steps / len(loader)), progress=False)
        results[method].append(evaluate(model, test_loader)["accuracy"])
    print(f"{k:>12} " + " ".join(f"{100 * results[m][-1]:>9.2f}%" for m in ("frozen", "fine-tuned", "scratch"))
          + f"   ({10 * k} labelled images)")

print("difference to scratch, in points, at each budget: "
      + "; ".join(f"{m}: " + ", ".join(f"{100 * (a - b):+.1f}" for a, b in zip(results[m], results["scratch"]))
                  for m in ("frozen", "fine-tuned")))
viz.plot_curves({method: (per_class, [100 * a for a in accs]) for method, accs in results.items()},
                lesson.figure("accuracy_vs_labels.png"), xlabel="labelled training images per class",
                ylabel="Fashion-MNIST test accuracy (%)",
                title="Borrowing MNIST features for Fashion-MNIST")

# Reading the table and accuracy_vs_labels.png (numbers move by a point or two with the
# seed, the smallest runs most):
#
# * With few labels the borrowed features help: with 10 images per class a network from
#   scratch has too little to learn *to see* from, while the MNIST features already
#   respond to edges, bars and blobs - which shirts and trousers have too. The fine-tuned
#   row should beat scratch (the "difference to scratch" line: positive numbers), by a
#   point or a few. Frozen features usually do too (not always at every budget): a difference
#   under a point or so, on 2,000 test images and one seed, is noise.
# * Frozen and fine-tuned stay close, within a couple of points; which of the two wins
#   changes with the seed and with the source network. Freezing leaves less to overfit;
#   fine-tuning can adapt the features to clothes, but with so few labels it can also
#   spoil them. Both are used in practice: frozen features when labels are very scarce or
#   training must be cheap, fine-tuning (often with a smaller learning rate for the
#   borrowed layers) when there is a little more data.
# * Every run gets the same 200 steps. Scratch has the most to learn, and with 100 labels
#   per class it is the one still held back by that budget (--full gives 600 steps).
# * With many more labels (--full goes up to 1,000 per class) expect scratch to close
#   the gap too: given enough data it learns features for clothes instead of digits. The
#   crossing point moves to the right the better the source matches the target: features
#   learnt from a million natural photos (ImageNet) help on almost any photo task, and
#   that is how most vision models are built in practice.
#
# LeNet-5 and MNIST are a small source - only 6 and 16 filters, trained on one kind of
# image - so the gains here are modest. The idea scales; the numbers grow with the source.
#
# The `tinycnn` command does the same for your own images, with the same two functions:
#
#   tinycnn train --dataset mnist --data-dir DIR --out runs/mnist-lenet5          # the source
#   tinycnn train --images my_clothes --model lenet5 --image-size 28 \
#                 --init-from runs/mnist-lenet5 --freeze features                 # frozen
#
# `--init-from` loads every weight whose name and shape match and prints what it loaded
# and what it re-initialised (a head for another number of classes has another shape);
# leave out `--freeze` to fine-tune everything.

print(f"\nlesson 11 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/finetune.py          load_matching (copy weights whose names and shapes match), freeze
#   tinycnn/nn/module.py         state_dict / load_state_dict, requires_grad_, named_parameters
#   tinycnn/models/lenet.py      LeNet-5's `features` and `classifier` parts
#   tinycnn/tensor.py            why backward stops at frozen weights (no requires_grad, no graph)
#   tinycnn/data/mnist.py        MNIST and Fashion-MNIST (the same file format)
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. When is freezing the borrowed features better than fine-tuning them, and vice versa?
#   2. Why is MNIST's classifier not borrowed, although its shape fits Fashion-MNIST?
#   3. What does the optimizer do with a parameter that has requires_grad=False?
#   4. Why should scratch close the gap as the number of labels grows?
#
# Answers (try first)
#   1. Freeze when labels are very scarce (less to overfit) or training must be cheap;
#      fine-tune when there is more data or the target differs from the source, so the
#      features can adapt (often with a smaller learning rate for the borrowed layers).
#   2. It answers "which digit?"; its outputs mean digits. Only the features (edges,
#      strokes, blobs) carry over; the head must learn the new classes.
#   3. Nothing: no gradient is computed for it, and here it is not even given to the
#      optimizer (only the classifier's parameters are).
#   4. With enough data it learns features for clothes instead of digits; the borrowed
#      features' head start shrinks, and a poor source match can even become a handicap.
#
# Exercises: lessons/exercises/11_transfer_learning.py — check your work with: python lessons/check.py 11
