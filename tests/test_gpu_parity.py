"""Parity: every op, model step, loader, checkpoint and the CLI give the same results on the GPU as on the CPU.

Each test takes ``other_device`` (tests/conftest.py): ``"cpu"`` (the test's code run
twice on the CPU: trivially equal, but it keeps these tests working on machines
without a GPU) and ``"cuda"`` (marked ``gpu``; skipped, saying why, without CuPy or
a GPU). ``pytest -m gpu`` runs only the GPU variants.

The comparison harness and its tolerances are in tests/_parity.py.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from tinycnn import backend, models, nn, optim
from tinycnn.data import DataLoader
from tinycnn.data import transforms as T
from tinycnn.data.affine import affine_grid_sample, affine_matrices

from _parity import Const, assert_close, compare, rng_for

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def _tf32_gemms() -> bool:
    """CuPy's float32 GEMMs use TF32 tensor cores (10-bit mantissas) when CUPY_TF32=1."""
    return os.environ.get("CUPY_TF32", "0") == "1"


def skip_if_tf32(device, dtype):
    """float32 products on TF32 tensor cores are ~1e-3 off: parity at 1e-5 is not expected there."""
    if device != "cpu" and np.dtype(dtype) == np.float32 and _tf32_gemms():
        pytest.skip("CUPY_TF32=1: float32 GEMMs round their inputs to TF32; run parity tests without it")


# --------------------------------------------------------------------------- the ops
# name -> (function of Tensors, inputs made from a seeded generator). Floats become
# Tensors that require grad; integer and boolean arrays are constant Tensors (indices, masks).
def _randn(rng, *shape):
    return rng.standard_normal(shape)


def _positive(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def _ties(rng, *shape):
    """Small integers as floats: many exactly equal values (ties in max, maximum, pooling)."""
    return rng.integers(0, 3, shape).astype(np.float64)


OPS = {
    # element-wise arithmetic, with broadcasting
    "add": (lambda a, b: a + b, lambda r: [_randn(r, 3, 4), _randn(r, 4)]),
    "sub": (lambda a, b: a - b, lambda r: [_randn(r, 2, 3, 4), _randn(r, 3, 1)]),
    "mul": (lambda a, b: a * b, lambda r: [_randn(r, 3, 4), _randn(r, 1, 4)]),
    "div": (lambda a, b: a / b, lambda r: [_randn(r, 3, 4), _positive(r, 3, 4)]),
    "pow tensors": (lambda a, b: a ** b, lambda r: [_positive(r, 3, 4), _randn(r, 3, 4)]),
    "pow number": (lambda a: a ** 3, lambda r: [_randn(r, 3, 4)]),
    "sqrt as pow": (lambda a: a ** 0.5, lambda r: [_positive(r, 5)]),
    "neg": (lambda a: -a, lambda r: [_randn(r, 3, 4)]),
    "number minus tensor": (lambda a: 2.0 - a, lambda r: [_randn(r, 3, 4)]),
    "exp": (F.exp, lambda r: [_randn(r, 3, 4)]),
    "log": (F.log, lambda r: [_positive(r, 3, 4)]),
    "sqrt": (F.sqrt, lambda r: [_positive(r, 3, 4)]),
    "tanh": (F.tanh, lambda r: [_randn(r, 3, 4)]),
    "sigmoid": (F.sigmoid, lambda r: [np.concatenate([_randn(r, 8), [-40.0, -15.0, 15.0, 40.0]])]),
    "relu": (F.relu, lambda r: [np.concatenate([_randn(r, 10), [0.0, -0.0]])]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda r: [_randn(r, 3, 4)]),
    "abs": (F.abs, lambda r: [_randn(r, 3, 4)]),
    "clip both": (lambda x: F.clip(x, -0.5, 0.7), lambda r: [_randn(r, 4, 5)]),
    "clip min only": (lambda x: F.clip(x, min=0.1), lambda r: [_randn(r, 4, 5)]),
    "maximum with ties": (F.maximum, lambda r: [_ties(r, 4, 5), _ties(r, 4, 5)]),
    "minimum broadcast": (F.minimum, lambda r: [_randn(r, 4, 5), _randn(r, 5)]),
    "where": (lambda c, a, b: F.where(c, a, b), lambda r: [r.random((4, 5)) > 0.5, _randn(r, 4, 5), _randn(r, 1, 5)]),
    # reductions
    "sum all": (lambda x: x.sum(), lambda r: [_randn(r, 3, 4, 5)]),
    "sum axes keepdims": (lambda x: x.sum(axis=(0, 2), keepdims=True), lambda r: [_randn(r, 3, 4, 5)]),
    "mean axis": (lambda x: x.mean(axis=1), lambda r: [_randn(r, 3, 4, 5)]),
    "mean all": (lambda x: x.mean(), lambda r: [_randn(r, 3, 4)]),
    "max axis with ties": (lambda x: x.max(axis=-1), lambda r: [_ties(r, 3, 4, 5)]),
    "max all": (lambda x: x.max(), lambda r: [_randn(r, 3, 4)]),
    "min axes": (lambda x: x.min(axis=(0, 1)), lambda r: [_randn(r, 3, 4, 5)]),
    # shapes
    "reshape": (lambda x: x.reshape(6, -1), lambda r: [_randn(r, 3, 4, 5)]),
    "transpose": (lambda x: x.transpose(0, 2), lambda r: [_randn(r, 3, 4, 5)]),
    "permute": (lambda x: x.permute(2, 0, 1), lambda r: [_randn(r, 3, 4, 5)]),
    "flatten": (lambda x: x.flatten(1), lambda r: [_randn(r, 2, 3, 4, 5)]),
    "squeeze": (lambda x: x.squeeze(1), lambda r: [_randn(r, 3, 1, 5)]),
    "unsqueeze": (lambda x: x.unsqueeze(0), lambda r: [_randn(r, 3, 5)]),
    "expand": (lambda x: x.expand(4, 3, 5), lambda r: [_randn(r, 3, 1)]),
    "T": (lambda x: x.T, lambda r: [_randn(r, 3, 5)]),
    # indexing
    "slices": (lambda x: x[1:, ::2, -1], lambda r: [_randn(r, 3, 4, 5)]),
    "int array with repeats": (lambda x, i: x[i], lambda r: [_randn(r, 4, 5), np.array([0, 2, 0, 3, 2, 2])]),
    "int arrays in two axes": (lambda x, i, j: x[i, :, j], lambda r: [_randn(r, 4, 3, 5), np.array([1, 1, 3]),
                                                                      np.array([0, 4, 0])]),
    "negative int array": (lambda x, i: x[:, i], lambda r: [_randn(r, 4, 5), np.array([-1, 0, -1])]),
    "bool mask": (lambda x, m: x[m], lambda r: [_randn(r, 4, 5), r.random((4, 5)) > 0.4]),
    "bool rows": (lambda x, m: x[m], lambda r: [_randn(r, 4, 5), np.array([True, False, True, True])]),
    # joining
    "cat": (lambda a, b, c: F.cat([a, b, c], axis=1), lambda r: [_randn(r, 2, 3), _randn(r, 2, 1), _randn(r, 2, 4)]),
    "stack": (lambda a, b: F.stack([a, b], axis=-1), lambda r: [_randn(r, 2, 3), _randn(r, 2, 3)]),
    "pad": (lambda x: F.pad(x, ((0, 0), (1, 2), (2, 1))), lambda r: [_randn(r, 2, 3, 4)]),
    # products
    "matmul 2-D": (F.matmul, lambda r: [_randn(r, 3, 4), _randn(r, 4, 5)]),
    "matmul batched": (F.matmul, lambda r: [_randn(r, 2, 3, 4), _randn(r, 4, 5)]),
    "matmul broadcast batch": (F.matmul, lambda r: [_randn(r, 2, 1, 3, 4), _randn(r, 3, 4, 2)]),
    "matmul vector": (F.matmul, lambda r: [_randn(r, 4), _randn(r, 4, 3)]),
    "linear": (F.linear, lambda r: [_randn(r, 5, 4), _randn(r, 3, 4), _randn(r, 3)]),
    "linear 3-D no bias": (lambda x, w: F.linear(x, w), lambda r: [_randn(r, 2, 5, 4), _randn(r, 3, 4)]),
    # softmax and the loss
    "softmax": (lambda x: F.softmax(x, dim=1), lambda r: [_randn(r, 4, 5) * 3]),
    "softmax dim 0": (lambda x: F.softmax(x, dim=0), lambda r: [_randn(r, 4, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), lambda r: [_randn(r, 2, 3, 4) * 3]),
    "cross_entropy mean": (F.cross_entropy, lambda r: [_randn(r, 6, 5), r.integers(0, 5, 6)]),
    "cross_entropy sum": (lambda x, t: F.cross_entropy(x, t, reduction="sum"),
                          lambda r: [_randn(r, 6, 5), r.integers(0, 5, 6)]),
    "cross_entropy none": (lambda x, t: F.cross_entropy(x, t, reduction="none"),
                           lambda r: [_randn(r, 6, 5), r.integers(0, 5, 6)]),
    "cross_entropy smoothing": (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                                lambda r: [_randn(r, 6, 5) * 4, r.integers(0, 5, 6)]),
    "cross_entropy smoothing none": (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2, reduction="none"),
                                     lambda r: [_randn(r, 6, 5), r.integers(0, 5, 6)]),
}

# conv2d: (x shape, weight shape, bias?, stride, padding, dilation, groups)
CONVOLUTIONS = {
    "3x3 same, col2im backward": ((2, 3, 7, 7), (4, 3, 3, 3), True, 1, 1, 1, 1),
    "3x3 same, full-convolution backward": ((2, 4, 6, 6), (4, 4, 3, 3), False, 1, 1, 1, 1),
    "5x5 valid (LeNet)": ((2, 3, 10, 10), (4, 3, 5, 5), True, 1, 0, 1, 1),
    "stride 2": ((2, 3, 8, 8), (5, 3, 3, 3), True, 2, 1, 1, 1),
    "dilation 2": ((1, 2, 9, 9), (3, 2, 3, 3), True, 1, 2, 2, 1),
    "groups 2": ((2, 4, 6, 6), (6, 2, 3, 3), True, 1, 1, 1, 2),
    "depthwise": ((2, 3, 6, 6), (3, 1, 3, 3), False, 1, 1, 1, 3),
    "1x1 no bias": ((2, 3, 5, 5), (4, 3, 1, 1), False, 1, 0, 1, 1),
    "3x2 kernel, stride (2, 1), padding (1, 0)": ((1, 2, 7, 6), (3, 2, 3, 2), True, (2, 1), (1, 0), 1, 1),
}


def _conv_case(x_shape, w_shape, bias, stride, padding, dilation, groups):
    """(function, inputs) for one convolution of CONVOLUTIONS."""
    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    def make_inputs(rng):
        return [_randn(rng, *x_shape), _randn(rng, *w_shape)] + ([_randn(rng, w_shape[0])] if bias else [])

    return fn, make_inputs


for _name, _case in CONVOLUTIONS.items():
    OPS[f"conv2d {_name}"] = _conv_case(*_case)

OPS.update({
    "max_pool2d 2x2": (lambda x: F.max_pool2d(x, 2), lambda r: [_randn(r, 2, 3, 6, 6)]),
    "max_pool2d 3, stride 2, padding 1": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda r: [_randn(r, 2, 2, 7, 7)]),
    "max_pool2d overlapping with ties": (lambda x: F.max_pool2d(x, 2, 1), lambda r: [_ties(r, 2, 2, 6, 6)]),
    "avg_pool2d 2x2": (lambda x: F.avg_pool2d(x, 2), lambda r: [_randn(r, 2, 3, 6, 6)]),
    "avg_pool2d 3, stride 1, padding 1": (lambda x: F.avg_pool2d(x, 3, 1, 1), lambda r: [_randn(r, 2, 2, 5, 5)]),
    "adaptive_avg_pool2d global": (lambda x: F.adaptive_avg_pool2d(x, 1), lambda r: [_randn(r, 2, 3, 5, 5)]),
    "adaptive_avg_pool2d 5x7 -> 2x3": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda r: [_randn(r, 2, 3, 5, 7)]),
    "adaptive_avg_pool2d 6x6 -> 3x3": (lambda x: F.adaptive_avg_pool2d(x, 3), lambda r: [_randn(r, 2, 3, 6, 6)]),
    # batch norm: x, running_mean, running_var (constants), weight, bias
    "batch_norm train 4-D": (
        lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True),
        lambda r: [_randn(r, 4, 3, 5, 5) * 2 + 1, Const(np.zeros(3)), Const(np.ones(3)), _positive(r, 3), _randn(r, 3)]),
    "batch_norm train 2-D": (
        lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True),
        lambda r: [_randn(r, 6, 4), Const(np.zeros(4)), Const(np.ones(4)), _positive(r, 4), _randn(r, 4)]),
    "batch_norm train, no affine": (
        lambda x: F.batch_norm(x, None, None, training=True), lambda r: [_randn(r, 4, 3, 3, 3)]),
    "batch_norm eval": (
        lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=False),
        lambda r: [_randn(r, 4, 3, 5, 5), Const(_randn(r, 3)), Const(_positive(r, 3)), _positive(r, 3), _randn(r, 3)]),
})


def test_the_harness_notices_a_difference():
    """compare() must fail when the second run differs, in the output or in a gradient
    (here both runs are on the CPU, so the difference is made on purpose)."""
    calls = []

    def drifting_output(x):
        calls.append(1)
        return x * (1.0 if len(calls) == 1 else 1.0 + 1e-4)   # the second run is 1e-4 off

    def drifting_gradient(x):
        calls.append(1)
        scale = 1.0 if len(calls) % 2 == 1 else 1.0 + 1e-4
        return _ScaleGrad.apply(x, scale)

    x = [rng_for("harness").standard_normal((3, 4))]
    with pytest.raises(AssertionError, match="output"):
        compare(drifting_output, x, "cpu", "cpu", np.float32)
    calls.clear()
    with pytest.raises(AssertionError, match="gradient of input 0"):
        compare(drifting_gradient, x, "cpu", "cpu", np.float32)


class _ScaleGrad(tinycnn.Function):
    """Identity forward; the backward scales the gradient (a deliberately wrong op)."""

    def forward(self, x, scale):
        self.scale = scale
        return x.copy()

    def backward(self, grad):
        return grad * self.scale, None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPS))
def test_op_forward_and_backward_match_the_cpu(name, dtype, other_device):
    fn, make_inputs = OPS[name]
    if "conv2d" in name or "matmul" in name or "linear" in name:
        skip_if_tf32(other_device, dtype)
    compare(fn, make_inputs(rng_for(name)), "cpu", other_device, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_running_statistics_match_the_cpu(dtype, other_device):
    x = rng_for("bn running stats").standard_normal((8, 3, 4, 4)) * 3 + 2

    def running_stats(device):
        mean = tinycnn.zeros(3, dtype=dtype, device=device)
        var = tinycnn.ones(3, dtype=dtype, device=device)
        for _ in range(3):
            F.batch_norm(tinycnn.tensor(x, dtype=dtype, device=device), mean, var, training=True, momentum=0.3)
        return mean.numpy(), var.numpy()

    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for cpu, other, what in zip(running_stats("cpu"), running_stats(other_device), ("running_mean", "running_var")):
        assert_close(other, cpu, rtol, what)


# --------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_mask_statistics_and_consistency(dtype, other_device):
    """Dropout draws its mask from the device's own generator (NumPy's PCG64 on the CPU,
    cuRAND's XORWOW on a GPU): the masks differ between devices by design, so instead
    of parity each device is checked for what dropout must do."""
    p, shape = 0.3, (200, 100)
    tinycnn.manual_seed(7)
    x = tinycnn.ones(*shape, dtype=dtype, device=other_device, requires_grad=True)
    out = F.dropout(x, p)
    seed_grad = rng_for("dropout").standard_normal(shape).astype(dtype)
    out.backward(tinycnn.tensor(seed_grad, dtype=dtype, device=other_device))
    mask = out.numpy()                                   # x is ones: the output is the mask itself
    assert out.device == backend.parse_device(other_device)
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], dtype(1 / (1 - p)), rtol=1e-6)      # kept values scaled by 1/(1-p)
    sigma = np.sqrt(p * (1 - p) / mask.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma, f"kept {kept.mean():.4f} of the values, expected {1 - p}"
    np.testing.assert_array_equal(x.grad.numpy(), seed_grad * mask)            # backward uses the forward's mask
    tinycnn.manual_seed(7)
    again = F.dropout(tinycnn.ones(*shape, dtype=dtype, device=other_device), p).numpy()
    np.testing.assert_array_equal(again, mask)                                  # reseeding repeats the mask


# --------------------------------------------------------------------------- models
def _run_steps(model, optimizer, x, y, steps):
    """``steps`` SGD/Adam steps on one batch: (the losses before each step, the final state_dict)."""
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), model.state_dict()


def _train_steps(model_name, device, dtype, steps=4):
    """Losses of a few training steps and the final state, for a model whose weights
    are copied from one built on the CPU (so both devices start from the same numbers)."""
    tinycnn.manual_seed(0)
    if model_name == "lenet5":
        reference = models.lenet5()                      # (N, 1, 28, 28)
        images = rng_for("lenet data").standard_normal((4, 1, 28, 28))
    else:
        reference = models.resnet20()                    # 8x8 images (4x4, 2x2 in the later stages): cheap
        images = rng_for("resnet data").standard_normal((4, 3, 8, 8))
    labels = rng_for("labels").integers(0, 10, 4)
    model = models.get_model(model_name, num_classes=10, in_channels=images.shape[1])
    model.load_state_dict(reference.state_dict())
    model.to(device=device, dtype=dtype)
    if model_name == "lenet5":
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    else:
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = tinycnn.tensor(images, dtype=dtype, device=device)
    y = tinycnn.tensor(labels, device=device)
    return _run_steps(model, optimizer, x, y, steps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model_name", ["lenet5", "resnet20"])
def test_training_steps_give_the_same_losses(model_name, dtype, other_device):
    """float64: as tight as single ops (1e-10). float32: 1e-4, because each step's
    float32 rounding (about 1e-7 per operation, summed in a different order on each
    device) passes through ~20 layers, batch norm (which divides by a batch's small
    standard deviation) and 4 weight updates; a wrong gradient term moves the loss by
    far more (>1e-3) after one step."""
    skip_if_tf32(other_device, dtype)
    losses_cpu, state_cpu = _train_steps(model_name, "cpu", dtype)
    losses_other, state_other = _train_steps(model_name, other_device, dtype)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(losses_other, losses_cpu, rtol, f"{model_name} losses")
    assert losses_cpu[-1] < losses_cpu[0], "the steps should lower the loss (a sanity check of the test itself)"
    for key in state_cpu:
        assert_close(state_other[key], state_cpu[key], rtol if dtype == np.float64 else 1e-3, key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_steps_match_the_cpu(name, dtype, other_device):
    """A small MLP trained with Adam / AdamW (their fused update on the GPU)."""
    skip_if_tf32(other_device, dtype)

    def train(device):
        tinycnn.manual_seed(1)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).to(device=device, dtype=dtype)
        cls = optim.Adam if name == "adam" else optim.AdamW
        optimizer = cls(model.parameters(), lr=0.01, weight_decay=0.05)
        x = tinycnn.tensor(rng_for("mlp x").standard_normal((10, 6)), dtype=dtype, device=device)
        y = tinycnn.tensor(rng_for("mlp y").integers(0, 3, 10), device=device)
        return _run_steps(model, optimizer, x, y, steps=3)

    (losses_cpu, state_cpu), (losses_other, state_other) = train("cpu"), train(other_device)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(losses_other, losses_cpu, rtol, "losses")
    for key in state_cpu:
        assert_close(state_other[key], state_cpu[key], rtol, key)


# --------------------------------------------------------------------------- data
def _images(n=20, channels=1, size=8):
    rng = rng_for("loader images")
    return rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8), rng.integers(0, 3, n)


def test_loader_keeps_the_data_set_on_the_device(other_device):
    images, labels = _images()
    transform = T.Compose([T.ToFloat(), T.RandomHorizontalFlip(p=1.0), T.Normalize(0.5, 0.25)])
    options = dict(batch_size=6, shuffle=True, seed=3, transform=transform)
    cpu_loader = DataLoader((images, labels), device="cpu", **options)
    loader = DataLoader((images, labels), device=other_device, **options)
    # the whole data set was copied once, at construction
    assert backend.device_of(loader.images) == backend.parse_device(other_device)
    assert backend.device_of(loader.labels) == backend.parse_device(other_device)
    batches = 0
    for (x_cpu, y_cpu), (x, y) in zip(cpu_loader, loader):
        assert x.device == y.device == backend.parse_device(other_device)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert_close(x.numpy(), x_cpu.numpy(), 1e-6, "images")
        np.testing.assert_array_equal(y.numpy(), y_cpu.numpy())
        batches += 1
    assert batches == len(loader) == 4


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_warp_matches_the_cpu(interpolation, other_device):
    """The sampling behind RandomAffine/Rotation/Scale, with fixed (not random) maps."""
    images, _ = _images(n=3, channels=2, size=9)
    angle, zoom = np.array([0.3, -1.0, np.pi / 2], np.float32), np.array([1.0, 1.2, 0.8], np.float32)
    shift_x, shift_y = np.array([0.0, 1.5, -2.0], np.float32), np.array([1.0, 0.0, 0.5], np.float32)

    def warp(device):
        on = [backend.to_device(a, device) for a in (angle, zoom, shift_x, shift_y)]
        batch = backend.to_device(images, device)
        floats = backend.to_device(images.astype(np.float32) / 255, device)
        return [backend.to_numpy(affine_grid_sample(b, affine_matrices(*on), interpolation)) for b in (batch, floats)]

    for cpu, other in zip(warp("cpu"), warp(other_device)):
        if cpu.dtype == np.uint8:  # rounded back to integers: a value at .5 may round either way
            assert np.abs(cpu.astype(int) - other.astype(int)).max() <= 1
        else:
            assert_close(other, cpu, 1e-5, f"{interpolation} warp")


@pytest.mark.parametrize("transform", [
    T.RandomCrop(8, padding=2, seed=1), T.RandomCrop(8, padding=2, padding_mode="reflect", seed=1),
    T.RandomHorizontalFlip(seed=1), T.RandomRotation(15, seed=1), T.RandomScale((0.9, 1.1), seed=1),
    T.RandomTranslation((0.2, 0.2), seed=1), T.Cutout(3, seed=1),
], ids=lambda t: type(t).__name__ + ("-reflect" if getattr(t, "padding_mode", "") == "reflect" else ""))
def test_random_transforms_run_on_the_device(transform, other_device):
    """Random transforms draw from the device's generator, so their choices differ between
    devices; each must run there, keep shape and dtype, and repeat itself when reseeded."""
    images, _ = _images(n=6, channels=3, size=8)
    batch = backend.to_device(images, other_device)
    transform._own_rngs.clear()  # the transform's own generator starts from its seed
    out = transform(batch)
    assert backend.device_of(out) == backend.parse_device(other_device)
    assert out.shape == images.shape and out.dtype == np.uint8
    transform._own_rngs.clear()
    np.testing.assert_array_equal(backend.to_numpy(transform(batch)), backend.to_numpy(out))


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_moves_between_devices(other_device, tmp_path):
    """Save on one device, load on the other, and back: weights and optimizer state survive."""
    tinycnn.manual_seed(0)
    model = models.lenet5().to(other_device)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tinycnn.tensor(rng_for("ckpt").standard_normal((2, 1, 28, 28)), device=other_device)
    F.cross_entropy(model(x), tinycnn.tensor([1, 2], device=other_device)).backward()
    optimizer.step()

    path = tinycnn.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "tensor": model.features[0].weight}, tmp_path / "checkpoint")
    loaded = tinycnn.load(path)
    assert all(isinstance(v, np.ndarray) for v in loaded["model"].values())   # NumPy in the file, whatever the device
    np.testing.assert_array_equal(loaded["tensor"], model.features[0].weight.numpy())

    cpu_model = models.lenet5()
    cpu_model.load_state_dict(loaded["model"])
    cpu_optimizer = optim.SGD(cpu_model.parameters(), lr=0.1, momentum=0.9)
    cpu_optimizer.load_state_dict(loaded["optimizer"])
    for (key, value), param in zip(model.state_dict().items(), cpu_model.parameters()):
        np.testing.assert_array_equal(param.numpy(), value, err_msg=key)
    for param in cpu_model.parameters():
        assert backend.device_of(cpu_optimizer.state[param]["momentum_buffer"]) == "cpu"

    back = models.lenet5().to(other_device)                 # and from the CPU model back to the device
    back.load_state_dict(cpu_model.state_dict())
    back_optimizer = optim.SGD(back.parameters(), lr=0.1, momentum=0.9)
    back_optimizer.load_state_dict(cpu_optimizer.state_dict())
    for param, original in zip(back.parameters(), model.parameters()):
        assert param.device == backend.parse_device(other_device)
        np.testing.assert_array_equal(param.numpy(), original.numpy())
        buffer = back_optimizer.state[param]["momentum_buffer"]
        assert backend.device_of(buffer) == backend.parse_device(other_device)
        np.testing.assert_array_equal(backend.to_numpy(buffer), backend.to_numpy(optimizer.state[original]["momentum_buffer"]))


# --------------------------------------------------------------------------- the command
def test_cli_train_on_the_device(other_device, tmp_path):
    """``tinycnn train --device ...``: a tiny run on the shapes set; its checkpoint loads on the CPU,
    and its losses follow the CPU run's (weights start equal; the shuffle order is NumPy's on both)."""
    from tinycnn.cli import main
    from tinycnn.runner import load_checkpoint, model_from_checkpoint

    skip_if_tf32(other_device, np.float32)

    args = ["train", "--train-size", "256", "--val-split", "64", "--epochs", "1", "--batch-size", "64", "--quiet"]
    histories = {}
    for run, device in (("cpu", "cpu"), ("other", other_device)):
        out = tmp_path / run
        assert main(args + ["--device", device, "--out", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["device"] == device
        histories[run] = json.loads((out / "history.json").read_text())
    model = model_from_checkpoint(load_checkpoint(tmp_path / "other"), "cpu")   # trained on the device, read on the CPU
    assert all(p.device == "cpu" for p in model.parameters())
    for key in ("train_loss", "val_loss"):
        cpu, other = histories["cpu"][0][key], histories["other"][0][key]
        assert other == pytest.approx(cpu, rel=1e-3), key
