"""The two floors agree: every fast op (tinycnn/fast/) equals its reference op (functional/, optim/).

Each test runs the same computation on the reference floor and on the fast floor
(``tinycnn.reference_floor()`` / ``tinycnn.fast_floor()``, whatever TINYCNN_FAST says) and
compares outputs and gradients: exactly where the fast op does the same arithmetic in
parts (ReLU, max pooling, the optimizer updates), else in float64 to 1e-12 relative to
each array's largest value (the convolution and batch norm add their sums in another order;
see tests/_parity.py for why the tolerance is scaled by the largest value).
"""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from _conv_cases import call, make_inputs, random_configs
from _parity import assert_close, assert_floors_agree, on_both_floors
from tinycnn import models, nn, optim
from tinycnn.fast import conv as fast_conv

RTOL = 1e-12


# --------------------------------------------------------------------------- convolution
def conv_inputs(cfg, seed):
    x, weight, bias, *_ = make_inputs(cfg, seed=seed)
    return [x, weight] + ([bias] if bias is not None else [])


def conv_fn(cfg):
    return lambda x, w, b=None: call(cfg, x, w, b)


@pytest.mark.parametrize("cfg", random_configs(30, seed=101), ids=lambda c: f"{c}")
def test_conv2d(cfg, worker_count):
    """Stride, padding, dilation, groups, depthwise, non-square: the textbook im2col and the
    chunked, threaded, full-convolution engine give the same output and gradients."""
    assert_floors_agree(*on_both_floors(conv_fn(cfg), conv_inputs(cfg, 102)), exact=False, rtol=RTOL)


@pytest.mark.parametrize("images_per_chunk", [1, 2, 3])
@pytest.mark.parametrize("cfg", [dict(c, n=5) for c in random_configs(8, seed=103)], ids=lambda c: f"{c}")
def test_conv2d_at_chunk_boundaries(cfg, images_per_chunk, worker_count, monkeypatch):
    """Batches of 5 in chunks of 1, 2 (an uneven last chunk) and 3 images."""
    from tinycnn.fast.columns import ConvGeometry
    geometry = ConvGeometry((5, cfg["c"], cfg["h"], cfg["w"]), cfg["kernel"], cfg["stride"], cfg["padding"],
                            cfg["dilation"])
    monkeypatch.setattr(fast_conv, "CHUNK_BYTES",
                        images_per_chunk * cfg["c"] * cfg["kernel"][0] * cfg["kernel"][1] * geometry.columns_per_image * 8)
    assert len(fast_conv.image_chunks(geometry, 8, np)) >= -(-5 // images_per_chunk)
    assert_floors_agree(*on_both_floors(conv_fn(cfg), conv_inputs(cfg, 104)), exact=False, rtol=RTOL)


@pytest.mark.parametrize("shape, weight, kwargs", [
    ((4, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),                 # LeNet-5
    ((4, 6, 14, 14), (16, 6, 5, 5), {}),
    ((3, 16, 16, 16), (16, 16, 3, 3), dict(padding=1)),              # a ResNet block: the full convolution
    ((3, 16, 16, 16), (32, 16, 3, 3), dict(stride=2, padding=1)),
    ((3, 16, 16, 16), (32, 16, 1, 1), dict(stride=2)),
], ids=["lenet-1", "lenet-2", "resnet-same", "resnet-down", "resnet-1x1"])
def test_conv2d_at_model_shapes(shape, weight, kwargs, worker_count):
    rng = np.random.default_rng(105)
    inputs = [rng.standard_normal(shape), rng.standard_normal(weight), rng.standard_normal(weight[0])]
    assert_floors_agree(*on_both_floors(lambda x, w, b: F.conv2d(x, w, b, **kwargs), inputs), exact=False, rtol=RTOL)


# --------------------------------------------------------------------------- element-wise layers
POOL_CASES = [((2, 3, 8, 8), 2, None, 0), ((3, 2, 9, 7), 3, 2, 1), ((2, 2, 7, 9), (2, 3), (1, 2), (1, 1)),
              ((4, 3, 6, 6), 3, 3, 0), ((2, 1, 5, 5), 2, 1, 0)]


@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES, ids=str)
def test_max_pool2d_bit_for_bit(shape, kernel, stride, padding, worker_count):
    """Overlapping, disjoint and tiling windows, padding; ties (rounded inputs) go to the first maximum."""
    x = np.round(np.random.default_rng(106).standard_normal(shape), 1)
    fn = lambda t: F.max_pool2d(t, kernel, stride, padding)
    assert_floors_agree(*on_both_floors(fn, [x]), exact=True)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 7), (3, 2, 4, 6)])
def test_relu_bit_for_bit(shape, worker_count):
    x = np.random.default_rng(107).standard_normal(shape)
    x.flat[::5] = 0.0                                      # the gradient at 0 is 0 on both floors
    assert_floors_agree(*on_both_floors(F.relu, [x]), exact=True)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(6, 3, 5, 4), (8, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm(shape, training, affine, worker_count):
    """Batch statistics (training) or running ones (evaluation), with and without weight and bias;
    the running statistics move alike."""
    rng = np.random.default_rng(108)
    channels = shape[1]
    x = rng.standard_normal(shape) * 3 + 1
    running = {}

    def fn(x, weight=None, bias=None):
        mean, var = rng_stats.copy(), rng_stats_var.copy()
        out = F.batch_norm(x, mean, var, weight, bias, training=training, momentum=0.3)
        running[tinycnn.fast.enabled()] = mean, var
        return out

    rng_stats, rng_stats_var = rng.standard_normal(channels), rng.random(channels) + 0.5
    inputs = [x] + ([rng.standard_normal(channels), rng.standard_normal(channels)] if affine else [])
    assert_floors_agree(*on_both_floors(fn, inputs), exact=False, rtol=RTOL)
    for reference, fast in zip(running[False], running[True]):
        assert_close(fast, reference, RTOL, "running statistics")


def test_linear(worker_count):
    rng = np.random.default_rng(109)
    inputs = [rng.standard_normal((64, 300)), rng.standard_normal((120, 300)), rng.standard_normal(120)]
    assert_floors_agree(*on_both_floors(F.linear, inputs), exact=False, rtol=RTOL)


# --------------------------------------------------------------------------- optimizer updates
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "sgd-momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd-dampening-wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2),
    "sgd-nesterov-wd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam-wd": lambda p: optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
    "adamw-no-decay": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.0),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_updates_bit_for_bit(name, dtype):
    """The fused update (fast/kernels/: on the CPU its reference, the in-place form) and the plain
    rule (optim/sgd.py, optim/adam.py) give the same parameters, step after step."""
    rng = np.random.default_rng(110)
    start = rng.standard_normal((5, 4)).astype(dtype)
    grads = [rng.standard_normal((5, 4)).astype(dtype) for _ in range(4)]
    results = {}
    for floor in (tinycnn.reference_floor, tinycnn.fast_floor):
        param = nn.Parameter(tinycnn.tensor(start, dtype=dtype))
        optimizer = OPTIMIZERS[name]([param])
        with floor():
            for grad in grads:
                param.grad = tinycnn.tensor(grad, dtype=dtype)
                optimizer.step()
        results[floor] = param.data.copy(), [np.copy(v) for v in optimizer.state.get(param, {}).values()
                                             if isinstance(v, np.ndarray)]
    (param_ref, state_ref), (param_fast, state_fast) = results.values()
    np.testing.assert_array_equal(param_fast, param_ref)
    for got, expected in zip(state_fast, state_ref):
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_training_steps_give_the_same_losses(name):
    """A few SGD steps of LeNet-5 and ResNet-20 (float64, batch norm and all): the same losses."""
    rng = np.random.default_rng(111)
    shape = (8, 1, 28, 28) if name == "lenet5" else (8, 3, 16, 16)
    images, labels = rng.standard_normal(shape), rng.integers(0, 10, 8)
    losses = {}
    for floor in (tinycnn.reference_floor, tinycnn.fast_floor):
        tinycnn.manual_seed(112)
        model = getattr(models, name)().double()
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        with floor():
            losses[floor] = []
            for _ in range(3):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(tinycnn.tensor(images, dtype=np.float64)), tinycnn.tensor(labels))
                loss.backward()
                optimizer.step()
                losses[floor].append(loss.item())
    reference, fast = losses.values()
    np.testing.assert_allclose(fast, reference, rtol=1e-10)


# --------------------------------------------------------------------------- gradients of the reference floor
@pytest.mark.parametrize("cfg", random_configs(6, seed=113), ids=lambda c: f"{c}")
def test_gradcheck_on_the_reference_floor(cfg):
    """Finite differences check the reference ops themselves (the fast ones equal them, above)."""
    _, _, _, tx, tw, tb = make_inputs(cfg, seed=114, requires_grad=True)
    with tinycnn.reference_floor():
        inputs = [tx, tw] + ([tb] if tb is not None else [])
        assert tinycnn.gradcheck(lambda *t: call(cfg, *t[:2], t[2] if len(t) > 2 else None), inputs)
        x = tinycnn.tensor(np.random.default_rng(115).standard_normal((2, 3, 6, 6)), dtype=np.float64,
                           requires_grad=True)
        weight = tinycnn.tensor(np.random.default_rng(116).random(3) + 0.5, dtype=np.float64, requires_grad=True)
        bias = tinycnn.tensor(np.zeros(3), dtype=np.float64, requires_grad=True)
        assert tinycnn.gradcheck(lambda t: F.max_pool2d(F.relu(t), 3, 2, 1), [x])
        assert tinycnn.gradcheck(lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True), [x, weight, bias])
        assert tinycnn.gradcheck(lambda t, w: F.linear(t.reshape(2, -1), w), [x, tinycnn.tensor(
            np.random.default_rng(117).standard_normal((4, 108)), dtype=np.float64, requires_grad=True)])


# --------------------------------------------------------------------------- the switch
def test_the_switch_and_its_context_managers():
    before = tinycnn.fast.enabled()
    with tinycnn.reference_floor():
        assert not tinycnn.fast.enabled()
        with tinycnn.fast_floor():
            assert tinycnn.fast.enabled()
        assert not tinycnn.fast.enabled()
    assert tinycnn.fast.enabled() == before
    with pytest.raises(TypeError, match="expected True or False"):
        tinycnn.set_fast("no")


def test_an_op_runs_its_backward_on_the_floor_of_its_forward():
    x = tinycnn.randn(2, 3, 5, 5, requires_grad=True)
    w = tinycnn.randn(4, 3, 3, 3, requires_grad=True)
    with tinycnn.reference_floor():
        out = F.conv2d(x, w, padding=1)
    assert type(out._ctx).__module__ == "tinycnn.functional.conv"
    with tinycnn.fast_floor():
        assert type(F.conv2d(x, w, padding=1)._ctx).__module__ == "tinycnn.fast.conv"
        out.sum().backward()                  # the reference Function's backward
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("value, fast", [("0", False), ("1", True), ("", True)])
def test_the_environment_variable(value, fast):
    import subprocess
    import sys
    env = {"TINYCNN_FAST": value, "PATH": ""}
    out = subprocess.run([sys.executable, "-c", "import tinycnn; print(tinycnn.fast.enabled())"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == str(fast), out.stderr


def test_a_bad_environment_variable_is_one_clear_line(monkeypatch):
    from tinycnn.env import SettingError
    from tinycnn.fast import switch

    monkeypatch.setenv("TINYCNN_FAST", "abc")
    monkeypatch.setattr(switch, "_enabled", None)  # as in a new process: read on first use, not at import
    with pytest.raises(SettingError) as error:
        switch.enabled()
    assert str(error.value) == ("environment variable TINYCNN_FAST must be 1 or 0 (1: the fast floor, the default; "
                                "0: the reference floor), got 'abc'")


def test_importing_tinycnn_leaves_the_allocator_alone():
    import subprocess
    import sys
    code = "import tinycnn; from tinycnn.fast import allocator; print(allocator.malloc_tuned)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
