"""Issue 19's eleven places where a CuPy array broke or slowed tinycnn, each checked on the CPU.

A GPU is rarely at hand, so each fix is tested where it can be without one: with a CuPy-like
stand-in (an object whose type's module is ``cupy.*``, or a NumPy namespace that refuses what
CuPy refuses) or on the CPU path itself; each test failed before its fix. The GPU tests at the
end run the same paths on real CuPy arrays and skip without a GPU.
"""

from __future__ import annotations

import contextlib
import types

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from tinycnn import backend, nn, optim
from tinycnn.data import transforms as T
from tinycnn.tensor import Function, Tensor


class FakeDevice:
    """A ``cupy.cuda.Device`` stand-in: entering it makes it "current" (recorded in CURRENT)."""

    CURRENT = [0]

    def __init__(self, id=None):
        self.id = self.CURRENT[-1] if id is None else id   # Device(): the current one

    def __enter__(self):
        self.CURRENT.append(self.id)
        return self

    def __exit__(self, *exc):
        self.CURRENT.pop()


class FakeCupyArray:
    """Looks like a CuPy array on GPU ``device`` to tinycnn (type module cupy.*); holds no data."""

    __module__ = "cupy._fake"

    def __init__(self, shape=(2,), dtype=np.float32, device=1):
        self.shape, self.dtype, self.ndim, self.device = shape, np.dtype(dtype), len(shape), FakeDevice(device)


# --------------------------------------------------------------------------- 1. the input's device is current
def test_ops_run_with_the_inputs_device_current():
    seen = []

    class Probe(Function):
        def forward(self, x):
            seen.append(FakeDevice.CURRENT[-1])
            return np.zeros(2)

    Probe.apply(FakeCupyArray(device=1))
    assert seen == [1], "forward ran with GPU 0 current: CuPy would allocate and compute there"


def test_generators_are_keyed_on_the_arrays_device():
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=FakeDevice),
                                 random=types.SimpleNamespace(default_rng=np.random.default_rng))
    tinycnn.manual_seed(0)
    on_1 = backend.get_rng(fake, FakeCupyArray(device=1))
    assert backend.get_rng(fake, "cuda:1") is on_1 and backend.get_rng(fake) is not on_1   # current: GPU 0


# --------------------------------------------------------------------------- a NumPy that refuses what CuPy refuses
class CupyRules:
    """NumPy, except where CuPy is stricter: ``where`` needs an array condition (it calls
    ``.astype``), element-wise functions take no 0-d NumPy arrays, and ``einsum`` is counted."""

    def __init__(self):
        self.einsums = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def where(self, condition, a, b):
        if not hasattr(condition, "astype"):
            raise AttributeError(f"'{type(condition).__name__}' object has no attribute 'astype'")
        return np.where(condition, a, b)

    def einsum(self, *args, **kwargs):
        self.einsums += 1
        return np.einsum(*args, **kwargs)


# --------------------------------------------------------------------------- 2. 2 ** t
def test_number_to_a_tensor_power_backward_gives_where_an_array(monkeypatch):
    from tinycnn.functional import math as M

    monkeypatch.setattr(M, "get_array_module", lambda *a: CupyRules())
    t = tinycnn.tensor([0.5, 1.0, 2.0], dtype=np.float64, requires_grad=True)
    (2.0 ** t).sum().backward()
    np.testing.assert_allclose(t.grad.data, 2.0 ** t.data * np.log(2.0))


# --------------------------------------------------------------------------- 3. 0-d NumPy operands
def test_zero_d_numpy_operands_reach_the_op_as_scalars(monkeypatch):
    from tinycnn.functional import math as M

    seen = []
    forward = M.Mul.forward
    monkeypatch.setattr(M.Mul, "forward", lambda self, a, b: seen.append(type(b)) or forward(self, a, b))
    t = tinycnn.tensor([1.0, 2.0])
    np.testing.assert_array_equal((t * np.array(0.5)).data, [0.5, 1.0])
    assert seen == [np.float64], "a 0-d ndarray would reach a CuPy kernel, which refuses it"
    assert (t < np.array(1.5)).data.tolist() == [True, False]


# --------------------------------------------------------------------------- 4. random streams that resume
def test_a_resumed_run_draws_what_an_uninterrupted_one_draws():
    """The mechanism the GPU uses (generators from (seed, device, epoch)) run with NumPy generators."""
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=FakeDevice),
                                 random=types.SimpleNamespace(default_rng=np.random.default_rng))

    def epochs(first, last):
        draws = []
        for epoch in range(first, last + 1):
            backend.start_epoch(epoch)
            draws.append(backend.get_rng(fake, "cuda:1").random(3))
            draws.append(backend.get_rng(np).random(2))
        return draws

    tinycnn.manual_seed(7)
    straight = epochs(1, 4)
    tinycnn.manual_seed(7)
    epochs(1, 2)
    saved = backend.get_rng_state()
    tinycnn.manual_seed(99)                      # a new process, seeded differently
    epochs(1, 1)
    backend.set_rng_state(saved)
    resumed = epochs(3, 4)
    for a, b in zip(straight[4:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(straight[0], straight[2]), "each epoch draws a new stream"


def test_a_resumed_training_run_equals_an_uninterrupted_one():
    from tinycnn.data import DataLoader
    from tinycnn.train import FitState, fit

    def run(stop_after=None, resume=None):
        tinycnn.manual_seed(3)
        model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        rng = np.random.default_rng(0)
        data = (rng.integers(0, 255, (40, 1, 4, 4), dtype=np.uint8), rng.integers(0, 3, 40))
        loader = DataLoader(data, batch_size=8, shuffle=True, seed=1)
        state = None
        if resume is not None:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            backend.set_rng_state(resume["rng"])
            state = FitState(epoch=resume["epoch"])
        state = fit(model, loader, optimizer, epochs=stop_after or 4, state=state, progress=False)
        return model, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "rng": backend.get_rng_state(), "epoch": state.epoch}

    straight, _ = run()
    _, checkpoint = run(stop_after=2)
    resumed, _ = run(resume=checkpoint)
    for (key, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)


# --------------------------------------------------------------------------- 5. no host sync per batch-norm step
class CountingReads(np.ndarray):
    """A NumPy array that counts reads of its value into Python (on a GPU: a synchronisation each)."""

    reads = 0

    def item(self, *args):
        CountingReads.reads += 1
        return super().item(*args)

    def __int__(self):
        CountingReads.reads += 1
        return int(self.view(np.ndarray))

    def __float__(self):
        CountingReads.reads += 1
        return float(self.view(np.ndarray))


def test_cumulative_batch_norm_reads_its_count_once():
    bn = nn.BatchNorm2d(2, momentum=None)
    bn.num_batches_tracked.data = np.zeros((), np.int64).view(CountingReads)
    CountingReads.reads = 0
    batches = [tinycnn.randn(4, 2, 3, 3) for _ in range(5)]
    for x in batches:
        bn(x)
    assert CountingReads.reads <= 1, f"{CountingReads.reads} reads of num_batches_tracked in 5 steps"
    expected = np.mean([x.data.mean(axis=(0, 2, 3)) for x in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean.data, expected, rtol=1e-5)
    # a loaded state is read again: the cumulative average continues from the loaded count
    other = nn.BatchNorm2d(2, momentum=None)
    other.load_state_dict(bn.state_dict())
    bn.load_state_dict(other.state_dict())
    x = tinycnn.randn(4, 2, 3, 3)
    bn(x)
    np.testing.assert_allclose(bn.running_mean.data, (5 * expected + x.data.mean(axis=(0, 2, 3))) / 6, rtol=1e-5)


# --------------------------------------------------------------------------- 6. batch norm's dots as reductions on the GPU
def test_batch_norm_on_cupy_uses_reductions_equal_to_the_cpu(monkeypatch):
    from tinycnn.fast import norm as fast_norm

    x = tinycnn.randn(4, 3, 5, 5, dtype=np.float64, requires_grad=True)
    w, b = tinycnn.ones(3, dtype=np.float64, requires_grad=True), tinycnn.zeros(3, dtype=np.float64, requires_grad=True)

    def grads():
        for t in (x, w, b):
            t.grad = None
        with tinycnn.fast_floor():
            out = F.batch_norm(x, None, None, w, b, training=True)
        (out * out).sum().backward()
        return [out.data] + [t.grad.data for t in (x, w, b)]

    on_numpy = grads()
    cupy_like = CupyRules()
    monkeypatch.setattr(fast_norm, "get_array_module", lambda *a: cupy_like)
    as_on_cupy = grads()
    assert cupy_like.einsums == 0, "einsum on CuPy: transposed copies and C tiny GEMMs per call"
    for a, c in zip(on_numpy, as_on_cupy):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- 7. RandomCrop's corner
class LastFloatRng:
    """A generator whose uniform draws are 1 - 1e-9: K * u then rounds to K in float32 (about one
    draw in 10^7 does, for the K of a CIFAR crop)."""

    def random(self, n, dtype=np.float64):
        return np.full(n, 1 - 1e-9)

    def integers(self, low, high, size=None, dtype=np.int64):
        return np.full(size, high - 1, dtype)


def test_random_crop_never_picks_a_corner_past_the_end(monkeypatch):
    crop = T.RandomCrop(4, padding=1)
    monkeypatch.setattr(crop, "rng", lambda xp, images=None: LastFloatRng())
    out = crop(np.zeros((2, 1, 4, 4), np.float32))      # before: an IndexError (corner 3 of 0..2)
    assert out.shape == (2, 1, 4, 4)


# --------------------------------------------------------------------------- 8. adaptive pooling's matrices
def test_adaptive_pool_builds_its_matrices_once(monkeypatch):
    from tinycnn.functional import pool

    pool._adaptive_matrix_on.cache_clear()
    built = []
    original = pool._adaptive_matrix
    monkeypatch.setattr(pool, "_adaptive_matrix", lambda i, o: built.append((i, o)) or original(i, o))
    x = tinycnn.randn(2, 3, 7, 5)
    first = F.adaptive_avg_pool2d(x, (3, 2)).data
    for _ in range(3):
        np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, (3, 2)).data, first)
    assert sorted(built) == [(5, 2), (7, 3)], f"built (and copied to the device) {len(built)} times"


# --------------------------------------------------------------------------- 9. host-only conversions
def test_to_numpy_takes_a_list_of_cupy_arrays():
    class Held(FakeCupyArray):
        __module__ = "cupy._fake"

        def __init__(self, value):
            super().__init__(())
            self.value = value

        def get(self):
            return np.asarray(self.value)

    np.testing.assert_array_equal(backend.to_numpy([Held(1.5), Held(2.5)]), [1.5, 2.5])


def test_image_dataset_and_loader_keep_cupy_data(monkeypatch):
    from tinycnn.data import ImageDataset, loader

    class Fake(FakeCupyArray):   # enough of an array for ImageDataset's checks
        __module__ = "cupy._fake"

        def __init__(self, array):
            super().__init__(array.shape, array.dtype, device=0)
            self.array, self.size = array, array.size

        def __getattr__(self, name):
            return getattr(self.array, name)

        def astype(self, dtype, copy=True):
            return self

    images, labels = Fake(np.zeros((3, 1, 2, 2), np.uint8)), Fake(np.array([0, 1, 1]))
    dataset = ImageDataset(images, labels)
    assert dataset.images is images and dataset.labels is labels, "CuPy data must stay where it is"

    # (The loader's old "gather every pair once" fallback, which stacked labels with np.asarray, is
    # gone: a map-style data set is now batched item by item by default_collate, which stacks
    # arrays with their own module, CuPy's for CuPy items.)


# --------------------------------------------------------------------------- 10. device checks
@pytest.mark.parametrize("op", [
    lambda gpu, cpu: F.where(Tensor.from_op(FakeCupyArray((2,), np.bool_, device=0), None), cpu, cpu),
    lambda gpu, cpu: cpu < gpu,
    lambda gpu, cpu: F.cat([cpu, gpu]),
    lambda gpu, cpu: F.stack([cpu, gpu]),
], ids=["where condition", "comparison", "cat", "stack"])
def test_mixed_devices_give_tinycnns_error(op):
    gpu = Tensor.from_op(FakeCupyArray((2,), np.float32, device=0), None)
    cpu = tinycnn.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"on different devices \((cpu and cuda:0|cuda:0 and cpu)\)"):
        op(gpu, cpu)


# --------------------------------------------------------------------------- 11. optimizer state follows the model
@pytest.mark.parametrize("make, arrays", [
    (lambda params: optim.SGD(params, lr=0.1, momentum=0.9), 1),
    (lambda params: optim.Adam(params, lr=0.1), 2),
    (lambda params: optim.RMSprop(params, lr=0.1, momentum=0.9), 2),
    (lambda params: optim.Adagrad(params, lr=0.1), 1),
    (lambda params: optim.Adadelta(params), 2),
], ids=["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta"])
def test_optimizer_state_follows_its_parameters_device(monkeypatch, make, arrays):
    layer = nn.Linear(3, 2)
    optimizer = make(layer.parameters())
    for _ in range(2):
        optimizer.zero_grad()
        layer(tinycnn.randn(4, 3)).sum().backward()
        optimizer.step()
    # "move the model": the parameters now report another device; the state must follow them
    moved = []
    monkeypatch.setattr(Tensor, "device", property(lambda self: "cuda:0"))
    monkeypatch.setattr(backend, "to_device", lambda array, device: moved.append(device) or array)
    optimizer.zero_grad()
    layer(tinycnn.randn(4, 3)).sum().backward()
    optimizer.step()
    assert moved == ["cuda:0"] * (2 * arrays), "the optimizer's state stayed on the CPU"


# --------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
def test_gpu_pow_zero_d_and_mixed_devices(cuda_device):
    t = tinycnn.tensor([0.5, 1.0], device=cuda_device, requires_grad=True)
    (2.0 ** t * np.array(0.5)).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(t.grad.data), 0.5 * 2.0 ** np.array([0.5, 1.0]) * np.log(2), rtol=1e-6)
    with pytest.raises(RuntimeError, match="different devices"):
        F.cat([t, tinycnn.tensor([1.0])])


@pytest.mark.gpu
def test_gpu_second_device_stays_there(cuda_device):
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    t = tinycnn.tensor(np.arange(4.0), device="cuda:1", requires_grad=True)   # float64 data: a cast on cuda:1
    assert t.device == "cuda:1"
    y = F.dropout(t * 2, 0.5, training=True)
    y.sum().backward()
    assert y.device == t.grad.device == "cuda:1"


@pytest.mark.gpu
def test_gpu_optimizer_state_moves_with_the_model(cuda_device):
    layer = nn.Linear(3, 2)
    optimizer = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(tinycnn.randn(4, 3)).sum().backward()
    optimizer.step()
    layer.to(cuda_device)
    optimizer.zero_grad()
    layer(tinycnn.randn(4, 3, device=cuda_device)).sum().backward()
    optimizer.step()
    assert all(backend.is_cupy_array(s["momentum_buffer"]) for s in optimizer.state.values())


@pytest.mark.gpu
def test_gpu_batch_norm_reductions_equal_the_cpu(cuda_device):
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    outs = []
    for device in ("cpu", cuda_device):
        t = tinycnn.tensor(x, dtype=np.float64, device=device, requires_grad=True)
        out = F.batch_norm(t, None, None, None, None, training=True)
        (out * out).sum().backward()
        outs.append((backend.to_numpy(out.data), backend.to_numpy(t.grad.data)))
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- issue 21: target checks without a wait per step
def test_out_of_range_targets_are_caught_late_but_caught_where_the_check_is_deferred(monkeypatch):
    """On a GPU cross_entropy only marks a bad target on the device; the training loop reads the
    mark where it waits anyway. The same mechanism, run on the CPU with the immediate check off."""
    from tinycnn.functional import loss as loss_module
    from tinycnn.train import train_one_epoch

    monkeypatch.setattr(loss_module, "_check_targets_at_once", lambda xp: False)
    logits = tinycnn.randn(4, 3, requires_grad=True)
    value = F.cross_entropy(logits, tinycnn.tensor(np.array([0, 1, 3, 2])))   # 3: out of range, no error yet
    assert np.isnan(value.item())
    with pytest.raises(ValueError, match="a target on cpu was out of range for 3 classes"):
        loss_module.raise_if_targets_were_out_of_range()
    loss_module.raise_if_targets_were_out_of_range()                           # read once, then cleared

    tinycnn.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 255, (40, 1, 8, 8)).astype(np.uint8)
    dataset = tinycnn.data.ImageDataset(images, np.arange(40) % 3, ("a", "b", "c"))
    dataset.labels[25] = 7                                                     # one bad label, batch 3 of 4
    loader = tinycnn.data.DataLoader(dataset, batch_size=10, transform=tinycnn.data.ToFloat())
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        train_one_epoch(model, loader, optim.SGD(model.parameters(), lr=0.1), progress=False)
