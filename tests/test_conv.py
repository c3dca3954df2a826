"""conv2d: agrees with a direct loop, has correct gradients, explains bad shapes."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from _conv_cases import call, conv2d_loops, make_inputs, random_configs


@pytest.mark.parametrize("cfg", random_configs(30, seed=1), ids=lambda c: f"{c}")
def test_forward_matches_loops(cfg):
    x, weight, bias, tx, tw, tb = make_inputs(cfg, seed=2)
    expected = conv2d_loops(x, weight, bias, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    out = call(cfg, tx, tw, tb)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cfg", random_configs(30, seed=3), ids=lambda c: f"{c}")
def test_gradcheck(cfg):
    _, _, _, tx, tw, tb = make_inputs(cfg, seed=4, requires_grad=True)
    inputs = [tx, tw] + ([tb] if tb is not None else [])
    assert tinycnn.gradcheck(lambda *t: call(cfg, *t[:2], t[2] if len(t) > 2 else None), inputs)


def test_only_weight_gradient_when_input_is_constant():
    cfg = dict(n=2, c=3, h=6, w=5, o=4, groups=1, kernel=(3, 3), stride=(1, 1), padding=(1, 1),
               dilation=(1, 1), bias=True)
    x, weight, bias, _, tw, tb = make_inputs(cfg, seed=5, requires_grad=True)
    tx = tinycnn.tensor(x, dtype=np.float64)  # an image: needs no gradient
    call(cfg, tx, tw, tb).sum().backward()
    assert tx.grad is None and tw.grad is not None and tb.grad is not None
    np.testing.assert_allclose(tb.grad.numpy(), np.full(4, 2 * 6 * 5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = tinycnn.randn(2, 3, 8, 8, dtype=dtype, requires_grad=True)
    w = tinycnn.randn(5, 3, 3, 3, dtype=dtype, requires_grad=True)
    b = tinycnn.randn(5, dtype=dtype, requires_grad=True)
    out = F.conv2d(x, w, b, padding=1)
    assert out.dtype == dtype and out.shape == (2, 5, 8, 8)
    out.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype


def test_float32_matches_float64():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((4, 6, 14, 14)), rng.standard_normal((16, 6, 5, 5))
    out32 = F.conv2d(tinycnn.tensor(x, dtype=np.float32), tinycnn.tensor(w, dtype=np.float32))
    out64 = F.conv2d(tinycnn.tensor(x, dtype=np.float64), tinycnn.tensor(w, dtype=np.float64))
    np.testing.assert_allclose(out32.numpy(), out64.numpy(), rtol=1e-4, atol=1e-4)


def test_pair_arguments_and_keywords():
    x = tinycnn.randn(1, 2, 9, 7)
    w = tinycnn.randn(3, 2, 3, 1)
    out = F.conv2d(x, w, stride=(2, 1), padding=(1, 0), dilation=(2, 1))
    assert out.shape == (1, 3, 4, 7)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((1, 3, 8, 8), (6, 1, 5, 5), {}, "conv2d: input has 3 channels, weight expects 1 (weight shape (6, 1, 5, 5))"),
    ((3, 8, 8), (6, 3, 5, 5), {}, "conv2d: expected a 4-D input (N, C, H, W), got shape (3, 8, 8)"),
    ((1, 3, 8, 8), (6, 3, 5), {}, "expected a 4-D weight"),
    ((1, 3, 4, 4), (6, 3, 5, 5), {}, "kernel (5x5 with dilation (1, 1)) is larger than the padded input (4x4"),
    ((1, 3, 4, 4), (6, 3, 3, 3), {"dilation": 2}, "kernel (5x5 with dilation (2, 2)) is larger"),
    ((1, 4, 8, 8), (6, 1, 3, 3), {"groups": 2}, "input has 4 channels, weight expects 2"),
    ((1, 4, 8, 8), (5, 2, 3, 3), {"groups": 2}, "out_channels 5 is not divisible by groups=2"),
    ((1, 3, 8, 8), (6, 3, 3, 3), {"stride": 0}, "stride must be >= 1"),
    ((1, 3, 8, 8), (6, 3, 3, 3), {"padding": -1}, "padding must be >= 0"),
    ((1, 3, 8, 8), (6, 3, 3, 3), {"stride": (1, 2, 3)}, "stride must be an int or a pair"),
    ((1, 3, 8, 8), (6, 3, 3, 3), {"groups": 0}, "groups must be a positive int"),
])
def test_shape_errors(x_shape, w_shape, kwargs, message):
    with pytest.raises((ValueError, TypeError)) as info:
        F.conv2d(tinycnn.zeros(*x_shape), tinycnn.zeros(*w_shape), **kwargs)
    assert message in str(info.value)


def test_bias_and_dtype_errors():
    x, w = tinycnn.zeros(1, 3, 8, 8), tinycnn.zeros(6, 3, 3, 3)
    with pytest.raises(ValueError, match=r"bias should have shape \(6,\), got \(5,\)"):
        F.conv2d(x, w, tinycnn.zeros(5))
    with pytest.raises(TypeError, match="input is float32 but weight is float64"):
        F.conv2d(x, tinycnn.zeros(6, 3, 3, 3, dtype=np.float64))


@pytest.mark.parametrize("cfg", random_configs(6, seed=7), ids=lambda c: f"{c}")
def test_col2im_is_the_adjoint_of_im2col(cfg):
    """<im2col(x), cols> == <x, col2im(cols)>: the property that makes col2im the right backward
    (the reference's textbook layout)."""
    from tinycnn.functional.conv import col2im, im2col

    rng = np.random.default_rng(8)
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    args = cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"]
    cols = rng.standard_normal(im2col(x, *args).shape)
    lhs = (im2col(x, *args) * cols).sum()
    rhs = (x * col2im(cols, x.shape, *args)).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_non_contiguous_input():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 7, 3, 2))  # (H, W, C, N): a transposed view below
    w = rng.standard_normal((4, 3, 3, 3))
    tx = tinycnn.tensor(x, dtype=np.float64, requires_grad=True)
    out = F.conv2d(tx.permute(3, 2, 0, 1), tinycnn.tensor(w, dtype=np.float64), padding=1)
    expected = conv2d_loops(x.transpose(3, 2, 0, 1), w, None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    out.sum().backward()
    assert tx.grad.shape == x.shape


def test_lenet_and_resnet_shapes():
    """The layer shapes the benchmark times, at a small batch."""
    assert F.conv2d(tinycnn.randn(2, 1, 28, 28), tinycnn.randn(6, 1, 5, 5), padding=2).shape == (2, 6, 28, 28)
    assert F.conv2d(tinycnn.randn(2, 6, 14, 14), tinycnn.randn(16, 6, 5, 5)).shape == (2, 16, 10, 10)
    assert F.conv2d(tinycnn.randn(2, 16, 32, 32), tinycnn.randn(32, 16, 3, 3), stride=2, padding=1).shape == (2, 32, 16, 16)
    assert F.conv2d(tinycnn.randn(2, 16, 32, 32), tinycnn.randn(32, 16, 1, 1), stride=2).shape == (2, 32, 16, 16)
