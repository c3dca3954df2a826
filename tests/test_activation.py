"""relu, leaky_relu and linear: values, gradients, shapes, errors."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F


def separated(shape, seed):
    """Values away from 0, where relu's kink would spoil finite differences."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_values_and_gradcheck(slope):
    x = separated((3, 4), 50)
    tx = tinycnn.tensor(x, dtype=np.float64, requires_grad=True)
    np.testing.assert_allclose(F.leaky_relu(tx, slope).numpy(), np.where(x > 0, x, slope * x))
    assert tinycnn.gradcheck(lambda t: F.leaky_relu(t, slope), [tx])


def test_leaky_relu_default_slope_and_dtype():
    out = F.leaky_relu(tinycnn.tensor([-100.0, 0.0, 3.0]))
    np.testing.assert_allclose(out.numpy(), [-1.0, 0.0, 3.0])
    assert out.dtype == np.float32


def test_relu_values_and_gradcheck():
    x = tinycnn.tensor(separated((5, 3), 51), dtype=np.float64, requires_grad=True)
    np.testing.assert_allclose(F.relu(x).numpy(), np.maximum(x.numpy(), 0))
    assert tinycnn.gradcheck(F.relu, [x])


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 5, 3), (3,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear(x_shape, with_bias):
    rng = np.random.default_rng(52)
    x, weight, bias = rng.standard_normal(x_shape), rng.standard_normal((2, 3)), rng.standard_normal(2)
    tx = tinycnn.tensor(x, dtype=np.float64, requires_grad=True)
    tw = tinycnn.tensor(weight, dtype=np.float64, requires_grad=True)
    tb = tinycnn.tensor(bias, dtype=np.float64, requires_grad=True) if with_bias else None
    out = F.linear(tx, tw, tb)
    np.testing.assert_allclose(out.numpy(), x @ weight.T + (bias if with_bias else 0), rtol=1e-12)
    inputs = [tx, tw] + ([tb] if with_bias else [])
    assert tinycnn.gradcheck(lambda *t: F.linear(t[0], t[1], t[2] if with_bias else None), inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_dtype(dtype):
    out = F.linear(tinycnn.randn(4, 3, dtype=dtype), tinycnn.randn(2, 3, dtype=dtype), tinycnn.randn(2, dtype=dtype))
    assert out.dtype == dtype


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input has 4 features \(shape \(2, 4\)\), weight expects 3 "
                                         r"\(weight shape \(5, 3\)\)"):
        F.linear(tinycnn.zeros(2, 4), tinycnn.zeros(5, 3))
    with pytest.raises(ValueError, match=r"bias should have shape \(5,\), got \(3,\)"):
        F.linear(tinycnn.zeros(2, 3), tinycnn.zeros(5, 3), tinycnn.zeros(3))
    with pytest.raises(ValueError, match="expected a 2-D weight"):
        F.linear(tinycnn.zeros(2, 3), tinycnn.zeros(3))
