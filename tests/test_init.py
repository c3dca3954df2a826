"""tinycnn.nn.init: the statistics of each initialiser match its formula."""

import math

import numpy as np
import pytest

import tinycnn
from tinycnn import nn
from tinycnn.nn import init

SHAPE = (128, 64, 3, 3)  # fan_in = 64*9 = 576, fan_out = 128*9 = 1152; 73,728 values
FAN_IN, FAN_OUT = 576, 1152


def weight(dtype=np.float32):
    return nn.Parameter(np.zeros(SHAPE, dtype=dtype))


def check_uniform(values, bound):
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.99 * bound  # the whole range is used
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert abs(values.mean()) < 0.02 * bound


def check_normal(values, std):
    assert values.std() == pytest.approx(std, rel=0.02)
    assert abs(values.mean()) < 0.02 * std


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_fans():
    assert init._calculate_fan_in_and_fan_out(weight()) == (FAN_IN, FAN_OUT)
    assert init._calculate_fan_in_and_fan_out(nn.Parameter(np.zeros((10, 20)))) == (20, 10)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        init.kaiming_uniform_(nn.Parameter(np.zeros(5)))


def test_kaiming_uniform():
    tinycnn.manual_seed(0)
    w = weight()
    array = w.data
    assert init.kaiming_uniform_(w, nonlinearity="relu") is w
    assert w.data is array  # filled in place
    check_uniform(w.numpy(), math.sqrt(3) * math.sqrt(2) / math.sqrt(FAN_IN))
    init.kaiming_uniform_(w, a=math.sqrt(5))  # the Conv2d/Linear default: bound 1/sqrt(fan_in)
    check_uniform(w.numpy(), 1 / math.sqrt(FAN_IN))


def test_kaiming_normal_fan_in_and_fan_out():
    tinycnn.manual_seed(0)
    w = weight()
    init.kaiming_normal_(w, nonlinearity="relu")
    check_normal(w.numpy(), math.sqrt(2 / FAN_IN))
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    check_normal(w.numpy(), math.sqrt(2 / FAN_OUT))
    init.kaiming_normal_(w, a=0.1, mode="fan_out")  # leaky_relu with slope 0.1
    check_normal(w.numpy(), math.sqrt(2 / (1 + 0.01)) / math.sqrt(FAN_OUT))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(w, mode="fan_avg")


def test_xavier():
    tinycnn.manual_seed(0)
    w = weight()
    std = math.sqrt(2 / (FAN_IN + FAN_OUT))
    init.xavier_uniform_(w)
    check_uniform(w.numpy(), math.sqrt(3) * std)
    init.xavier_normal_(w, gain=init.calculate_gain("tanh"))
    check_normal(w.numpy(), 5 / 3 * std)


def test_simple_fills_and_dtype():
    w = weight(np.float64)
    init.constant_(w, 0.5)
    assert np.all(w.numpy() == 0.5) and w.dtype == np.float64
    init.zeros_(w)
    assert np.all(w.numpy() == 0)
    init.ones_(w)
    assert np.all(w.numpy() == 1)
    init.uniform_(w, -2.0, 3.0)
    assert w.numpy().min() >= -2 and w.numpy().max() < 3 and w.numpy().mean() == pytest.approx(0.5, abs=0.05)
    init.normal_(w, mean=1.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(1.0, abs=0.01) and w.numpy().std() == pytest.approx(0.5, rel=0.02)
    assert w.dtype == np.float64
    with pytest.raises(TypeError, match="fills floating-point tensors, got dtype int64"):
        init.zeros_(tinycnn.tensor([1, 2]))


def test_seeded_init_is_reproducible():
    tinycnn.manual_seed(123)
    first = init.kaiming_normal_(weight()).numpy()
    tinycnn.manual_seed(123)
    second = init.kaiming_normal_(weight()).numpy()
    np.testing.assert_array_equal(first, second)
