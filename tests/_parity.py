"""A harness that runs one computation on two devices and checks they agree.

    compare(lambda x, w: F.conv2d(x, w, padding=1), [x, w], "cpu", "cuda", np.float32)

runs the function forward on each device from the same inputs, sends the same
output gradient back through it, and checks that the outputs and every input's
gradient agree (and that they live on the device asked for: an op that quietly
computed on the CPU would fail here).

Tolerances
----------
Relative ``rtol``: 1e-10 in float64, 1e-5 in float32. The two devices compute the
same formulas in a different order (cuBLAS and OpenBLAS split sums differently, the
GPU fuses multiply-adds), so results differ by a few roundings, about 1e-16 or 1e-7
relative per operation, compounded over a few operations.

Absolute ``atol = rtol * max|reference|``, per array. Many values in a gradient are
near 0 *because terms cancel* (a batch-norm gradient sums to 0 per channel, softmax
minus the one-hot target nearly cancels for a confident class, a convolution sums
products of both signs). The rounding error of such a value is set by the size of
the terms it came from, about the size of the array's largest values, not by the
value itself, so a purely relative test would fail on exact-looking cancellations.
Measuring against the array's largest value keeps the test as strict as the
arithmetic allows (an all-zero array must match exactly).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

import tinycnn
from tinycnn import backend

RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


@dataclass
class Const:
    """An input that gets no gradient (running statistics, say), still cast to the test's dtype."""

    value: np.ndarray


@dataclass
class Result:
    """What one device computed: the output and each input's gradient (None where none)."""

    device: str
    output: np.ndarray
    grads: list


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded by a test's name: the same inputs on every run and machine."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def _as_tensor(value, device, dtype):
    """Inputs -> Tensors on ``device``: floats in ``dtype`` requiring grad, the rest constant."""
    if isinstance(value, Const):
        array = np.asarray(value.value)
        array = array.astype(dtype) if array.dtype.kind == "f" else array
        return tinycnn.tensor(array, device=device, dtype=array.dtype)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return tinycnn.tensor(value.astype(dtype), device=device, dtype=dtype, requires_grad=True)
        return tinycnn.tensor(value, device=device, dtype=value.dtype)   # integer and boolean: indices, masks
    return value                                                          # numbers, None, tuples: as they are


def output_gradient(shape, dtype) -> np.ndarray:
    """The gradient sent back through the output: fixed random numbers, not ones
    (ones would hide a transposed or permuted gradient that happens to sum the same)."""
    return np.random.default_rng(12345).standard_normal(shape).astype(dtype)


def run(fn, inputs, device: str, dtype) -> Result:
    """Forward and backward of ``fn(*inputs)`` on ``device``."""
    tensors = [_as_tensor(value, device, dtype) for value in inputs]
    out = fn(*tensors)
    assert out.device == backend.parse_device(device), f"the output is on {out.device}, expected {device}"
    grads = [None] * len(tensors)
    if out.requires_grad:
        out.backward(tinycnn.tensor(output_gradient(out.shape, out.dtype), device=device, dtype=out.dtype))
        for i, t in enumerate(tensors):
            if isinstance(t, tinycnn.Tensor) and t.requires_grad:
                assert t.grad is not None, f"input {i} got no gradient on {device}"
                assert t.grad.device == out.device, f"input {i}'s gradient is on {t.grad.device}, expected {device}"
                assert t.grad.dtype == t.dtype, f"input {i}'s gradient is {t.grad.dtype}, the input {t.dtype}"
                grads[i] = t.grad.numpy()
    return Result(out.device, out.numpy(), grads)


def assert_close(actual, expected, rtol: float, what: str) -> None:
    """``|actual - expected| <= rtol * |expected| + rtol * max|expected|`` everywhere (see above)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(fn, inputs, device_a: str, device_b: str, dtype, rtol: float | None = None) -> tuple:
    """Run ``fn`` on both devices from the same ``inputs`` and check that they agree.

    Args:
        fn: takes one Tensor per input and returns a Tensor.
        inputs: NumPy arrays (float ones become ``dtype`` Tensors requiring grad;
            integer and boolean ones constant Tensors), :class:`Const` arrays (float,
            no gradient), or plain values passed through.
        dtype: float32 or float64.
        rtol: defaults to ``RTOL[dtype]``.

    Returns the two :class:`Result` s.
    """
    dtype = np.dtype(dtype)
    rtol = RTOL[dtype] if rtol is None else rtol
    a, b = run(fn, inputs, device_a, dtype), run(fn, inputs, device_b, dtype)
    assert_close(b.output, a.output, rtol, f"output on {device_b} vs {device_a}")
    for i, (grad_a, grad_b) in enumerate(zip(a.grads, b.grads)):
        assert (grad_a is None) == (grad_b is None), f"input {i} has a gradient on one device only"
        if grad_a is not None:
            assert_close(grad_b, grad_a, rtol, f"gradient of input {i} on {device_b} vs {device_a}")
    return a, b


def on_both_floors(fn, inputs, dtype=np.float64) -> tuple:
    """(reference result, fast result) of ``fn(*inputs)`` on the CPU, forward and backward."""
    with tinycnn.reference_floor():
        reference = run(fn, inputs, "cpu", dtype)
    with tinycnn.fast_floor():
        fast = run(fn, inputs, "cpu", dtype)
    return reference, fast


def assert_floors_agree(reference: Result, fast: Result, exact: bool, rtol: float = 1e-12) -> None:
    """The two floors' output and input gradients: bit for bit (``exact``) or within ``rtol``."""
    pairs = [("output", reference.output, fast.output)]
    pairs += [(f"gradient of input {i}", r, f) for i, (r, f) in enumerate(zip(reference.grads, fast.grads))]
    for what, expected, got in pairs:
        assert (expected is None) == (got is None), what
        if expected is None:
            continue
        if exact:
            np.testing.assert_array_equal(got, expected, err_msg=what)
        else:
            assert_close(got, expected, rtol, what)
