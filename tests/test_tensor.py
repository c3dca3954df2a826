"""Tensor construction, dtypes, devices, conversion and the backend."""

import numpy as np
import pytest

import tinycnn
from tinycnn import backend


def test_float_data_becomes_float32_ints_and_bools_keep_kind():
    assert tinycnn.tensor([1.0, 2.0]).dtype == np.float32
    assert tinycnn.tensor(np.zeros(3, dtype=np.float64)).dtype == np.float32
    assert tinycnn.tensor(np.zeros(3, dtype=np.float16)).dtype == np.float32
    assert tinycnn.tensor([1, 2]).dtype == np.int64
    assert tinycnn.tensor(np.zeros(2, dtype=np.uint8)).dtype == np.uint8
    assert tinycnn.tensor([True, False]).dtype == np.bool_
    assert tinycnn.tensor(3.5).shape == ()


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64"), tinycnn.float64])
def test_explicit_dtype(dtype):
    assert tinycnn.tensor([1, 2], dtype=dtype).dtype == np.float64


def test_bad_dtypes_and_data_are_explained():
    with pytest.raises(TypeError, match="unknown dtype"):
        tinycnn.tensor([1.0], dtype="float99")
    with pytest.raises(TypeError, match="complex"):
        tinycnn.tensor(np.array([1j]))
    with pytest.raises(TypeError, match="only floating-point"):
        tinycnn.tensor([1, 2], requires_grad=True)


def test_tensor_copies_its_data():
    array = np.ones(3, dtype=np.float32)
    t = tinycnn.tensor(array)
    array[0] = 5
    assert t.numpy()[0] == 1


def test_facts_and_conversions():
    t = tinycnn.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    assert t.shape == (1, 3) and t.ndim == 2 and t.numel() == 3 and t.size(1) == 3 and len(t) == 1
    assert t.device == "cpu"
    assert t.requires_grad and t.is_leaf
    assert t.sum().item() == 6.0
    assert t.tolist() == [[1.0, 2.0, 3.0]]
    assert isinstance(t.numpy(), np.ndarray)
    assert not t.detach().requires_grad
    assert t.to("cpu") is t
    assert t.to(dtype="float64").dtype == np.float64
    assert t.long().dtype == np.int64
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_constructors():
    tinycnn.manual_seed(0)
    assert tinycnn.zeros(2, 3).shape == (2, 3)
    assert tinycnn.zeros((2, 3)).numpy().sum() == 0
    assert tinycnn.ones(4, dtype="float64").dtype == np.float64
    assert tinycnn.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert tinycnn.arange(5).dtype == np.int64
    assert tinycnn.arange(0, 1, 0.25).dtype == np.float32
    assert tinycnn.arange(0, 1, 0.25).tolist() == [0, 0.25, 0.5, 0.75]
    assert tinycnn.linspace(0, 1, 3).tolist() == [0, 0.5, 1]
    r = tinycnn.randn(1000)
    assert r.dtype == np.float32 and abs(float(r.numpy().mean())) < 0.2
    assert 0 <= tinycnn.rand(100).numpy().min() and tinycnn.rand(100).numpy().max() < 1
    assert tinycnn.randint(0, 3, (50,)).numpy().max() <= 2
    assert tinycnn.zeros_like(r).shape == r.shape and tinycnn.ones_like(r).dtype == np.float32
    with pytest.raises(ValueError, match="non-negative"):
        tinycnn.zeros(-1)


def test_manual_seed_makes_random_reproducible():
    tinycnn.manual_seed(42)
    first = tinycnn.randn(5).numpy()
    tinycnn.manual_seed(42)
    np.testing.assert_array_equal(first, tinycnn.randn(5).numpy())
    state = backend.get_rng_state()
    after = tinycnn.rand(3).numpy()
    backend.set_rng_state(state)
    np.testing.assert_array_equal(after, tinycnn.rand(3).numpy())


def test_comparisons_give_bool_tensors():
    t = tinycnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (t > 1.5).tolist() == [False, True, True]
    assert (t == t).numpy().all()
    assert not (t > 1.5).requires_grad


def test_repr_is_readable():
    assert repr(tinycnn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(tinycnn.tensor([1.0], requires_grad=True))
    assert "grad_fn=<Mul>" in repr(tinycnn.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=float64" in repr(tinycnn.tensor([1.0], dtype="float64"))


def test_operator_type_errors():
    with pytest.raises(TypeError, match="unsupported operand"):
        tinycnn.tensor([1.0]) + "a"
    with pytest.raises(ValueError, match="cannot reshape"):
        tinycnn.zeros(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="out of range"):
        tinycnn.zeros(2, 3).sum(axis=2)


# --------------------------------------------------------------------------- backend
def test_parse_device():
    assert backend.parse_device("cpu") == "cpu"
    assert backend.parse_device("CUDA") == "cuda:0"
    assert backend.parse_device("cuda:1") == "cuda:1"
    assert backend.parse_device(None) == "cpu"
    with pytest.raises(ValueError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
        backend.parse_device("tpu")


def test_array_module_and_moves_on_cpu():
    assert backend.array_module("cpu") is np
    array = np.arange(3)
    assert backend.get_array_module(array) is np
    assert backend.device_of(array) == "cpu"
    assert backend.to_device(array, "cpu") is array


@pytest.mark.skipif(backend.cuda_is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_it_says_what_is_missing():
    with pytest.raises(backend.DeviceError) as error:
        backend.array_module("cuda")
    message = str(error.value)
    assert ("CuPy" in message and "pip install" in message) or "no CUDA GPU" in message
    with pytest.raises(backend.DeviceError):
        tinycnn.zeros(2, device="cuda")


def test_import_does_not_need_cupy():
    import subprocess
    import sys

    code = "import sys; import tinycnn; tinycnn.tensor([1.0]) * 2; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
