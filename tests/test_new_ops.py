"""The ops the architectures of issue 16 need: the "hard" activations and SiLU, ceil-mode and
dilated max pooling, adaptive average pooling to any size, stochastic depth, squeeze-and-excitation
and the depthwise convolution.

Each against a direct reference (a formula or a loop), gradchecked in float64, and the two
floors held equal (the file runs on whichever floor TINYCNN_FAST selects; the floor tests pick
each floor themselves). With PyTorch installed, also against PyTorch (skipped in CI).
"""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from _conv_cases import conv2d_loops
from _parity import assert_close, assert_floors_agree, on_both_floors, run
from tinycnn import nn
from tinycnn.fast import depthwise as fast_depthwise
from tinycnn.functional.conv import Conv2d as GroupedGemmConv2d
from tinycnn.windows import pool_output_size


FLOORS = [pytest.param(tinycnn.reference_floor, id="reference"), pytest.param(tinycnn.fast_floor, id="fast")]


def float64(x, requires_grad=True):
    return tinycnn.tensor(x, dtype=np.float64, requires_grad=requires_grad)


# --------------------------------------------------------------------------- activations
def away_from(values, kinks, seed):
    """Random values at least 0.05 from every kink, so finite differences never straddle one."""
    x = np.random.default_rng(seed).uniform(-8, 8, values)
    for kink in kinks:
        x = np.where(np.abs(x - kink) < 0.05, kink + 0.3, x)
    return x


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = {   # name: (op, the formula, where the kinks are)
    "relu6": (F.relu6, lambda x: np.minimum(np.maximum(x, 0), 6), (0, 6)),
    "hardtanh": (F.hardtanh, lambda x: np.clip(x, -1, 1), (-1, 1)),
    "hardtanh(-2,3)": (lambda t: F.hardtanh(t, -2.0, 3.0), lambda x: np.clip(x, -2, 3), (-2, 3)),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.where(x <= -3, 0, np.where(x >= 3, 1, x / 6 + 0.5)), (-3, 3)),
    "hardswish": (F.hardswish, lambda x: np.where(x <= -3, 0, np.where(x >= 3, x, x * (x + 3) / 6)), (-3, 3)),
    "silu": (F.silu, lambda x: x * sigmoid(x), ()),
}


@pytest.mark.parametrize("floor", FLOORS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_and_gradcheck(name, floor):
    op, formula, kinks = ACTIVATIONS[name]
    x = away_from((4, 3, 5), kinks, seed=1)
    with floor():
        tx = float64(x)
        np.testing.assert_allclose(op(tx).numpy(), formula(x), rtol=1e-14, atol=1e-15)
        assert tinycnn.gradcheck(op, [tx])


def test_activation_gradients_at_the_kinks():
    """PyTorch's choices: hardtanh and hardsigmoid pass nothing at their corners, hardswish takes
    the middle piece's slope x/3 + 1/2 at -3 and 3."""
    x = float64([-3.0, 0.0, 3.0, 6.0, -1.0, 1.0])
    grads = {}
    for name, op in [("relu6", F.relu6), ("hardtanh", F.hardtanh), ("hardsigmoid", F.hardsigmoid),
                     ("hardswish", F.hardswish)]:
        x.grad = None
        op(x).sum().backward()
        grads[name] = x.grad.numpy()
    np.testing.assert_array_equal(grads["relu6"], [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(grads["hardtanh"], [0, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(grads["hardsigmoid"], [0, 1 / 6, 0, 0, 1 / 6, 1 / 6])
    np.testing.assert_allclose(grads["hardswish"], [-0.5, 0.5, 1.5, 1, 1 / 6, 5 / 6])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_keeps_dtype_and_shape(name, dtype):
    out = ACTIVATIONS[name][0](tinycnn.randn(2, 3, 4, dtype=dtype))
    assert out.dtype == dtype and out.shape == (2, 3, 4)


def test_silu_does_not_overflow():
    out = F.silu(tinycnn.tensor([-1000.0, 1000.0], dtype=np.float32))
    np.testing.assert_array_equal(out.numpy(), [0.0, 1000.0])


def test_hardtanh_bad_range():
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        F.hardtanh(tinycnn.zeros(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        nn.Hardtanh(2.0, 1.0)


@pytest.mark.parametrize("module, function", [
    (nn.ReLU6(inplace=True), F.relu6), (nn.Hardtanh(-2.0, 3.0), lambda t: F.hardtanh(t, -2.0, 3.0)),
    (nn.SiLU(inplace=True), F.silu), (nn.Hardswish(inplace=True), F.hardswish),
    (nn.Hardsigmoid(inplace=True), F.hardsigmoid),
], ids=lambda m: type(m).__name__)
def test_activation_modules(module, function):
    x = tinycnn.randn(2, 3, 4)
    np.testing.assert_array_equal(module(x).numpy(), function(x).numpy())
    assert list(module.state_dict()) == []


def test_activation_reprs_as_pytorch():
    assert repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"
    assert repr(nn.ReLU6()) == "ReLU6()"
    assert repr(nn.Hardtanh(-2.0, 3.0)) == "Hardtanh(min_val=-2.0, max_val=3.0)"
    assert repr(nn.SiLU()) == "SiLU()"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


# --------------------------------------------------------------------------- max pooling: ceil mode, dilation
def max_pool_loops(x, kernel, stride, padding, dilation, ceil_mode):
    """The definition, one window at a time: every window reads the pixels it covers that exist
    (the -inf padding and the part of a ceil-mode window past the edge count for nothing)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    oh = pool_output_size(h, kh, sh, ph, dh, ceil_mode)
    ow = pool_output_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.full((n, c, oh, ow), -np.inf)
    for y in range(oh):
        for z in range(ow):
            for i in range(kh):
                for j in range(kw):
                    row, col = y * sh - ph + i * dh, z * sw - pw + j * dw
                    if 0 <= row < h and 0 <= col < w:
                        out[:, :, y, z] = np.maximum(out[:, :, y, z], x[:, :, row, col])
    return out


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (7, 2, 2, 0, 4), (7, 3, 2, 0, 3), (8, 3, 2, 0, 4), (112, 3, 2, 0, 56), (5, 2, 2, 1, 3), (6, 3, 3, 1, 3),
    (4, 2, 3, 1, 2),    # the ceiling would make 3; the 3rd window would start in the right padding only
])
def test_ceil_mode_output_size(size, kernel, stride, padding, expected):
    assert pool_output_size(size, kernel, stride, padding, 1, ceil_mode=True) == expected
    assert pool_output_size(size, kernel, stride, padding, 1, ceil_mode=False) == (size + 2 * padding - kernel) // stride + 1


CEIL_CASES = [   # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 7, 7), 3, 2, 0, 1, True),      # GoogLeNet / SqueezeNet: the last window hangs over the edge
    ((2, 2, 8, 9), 3, 2, 1, 1, True),
    ((1, 2, 7, 6), 2, 2, 0, 1, True),
    ((2, 2, 6, 5), (2, 3), (2, 2), (1, 1), 1, True),
    ((1, 2, 4, 4), 2, 3, 1, 1, True),      # a window that would start in the padding only is dropped
    ((2, 2, 9, 8), 3, 2, 1, 2, False),     # dilation
    ((2, 2, 9, 10), 2, (1, 2), 1, (2, 3), True),
    ((2, 3, 8, 8), 2, None, 0, 1, False),
]


@pytest.mark.parametrize("floor", FLOORS)
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", CEIL_CASES, ids=str)
def test_max_pool_ceil_mode_and_dilation(shape, kernel, stride, padding, dilation, ceil_mode, floor):
    values = np.random.default_rng(2).permutation(int(np.prod(shape))).astype(np.float64).reshape(shape) * 0.1
    pair = lambda v: (v, v) if isinstance(v, int) else v
    expected = max_pool_loops(values, pair(kernel), pair(stride or kernel), pair(padding), pair(dilation), ceil_mode)
    fn = lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)
    with floor():
        x = float64(values)
        np.testing.assert_array_equal(fn(x).numpy(), expected)
        assert tinycnn.gradcheck(fn, [x])


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", CEIL_CASES, ids=str)
def test_max_pool_ceil_mode_floors_bit_for_bit(shape, kernel, stride, padding, dilation, ceil_mode, worker_count):
    x = np.round(np.random.default_rng(3).standard_normal(shape), 1)   # ties: the first maximum on both
    fn = lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)
    assert_floors_agree(*on_both_floors(fn, [x]), exact=True)


def test_max_pool_module_repr_and_ceil_mode():
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    assert repr(pool) == "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=True)"
    assert pool(tinycnn.randn(1, 2, 112, 112)).shape == (1, 2, 56, 56)
    assert nn.MaxPool2d(3, 2)(tinycnn.randn(1, 2, 112, 112)).shape == (1, 2, 55, 55)


def test_max_pool_errors():
    with pytest.raises(ValueError, match=r"kernel 5x5 with dilation \(2, 2\) is larger than the padded input 4x4"):
        F.max_pool2d(tinycnn.zeros(1, 1, 4, 4), 3, dilation=2)
    with pytest.raises(ValueError, match="dilation >= 1, got"):
        F.max_pool2d(tinycnn.zeros(1, 1, 4, 4), 2, dilation=0)


# --------------------------------------------------------------------------- adaptive average pooling
def adaptive_loops(x, out_h, out_w):
    """Output cell (i, j) averages rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, columns likewise."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            top, bottom = (i * h) // out_h, -(-(i + 1) * h // out_h)
            left, right = (j * w) // out_w, -(-(j + 1) * w // out_w)
            out[:, :, i, j] = x[:, :, top:bottom, left:right].mean(axis=(2, 3))
    return out


ADAPTIVE_CASES = [((2, 3, 7, 7), (6, 6)), ((1, 2, 5, 5), (7, 7)), ((2, 2, 13, 13), (6, 6)),
                  ((1, 2, 14, 9), (7, 4)), ((2, 2, 6, 6), (3, 3)), ((1, 2, 5, 8), (1, 1)), ((1, 1, 3, 10), (5, 2))]


@pytest.mark.parametrize("floor", FLOORS)
@pytest.mark.parametrize("shape, out", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool_any_size(shape, out, floor):
    """7 -> 6 (VGG at small inputs), 5 -> 7 (the output larger than the input), 13 -> 6 (AlexNet)."""
    values = np.random.default_rng(4).standard_normal(shape)
    with floor():
        x = float64(values)
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, out).numpy(), adaptive_loops(values, *out), rtol=1e-13)
        assert tinycnn.gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), [x])


@pytest.mark.parametrize("shape, out", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool_floors(shape, out):
    x = np.random.default_rng(5).standard_normal(shape)
    assert_floors_agree(*on_both_floors(lambda t: F.adaptive_avg_pool2d(t, out), [x]), exact=False)


def test_adaptive_avg_pool_module_int_and_pair():
    x = tinycnn.randn(2, 3, 13, 13)
    assert nn.AdaptiveAvgPool2d(6)(x).shape == (2, 3, 6, 6)
    assert nn.AdaptiveAvgPool2d((7, None))(x).shape == (2, 3, 7, 13)


# --------------------------------------------------------------------------- stochastic depth
def test_stochastic_depth_row_drops_whole_images_and_scales_the_rest():
    tinycnn.manual_seed(6)
    x = tinycnn.ones(4000, 2, 3)
    out = F.stochastic_depth(x, 0.25, "row").numpy()
    per_image = out.reshape(4000, -1)
    assert np.all(per_image == per_image[:, :1])                      # one draw per image
    assert set(np.unique(per_image)) == {0.0, np.float32(1 / 0.75)}
    assert abs((per_image[:, 0] == 0).mean() - 0.25) < 0.03           # dropped with probability p
    assert abs(out.mean() - 1.0) < 0.05                                # the expected value is kept


def test_stochastic_depth_batch_draws_once():
    tinycnn.manual_seed(7)
    outcomes = set()
    for _ in range(40):
        out = F.stochastic_depth(tinycnn.ones(5, 3), 0.5, "batch").numpy()
        assert len(np.unique(out)) == 1
        outcomes.add(float(out[0, 0]))
    assert outcomes == {0.0, 2.0}


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_identity_and_zeros(mode):
    x = tinycnn.randn(3, 4)
    assert F.stochastic_depth(x, 0.7, mode, training=False) is x
    assert F.stochastic_depth(x, 0.0, mode) is x
    np.testing.assert_array_equal(F.stochastic_depth(x, 1.0, mode).numpy(), np.zeros((3, 4)))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_gradient_is_the_mask(mode):
    tinycnn.manual_seed(8)
    x = float64(np.random.default_rng(8).standard_normal((6, 2, 2, 2)))
    out = F.stochastic_depth(x, 0.5, mode)
    out.sum().backward()
    mask = out.numpy() / x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), mask)


@pytest.mark.parametrize("floor", FLOORS)
def test_stochastic_depth_gradcheck(floor):
    """The same mask on every call: reseeded inside the function that gradcheck evaluates."""
    def fn(t):
        tinycnn.manual_seed(9)
        return F.stochastic_depth(t, 0.4, "row")
    with floor():
        assert tinycnn.gradcheck(fn, [float64(np.random.default_rng(9).standard_normal((8, 3, 2)))])


def test_stochastic_depth_errors_and_module():
    with pytest.raises(ValueError, match="mode must be 'row' or 'batch', got 'rows'"):
        F.stochastic_depth(tinycnn.zeros(2, 3), 0.1, "rows")
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        nn.StochasticDepth(1.5, "row")
    layer = nn.StochasticDepth(0.2, "row")
    assert repr(layer) == "StochasticDepth(p=0.2, mode=row)"
    x = tinycnn.randn(4, 3)
    layer.eval()
    assert layer(x) is x


# --------------------------------------------------------------------------- squeeze-and-excitation
def test_squeeze_excitation_layout_and_formula():
    tinycnn.manual_seed(10)
    se = nn.SqueezeExcitation(8, 3).double()
    assert [(k, v.shape) for k, v in se.state_dict().items()] == [
        ("fc1.weight", (3, 8, 1, 1)), ("fc1.bias", (3,)), ("fc2.weight", (8, 3, 1, 1)), ("fc2.bias", (8,))]
    assert [name for name, _ in se.named_children()] == ["avgpool", "fc1", "fc2", "activation", "scale_activation"]
    x = np.random.default_rng(10).standard_normal((2, 8, 5, 4))
    w1, b1, w2, b2 = se.state_dict().values()
    squeezed = x.mean(axis=(2, 3))                                   # (N, C)
    hidden = np.maximum(squeezed @ w1[:, :, 0, 0].T + b1, 0)         # (N, S)
    gates = sigmoid(hidden @ w2[:, :, 0, 0].T + b2)                  # (N, C)
    np.testing.assert_allclose(se(float64(x)).numpy(), x * gates[:, :, None, None], rtol=1e-12)


@pytest.mark.parametrize("floor", FLOORS)
def test_squeeze_excitation_gradcheck_with_silu_and_hardsigmoid(floor):
    tinycnn.manual_seed(11)
    se = nn.SqueezeExcitation(6, 2, activation=nn.SiLU, scale_activation=nn.Hardsigmoid).double()
    assert isinstance(se.activation, nn.SiLU) and isinstance(se.scale_activation, nn.Hardsigmoid)
    x = float64(np.random.default_rng(11).standard_normal((2, 6, 3, 3)))
    with floor():
        assert tinycnn.gradcheck(lambda t, *params: se(t), [x] + list(se.parameters()))


# --------------------------------------------------------------------------- depthwise convolution
def depthwise_cases(count, seed):
    """Random depthwise convolutions: channel multiplier 1-3, stride 1-2, padding 0-2, dilation 1-2."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        c, multiplier = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        stride, padding = tuple(int(v) for v in rng.integers(1, 3, 2)), tuple(int(v) for v in rng.integers(0, 3, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        if dilation[0] * (kernel[0] - 1) + 1 > h + 2 * padding[0] or dilation[1] * (kernel[1] - 1) + 1 > w + 2 * padding[1]:
            continue
        cases.append(dict(n=int(rng.integers(1, 4)), c=c, multiplier=multiplier, h=h, w=w, kernel=kernel, stride=stride,
                          padding=padding, dilation=dilation, bias=bool(rng.integers(0, 2))))
    return cases


def depthwise_inputs(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    weight = rng.standard_normal((case["c"] * case["multiplier"], 1) + case["kernel"])
    return [x, weight] + ([rng.standard_normal(case["c"] * case["multiplier"])] if case["bias"] else [])


def depthwise(case):
    return lambda x, w, b=None: F.conv2d(x, w, b, stride=case["stride"], padding=case["padding"],
                                         dilation=case["dilation"], groups=case["c"])


@pytest.fixture(params=["multiply-add", "grouped-gemm"])
def fast_depthwise_way(request, monkeypatch):
    """The fast floor's two ways (fast/depthwise.py), each forced for every shape."""
    monkeypatch.setattr(fast_depthwise, "MULTIPLY_ADD_MAX_PIXELS", 10**9 if request.param == "multiply-add" else -1)
    return request.param


@pytest.mark.parametrize("floor", FLOORS)
@pytest.mark.parametrize("case", depthwise_cases(12, seed=12), ids=str)
def test_depthwise_against_loops_and_gradcheck(case, floor, fast_depthwise_way):
    x, weight, *bias = depthwise_inputs(case, 13)
    expected = conv2d_loops(x, weight, bias[0] if bias else None, case["stride"], case["padding"], case["dilation"],
                            case["c"])
    with floor():
        inputs = [float64(a) for a in [x, weight] + bias]
        np.testing.assert_allclose(depthwise(case)(*inputs).numpy(), expected, rtol=1e-12, atol=1e-12)
        assert tinycnn.gradcheck(depthwise(case), inputs)


@pytest.mark.parametrize("case", depthwise_cases(12, seed=14), ids=str)
def test_depthwise_floors_agree(case, worker_count, fast_depthwise_way):
    """The fast floor's multiply-add adds the same products in the same order as the reference:
    the same output, bit for bit; its gradients and the grouped GEMM sum in other orders (1e-12)."""
    inputs = depthwise_inputs(case, 15)
    reference, fast = on_both_floors(depthwise(case), inputs)
    assert_floors_agree(reference, fast, exact=False)
    if fast_depthwise_way == "multiply-add":
        np.testing.assert_array_equal(fast.output, reference.output)


def test_depthwise_fast_floor_chooses_by_map_size_and_stride():
    weight = tinycnn.randn(8, 1, 3, 3)
    for size, stride, kernel in [(4, 1, fast_depthwise.DepthwiseConv2d), (16, 1, tinycnn.fast.Conv2d),
                                 (16, 2, fast_depthwise.DepthwiseConv2d)]:
        with tinycnn.fast_floor():
            out = F.conv2d(tinycnn.randn(2, 4, size, size, requires_grad=True), weight, stride=stride, padding=1,
                           groups=4)
        assert type(out._ctx) is kernel


@pytest.mark.parametrize("images_per_chunk", [1, 2, 3])
def test_depthwise_floors_at_chunk_boundaries(images_per_chunk, worker_count, monkeypatch):
    """A batch of 5 in chunks of 1, 2 (an uneven last chunk) and 3 images."""
    case = dict(n=5, c=4, multiplier=2, h=7, w=6, kernel=(3, 3), stride=(2, 1), padding=(1, 1), dilation=(1, 1),
                bias=True)
    per_image_bytes = 8 * 4 * (9 * 8 + 3 * 2 * 4 * 6)    # forward: C * (padded pixels + 3*K*OH*OW) * 8 bytes
    monkeypatch.setattr(fast_depthwise, "CHUNK_BYTES", images_per_chunk * per_image_bytes)
    monkeypatch.setattr(fast_depthwise, "MULTIPLY_ADD_MAX_PIXELS", 10**9)
    assert len(fast_depthwise._image_chunks(5, per_image_bytes, np)) >= -(-5 // images_per_chunk)
    assert_floors_agree(*on_both_floors(depthwise(case), depthwise_inputs(case, 16)), exact=False)


@pytest.mark.parametrize("floor", FLOORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_equals_the_grouped_gemm(dtype, floor):
    """The new kernel against the grouped im2col + GEMM it replaces (called directly), at a
    MobileNetV2-like layer: stride 1 and 2."""
    rng = np.random.default_rng(17)
    x, weight, bias = rng.standard_normal((3, 24, 10, 10)), rng.standard_normal((24, 1, 3, 3)), rng.standard_normal(24)
    for stride in (1, 2):
        args = dict(stride=(stride, stride), padding=(1, 1), dilation=(1, 1))
        with floor():
            new = run(lambda a, w, b: F.conv2d(a, w, b, groups=24, **args), [x, weight, bias], "cpu", dtype)
        old = run(lambda a, w, b: GroupedGemmConv2d.apply(a, w, b, groups=24, **args), [x, weight, bias], "cpu", dtype)
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        for got, expected in zip([new.output] + new.grads, [old.output] + old.grads):
            assert got.dtype == dtype
            assert_close(got, expected, rtol, f"stride {stride}")


def test_depthwise_without_weight_or_input_gradient():
    x, weight = tinycnn.randn(2, 4, 6, 6), tinycnn.randn(4, 1, 3, 3, requires_grad=True)
    F.conv2d(x, weight, padding=1, groups=4).sum().backward()
    assert weight.grad.shape == (4, 1, 3, 3)
    x = tinycnn.randn(2, 4, 6, 6, requires_grad=True)
    F.conv2d(x, tinycnn.randn(4, 1, 3, 3), padding=1, groups=4).sum().backward()
    assert x.grad.shape == (2, 4, 6, 6)


def test_depthwise_module():
    conv = nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=16)
    assert conv.weight.shape == (32, 1, 3, 3)
    assert conv(tinycnn.randn(2, 16, 9, 9)).shape == (2, 32, 5, 5)


# --------------------------------------------------------------------------- channel concatenation
def test_cat_along_channels_backward_is_views():
    """The gradient of a channel concatenation is split back into views of the output gradient
    (no per-image loop and no copy): what DenseNet's and Inception's blocks need."""
    parts = [tinycnn.randn(2, c, 3, 3, requires_grad=True) for c in (1, 4, 2)]
    out = tinycnn.cat(parts, dim=1)
    grad = np.random.default_rng(18).standard_normal(out.shape).astype(np.float32)
    out.backward(tinycnn.tensor(grad))
    np.testing.assert_array_equal(np.concatenate([p.grad.numpy() for p in parts], axis=1), grad)


# --------------------------------------------------------------------------- PyTorch parity (optional)
def test_parity_with_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(19)
    x = rng.uniform(-8, 8, (2, 6, 13, 13))
    for name, ours, theirs in [
        ("relu6", F.relu6, tf.relu6), ("hardtanh", F.hardtanh, tf.hardtanh), ("silu", F.silu, tf.silu),
        ("hardswish", F.hardswish, tf.hardswish), ("hardsigmoid", F.hardsigmoid, tf.hardsigmoid),
        ("adaptive 6", lambda t: F.adaptive_avg_pool2d(t, 6), lambda t: tf.adaptive_avg_pool2d(t, 6)),
        ("adaptive 17", lambda t: F.adaptive_avg_pool2d(t, (17, 5)), lambda t: tf.adaptive_avg_pool2d(t, (17, 5))),
        ("ceil pool", lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True),
         lambda t: tf.max_pool2d(t, 3, 2, ceil_mode=True)),
        ("dilated pool", lambda t: F.max_pool2d(t, 3, 2, 1, 2, True),
         lambda t: tf.max_pool2d(t, 3, 2, 1, 2, True)),
        ("depthwise", lambda t: F.conv2d(t, float64(weight, False), stride=2, padding=1, groups=6),
         lambda t: tf.conv2d(t, torch.tensor(weight), stride=2, padding=1, groups=6)),
    ] if (weight := rng.standard_normal((12, 1, 3, 3))) is not None else []:
        tx, ox = torch.tensor(x, requires_grad=True), float64(x)
        expected, got = theirs(tx), ours(ox)
        grad = rng.standard_normal(tuple(expected.shape))
        expected.backward(torch.tensor(grad))
        got.backward(float64(grad, False))
        np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=name)
        # PyTorch's CPU hardsigmoid backward multiplies by 1/6 rounded to float32 even in float64
        rtol = 1e-7 if name == "hardsigmoid" else 1e-12
        np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-13, err_msg=name)


def test_stochastic_depth_and_squeeze_excitation_match_torchvision():
    torchvision = pytest.importorskip("torchvision")
    torch = pytest.importorskip("torch")
    tinycnn.manual_seed(20)
    se = nn.SqueezeExcitation(8, 2).double()
    theirs = torchvision.ops.SqueezeExcitation(8, 2).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in se.state_dict().items()})
    x = np.random.default_rng(20).standard_normal((2, 8, 4, 4))
    np.testing.assert_allclose(se(float64(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)
