"""Lesson 5 - A first CNN, on the built-in Shapes set.

Six kinds of figures, drawn at random positions, sizes, angles and colours. A linear model
on the raw pixels stays near chance; a small CNN (three conv-BN-ReLU-pool blocks, fewer
weights than the linear model) learns them in a few epochs. Explicit loop, fit(), evaluation.
"""

# ---------------------------------------------------------------------------------------
# Lessons 1-4 built the parts. Now we put them together and train a network end to end,
# on a data set that needs no download: tinycnn.data.Shapes draws circles, squares,
# triangles, stars, crosses and rings on the fly. The question of this lesson: does
# convolution really matter, or would any model with enough weights do?
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import nn, optim, viz
from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Compose, DataLoader, Normalize, Shapes, ToFloat, random_split
from tinycnn.models import count_parameters
from tinycnn.train import evaluate, fit
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. The data
#
# Images are uint8 arrays (N, 3, 32, 32), labels int64 (N,). We hold out a validation set
# from the training images (to watch for overfitting and pick the best epoch) and keep the
# test set, drawn from a different random stream, for one final measurement.
#
# The loader turns each batch into float32 and normalises it (subtract the mean, divide
# by the std, per channel): inputs centred near 0 with unit spread keep the first layer's
# outputs in a range where training behaves.
# ---------------------------------------------------------------------------------------
n_train = lesson.pick(quick=400, default=6000, full=10000)
n_val = lesson.pick(quick=100, default=500, full=1000)
n_test = lesson.pick(quick=200, default=2000, full=2000)
epochs = lesson.pick(quick=1, default=6, full=10)
batch_size = 64

full_train = Shapes(train=True, n=n_train, seed=lesson.args.seed)
test_set = Shapes(train=False, n=n_test, seed=lesson.args.seed)
train_set, val_set = random_split(full_train, [n_train - n_val, n_val], seed=lesson.args.seed)
classes = full_train.classes
print(f"train {len(train_set)}, validation {len(val_set)}, test {len(test_set)} images of shape "
      f"{full_train.images.shape[1:]}; classes: {', '.join(classes)}")
print(f"test images per class: {test_set.class_counts().tolist()}")

viz.plot_image_grid(test_set.images[:24], lesson.figure("samples.png"), ncols=8,
                    titles=[classes[k] for k in test_set.labels[:24]], title="Shapes: six classes")

prepare = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=lesson.args.seed,
                          transform=prepare, device=lesson.device)
val_loader = DataLoader(val_set, batch_size=256, transform=prepare, device=lesson.device)
test_loader = DataLoader(test_set, batch_size=256, transform=prepare, device=lesson.device)

# ---------------------------------------------------------------------------------------
# 2. A baseline: a linear model on the pixels
#
# The simplest classifier: flatten each image into 3*32*32 = 3072 numbers and take 6
# weighted sums of them, one score per class. Here is the training loop written out once,
# with nothing hidden - every loop in these lessons, and fit() itself, is this:
#
#     forward (build the graph) -> loss -> zero the old gradients -> backward -> step
# ---------------------------------------------------------------------------------------
print("\n1. Linear model (Flatten + Linear) trained with an explicit loop")
linear_model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, len(classes))).to(lesson.device)
optimizer = optim.Adam(linear_model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(1, epochs + 1):
    linear_model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in train_loader:
        logits = linear_model(images)          # forward: (B, 6) scores, the graph is recorded
        loss = loss_fn(logits, labels)         # mean cross-entropy over the batch
        optimizer.zero_grad()                  # forget the previous batch's gradients
        loss.backward()                        # fill .grad of every parameter
        optimizer.step()                       # move every parameter against its gradient
        loss_sum += loss.item() * len(labels)
        correct += int((logits.numpy().argmax(axis=1) == labels.numpy()).sum())
        seen += len(labels)
    # (each pass over the loader is a new epoch with its own shuffled order)
    val = evaluate(linear_model, val_loader)
    print(f"  epoch {epoch}: train loss {loss_sum / seen:.3f}, train accuracy {100 * correct / seen:.1f}%, "
          f"validation accuracy {100 * val['accuracy']:.1f}%")
linear_test = evaluate(linear_model, test_loader)
print(f"  linear model: {count_parameters(linear_model):,} parameters, "
      f"test accuracy {100 * linear_test['accuracy']:.1f}% (chance: {100 / len(classes):.1f}%)")

# The printout above should show the linear model stuck barely above chance on the test
# set (compare its test accuracy with the 16.7% of guessing), while its *training*
# accuracy creeps higher, epoch after epoch: it memorises pixel patterns of the training images instead of learning shapes.
# Why? A linear score is a fixed template per class, one weight per pixel. But a star can
# be anywhere, any size, any colour, on any background: no single template of pixels
# matches "star" in all of those places.

# ---------------------------------------------------------------------------------------
# 3. A small CNN
#
# Three blocks of  conv 3x3 (padding 1) -> batch norm -> ReLU -> max pool 2x2,  with 8, 16
# and 32 filters, then one linear layer on the 32 x 4 x 4 maps. Each block looks for local
# patterns anywhere in the image (lesson 3) and halves the resolution (lesson 4), so the
# later blocks see larger parts of the figure: edges -> corners and curves -> shapes.
# Batch norm (nn.BatchNorm2d) rescales each channel to zero mean and unit variance over
# the batch, which lets the network train at a large learning rate. A conv followed by
# batch norm needs no bias (the norm's shift replaces it).
# ---------------------------------------------------------------------------------------
print("\n2. A small CNN")


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


cnn = nn.Sequential(*block(3, 8), *block(8, 16), *block(16, 32),
                    nn.Flatten(), nn.Linear(32 * 4 * 4, len(classes))).to(lesson.device)
print(cnn)
print(f"CNN: {count_parameters(cnn):,} parameters - the linear model had {count_parameters(linear_model):,}")

# Follow one batch through the layers to see the shapes change:
images, _ = next(iter(test_loader))
x = images[:2]
with tinycnn.no_grad():
    for layer in cnn:
        x = layer(x)
        if isinstance(layer, (nn.MaxPool2d, nn.Flatten, nn.Linear)):
            print(f"  after {type(layer).__name__:<10} {x.shape}")

# ---------------------------------------------------------------------------------------
# 4. Training with fit()
#
# tinycnn.train.fit runs the same loop as section 2, plus a validation pass after every
# epoch, a progress bar, and keeping the weights of the best validation epoch. The recipe
# is the one `tinycnn train` uses for Shapes: Adam with a one-cycle schedule (the learning
# rate warms up to 1e-2 over the first 30% of the steps, then anneals to almost 0),
# stepped after every batch.
# ---------------------------------------------------------------------------------------
print(f"\n3. Training the CNN for {epochs} epochs")
optimizer = optim.Adam(cnn.parameters(), lr=1e-2)
scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=epochs, steps_per_epoch=len(train_loader))
train_loader.set_epoch(0)     # the CNN sees the same epoch orders as the linear model
state = fit(cnn, train_loader, optimizer, epochs, val_loader=val_loader, scheduler=scheduler,
            step_scheduler_per_batch=True, progress=False)
for record in state.history:
    print(f"  epoch {record['epoch']}: train loss {record['train_loss']:.3f}, "
          f"train accuracy {100 * record['train_accuracy']:.1f}%, "
          f"validation accuracy {100 * record['val_accuracy']:.1f}%  ({record['seconds']:.1f}s)")
viz.plot_history(state.history, lesson.figure("history.png"), title="Small CNN on Shapes")
print(f"  best validation epoch: {state.best_epoch} ({100 * state.best_val_accuracy:.1f}%); its weights are kept")

# ---------------------------------------------------------------------------------------
# 5. The test set, once
#
# Everything so far was chosen by looking at training and validation images. The test
# images were never used, so their accuracy is an honest estimate for new images.
# ---------------------------------------------------------------------------------------
print("\n4. Test set")
test = evaluate(cnn, test_loader, return_predictions=True)
print(f"  CNN test accuracy {100 * test['accuracy']:.1f}%  (loss {test['loss']:.3f})")
print(f"  linear model       {100 * linear_test['accuracy']:.1f}%")
per_class = viz.confusion_matrix(test["labels"], test["predictions"], len(classes))
for k, name in enumerate(classes):
    row = per_class[k]
    worst = int(np.argmax(np.where(np.arange(len(classes)) == k, -1, row)))
    print(f"  {name:<9} recall {100 * row[k] / max(row.sum(), 1):5.1f}%"
          + (f"   most often mistaken for: {classes[worst]} ({row[worst]})" if row[worst] else ""))
viz.plot_confusion_matrix(test["labels"], test["predictions"], classes, lesson.figure("confusion_matrix.png"),
                          title=f"Small CNN on Shapes, test accuracy {100 * test['accuracy']:.1f}%")
wrong = np.flatnonzero(test["predictions"] != test["labels"])
right = np.flatnonzero(test["predictions"] == test["labels"])
shown = np.concatenate([wrong[:12], right[:24 - min(len(wrong), 12)]])
viz.plot_predictions(test_set.images[shown], test["labels"][shown], test["predictions"][shown], classes,
                     lesson.figure("predictions.png"), probs=test["probabilities"][shown],
                     title="Test images: mistakes first (red), then correct ones (green)")

# Compare the two test accuracies printed above: the CNN should be far above the linear
# model (in the default run, in the 90s against the linear model's near-chance), with half
# as many parameters. Convolution is not "more capacity": it is the right *assumption* -
# the same local pattern means the same thing everywhere in the image. Now read the
# training table's validation column: with the one-cycle schedule it climbs every epoch,
# by the most in the first epochs (from about half right after the first), and the last
# epochs, at a small learning rate, add the final points. The per-class recalls and the
# confusion matrix (every cell shows its count) show what remains hard; look for the
# pairs that share features: squares and triangles (straight edges and corners both; on
# a small figure they differ by a few pixels) and stars and crosses (both have arms).
# predictions.png shows the mistakes: mostly small or low-contrast figures.

# ---------------------------------------------------------------------------------------
# 6. What did the first layer learn?
#
# The 8 filters of the first convolution are 3x3x3: small colour images themselves,
# shown as such in first_layer_filters.png (grey = 0). Do not expect textbook Sobel
# filters: after a few epochs of training, 3x3 filters look noisy. A number says more than
# the picture: split each filter into its grey part (the same 3x3 pattern on R, G and B,
# which responds to brightness: edges, blobs) and the rest (differences between the
# channels, which respond to colour). The share of the grey part is printed below. On
# Shapes, where each figure and background has a random colour, many filters are mostly
# colour: telling a figure from its background by colour is the easiest first step. The
# feature maps of one test image (first_layer_maps.png) show what each filter picks out.
# ---------------------------------------------------------------------------------------
first_weights = cnn[0].weight.numpy().astype(np.float64)                # (8, 3, 3, 3)
grey_part = first_weights.mean(axis=1, keepdims=True).repeat(3, axis=1)  # same pattern on R, G, B
grey_share = (grey_part ** 2).sum(axis=(1, 2, 3)) / (first_weights ** 2).sum(axis=(1, 2, 3))
print("\n5. First-layer filters: share of each filter's weight that is grey (brightness) "
      "rather than colour:\n  " + "  ".join(f"{share:.2f}" for share in grey_share))
print(f"  {int((grey_share < 0.5).sum())} of {len(grey_share)} filters are mostly colour detectors")
viz.plot_filters(cnn[0].weight, lesson.figure("first_layer_filters.png"),
                 title="The 8 learned 3x3 filters of the first layer (RGB)")
with tinycnn.no_grad():
    cnn.eval()
    maps = cnn[2](cnn[1](cnn[0](images[:1])))    # conv -> batch norm -> ReLU, before pooling
viz.plot_feature_maps(maps, lesson.figure("first_layer_maps.png"),
                      title=f"First block's 8 feature maps for one test image ({classes[test_set.labels[0]]})")

# What to remember
#   * Training loop: forward -> loss -> zero_grad -> backward -> step. fit() adds
#     validation, best-epoch selection and a schedule around it.
#   * Hold out validation data to choose; touch the test set once, at the end.
#   * On images, convolution beats a linear model with more weights: shared local filters
#     are the right assumption for pictures, where a pattern can appear anywhere.

print(f"\nThe lesson took {time.perf_counter() - started:.0f}s.")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/nn/conv.py, tinycnn/nn/batchnorm.py, tinycnn/nn/pooling.py, tinycnn/nn/linear.py
#                                   the layers of section 3 (modules holding Parameters)
#   tinycnn/functional/conv.py, norm.py, pool.py, loss.py   what those layers compute
#   tinycnn/optim/adam.py, tinycnn/optim/lr_scheduler.py    Adam and OneCycleLR
#   tinycnn/train.py                fit() and evaluate(): the loop of section 2, and more
#   tinycnn/data/shapes.py, tinycnn/data/loader.py          the data set and the batches
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Why does the linear model's training accuracy rise while its test accuracy does not?
#   2. How many weights does the first conv layer here have, and why no bias?
#   3. What are the five steps of one training iteration, in order?
#   4. Why is the test set evaluated only once, at the end?
#
# Answers (try first)
#   1. It memorises pixel templates of the training images; a figure at a new place, size
#      or colour matches none of them, so nothing carries over to new images.
#   2. 8 x 3 x 3 x 3 = 216. Batch norm right after it subtracts each channel's mean, which
#      would cancel any bias; its own shift (beta) plays the bias's role.
#   3. Forward (model(x)), loss, optimizer.zero_grad(), loss.backward(), optimizer.step().
#   4. Every choice made by looking at a set (architecture, epochs, learning rate) fits the
#      model a little to that set; the test set must be untouched to estimate accuracy on
#      new images honestly. Validation data is for choosing.
#
# Exercises: lessons/exercises/05_first_cnn_shapes.py — check your work with: python lessons/check.py 05
