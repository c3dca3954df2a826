"""Adadelta: Adagrad without a hand-set step size.

Zeiler (2012). Like RMSprop it divides the gradient by a running RMS of past
gradients; it then multiplies by a running RMS of past *updates*, so the step has
the units of the weight itself and needs no learning rate (``lr`` only scales the
result; PyTorch's default is 1.0). PyTorch's MNIST example trains with it.
"""

from __future__ import annotations

from .. import backend
from ..tensor import no_grad
from ._checks import check_fraction, check_non_negative
from .optimizer import Optimizer

__all__ = ["Adadelta", "adadelta_update"]


class Adadelta(Optimizer):
    """Adadelta, PyTorch's formulation. For a parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                               # L2 penalty, if weight_decay != 0
        v = rho * v + (1 - rho) * g * g                        # square_avg, starts at 0
        delta = sqrt(u + eps) / sqrt(v + eps) * g              # RMS of updates / RMS of gradients
        u = rho * u + (1 - rho) * delta * delta                # acc_delta, starts at 0
        p = p - lr * delta

    Args (PyTorch's defaults): lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0):
        check_non_negative("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        check_fraction("Adadelta", rho=rho)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def step(self, closure=None):
        """Update every parameter that has a gradient (in place); returns ``closure()``'s loss, if given."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, param, state in self._parameters_to_update():
                p = param.data
                xp = backend.get_array_module(p)
                if not state:
                    state["step"] = 0
                    state["square_avg"] = xp.zeros_like(p)
                    state["acc_delta"] = xp.zeros_like(p)
                state["step"] += 1
                adadelta_update(p, param.grad.data, state["square_avg"], state["acc_delta"], lr=group["lr"],
                                rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"])
        return loss


def adadelta_update(p, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay):
    """One Adadelta step for one parameter; ``p``, ``square_avg`` and ``acc_delta`` change in place."""
    xp = backend.get_array_module(p)
    if weight_decay != 0:
        grad = grad + weight_decay * p
    square_avg[...] = rho * square_avg + (1 - rho) * grad * grad
    delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
    acc_delta[...] = rho * acc_delta + (1 - rho) * delta * delta
    p -= lr * delta
