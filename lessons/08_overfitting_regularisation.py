"""Lesson 8 - Overfitting and regularisation.

Train LeNet-5 on only 500 MNIST digits and watch it memorise them: training accuracy
reaches 100% while validation accuracy stalls. Then measure, one at a time against that
baseline, what fights it: dropout, weight decay, data augmentation (rotation, flipping,
scaling, cropping), and all of them combined.
"""

# ---------------------------------------------------------------------------------------
# A network with 60,000 weights can memorise 500 images: it has far more knobs than there
# are facts to fit. Memorising is not learning - the point of training is to do well on
# images the network has *not* seen. The distance between the two, the generalisation gap,
# is what this lesson is about, and "regularisation" is the name for everything that
# shrinks it without collecting more data.
#
# We use MNIST (as in lesson 6), but only a few hundred training digits, so that
# overfitting is strong and each run takes seconds. This lesson needs the real data set:
# run it with --data-dir DIR (DIR holding mnist/) or --download.
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import nn, optim, viz
from tinycnn.data import (
    MNIST, MNIST_MEAN, MNIST_STD, Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip,
    RandomRotation, RandomScale, Subset, ToFloat, random_split,
)
from tinycnn.train import evaluate, fit
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__, needs_data=True)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. A small training set, an honest validation set
#
# The training set is a random handful of MNIST digits. The validation set is held out of
# the *training* file (never the test file): we look at it after every epoch to compare
# methods. The test set is looked at once per method, at the end, to report.
# ---------------------------------------------------------------------------------------
train_full = lesson.dataset(MNIST, train=True)
test_full = lesson.dataset(MNIST, train=False)

n_train = lesson.pick(quick=100, default=500, full=1000)
n_val = lesson.pick(quick=100, default=1000, full=5000)
n_test = lesson.pick(quick=200, default=2000, full=10000)
epochs = lesson.pick(quick=1, default=30, full=60)
batch_size = 32

train_part, val_part = random_split(train_full, [len(train_full) - 5000, 5000], seed=0)
train_set = Subset(train_part, np.arange(n_train))
val_set = Subset(val_part, np.arange(n_val))
test_set = Subset(test_full, np.arange(n_test))
print(f"training on {len(train_set)} digits ({np.bincount(train_set.labels, minlength=10).min()}-"
      f"{np.bincount(train_set.labels, minlength=10).max()} per class), validating on {len(val_set)}, "
      f"testing on {len(test_set)}; {epochs} epochs of {len(train_set) // batch_size + 1} steps each")

prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])
val_loader = DataLoader(val_set, batch_size=500, transform=prepare, device=lesson.device)
test_loader = DataLoader(test_set, batch_size=500, transform=prepare, device=lesson.device)
train_eval_loader = DataLoader(train_set, batch_size=500, transform=prepare, device=lesson.device)

# ---------------------------------------------------------------------------------------
# 2. The network, with a place for dropout
#
# LeNet-5 as in lesson 6, written out so that we can put a Dropout layer in front of each
# fully connected layer. `nn.Dropout(p)` in training mode sets a random fraction p of its
# inputs to zero (and scales the rest by 1/(1-p) so the expected sum is unchanged); in
# eval mode it does nothing. With p=0 it is the plain LeNet-5.
# ---------------------------------------------------------------------------------------


def lenet5(dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(120, 84), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(84, 10),
    ).to(lesson.device)


# One experiment = one fresh network trained with one recipe. Everything else (data,
# order of the batches, initial weights: the seed) stays the same, so differences between
# runs come from the recipe. We keep the weights of the *last* epoch (restore_best=False):
# we want to see where each recipe ends up, not stop it early (more on that below).
results = {}


def weight_norm(model) -> float:
    """The L2 norm of all the network's weights together (biases included): what weight decay shrinks."""
    return float(np.sqrt(sum(float((p.numpy().astype(np.float64) ** 2).sum()) for p in model.parameters())))


def experiment(name: str, dropout: float = 0.0, weight_decay: float = 0.0, augment=(), decoupled=False) -> dict:
    tinycnn.manual_seed(lesson.args.seed)
    model = lenet5(dropout)
    initial_norm = weight_norm(model)
    adam = optim.AdamW if decoupled else optim.Adam
    optimizer = adam(model.parameters(), lr=2e-3, weight_decay=weight_decay)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=lesson.args.seed,
                        transform=Compose([*augment, prepare]), device=lesson.device)
    start = time.perf_counter()
    state = fit(model, loader, optimizer, epochs, val_loader=val_loader, progress=False, restore_best=False)
    # Accuracy on the training images measured like validation: eval mode, no augmentation.
    train = evaluate(model, train_eval_loader)["accuracy"]
    val = state.history[-1]["val_accuracy"]
    test = evaluate(model, test_loader)["accuracy"]
    norm = weight_norm(model)
    results[name] = dict(train=train, val=val, test=test, gap=train - val, history=state.history,
                         best_epoch=state.best_epoch, best_val=state.best_val_accuracy, norm=norm)
    print(f"{name:<22} train {100 * train:6.2f}%  val {100 * val:6.2f}%  gap {100 * (train - val):5.2f}  "
          f"test {100 * test:6.2f}%  |w| {initial_norm:.1f} -> {norm:.1f}  ({time.perf_counter() - start:.0f}s)")
    return results[name]


# ---------------------------------------------------------------------------------------
# 3. The baseline overfits
# ---------------------------------------------------------------------------------------
print("\nrecipe                 accuracy on: the training digits, validation, their gap, test; "
      "|w|: the weights' norm at the start -> the end")
baseline = experiment("baseline")
viz.plot_history(baseline["history"], lesson.figure("baseline_history.png"),
                 title=f"Baseline LeNet-5 on {n_train} digits: the training curve runs away")
print(f"the baseline's best validation accuracy was at epoch {baseline['best_epoch']} "
      f"({100 * baseline['best_val']:.2f}%); after epoch {epochs} it is {100 * baseline['val']:.2f}%")

# Look at baseline_history.png. Within a few epochs the training accuracy is at 100% and
# the training loss keeps falling towards 0 - the network has memorised every digit. The
# validation accuracy stops rising long before (the line above prints its best epoch),
# and the validation loss turns back *up*: the network grows ever more confident, and when it is
# wrong it is confidently wrong. That U-shaped validation loss is the signature of
# overfitting.
#
# The cheapest remedy is visible in the same figure: stop where validation was best
# ("early stopping"). `fit` does that by default - it keeps the weights of the best
# validation epoch - but it only stops the damage; it does not make the network learn
# anything more general. The methods below do.

# ---------------------------------------------------------------------------------------
# 4. Dropout (Srivastava et al. 2014)
#
# With 30% of the hidden units dropped at random in every step, no unit can rely on one
# particular other unit being there: the network cannot build brittle, memorising
# co-adaptations and has to spread what it knows over many units. At test time all units
# are on - it behaves like an average of the many thinned networks trained.
# ---------------------------------------------------------------------------------------
experiment("dropout 0.3", dropout=0.3)

# ---------------------------------------------------------------------------------------
# 5. Weight decay: an L2 penalty, coupled or decoupled
#
# `weight_decay=wd` in SGD or Adam adds wd * w to every weight's gradient: the gradient of
# the penalty (wd/2) * ||w||^2. Each step now pulls every weight towards zero a little,
# and only weights the data keeps asking for survive. Small weights mean a smoother
# function of the input: a tiny change of the image cannot swing the output much.
#
# In plain SGD that pull is lr * wd * w per step, the same for every weight. In Adam it is
# not: the added wd * w goes through Adam's division by sqrt(s), the running size of each
# weight's gradient - so weights with large gradients are barely decayed, and weights with
# tiny gradients are decayed hard. This "coupled" L2 is what optim.Adam(weight_decay=...)
# does. AdamW (Loshchilov and Hutter 2019) "decouples" it: the Adam step uses the loss's
# gradient only, and separately every weight shrinks by lr * wd * w, as in SGD. (Read both
# in tinycnn/optim/adam.py.) Three runs: the small coupled decay that SGD recipes use
# (5e-4), a large coupled one (5e-2), and AdamW at the same 5e-2. The |w| column shows
# whether the weights really shrank.
# ---------------------------------------------------------------------------------------
experiment("Adam L2 5e-4", weight_decay=5e-4)
experiment("Adam L2 5e-2", weight_decay=5e-2)
experiment("AdamW 5e-2", weight_decay=5e-2, decoupled=True)
# Read the three rows against the baseline, the |w| column first. The same number wd is a
# very different strength in the two forms. AdamW's pull is lr * wd * w per step: with
# lr = 2e-3 and wd = 5e-2 that is 1e-4 of each weight per step, a few per cent over this
# short run - its norm should end only a little below the baseline's. Adam's coupled
# pull is wd * w divided by sqrt(s), the size of the weight's own gradients, which are
# tiny for most weights once the training digits are fit - so even 5e-4 should hold the
# norm visibly below the baseline's, and 5e-2 should crush it (and cost training
# accuracy: look at the train column). Now the test column: however much the weights
# shrink, accuracy should barely move. With 500 digits the network's trouble is not
# large weights but too little data: a smaller version of the same memorising function
# is still a memorising function. Weight decay earns its place in long runs of big
# networks (every full recipe here uses it: lesson 6, lesson 10), with SGD or AdamW,
# whose decay acts on every weight alike; with AdamW, wd is typically 1e-2 to 1e-1.

# ---------------------------------------------------------------------------------------
# 6. Data augmentation
#
# The best regulariser is more data. Augmentation makes more data out of the data we have:
# every epoch each image is shown with a random change that does not change its label. The
# transforms work on a whole batch at once, on the device, before normalisation. Here is
# what each does to the same eight digits:
# ---------------------------------------------------------------------------------------
augmentations = {
    "rotation ±15°": [RandomRotation(15)],
    "horizontal flip": [RandomHorizontalFlip()],
    "scale 0.85-1.15": [RandomScale((0.85, 1.15))],
    "crop (pad 3)": [RandomCrop(28, padding=3)],
}
sample = train_set.images[:6]
rows, titles = [sample], ["original"] + [""] * 5
for name, transforms in augmentations.items():
    rows.append(Compose(transforms)(sample))
    titles += [name] + [""] * 5
viz.plot_image_grid(np.concatenate(rows), lesson.figure("augmentations.png"), ncols=6, titles=titles,
                    title="Six training digits under each augmentation (a new random draw every epoch)")

# augmentations.png, row by row: the original digits; rotated by up to 15 degrees either
# way; mirrored left-right with probability 1/2; zoomed in or out by up to 15%; shifted by
# up to 3 pixels (pad with black, cut a random 28x28 window). Notice that a mirrored 2, 3,
# 4 or 7 is not a digit any more: an augmentation is only a good idea if it keeps the
# label. Mirroring is right for cats and cars (lesson 10 uses it on CIFAR-10); for digits
# it shows the network images it will never be tested on. Let the numbers decide:

for name, transforms in augmentations.items():
    experiment(name, augment=transforms)
label_preserving = [RandomRotation(15), RandomScale((0.85, 1.15)), RandomCrop(28, padding=3)]
experiment("rotate+scale+crop", augment=label_preserving)

# ---------------------------------------------------------------------------------------
# 7. Everything together
#
# The methods attack overfitting from different sides - dropout the co-adaptation of
# units, weight decay the size of the weights, augmentation the shortage of data - so they
# add up, at least partly. Regularised networks learn more slowly: the default run's
# epochs are enough for each method alone, and a little short for all of them at once
# (--full trains twice as long, on twice the digits).
# ---------------------------------------------------------------------------------------
experiment("all combined", dropout=0.3, weight_decay=5e-4, augment=label_preserving)

# ---------------------------------------------------------------------------------------
# 8. The scoreboard
# ---------------------------------------------------------------------------------------
print(f"\n{'recipe':<22} {'train':>7} {'val':>7} {'gap':>6} {'test':>7} {'vs baseline':>12} {'|w|':>6}")
for name, r in results.items():
    print(f"{name:<22} {100 * r['train']:6.2f}% {100 * r['val']:6.2f}% {100 * r['gap']:6.2f} "
          f"{100 * r['test']:6.2f}% {100 * (r['test'] - baseline['test']):+11.2f} {r['norm']:6.1f}")
smallest_gap = min(results, key=lambda name: results[name]["gap"])
best_test = max(results, key=lambda name: results[name]["test"])
print(f"smallest gap: {smallest_gap} ({100 * results[smallest_gap]['gap']:.2f} points); "
      f"best test accuracy: {best_test} ({100 * results[best_test]['test']:.2f}%); "
      f"all combined: gap {100 * results['all combined']['gap']:.2f}, test {100 * results['all combined']['test']:.2f}%")

viz.plot_bars({name: 100 * r["test"] for name, r in results.items()}, lesson.figure("test_accuracy.png"),
              ylabel="test accuracy (%)", title=f"Test accuracy after {epochs} epochs on {n_train} digits")
viz.plot_bars({name: 100 * r["gap"] for name, r in results.items()}, lesson.figure("generalisation_gap.png"),
              ylabel="train - validation accuracy (points)", title="The generalisation gap (smaller is better)")
shown = ["baseline", "dropout 0.3", "Adam L2 5e-4", "horizontal flip", "rotate+scale+crop", "all combined"]
viz.plot_curves({name: ([h["epoch"] for h in results[name]["history"]],
                        [100 * h["val_accuracy"] for h in results[name]["history"]]) for name in shown},
                lesson.figure("val_accuracy_curves.png"), xlabel="epoch", ylabel="validation accuracy (%)",
                title="Validation accuracy, epoch by epoch")

# How to read the table (the exact numbers move by a point or so with the seed, and on
# 2,000 test digits a difference below about one point is noise):
#
# * the baseline ends with a large gap: 100% on the digits it has seen, several points
#   less on the others;
# * dropout should narrow the gap and gain a point or two;
# * weight decay (section 5): the norms shrink (how much depends on the form), the
#   accuracy barely moves - here the shortage is data, not small weights;
# * the label-preserving augmentations (rotation, scaling, cropping) help, and together
#   they should help most: they are the only methods that show the network something new
#   - the same digit drawn a little differently - and the gap shrinks because the
#   training images are no longer easy;
# * the flip hurts, by several points: it spends capacity on mirror digits that never
#   occur, and blurs the line between a 2 and a 5;
# * all combined: compare its gap and test accuracy with rotate+scale+crop's (the line
#   under the table). Piling dropout and weight decay on top of the augmentations makes
#   the training digits harder still, which shrinks the gap - but a smaller gap is not a
#   better test accuracy, and in the default run the combination need not win on test:
#   strongly regularised networks learn more slowly and need more epochs (run --full: 60
#   epochs on 1,000 digits, to see whether the combination catches up). Regularisers do
#   not simply add up; each must be measured.
#
# The big picture: with 500 examples, regularisation buys a few points; collecting data
# buys more (lesson 6's LeNet-5, with 20,000 digits and no tricks, prints about 98%).
# When data cannot be had, lesson 11 shows another way: borrow features learnt elsewhere.

print(f"\nlesson 8 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/functional/dropout.py    dropout's mask and its 1/(1-p) scaling, train vs eval
#   tinycnn/optim/adam.py            Adam's coupled L2 and AdamW's decoupled decay, side by side
#   tinycnn/optim/sgd.py             SGD's weight decay
#   tinycnn/data/transforms.py, tinycnn/data/affine.py   the batch augmentations of section 6
#   tinycnn/train.py                 fit (restore_best: early stopping by keeping the best epoch)
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Training accuracy 100%, validation 90%: what is the generalisation gap, and which
#      curve of baseline_history.png shows overfitting most clearly?
#   2. Why does Adam's coupled L2 decay weights with large gradients less than AdamW does?
#   3. Why does flipping help on CIFAR-10 but hurt on MNIST?
#   4. What does dropout do at test time, and why is the training output scaled by 1/(1-p)?
#
# Answers (try first)
#   1. 10 points. The validation loss: it falls, then turns back up while the training loss
#      keeps falling (the network grows confidently wrong on unseen digits).
#   2. In Adam the decay term wd * w is added to the gradient and then divided by
#      sqrt(s) + eps, s the running mean of the squared gradient: a large s shrinks the
#      decay. AdamW subtracts lr * wd * w outside that division, equally for every weight.
#   3. A mirrored cat is still a cat (the label is kept); a mirrored 2, 3, 4 or 7 is not a
#      digit (the label is broken), so the network learns from images it will never meet.
#   4. Nothing: all units are on. Scaling the kept units by 1/(1-p) in training keeps each
#      unit's expected input the same in both modes, so no rescaling is needed at test time.
#
# Exercises: lessons/exercises/08_overfitting_regularisation.py — check your work with: python lessons/check.py 08
