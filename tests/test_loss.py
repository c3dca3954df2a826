"""softmax, log_softmax, cross_entropy: values, stability, gradients, errors."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F


def np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_cross_entropy(logits, target, label_smoothing=0.0, reduction="mean"):
    """By hand: the target distribution q = (1 - eps) * onehot + eps / C, loss = -sum(q * log p)."""
    n, classes = logits.shape
    q = np.full((n, classes), label_smoothing / classes)
    q[np.arange(n), target] += 1 - label_smoothing
    losses = -(q * np_log_softmax(logits, 1)).sum(axis=1)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_values(dim):
    x = np.random.default_rng(30).standard_normal((3, 4, 5))
    tx = tinycnn.tensor(x, dtype=np.float64)
    np.testing.assert_allclose(F.log_softmax(tx, dim).numpy(), np_log_softmax(x, dim), rtol=1e-12)
    probs = F.softmax(tx, dim).numpy()
    np.testing.assert_allclose(probs, np.exp(np_log_softmax(x, dim)), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=dim), 1.0, rtol=1e-12)


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_softmax_gradcheck(op, dim):
    x = tinycnn.tensor(np.random.default_rng(31).standard_normal((2, 3, 4)), dtype=np.float64, requires_grad=True)
    assert tinycnn.gradcheck(lambda t: op(t, dim), [x])


def test_softmax_is_stable_for_huge_logits():
    x = tinycnn.tensor([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], requires_grad=True)
    probs, log_probs = F.softmax(x, 1), F.log_softmax(x, 1)
    assert np.isfinite(probs.numpy()).all() and np.isfinite(log_probs.numpy()).all()
    np.testing.assert_allclose(probs.numpy()[1], [1 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_formula(reduction, label_smoothing):
    rng = np.random.default_rng(32)
    logits, target = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    loss = F.cross_entropy(tinycnn.tensor(logits, dtype=np.float64), tinycnn.tensor(target),
                           label_smoothing=label_smoothing, reduction=reduction)
    expected = np_cross_entropy(logits, target, label_smoothing, reduction)
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck(reduction, label_smoothing):
    rng = np.random.default_rng(33)
    logits = tinycnn.tensor(rng.standard_normal((4, 3)), dtype=np.float64, requires_grad=True)
    target = tinycnn.tensor(rng.integers(0, 3, 4))
    fn = lambda t: F.cross_entropy(t, target, label_smoothing=label_smoothing, reduction=reduction)
    assert tinycnn.gradcheck(fn, [logits])


def test_cross_entropy_gradient_is_softmax_minus_target():
    logits = tinycnn.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float64, requires_grad=True)
    F.cross_entropy(logits, np.array([2, 0]), label_smoothing=0.3).backward()
    q = np.full((2, 3), 0.1)
    q[[0, 1], [2, 0]] += 0.7
    expected = (np.exp(np_log_softmax(logits.numpy(), 1)) - q) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_at_1e4(dtype):
    logits = tinycnn.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype, requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 0]), label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == dtype and logits.grad.dtype == dtype
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad.numpy()).all()
    expected = np_cross_entropy(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]), np.array([1, 0]), 0.1)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


@pytest.mark.parametrize("logits_shape, target, error, message", [
    ((4, 3), np.array([0, 1, 3, 0]), ValueError, "cross_entropy: target 3 is out of range for 3 classes (expected values in [0, 2])"),
    ((4, 3), np.array([0, -1, 2, 0]), ValueError, "target -1 is out of range for 3 classes"),
    ((4, 3), np.array([0.0, 1.0, 2.0, 0.0]), TypeError, "target must hold integer class indices (e.g. int64), got float64"),
    ((4, 3), np.array([0, 1, 2]), ValueError, "target should have shape (4,) to match logits (4, 3), got (3,)"),
    ((4, 3, 2), np.array([0, 1, 2, 0]), ValueError, "expected logits of shape (N, C), got (4, 3, 2)"),
])
def test_cross_entropy_errors(logits_shape, target, error, message):
    with pytest.raises(error) as info:
        F.cross_entropy(tinycnn.zeros(*logits_shape), target)
    assert message in str(info.value)


def test_argument_errors():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.cross_entropy(tinycnn.zeros(2, 3), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(tinycnn.zeros(2, 3), np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="dim 2 is out of range for a 2-D input"):
        F.softmax(tinycnn.zeros(2, 3), 2)
