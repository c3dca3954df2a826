"""dropout: keep rate, scaling, seeded reproducibility, evaluation, gradient."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_keep_rate_and_scaling(p):
    tinycnn.manual_seed(40)
    out = F.dropout(tinycnn.ones(200_000), p).numpy()
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.005
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_seeded_reproducibility():
    x = tinycnn.randn(50, 50)
    tinycnn.manual_seed(41)
    first = F.dropout(x, 0.5).numpy()
    tinycnn.manual_seed(41)
    second = F.dropout(x, 0.5).numpy()
    third = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(second, third)


def test_identity_in_eval_and_for_p_zero():
    x = tinycnn.randn(10, 10)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_p_one_gives_zeros():
    x = tinycnn.randn(10, 10, requires_grad=True)
    out = F.dropout(x, 1.0)
    out.sum().backward()
    assert (out.numpy() == 0).all() and (x.grad.numpy() == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_is_the_mask(dtype):
    tinycnn.manual_seed(42)
    x = tinycnn.randn(30, 20, dtype=dtype, requires_grad=True)
    out = F.dropout(x, 0.3)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype
    mask = np.where(out.numpy() != 0, 1 / 0.7, 0.0)
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)
    np.testing.assert_allclose(out.numpy(), x.numpy() * mask, rtol=1e-6)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_p_must_be_a_probability(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\]"):
        F.dropout(tinycnn.ones(3), p)
