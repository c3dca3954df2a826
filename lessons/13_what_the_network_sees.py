"""Lesson 13 - What the network sees.

Four ways to look inside a trained CNN: its learned filters, the feature maps one image
produces, saliency maps (which pixels the class score is most sensitive to) and Grad-CAM
(which regions of the last feature maps the decision rests on). LeNet-5 on MNIST (lesson
6's weights when present), then a small CNN on Shapes, where Grad-CAM must find the figure.
"""

# ---------------------------------------------------------------------------------------
# A trained network is 60,000 numbers. Printing them tells nothing; but every one of them
# sits in a layer that does something to an image, and *that* we can draw. None of these
# pictures is the full truth - lesson 12 showed how differently from us a network can
# "see" - but together they answer useful questions: has it learnt strokes or noise? Does
# it look at the object or at the background? This lesson needs MNIST (--data-dir DIR
# with mnist/ in it, or --download); the Shapes part draws its own data.
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import models, optim, viz
from tinycnn.data import (
    MNIST, MNIST_MEAN, MNIST_STD, SHAPES_MEAN, SHAPES_STD, Compose, DataLoader, Normalize, Shapes, ToFloat,
)
from tinycnn.train import evaluate, fit
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__, needs_data=True, uses_lenet5=True)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. A trained LeNet-5
#
# Lesson 6's if its weights are found (and good); otherwise (or with --lenet5 train) one
# epoch of training here. What follows holds for both.
# ---------------------------------------------------------------------------------------
prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])
mnist_test = lesson.dataset(MNIST, train=False)

model = lesson.mnist_lenet5()
model.eval()
conv1, conv2 = model.features[0], model.features[3]

# ---------------------------------------------------------------------------------------
# 2. The filters
#
# The first convolution has 6 filters of 5x5 weights, each looking at the raw pixels: we
# can show them as tiny images (grey = 0, lighter = positive, darker = negative weights).
# A filter responds most to an image patch that looks like it.
# ---------------------------------------------------------------------------------------
viz.plot_filters(conv1.weight, lesson.figure("conv1_filters.png"), title="LeNet-5, first layer: 6 filters of 5x5")
viz.plot_filters(conv2.weight, lesson.figure("conv2_filters.png"),
                 title="Second layer: 16 filters (their weights on map 0 of the first layer)")
w = conv1.weight.numpy()
print(f"conv1 weights {w.shape}: each filter's mean {np.round(w.mean(axis=(1, 2, 3)), 2)}")

# conv1_filters.png: do not expect textbook pictures from 6 filters of 5x5 - but look
# for a light band next to a dark one. Such a filter answers "a stroke boundary runs here,
# in this direction": an edge detector. Others have a light blob in the middle (a stroke
# detector) or look noisy: they still matter, in combination with the others. Nobody told
# the network to look for edges; they are what the gradient found useful for telling
# digits apart - much like the receptive fields Hubel and Wiesel measured in a cat's
# visual cortex. (Bigger networks on photos learn strikingly clean edge and colour
# filters in their first layer.) The second layer's filters are harder to read: they
# combine maps, not pixels, and only one of their 6 input channels is shown.

# ---------------------------------------------------------------------------------------
# 3. Feature maps: what the filters make of one image
#
# Run one digit through the layers one at a time and keep what each produces. (A
# `Sequential` is a list of layers; calling them in turn is exactly its forward.)
# ---------------------------------------------------------------------------------------
index = 0
digit = tinycnn.tensor(prepare(mnist_test.images[index:index + 1]), device=lesson.device)
activations = []
with tinycnn.no_grad():
    x = digit
    for layer in model.features:
        x = layer(x)
        activations.append(x)
viz.plot_image_grid(mnist_test.images[index:index + 1], lesson.figure("input_digit.png"),
                    titles=[f"test digit {index}: a {mnist_test.labels[index]}"])
viz.plot_feature_maps(activations[1], lesson.figure("feature_maps_conv1.png"),
                      title="After conv1 + ReLU: 6 maps of 28x28")
viz.plot_feature_maps(activations[4], lesson.figure("feature_maps_conv2.png"),
                      title="After conv2 + ReLU: 16 maps of 10x10")
for name, a in (("conv1", activations[1]), ("conv2", activations[4])):
    a = a.numpy()
    print(f"{name} + ReLU: {a.shape[1:]}, {100 * (a > 0).mean():.0f}% of the values are positive (the rest: ReLU's 0)")

# feature_maps_conv1.png: each first-layer map is the digit seen through one filter -
# bright where its edge or stroke direction occurs: one map lights up along the left
# edges of the strokes, another along horizontal strokes, and so on. The second layer's
# maps (after one more pooling, 10x10) are coarser and sparser: each responds to a
# combination - a corner, the end of a stroke, a loop - in a region of the digit.

# ---------------------------------------------------------------------------------------
# 4. Saliency: which pixels does the score depend on?
#
# Simonyan, Vedaldi & Zisserman (2014): take the score of the predicted class, s_c (the
# logit, before softmax), and its gradient with respect to the input image, ds_c/dx. A
# pixel with a large |gradient| is one where a small change would move the score most.
# The image is made a Tensor with requires_grad=True, and backward fills its .grad.
# ---------------------------------------------------------------------------------------


def saliency(net, images) -> tuple:
    """(|d score / d pixel| (N, H, W), predicted classes) for a batch of prepared images (N, C, H, W)."""
    x = tinycnn.tensor(images, requires_grad=True, device=lesson.device)
    scores = net(x)
    predicted = scores.numpy().argmax(axis=1)
    # sum over the batch of each image's predicted-class score: image i's gradient only
    # comes from its own score, so one backward does the whole batch
    (scores * tinycnn.tensor(np.eye(scores.shape[1], dtype=np.float32)[predicted], device=lesson.device)).sum().backward()
    net.zero_grad()
    return np.abs(x.grad.numpy()).max(axis=1), predicted


n_show = lesson.pick(quick=4, default=8, full=16)
digits = prepare(mnist_test.images[:n_show])
sal, predicted = saliency(model, digits)
viz.overlay_heatmap(mnist_test.images[:n_show], sal, lesson.figure("saliency_mnist.png"), alpha=0.6,
                    titles=[f"predicted {p}" for p in predicted], title="Saliency |d score / d pixel|")

# saliency_mnist.png: the sensitive pixels should lie on and right next to the strokes,
# often where a small change would turn the digit into another one (look at the top of
# the 4s, where closing the gap would make a 9, and at the 7's bar). Saliency maps are
# noisy: a gradient describes a tiny neighbourhood of the image, and with ReLUs it jumps
# from pixel to pixel.

# ---------------------------------------------------------------------------------------
# 5. Grad-CAM: which regions does the decision rest on?
#
# Selvaraju et al. (2017) look at the last convolutional feature maps A_k (here the 16
# maps of 10x10 after conv2 + ReLU) instead of pixels, since they are both spatial and
# high-level. For the predicted class c:
#
#   1. weights   alpha_k = mean over positions of d s_c / d A_k   - how much map k matters
#   2. map       cam = ReLU(sum_k alpha_k * A_k)                   - evidence *for* class c
#   3. upsample the 10x10 map to 28x28 and lay it over the image.
#
# To get d s_c / d A_k we need the gradient of an intermediate result, not of a leaf:
# `A.retain_grad()` asks backward to keep it in A.grad. (The weights get gradients too, as
# in any backward; `zero_grad()` throws them away.)
# ---------------------------------------------------------------------------------------


def grad_cam(net, images, last_conv: int) -> tuple:
    """(cam (N, h, w), predicted classes): Grad-CAM on the output of net.features[last_conv]."""
    x = tinycnn.tensor(images, device=lesson.device)
    for layer in net.features[:last_conv + 1]:
        x = layer(x)
    maps = x                      # A: (N, K, h, w)
    maps.retain_grad()
    for layer in net.features[last_conv + 1:]:
        x = layer(x)
    scores = net.classifier(x)
    predicted = scores.numpy().argmax(axis=1)
    (scores * tinycnn.tensor(np.eye(scores.shape[1], dtype=np.float32)[predicted], device=lesson.device)).sum().backward()
    net.zero_grad()
    alpha = maps.grad.numpy().mean(axis=(2, 3), keepdims=True)          # (N, K, 1, 1)
    cam = np.maximum((alpha * maps.numpy()).sum(axis=1), 0.0)          # (N, h, w)
    return cam, predicted


last_relu = 4                        # features: conv, relu, pool, conv, relu (index 4), pool
cam, predicted = grad_cam(model, digits, last_relu)
print(f"Grad-CAM maps: {cam.shape} (one 10x10 map per digit)")

# Where does a 10x10 map sit in the 28x28 image? Each conv2 output looks at 5x5 cells of
# the 14x14 pooled map, each of which covers 2x2 pixels: cell (i, j) is centred on pixel
# (2i + 5, 2j + 5), so the map covers the central 20x20 pixels, not the whole image
# (conv2 has no padding: it never centres on the border). Place it there before drawing:
# every cell becomes a 2x2 block, with a 4-pixel border of zeros around.
placed = np.pad(np.kron(cam, np.ones((2, 2))), ((0, 0), (4, 4), (4, 4)))
empty = cam.reshape(len(cam), -1).max(axis=1) <= 0
viz.overlay_heatmap(mnist_test.images[:n_show], placed, lesson.figure("gradcam_mnist.png"), alpha=0.7,
                    titles=[f"predicted {p}" + (" (empty map)" if e else "") for p, e in zip(predicted, empty)],
                    title="Grad-CAM on conv2 (10x10 cells of 2x2 pixels)")
print("Grad-CAM on digits: share of the 10x10 cells with positive evidence: "
      + ", ".join(f"{label}: {100 * (c > 0).mean():.0f}%" for label, c in zip(mnist_test.labels[:n_show], cam)))
if empty.any():
    print(f"  empty maps (no cell positive) for the digits {', '.join(str(d) for d in mnist_test.labels[:n_show][empty])}")

# gradcam_mnist.png: coarser than saliency (10x10 cells) but calmer. Where a map is not
# empty, look at which part of the stroke it marks - often a part that tells the digit
# from its neighbours (the bar of a 7, the crossing of a 4). But read the printout first:
# some maps can be empty, or nearly so. That is Grad-CAM's own limit, not a bug: the
# weights alpha_k are averages of the gradient over the whole map, and when the maps with
# positive alpha are quiet on this digit, the weighted sum is negative everywhere and
# the ReLU leaves nothing. With only 16 maps of 10x10, a digit's evidence can sit in a
# few maps whose average gradient is negative. Grad-CAM is a summary of the last layer,
# not a reading of the network's mind; on MNIST, where the digit fills the image, "where"
# is not even a hard question. The next section asks it where it matters.

# ---------------------------------------------------------------------------------------
# 6. Grad-CAM where "where" matters: Shapes
#
# Each Shapes image has one figure at a random place, size and angle over a noisy,
# tilted background (lesson 5). A small CNN (three conv-BN-ReLU-pool blocks, `small_cnn`)
# learns them in a few epochs. If the network decides for the right reason, Grad-CAM on
# its last conv block (8x8, before the last pooling) must light up the figure, wherever
# it is.
# ---------------------------------------------------------------------------------------
n_shapes = lesson.pick(quick=300, default=6000, full=10000)
shape_epochs = lesson.pick(quick=1, default=5, full=10)
shapes_train = Shapes(train=True, n=n_shapes, seed=lesson.args.seed)
shapes_test = Shapes(train=False, n=lesson.pick(quick=100, default=1000, full=2000), seed=lesson.args.seed)
shapes_prepare = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
loader = DataLoader(shapes_train, batch_size=64, shuffle=True, seed=lesson.args.seed, transform=shapes_prepare,
                    device=lesson.device)
net = models.small_cnn(num_classes=6).to(lesson.device)
optimizer = optim.Adam(net.parameters(), lr=1e-2)
schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=shape_epochs, steps_per_epoch=len(loader))
start = time.perf_counter()
fit(net, loader, optimizer, shape_epochs, scheduler=schedule, step_scheduler_per_batch=True, progress=False)
shapes_accuracy = evaluate(net, DataLoader(shapes_test, batch_size=500, transform=shapes_prepare,
                                           device=lesson.device))["accuracy"]
print(f"\nsmall_cnn on {n_shapes:,} Shapes images, {shape_epochs} epochs ({time.perf_counter() - start:.0f}s): "
      f"{100 * shapes_accuracy:.1f}% test accuracy")

net.eval()
n_show_shapes = lesson.pick(quick=6, default=12, full=24)
images = shapes_test.images[:n_show_shapes]
print("small_cnn features:", " | ".join(type(layer).__name__ for layer in net.features))
last_block_relu = len(net.features) - 2            # ... conv, BN, ReLU (this one), MaxPool
cam, predicted = grad_cam(net, shapes_prepare(images), last_block_relu)
sal, _ = saliency(net, shapes_prepare(images))
names = [f"{shapes_test.classes[p]}" + ("" if p == t else f" (true: {shapes_test.classes[t]})")
         for p, t in zip(predicted, shapes_test.labels[:n_show_shapes])]
viz.plot_image_grid(images, lesson.figure("shapes_images.png"), titles=names, title="Shapes test images, predicted")
viz.overlay_heatmap(images, cam, lesson.figure("gradcam_shapes.png"), titles=names, alpha=0.8,
                    title=f"Grad-CAM, last conv block ({cam.shape[1]}x{cam.shape[2]}), on grey images")
# How much of each map's heat falls on the figure? Shapes knows where it drew each figure
# only as pixels that differ from the background, so we measure it roughly: the share of
# the heat inside the figure's bounding box, which a map spread evenly would give as the
# box's share of the image.
cam_up = np.kron(cam, np.ones((images.shape[2] // cam.shape[1], images.shape[3] // cam.shape[2])))
background = np.median(images.reshape(len(images), 3, -1), axis=2)[:, :, None, None]
figure_mask = np.abs(images.astype(np.float32) - background).max(axis=1) > 60
on_figure, box_share = [], []
for heat, mask in zip(cam_up, figure_mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if heat.sum() <= 0 or rows.size == 0:
        continue
    box = np.zeros_like(mask)
    box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    on_figure.append(heat[box].sum() / heat.sum())
    box_share.append(box.mean())
if on_figure:
    print(f"Grad-CAM on Shapes: on average {100 * np.mean(on_figure):.0f}% of the heat falls in the figure's box, "
          f"which covers {100 * np.mean(box_share):.0f}% of the image")
viz.overlay_heatmap(images, sal, lesson.figure("saliency_shapes.png"), titles=names, alpha=0.6,
                    title="Saliency |d score / d pixel|")

# Compare shapes_images.png with gradcam_shapes.png: for most images the heat sits on
# the figure, wherever it is placed - the network looks where we would, though its 8x8 map
# can only say so to within 4 pixels. Often the hottest spot is a *part* - the tips of a
# star, an arm of a cross, the rim of a ring - what tells the class from the others. Look
# also for the exceptions, where some heat sits on the background: the decision for the
# class then also rests on "there is nothing else here" - evidence of a kind we would not
# use. The saliency maps (saliency_shapes.png) agree on the location but are speckled.
#
# These tools are how one catches a network cheating. The classic story is from another
# explanation method, LIME (Ribeiro, Singh & Guestrin 2016): a "wolf vs husky" classifier,
# trained on purpose on photos where every wolf stood in snow, was explained as looking at
# the snow, not the animal - it had learnt the background. Grad-CAM asks the same
# question of a CNN's last layer. Use such tools before trusting a model, especially one
# trained on data you did not collect yourself - and remember how sparse (or empty) some
# digits' maps came out above: an explanation is a summary, and it can be silent or wrong too.

print(f"\nlesson 13 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/tensor.py              retain_grad (keep an intermediate's .grad), requires_grad on inputs
#   tinycnn/functional/conv.py     the input gradient of a convolution, which saliency follows
#   tinycnn/viz.py                 plot_filters, plot_feature_maps, overlay_heatmap
#   tinycnn/models/lenet.py, tinycnn/models/small.py   the two networks looked into
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. What is the difference between saliency and Grad-CAM, in what they differentiate
#      and at what resolution they answer?
#   2. Why does Grad-CAM need retain_grad(), while saliency does not?
#   3. Why can a Grad-CAM map be all zero for a correctly classified image?
#   4. Where in the 28x28 image does LeNet-5's 10x10 conv2 map sit, and why not everywhere?
#
# Answers (try first)
#   1. Saliency: d score / d pixel, per pixel (fine, noisy). Grad-CAM: the last conv maps
#      weighted by their average gradient, at the maps' resolution (coarse, calmer).
#   2. The input was made a leaf with requires_grad=True, and leaves keep .grad; the conv
#      maps are intermediate results, whose gradients backward frees unless asked.
#   3. cam = ReLU(sum_k alpha_k A_k): if the maps with positive alpha_k are inactive where
#      the others are active, the sum is negative at every cell and the ReLU zeroes it.
#   4. The central 20x20 pixels (cells 2x2 each): conv2 has no padding, so its windows
#      never centre on the border.
#
# Exercises: lessons/exercises/13_what_the_network_sees.py — check your work with: python lessons/check.py 13
