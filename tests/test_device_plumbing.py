"""Device plumbing: what would break, or wait for the GPU, on CuPy, checked where it can be on the CPU.

Some checks use stand-in objects whose type lives in a ``cupy`` module, which is all
tinycnn looks at to call an array a CuPy array; the rest are marked ``gpu``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from tinycnn import backend, models, optim
from tinycnn.data import DataLoader
from tinycnn.data import transforms as T
from tinycnn.functional.loss import CrossEntropy
from tinycnn.functional.math import _check_operands


class FakeCupyArray:
    """Passes for a CuPy array on GPU 0 (type module cupy.*, a .device.id), holds no data."""

    __module__ = "cupy._fake"
    device = SimpleNamespace(id=0)

    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)


# --------------------------------------------------------------------------- scatter_add
def test_scatter_add_adds_repeated_indices_up():
    target = np.zeros(5)
    backend.scatter_add(target, np.array([1, 3, 1, 1]), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(target, [0, 8, 0, 2, 0])
    grid = np.zeros((3, 4))
    backend.scatter_add(grid, (np.array([0, 0, 2]), slice(None)), np.ones((3, 4)))
    np.testing.assert_array_equal(grid[:, 0], [2, 0, 1])
    mask = np.array([True, False, True])
    backend.scatter_add(grid, mask, 1.0)
    np.testing.assert_array_equal(grid[:, 0], [3, 0, 2])


# --------------------------------------------------------------------------- mixing devices
def test_mixing_a_gpu_tensor_with_a_cpu_array_says_so():
    on_gpu = tinycnn.Tensor.from_op(FakeCupyArray((3,)), None)
    assert on_gpu.device == "cuda:0"
    with pytest.raises(RuntimeError, match=r"add: operands are on different devices \(cuda:0 and cpu\)"):
        _check_operands("add", on_gpu, np.ones(3))
    _check_operands("add", on_gpu, 2.0)                      # numbers go anywhere
    _check_operands("add", on_gpu, np.float32(2.0))
    _check_operands("add", on_gpu, np.array(2.0))            # so do 0-d arrays (CuPy takes them as scalars)
    with pytest.raises(RuntimeError, match="different devices"):
        _check_operands("mul", tinycnn.ones(3), FakeCupyArray((3,)))


def test_cross_entropy_with_gpu_targets_and_cpu_logits_says_so():
    with pytest.raises(RuntimeError, match="logits are on the CPU but target is on cuda:0"):
        F.cross_entropy(tinycnn.zeros(4, 3), FakeCupyArray((4,), np.int64))


def test_maximum_keeps_the_tensor_dtype():
    x = tinycnn.tensor([1.0, 3.0, 2.0], requires_grad=True)
    out = F.maximum(x, 2.0)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.5])   # a tie splits the gradient


# --------------------------------------------------------------------------- cross_entropy without a host check
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_unchecked_out_of_range_targets_give_nan_not_another_class(reduction):
    """What a GPU does (there the targets are not read back to check them): an
    out-of-range class gives NaN for its sample; the others are untouched."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3))
    bad = np.array([0, 3, 2, -1])                           # 3 and -1 are out of range for 3 classes
    good = np.array([0, 1, 2, 1])
    results = []
    for target in (bad, good):
        x = tinycnn.tensor(logits, dtype=np.float64, requires_grad=True)
        loss = CrossEntropy.apply(x, target, label_smoothing=0.1, reduction=reduction, targets_checked=False)
        loss.sum().backward()
        results.append((loss.numpy(), x.grad.numpy()))
    (loss_bad, grad_bad), (loss_good, grad_good) = results
    if reduction == "none":
        assert np.isnan(loss_bad[[1, 3]]).all()
        np.testing.assert_allclose(loss_bad[[0, 2]], loss_good[[0, 2]], rtol=1e-15)
    else:
        assert np.isnan(loss_bad)
    assert np.isnan(grad_bad[[1, 3]]).all()
    if reduction == "none":
        np.testing.assert_allclose(grad_bad[[0, 2]], grad_good[[0, 2]], rtol=1e-15)
    with pytest.raises(ValueError, match="is out of range for 3 classes"):   # the CPU checks and raises
        F.cross_entropy(tinycnn.tensor(logits), bad)


# --------------------------------------------------------------------------- transforms: no per-batch host -> device copy
def test_normalize_builds_its_constants_once_per_device_and_dtype():
    normalize = T.Normalize((0.5, 0.25, 0.1), (0.2, 0.5, 1.0))
    images = np.random.default_rng(1).random((2, 3, 4, 4)).astype(np.float32)
    first = normalize(images)
    second = normalize(images)
    assert len(normalize._constants) == 1
    mean, std = np.array([0.5, 0.25, 0.1]).reshape(1, 3, 1, 1), np.array([0.2, 0.5, 1.0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(first, (images - mean) / std, rtol=1e-6)
    np.testing.assert_array_equal(first, second)
    normalize(images.astype(np.float64))
    assert len(normalize._constants) == 2                     # float64 gets its own


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_cutout_fills_with_a_scalar_of_the_images_dtype(dtype):
    images = np.full((3, 1, 6, 6), 7, dtype=dtype)
    out = T.Cutout(2, fill=1, seed=0)(images)
    assert out.dtype == dtype
    assert set(np.unique(out).tolist()) == {1, 7}


# --------------------------------------------------------------------------- evaluation: one copy at the end
def test_evaluate_returns_numpy_predictions():
    from tinycnn.train import evaluate

    tinycnn.manual_seed(0)
    images = np.random.default_rng(2).integers(0, 256, (10, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(10) % 3
    result = evaluate(models.lenet5(num_classes=3), DataLoader((images, labels), batch_size=4),
                      return_predictions=True)
    assert isinstance(result["probabilities"], np.ndarray) and result["probabilities"].shape == (10, 3)
    np.testing.assert_array_equal(result["predictions"], result["probabilities"].argmax(axis=1))
    np.testing.assert_array_equal(result["labels"], labels)


# --------------------------------------------------------------------------- GPU only
@pytest.mark.gpu
def test_loader_takes_a_data_set_already_on_the_gpu(cuda_device):
    images = backend.to_device(np.arange(2 * 1 * 4 * 4, dtype=np.uint8).reshape(2, 1, 4, 4), cuda_device)
    labels = backend.to_device(np.array([0, 1]), cuda_device)
    loader = DataLoader((images, labels), batch_size=2, device=cuda_device)
    assert loader.images is images or loader.images.data.ptr == images.data.ptr   # not copied through the host
    (x, y), = list(loader)
    assert x.device == y.device == cuda_device


@pytest.mark.gpu
def test_moving_between_two_gpus(cuda_device):
    cupy = backend.array_module(cuda_device)
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    t = tinycnn.tensor([1.0, 2.0], device="cuda:0").to("cuda:1")
    assert t.device == "cuda:1" and t.data.device.id == 1
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


@pytest.mark.gpu
def test_a_training_step_does_not_wait_for_the_gpu(cuda_device):
    """No device -> host read inside forward, backward and the optimizer step (it would
    stall the GPU pipeline and prevent CUDA-graph capture). Uses CuPy's synchronization
    detector where this CuPy still has it (deprecated since CuPy 10)."""
    import cupyx

    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no cupyx.allow_synchronize to detect synchronization")
    tinycnn.manual_seed(0)
    model = models.lenet5().to(cuda_device)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = np.random.default_rng(3).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    loader = DataLoader((images, np.arange(8) % 10), batch_size=4, device=cuda_device,
                        transform=T.Compose([T.ToFloat(), T.Normalize(0.5, 0.25)]))

    def step(batches):
        x, y = next(batches)                 # the batch's indexing and transforms count too
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    batches = iter(loader)
    step(batches)                            # the first step builds what is cached (constants, kernels)
    with cupyx.allow_synchronize(False):
        step(batches)
