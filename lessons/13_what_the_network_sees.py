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
# Lesson 6's if its weights are saved (and good); otherwise one epoch of training here.
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

# saliency_mnist.png: the sensitive pixels lie on and right next to the strokes, and
# especially where a small change would turn the digit into another one - the gap at the
# top of a 4 (closing it makes a 9), the ends of a 7's bar. Saliency maps are noisy: a
# gradient describes a tiny neighbourhood of the image, and with ReLUs it jumps from pixel
# to pixel.

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
viz.overlay_heatmap(mnist_test.images[:n_show], placed, lesson.figure("gradcam_mnist.png"), alpha=0.5,
                    titles=[f"predicted {p}" for p in predicted], title="Grad-CAM on conv2 (10x10 cells of 2x2 pixels)")

# gradcam_mnist.png: coarser than saliency (10x10 cells, blurred by the upsampling) but
# calmer, and on the parts that make the digit what it is: the loop of a 9 or 6, the
# crossing of a 4. On MNIST the digit fills the image, so "where" is not a hard question.

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
viz.overlay_heatmap(images, cam, lesson.figure("gradcam_shapes.png"), titles=names, alpha=0.5,
                    title=f"Grad-CAM on the last conv block ({cam.shape[1]}x{cam.shape[2]}, upsampled)")
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
# These tools are how one catches a network cheating: a classifier of "wolf vs husky"
# whose Grad-CAM lights up the snow, not the animal, has learnt the background. Use them
# before trusting a model, especially one trained on data you did not collect yourself.

print(f"\nlesson 13 took {time.perf_counter() - started:.0f}s")
lesson.finish()
