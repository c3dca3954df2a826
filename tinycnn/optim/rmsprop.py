"""RMSprop: divide each weight's step by a running root-mean-square of its gradients.

Tieleman & Hinton (2012). A weight whose gradients are large gets small steps and a
weight whose gradients are small gets large ones, so one learning rate suits all.
Unlike Adagrad's sum, the average forgets old gradients (decay ``alpha``), so the
steps do not shrink to nothing. Adam is RMSprop plus momentum plus bias correction.
"""

from __future__ import annotations

from .. import backend
from ..tensor import no_grad
from ._checks import check_fraction, check_non_negative
from .optimizer import Optimizer

__all__ = ["RMSprop", "rmsprop_update"]


class RMSprop(Optimizer):
    """RMSprop, PyTorch's formulation. For a parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                   # L2 penalty, if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g        # square_avg, starts at 0
        if centered:                               # subtract the squared mean gradient:
            m = alpha * m + (1 - alpha) * g        #   grad_avg, starts at 0
            v_hat = v - m * m                      #   an estimate of the variance
        else:
            v_hat = v
        step = g / (sqrt(v_hat) + eps)
        if momentum > 0:
            buf = momentum * buf + step            # momentum_buffer, starts at 0
            step = buf
        p = p - lr * step

    Args (PyTorch's defaults): lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0,
    momentum=0, centered=False.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False):
        check_non_negative("RMSprop", lr=lr, eps=eps, weight_decay=weight_decay, momentum=momentum)
        check_fraction("RMSprop", alpha=alpha)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=bool(centered))
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
                    state["square_avg"] = xp.zeros_like(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = xp.zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = xp.zeros_like(p)
                state["step"] += 1
                rmsprop_update(p, param.grad.data, state["square_avg"], state.get("grad_avg"),
                               state.get("momentum_buffer"), lr=group["lr"], alpha=group["alpha"],
                               eps=group["eps"], weight_decay=group["weight_decay"], momentum=group["momentum"])
        return loss


def rmsprop_update(p, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay, momentum):
    """One RMSprop step for one parameter; ``p`` and the state arrays (all of p's shape) change in place.
    ``grad_avg`` is None unless centered, ``momentum_buffer`` None without momentum."""
    xp = backend.get_array_module(p)
    if weight_decay != 0:
        grad = grad + weight_decay * p
    square_avg[...] = alpha * square_avg + (1 - alpha) * grad * grad
    if grad_avg is not None:
        grad_avg[...] = alpha * grad_avg + (1 - alpha) * grad
        denom = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        denom = xp.sqrt(square_avg) + eps
    if momentum_buffer is not None:
        momentum_buffer[...] = momentum * momentum_buffer + grad / denom
        p -= lr * momentum_buffer
    else:
        p -= lr * grad / denom
