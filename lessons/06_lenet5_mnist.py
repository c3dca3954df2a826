"""Lesson 6 - LeNet-5 on MNIST.

The classic: LeCun's 1998 digit recogniser, with ReLU and max pooling, trained with SGD +
momentum, weight decay and a cosine schedule. --full trains on all 55,000 training digits
for 12 epochs (>= 99% test accuracy); the default run uses a subset. Curves, confusion
matrix, the mistakes; the weights are saved for lessons 11-14.
"""

# ---------------------------------------------------------------------------------------
# MNIST - 70,000 handwritten digits, 28x28 grey - is where CNNs first proved themselves:
# LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) read bank cheques in production in the
# 1990s. It is small (61,706 weights) and still a fine teacher: everything in it is
# something lessons 3-5 explained. This lesson needs the real data set: run it with
# --data-dir DIR (DIR holding mnist/) or --download.
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import models, optim, viz
from tinycnn.data import MNIST, MNIST_MEAN, MNIST_STD, Compose, DataLoader, Normalize, Subset, ToFloat, random_split
from tinycnn.train import evaluate, fit
from lesson_utils import LESSON6_FILE, Lesson, lessons_cache_dir

lesson = Lesson(__file__, __doc__, needs_data=True)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. The data
#
# 60,000 training and 10,000 test digits. We hold out 5,000 training digits for
# validation (chosen at random with a fixed seed), as the `tinycnn train --dataset mnist`
# recipe does. The default run then trains on a subset of the other 55,000 to finish in a
# few minutes on a laptop CPU; --full uses them all.
# ---------------------------------------------------------------------------------------
train_full = lesson.dataset(MNIST, train=True)
test_full = lesson.dataset(MNIST, train=False)
classes = [str(c) for c in range(10)]

n_train = lesson.pick(quick=2000, default=20000, full=55000)
n_val = lesson.pick(quick=500, default=5000, full=5000)
n_test = lesson.pick(quick=1000, default=10000, full=10000)
epochs = lesson.pick(quick=1, default=3, full=12)
batch_size = 128

train_part, val_part = random_split(train_full, [len(train_full) - 5000, 5000], seed=0)
train_set = Subset(train_part, np.arange(n_train))
val_set = Subset(val_part, np.arange(n_val))
test_set = Subset(test_full, np.arange(n_test))
print(f"MNIST: training on {len(train_set):,} digits, validating on {len(val_set):,}, "
      f"testing on {len(test_set):,}; {epochs} epoch(s), batch {batch_size}")
viz.plot_image_grid(test_set.images[:32], lesson.figure("samples.png"), ncols=8,
                    titles=[str(k) for k in test_set.labels[:32]], title="MNIST test digits")

prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])
train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=lesson.args.seed,
                          transform=prepare, device=lesson.device)
val_loader = DataLoader(val_set, batch_size=500, transform=prepare, device=lesson.device)
test_loader = DataLoader(test_set, batch_size=500, transform=prepare, device=lesson.device)

# ---------------------------------------------------------------------------------------
# 2. The network
#
# LeNet-5 read 32x32 inputs, so the 28x28 digits are padded by 2 pixels in the first
# convolution. Then, as in lesson 5: convolutions find local strokes, pooling shrinks,
# and three fully connected layers (the "classifier") turn 16 maps of 5x5 into 10 scores.
#
#   (N,1,28,28) -conv 5x5, 6 maps, pad 2-> (N,6,28,28) -pool-> (N,6,14,14)
#   -conv 5x5, 16 maps-> (N,16,10,10) -pool-> (N,16,5,5) -flatten-> (N,400)
#   -linear-> 120 -linear-> 84 -linear-> 10
#
# Our version is the modern one: ReLU instead of scaled tanh, max pooling instead of
# trainable subsampling, a plain linear output instead of the RBF units.
# ---------------------------------------------------------------------------------------
model = models.lenet5(num_classes=10, in_channels=1).to(lesson.device)
print(model)
print(f"{models.count_parameters(model):,} parameters")
for name, param in model.named_parameters():
    print(f"  {name:<22} {str(param.shape):<16} {param.numel():>7,}")

# The parameter table above shows where the weights are: 48,000 of the 61,706 sit in the
# first fully connected layer (400 x 120), only 2,572 in the two convolutions - yet the
# convolutions do most of the computing, because each of their weights is used at every
# position of the image.

# ---------------------------------------------------------------------------------------
# 3. Training
#
# Plain SGD with momentum 0.9 (lesson 7 compares optimizers), learning rate 0.05, weight
# decay 5e-4 (a small pull of every weight towards 0, which keeps the weights small and
# generalises better), and a cosine schedule: the learning rate follows half a cosine from
# 0.05 down to 0 over the run, stepped once per epoch. Big steps early to make progress,
# small steps at the end to settle into a minimum.
# ---------------------------------------------------------------------------------------
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
state = fit(model, train_loader, optimizer, epochs, val_loader=val_loader, scheduler=scheduler,
            progress=False)
print()
for record in state.history:
    print(f"epoch {record['epoch']:2d}  lr {record['lr']:.4f}  train loss {record['train_loss']:.4f} "
          f"accuracy {100 * record['train_accuracy']:.2f}%  |  validation loss {record['val_loss']:.4f} "
          f"accuracy {100 * record['val_accuracy']:.2f}%  ({record['seconds']:.0f}s, "
          f"{record['images_per_second']:.0f} images/s)")
print(f"best validation accuracy {100 * state.best_val_accuracy:.2f}% (epoch {state.best_epoch}): "
      "those weights are kept")
viz.plot_history(state.history, lesson.figure("history.png"), title=f"LeNet-5 on MNIST ({len(train_set):,} digits)")

# In the table above the loss falls fastest in the first epoch: look at the first row's
# validation accuracy, already in the high 90s (its train accuracy, averaged over the
# whole epoch, is lower because it includes the first, untrained batches). Train and
# validation accuracy stay close together: LeNet-5 is small for this data, so it does not
# overfit much. (The lr column is the rate during that epoch: the cosine going down.)

# ---------------------------------------------------------------------------------------
# 4. The test set
# ---------------------------------------------------------------------------------------
test = evaluate(model, test_loader, return_predictions=True)
errors = int((test["predictions"] != test["labels"]).sum())
print(f"\ntest accuracy {100 * test['accuracy']:.2f}% ({errors} of {len(test_set):,} digits wrong), "
      f"test loss {test['loss']:.4f}")
viz.plot_confusion_matrix(test["labels"], test["predictions"], classes, lesson.figure("confusion_matrix.png"),
                          normalize=False, title=f"LeNet-5, MNIST test: {100 * test['accuracy']:.2f}% "
                                                 f"({errors} errors)")
counts = viz.confusion_matrix(test["labels"], test["predictions"], 10)
np.fill_diagonal(counts, 0)
top = np.dstack(np.unravel_index(np.argsort(counts, axis=None)[::-1][:5], counts.shape))[0]
print("most frequent confusions (true -> predicted: count): "
      + ", ".join(f"{t} -> {p}: {counts[t, p]}" for t, p in top if counts[t, p] > 0))

# What to expect: the default run (20,000 digits, 3 epochs) reaches about 98%; the full
# run (55,000 digits, 12 epochs) 99% or a little more. Read the five confusions printed
# above, then find them in mistakes.png: most are ones a person would understand - digits
# that share strokes, such as 7 <-> 2 (a 7 with a crossbar or a curled foot), 4 <-> 9 (an
# open or closed top), 9 -> 8 or 6 -> 0 (a loop drawn too big). Which pairs come out on top
# changes with the seed, the subset and the number of epochs; the kind of pair does not.
# The confusion matrix (confusion_matrix.png) shows every count, so you can see the rest.

# ---------------------------------------------------------------------------------------
# 5. The mistakes
#
# The most instructive figure of any classifier: the test digits it got wrong, sorted by
# how confident it was. Many are digits a human would hesitate over too; some are clear
# to us and show what the network has not learned (unusual thickness, a digit off-centre).
# ---------------------------------------------------------------------------------------
wrong = np.flatnonzero(test["predictions"] != test["labels"])
confidence = test["probabilities"].max(axis=1)
wrong = wrong[np.argsort(-confidence[wrong])][:36]
if len(wrong):
    viz.plot_predictions(test_set.images[wrong], test["labels"][wrong], test["predictions"][wrong], classes,
                         lesson.figure("mistakes.png"), probs=test["probabilities"][wrong],
                         title="Misclassified test digits, most confident first: predicted (prob) / true")
    print(f"the {len(wrong)} most confident mistakes are in mistakes.png; the surest one was predicted "
          f"{test['predictions'][wrong[0]]} with {100 * confidence[wrong[0]]:.0f}% (true {test['labels'][wrong[0]]})")

# ---------------------------------------------------------------------------------------
# 6. Inside the network
#
# The six 5x5 filters of the first layer, and what they make of one digit: stroke
# detectors at different orientations, some responding to the ink, some to the paper
# around it.
# ---------------------------------------------------------------------------------------
viz.plot_filters(model.features[0].weight, lesson.figure("conv1_filters.png"),
                 title="LeNet-5 conv1: six learned 5x5 filters")
digit = prepare(test_set.images[:1]).astype(np.float32)
with tinycnn.no_grad():
    model.eval()
    maps = model.features[1](model.features[0](tinycnn.tensor(digit, device=lesson.device)))   # conv1 -> ReLU
viz.plot_feature_maps(maps, lesson.figure("conv1_maps.png"),
                      title=f"conv1 + ReLU on a test digit ({test_set.labels[0]})")

# ---------------------------------------------------------------------------------------
# 7. Keep the weights
#
# tinycnn.save writes a nested dict of arrays and plain values as one .npz file (no pickle,
# written atomically). Lessons 11-14 look for this file (in this lesson's --out folder, in
# lessons/out/06_lenet5_mnist/, or in the shared cache below) and load it with
#     model = tinycnn.models.lenet5(); model.load_state_dict(tinycnn.load(path)["model"])
# instead of training their own LeNet.
# ---------------------------------------------------------------------------------------
def keep_if_better(weights_path):
    """Save the weights to ``weights_path`` unless it already holds better ones (e.g. a
    --quick run after a --full one must not replace better weights with worse ones)."""
    previous = tinycnn.load(weights_path).get("test_accuracy", 0.0) if weights_path.exists() else None
    if previous is not None and previous > test["accuracy"]:
        print(f"{weights_path} already holds better weights (test accuracy {100 * previous:.2f}%): kept")
        return
    tinycnn.save({"model": model.state_dict(), "test_accuracy": float(test["accuracy"]),
                  "train_images": len(train_set), "epochs": epochs, "mode": lesson.mode}, weights_path)
    print(f"weights saved to {weights_path} (test accuracy {100 * test['accuracy']:.2f}%, {lesson.mode} run)")


print()
keep_if_better(lesson.out / LESSON6_FILE)
# A copy goes to a shared cache (~/.cache/tinycnn/lessons/), so lessons 11-14 find it whatever
# --out this run had. A --quick run's network is too weak for them and stays out of it.
if not lesson.quick:
    lessons_cache_dir().mkdir(parents=True, exist_ok=True)
    keep_if_better(lessons_cache_dir() / LESSON6_FILE)

# What to remember
#   * LeNet-5: two conv-pool stages for features, three linear layers to classify.
#   * SGD + momentum + weight decay + a cosine schedule is a strong, simple recipe.
#   * Look at the mistakes, not only the accuracy: they tell you what the model is missing.

print(f"The lesson took {time.perf_counter() - started:.0f}s.")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/models/lenet.py       the LeNet-5 of section 2
#   tinycnn/functional/conv.py    conv2d (im2col + GEMM) and its backward
#   tinycnn/functional/pool.py    max_pool2d;  tinycnn/functional/loss.py  cross_entropy
#   tinycnn/optim/sgd.py          momentum and weight decay;  tinycnn/optim/lr_scheduler.py  the cosine
#   tinycnn/train.py              fit and evaluate (the loop of lesson 5, with history and best weights)
#   tinycnn/data/mnist.py, tinycnn/data/loader.py, tinycnn/viz.py (confusion matrix, mistakes)
#   tinycnn/serialization.py      tinycnn.save / tinycnn.load, the .npz of section 7
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Most of LeNet-5's weights sit in the first linear layer, yet the convolutions do most
#      of the arithmetic. Why?
#   2. Why is the learning rate lowered towards the end of training (the cosine)?
#   3. Why keep the weights of the best validation epoch rather than the last?
#   4. The most confident mistakes are printed with ~100% probability. What does that say
#      about the network's probabilities?
#
# Answers (try first)
#   1. A conv weight is reused at every position of its input (28x28 and 10x10 positions
#      here); a linear weight is used once per image. Multiply-adds = weights x positions.
#   2. Late in training the gradient is mostly noise from the mini-batch; big steps make the
#      weights bounce around a minimum, small ones let them settle into it.
#   3. The validation set estimates the test accuracy; after the best epoch further training
#      can overfit. With the cosine schedule the last epoch is often the best anyway.
#   4. That they are over-confident: a softmax output is not a calibrated probability.
#      Cross-entropy keeps pushing logits apart on the training set, so even wrong answers
#      can come with a near-1 probability.
#
# Exercises: lessons/exercises/06_lenet5_mnist.py — check your work with: python lessons/check.py 06
