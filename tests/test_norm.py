"""batch_norm: normalization, running statistics, evaluation mode, gradients, errors."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F


def channel_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def per_channel(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6), (1, 2, 3, 3)])
def test_training_forward_and_running_stats(shape):
    rng = np.random.default_rng(20)
    x = rng.standard_normal(shape) * 3 + 1
    weight, bias = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    running_mean, running_var = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5
    rm = tinycnn.tensor(running_mean, dtype=np.float64)
    rv = tinycnn.tensor(running_var, dtype=np.float64)
    out = F.batch_norm(tinycnn.tensor(x, dtype=np.float64), rm, rv,
                       tinycnn.tensor(weight, dtype=np.float64), tinycnn.tensor(bias, dtype=np.float64),
                       training=True, momentum=0.2, eps=1e-5)

    axes = channel_axes(x)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    count = x.size // shape[1]
    expected = (x - per_channel(mean, x)) / np.sqrt(per_channel(var, x) + 1e-5) * per_channel(weight, x) \
        + per_channel(bias, x)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rm.numpy(), 0.8 * running_mean + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.8 * running_var + 0.2 * var * count / (count - 1), rtol=1e-12)


def test_running_stats_as_raw_arrays_are_updated_in_place():
    x = tinycnn.randn(16, 4) * 2 + 3
    rm, rv = np.zeros(4, dtype=np.float32), np.ones(4, dtype=np.float32)
    F.batch_norm(x, rm, rv, training=True)
    np.testing.assert_allclose(rm, 0.1 * x.numpy().mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.numpy().var(axis=0, ddof=1), rtol=1e-5)


def test_eval_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((4, 3, 2, 2))
    running_mean, running_var = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 1.5])
    rm, rv = tinycnn.tensor(running_mean, dtype=np.float64), tinycnn.tensor(running_var, dtype=np.float64)
    weight, bias = np.array([1.0, 2.0, -1.0]), np.array([0.0, 0.5, 1.0])
    out = F.batch_norm(tinycnn.tensor(x, dtype=np.float64), rm, rv, tinycnn.tensor(weight, dtype=np.float64),
                       tinycnn.tensor(bias, dtype=np.float64), training=False)
    expected = (x - per_channel(running_mean, x)) / np.sqrt(per_channel(running_var, x) + 1e-5) \
        * per_channel(weight, x) + per_channel(bias, x)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(rm.numpy(), running_mean)
    np.testing.assert_array_equal(rv.numpy(), running_var)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 4), (1, 2, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck(training, shape, affine):
    rng = np.random.default_rng(22)
    x = tinycnn.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)
    rm = tinycnn.tensor(rng.standard_normal(shape[1]), dtype=np.float64)
    rv = tinycnn.tensor(rng.random(shape[1]) + 0.5, dtype=np.float64)
    if affine:
        weight = tinycnn.tensor(rng.standard_normal(shape[1]), dtype=np.float64, requires_grad=True)
        bias = tinycnn.tensor(rng.standard_normal(shape[1]), dtype=np.float64, requires_grad=True)
        fn = lambda t, w, b: F.batch_norm(t, rm, rv, w, b, training=training)
        assert tinycnn.gradcheck(fn, [x, weight, bias])
    else:
        assert tinycnn.gradcheck(lambda t: F.batch_norm(t, rm, rv, training=training), [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_dtype_is_kept(dtype, training):
    x = tinycnn.randn(4, 3, 5, 5, dtype=dtype, requires_grad=True)
    w = tinycnn.ones(3, requires_grad=True)  # float32 parameters with a float64 input stay fine
    b = tinycnn.zeros(3, requires_grad=True)
    out = F.batch_norm(x, tinycnn.zeros(3), tinycnn.ones(3), w, b, training=training)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype and w.grad.dtype == np.float32


def test_training_output_is_normalized():
    x = tinycnn.randn(64, 4, 3, 3) * 5 + 7
    out = F.batch_norm(x, None, None, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)


@pytest.mark.parametrize("call, message", [
    (lambda: F.batch_norm(tinycnn.zeros(2, 3, 4), tinycnn.zeros(3), tinycnn.ones(3)),
     "batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape (2, 3, 4)"),
    (lambda: F.batch_norm(tinycnn.zeros(2, 3), tinycnn.zeros(4), tinycnn.ones(3)),
     "running_mean should have shape (3,) for an input with 3 channels (input shape (2, 3)), got (4,)"),
    (lambda: F.batch_norm(tinycnn.zeros(2, 3), tinycnn.zeros(3), tinycnn.ones(3), tinycnn.ones(2)),
     "weight should have shape (3,)"),
    (lambda: F.batch_norm(tinycnn.zeros(1, 3), tinycnn.zeros(3), tinycnn.ones(3), training=True),
     "expected more than 1 value per channel when training, got input shape (1, 3)"),
    (lambda: F.batch_norm(tinycnn.zeros(2, 3), None, None, training=False),
     "evaluation (training=False) needs running_mean and running_var"),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_float32_running_stats_stay_float32_with_float64_input():
    x = tinycnn.randn(8, 3, dtype=np.float64)
    rm, rv = tinycnn.zeros(3), tinycnn.ones(3)
    F.batch_norm(x, rm, rv, training=True)
    assert rm.dtype == np.float32 and rv.dtype == np.float32
    np.testing.assert_allclose(rm.numpy(), 0.1 * x.numpy().mean(axis=0), rtol=1e-5)
