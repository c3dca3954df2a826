"""Lesson 9 - Depth, batch norm and residual connections.

Three networks of the same depth (19 convolutions and a linear layer) on the Shapes data:
plain, plain with batch norm, and residual with batch norm. We measure the gradient that
reaches each layer, at initialisation and after one epoch, and train all three: why a
plain deep net does not learn, what batch norm fixes, and why ResNets train.
"""

# ---------------------------------------------------------------------------------------
# Deeper networks can represent more, so why not stack 20, 50, 100 layers? Until 2015 that
# mostly failed: past some depth, plain stacks of layers trained *worse*, not better - even
# on the training set, so it was not overfitting (He et al.'s figure 1: a plain 56-layer
# net ends with a higher training error on CIFAR-10 than a plain 20-layer one). Two inventions fixed it, batch normalisation
# (Ioffe & Szegedy 2015) and residual connections (He, Zhang, Ren & Sun 2015), and this
# lesson takes them apart. It uses the built-in Shapes data (no download).
# ---------------------------------------------------------------------------------------

import time

import numpy as np

import tinycnn
from tinycnn import nn, optim, viz
from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Compose, DataLoader, Normalize, Shapes, ToFloat
from tinycnn.train import evaluate, fit
from lesson_utils import Lesson

lesson = Lesson(__file__, __doc__)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------
# 1. Data
# ---------------------------------------------------------------------------------------
n_train = lesson.pick(quick=128, default=3000, full=10000)
n_test = lesson.pick(quick=128, default=600, full=2000)
epochs = lesson.pick(quick=1, default=5, full=15)
batch_size = 64

train_set = Shapes(train=True, n=n_train, seed=lesson.args.seed)
test_set = Shapes(train=False, n=n_test, seed=lesson.args.seed)
prepare = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=lesson.args.seed,
                          transform=prepare, device=lesson.device)
test_loader = DataLoader(test_set, batch_size=250, transform=prepare, device=lesson.device)
print(f"Shapes: {n_train} training and {n_test} test images, 6 classes; {epochs} epochs of "
      f"{len(train_loader)} steps")

# ---------------------------------------------------------------------------------------
# 2. One network, three ways
#
# All three have the same layers: a first 3x3 convolution with stride 2 (32x32 -> 16x16,
# 16 maps), then 9 blocks of two 3x3 convolutions with 16 maps (3 blocks at 16x16, max
# pooling, 3 at 8x8, pooling, 3 at 4x4), global average pooling and a linear layer:
# 1 + 18 = 19 convolutions, 20 weighted layers, like ResNet-20. A block is
#
#     plain:      x -> conv -> relu -> conv -> relu
#     + BN:       x -> conv -> BN -> relu -> conv -> BN -> relu
#     residual:   x -> conv -> BN -> relu -> conv -> BN -> (+ x) -> relu
#
# The residual block adds its input to what its convolutions computed: the convolutions
# only have to learn a *correction* F(x) to the identity, y = x + F(x). (tinycnn's
# `models.resnet20` is built from the same block, `models.BasicBlock`; here it is written
# out to switch its parts on and off.) The weights start as every layer in tinycnn starts
# by default, PyTorch's initialisation: uniform, with a variance of 1/(3 * fan_in).
# ---------------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, channels: int, batch_norm: bool, residual: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(channels) if batch_norm else nn.Sequential()   # empty Sequential: identity
        self.bn2 = nn.BatchNorm2d(channels) if batch_norm else nn.Sequential()
        self.relu = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + x          # the skip connection: one addition
        return self.relu(out)


class DeepNet(nn.Module):
    def __init__(self, batch_norm: bool, residual: bool, channels: int = 16, blocks_per_stage: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=not batch_norm),
                                  nn.BatchNorm2d(channels) if batch_norm else nn.Sequential(), nn.ReLU())
        stages = []
        for stage in range(3):
            if stage > 0:
                stages.append(nn.MaxPool2d(2))
            stages += [Block(channels, batch_norm, residual) for _ in range(blocks_per_stage)]
        self.body = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 6))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))

    def conv_weights(self):
        """The 19 convolution weights, from the input to the output."""
        return [p for name, p in self.named_parameters() if p.ndim == 4]


variants = {"plain": dict(batch_norm=False, residual=False),
            "plain + BN": dict(batch_norm=True, residual=False),
            "residual + BN": dict(batch_norm=True, residual=True)}
nets = {}
for name, kwargs in variants.items():
    tinycnn.manual_seed(lesson.args.seed)
    nets[name] = DeepNet(**kwargs).to(lesson.device)
    print(f"{name:<14} {len(nets[name].conv_weights())} convolutions, "
          f"{sum(p.numel() for p in nets[name].parameters()):,} parameters")

# ---------------------------------------------------------------------------------------
# 3. The gradient each layer gets, at initialisation
#
# Training changes a weight in proportion to its gradient. Take one batch, compute the
# loss, call backward, and look at the size (L2 norm) of the gradient of every
# convolution's weights, from the first layer to the last.
# ---------------------------------------------------------------------------------------
probe_size = lesson.pick(quick=32, default=128, full=128)
probe_images, probe_labels = next(iter(DataLoader(train_set, batch_size=probe_size, transform=prepare,
                                                  device=lesson.device)))


def gradient_norms(model) -> np.ndarray:
    """||dLoss/dW|| of every convolution, input side first, on the fixed probe batch."""
    model.zero_grad()
    loss = nn.CrossEntropyLoss()(model(probe_images), probe_labels)
    loss.backward()
    norms = [float(np.linalg.norm(w.grad.numpy())) for w in model.conv_weights()]
    model.zero_grad()
    return np.array(norms)


def activation_scale(model) -> float:
    """Standard deviation of what the last block hands to the head, on the probe batch."""
    with tinycnn.no_grad():
        return float(model.body(model.stem(probe_images)).numpy().std())


at_init = {name: gradient_norms(net) for name, net in nets.items()}
print("\ngradient norm of each convolution's weights at initialisation (layer 1 = nearest the input):")
print(f"{'':<14}" + "".join(f"{f'layer {i}':>11}" for i in (1, 5, 10, 15, 19)) + "   last/first   output std")
for name, norms in at_init.items():
    print(f"{name:<14}" + "".join(f"{norms[i - 1]:11.2e}" for i in (1, 5, 10, 15, 19))
          + f"   {norms[-1] / norms[0]:10.2e}   {activation_scale(nets[name]):10.2e}")
first_layer_grads = {}
for name, net in nets.items():
    net.zero_grad()
    nn.CrossEntropyLoss()(net(probe_images), probe_labels).backward()
    first_layer_grads[name] = np.abs(net.conv_weights()[0].grad.numpy())
    net.zero_grad()
layers = np.arange(1, len(at_init["plain"]) + 1)
viz.plot_curves({name: (layers, norms) for name, norms in at_init.items()}, lesson.figure("gradients_at_init.png"),
                xlabel="convolution (1 = nearest the input)", ylabel="||dLoss/dW|| (log scale)", logy=True,
                title="Gradient reaching each layer, at initialisation")

# What the table and gradients_at_init.png show:
#
# * plain: the signal shrinks at every layer. With this initialisation each convolution +
#   ReLU keeps only about a sixth of its input's energy, so after 19 layers what reaches the
#   head is almost nothing (the "output std" column), and the output barely depends on the
#   input. The gradient has the same problem in reverse, and it is worse than a straight
#   line on the log plot suggests: the layers *nearest the input* receive gradients many
#   orders of magnitude smaller than those near the output. A step that is sensible for
#   the last layer does nothing to the first ones - they stay random. This is the
#   vanishing-gradient problem. (A better initialisation - He et al.'s, variance
#   2/fan_in - keeps the scale right at the start, but nothing keeps it right once
#   training moves the weights.)
# * plain + BN: batch norm rescales every layer's output to mean 0 and variance 1 over the
#   batch, so the signal keeps its size at any depth whatever the weights, and the
#   gradients come back at comparable sizes in every layer: look at the last/first column,
#   within a factor of about ten instead of a factor of millions. (Its forward and its
#   three-term backward: tinycnn/functional/norm.py.)
# * residual + BN: compare its last/first column with the others. In y = x + F(x) the
#   derivative is dy/dx = 1 + dF/dx: the "1" is a path along which the gradient can flow
#   back past a block's convolutions however small dF/dx is. Not quite untouched, though:
#   in this block (the original ResNet's) a ReLU follows the addition, and it passes the
#   gradient only where the sum was positive; the max pooling between stages sends it only
#   to each window's winner. The truly clean path is the *pre-activation* ResNet (He et al.
#   2016, "Identity mappings in deep residual networks"), which moves BN and ReLU inside
#   the branch: x -> BN -> relu -> conv -> BN -> relu -> conv -> (+ x), nothing after the
#   addition.
#
# Does a residual block start close to the identity? Only if its branch F starts near
# zero - and with the default initialisation it does not: the branch ends in batch norm,
# which makes F(x) have unit variance per channel, about as large as x itself. So every
# block adds a unit-size random term, and the signal grows from block to block (the
# "output std" column of residual + BN above, against plain + BN's). Measure each block's
# |F(x)| / |x| (standard deviations), and then the remedy from Goyal et al. 2017 ("Accurate,
# large minibatch SGD") that torchvision calls zero_init_residual: start the last BN's
# scale gamma of every branch at 0. Then F(x) = 0 and every block *is* the identity at the
# start; training grows gamma as the data asks.


def branch_scales(model):
    """std(F(x)) / std(x) of each residual block's branch, on the probe batch."""
    ratios = []
    with tinycnn.no_grad():
        x = model.stem(probe_images)
        for layer in model.body:
            if isinstance(layer, Block):
                branch = layer.bn2(layer.conv2(layer.relu(layer.bn1(layer.conv1(x)))))
                ratios.append(float(branch.numpy().std() / x.numpy().std()))
            x = layer(x)
    return np.array(ratios)


tinycnn.manual_seed(lesson.args.seed)
zero_gamma = DeepNet(batch_norm=True, residual=True).to(lesson.device)
for layer in zero_gamma.body:
    if isinstance(layer, Block):
        layer.bn2.weight.data[...] = 0.0
for name, net in (("residual + BN", nets["residual + BN"]), ("... last gamma = 0", zero_gamma)):
    ratios = branch_scales(net)
    print(f"{name:<19} |F(x)|/|x| per block: " + " ".join(f"{r:.2f}" for r in ratios)
          + f"   output std {activation_scale(net):.2f}")
# With the default start the ratios are of order 1, not near 0: the first blocks add a
# branch as large as their input or larger, and the later ratios fall only because the
# signal they receive has already grown (F(x) stays at unit size, x does not). With
# gamma = 0 they are exactly 0, and the output std stays near the stem's. (We train the default version below, as lesson 10's
# ResNet-20 does; the zero-gamma start matters most for very deep nets and large batches.)
#
# And Adam? It divides each weight's step by the typical size of that weight's recent
# gradients, m / (sqrt(s) + eps), so a gradient of any size gets a step of about lr -
# *as long as it is well above eps = 1e-8*. Below eps the division is by eps, not by the
# gradient, and the step shrinks with the gradient again. The first layer's gradients, per
# weight, at initialisation:
print("\nfirst convolution's gradient per weight at initialisation, against Adam's eps = 1e-8:")
for name, grads in first_layer_grads.items():
    median = float(np.median(grads))
    print(f"  {name:<14} median |g| {median:.1e}  ->  Adam's first step is {median / (median + 1e-8):.2%} "
          f"of a full-size step")
# The plain network's first-layer gradients should come out far below eps (a tiny fraction
# of a full step: Adam cannot rescue them), while the BN networks' are far above it.

# ---------------------------------------------------------------------------------------
# 4. Training
#
# The same recipe for all three: Adam, learning rate 3e-3 with a cosine schedule, the same
# batches in the same order. Adam divides each weight's step by the typical size of its
# recent gradients, so it gives small gradients a full-size step - down to the eps limit
# we have just met. It is the optimizer most likely to rescue the plain network.
# ---------------------------------------------------------------------------------------
histories, after_training, test_accuracy = {}, {}, {}
for name, net in nets.items():
    tinycnn.manual_seed(lesson.args.seed)
    optimizer = optim.Adam(net.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    train_loader.set_epoch(0)
    start = time.perf_counter()

    def after_first_epoch(state, net=net, name=name):
        if state.epoch == 1:
            after_training[name] = gradient_norms(net)

    state = fit(net, train_loader, optimizer, epochs, val_loader=test_loader, scheduler=scheduler,
                progress=False, restore_best=False, on_epoch_end=after_first_epoch)
    histories[name] = state.history
    test_accuracy[name] = evaluate(net, test_loader)["accuracy"]
    curve = " ".join(f"{100 * r['train_accuracy']:.0f}%" for r in state.history)
    print(f"{name:<14} train accuracy by epoch: {curve:<28} final test accuracy "
          f"{100 * test_accuracy[name]:5.1f}%  ({time.perf_counter() - start:.0f}s)")

# (We pass the test set as `val_loader` only to draw its curve; nothing is chosen on it.)
epochs_axis = np.arange(1, epochs + 1)
viz.plot_curves({f"{name} (train)": (epochs_axis, [h["train_loss"] for h in hist]) for name, hist in histories.items()},
                lesson.figure("training_loss.png"), xlabel="epoch", ylabel="training loss (log scale)", logy=True,
                title="Training loss: same depth, same recipe")
viz.plot_curves({name: (epochs_axis, [100 * h["val_accuracy"] for h in hist]) for name, hist in histories.items()},
                lesson.figure("test_accuracy_curves.png"), xlabel="epoch", ylabel="test accuracy (%)",
                title="Test accuracy after each epoch")
viz.plot_bars({name: 100 * acc for name, acc in test_accuracy.items()}, lesson.figure("test_accuracy.png"),
              ylabel="test accuracy (%)", title=f"After {epochs} epochs on {n_train} images")
viz.plot_curves({f"{name}, {when}": (layers, norms) for name in nets
                 for when, norms in (("init", at_init[name]), (f"after {len(train_loader)} steps", after_training[name]))},
                lesson.figure("gradients_init_vs_trained.png"), xlabel="convolution (1 = nearest the input)",
                ylabel="||dLoss/dW|| (log scale)", logy=True,
                title="Gradient reaching each layer: at initialisation and after one epoch")

# Read the three lines above. The plain network's training loss should hardly move from
# log(6) = 1.79, the loss of a uniform guess: its accuracy stays near chance (1 in 6, 17%),
# Adam or not. Its output hardly depends on its input (the "output std" above), and the
# weights near the input never get a usable gradient (gradients_init_vs_trained.png,
# measured again after the first epoch: its curve stays orders of magnitude below the
# others), so the rest has nothing to work with. The same 20 layers with batch norm learn,
# but more slowly; with skip connections they should learn faster and further in the same
# number of steps - compare the final test accuracies (--full trains three times longer:
# plain + BN catches up part of the way).
#
# Why ResNet trains, in one sentence: the gradient has a short path back through the
# additions, and a block that is not needed can learn F(x) = 0, so a deeper residual net is
# never *forced* to be worse than a shallower one - it can learn to become one. (It does
# not *start* as one, unless the last gamma is zeroed: section 3.) That is what let He et
# al. train 110 and even 1202 layers on CIFAR-10 (lesson 10 trains their ResNet-20), where
# plain nets of 56 layers - with batch norm! - trained worse than plain nets of 20.
print(f"\nlesson 9 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (the reference floor: read these next)
#   tinycnn/functional/norm.py     batch_norm: forward (batch statistics, running averages)
#                                  and its three-term backward
#   tinycnn/models/resnet.py       BasicBlock and resnet20: the residual block of section 2
#   tinycnn/nn/init.py             the default initialisation and He (kaiming) init
#   tinycnn/optim/adam.py          where eps enters Adam's step
#   tinycnn/functional/pool.py     max pooling's gradient routing (the gate between stages)
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Why do the plain net's first layers get so much smaller gradients than its last?
#   2. y = relu(x + F(x)): along which paths can the gradient reach x, and what can block it?
#   3. What does zero-initialising the last BN gamma of each block do at the start?
#   4. Why can't Adam rescue gradients of 1e-11?
#
# Answers (try first)
#   1. Each layer multiplies the backward signal by its weights and the ReLU mask; with a
#      default init that keeps only part of the energy each time, the product over 19
#      layers shrinks geometrically (vanishing gradients).
#   2. Through F's convolutions and through the identity "1"; both first pass the ReLU
#      after the addition, which zeroes the gradient wherever x + F(x) <= 0 (and max
#      pooling between stages routes it only to window winners).
#   3. F(x) = 0 for every block, so the network starts as its stem + head, the identity
#      through the body; gamma then gets gradient and grows as the data asks.
#   4. Adam's step is lr * m / (sqrt(s) + eps); for |g| << eps = 1e-8 that is about
#      lr * g / eps, a thousandth of a full step for g = 1e-11.
#
# Exercises: lessons/exercises/09_depth_batchnorm_residual.py — check your work with: python lessons/check.py 09
