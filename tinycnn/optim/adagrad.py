"""Adagrad: each weight's step is divided by the root of the sum of all its squared gradients.

Duchi, Hazan & Singer (2011). Weights that rarely get a gradient (a rare word's
embedding) keep large steps; busy ones slow down. The sum only grows, so every step
shrinks over time: good for convex problems, often too cautious for deep nets (RMSprop
and Adam replace the sum by a decaying average).
"""

from __future__ import annotations

from .. import backend
from ..tensor import no_grad
from ._checks import check_non_negative
from .optimizer import Optimizer

__all__ = ["Adagrad", "adagrad_update"]


class Adagrad(Optimizer):
    """Adagrad, PyTorch's formulation. At step ``t`` (from 1) for a parameter ``p`` with gradient ``g``::

        clr = lr / (1 + (t - 1) * lr_decay)
        g = g + weight_decay * p                  # L2 penalty, if weight_decay != 0
        sum = sum + g * g                         # starts at initial_accumulator_value
        p = p - clr * g / (sqrt(sum) + eps)

    Args (PyTorch's defaults): lr=0.01, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10):
        check_non_negative("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                           initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient (in place); returns ``closure()``'s loss, if given."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, param, state in self._parameters_to_update():
                p = param.data
                xp = backend.get_array_module(p)
                if not state:
                    state["step"] = 0
                    state["sum"] = xp.full_like(p, group["initial_accumulator_value"])
                state["step"] += 1
                adagrad_update(p, param.grad.data, state["sum"], step=state["step"], lr=group["lr"],
                               lr_decay=group["lr_decay"], weight_decay=group["weight_decay"], eps=group["eps"])
        return loss


def adagrad_update(p, grad, sum_sq, *, step, lr, lr_decay, weight_decay, eps):
    """One Adagrad step (number ``step``, from 1) for one parameter; ``p`` and ``sum_sq`` change in place."""
    xp = backend.get_array_module(p)
    clr = lr / (1 + (step - 1) * lr_decay)
    if weight_decay != 0:
        grad = grad + weight_decay * p
    sum_sq += grad * grad
    p -= clr * grad / (xp.sqrt(sum_sq) + eps)
