"""Weight initialisation, with PyTorch's names, signatures and formulas.

Every function fills a tensor **in place** (the trailing underscore says so)
and returns it. Random values come from tinycnn's seeded generator
(``backend.get_rng``), so ``tinycnn.manual_seed(0)`` makes a model's initial
weights reproducible.

Why the scale matters: a layer computes sums over ``fan_in`` inputs. If each
weight has variance ``v``, the output variance is about ``fan_in * v`` times the
input's. Kaiming (He) init picks ``v = gain**2 / fan`` so the signal keeps its
size through many ReLU layers; Xavier (Glorot) picks ``v = gain**2 * 2 /
(fan_in + fan_out)`` as a compromise between the forward and backward passes.

A uniform distribution on ``[-b, b]`` has standard deviation ``b / sqrt(3)``,
which is why the ``*_uniform_`` variants use ``b = sqrt(3) * std``.
"""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]


def _check_tensor(tensor, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{name} expects a Tensor (e.g. a Parameter), got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"init.{name} fills floating-point tensors, got dtype {tensor.dtype}")


def _fill_random(tensor: Tensor, draw) -> Tensor:
    """Overwrite ``tensor.data`` in place with ``draw(rng, shape)``, cast to its dtype.

    Values are drawn in float64 and then cast, so a float32 and a float64 model
    seeded alike start from the same numbers (up to rounding).
    """
    xp = backend.get_array_module(tensor.data)
    with backend.device_scope(tensor.data):   # draw on the tensor's GPU, not the current one
        values = draw(backend.get_rng(xp, tensor.data), tensor.shape)
        tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ========================  ==================================
    nonlinearity              gain
    ========================  ==================================
    linear, conv*, sigmoid    1
    tanh                      5/3
    relu                      sqrt(2)
    leaky_relu                sqrt(2 / (1 + negative_slope**2))
    selu                      3/4
    ========================  ==================================

    ``param`` is the negative slope for ``leaky_relu`` (default 0.01).
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"unsupported nonlinearity {nonlinearity!r}: expected one of linear, conv1d/2d/3d, sigmoid, "
        "tanh, relu, leaky_relu, selu"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    """``(fan_in, fan_out)`` of a weight.

    Linear weight (out, in): fan_in = in, fan_out = out.
    Conv weight (out, in/groups, kh, kw): each output sums in/groups * kh * kw
    inputs, so fan_in = in/groups * kh * kw and fan_out = out * kh * kw.
    """
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}"
        )
    receptive_field = 1
    for size in tensor.shape[2:]:
        receptive_field *= size
    fan_in = tensor.shape[1] * receptive_field
    fan_out = tensor.shape[0] * receptive_field
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# --------------------------------------------------------------------------- simple fills
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with values drawn uniformly from ``[a, b)``."""
    _check_tensor(tensor, "uniform_")
    return _fill_random(tensor, lambda rng, shape: a + (b - a) * rng.random(shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with values drawn from ``N(mean, std**2)``."""
    _check_tensor(tensor, "normal_")
    return _fill_random(tensor, lambda rng, shape: mean + std * rng.standard_normal(shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check_tensor(tensor, "constant_")
    tensor.data[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


# --------------------------------------------------------------------------- Xavier / Glorot
def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Uniform on ``[-b, b]`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Normal with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std)


# --------------------------------------------------------------------------- Kaiming / He
def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """Uniform on ``[-b, b]`` with ``b = sqrt(3) * gain / sqrt(fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; ``a`` is the negative slope of
    the leaky ReLU after the layer (0 for plain ReLU). ``mode="fan_in"`` keeps
    the forward signal's variance, ``"fan_out"`` the backward gradient's.
    Conv2d and Linear use ``a=sqrt(5)`` by default, which gives
    ``b = 1 / sqrt(fan_in)``.
    """
    _check_tensor(tensor, "kaiming_uniform_")
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan) if fan > 0 else 0.0
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """Normal with ``std = gain / sqrt(fan)`` (see :func:`kaiming_uniform_`)."""
    _check_tensor(tensor, "kaiming_normal_")
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan) if fan > 0 else 0.0
    return normal_(tensor, 0.0, std)


def default_layer_init_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv2d: weight ``kaiming_uniform_(a=sqrt(5))``,
    which is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias from that same range."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
