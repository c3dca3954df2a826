"""The torchvision twins of tinycnn.models against torchvision itself (through fixtures), and count_flops.

tests/fixtures/make_torchvision_fixtures.py ran torchvision 0.29 once and stored, per model,
its state_dict's keys and shapes, its module tree, and float64 eval-mode logits with weights
that tests/_twin_weights.py makes from NumPy alone. Here the same weights go into the twins
(through ``load_state_dict``, as torchvision's own weight files would) and must give the same
logits to 1e-10 relative. torch and torchvision are never imported.

Per model: the keys, shapes and module tree match; the logits match at 64x72 (1000 classes)
and, with ``small_input=True``, at 32x32 (10 classes) against torchvision's model edited as
the twin's docstring says; ``small_input`` keeps every weight's shape; a 32x32 forward and
backward at batch 2 with one input channel gives a finite gradient for every parameter.
The VGGs and AlexNet build 60-140M parameters per model: those tests are marked slow (they
still run in CI).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinycnn
from tinycnn import functional as F
from tinycnn import models, nn

from _twin_weights import twin_input, twin_weight

FIXTURES = Path(__file__).parent / "fixtures" / "torchvision"
META = json.loads((FIXTURES / "state_dicts.json").read_text())
NAMES = list(META["state_dicts"])
HEAVY = {"alexnet", "vgg11_bn", "vgg16_bn"}   # 57-138M parameters: seconds just to build
FAST_BUILD = {"vgg11_bn": {"init_weights": False}, "vgg16_bn": {"init_weights": False}}  # weights get loaded anyway


def _marked(names):
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in names]


@pytest.fixture(scope="module")
def logits():
    with np.load(FIXTURES / "outputs.npz") as stored:
        return {key: stored[key] for key in stored.files}


def _load_twin_weights(model):
    """Load the NumPy-made fixture weights through load_state_dict, a few tensors at a time (VGG's
    would take 1 GB at once in float64). Every key gets loaded: the keys test checks the set."""
    chunk, size = {}, 0
    for key, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        chunk[key] = twin_weight(key, tensor.shape)
        size += tensor.data.size
        if size > 20_000_000:
            model.load_state_dict(chunk, strict=False)
            chunk, size = {}, 0
    model.load_state_dict(chunk, strict=False)
    return model


def _forward64(model, inputs):
    x = tinycnn.Tensor(twin_input(inputs["seed"], inputs["shape"]), dtype=tinycnn.float64)
    with tinycnn.no_grad():
        return model(x).data


def _assert_same_logits(ours, theirs):
    assert ours.shape == theirs.shape
    assert np.all(np.isfinite(ours))
    scale = np.max(np.abs(theirs))
    assert scale > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10 * scale)


# --------------------------------------------------------------------------- the twins
def test_every_twin_is_in_the_zoo():
    assert set(NAMES) == {"alexnet", "vgg11_bn", "vgg16_bn", "googlenet", "resnet18", "mobilenet_v2",
                          "densenet121", "efficientnet_b0", "squeezenet1_1"}
    assert set(NAMES) <= set(models.MODELS) and set(NAMES) == set(models.TAKES_SMALL_INPUT)
    assert META["torchvision"].startswith("0.29")


@pytest.mark.parametrize("name", _marked(NAMES))
def test_twin_matches_torchvision(name, logits):
    """Default build (1000 classes): keys in torchvision's order, shapes, module tree; then the logits."""
    model = models.get_model(name, num_classes=1000, **FAST_BUILD.get(name, {}))
    in_order = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    assert in_order == META["state_dicts"][name]          # same keys, same order, same shapes
    assert [path for path, _ in model.named_modules()] == META["module_trees"][name]

    model = _load_twin_weights(model.to(tinycnn.float64).eval())
    _assert_same_logits(_forward64(model, META["default_input"]), logits[name])


def _head_shape(shape, num_classes):
    """A fixture shape (1000 classes) as it is at ``num_classes``: the classifiers' first dimension."""
    return [num_classes if i == 0 and n == 1000 else n for i, n in enumerate(shape)]


@pytest.mark.parametrize("name", _marked(NAMES))
def test_small_input_twin_matches_edited_torchvision(name, logits):
    """small_input=True at 10 classes: every weight keeps its shape (the head has 10 rows), and the
    32x32 logits equal torchvision's model with the stem edits the docstring describes."""
    inputs = META["small_input"]
    model = models.get_model(name, num_classes=inputs["num_classes"], small_input=True, **FAST_BUILD.get(name, {}))
    assert model.small_input is True
    shapes = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    assert shapes == [[key, _head_shape(shape, inputs["num_classes"])] for key, shape in META["state_dicts"][name]]
    model = _load_twin_weights(model.to(tinycnn.float64).eval())
    _assert_same_logits(_forward64(model, inputs), logits[name + ".small"])


@pytest.mark.parametrize("name", _marked(NAMES))
def test_small_input_trains_on_one_channel(name):
    """32x32 grey images, 10 classes, batch 2, training mode: forward, loss, backward; every
    parameter gets a finite gradient that is not all zero (GoogLeNet: its auxiliary heads too)."""
    tinycnn.manual_seed(0)
    options = FAST_BUILD.get(name, {}) if name == "vgg16_bn" else {}   # vgg11_bn tries torchvision's init
    model = models.get_model(name, num_classes=10, in_channels=1, small_input=True, **options).train()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.shape[1] == 1 and first_conv.in_channels == 1
    expected = [[key, _head_shape(shape, 10)] for key, shape in META["state_dicts"][name]]
    expected[0][1][1] = 1                                   # only the first conv's input channels change
    assert [[key, list(value.shape)] for key, value in model.state_dict().items()] == expected
    x = tinycnn.Tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    outputs = model(x)
    labels = np.array([3, 7])
    if name == "googlenet":
        assert isinstance(outputs, models.GoogLeNetOutputs)
        assert all(o.shape == (2, 10) for o in outputs)
        loss = F.cross_entropy(outputs.logits, labels) + 0.3 * (F.cross_entropy(outputs.aux_logits1, labels)
                                                                 + F.cross_entropy(outputs.aux_logits2, labels))
    else:
        assert outputs.shape == (2, 10)
        loss = F.cross_entropy(outputs, labels)
    assert math.isfinite(float(loss.data))
    loss.backward()
    for key, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}: {key} got no gradient"
        grad = parameter.grad.data
        assert np.all(np.isfinite(grad)), f"{name}: {key} has a non-finite gradient"
    nonzero = sum(bool(np.any(p.grad.data != 0)) for p in model.parameters())
    assert nonzero >= 0.9 * len(list(model.parameters()))   # a few (e.g. ReLU-dead biases) may be zero


def test_a_torchvision_weight_file_loads_into_the_twin(logits):
    """A file torch.save wrote from torchvision's SqueezeNet 1.1 (its stem and first two fire
    modules: a whole model's file is megabytes) loads through load_state_dict_file, key for key,
    into the same part of the twin, which then computes what torchvision computed (float32)."""
    state = tinycnn.load_state_dict_file(FIXTURES / "squeezenet1_1_features_0-4.pth")
    model = models.squeezenet1_1()
    part = model.features[:5]                       # shares its layers with the model
    assert list(state) == list(part.state_dict())
    part.load_state_dict(state)
    np.testing.assert_array_equal(model.features[3].expand3x3.weight.data, state["3.expand3x3.weight"])
    x = tinycnn.Tensor(twin_input(2, (1, 3, 32, 32)).astype(np.float32))
    with tinycnn.no_grad():
        ours = part.eval()(x).data
    theirs = logits["squeezenet1_1.features[:5]"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.max(np.abs(theirs)))


def test_googlenet_without_aux_heads_and_in_eval():
    with_aux = models.googlenet(num_classes=10, small_input=True)
    without = models.googlenet(num_classes=10, small_input=True, aux_logits=False)
    assert not any(key.startswith("aux") for key in without.state_dict())
    assert set(without.state_dict()) < set(with_aux.state_dict())
    x = tinycnn.Tensor(np.zeros((1, 3, 32, 32), dtype=np.float32))
    assert without.train()(x).shape == (1, 10)               # no aux heads: plain logits in training too
    assert with_aux.eval()(x).shape == (1, 10)               # eval: plain logits, aux heads unused
    assert models.googlenet(aux_logits=False).fc.out_features == 1000


def test_googlenet_transform_input_renormalises_the_channels():
    """transform_input=True (torchvision's, for its original weights) maps an image normalised with
    ImageNet's mean and std to one normalised with 0.5 and 0.5 before the first conv."""
    model = models.googlenet(num_classes=5, small_input=True, aux_logits=False, transform_input=True, init_weights=False)
    model = _load_twin_weights(model.to(tinycnn.float64).eval())   # unit-scale weights: outputs that vary
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = x * std[:, None, None] + mean[:, None, None]                  # undo ImageNet's normalisation
    renormalised = (pixels - 0.5) / 0.5
    with tinycnn.no_grad():
        ours = model(tinycnn.Tensor(x, dtype=tinycnn.float64)).data
        model.transform_input = False
        plain = model(tinycnn.Tensor(renormalised, dtype=tinycnn.float64)).data
        untransformed = model(tinycnn.Tensor(x, dtype=tinycnn.float64)).data
    np.testing.assert_allclose(ours, plain, rtol=1e-10, atol=1e-10 * np.max(np.abs(plain)))
    assert np.max(np.abs(untransformed - plain)) > 1e-3 * np.max(np.abs(plain))   # the transform matters
    with pytest.raises(ValueError, match="3 RGB channels"):
        models.googlenet(in_channels=1, transform_input=True)


def test_width_and_depth_multipliers():
    half = models.mobilenet_v2(num_classes=10, width_mult=0.5)
    assert half.features[0][0].out_channels == 16 and half.last_channel == 1280   # 32 * 0.5; last stays >= 1280
    wide = models.mobilenet_v2(num_classes=10, width_mult=1.4)
    assert wide.features[0][0].out_channels == 48 and wide.last_channel == 1792  # make_divisible(44.8) = 48
    assert models.count_parameters(half) < models.count_parameters(models.mobilenet_v2(num_classes=10))
    b1_like = models.efficientnet_b0(num_classes=10, depth_mult=1.1)     # EfficientNet-B1's depth
    assert [len(stage) for stage in list(b1_like.features)[1:-1]] == [2, 3, 3, 4, 4, 5, 2]  # ceil(n * 1.1)
    b2_like = models.efficientnet_b0(num_classes=10, width_mult=1.1)
    assert b2_like.features[0][0].out_channels == 32 and b2_like.classifier[1].in_features == 1408
    x = tinycnn.Tensor(np.zeros((1, 3, 32, 32), dtype=np.float32))
    for model in (half, b1_like):
        assert model.eval()(x).shape == (1, 10)


def test_make_divisible_rounds_as_mobilenet():
    from tinycnn.models.blocks import make_divisible
    assert [make_divisible(v) for v in (32 * 0.5, 16 * 0.35, 24 * 1.4, 3, 100)] == [16, 8, 32, 8, 104]
    assert make_divisible(44.8) == 48 and make_divisible(20) == 24 and make_divisible(11) == 16  # never 10% below


def test_small_input_must_be_a_bool():
    with pytest.raises(TypeError, match="small_input must be True or False"):
        models.resnet18(small_input="yes")


def test_densenet_legacy_keys_are_renamed():
    from tinycnn.models.densenet import rename_legacy_keys
    legacy = {"features.denseblock1.denselayer1.norm.1.weight": 1, "features.denseblock1.denselayer1.conv.2.weight": 2,
              "features.transition1.norm.weight": 3, "classifier.bias": 4}
    legacy["features.denseblock4.denselayer16.norm.2.num_batches_tracked"] = 5
    assert list(rename_legacy_keys(legacy)) == ["features.denseblock1.denselayer1.norm1.weight",
                                                "features.denseblock1.denselayer1.conv2.weight",
                                                "features.transition1.norm.weight", "classifier.bias",
                                                "features.denseblock4.denselayer16.norm2.num_batches_tracked"]
    assert set(rename_legacy_keys(legacy)) <= set(models.densenet121().state_dict())


# --------------------------------------------------------------------------- count_flops
def test_count_flops_by_hand():
    """A model small enough to count on paper: (1, 3, 8, 8) input."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),          # 4 maps of 8x8, each output 3*3*3 MACs: 4*64*27 = 6912
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),   # depthwise, 4 maps of 4x4, 1*3*3 each: 4*16*9 = 576
        nn.Conv2d(4, 6, 1),                     # pointwise, 6 maps of 4x4, 4 each: 6*16*4 = 384
        nn.MaxPool2d(2),                        # not counted: (6, 2, 2)
        nn.Flatten(),
        nn.Linear(24, 5),                       # 24*5 = 120
    )
    assert models.count_flops(model, (3, 8, 8)) == 6912 + 576 + 384 + 120
    assert models.count_flops(model, (1, 3, 8, 8)) == 6912 + 576 + 384 + 120
    assert models.count_flops(model, (3, 8, 8), by_layer=True) == {"0": 6912, "2": 576, "3": 384, "6": 120}
    assert model.training                       # the mode is restored
    assert "forward" not in model[0].__dict__   # the counting wrappers are gone
    with pytest.raises(ValueError, match="one image"):
        models.count_flops(model, (2, 3, 8, 8))


def test_count_flops_counts_a_layer_used_twice_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    assert models.count_flops(Twice(), (1, 1, 4)) == 2 * 16


def test_count_flops_of_resnet18_matches_torchvisions_figure():
    """ResNet-18 at 224: 1.814 GFLOPs in torchvision's weight metadata (``_ops``), which counts
    multiply-adds too."""
    macs = models.count_flops(models.resnet18(), (3, 224, 224))
    assert round(macs / 1e9, 3) == 1.814


# --------------------------------------------------------------------------- tinycnn train with a twin
def test_train_builds_a_small_input_twin_for_32px_images_and_the_checkpoint_rebuilds_it(tmp_path, monkeypatch):
    """``tinycnn train --model squeezenet1_1`` on 32x32 images: small_input=True, recorded in the
    checkpoint; eval/predict/export (model_from_checkpoint) and --resume build the same model."""
    from tinycnn import data, runner
    from tinycnn.runner import RunConfig, load_checkpoint, model_from_checkpoint, run_training

    def few_test_images(config, train):   # the shapes set's 2,000 test images would take most of a minute
        return runner_load(config, train) if train else data.Shapes(train=False, n=40, seed=config.seed)

    runner_load = runner.load_dataset
    monkeypatch.setattr(runner, "load_dataset", few_test_images)

    quick = dict(dataset="shapes", model="squeezenet1_1", train_size=60, val_split=20, batch_size=20, progress=False)
    run_training(RunConfig(**quick, epochs=1, out=str(tmp_path)))
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["meta"]["model_args"] == {"small_input": True}
    model = model_from_checkpoint(checkpoint, weights="last")
    assert model.small_input is True and model.features[0].stride == (1, 1)
    assert isinstance(model.features[2], nn.Identity)

    # the checkpoint's record decides, not the image size: a model trained without the adaptation
    checkpoint["meta"]["model_args"] = {"small_input": False}
    assert model_from_checkpoint(checkpoint, weights="last").small_input is False
    # a checkpoint written before model_args existed: derived from the image size, as training did
    del checkpoint["meta"]["model_args"]
    assert model_from_checkpoint(checkpoint, weights="last").small_input is True

    run_training(RunConfig(**quick, epochs=2), resume=tmp_path)   # resuming rebuilds the same model
    assert load_checkpoint(tmp_path)["meta"]["model_args"] == {"small_input": True}


def test_model_arguments_follow_the_image_size():
    from tinycnn.runner import SMALL_INPUT_MAX_SIZE, build_model, model_arguments

    assert model_arguments("resnet18", 32) == {"small_input": True}
    assert model_arguments("ResNet18", 28) == {"small_input": True}      # MNIST
    assert model_arguments("resnet18", SMALL_INPUT_MAX_SIZE + 1) == {"small_input": False}
    assert model_arguments("resnet18", 224) == {"small_input": False}
    assert model_arguments("lenet5", 28) == {"input_size": 28}
    assert model_arguments("resnet20", 32) == {}
    assert build_model("mobilenet_v2", 10, 1, 28).features[0][0].stride == (1, 1)
    assert build_model("mobilenet_v2", 10, 3, 224).features[0][0].stride == (2, 2)


def test_save_model_records_the_twins_small_input(tmp_path):
    from tinycnn.runner import load_checkpoint, model_from_checkpoint, save_model

    model = models.squeezenet1_1(num_classes=3, small_input=False)   # a choice the image size would not make
    save_model(tmp_path / "model.npz", model, name="squeezenet1_1", classes=["a", "b", "c"], mean=[0.5] * 3,
               std=[0.25] * 3, image_shape=(3, 32, 32))
    checkpoint = load_checkpoint(tmp_path / "model.npz")
    assert checkpoint["meta"]["model_args"] == {"small_input": False}
    assert model_from_checkpoint(checkpoint).small_input is False


def test_the_training_loop_adds_googlenets_auxiliary_losses():
    """In training GoogLeNet returns (logits, aux2, aux1): the loop scores the logits and adds
    0.3 x each auxiliary loss, so the auxiliary heads learn too."""
    from tinycnn.train import logits_and_loss

    tinycnn.manual_seed(0)
    model = models.googlenet(num_classes=4, small_input=True).train()
    x = tinycnn.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    labels = np.array([1, 2])
    outputs = model(x)
    logits, loss = logits_and_loss(outputs, labels, F.cross_entropy)
    assert logits is outputs.logits
    expected = sum(w * float(F.cross_entropy(o, labels).data)
                   for w, o in ((1.0, outputs.logits), (0.3, outputs.aux_logits1), (0.3, outputs.aux_logits2)))
    assert float(loss.data) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert np.any(model.aux1.fc2.weight.grad.data != 0) and np.any(model.aux2.fc2.weight.grad.data != 0)
