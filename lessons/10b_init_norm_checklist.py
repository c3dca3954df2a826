"""Lesson 10b - Initialisation, normalisation and a training checklist.

Why some networks train and others sit at chance before the first step: activation and
gradient histograms of a deep plain net under three initialisations; inputs normalised or
not; batch norm in train and eval mode (one image alone, lesson 10's validation spike);
and the checks to run before a long training run - the loss at initialisation, overfitting
one batch, a learning-rate range test - ending in a checklist.
"""

# ---------------------------------------------------------------------------------------
# Lessons 9 and 10 trained deep networks with recipes that worked. This lesson is about
# what is inside those recipes and what to do when a network does not train: most
# failures are visible before or within the first hundred steps, if you know where to
# look. Everything here runs on the built-in Shapes set (drawn at 16x16 pixels to keep it
# fast), so it needs no download.
# ---------------------------------------------------------------------------------------

import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
from tinycnn import models, nn, optim  # noqa: E402
from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Compose, DataLoader, Normalize, Shapes, Subset, ToFloat  # noqa: E402
from tinycnn.nn import init  # noqa: E402
from tinycnn.train import evaluate  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
started = time.perf_counter()
SIZE = 16
CLASSES = 6
n_train = lesson.pick(quick=256, default=2000, full=6000)
n_val = lesson.pick(quick=128, default=500, full=2000)
train_set = Shapes(train=True, n=n_train, size=SIZE, seed=lesson.args.seed)
val_set = Shapes(train=False, n=n_val, size=SIZE, seed=lesson.args.seed)
standardise = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
print(f"Shapes at {SIZE}x{SIZE}: {n_train} training and {n_val} validation images, {CLASSES} classes "
      f"(a uniform guess scores loss log({CLASSES}) = {math.log(CLASSES):.3f})")


def loader(dataset, transform=standardise, batch_size=64, shuffle=True):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=lesson.args.seed, transform=transform,
                      device=lesson.device)


# ---------------------------------------------------------------------------------------
# 1. Initialisation: watch the signal, layer by layer
#
# A convolution sums fan_in = C_in * 3 * 3 products. With independent weights of variance
# Var(w) and inputs of mean square E[x^2], each output has variance
#
#     Var(y) = fan_in * Var(w) * E[x^2]
#
# and a ReLU keeps half of a symmetric signal's square: E[relu(y)^2] = Var(y) / 2. So every
# conv + ReLU multiplies the signal's mean square by fan_in * Var(w) / 2. Three choices:
#   * too small, w ~ N(0, 0.01^2) (a classic first attempt): factor 144 * 1e-4 / 2 = 0.0072
#     for 16 channels - the signal shrinks ~12x in std per layer;
#   * tinycnn's default (PyTorch's): uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance
#     1/(3 fan_in): factor 1/6, std shrinks ~2.4x per layer (until the biases, drawn from
#     the same range, are all that is left);
#   * He et al. (2015), w ~ N(0, 2/fan_in): factor exactly 1 - the signal keeps its size
#     at any depth. `init.kaiming_normal_(w, nonlinearity="relu")`.
# The gradients travel back through the same weights (transposed) and shrink or grow by
# the same factors. We build a plain net of 10 convolutions (16 channels, no batch norm,
# no skip connections), initialise it three ways, and look at one batch.
# ---------------------------------------------------------------------------------------
print("\n1. Activations and gradients of a 10-convolution plain net, by initialisation")
DEPTH, WIDTH = 10, 16


def plain_net():
    layers = [nn.Conv2d(3, WIDTH, 3, padding=1), nn.ReLU()]
    for _ in range(DEPTH - 1):
        layers += [nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, CLASSES))


def initialise(model, how):
    """'default' keeps what the layers drew; 'too small' and 'He' redraw every weight, biases 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and how != "default":
            if how == "too small":
                init.normal_(module.weight, 0.0, 0.01)
            else:
                init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)
    return model


probe_images, probe_labels = next(iter(loader(train_set, batch_size=lesson.pick(quick=32, default=64, full=128))))
probes = {}
for how in ("too small", "default", "He"):
    tinycnn.manual_seed(lesson.args.seed)
    model = initialise(plain_net().to(lesson.device), how)
    h, conv_outputs = probe_images, []
    for layer in model:                       # the forward of nn.Sequential, written out to keep each conv's output
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            h.retain_grad()                   # keep dLoss/d(this output) after backward
            conv_outputs.append(h)
    loss = nn.CrossEntropyLoss()(h, probe_labels)
    loss.backward()
    probes[how] = dict(loss=loss.item(),
                       activations=[o.numpy().ravel() for o in conv_outputs],
                       gradients=[o.grad.numpy().ravel() for o in conv_outputs],
                       weight_grad_norms=[float(np.linalg.norm(m.weight.grad.numpy()))
                                          for m in model if isinstance(m, nn.Conv2d)])

shown = [1, 4, 7, 10]
fan_in = WIDTH * 9
predicted_factor = {"too small": math.sqrt(fan_in * 0.01 ** 2 / 2), "default": math.sqrt(1 / 6), "He": 1.0}
print(f"{'init':<10}{'loss':>7}   std of conv outputs, layers " + ", ".join(map(str, shown)) +
      f"{'':>6}std per layer: predicted / measured (1-4)   ||dW|| layer 1 / layer 10")
for how, probe in probes.items():
    stds = [float(a.std()) for a in probe["activations"]]
    measured = (stds[3] / stds[0]) ** (1 / 3)          # the mean ratio per layer, from layer 1 to layer 4
    norms = probe["weight_grad_norms"]
    print(f"{how:<10}{probe['loss']:7.3f}   " + "  ".join(f"{stds[k - 1]:8.1e}" for k in shown) +
          f"{predicted_factor[how]:16.3f} / {measured:.3f}{norms[0]:22.1e} / {norms[-1]:.1e}")
print(f"{'':<10}{'':>7}   std of dLoss/d(conv output), same layers")
for how, probe in probes.items():
    print(f"{how:<10}{'':>7}   " + "  ".join(f"{float(probe['gradients'][k - 1].std()):8.1e}" for k in shown))


def histogram_grid(key, path, title, xlabel):
    fig, axes = plt.subplots(3, len(shown), figsize=(13, 7.5), layout="constrained")
    for row, (how, probe) in enumerate(probes.items()):
        for col, layer in enumerate(shown):
            values = probe[key][layer - 1]
            ax = axes[row, col]
            ax.hist(values, bins=60, color=f"C{row}")
            ax.set_yscale("log")
            ax.set_title(f"{how}, layer {layer}: std {values.std():.1e}", fontsize=9)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
            if row == 2:
                ax.set_xlabel(xlabel)
    fig.suptitle(title + " (each panel has its own x axis: read the scale and the std)")
    fig.savefig(lesson.figure(path))
    plt.close(fig)


histogram_grid("activations", "activation_histograms.png",
               "Conv outputs (before ReLU) of a plain 10-layer net, one batch", "value")
histogram_grid("gradients", "gradient_histograms.png",
               "dLoss/d(conv output) of the same net, same batch", "gradient")
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
layers = np.arange(1, DEPTH + 1)
for row, (how, probe) in enumerate(probes.items()):
    axes[0].plot(layers, [a.std() for a in probe["activations"]], "o-", color=f"C{row}", label=how)
    axes[1].plot(layers, probe["weight_grad_norms"], "o-", color=f"C{row}", label=how)
axes[0].set(yscale="log", xlabel="convolution (1 = nearest the input)", ylabel="std of the conv output",
            title="The signal going forward")
axes[1].set(yscale="log", xlabel="convolution (1 = nearest the input)", ylabel="||dLoss/dW||",
            title="The gradient each layer's weights get")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
fig.savefig(lesson.figure("scale_by_layer.png"))
plt.close(fig)

# What the table and the figures show:
#   * too small: the measured shrink factor per layer matches the prediction, and by
#     layer 10 the conv outputs are some ten orders of magnitude below layer 1's. The
#     network's output no longer depends on the image (the loss is exactly log(6), a
#     uniform guess) and the gradients are as tiny: nothing can learn.
#     activation_histograms.png: the same bell shape in every panel, only the x scale
#     collapses.
#   * default: the first layers shrink by about the predicted 1/sqrt(6) per layer; then
#     the std stops falling, because the biases (drawn from +-1/sqrt(fan_in)) are all that
#     is left: the deep layers' histograms are narrow clumps of bias values, the same for
#     every image. The weight gradients grow from the input to the output by orders of
#     magnitude (scale_by_layer.png, right): the first layers hardly learn. This is the
#     default lesson 9's plain net started from.
#   * He: the std stays of order 1 at every depth (it wanders by a factor of two or so:
#     16 channels make a noisy estimate of a variance) and the gradients arrive at all
#     layers at comparable sizes. That is what made plain nets of 20-30 layers trainable
#     (He et al. 2015); batch norm (lesson 9) and residual connections get the same effect
#     whatever the weights become during training.
# tinycnn's models.resnet20 applies He initialisation itself (tinycnn/models/resnet.py);
# a hand-built nn.Sequential gets the layers' default.

# ---------------------------------------------------------------------------------------
# 2. Normalising the inputs
#
# The first layer sees the pixels. Given as stored (uint8 0..255, cast to float), its
# outputs are hundreds of times larger than with pixels scaled to [0, 1], and its weight
# gradients (sums of dY * x) as well; scaled to [0, 1] the pixels all share one sign
# (mean 0.5), so the gradients of a filter's weights tend to share one sign too and
# the optimiser zig-zags; standardised per channel ((x/255 - mean) / std) they are centred
# with unit spread, which is what the initialisations above assume.
# We train the same small CNN (lesson 7's: two conv-ReLU-pool blocks and a linear layer)
# on the three versions of the inputs without batch norm, then with batch norm after
# each convolution on the two extremes. Same initial weights, same batches, Adam at 3e-3.
# ---------------------------------------------------------------------------------------
print("\n2. Inputs as stored, scaled to [0, 1], and standardised: with and without batch norm")
epochs = lesson.pick(quick=1, default=3, full=6)


class AsStored:
    """uint8 0..255 -> float32 0..255: the pixels as the file holds them (no scaling)."""

    def __call__(self, images):
        return images.astype(np.float32)


inputs = {"0..255": AsStored(), "[0, 1]": ToFloat(), "standardised": standardise}


def small_cnn(batch_norm: bool):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1)] + ([nn.BatchNorm2d(cout)] if batch_norm else []) + \
               [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 16), *block(16, 32), nn.Flatten(), nn.Linear(32 * 4 * 4, CLASSES))


def train(model, transform, epochs, optimizer, loss_fn=nn.CrossEntropyLoss()):
    """Plain training loop; returns the per-step losses (stops at the first non-finite one)."""
    train_loader = loader(train_set, transform)
    losses = []
    for epoch in range(epochs):
        train_loader.set_epoch(epoch)
        model.train()
        for images, labels in train_loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if not np.isfinite(losses[-1]):
                return np.array(losses)
    return np.array(losses)


trained = {}
print(f"{'':<12}{'inputs':<14}{'1st layer std':>14}{'first 10 steps':>16}{'last epoch':>12}"
      f"{'val loss':>10}{'val acc':>9}")
for batch_norm in (False, True):
    tinycnn.manual_seed(lesson.args.seed)
    start_state = small_cnn(batch_norm).state_dict()
    for name, transform in inputs.items():
        if batch_norm and name == "[0, 1]":
            continue                          # (to save time: with BN, the two extremes tell the story)
        model = small_cnn(batch_norm).to(lesson.device)
        model.load_state_dict(start_state)
        with tinycnn.no_grad():
            first_std = float(model[0](loader(val_set, transform, shuffle=False).__iter__().__next__()[0]).numpy().std())
        with np.errstate(all="ignore"):
            losses = train(model, transform, epochs, optim.Adam(model.parameters(), lr=3e-3))
        val = evaluate(model, loader(val_set, transform, batch_size=250, shuffle=False))
        steps_per_epoch = len(losses) // epochs
        print(f"{'with BN' if batch_norm else 'without BN':<12}{name:<14}{first_std:14.2f}{losses[:10].mean():16.3f}"
              f"{losses[-steps_per_epoch:].mean():12.3f}{val['loss']:10.3f}{100 * val['accuracy']:8.1f}%")
        trained[batch_norm, name] = model
print(f"({epochs} epoch(s) of {len(loader(train_set))} steps; 'first 10 steps', 'last epoch': mean training loss)")

# Read the rows without BN first. Pixels as stored make the first layer's outputs a
# hundred times larger or more ("1st layer std"): the first steps' losses are far above
# log(6) (huge logits), and the wild first updates leave the net at chance - a loss of
# log(6) - from which it does not recover here. Pixels in [0, 1] do not blow up, but with this
# default initialisation the signal starts small and off-centre, and the last-epoch
# loss stays close to log(6); standardised inputs learn clearly fastest.
# With BN the two training losses are nearly the same: the batch norm after the first
# convolution divides out whatever scale and offset the inputs had, so the rest of the
# net sees the same numbers. Its validation numbers can still differ - eval mode uses
# running averages of the statistics, and for pixels as stored those run far behind the
# huge, fast-changing first-layer outputs (section 3 is about exactly that).
# So: always normalise - it costs one line (ToFloat + Normalize with the training set's
# mean and std) and every initialisation and learning-rate habit assumes it. Compute the
# statistics on the training set only, and apply the same numbers to validation, test and
# deployment images.

# ---------------------------------------------------------------------------------------
# 3. Batch norm has two modes
#
# In training mode (model.train()) a BN layer normalises each channel with the mean and
# variance of the current batch, and updates running averages of them:
#     running = (1 - momentum) * running + momentum * batch statistic     (momentum 0.1)
# In eval mode (model.eval(), which evaluate() and every prediction should use) it
# normalises with those running averages instead. Two consequences, shown below.
# ---------------------------------------------------------------------------------------
print("\n3. Batch norm in train and eval mode")
bn_model = trained[True, "standardised"]          # the BN net trained on standardised inputs in section 2
val_images, _ = next(iter(loader(val_set, batch_size=8, shuffle=False)))


def buffers_of(model):
    return {name: buffer.numpy().copy() for name, buffer in model.named_buffers()}


def restore_buffers(model, saved):
    for name, buffer in model.named_buffers():
        buffer.data[...] = saved[name]


def logits_alone_and_in_batch(model):
    """Logits of each image run alone (batch of 1) and of all of them as one batch."""
    with tinycnn.no_grad():
        in_batch = model(val_images).numpy()
        alone = np.concatenate([model(val_images[i:i + 1]).numpy() for i in range(len(val_images))])
    return alone, in_batch


saved = buffers_of(bn_model)
bn_model.eval()
alone, in_batch = logits_alone_and_in_batch(bn_model)
print(f"eval mode:  max |logits alone - logits in a batch of {len(val_images)}| = {np.abs(alone - in_batch).max():.1e}, "
      f"predictions that change: {int((alone.argmax(1) != in_batch.argmax(1)).sum())} of {len(val_images)}")
bn_model.train()
alone, in_batch = logits_alone_and_in_batch(bn_model)
restore_buffers(bn_model, saved)                  # train-mode forwards moved the running averages: undo
print(f"train mode: max |logits alone - logits in a batch of {len(val_images)}| = {np.abs(alone - in_batch).max():.1e}, "
      f"predictions that change: {int((alone.argmax(1) != in_batch.argmax(1)).sum())} of {len(val_images)}")
try:
    nn.BatchNorm1d(4).train()(tinycnn.randn(1, 4))
except ValueError as error:
    print(f"BatchNorm1d on a batch of 1 in train mode: ValueError: {error}")

# (a) One image alone. In eval mode the answer for an image does not depend on what else
# is in the batch: alone or in a batch the logits agree (to float32 rounding at most).
# In train mode they do not: alone, each channel is normalised with that one image's
# statistics - a different function of the image - and the logits move, enough to change
# some predictions. After a fully connected layer a batch of one has ONE value per
# channel, so there is no variance to divide by: tinycnn refuses, as the error says.
# The rule: model.eval() before evaluating or predicting, model.train() before training.
#
# (b) Lesson 10's validation spike. Its first validation loss was huge (tens, where a
# uniform guess scores 2.3). Eval mode uses running averages, and early in training those
# lag: they start at mean 0 and variance 1, and with momentum 0.1 they keep most of the
# last ten or so batches' statistics - measured on weights that a large learning rate has
# since moved. The network is then evaluated with statistics that belong to an older
# network. We reproduce it with lesson 10's network and recipe (ResNet-20: 19 BN layers;
# SGD, lr 0.1, momentum 0.9, weight decay 1e-4), here on our 16x16 Shapes, measuring the
# validation loss every few steps twice: in eval mode (running averages) and with the
# batch's own statistics (train mode, the running averages put back afterwards).
spike_val = Subset(val_set, np.arange(lesson.pick(quick=64, default=250, full=500)))


def validation_loss(model, use_batch_statistics: bool) -> float:
    if not use_batch_statistics:
        return evaluate(model, loader(spike_val, batch_size=250, shuffle=False))["loss"]
    saved = buffers_of(model)
    model.train()
    with tinycnn.no_grad():
        losses = [nn.CrossEntropyLoss()(model(images), labels).item()
                  for images, labels in loader(spike_val, batch_size=250, shuffle=False)]
    restore_buffers(model, saved)
    return float(np.mean(losses))


tinycnn.manual_seed(lesson.args.seed)
spike_model = models.resnet20(num_classes=CLASSES).to(lesson.device)
optimizer = optim.SGD(spike_model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
spike_steps = lesson.pick(quick=6, default=36, full=120)
every = lesson.pick(quick=3, default=6, full=10)
snapshot_step = every                             # a copy of the weights taken early, while the gap is wide
spike_loader = loader(train_set)
record = {"step": [], "running": [], "batch": []}
step = 0
while step < spike_steps:
    for images, labels in spike_loader:
        if step == snapshot_step:
            snapshot = {name: value.copy() for name, value in spike_model.state_dict().items()}
        if step % every == 0:
            record["step"].append(step)
            record["running"].append(validation_loss(spike_model, use_batch_statistics=False))
            record["batch"].append(validation_loss(spike_model, use_batch_statistics=True))
        spike_model.train()
        loss = nn.CrossEntropyLoss()(spike_model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step == spike_steps:
            break
for k in range(len(record["step"])):
    print(f"  step {record['step'][k]:4d}: validation loss with running averages {record['running'][k]:8.3f}, "
          f"with batch statistics {record['batch'][k]:6.3f}")
worst = int(np.argmax(record["running"]))
print(f"  worst gap: step {record['step'][worst]}, {record['running'][worst]:.3f} against {record['batch'][worst]:.3f}")


def recalibrate(model, batches: int):
    """Recompute every BN layer's running statistics for the current weights: reset them, make
    them an equal-weight average (momentum=None), run some training batches forward, no step."""
    bn_layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for layer in bn_layers:
        layer.reset_running_stats()
        layer.momentum = None
    model.train()
    with tinycnn.no_grad():
        for k, (images, _) in enumerate(loader(train_set)):
            if k == batches:
                break
            model(images)
    for layer in bn_layers:
        layer.momentum = 0.1


early_model = models.resnet20(num_classes=CLASSES).to(lesson.device)
early_model.load_state_dict(snapshot)             # the weights as they were at step snapshot_step
before = validation_loss(early_model, use_batch_statistics=False)
with_batch_statistics = validation_loss(early_model, use_batch_statistics=True)
recalibration_batches = lesson.pick(quick=2, default=10, full=20)
recalibrate(early_model, batches=recalibration_batches)
after = validation_loss(early_model, use_batch_statistics=False)
print(f"the weights of step {snapshot_step}: eval-mode validation loss {before:.3f}; after recomputing the running "
      f"statistics ({recalibration_batches} training batches, no step): {after:.3f}; with batch statistics: "
      f"{with_batch_statistics:.3f}")

fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
ax.plot(record["step"], record["running"], "o-", label="eval mode (running averages)")
ax.plot(record["step"], record["batch"], "s-", label="batch statistics")
ax.axhline(math.log(CLASSES), color="gray", linestyle="--", linewidth=1, label=f"uniform guess, log({CLASSES})")
ax.set(yscale="log", xlabel="training step (SGD, lr 0.1, momentum 0.9)", ylabel="validation loss (log scale)",
       title="ResNet-20: early in training the running averages lag behind the weights")
ax.legend()
ax.grid(alpha=0.3)
fig.savefig(lesson.figure("bn_running_vs_batch_statistics.png"))
plt.close(fig)

# What to look for (printout and bn_running_vs_batch_statistics.png). Already at step 0
# eval mode is worse: the running averages start at mean 0 and variance 1, which do not
# describe ResNet-20's activations. In the first steps at lr 0.1 the eval-mode loss then
# shoots far above the loss with batch statistics - the spike - and the gap closes as the
# running averages catch up with weights that change less from one step to the next.
# Nothing is wrong with the weights: the batch-statistics curve shows how good they are.
# The last line proves it on the early weights: recomputing the running statistics for
# them - a pass over some training batches in train mode without stepping, as
# recalibrate() does - brings the eval-mode loss down to (about) the batch-statistics one.
# If a validation number looks absurd early in a run with batch norm, or after a
# learning-rate increase, this is the first suspect. The same recalibration is needed
# after anything that changes the weights without training steps (averaging, pruning).

# ---------------------------------------------------------------------------------------
# 4. Two checks before any long run: the loss at step 0, and overfitting one batch
#
# At initialisation a classifier should be unsure: its loss on the first batch should be
# close to log(number of classes), the loss of a uniform guess. Much higher means the
# initial logits are large (a bad init, unnormalised inputs, a missing softmax or a
# double one); exactly log(C) with no variation means the output ignores the input
# (section 1's "too small").
#
# Then take ONE small batch and train on it alone, many times. A working network and
# training loop must drive the loss on it to ~0 (it can memorise 16 images, whatever
# their labels). If it cannot, something between the data and the optimizer is broken
# - labels not matching images, a layer that is not registered as a parameter, a missing
# zero_grad or step, gradients that do not arrive - and no amount of data or epochs will
# help. This takes seconds; finding the same bug after a day of training does not.
# ---------------------------------------------------------------------------------------
print("\n4. The loss at initialisation, and overfitting a single batch")
tinycnn.manual_seed(lesson.args.seed)
overfit_model = small_cnn(batch_norm=True).to(lesson.device)
tiny_images, tiny_labels = next(iter(loader(train_set, batch_size=16)))
with tinycnn.no_grad():
    first_loss = nn.CrossEntropyLoss()(overfit_model(tiny_images), tiny_labels).item()
print(f"loss at initialisation {first_loss:.3f}, log({CLASSES}) = {math.log(CLASSES):.3f}")
optimizer = optim.Adam(overfit_model.parameters(), lr=1e-2)
overfit_steps = lesson.pick(quick=30, default=150, full=300)
for step in range(1, overfit_steps + 1):
    logits = overfit_model(tiny_images)
    loss = nn.CrossEntropyLoss()(logits, tiny_labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step in (1, 10, 25, 50, 100, overfit_steps) and step <= overfit_steps:
        accuracy = float((logits.numpy().argmax(axis=1) == tiny_labels.numpy()).mean())
        print(f"  step {step:4d}: loss on the batch {loss.item():.5f}, accuracy on it {100 * accuracy:.0f}%")

# The first number should sit near log(6); the loss on the one batch should then fall by
# orders of magnitude, with 100% accuracy on it well before the last step. (It says
# nothing about generalisation - it is a test of the plumbing.)

# ---------------------------------------------------------------------------------------
# 5. A learning-rate range test
#
# The learning rate matters most and is the hardest to guess (lesson 7). Smith (2015,
# "Cyclical learning rates") measures it instead: train from the initial weights for a
# few hundred steps while raising the learning rate exponentially, from far too small to
# far too large, and record the loss at every step. Plotted against the learning rate,
# the loss stays flat (too small to matter), then falls (useful rates), then turns and
# explodes (too large). A good choice lies on the falling part, a safe distance below the
# turn. The loss is noisy from batch to batch, so we follow an exponential moving average
# of it, and stop once it passes 4 times its lowest value.
#
# Which point to take? A popular rule - the rate of the lowest loss, divided by 10 -
# assumes the curve is a clean U. With batch norm it often is not: a BN net survives
# rates far past the first instability (its weights grow, which shrinks the effective
# step), so after the first turn the loss can wander on a bumpy plateau - even come down
# again - long before it explodes. The reliable landmark is the FIRST turn: the first
# rate where the smoothed loss rises clearly (here 5%) above its lowest value so far. We
# take a tenth of that.
# ---------------------------------------------------------------------------------------
print("\n5. Learning-rate range test (SGD with momentum 0.9)")
tinycnn.manual_seed(lesson.args.seed)
range_start_state = small_cnn(batch_norm=True).state_dict()
range_model = small_cnn(batch_norm=True).to(lesson.device)
range_model.load_state_dict(range_start_state)
range_steps = lesson.pick(quick=25, default=150, full=300)
lr_low, lr_high = 1e-4, 10.0
growth = (lr_high / lr_low) ** (1 / (range_steps - 1))          # the factor from one step to the next
optimizer = optim.SGD(range_model.parameters(), lr=lr_low, momentum=0.9)
range_loader = loader(train_set)
rates, raw, smoothed = [], [], []
average, best = 0.0, float("inf")
epoch = 0
while len(rates) < range_steps:
    range_loader.set_epoch(epoch)
    epoch += 1
    for images, labels in range_loader:
        lr = lr_low * growth ** len(rates)
        optimizer.param_groups[0]["lr"] = lr
        with np.errstate(all="ignore"):
            loss = nn.CrossEntropyLoss()(range_model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        value = loss.item()
        average = 0.9 * average + 0.1 * value
        rates.append(lr)
        raw.append(value)
        smoothed.append(average / (1 - 0.9 ** len(rates)))     # the moving average, corrected for its start at 0
        best = min(best, smoothed[-1])
        if not np.isfinite(value) or smoothed[-1] > 4 * best or len(rates) == range_steps:
            break
    if not np.isfinite(raw[-1]) or smoothed[-1] > 4 * best:
        break
rates, raw, smoothed = np.array(rates), np.array(raw), np.array(smoothed)
lowest = int(np.nanargmin(smoothed))
lowest_so_far = np.minimum.accumulate(smoothed)
rises = [k for k in range(10, len(smoothed)) if smoothed[k] > 1.05 * lowest_so_far[k]]   # (the first 10: too noisy)
turn = rises[0] if rises else lowest
picked_lr = rates[turn] / 10
print(f"{len(rates)} steps, lr from {rates[0]:.0e} to {rates[-1]:.2g}"
      + (" (stopped: the loss passed 4x its lowest)" if len(rates) < range_steps else ""))
print(f"first turn (smoothed loss 5% above its lowest so far, {lowest_so_far[turn]:.3f}) at lr {rates[turn]:.3g}; "
      f"lowest smoothed loss overall {smoothed[lowest]:.3f} at lr {rates[lowest]:.3g}")
print(f"the pick, a tenth of the first turn: lr = {picked_lr:.3g}")

fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
ax.plot(rates, np.minimum(raw, 10), color="C0", alpha=0.3, label="loss of each batch (above 10 drawn at 10)")
ax.plot(rates, np.minimum(smoothed, 10), color="C0", linewidth=2, label="moving average")
ax.axvline(rates[turn], color="C3", linestyle=":", label=f"first turn, lr {rates[turn]:.2g}")
ax.axvline(picked_lr, color="C2", linestyle="--", label=f"the pick: a tenth of it, lr {picked_lr:.2g}")
ax.axvline(rates[lowest], color="gray", linestyle="-.", label=f"lowest average overall, lr {rates[lowest]:.2g}")
ax.set(xscale="log", xlabel="learning rate (raised every step)", ylabel="training loss",
       title="Learning-rate range test: flat, falling, exploding")
ax.legend()
ax.grid(alpha=0.3)
fig.savefig(lesson.figure("lr_range_test.png"))
plt.close(fig)

# Does the pick train well? Three short runs from the same initial weights: a tenth of
# the pick, the pick, and ten times the pick (the rate of the first turn).
check_epochs = lesson.pick(quick=1, default=2, full=4)
print(f"{check_epochs} epoch(s) from the same start, SGD with momentum 0.9:")
for factor in (0.1, 1.0, 10.0):
    model = small_cnn(batch_norm=True).to(lesson.device)
    model.load_state_dict(range_start_state)
    with np.errstate(all="ignore"):
        losses = train(model, standardise, check_epochs,
                       optim.SGD(model.parameters(), lr=picked_lr * factor, momentum=0.9))
    val = evaluate(model, loader(val_set, batch_size=250, shuffle=False))
    print(f"  lr {picked_lr * factor:8.3g}: last epoch's training loss {losses[-len(losses) // check_epochs:].mean():.3f}, "
          f"validation accuracy {100 * val['accuracy']:.1f}%")

# lr_range_test.png should show the regions: flat on the left, slowly falling (in 150
# steps this net learns only a little - lesson 5 needed hundreds of steps - so the fall is
# shallow), the first turn (red), a bumpy plateau, and the explosion at the right where
# the test stops. The pick sits on the falling slope, a factor of ten below the first
# turn. Compare the lowest point overall (grey): when it lies right before the first
# turn the two rules agree; when it lies beyond it, on the plateau, the popular rule would
# pick a rate past the edge. In the three runs the pick should have learned (loss clearly
# below log(6)) and a tenth of it less in the same steps; ten times the pick is the first
# turn itself, the edge, where a short run may still learn fastest or may stall.
# The range test narrows the search to a factor of ten or so in a couple of hundred
# steps; it does not replace a final comparison. With a schedule (one-cycle, cosine), its
# rate is a good *maximum*.

# ---------------------------------------------------------------------------------------
# 6. The checklist
#
# Before a long run - and again whenever a run misbehaves - in this order:
#
#   1. Look at the data. Plot a few images with their labels after the transforms (the
#      loader's output, not the files): are the labels right, the colours and the
#      orientation sane, the augmentations label-preserving (lesson 8's flipped digits)?
#   2. Normalise the inputs with the training set's per-channel mean and std, and use
#      the same numbers everywhere (section 2). Print one batch's mean and std: ~0 and ~1.
#   3. Initialise for the depth: He for ReLU nets without normalisation layers; with batch
#      norm or residual blocks the defaults are forgiving. If in doubt, print each layer's
#      activation std on one batch (section 1): it should neither vanish nor explode.
#   4. Check the loss at step 0: about log(number of classes) (section 4).
#   5. Overfit one small batch: the loss must go to ~0 within a few hundred steps
#      (section 4). If it does not, the bug is in the code, not in the hyperparameters.
#   6. Find the learning rate with a range test (section 5): a tenth of the first turn,
#      then confirm with two or three short runs around it.
#   7. Train in train mode, evaluate in eval mode (model.train() / model.eval(); `fit` and
#      `evaluate` do it for you), and judge batch-norm nets' early validation numbers
#      knowing that the running statistics lag (section 3).
#   8. Watch the curves, not just the last number: training loss falling (if not: step 5
#      and 6 again), validation tracking it (if it parts ways: lesson 8's regularisation),
#      no nan (lesson 7: the learning rate; lesson 4: a naive softmax). Compare changes
#      from the same initial weights and the same batches, one change at a time.
#   9. Only then scale up: more data, more epochs, a schedule, a bigger model.

# What to remember
#   * Every layer multiplies the signal's mean square by fan_in * Var(w) / 2 (with ReLU):
#     He's Var(w) = 2 / fan_in keeps it at 1; too small, and depth drives it to 0.
#   * Normalised inputs are what initialisations and learning rates assume; batch norm
#     hides most of a missing normalisation, but only after the first layer.
#   * Batch norm: batch statistics in train mode, running averages in eval mode. Eval mode
#     is per image (batch size 1 is fine); the running averages lag fast-moving weights.
#   * Cheap checks first: the loss at step 0, one batch overfitted, a learning-rate range test.

# ---------------------------------------------------------------------------------------
# Where this lives (tinycnn's reference floor and the modules this lesson used)
#   tinycnn/nn/init.py             default_layer_init_ (the layers' default), kaiming_normal_, normal_
#   tinycnn/functional/norm.py     batch_norm: batch statistics vs running ones, the running update
#   tinycnn/nn/batchnorm.py        BatchNorm1d/2d: train/eval, momentum (None = equal-weight average),
#                                  reset_running_stats
#   tinycnn/data/transforms.py     ToFloat, Normalize
#   tinycnn/data/shapes.py         the Shapes data set and SHAPES_MEAN, SHAPES_STD
#   tinycnn/optim/sgd.py, adam.py  the optimizers; param_groups[0]["lr"] is what the range test sets
#   tinycnn/train.py               evaluate (switches to eval mode, no graph)
#   tinycnn/models/resnet.py       resnet20 (section 3's validation spike)
# ---------------------------------------------------------------------------------------

# Questions (answers below)
#   1. A conv layer has 64 input channels and 3x3 kernels and is followed by a ReLU. What
#      weight std does He initialisation give, and what would N(0, 0.01^2) do to the
#      signal's std per layer?
#   2. Your network's loss at step 0 is 9.5 on a 10-class problem. Name two likely causes.
#   3. A model with batch norm gives different predictions for the same image depending
#      on which other images are in the batch. What did the code forget?
#   4. The validation loss of a ResNet is 40 after the first 20 steps and 2 after 200,
#      while its training loss fell smoothly. Is the network broken? How can you check
#      quickly?
#   5. Your network cannot overfit a batch of 16 images. Should you try a bigger model?
#
# Answers
#   1. std = sqrt(2 / (64 * 9)) = 0.059. With std 0.01 the mean square is multiplied by
#      576 * 1e-4 / 2 = 0.029 per layer, so the std by sqrt(0.029) = 0.17: about 6x smaller
#      at every layer.
#   2. log(10) = 2.3 is expected; 9.5 means large, confident logits: unnormalised inputs
#      (0..255 pixels), too large an initialisation, or an extra scaling of the logits -
#      or a loss computed on probabilities instead of logits (softmax applied twice).
#   3. model.eval(): in train mode batch norm normalises with the batch's statistics, so
#      each image's output depends on the others; eval mode uses the fixed running averages.
#   4. Probably not: early on the running statistics lag the fast-changing weights (section
#      3). Evaluate with batch statistics, or recompute the running averages with a pass
#      over some training batches in train mode (no steps), and compare.
#   5. No: a working network of any reasonable size memorises 16 images. Look for a bug
#      first - labels not matching images, parameters not given to the optimizer, a
#      missing zero_grad or step, a detached tensor, a learning rate far off.

# Exercises: lessons/exercises/10b_init_norm_checklist.py — check your work with: python lessons/check.py 10b

print(f"\nlesson 10b took {time.perf_counter() - started:.0f}s")
lesson.finish()
