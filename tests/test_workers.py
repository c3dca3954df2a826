"""The fast floor's worker threads (tinycnn/fast/workers.py): chunks of a CPU convolution and parts of
a batch on several threads: same numbers, every chunk once, errors surface.

These tests look at the fast floor, so they run on it whatever TINYCNN_FAST says."""

import os
import select
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from tinycnn.fast import conv as conv_module
from tinycnn.fast import workers


@pytest.fixture(autouse=True)
def on_the_fast_floor():
    with tinycnn.fast_floor():
        yield


@pytest.fixture
def threads():
    """Set the worker count inside a test; restored afterwards."""
    before = tinycnn.get_num_threads()
    yield tinycnn.set_num_threads
    tinycnn.set_num_threads(before)


def chunk_list(count):
    return [(slice(i, i + 1), f"geometry {i}") for i in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_map_chunks_runs_every_chunk_once_and_sums(threads, count):
    threads(count)
    seen, lock = [], threading.Lock()

    def work(chunk, geometry):
        with lock:
            seen.append((chunk.start, geometry, threading.get_ident()))
        return np.full(3, float(chunk.start))

    total = workers.map_chunks(work, chunk_list(7))
    np.testing.assert_array_equal(total, np.full(3, float(sum(range(7)))))
    assert sorted(start for start, _, _ in seen) == list(range(7))
    assert all(geometry == f"geometry {start}" for start, geometry, _ in seen)
    assert len({ident for _, _, ident in seen}) <= count
    assert workers.map_chunks(lambda chunk, geometry: None, chunk_list(5)) is None


def test_map_chunks_uses_the_workers(threads):
    threads(2)
    idents = set()
    barrier = threading.Barrier(2, timeout=10)   # passes only if two chunks run at the same time

    def work(chunk, geometry):
        idents.add(threading.get_ident())
        if chunk.start < 2:
            barrier.wait()

    workers.map_chunks(work, chunk_list(4))
    assert len(idents) == 2 and threading.get_ident() in idents


def test_an_error_in_a_worker_surfaces_and_blas_threads_come_back(threads):
    from threadpoolctl import threadpool_info
    threads(2)
    before = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]

    def work(chunk, geometry):
        if chunk.start == 1:   # the second chunk: the worker thread's
            raise RuntimeError("chunk 1 failed")

    with pytest.raises(RuntimeError, match="chunk 1 failed"):
        workers.map_chunks(work, chunk_list(4))
    assert [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()] == before


def test_blas_runs_single_threaded_inside_the_workers_only(threads):
    from threadpoolctl import threadpool_info
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS library that threadpoolctl can see")
    threads(2)
    inside = []
    workers.map_chunks(lambda chunk, geometry: inside.append(
        [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]), chunk_list(2))
    assert all(counts == [1] * len(blas) for counts in inside)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="positive int"):
        tinycnn.set_num_threads(bad)


def test_the_default_comes_from_the_environment():
    code = "import tinycnn; print(tinycnn.get_num_threads())"
    env = dict(os.environ, TINYCNN_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0)])   # full convolution, strided, col2im
def test_convolution_on_two_threads_gives_the_serial_numbers(threads, monkeypatch, stride, padding):
    """Bit for bit the same from one run to the next; against the serial run, to rounding (the
    weight gradient is summed in another order, and the chunk count is rounded up to a
    multiple of the workers'), and bit for bit where the chunks are the same (stride 1 here:
    one image per chunk either way), whichever thread ran them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3, 9, 9))
    weight = rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    # one image's columns per chunk: 7 chunks, dealt to the workers unevenly
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 3 * 9 * 9 * 11 * 8)

    def run():
        tx, tw, tb = (tinycnn.tensor(a, dtype=tinycnn.float64, requires_grad=True) for a in (x, weight, bias))
        out = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
        out.backward(np.cos(np.arange(np.prod(out.shape)).reshape(out.shape)))
        return out.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()

    threads(1)
    serial = run()
    threads(2)
    first, second = run(), run()
    for got, again, expected in zip(first, second, serial):
        np.testing.assert_array_equal(got, again)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if stride == 1:
        for got, expected in zip(first[:2] + first[3:], serial[:2] + serial[3:]):   # all but the weight gradient
            np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- element-wise layers in parts
def layer_results(layer, x, grad):
    """Output and input gradient of ``layer`` (a function of one Tensor), float64."""
    tx = tinycnn.tensor(x, dtype=tinycnn.float64, requires_grad=True)
    out = layer(tx)
    out.backward(grad(out.shape))
    return out.numpy(), tx.grad.numpy()


def ties_and_values(shape, seed):
    """Values with many exact ties (zeros after a ReLU, repeated numbers), as max pooling meets them."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.integers(-3, 4, size=shape), 0).astype(float) + (rng.random(shape) < 0.5)


ELEMENTWISE_LAYERS = {
    "relu": lambda t: F.relu(t),
    "max_pool 2x2": lambda t: F.max_pool2d(t, 2),
    "max_pool 3x3 stride 2 padding 1": lambda t: F.max_pool2d(t, 3, stride=2, padding=1),
    "batch_norm training": lambda t: F.batch_norm(t, np.zeros(3), np.ones(3), tinycnn.tensor(np.linspace(0.5, 2, 3)),
                                                  tinycnn.tensor(np.linspace(-1, 1, 3)), training=True),
    "batch_norm evaluation": lambda t: F.batch_norm(t, np.linspace(-1, 1, 3), np.linspace(0.5, 2, 3),
                                                    training=False),
}


@pytest.mark.parametrize("name", ELEMENTWISE_LAYERS)
def test_elementwise_layers_in_parts_give_the_serial_numbers(name, threads, monkeypatch):
    """A batch split over the workers: ReLU and max pooling bit for bit; batch norm's
    per-channel sums are added in another order (to 1e-12), and bit for bit the same
    from one run to the next."""
    monkeypatch.setattr(workers, "PARALLEL_MIN_BYTES", 0)
    x = ties_and_values((5, 3, 7, 7), seed=1)
    grad = lambda shape: np.cos(np.arange(np.prod(shape)).reshape(shape))
    layer = ELEMENTWISE_LAYERS[name]
    threads(1)
    serial = layer_results(layer, x, grad)
    threads(3)                                  # 5 images in parts of 1, 2 and 2
    assert [p.stop - p.start for p in workers.batch_parts(x)] == [1, 2, 2]
    first, second = layer_results(layer, x, grad), layer_results(layer, x, grad)
    for got, again, expected in zip(first, second, serial):
        np.testing.assert_array_equal(got, again)
        if name.startswith("batch_norm"):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, expected)


def test_small_arrays_and_gpu_arrays_stay_in_one_piece(threads):
    threads(2)
    assert workers.batch_parts(np.zeros((4, 8))) == [...]                        # far below the threshold
    assert len(workers.batch_parts(np.zeros((4, workers.PARALLEL_MIN_BYTES)))) == 2
    assert workers.batch_parts(np.zeros((1, workers.PARALLEL_MIN_BYTES))) == [...]  # one image
    assert workers.batch_parts(np.float64(3.0)) == [...]                         # 0-d
    threads(1)
    assert workers.batch_parts(np.zeros((4, workers.PARALLEL_MIN_BYTES))) == [...]


def test_chunk_count_is_a_multiple_of_the_workers(threads, monkeypatch):
    """LeNet-5's first convolution at batch 64: 3 chunks of 2 MB for one thread, 4 for two."""
    from tinycnn.fast.columns import ConvGeometry
    geometry = ConvGeometry((64, 1, 28, 28), (5, 5), (1, 1), (2, 2), (1, 1))   # 25*28*32*4 bytes per image
    threads(1)
    assert [c.stop - c.start for c, _ in conv_module.image_chunks(geometry, 4, np)] == [23, 23, 18]
    threads(2)
    assert [c.stop - c.start for c, _ in conv_module.image_chunks(geometry, 4, np)] == [16, 16, 16, 16]
    threads(3)
    chunks = conv_module.image_chunks(geometry, 4, np)
    assert len(chunks) == 3 and sum(c.stop - c.start for c, _ in chunks) == 64
    small = ConvGeometry((5, 1, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1))        # one chunk stays one chunk
    assert len(conv_module.image_chunks(small, 4, np)) == 1


def test_the_linear_layer_holds_blas_to_one_thread_only_for_large_products(threads):
    from threadpoolctl import threadpool_info
    if not [lib for lib in threadpool_info() if lib["user_api"] == "blas"]:
        pytest.skip("no BLAS library that threadpoolctl can see")
    blas_threads = lambda: [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    outside = blas_threads()
    big, small = np.zeros((256, 400), dtype=np.float32), np.zeros((1, 400), dtype=np.float32)
    threads(2)
    with workers.single_threaded_blas(big, 256 * 400 * 120):
        assert all(count == 1 for count in blas_threads())
    with workers.single_threaded_blas(small, 1 * 400 * 120):      # BLAS uses one thread for it anyway
        assert blas_threads() == outside
    threads(1)
    with workers.single_threaded_blas(big, 256 * 400 * 120):      # serial engine: BLAS keeps its threads
        assert blas_threads() == outside
    assert blas_threads() == outside


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_workers_of_its_own(threads):
    """After fork the parent's worker threads do not exist in the child; its convolutions must
    still run (on a pool of its own) rather than wait forever."""
    threads(2)
    workers.map_parts(lambda part: None, [slice(0, 1), slice(1, 2)])   # the parent's pool exists
    x = np.random.default_rng(0).standard_normal((8, 3, 64, 64)).astype(np.float32)
    weight = np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32)
    expected = F.conv2d(tinycnn.tensor(x), tinycnn.tensor(weight), padding=1).numpy()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: report through the pipe, never return into pytest
        status = b"0"
        try:
            got = F.conv2d(tinycnn.tensor(x), tinycnn.tensor(weight), padding=1).numpy()
            status = b"1" if np.array_equal(got, expected) else b"0"
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready and os.read(read, 1) == b"1", "the forked child's convolution hung or went wrong"
