"""The fast floor's conv2d (tinycnn/fast/conv.py): chunks, workspaces, the full convolution.

These tests look inside the fast convolution, so they run on the fast floor whatever
TINYCNN_FAST says; tests/test_floors.py holds its results equal to the reference's.
"""

import numpy as np
import pytest

import tinycnn
from _conv_cases import call, make_inputs, random_configs
from tinycnn.fast import columns as columns_module
from tinycnn.fast import conv as conv_module


@pytest.fixture(autouse=True)
def on_the_fast_floor():
    with tinycnn.fast_floor():
        yield


@pytest.mark.parametrize("cfg", random_configs(6, seed=7), ids=lambda c: f"{c}")
def test_fast_col2im_is_the_adjoint_of_its_im2col(cfg):
    """The same for the fast floor's column layout (fast/columns.py: wide rows, (C, H, N, W))."""
    from tinycnn.fast.columns import ConvGeometry, Workspace

    rng = np.random.default_rng(8)
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    geometry = ConvGeometry(x.shape, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    columns = Workspace(geometry, x.dtype)
    cols_shape = columns.im2col(x).shape
    oh, ow = geometry.out_size
    # garbage wide-row columns (if any) must be zero for col2im, as the conv backward makes them
    cols = rng.standard_normal((cols_shape[0], oh, cfg["n"], geometry.row_width))
    cols[..., ow:] = 0
    cols = cols.reshape(cols_shape)
    lhs = (columns.im2col(x) * cols).sum()
    rhs = (x * columns.col2im(cols)).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


# --------------------------------------------------------------------------- full-convolution input gradient


def full_conv_configs(count, seed):
    """Random configs where the full-convolution input gradient applies (stride 1, padding <= d*(k-1))."""
    configs = []
    for cfg in random_configs(20 * count, seed):
        kh, kw = cfg["kernel"]
        (ph, pw), (dh, dw) = cfg["padding"], cfg["dilation"]
        if ph <= dh * (kh - 1) and pw <= dw * (kw - 1):
            configs.append(dict(cfg, stride=(1, 1)))
        if len(configs) == count:
            break
    return configs


@pytest.mark.parametrize("cfg", full_conv_configs(25, seed=11), ids=lambda c: f"{c}")
def test_full_convolution_input_grad(cfg, monkeypatch):
    """Forced on wherever it is possible, the full convolution gives col2im's gradient and passes gradcheck."""
    _, _, _, tx, tw, tb = make_inputs(cfg, seed=12, requires_grad=True)
    grad = np.random.default_rng(13).standard_normal(call(cfg, tx, tw, tb).shape)
    monkeypatch.setattr(conv_module, "USE_FULL_CONVOLUTION", True)
    monkeypatch.setattr(conv_module, "_use_full_convolution", lambda geometry, weight_shape: False)
    call(cfg, tx, tw, tb).backward(grad)
    expected, tx.grad = tx.grad.numpy(), None
    monkeypatch.setattr(conv_module, "_use_full_convolution",
                        lambda geometry, weight_shape: conv_module._full_convolution_possible(geometry))
    call(cfg, tx, tw, tb).backward(grad)
    np.testing.assert_allclose(tx.grad.numpy(), expected, rtol=1e-10, atol=1e-10)
    inputs = [tx, tw] + ([tb] if tb is not None else [])
    assert tinycnn.gradcheck(lambda *t: call(cfg, *t[:2], t[2] if len(t) > 2 else None), inputs)


def test_full_convolution_is_chosen_for_resnet_blocks_only():
    from tinycnn.fast.columns import ConvGeometry
    same = ConvGeometry((2, 16, 32, 32), (3, 3), (1, 1), (1, 1), (1, 1))
    assert conv_module._use_full_convolution(same, (16, 16, 3, 3))
    strided = ConvGeometry((2, 16, 32, 32), (3, 3), (2, 2), (1, 1), (1, 1))
    assert not conv_module._use_full_convolution(strided, (32, 16, 3, 3))
    lenet2 = ConvGeometry((2, 6, 14, 14), (5, 5), (1, 1), (0, 0), (1, 1))
    assert not conv_module._use_full_convolution(lenet2, (16, 6, 5, 5))


# --------------------------------------------------------------------------- batch blocking
def chunk_bytes_for(cfg, images):
    """CHUNK_BYTES that gives ``images`` images per chunk for this config (float64)."""
    from tinycnn.fast.columns import ConvGeometry
    geometry = ConvGeometry((cfg["n"], cfg["c"], cfg["h"], cfg["w"]), cfg["kernel"], cfg["stride"],
                            cfg["padding"], cfg["dilation"])
    kh, kw = cfg["kernel"]
    return images * cfg["c"] * kh * kw * geometry.columns_per_image * 8


@pytest.mark.parametrize("full_convolution", [False, True])
@pytest.mark.parametrize("cfg", [dict(c, n=5) for c in random_configs(12, seed=21)], ids=lambda c: f"{c}")
def test_chunks_give_the_whole_batch_result(cfg, full_convolution, monkeypatch):
    """One image per chunk, two (with an uneven last chunk), or the whole batch: the same numbers."""
    monkeypatch.setattr(conv_module, "USE_FULL_CONVOLUTION", full_convolution)
    _, _, _, tx, tw, tb = make_inputs(cfg, seed=22, requires_grad=True)
    grad = np.random.default_rng(23).standard_normal(call(cfg, tx, tw, tb).shape)
    results = []
    for images in (5, 1, 2):
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes_for(cfg, images))
        assert len(conv_module.image_chunks(conv_module.ConvGeometry(
            (5, cfg["c"], cfg["h"], cfg["w"]), cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"]),
            8, np)) == -(-5 // images)
        for t in (tx, tw, tb):
            if t is not None:
                t.grad = None
        out = call(cfg, tx, tw, tb)
        out.backward(grad)
        results.append([out.numpy(), tx.grad.numpy(), tw.grad.numpy()] + ([tb.grad.numpy()] if tb is not None else []))
    for other in results[1:]:
        for expected, got in zip(results[0], other):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_image_chunks_cover_the_batch_once(monkeypatch):
    from tinycnn.fast.columns import ConvGeometry
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 4 * 2**20)
    geometry = ConvGeometry((128, 16, 32, 32), (3, 3), (1, 1), (1, 1), (1, 1))  # 627 KB of columns per image
    chunks, geometries = zip(*conv_module.image_chunks(geometry, 4, np))
    assert chunks[0] == slice(0, 6) and chunks[-1] == slice(126, 128)
    assert geometries[0].x_shape == (6, 16, 32, 32) and geometries[-1].x_shape == (2, 16, 32, 32)
    assert sum(c.stop - c.start for c in chunks) == 128
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    # an image bigger than a chunk still gets a chunk of its own
    big = ConvGeometry((3, 512, 64, 64), (3, 3), (1, 1), (1, 1), (1, 1))
    assert [chunk for chunk, _ in conv_module.image_chunks(big, 4, np)] == [slice(0, 1), slice(1, 2), slice(2, 3)]
    # on a GPU (any array module but NumPy) the batch is one chunk
    assert conv_module.image_chunks(geometry, 4, object()) == [(slice(0, 128), geometry)]


# --------------------------------------------------------------------------- weight gradient from the full convolution
def same_conv_configs(count, seed):
    """Random "same" convolutions (stride 1, 2*padding == dilation*(k-1)), where the weight
    gradient comes from the full convolution's columns: odd kernels, groups, dilation."""
    rng = np.random.default_rng(seed)
    configs = []
    for cfg in random_configs(30 * count, seed):
        kh, kw = int(rng.choice([1, 3, 5])), int(rng.choice([1, 3]))
        dh, dw = cfg["dilation"]
        padding = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        if dh * (kh - 1) + 1 > cfg["h"] + 2 * padding[0]:
            continue
        configs.append(dict(cfg, kernel=(kh, kw), stride=(1, 1), padding=padding))
        if len(configs) == count:
            break
    return configs


@pytest.mark.parametrize("images_per_chunk", [None, 1])
@pytest.mark.parametrize("cfg", same_conv_configs(16, seed=31), ids=lambda c: f"{c}")
def test_weight_gradient_from_the_full_convolution(cfg, images_per_chunk, monkeypatch):
    """The weight gradient from the full convolution's columns equals the im2col one, and passes gradcheck."""
    cfg = dict(cfg, n=3)
    geometry = conv_module.ConvGeometry((3, cfg["c"], cfg["h"], cfg["w"]), cfg["kernel"], (1, 1),
                                        cfg["padding"], cfg["dilation"])
    assert conv_module._weight_from_full_possible(geometry)
    if images_per_chunk:
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes_for(cfg, images_per_chunk))
    # the full convolution wherever it is possible, so that this path runs for every config
    monkeypatch.setattr(conv_module, "_use_full_convolution",
                        lambda geometry, weight_shape: conv_module._full_convolution_possible(geometry))
    _, _, _, tx, tw, tb = make_inputs(cfg, seed=32, requires_grad=True)
    grad = np.random.default_rng(33).standard_normal(call(cfg, tx, tw, tb).shape)
    gradients = {}
    for from_full in (False, True):
        monkeypatch.setattr(conv_module, "_weight_from_full_possible", lambda geometry, on=from_full: on)
        tx.grad = tw.grad = None
        call(cfg, tx, tw, tb).backward(grad)
        gradients[from_full] = tx.grad.numpy(), tw.grad.numpy()
    for expected, got in zip(gradients[False], gradients[True]):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    inputs = [tx, tw] + ([tb] if tb is not None else [])
    assert tinycnn.gradcheck(lambda *t: call(cfg, *t[:2], t[2] if len(t) > 2 else None), inputs)


def test_weight_gradient_from_full_convolution_only_for_same_convolutions():
    from tinycnn.fast.columns import ConvGeometry
    assert conv_module._weight_from_full_possible(ConvGeometry((2, 16, 32, 32), (3, 3), (1, 1), (1, 1), (1, 1)))
    assert conv_module._weight_from_full_possible(ConvGeometry((2, 4, 9, 9), (3, 3), (1, 1), (2, 2), (2, 2)))
    assert not conv_module._weight_from_full_possible(ConvGeometry((2, 4, 9, 9), (3, 3), (1, 1), (0, 0), (1, 1)))


def test_padded_images_seen_as_columns():
    """padded_as_columns: pixel (h, w) of image n in column (h, n, w), zeros in the wide rows' extra columns."""
    from tinycnn.fast.columns import ConvGeometry, Workspace, padded_as_columns
    x = np.random.default_rng(41).standard_normal((3, 2, 4, 5))
    geometry = ConvGeometry(x.shape, (3, 3), (1, 1), (1, 1), (1, 1))
    columns = padded_as_columns(Workspace(geometry, x.dtype).pad(x), geometry)
    padded_width = 5 + 2
    assert columns.shape == (2, 4 * 3 * padded_width)
    laid_out = columns.reshape(2, 4, 3, padded_width)          # (c, h, n, w)
    np.testing.assert_array_equal(laid_out[..., :5], x.transpose(1, 2, 0, 3))
    np.testing.assert_array_equal(laid_out[..., 5:], 0)


# --------------------------------------------------------------------------- workspaces
WORKSPACE_CONFIGS = [dict(n=6, c=3, h=7, w=6, o=4, groups=1, kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                          dilation=(1, 1), bias=True),
                     dict(n=6, c=4, h=8, w=8, o=2, groups=2, kernel=(3, 2), stride=(2, 1), padding=(2, 1),
                          dilation=(1, 2), bias=False),
                     dict(n=6, c=2, h=9, w=9, o=3, groups=1, kernel=(5, 5), stride=(1, 1), padding=(0, 0),
                          dilation=(1, 1), bias=True)]


def conv_results(cfg, x, weight, bias, grad):
    tx, tw = tinycnn.tensor(x, requires_grad=True), tinycnn.tensor(weight, requires_grad=True)
    tb = None if bias is None else tinycnn.tensor(bias, requires_grad=True)
    out = call(cfg, tx, tw, tb)
    out.backward(grad)
    return [out.numpy(), tx.grad.numpy(), tw.grad.numpy()] + ([] if tb is None else [tb.grad.numpy()])


@pytest.mark.parametrize("cfg", WORKSPACE_CONFIGS, ids=lambda c: f"{c}")
def test_workspaces_change_no_number(cfg, monkeypatch):
    """With reused scratch arrays, several calls in a row (different values, same shapes, chunks
    of two images and an uneven last one) give exactly the numbers of fresh arrays: nothing of
    one call's images stays in the padding for the next."""
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes_for(cfg, 4))
    calls = []
    for seed in (51, 52, 53):
        x, weight, bias, *_ = make_inputs(cfg, seed=seed)
        x = x * 100 + seed        # large, distinct values: a leak into the padding would show
        grad = np.random.default_rng(seed).standard_normal(call(cfg, tinycnn.tensor(x), tinycnn.tensor(weight),
                                                                   None).shape)
        calls.append((x, weight, bias, grad))
    results = {}
    for reuse in (False, True):
        monkeypatch.setattr(columns_module, "USE_WORKSPACES", reuse)
        results[reuse] = [conv_results(cfg, *args) for args in calls]
    for fresh, reused in zip(results[False], results[True]):
        for expected, got in zip(fresh, reused):
            np.testing.assert_array_equal(got, expected)


def test_workspaces_are_per_thread():
    """Two threads convolving at once each get their own scratch arrays, and the right numbers."""
    import threading
    from tinycnn.fast.columns import ConvGeometry, workspace
    geometry = ConvGeometry((2, 3, 8, 8), (3, 3), (1, 1), (1, 1), (1, 1))
    mine = workspace(geometry, np.float64, np, "input")
    assert workspace(geometry, np.float64, np, "input") is mine
    assert workspace(geometry, np.float64, np, "grad") is not mine
    assert workspace(geometry, np.float32, np, "input") is not mine
    found, errors = [], []
    cfg = WORKSPACE_CONFIGS[0]
    x, weight, bias, *_ = make_inputs(cfg, seed=61)
    expected = call(cfg, tinycnn.tensor(x), tinycnn.tensor(weight), tinycnn.tensor(bias)).numpy()

    def work():
        try:
            found.append(workspace(geometry, np.float64, np, "input"))
            for _ in range(20):
                got = call(cfg, tinycnn.tensor(x), tinycnn.tensor(weight), tinycnn.tensor(bias)).numpy()
                np.testing.assert_array_equal(got, expected)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({id(w) for w in found + [mine]}) == 3
