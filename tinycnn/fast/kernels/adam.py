"""Adam's (and AdamW's) update, fused into one pass per parameter (see optim/adam.py).

For a parameter p with gradient g, moments m (exp_avg) and v (exp_avg_sq), at step t::

    p = p * decay                        # AdamW: decay = 1 - lr * weight_decay (Adam: 1)
    g = g + l2 * p                       # Adam:  l2 = weight_decay            (AdamW: 0)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    p = p - step_size * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)     # step_size = lr / (1 - beta1**t)

Multiplying by 1 and adding 0 * p change nothing, so one kernel serves both
optimizers without a branch. The plain array code runs about a dozen kernels with
temporaries the size of p; the fused one reads p, g, m and v once and writes p, m and
v once, in place.
"""

from __future__ import annotations

import math

from ... import backend
from .elementwise import ElementwiseFusion

__all__ = ["ADAM_STEP", "adam_step"]


def _reference(grad, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
               l2, decay, param, exp_avg, exp_avg_sq):
    xp = backend.get_array_module(param)
    if decay != 1:
        xp.multiply(param, decay, out=param)
    if l2 != 0:
        grad = grad + l2 * param            # a new array: the .grad the backward left stays as it was
    xp.multiply(exp_avg, beta1, out=exp_avg)
    exp_avg += one_minus_beta1 * grad
    xp.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
    exp_avg_sq += one_minus_beta2 * grad * grad
    denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    param -= step_size * exp_avg / denom
    return param, exp_avg, exp_avg_sq


ADAM_STEP = ElementwiseFusion(
    name="tinycnn_adam_step",
    in_params=("T grad, T beta1, T beta2, T one_minus_beta1, T one_minus_beta2, T step_size, "
               "T bias_correction2_sqrt, T eps, T l2, T decay"),
    out_params="T param, T exp_avg, T exp_avg_sq",
    operation="""
        param = param * decay;
        T g = grad + l2 * param;
        exp_avg = exp_avg * beta1 + one_minus_beta1 * g;
        exp_avg_sq = exp_avg_sq * beta2 + one_minus_beta2 * g * g;
        param = param - step_size * exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + eps);
    """,
    reference=_reference,
    updates_in_place=True,
    scalars=("beta1", "beta2", "one_minus_beta1", "one_minus_beta2", "step_size", "bias_correction2_sqrt", "eps",
             "l2", "decay"),
)


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float, eps: float,
              weight_decay: float, decoupled: bool) -> None:
    """Update ``param`` and both moments in place (all four arrays of one shape); ``step`` counts from 1."""
    l2, decay = (0.0, 1 - lr * weight_decay) if decoupled else (weight_decay, 1.0)
    ADAM_STEP(grad, beta1, beta2, 1 - beta1, 1 - beta2, lr / (1 - beta1**step), math.sqrt(1 - beta2**step), eps,
              l2, decay, param, exp_avg, exp_avg_sq)
