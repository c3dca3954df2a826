"""Pooling: max / average / adaptive agree with direct loops, gradients, ties, errors."""

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F


def pool_loops(x, kernel, stride, padding, kind):
    """Direct definition: one window at a time (max pads with -inf, avg with 0 and divides by KH*KW)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    fill = -np.inf if kind == "max" else 0.0
    padded = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for z in range(ow):
            window = padded[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw]
            out[:, :, y, z] = window.max(axis=(2, 3)) if kind == "max" else window.sum(axis=(2, 3)) / (kh * kw)
    return out


def random_pool_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        stride = None if rng.random() < 0.3 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = (int(rng.integers(0, kernel[0] // 2 + 1)), int(rng.integers(0, kernel[1] // 2 + 1)))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(3, 8)), int(rng.integers(3, 8)))
        if kernel[0] > shape[2] + 2 * padding[0] or kernel[1] > shape[3] + 2 * padding[1]:
            continue
        configs.append((shape, kernel, stride, padding))
    return configs


def distinct_values(shape, seed):
    """Well-separated values, so a small gradcheck step never changes which one is the max."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).astype(np.float64)
    return (values * 0.1).reshape(shape)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("cfg", random_pool_configs(12, seed=10))
def test_forward_matches_loops(kind, cfg):
    shape, kernel, stride, padding = cfg
    x = np.random.default_rng(11).standard_normal(shape)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    out = pool(tinycnn.tensor(x, dtype=np.float64), kernel, stride, padding)
    expected = pool_loops(x, kernel, stride or kernel, padding, kind)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("cfg", random_pool_configs(14, seed=12))
def test_gradcheck(kind, cfg):
    shape, kernel, stride, padding = cfg
    x = tinycnn.tensor(distinct_values(shape, seed=13), dtype=np.float64, requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    assert tinycnn.gradcheck(lambda t: pool(t, kernel, stride, padding), [x])


def test_max_pool_tie_sends_gradient_to_exactly_one_element():
    x = tinycnn.ones(1, 1, 4, 4, requires_grad=True)  # every window is one big tie
    F.max_pool2d(x, 2).sum().backward()
    grad = x.grad.numpy()[0, 0]
    assert grad.sum() == 4
    for y in range(2):
        for z in range(2):
            window = grad[2 * y:2 * y + 2, 2 * z:2 * z + 2]
            assert window[0, 0] == 1 and window.sum() == 1  # the first maximum of the window


@pytest.mark.parametrize("size", [4, 5])
def test_max_pool_gradient_is_zero_outside_every_window(size):
    """2x2 windows tile a 4x4 image; on 5x5 the last row and column are in no window and must
    get exactly 0, even where the gradient's memory held other numbers before."""
    for _ in range(3):
        np.full((64, 64), np.nan).sum()   # leave freed memory dirty for the next allocations
        x = tinycnn.tensor(distinct_values((2, 3, size, size), seed=size), dtype=np.float64, requires_grad=True)
        F.max_pool2d(x, 2).sum().backward()
        grad = x.grad.numpy()
        assert np.isfinite(grad).all()
        np.testing.assert_array_equal(grad.sum(axis=(2, 3)), np.full((2, 3), 4.0))   # one 1 per window
        if size == 5:
            assert (grad[:, :, 4, :] == 0).all() and (grad[:, :, :, 4] == 0).all()


def test_max_pool_overlapping_windows_accumulate_gradient():
    x = tinycnn.tensor([[[[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]], requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()  # the center is the max of all 4 windows
    assert x.grad.numpy()[0, 0, 1, 1] == 4 and x.grad.numpy().sum() == 4


def test_max_pool_padding_is_never_the_max():
    x = -tinycnn.ones(1, 1, 2, 2)
    out = F.max_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(out.numpy(), -np.ones((1, 1, 2, 2)))


def test_avg_pool_counts_padding():
    out = F.avg_pool2d(tinycnn.ones(1, 1, 2, 2), 3, stride=1, padding=1)
    np.testing.assert_allclose(out.numpy(), np.full((1, 1, 2, 2), 4 / 9), rtol=1e-6)


def adaptive_loops(x, out_h, out_w):
    """PyTorch's adaptive windows: [floor(i*H/OH), ceil((i+1)*H/OH))."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            h0, h1 = (i * h) // out_h, -(-((i + 1) * h) // out_h)
            w0, w1 = (j * w) // out_w, -(-((j + 1) * w) // out_w)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("in_size, out_size", [
    ((6, 8), 1), ((6, 8), (3, 4)), ((6, 8), (2, 2)), ((5, 7), (3, 2)), ((5, 7), (None, 3)), ((3, 4), (5, 6)),
])
def test_adaptive_avg_pool(in_size, out_size):
    x = np.random.default_rng(14).standard_normal((2, 3) + in_size)
    tx = tinycnn.tensor(x, dtype=np.float64, requires_grad=True)
    out = F.adaptive_avg_pool2d(tx, out_size)
    pair = (out_size, out_size) if isinstance(out_size, int) else out_size
    out_h, out_w = (in_size[0] if pair[0] is None else pair[0]), (in_size[1] if pair[1] is None else pair[1])
    np.testing.assert_allclose(out.numpy(), adaptive_loops(x, out_h, out_w), rtol=1e-12, atol=1e-12)
    assert tinycnn.gradcheck(lambda t: F.adaptive_avg_pool2d(t, out_size), [tx])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 2, 1),
                                lambda t: F.adaptive_avg_pool2d(t, 1), lambda t: F.adaptive_avg_pool2d(t, 3)])
def test_dtype_is_kept(op, dtype):
    x = tinycnn.randn(2, 3, 8, 8, dtype=dtype, requires_grad=True)
    out = op(x)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool2d(tinycnn.zeros(3, 8, 8), 2), "max_pool2d: expected a 4-D input (N, C, H, W), got shape (3, 8, 8)"),
    (lambda: F.avg_pool2d(tinycnn.zeros(1, 1, 3, 3), 5), "avg_pool2d: kernel 5x5 is larger than the padded input 3x3"),
    (lambda: F.max_pool2d(tinycnn.zeros(1, 1, 8, 8), 2, padding=2), "padding should be at most half of the kernel size"),
    (lambda: F.max_pool2d(tinycnn.zeros(1, 1, 8, 8), 0), "kernel_size and stride must be >= 1"),
    (lambda: F.adaptive_avg_pool2d(tinycnn.zeros(8, 8), 2), "adaptive_avg_pool2d: expected a 4-D input"),
    (lambda: F.adaptive_avg_pool2d(tinycnn.zeros(1, 1, 8, 8), 0), "output_size must be >= 1"),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
