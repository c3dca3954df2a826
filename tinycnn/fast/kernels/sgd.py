"""SGD's update with momentum, fused into one pass per parameter (see optim/sgd.py).

For a parameter p, its gradient g and its momentum buffer, every step after the first::

    g   = g + weight_decay * p
    buf = momentum * buf + (1 - dampening) * g
    p   = p - lr * (g + momentum * buf if nesterov else buf)

The plain array code runs about six kernels with temporaries the size of p; the
fused one reads p, g and buf once and writes p and buf once. ``p`` and ``buf`` are
updated in place, so the optimizer's state and the model see the new values.
"""

from __future__ import annotations

from ... import backend
from .elementwise import ElementwiseFusion

__all__ = ["SGD_MOMENTUM_STEP", "sgd_momentum_step"]


def _reference(grad, lr, weight_decay, momentum, dampening_complement, nesterov, param, buf):
    xp = backend.get_array_module(param)
    if weight_decay != 0:
        grad = grad + weight_decay * param     # a new array: the .grad the backward left stays as it was
    xp.multiply(buf, momentum, out=buf)
    buf += dampening_complement * grad
    step = grad + momentum * buf if nesterov else buf
    param -= lr * step
    return param, buf


SGD_MOMENTUM_STEP = ElementwiseFusion(
    name="tinycnn_sgd_momentum_step",
    in_params="T grad, T lr, T weight_decay, T momentum, T dampening_complement, bool nesterov",
    out_params="T param, T buf",
    operation="""
        T g = grad + weight_decay * param;
        buf = buf * momentum + dampening_complement * g;
        param = param - lr * (nesterov ? g + momentum * buf : buf);
    """,
    reference=_reference,
    updates_in_place=True,
    scalars=("lr", "weight_decay", "momentum", "dampening_complement", "nesterov"),
)


def sgd_momentum_step(param, grad, buf, *, lr: float, momentum: float, dampening: float, weight_decay: float,
                      nesterov: bool) -> None:
    """Update ``param`` and its momentum buffer ``buf`` in place (all three arrays of one shape)."""
    SGD_MOMENTUM_STEP(grad, lr, weight_decay, momentum, 1 - dampening, bool(nesterov), param, buf)
