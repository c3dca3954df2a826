"""Fused element-wise kernels (tinycnn/fast/kernels/): references, dispatch, compilation, and kernel == reference.

Without a GPU: each reference is checked against the formula it documents, the
dispatcher is checked to pick the reference for NumPy arrays (and the kernel for CuPy
arrays, with stand-in array objects), the ops are checked to call the fusions, and,
where ``nvcc`` is installed, every kernel's CUDA source is compiled for float and double.
With a GPU (marked ``gpu``): every kernel equals its reference. The kernels are part of the
fast floor, so these tests run on it whatever TINYCNN_FAST says.
"""

from __future__ import annotations

import inspect
import math
import shutil
import subprocess

import numpy as np
import pytest

import tinycnn
import tinycnn.functional as F
from tinycnn import nn, optim
from tinycnn.fast import kernels
from tinycnn.fast.kernels import FUSIONS
from tinycnn.fast.kernels.elementwise import ElementwiseFusion, fused_kernels_enabled, parse_params
from tinycnn.fast.kernels.standalone import cuda_source

FUSION_IDS = [f.name for f in FUSIONS]


@pytest.fixture(autouse=True)
def on_the_fast_floor():
    with tinycnn.fast_floor():
        yield


def _sample_arguments(fusion: ElementwiseFusion, rng, dtype=np.float64) -> list:
    """Arguments for ``fusion`` in the kernel's order (inputs, then outputs), NumPy arrays and numbers."""
    def randn(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if fusion is kernels.BATCH_NORM_APPLY:
        return [randn(4, 3, 5, 5), randn(1, 3, 1, 1), randn(1, 3, 1, 1)]
    if fusion is kernels.BATCH_NORM_BACKWARD:
        return [randn(4, 3, 5, 5), randn(4, 3, 5, 5), randn(1, 3, 1, 1), randn(1, 3, 1, 1), randn(1, 3, 1, 1)]
    if fusion is kernels.RELU_BACKWARD:
        out = np.maximum(randn(6, 7), 0)
        out[0, :3] = 0.0
        return [randn(6, 7), out]
    if fusion is kernels.SGD_MOMENTUM_STEP:
        # grad, lr, weight_decay, momentum, 1 - dampening, nesterov, param, buf
        return [randn(5, 4), 0.1, 1e-3, 0.9, 0.8, False, randn(5, 4), randn(5, 4)]
    if fusion is kernels.ADAM_STEP:
        # grad, beta1, beta2, 1 - beta1, 1 - beta2, step_size, sqrt(1 - beta2**t), eps, l2, decay, param, m, v
        t, lr = 3, 0.01
        return [randn(5, 4), 0.9, 0.999, 0.1, 0.001, lr / (1 - 0.9**t), math.sqrt(1 - 0.999**t), 1e-8, 0.01, 1.0,
                randn(5, 4), randn(5, 4), np.abs(randn(5, 4))]
    raise AssertionError(f"no sample arguments for {fusion.name}")


def _copy(args):
    return [a.copy() if hasattr(a, "copy") else a for a in args]


# --------------------------------------------------------------------------- declarations
@pytest.mark.parametrize("fusion", FUSIONS, ids=FUSION_IDS)
def test_declarations_are_consistent(fusion):
    names = [p.name for p in fusion.inputs + fusion.outputs]
    assert len(set(names)) == len(names), f"{fusion.name}: a parameter name repeats: {names}"
    assert set(fusion.scalars) <= {p.name for p in fusion.inputs}, "scalars must be inputs"
    reference_params = list(inspect.signature(fusion.reference).parameters)
    arguments = [p.name for p in fusion.arguments]
    if not fusion.updates_in_place and len(fusion.outputs) == 1:
        # one new output: the reference can also write it into a given array (CPU parts)
        assert inspect.signature(fusion.reference).parameters["result"].default is None
        arguments.append("result")
    assert reference_params == arguments, f"{fusion.name}: reference takes {reference_params}, kernel {arguments}"
    assert fusion.name.startswith("tinycnn_")


def test_parse_params():
    assert [(p.type, p.name) for p in parse_params("T grad, bool nesterov")] == [("T", "grad"), ("bool", "nesterov")]
    with pytest.raises(ValueError, match="expected 'type name'"):
        parse_params("raw T x, T y")


# --------------------------------------------------------------------------- references = documented math
def test_batch_norm_references_follow_their_formulas():
    rng = np.random.default_rng(0)
    centered, scale, bias = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((1, 3, 1, 1)), rng.standard_normal((1, 3, 1, 1))
    np.testing.assert_allclose(kernels.batch_norm_apply(centered, scale, bias), centered * scale + bias, rtol=1e-15)
    grad, k2, k3 = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((1, 3, 1, 1)), rng.standard_normal((1, 3, 1, 1))
    np.testing.assert_allclose(kernels.batch_norm_backward(grad, centered, scale, k2, k3),
                               grad * scale + centered * k2 + k3, rtol=1e-14, atol=1e-15)


def test_relu_reference_passes_the_gradient_where_the_output_is_positive():
    grad = np.array([1.0, -2.0, 3.0, -4.0, np.nan, np.nan], np.float32)
    out = np.array([0.5, 0.0, 0.0, 2.0, 0.0, 1.0], np.float32)   # 0: x was <= 0
    result = kernels.relu_backward(grad, out)
    # -0.0 == 0.0 here; a NaN gradient stays NaN, blocked or not (NaN * 0 is NaN: see fast/kernels/relu.py)
    np.testing.assert_array_equal(result, [1.0, 0.0, 0.0, -4.0, np.nan, np.nan])
    assert result.dtype == np.float32


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_sgd_reference_follows_the_formula(nesterov, weight_decay):
    rng = np.random.default_rng(1)
    param, grad, buf = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    lr, momentum, dampening = 0.1, 0.9, 0.0 if nesterov else 0.2
    g = grad + weight_decay * param
    expected_buf = momentum * buf + (1 - dampening) * g
    expected_param = param - lr * (g + momentum * expected_buf if nesterov else expected_buf)
    p, b = param.copy(), buf.copy()
    kernels.sgd_momentum_step(p, grad, b, lr=lr, momentum=momentum, dampening=dampening,
                              weight_decay=weight_decay, nesterov=nesterov)
    np.testing.assert_allclose(b, expected_buf, rtol=1e-14)
    np.testing.assert_allclose(p, expected_param, rtol=1e-14)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_reference_follows_the_formula(decoupled):
    rng = np.random.default_rng(2)
    param, grad = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    m, v = rng.standard_normal((3, 4)), np.abs(rng.standard_normal((3, 4)))
    lr, beta1, beta2, eps, wd, t = 0.01, 0.9, 0.999, 1e-8, 0.05, 4
    p_ = param * (1 - lr * wd) if decoupled else param
    g = grad if decoupled else grad + wd * param
    expected_m = beta1 * m + (1 - beta1) * g
    expected_v = beta2 * v + (1 - beta2) * g * g
    expected_p = p_ - lr / (1 - beta1**t) * expected_m / (np.sqrt(expected_v) / np.sqrt(1 - beta2**t) + eps)
    p, m2, v2 = param.copy(), m.copy(), v.copy()
    kernels.adam_step(p, grad, m2, v2, step=t, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
                      decoupled=decoupled)
    np.testing.assert_allclose(m2, expected_m, rtol=1e-14)
    np.testing.assert_allclose(v2, expected_v, rtol=1e-14)
    np.testing.assert_allclose(p, expected_p, rtol=1e-13)


# --------------------------------------------------------------------------- dispatch
class FakeCupyArray:
    """Looks like a CuPy array to the dispatcher (its type's module is cupy.*), holds no data."""

    __module__ = "cupy._fake"

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)


@pytest.mark.parametrize("fusion", FUSIONS, ids=FUSION_IDS)
def test_numpy_arrays_run_the_reference(fusion, monkeypatch):
    args = _sample_arguments(fusion, np.random.default_rng(3))
    assert not fusion.uses_kernel(*args)
    monkeypatch.setattr(fusion, "kernel", lambda: pytest.fail("the CUDA kernel was asked for NumPy arrays"))
    expected = fusion.reference(*_copy(args))
    result = fusion(*args)
    for a, b in zip(result if isinstance(result, tuple) else (result,),
                    expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_array_equal(a, b)


def test_cupy_arrays_run_the_kernel(monkeypatch):
    fusion = kernels.RELU_BACKWARD
    grad, out = FakeCupyArray((2, 3), np.float32), FakeCupyArray((2, 3), np.float32)
    assert fusion.uses_kernel(grad, out)
    called = []
    monkeypatch.setattr(fusion, "kernel", lambda: lambda *args: called.append(args) or "from the kernel")
    monkeypatch.setattr(fusion, "reference", lambda *args: pytest.fail("the reference ran for CuPy arrays"))
    assert fusion(grad, out) == "from the kernel" and called == [(grad, out)]


def test_dispatch_falls_back_to_the_reference(monkeypatch):
    fusion = kernels.RELU_BACKWARD
    f32, f64 = FakeCupyArray((2, 3), np.float32), FakeCupyArray((2, 3), np.float64)
    assert not fusion.uses_kernel(f32, f64), "mixed dtypes: T cannot bind to both"
    assert not fusion.uses_kernel(FakeCupyArray((2,), np.float16), FakeCupyArray((2,), np.float16)), "float16"
    assert not fusion.uses_kernel(f32, np.zeros((2, 3), np.float32)), "a CuPy and a NumPy array"
    monkeypatch.setenv("TINYCNN_FUSED_KERNELS", "0")
    assert not fused_kernels_enabled()
    assert not fusion.uses_kernel(f32, f32), "switched off by TINYCNN_FUSED_KERNELS=0"
    monkeypatch.setenv("TINYCNN_FUSED_KERNELS", "1")
    assert fused_kernels_enabled() and fusion.uses_kernel(f32, f32)


def test_wrong_number_of_arguments_says_what_was_expected():
    with pytest.raises(TypeError, match=r"tinycnn_relu_backward: expected 2 arguments \(grad, out\), got 1"):
        kernels.RELU_BACKWARD(np.zeros(3))
    with pytest.raises(TypeError, match=r"expected 8 arguments \(grad, lr, .*, param, buf\), got 6"):
        kernels.SGD_MOMENTUM_STEP(*_sample_arguments(kernels.SGD_MOMENTUM_STEP, np.random.default_rng(0))[:6])


# --------------------------------------------------------------------------- the ops call the fusions
def _record_calls(monkeypatch, fusion):
    calls = []
    reference = fusion.reference

    def recording(*args):
        calls.append(args)
        return reference(*args)

    monkeypatch.setattr(fusion, "reference", recording)
    return calls


def test_batch_norm_and_relu_use_the_fusions(monkeypatch):
    calls = {f.name: _record_calls(monkeypatch, f) for f in
             (kernels.BATCH_NORM_APPLY, kernels.BATCH_NORM_BACKWARD, kernels.RELU_BACKWARD)}
    x = tinycnn.randn(4, 3, 5, 5, requires_grad=True)
    weight, bias = tinycnn.ones(3, requires_grad=True), tinycnn.zeros(3, requires_grad=True)
    F.relu(F.batch_norm(x, None, None, weight, bias, training=True)).sum().backward()
    assert all(len(c) == 1 for c in calls.values()), {k: len(v) for k, v in calls.items()}


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: optim.Adam(p), lambda p: optim.AdamW(p)],
                         ids=["SGD", "Adam", "AdamW"])
def test_optimizers_use_the_fusions(make, monkeypatch):
    sgd_calls = _record_calls(monkeypatch, kernels.SGD_MOMENTUM_STEP)
    adam_calls = _record_calls(monkeypatch, kernels.ADAM_STEP)
    layer = nn.Linear(3, 2)
    optimizer = make(layer.parameters())
    for _ in range(2):
        optimizer.zero_grad()
        layer(tinycnn.randn(4, 3)).sum().backward()
        optimizer.step()
    if isinstance(optimizer, optim.SGD):
        assert len(sgd_calls) == 2 and not adam_calls    # the first step only starts the buffers
    else:
        assert len(adam_calls) == 4 and not sgd_calls    # two parameters, two steps


# --------------------------------------------------------------------------- compilation (nvcc, no GPU needed)
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA's compiler) is not installed")


def _compile(source: str, tmp_path, name: str) -> subprocess.CompletedProcess:
    cu, ptx = tmp_path / f"{name}.cu", tmp_path / f"{name}.ptx"
    cu.write_text(source)
    return subprocess.run(["nvcc", "-ptx", "-arch=sm_90", str(cu), "-o", str(ptx)],
                          capture_output=True, text=True, timeout=120)


@needs_nvcc
@pytest.mark.parametrize("c_type", ["float", "double"])
@pytest.mark.parametrize("fusion", FUSIONS, ids=FUSION_IDS)
def test_kernel_source_compiles(fusion, c_type, tmp_path):
    result = _compile(cuda_source(fusion, c_type), tmp_path, fusion.name)
    assert result.returncode == 0, f"{fusion.name} ({c_type}) does not compile:\n{result.stderr}"
    assert f".entry {fusion.name}(" in (tmp_path / f"{fusion.name}.ptx").read_text()


@needs_nvcc
def test_a_broken_kernel_does_not_compile(tmp_path):
    """The compile check would catch a typo in an operation string."""
    broken = ElementwiseFusion("tinycnn_broken", "T grad, T out", "T grad_x", "grad_x = out > 0 ? grad : zero",
                               reference=lambda grad, out: None)
    result = _compile(cuda_source(broken), tmp_path, "broken")
    assert result.returncode != 0 and "zero" in result.stderr


def test_standalone_source_reads_arrays_and_scalars():
    source = cuda_source(kernels.SGD_MOMENTUM_STEP, "double")
    assert source.startswith("typedef double T;")
    assert "const T* grad_ptr" in source and "T lr," in source and "bool nesterov" in source
    assert "T &param = param_ptr[i];" in source and "const T grad = grad_ptr[i];" in source
    with pytest.raises(ValueError, match="T must be 'float' or 'double'"):
        cuda_source(kernels.SGD_MOMENTUM_STEP, "half")


# --------------------------------------------------------------------------- GPU: kernel == reference
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("fusion", FUSIONS, ids=FUSION_IDS)
def test_kernel_equals_reference_on_the_gpu(fusion, dtype, cuda_device):
    """Same arguments, kernel and reference on the GPU: equal within 1e-6 (float32) / 1e-12
    (float64) of the largest value of each output (the kernel may fuse a multiply and an
    add into one rounding, the reference rounds twice)."""
    from tinycnn import backend

    rtol = 1e-6 if dtype == np.float32 else 1e-12
    args = [backend.to_device(a, cuda_device) if isinstance(a, np.ndarray) else a
            for a in _sample_arguments(fusion, np.random.default_rng(4), dtype)]
    assert fusion.uses_kernel(*args)
    from_kernel = fusion.kernel()(*_copy(args))
    from_reference = fusion.reference(*_copy(args))
    outputs = lambda r: r if isinstance(r, tuple) else (r,)  # noqa: E731
    for got, expected in zip(outputs(from_kernel), outputs(from_reference)):
        got, expected = backend.to_numpy(got), backend.to_numpy(expected)
        assert got.dtype == expected.dtype == dtype
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=fusion.name)


@pytest.mark.gpu
def test_fused_kernels_can_be_switched_off_on_the_gpu(cuda_device, monkeypatch):
    from tinycnn import backend

    grad = backend.to_device(np.ones((2, 3), np.float32), cuda_device)
    assert kernels.RELU_BACKWARD.uses_kernel(grad, grad)
    monkeypatch.setenv("TINYCNN_FUSED_KERNELS", "0")
    assert not kernels.RELU_BACKWARD.uses_kernel(grad, grad)
    np.testing.assert_array_equal(backend.to_numpy(kernels.relu_backward(grad, grad)), np.ones((2, 3)))


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if not f.updates_in_place], ids=lambda f: f.name)
def test_a_large_cpu_batch_in_parts_gives_the_same_numbers(fusion, monkeypatch):
    """Split by images over two workers (workers.py), the reference gives exactly its
    whole-batch result; broadcast (1, C, 1, 1) operands are shared, not cut."""
    from tinycnn.fast import workers
    rng = np.random.default_rng(5)
    batch = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    channel = rng.standard_normal((1, 3, 1, 1)).astype(np.float32)
    names = [p.name for p in fusion.inputs]
    args = [channel if name in ("scale", "bias", "k1", "k2", "k3") else batch * (i + 1) for i, name in enumerate(names)]
    expected = fusion.reference(*_copy(args))
    monkeypatch.setattr(workers, "PARALLEL_MIN_BYTES", 0)
    before = workers.get_num_threads()
    workers.set_num_threads(2)
    try:
        assert len(workers.batch_parts(batch)) == 2
        got = fusion(*_copy(args))
    finally:
        workers.set_num_threads(before)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
