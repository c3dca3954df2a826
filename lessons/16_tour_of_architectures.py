"""Lesson 16 - A tour of architectures.

Why VGG, GoogLeNet, ResNet, SqueezeNet, DenseNet, MobileNet and EfficientNet look the way they
do, one idea at a time, with tinycnn's twins of torchvision's models: their parameters, their
multiply-adds and their speed on this machine; each architecture's key block taken out and run
on its own; and how torchvision's ImageNet weights get into a twin and are fine-tuned.
"""

# ---------------------------------------------------------------------------------------
# Between 2012 and 2019 the ImageNet competition and its aftermath produced a handful of
# architectures that everything since borrows from. Each answered a question the previous
# one left open:
#
#   AlexNet (2012)      can a deep CNN trained on GPUs beat hand-made features? (yes, by far)
#   VGG (2014)          is depth what matters? build it from nothing but 3x3 convolutions
#   GoogLeNet (2014)    can a layer look at several scales at once without paying for it?
#   ResNet (2015)       why do deeper plain nets train *worse*, and how to fix it (lesson 9)
#   SqueezeNet (2016)   how few parameters can reach AlexNet's accuracy?
#   DenseNet (2016)     what if every layer could read every earlier layer's maps?
#   MobileNet (2017-18) how few multiply-adds, for phones?
#   EfficientNet (2019) given more compute, should the net get deeper, wider or see bigger images?
#
# tinycnn has a *twin* of each (tinycnn/models/): the same module tree as torchvision's
# model, so the same state_dict keys and shapes, and with the same weights the same outputs.
# Every twin takes `small_input=True` for 32x32 images (CIFAR-10 size): the ImageNet stem
# shrinks the image 4 times before the first block (224 -> 56 pixels, but 32 -> 8 would
# leave little to see), and small_input skips that shrinking without changing the shape of
# any weight. This lesson runs them all at 32x32 with 10 classes. No data set is needed.
# ---------------------------------------------------------------------------------------

import json
import struct
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
import tinycnn.functional as F  # noqa: E402
from tinycnn import finetune, models, nn, optim  # noqa: E402
from tinycnn.data import SHAPES_MEAN, SHAPES_STD, Compose, Normalize, Shapes, ToFloat  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

lesson = Lesson(__file__, __doc__)
started = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(lesson.args.seed)


def random_images(n, channels=3, size=32):
    """A batch of random 'images' (N, C, size, size) on the lesson's device: shapes and costs
    do not depend on what the pixels show."""
    return tinycnn.tensor(rng.standard_normal((n, channels, size, size)).astype(np.float32), device=lesson.device)


def forward_seconds(model, images, repeats):
    """The fastest of `repeats` forward passes (eval mode, no graph) after one warm-up pass.
    `.numpy()` waits for the result, so a GPU's queued work is counted too."""
    model.eval()
    with tinycnn.no_grad():
        model(images).numpy()          # the first pass also allocates the workspaces: not timed
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(images).numpy()
            times.append(time.perf_counter() - start)
    return min(times)


def millions(n):
    return f"{n / 1e6:,.2f}M"


# ---------------------------------------------------------------------------------------
# 1. The zoo at a glance
#
# Two numbers describe a model's cost before it is ever trained: its *parameters* (memory,
# the size of the file you download) and its *multiply-adds* per image (the work of one
# forward pass). `models.count_parameters` counts the first; `models.count_flops` counts the
# second, by running one image through the model and adding up, for each convolution,
# C_out * H_out * W_out * (C_in / groups) * kh * kw, and for each linear layer in * out.
# (Papers call these "FLOPs"; they are multiply-adds, MACs: one multiplication and one
# addition. Norms, activations and pooling are left out - a few percent.) The third number
# is measured: the time of a forward pass on a small batch, here and now.
#
# Besides the nine twins, three models made for 32x32 images from the start join the table
# for scale: vgg_small and the CIFAR ResNets (lesson 10).
# ---------------------------------------------------------------------------------------
zoo = lesson.pick(quick=["resnet20", "squeezenet1_1"],
                  default=["vgg_small", "resnet20", "resnet56", *models.TAKES_SMALL_INPUT],
                  full=["vgg_small", "resnet20", "resnet56", *models.TAKES_SMALL_INPUT])
batch = lesson.pick(quick=2, default=8, full=32)
repeats = lesson.pick(quick=1, default=3, full=5)
images = random_images(batch)

print(f"{'model':16s} {'parameters':>12s} {'MACs/image':>12s} {'forward, batch ' + str(batch):>18s} {'ms/image':>9s}")
table = {}
for name in zoo:
    options = {"small_input": True} if name in models.TAKES_SMALL_INPUT else {}
    model = models.get_model(name, num_classes=10, **options).to(lesson.device)
    params, macs = models.count_parameters(model), models.count_flops(model, (3, 32, 32))
    seconds = forward_seconds(model, images, repeats)
    table[name] = (params, macs, seconds)
    print(f"{name:16s} {millions(params):>12s} {millions(macs):>12s} {seconds * 1000:>15.0f} ms "
          f"{seconds / batch * 1000:>9.1f}", flush=True)
    del model   # VGG's weights alone are half a gigabyte


def scatter_with_names(ax, points):
    """Points {name: (x, y)} on log axes, each with its name; a name whose point lies close to
    an already named one goes below its point instead of above."""
    named = []
    colors = plt.get_cmap("tab20")
    for i, (name, (px, py)) in enumerate(points.items()):
        crowded = any(abs(np.log10(px / qx)) < 0.12 and abs(np.log10(py / qy)) < 0.12 for qx, qy in named)
        ax.scatter(px, py, s=30, color=colors(i % 20))
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(5, -11 if crowded else 4), fontsize=8)
        named.append((px, py))


fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
scatter_with_names(axes[0], {name: (macs, params) for name, (params, macs, _) in table.items()})
scatter_with_names(axes[1], {name: (macs, seconds / batch * 1000) for name, (_, macs, seconds) in table.items()})
all_macs = np.array([row[1] for row in table.values()], dtype=float)
ms_per_mac = np.median([row[2] / batch * 1000 / row[1] for row in table.values()])
line = np.geomspace(all_macs.min() / 1.5, all_macs.max() * 1.5, 10)
axes[1].plot(line, line * ms_per_mac, "--", color="grey", label="time proportional to MACs (the zoo's median rate)")
axes[1].legend(fontsize=8)
for ax, ylabel, title in ((axes[0], "parameters (10 classes)", "Memory against work"),
                          (axes[1], f"forward ms per image (batch {batch}, {lesson.device})", "Time against work")):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds per 32x32 image")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
fig.savefig(lesson.figure("zoo_cost.png"), dpi=110)
plt.close(fig)

# What to look for in the table and zoo_cost.png:
#
# * Parameters and work are different currencies. The VGGs and AlexNet sit at the top of
#   the left panel (over 100 million parameters for the VGGs) - section 2 shows where those
#   parameters are - while DenseNet-121 does as much work as they do, or more, with a small
#   fraction of their parameters.
# * MACs do not predict time well. On the right, a model on the dashed line runs at the
#   zoo's typical rate. Models made of many thin layers sit *above* it: the ones built from
#   depthwise convolutions (MobileNetV2, EfficientNet-B0) most of all, with few
#   multiply-adds spread over layers that a CPU runs far below its peak (section 7 measures
#   one such layer); SqueezeNet's fire modules and GoogLeNet's branches pay a smaller
#   overhead. A few big layers (AlexNet, the VGGs) run at or below the line.
# * Timings on a shared 2-core machine move by 2x between runs; read the ranking, not the
#   milliseconds.

if lesson.full:
    # The published numbers are for 224x224 ImageNet images with the full stem (1000 classes):
    # compare these with torchvision's model table (its "GFLOPS" are these multiply-adds).
    print("\nat 224x224 with the ImageNet stem (1000 classes):")
    for name in models.TAKES_SMALL_INPUT:
        model = models.get_model(name, num_classes=1000)
        print(f"{name:16s} {millions(models.count_parameters(model)):>12s} params "
              f"{models.count_flops(model, (3, 224, 224)) / 1e9:8.2f} GMACs", flush=True)
        del model

# ---------------------------------------------------------------------------------------
# 2. VGG: depth from stacks of 3x3 convolutions
#
# AlexNet's first layers used 11x11 and 5x5 kernels. Simonyan & Zisserman used nothing but
# 3x3 (with stride 1 and padding 1) and got depth instead: two stacked 3x3 convolutions see
# a 5x5 patch of the input, three see 7x7, with fewer weights and one ReLU more per patch.
#
# Seeing is believing: the input gradient of one output pixel is nonzero exactly on the
# pixels that pixel depends on - its receptive field. (Weights all 1, so nothing cancels.)
# ---------------------------------------------------------------------------------------


def receptive_field_mask(layers, size=9):
    """Which input pixels the centre output pixel of `layers` depends on (1) or not (0)."""
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            layer.weight.data[...] = 1.0
    x = tinycnn.tensor(np.ones((1, 1, size, size), dtype=np.float32), requires_grad=True)
    out = nn.Sequential(*layers)(x)
    centre = out.shape[-1] // 2
    out[0, 0, centre, centre].backward()
    return (x.grad.numpy()[0, 0] != 0).astype(int)


two_3x3 = receptive_field_mask([nn.Conv2d(1, 1, 3, bias=False), nn.ReLU(), nn.Conv2d(1, 1, 3, bias=False)])
one_5x5 = receptive_field_mask([nn.Conv2d(1, 1, 5, bias=False)])
print("\nwhich of a 9x9 input's pixels one output pixel depends on:")
print(f"{'two 3x3 convolutions':<22}{'one 5x5 convolution'}")
for row_a, row_b in zip(two_3x3, one_5x5):
    print(f"{' '.join(map(str, row_a)):<22}{' '.join(map(str, row_b))}")

channels = 64
for n_small, big in ((2, 5), (3, 7)):
    stacked = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(n_small)])
    single = nn.Conv2d(channels, channels, big, padding=big // 2, bias=False)
    print(f"{n_small} x conv 3x3, {channels} -> {channels} channels: {models.count_parameters(stacked):>8,} weights;"
          f"  one {big}x{big}: {models.count_parameters(single):>8,}   "
          f"({n_small} * 9 = {n_small * 9} against {big * big} per channel pair)")

# The two masks are the same 5x5 square: same field of view, 18 C^2 weights instead of
# 25 C^2 (three 3x3: 27 C^2 instead of 49 C^2), and a non-linearity between the two.
#
# Where does VGG's size come from, then? Not from its convolutions:
vgg = models.vgg11_bn(num_classes=10, small_input=True) if not lesson.quick else models.vgg_small()
conv_params = sum(p.numel() for p in vgg.features.parameters())
head_params = sum(p.numel() for p in vgg.classifier.parameters())
by_layer = models.count_flops(vgg, (3, 32, 32), by_layer=True)
conv_macs = sum(v for k, v in by_layer.items() if k.startswith("features"))
print(f"\n{'vgg11_bn' if not lesson.quick else 'vgg_small'}: convolutions {conv_params:,} parameters, "
      f"{conv_macs:,} MACs; classifier {head_params:,} parameters, {sum(by_layer.values()) - conv_macs:,} MACs")
del vgg

# In torchvision's VGG the three fully connected layers (25,088 -> 4,096 -> 4,096 -> classes)
# hold about nine parameters in ten. On 224x224 images the convolutions still do nearly all
# the work (the classifier's 120 million multiply-adds are under 2% of VGG-11's 7.6
# billion); on 32x32 images the maps are so small that the classifier's share is large.
# And at 32x32 the head is stranger still: five poolings leave a 1x1 map, which the
# adaptive pooling copies 49 times to fill the 7x7 the classifier expects. Later nets
# replaced that head with global average pooling and one linear layer (GoogLeNet, ResNet,
# and tinycnn's vgg_small).

# ---------------------------------------------------------------------------------------
# 3. GoogLeNet: four branches side by side
#
# Which kernel size is right for a layer, 1x1, 3x3 or 5x5? An Inception module does not
# choose: it runs them in parallel on the same input, plus a max-pooling branch, and stacks
# the four outputs along the channels. To stay affordable, each larger kernel gets a 1x1
# convolution first that *reduces* the channels it has to read.
#
# Here is the googlenet twin's first module, inception3a, on the maps its stem makes from a
# 32x32 image (192 channels at 16x16). (torchvision's "5x5" branch uses a 3x3 kernel, a
# known slip kept so that its weights load; the twin keeps it too.)
# ---------------------------------------------------------------------------------------
googlenet = models.googlenet(num_classes=10, small_input=True).to(lesson.device).eval()
with tinycnn.no_grad():
    x = random_images(2)
    stem_maps = googlenet.maxpool2(googlenet.conv3(googlenet.conv2(googlenet.maxpool1(googlenet.conv1(x)))))
    block = googlenet.inception3a
    branches = {"branch1: 1x1": block.branch1, "branch2: 1x1 -> 3x3": block.branch2,
                "branch3: 1x1 -> '5x5'": block.branch3, "branch4: pool 3x3 -> 1x1": block.branch4}
    print(f"\ninception3a's input: {tuple(stem_maps.shape)}")
    outputs = []
    for label, branch in branches.items():
        outputs.append(branch(stem_maps))
        print(f"  {label:<26} -> {tuple(outputs[-1].shape)}")
    joined = F.cat(outputs, 1)
    print(f"  concatenated along the channels -> {tuple(joined.shape)}; the module's own output: "
          f"{tuple(block(stem_maps).shape)}, equal: {np.array_equal(joined.numpy(), block(stem_maps).numpy())}")

# The branches keep the height and width (padding, a stride-1 pooling), so only the
# channels add up: 64 + 128 + 32 + 32 = 256. What the 1x1 reduction saves, per output pixel:
reduced = 192 * 96 + 96 * 128 * 9        # 1x1 from 192 to 96 channels, then 3x3 to 128
direct = 192 * 128 * 9                   # the 3x3 straight on the 192 input channels
print(f"branch 2 per pixel: with the 1x1 reduction {reduced:,} MACs, without {direct:,} "
      f"({direct / reduced:.1f}x more)")
del googlenet

# ---------------------------------------------------------------------------------------
# 4. ResNet: the output is F(x) + x
#
# Lesson 9 showed why: a block that adds its input to what its convolutions compute gives
# the gradient a path around every block, and a deep net that can learn F(x) = 0 is never
# forced to be worse than a shallow one. Here is the arithmetic, on the resnet18 twin's
# first block: compute F(x) by hand from the block's own layers, add x, apply the ReLU, and
# compare with what the block returns.
# ---------------------------------------------------------------------------------------
resnet = models.resnet18(num_classes=10, small_input=True).to(lesson.device).eval()
block = resnet.layer1[0]
with tinycnn.no_grad():
    x = F.relu(random_images(2, channels=64, size=8))      # a block's input comes out of a ReLU: >= 0
    residual = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))    # F(x)
    by_hand = F.relu(residual + x)
    print(f"\nresnet18.layer1[0]: x {tuple(x.shape)}, F(x) {tuple(residual.shape)}; "
          f"largest |block(x) - relu(F(x) + x)| = {np.abs(block(x).numpy() - by_hand.numpy()).max():.1e}")
    block.bn2.weight.data[...] = 0.0          # the last batch norm's scale at zero: F(x) = its shift, here 0
    print(f"with bn2's scale set to 0, F(x) = 0 and the block passes its input through: "
          f"largest |block(x) - x| = {np.abs(block(x).numpy() - x.numpy()).max():.1e}")
    block2 = resnet.layer2[0]
    print(f"where the shape changes (layer2[0]: 64 -> 128 channels, stride 2) x cannot be added as it is: "
          f"the shortcut is {type(block2.downsample).__name__}"
          f"({', '.join(type(m).__name__ for m in block2.downsample)}): "
          f"{tuple(x.shape)} -> {tuple(block2.downsample(x).shape)}")
del resnet

# The first number is zero (at most a rounding error): the block *is* relu(F(x) + x). The second shows the
# identity hiding in every block (some training recipes start each block that way, by
# zeroing that scale). Where the shape changes, a strided 1x1 convolution with batch norm
# makes x fit (the paper's "option B"; the CIFAR ResNets of lesson 10 pad with zeros instead).

# ---------------------------------------------------------------------------------------
# 5. SqueezeNet: squeeze, then expand
#
# SqueezeNet's goal was AlexNet's accuracy from a file small enough to ship to a device.
# Its fire module squeezes the channels with a 1x1 convolution (to 16 here), then expands
# them with 1x1 and 3x3 convolutions side by side, concatenated: most filters are 1x1 (nine
# times cheaper than 3x3) and the 3x3 filters read only the 16 squeezed channels.
# ---------------------------------------------------------------------------------------
squeezenet = models.squeezenet1_1(num_classes=10, small_input=True).to(lesson.device).eval()
fire = squeezenet.features[3]                  # the first fire module: 64 channels in, 128 out
with tinycnn.no_grad():
    x = random_images(2, channels=64, size=16)
    squeezed = fire.squeeze_activation(fire.squeeze(x))
    wide = fire.expand1x1_activation(fire.expand1x1(squeezed))
    spatial = fire.expand3x3_activation(fire.expand3x3(squeezed))
    joined = F.cat([wide, spatial], 1)
    print(f"\nfire module: {tuple(x.shape)} -> squeeze 1x1 {tuple(squeezed.shape)} -> expand 1x1 {tuple(wide.shape)}"
          f" and expand 3x3 {tuple(spatial.shape)} -> concatenated {tuple(joined.shape)}; "
          f"the module's own output equal: {np.array_equal(joined.numpy(), fire(x).numpy())}")
plain = nn.Conv2d(64, 128, 3, padding=1)
fire_params, plain_params = models.count_parameters(fire), models.count_parameters(plain)
print(f"parameters: the fire module {fire_params:,}, a plain 3x3 conv from 64 to 128 channels {plain_params:,} "
      f"({plain_params / fire_params:.1f}x more)")
if not lesson.quick:
    alexnet_params = models.count_parameters(models.alexnet(num_classes=1000))
    squeeze_params = models.count_parameters(models.squeezenet1_1(num_classes=1000))
    print(f"whole nets at 1000 classes: AlexNet {millions(alexnet_params)}, SqueezeNet 1.1 {millions(squeeze_params)} "
          f"parameters ({alexnet_params / squeeze_params:.0f}x fewer)")
del squeezenet

# SqueezeNet also has no fully connected layer at all: a 1x1 convolution makes one map per
# class and global average pooling turns each map into a score. Fewer parameters are not
# less work, though: in section 1's table squeezenet1_1 has about a third of MobileNetV2's
# parameters and does nearly as many multiply-adds.

# ---------------------------------------------------------------------------------------
# 6. DenseNet: concatenate instead of add
#
# ResNet adds a block's input to its output; DenseNet *keeps* it: inside a dense block, each
# layer reads the concatenation of the block's input and every earlier layer's output, and
# contributes `growth_rate` (32) new maps. So the channels grow by 32 per layer, and each
# layer can be narrow because it does not have to carry forward what is already there.
# Walk the densenet121 twin's first block layer by layer:
# ---------------------------------------------------------------------------------------
densenet = models.densenet121(num_classes=10, small_input=True).to(lesson.device).eval()
dense_block = densenet.features.denseblock1
with tinycnn.no_grad():
    x = random_images(2, channels=64, size=8)
    maps = [x]
    print(f"\ndenseblock1's input: {x.shape[1]} channels")
    for name, layer in dense_block.items():
        new = layer(maps)
        print(f"  {name}: reads {sum(m.shape[1] for m in maps):>3} channels, adds {new.shape[1]}", end="")
        maps.append(new)
        print(f" -> {sum(m.shape[1] for m in maps)} in all")
    block_out = dense_block(x)
    same_input = np.array_equal(block_out.numpy()[:, :x.shape[1]], x.numpy())
    print(f"  the block's output: {tuple(block_out.shape)}; its first 64 channels are the input itself: {same_input}")
    print(f"  transition1 (1x1 conv to half the channels, 2x2 average pool): "
          f"{tuple(densenet.features.transition1(block_out).shape)}")
del densenet

# 64 + 6 * 32 = 256 channels leave the block, and the transition halves them (and the map
# size) before the next block, so the width never explodes: the four blocks end at 256, 512,
# 1024 and 1024 channels. Every layer's 3x3 convolution reads a fixed 128 channels (the 1x1
# "bottleneck" inside each layer squeezes whatever came in), so the parameter count stays
# small (section 1). The price is memory and time: every concatenation copies all the maps
# so far.

# ---------------------------------------------------------------------------------------
# 7. MobileNet: depthwise-separable convolutions
#
# A standard 3x3 convolution from N to N channels does two jobs at once: it filters each
# pixel's neighbourhood and it mixes the channels, at 9 N^2 multiply-adds per pixel. MobileNet
# splits the jobs: a *depthwise* 3x3 convolution filters each channel on its own
# (groups = N: 9 N per pixel), then a *pointwise* 1x1 convolution mixes them (N^2). The
# ratio is (9 N + N^2) / (9 N^2) = 1/N + 1/9: for wide layers, a little over a ninth.
# ---------------------------------------------------------------------------------------
N = 128
standard = nn.Conv2d(N, N, 3, padding=1, bias=False).to(lesson.device)
separable = nn.Sequential(nn.Conv2d(N, N, 3, padding=1, groups=N, bias=False),     # depthwise
                          nn.Conv2d(N, N, 1, bias=False)).to(lesson.device)           # pointwise
size = 32
sep_batch = lesson.pick(quick=2, default=16, full=64)
x = random_images(sep_batch, channels=N, size=size)
costs = {}
for label, layer in (("standard 3x3", standard), ("depthwise 3x3 + pointwise 1x1", separable)):
    costs[label] = (models.count_parameters(layer), models.count_flops(layer, (N, size, size)),
                    forward_seconds(layer, x, lesson.pick(quick=1, default=5, full=10)))
print(f"\n{N} -> {N} channels on {size}x{size} maps:")
for label, (params, macs, seconds) in costs.items():
    print(f"  {label:<32} {params:>8,} weights {millions(macs):>8s} MACs/image   "
          f"{seconds * 1000:7.1f} ms for a batch of {sep_batch}")
(p_std, m_std, t_std), (p_sep, m_sep, t_sep) = costs.values()
print(f"  ratio separable / standard: weights {p_sep / p_std:.4f}, MACs {m_sep / m_std:.4f}, "
      f"1/N + 1/9 = {1 / N + 1 / 9:.4f};  measured time {t_sep / t_std:.2f}")

# Weights and MACs follow the formula exactly. The measured time ratio is what this machine
# makes of it - usually well above 0.12: a depthwise convolution does only 9 multiply-adds
# for every number it reads, too few to keep the arithmetic units busy, so it runs at a
# fraction of the rate of a big matrix product (benchmarks/README.md's "Depthwise
# convolution" section measures tinycnn's kernels). That is section 1's MobileNetV2 sitting
# above the line.
#
# MobileNetV2's block (an "inverted residual") wraps the idea: a 1x1 convolution widens the
# channels 6 times, the depthwise 3x3 filters them, and a 1x1 convolution with *no* ReLU
# narrows them back; the input is added when the shapes match:
mobilenet = models.mobilenet_v2(num_classes=10, small_input=True).to(lesson.device).eval()
inverted = mobilenet.features[3]             # 24 -> 24 channels, stride 1: has the skip
with tinycnn.no_grad():
    h = random_images(2, channels=24, size=8)
    steps = [f"{tuple(h.shape)}"]
    for label, layer in zip(("expand 1x1", "depthwise 3x3", "project 1x1", "batch norm"), inverted.conv):
        h = layer(h)
        steps.append(f"{label} {tuple(h.shape)}")
    print("\nmobilenet_v2.features[3]: " + " -> ".join(steps) + f"; input added: {inverted.use_res_connect}")
del mobilenet

# ---------------------------------------------------------------------------------------
# 8. EfficientNet: scaling depth, width and resolution together
#
# Given twice the compute, what should grow? Each knob costs differently, because a
# convolution's MACs are C_out * C_in * k^2 * H * W:
#
#   depth d (more blocks per stage)        MACs x d
#   width w (more channels in every layer) MACs x w^2    (both C_in and C_out grow)
#   resolution r (bigger images)           MACs x r^2    (both H and W grow)
#
# Tan & Le found that growing all three a little beats growing one a lot, with d = 1.2,
# w = 1.1, r = 1.15 per step (d w^2 r^2 ~ 2: each step doubles the work); EfficientNet-B1
# to B7 scale B0 up in that spirit, with rounded multipliers of their own (below). The twin
# takes `width_mult` and `depth_mult`; the resolution is the image we feed it. Predicted
# against counted:
# ---------------------------------------------------------------------------------------
variants = {                                  # label: (width_mult, depth_mult, image size)
    "B0 baseline": (1.0, 1.0, 32),
    "width x2": (2.0, 1.0, 32),
    "depth x2": (1.0, 2.0, 32),
    "resolution x2": (1.0, 1.0, 64),
    # torchvision's B1-B3 multipliers; their 240, 260, 300 px against B0's 224, scaled to 32
    "B1 (w 1.0, d 1.1, 34 px)": (1.0, 1.1, 34),
    "B2 (w 1.1, d 1.2, 37 px)": (1.1, 1.2, 37),
    "B3 (w 1.2, d 1.4, 43 px)": (1.2, 1.4, 43),
}
if lesson.quick:
    variants = dict(list(variants.items())[:2])
scaling = {}
print(f"\n{'efficientnet_b0 twin':<26} {'blocks':>6} {'parameters':>11} {'MACs/image':>11} "
      f"{'MACs / B0':>10} {'d w^2 r^2':>10}")
for label, (width, depth, pixels) in variants.items():
    model = models.efficientnet_b0(num_classes=10, width_mult=width, depth_mult=depth, small_input=True)
    blocks = sum(len(stage) for stage in model.features[1:-1])
    macs = models.count_flops(model, (3, pixels, pixels))
    base = scaling.get("B0 baseline", (macs,))[0]
    predicted = depth * width ** 2 * (pixels / 32) ** 2
    scaling[label] = (macs, predicted)
    print(f"{label:<26} {blocks:>6} {millions(models.count_parameters(model)):>11} {millions(macs):>11} "
          f"{macs / base:>10.2f} {predicted:>10.2f}", flush=True)
    del model

fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
labels = list(scaling)
positions = np.arange(len(labels))
base = scaling["B0 baseline"][0]
ax.bar(positions - 0.2, [scaling[k][0] / base for k in labels], 0.4, label="counted (count_flops)")
ax.bar(positions + 0.2, [scaling[k][1] for k in labels], 0.4, label="d * w^2 * r^2")
ax.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
ax.set_ylabel("multiply-adds / B0's at 32x32")
ax.set_title("EfficientNet twin: what each multiplier does to the work")
ax.legend()
ax.grid(True, axis="y", alpha=0.3)
fig.savefig(lesson.figure("efficientnet_scaling.png"), dpi=110)
plt.close(fig)

# The single knobs land near their prediction (width a little under 4: not every layer
# widens, the 3-channel input does not). The compound steps land *above* d w^2 r^2, and the
# column "blocks" tells part of why: blocks per stage are rounded up (a stage of 1 block
# times 1.1 gets 2), channels are rounded to multiples of 8, and a 37-pixel image does not
# halve evenly (37 -> 19 -> 10 -> 5, against 32 -> 16 -> 8 -> 4). On 224-pixel images the
# rounding matters less. Note also what resolution does *not* cost: parameters.

# ---------------------------------------------------------------------------------------
# 9. Loading torchvision's weights into a twin
#
# Training these nets on ImageNet takes days on many GPUs; torchvision publishes the
# result. Because a twin names and shapes every tensor as torchvision does, its weights
# load key for key - and tinycnn reads PyTorch's file format itself, without PyTorch and
# without running anything from the file (tinycnn/io/: a restricted unpickler for .pt/.pth
# zip files, a plain reader for .safetensors).
#
# What you would run (NOT run by this lesson: it needs torch and torchvision, and a download):
#
#     # once, anywhere PyTorch is installed:
#     import torch, torchvision
#     weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
#     torch.save(torchvision.models.resnet18(weights=weights).state_dict(), "resnet18.pth")
#     # (or download the file torchvision itself fetches: resnet18-f37072fd.pth)
#
#     # then, with tinycnn only:
#     import tinycnn
#     model = tinycnn.models.resnet18()                       # 1000 classes, like the file
#     model.load_state_dict(tinycnn.load_state_dict_file("resnet18.pth"))
#
# (DenseNet's published file spells some keys the old way: pass it through
# tinycnn.models.densenet.rename_legacy_keys first, as torchvision does when it loads it.)
#
# Here, without PyTorch, the same path runs on two files:
# a) a file that torch.save wrote from torchvision's own SqueezeNet 1.1, kept in the repository
#    for the tests: the state_dict of its first five layers (the stem and two fire modules;
#    a whole model's file would be megabytes), with what torchvision computed from it;
# b) the resnet18 twin's own weights, written as a .safetensors file by the ten lines below
#    (the format the Hugging Face hub distributes torchvision-style weights in). The format is
#    small enough to write by hand: an 8-byte length, a JSON table of contents, raw bytes.
# ---------------------------------------------------------------------------------------
fixtures = ROOT / "tests" / "fixtures" / "torchvision"
torchvision_file = fixtures / "squeezenet1_1_features_0-4.pth"
if torchvision_file.exists():
    from_torchvision = tinycnn.load_state_dict_file(torchvision_file)
    twin = models.squeezenet1_1()
    part = twin.features[:5]                 # the same five layers (they stay shared with `twin`)
    part.load_state_dict(from_torchvision)
    print(f"\n{torchvision_file.relative_to(ROOT)} (written by torch.save from torchvision): "
          f"{len(from_torchvision)} tensors ({', '.join(list(from_torchvision)[:3])}, ...): "
          f"the twin's names for the same layers: {list(from_torchvision) == list(part.state_dict())}")
    with np.load(fixtures / "outputs.npz") as torchvision_run:
        theirs = torchvision_run["squeezenet1_1.features[:5]"]
    same_input = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)   # as the fixture's
    with tinycnn.no_grad():
        ours = part.eval()(tinycnn.tensor(same_input)).numpy()
    print(f"  the twin's output {ours.shape} against torchvision's, same weights and input: largest difference "
          f"{np.abs(ours - theirs).max():.1e} (values up to {np.abs(theirs).max():.1f})")
    del twin, part

SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64"}


def save_safetensors(state_dict, path):
    """Write a state_dict (name -> NumPy array) as a .safetensors file."""
    contents, chunks, offset = {}, [], 0
    for name, array in state_dict.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()   # little-endian, C order
        contents[name] = {"dtype": SAFETENSORS_DTYPES[array.dtype.name], "shape": list(array.shape),
                          "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header = json.dumps(contents).encode("utf-8")
    Path(path).write_bytes(struct.pack("<Q", len(header)) + header + b"".join(chunks))


pretrained = models.resnet18(num_classes=1000)     # stands in for torchvision's ImageNet-trained ResNet-18
weights_file = lesson.out / "resnet18_twin.safetensors"
save_safetensors(pretrained.state_dict(), weights_file)
loaded = tinycnn.load_state_dict_file(weights_file)
print(f"\n{weights_file.name}: {weights_file.stat().st_size / 1e6:.1f} MB, {len(loaded)} tensors "
      f"({', '.join(list(loaded)[:3])}, ..., {list(loaded)[-1]})")

model = models.resnet18(num_classes=1000, small_input=True)    # the 32x32 layout: the same shapes
model.load_state_dict(loaded)
now_in_model = model.state_dict()
same = all(np.array_equal(now_in_model[name], value) for name, value in pretrained.state_dict().items())
print(f"loaded into a fresh resnet18 twin (small_input=True): every tensor equal to the saved one: {same}")
del pretrained
weights_file.unlink()      # 47 MB of random weights: not worth keeping

# small_input changed no shape, so the 224-pixel weights load into the 32-pixel layout. Two
# cautions with real ImageNet weights: the images must be normalised as they were in
# training (ImageNet's per-channel mean and std), and features learnt at 224x224 see a
# 32x32 image at an unusual scale - fine-tuning is what adapts them.

# ---------------------------------------------------------------------------------------
# 10. Fine-tuning the loaded twin
#
# Lesson 11 in two moves: replace the 1000-way ImageNet classifier by a new one for your
# classes (10 for CIFAR-10; here the 6 classes of the built-in Shapes data), and freeze the
# features so that only the new head learns at first. `finetune.freeze` sets
# requires_grad=False on every parameter under the given prefixes; the optimizer gets only
# the rest. No gradient is then computed for the frozen part at all: backward stops at the
# head.
# ---------------------------------------------------------------------------------------
shapes = Shapes(train=True, n=lesson.pick(quick=8, default=64, full=256), seed=lesson.args.seed)
prepare = Compose([ToFloat(), Normalize(SHAPES_MEAN, SHAPES_STD)])
shape_images = tinycnn.tensor(prepare(shapes.images), device=lesson.device)
shape_labels = tinycnn.tensor(shapes.labels, device=lesson.device)

model.fc = nn.Linear(model.fc.in_features, len(shapes.classes))     # the new head, freshly initialised
frozen = finetune.freeze(model, ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"])
trainable = [p for p in model.parameters() if p.requires_grad]
model = model.to(lesson.device)
print(f"\nfrozen: {len(frozen)} tensors, {sum(p.numel() for p in model.parameters() if not p.requires_grad):,} "
      f"numbers; trained: {len(trainable)} tensors (fc), {sum(p.numel() for p in trainable):,} numbers")

# One training step, and a look at what it changed:
before = {name: value.copy() for name, value in model.state_dict().items()}
optimizer = optim.SGD(trainable, lr=0.01, momentum=0.9)
model.train()
step_batch = lesson.pick(quick=4, default=16, full=32)
loss = F.cross_entropy(model(shape_images[:step_batch]), shape_labels[:step_batch])
optimizer.zero_grad()
loss.backward()
optimizer.step()
after = model.state_dict()
moved = [name for name in after if not np.array_equal(before[name], after[name])]
parameter_names = {name for name, _ in model.named_parameters()}
print(f"one SGD step on {step_batch} Shapes images changed these parameters: "
      f"{', '.join(n for n in moved if n in parameter_names)}")
print(f"  and {sum(n not in parameter_names for n in moved)} other tensors, such as "
      f"{', '.join([n for n in moved if n not in parameter_names][:2])}")

# Only fc's weights moved. But the batch norms of the frozen layers updated their running
# mean and variance: in training mode they follow the new data, frozen or not (as in
# PyTorch). With few new images, put them in eval mode to keep the ImageNet statistics.
#
# With the features frozen (and in eval mode), an image's feature vector never changes. So
# a common shortcut: run the frozen part once over the images, keep the 512 numbers per
# image, and train the head alone on them - many epochs for the price of one forward pass.


def resnet_features(net, x):
    """The frozen part of a resnet18 twin: (N, 3, H, W) -> (N, 512), everything before fc."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return F.flatten(net.avgpool(x), 1)


model.eval()
with tinycnn.no_grad():
    cached = resnet_features(model, shape_images)
head_optimizer = optim.Adam(model.fc.parameters(), lr=1e-2)
head_steps = lesson.pick(quick=5, default=100, full=300)
head_losses = []
for step in range(head_steps):
    loss = F.cross_entropy(model.fc(cached), shape_labels)
    head_optimizer.zero_grad()
    loss.backward()
    head_optimizer.step()
    head_losses.append(float(loss.item()))
accuracy = float((model.fc(cached).numpy().argmax(1) == shapes.labels).mean())
print(f"features cached once: {tuple(cached.shape)}; {head_steps} Adam steps on the head alone: training loss "
      f"{head_losses[0]:.3f} -> {head_losses[-1]:.3f}, training accuracy {100 * accuracy:.0f}%")

# That is a training loss on the images the head was fitted to, with a 512-number
# description per image and few images: it says that the head can learn, not that it
# generalises (the "pretrained" weights here are random; lesson 11 measures what frozen and
# fine-tuned features are worth on a test set). From the command line the same recipe is
#
#     tinycnn train --dataset cifar10 --model resnet18 --init-from resnet18.pth \
#                   --freeze conv1,bn1,layer1,layer2,layer3,layer4
#
# (--init-from loads every tensor whose name and shape match; fc's shape differs, so it
# starts fresh.) Then unfreeze and train everything with a small learning rate.

# ---------------------------------------------------------------------------------------
# 11. Which one should you use? The measured comparison
#
# Parameters and MACs are not accuracy. benchmarks/README.md, section "The model zoo",
# holds the measured table: every model trained on CIFAR-10 from scratch with the same
# 5-minute budget, with its parameters, MACs, training images per second, memory and test
# accuracy (`python benchmarks/models.py --data-dir ...`; about two hours on 2 cores), and a
# depthwise-separable against standard convolution row. Read them with this lesson in mind:
#
# * Under a fixed *time* budget, what counts is accuracy per second of training, not per
#   MAC: compare the img/s column with section 1's MACs, and see which architectures run
#   below their MAC count's promise on a CPU.
# * The ImageNet twins were designed for 224-pixel images and millions of them. Look at
#   whether, on 32x32 images and a few minutes, the small CIFAR-native nets (vgg_small, the
#   CIFAR ResNets) keep up with them: a twin's strength is its ImageNet weights (sections
#   9-10), which a from-scratch budget does not use.
# * Look for the accuracy difference that survives the noise: one-run differences of a
#   point or two are not a ranking.
# ---------------------------------------------------------------------------------------

print(f"\nlesson 16 took {time.perf_counter() - started:.0f}s")
lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (read these next)
#   tinycnn/models/__init__.py     the zoo: get_model, TAKES_SMALL_INPUT, what a twin is
#   tinycnn/models/flops.py        count_flops: the multiply-adds of section 1, by forward hooks
#   tinycnn/models/vgg.py          VGG-11/16 with batch norm (and vgg_small)
#   tinycnn/models/googlenet.py    Inception modules and the auxiliary classifiers
#   tinycnn/models/resnet.py       the CIFAR ResNets and resnet18 (ImageNetBasicBlock)
#   tinycnn/models/squeezenet.py   the fire module
#   tinycnn/models/densenet.py     DenseLayer, DenseBlock, Transition, rename_legacy_keys
#   tinycnn/models/mobilenet.py    InvertedResidual; tinycnn/models/blocks.py make_divisible
#   tinycnn/models/efficientnet.py MBConv, squeeze-and-excitation, width_mult/depth_mult
#   tinycnn/io/weights.py          load_state_dict_file; torch_zip.py and safetensors.py, the readers
#   tinycnn/finetune.py            load_matching, freeze (lesson 11 uses them too)
#   tests/fixtures/make_torchvision_fixtures.py   how section 9's torchvision file was written
#   tests/test_models_zoo.py       each twin against torchvision's outputs, state_dict keys, shapes
#   benchmarks/README.md           "The model zoo": the measured comparison
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Three stacked 3x3 convolutions and one 7x7 see the same 7x7 patch. Give two reasons
#      to prefer the stack.
#   2. An Inception branch runs a 1x1 convolution before its 3x3. Why does that make it
#      cheaper, and what could it cost?
#   3. In a dense block of 6 layers with growth rate 32 and 64 input channels, how many
#      channels does the 4th layer read? How many leave the block?
#   4. A depthwise-separable layer needs about 8 times fewer MACs than the 3x3 convolution it
#      replaces. Why may it run less than 8 times faster?
#   5. Doubling the width of EfficientNet and doubling the image size both multiply the MACs
#      by about 4. What differs between the two?
#
# Answers (try first)
#   1. Fewer weights (27 C^2 against 49 C^2 for C channels in and out) and three
#      non-linearities instead of one, so the stack can compute more complicated functions
#      of the same patch.
#   2. The expensive 3x3 then reads 96 channels instead of 192 (inception3a), and the 1x1
#      that makes them costs a ninth as much per channel: section 3 printed the saving per
#      pixel. The cost: everything the 3x3 sees must pass through 96 channels; squeeze too
#      hard and information is lost.
#   3. 64 + 3 * 32 = 160 (the input plus three earlier layers' maps); 64 + 6 * 32 = 256 leave.
#   4. The depthwise part does 9 multiply-adds per number it reads: the time goes into
#      moving memory, not arithmetic, and many small layers add per-layer overhead. MACs
#      count arithmetic only.
#   5. Width also multiplies the parameters (by about 4); resolution leaves them unchanged,
#      but the activations (memory during training) grow with both.
#
# Exercises: lessons/exercises/16_tour_of_architectures.py — check your work with: python lessons/check.py 16
