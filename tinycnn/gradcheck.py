"""Numerical gradient checking: is an op's backward right?

The derivative of f at x is about ``(f(x + eps) - f(x - eps)) / (2 eps)``
(central differences). :func:`gradcheck` computes that for every element of
every input, in float64 so rounding does not hide mistakes, and compares it
with what ``backward()`` produced.

An op with a non-scalar output is reduced to one number first,
``L = sum(f(x) * w)`` with fixed random weights ``w``: a wrong gradient for any
output element then shows up in dL/dx (a plain sum could let errors cancel).
"""

from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def _as_float64_input(x, index):
    """(tensor to feed fn, whether its gradient is checked)."""
    if isinstance(x, Tensor):
        if x.dtype.kind != "f":
            return x, False
        checked = x.requires_grad
        return Tensor.from_op(x.data.astype(np.float64), None).requires_grad_(checked), checked
    if isinstance(x, (np.ndarray, float)) or backend.is_cupy_array(x):
        array = np.asarray(x) if not backend.is_cupy_array(x) else x
        if array.dtype.kind == "f":
            return Tensor.from_op(array.astype(np.float64), None).requires_grad_(True), True
    return x, False


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              names=None, seed: int = 0) -> bool:
    """Compare ``backward()`` gradients of ``fn(*inputs)`` with central differences.

    Args:
        fn: takes the inputs (as Tensors) and returns one floating Tensor.
        inputs: Tensors, arrays or other arguments. Every floating input is checked,
            except Tensors with ``requires_grad=False`` (passed as constants);
            everything else (integer targets, ints, tuples) is passed unchanged.
            Checked inputs are copied to float64; the originals are untouched.
        eps: the finite-difference step.
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        names: optional names for the inputs, used in the error message.
        seed: seed of the random projection weights.

    Returns True, or raises :class:`GradcheckError` naming the input, the worst
    element, both gradient values and their relative error.
    """
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    prepared = [_as_float64_input(x, i) for i, x in enumerate(inputs)]
    tensors = [t for t, _ in prepared]
    checked = [i for i, (_, c) in enumerate(prepared) if c]
    if not checked:
        raise ValueError("gradcheck: no input to check (give floating inputs, Tensors with requires_grad=True)")
    names = list(names) if names is not None else [f"input {i}" for i in range(len(inputs))]

    output = fn(*tensors)
    if not isinstance(output, Tensor) or output.dtype.kind != "f":
        raise TypeError(f"gradcheck: fn must return a floating Tensor, got {type(output).__name__}")
    xp = backend.get_array_module(output.data)
    if output.data.size == 1:  # already one number: its own gradient is the one to check
        weights = xp.ones(output.shape)
    else:
        weights = xp.asarray(np.random.default_rng(seed).standard_normal(output.shape))

    def projected(out: Tensor) -> float:
        return float((out.data.astype(np.float64) * weights).sum())

    if not output.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any checked input (no graph was recorded)")
    (output.double() * Tensor.from_op(weights, None)).sum().backward()

    for i in checked:
        x = tensors[i]
        analytic = xp.zeros(x.shape) if x.grad is None else x.grad.data
        numeric = xp.zeros(x.shape)
        flat = x.data.reshape(-1)  # a view: writing to it perturbs x
        with no_grad():
            for k in range(flat.size):
                original = flat[k].item()
                flat[k] = original + eps
                f_plus = projected(fn(*tensors))
                flat[k] = original - eps
                f_minus = projected(fn(*tensors))
                flat[k] = original
                numeric.reshape(-1)[k] = (f_plus - f_minus) / (2 * eps)
        _compare(backend.to_numpy(analytic), backend.to_numpy(numeric), names[i], x.shape, atol, rtol)
    return True


def _compare(analytic, numeric, name, shape, atol, rtol):
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if excess.size == 0 or excess.max() <= 0:
        return
    worst = np.unravel_index(int(np.argmax(excess)), shape) if shape else ()
    a, n = float(analytic[worst]), float(numeric[worst])
    relative = abs(a - n) / max(abs(a), abs(n), 1e-300)
    n_bad = int((excess > 0).sum())
    raise GradcheckError(
        f"gradcheck failed for {name} (shape {tuple(shape)}): {n_bad} of {excess.size} elements differ; "
        f"worst at index {tuple(int(j) for j in worst)}: analytic {a:.6g}, numeric {n:.6g}, "
        f"relative error {relative:.3g} (atol={atol}, rtol={rtol})"
    )
