"""Layer forward passes against NumPy formulas written out here (needs tinycnn.functional)."""

import numpy as np
import pytest

import tinycnn
from tinycnn import functional as F
from tinycnn import nn

# The layer ops are written on branch 'functional'; skip (not fail) until it is merged.
_NEEDED = ("conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "linear", "leaky_relu",
           "batch_norm", "dropout", "cross_entropy", "relu", "flatten")
_MISSING = [name for name in _NEEDED if not hasattr(F, name)]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"tinycnn.functional lacks {', '.join(_MISSING)}")


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def as_tensor(array):
    return tinycnn.tensor(array, dtype=np.float64)


def test_linear():
    layer = nn.Linear(5, 3).double()
    x = randn(4, 5)
    y = layer(as_tensor(x))
    np.testing.assert_allclose(y.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-12)
    assert nn.Linear(5, 3, bias=False)(tinycnn.randn(2, 5)).shape == (2, 3)


def conv2d_reference(x, w, b, stride, padding):
    """Direct loops: out[n, o, i, j] = sum over c, ki, kj of x_pad * w (+ b)."""
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    return out + b[None, :, None, None]


def test_conv2d():
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    x = randn(2, 3, 7, 7)
    y = layer(as_tensor(x))
    assert y.shape == (2, 4, 4, 4)
    expected = conv2d_reference(x, layer.weight.numpy(), layer.bias.numpy(), 2, 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_pooling():
    x = randn(2, 3, 4, 6)
    blocks = x.reshape(2, 3, 2, 2, 3, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(as_tensor(x)).numpy(), blocks.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(as_tensor(x)).numpy(), blocks.mean(axis=(3, 5)))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(as_tensor(x)).numpy(), x.mean(axis=(2, 3), keepdims=True))


def test_activations_flatten_dropout():
    x = randn(2, 3, 2, 2)
    np.testing.assert_allclose(nn.ReLU()(as_tensor(x)).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(as_tensor(x)).numpy(), np.where(x > 0, x, 0.2 * x))
    assert nn.Flatten()(as_tensor(x)).shape == (2, 12)
    assert nn.Flatten(0, 2)(as_tensor(x)).shape == (12, 2)
    dropout = nn.Dropout(0.5)
    ones = tinycnn.ones(1000, dtype=np.float64)
    kept = dropout(ones).numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.4 < (kept == 0).mean() < 0.6
    dropout.eval()
    np.testing.assert_array_equal(dropout(ones).numpy(), ones.numpy())


def test_cross_entropy_loss():
    logits, target = randn(5, 4), np.array([0, 3, 1, 1, 2])
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(5), target]
    loss = nn.CrossEntropyLoss()(as_tensor(logits), tinycnn.tensor(target))
    assert loss.item() == pytest.approx(nll.mean(), rel=1e-10)
    per_sample = nn.CrossEntropyLoss(reduction="none")(as_tensor(logits), tinycnn.tensor(target))
    np.testing.assert_allclose(per_sample.numpy(), nll, rtol=1e-10)
    smoothed = nn.CrossEntropyLoss(label_smoothing=0.1)(as_tensor(logits), tinycnn.tensor(target))
    expected = (0.9 * nll - 0.1 * log_probs.mean(axis=1)).mean()
    assert smoothed.item() == pytest.approx(expected, rel=1e-10)


def test_batchnorm2d_training_and_eval():
    bn = nn.BatchNorm2d(3).double()
    x = randn(8, 3, 4, 4) * 2 + 1
    y = bn(as_tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)  # running var is unbiased
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * batch_mean, rtol=1e-10)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * batch_var, rtol=1e-10)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    expected = (x - bn.running_mean.numpy()[:, None, None]) / np.sqrt(bn.running_var.numpy()[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(as_tensor(x)).numpy(), expected, rtol=1e-8)
    assert bn.num_batches_tracked.item() == 1  # eval does not count


def test_batchnorm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None).double()
    first, second = randn(6, 2, seed=1), randn(6, 2, seed=2)
    bn(as_tensor(first))
    bn(as_tensor(second))
    np.testing.assert_allclose(bn.running_mean.numpy(), (first.mean(0) + second.mean(0)) / 2, rtol=1e-10)
    untracked = nn.BatchNorm1d(2, track_running_stats=False).double()
    untracked.eval()  # no running stats: batch statistics even in eval
    y = untracked(as_tensor(first)).numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)


def test_batchnorm1d_on_sequences():
    bn = nn.BatchNorm1d(3).double()
    x = randn(4, 3, 5) * 3 + 2
    y = bn(as_tensor(x))
    assert y.shape == (4, 3, 5)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(axis=(0, 2)), rtol=1e-10)
