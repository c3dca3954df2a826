"""Adam and AdamW: adaptive moment estimation.

Adam keeps, per parameter, running averages of the gradient (``exp_avg``, the
first moment ``m``) and of its square (``exp_avg_sq``, the second moment ``v``)
and steps by ``m / sqrt(v)``: each weight gets its own step size. Both averages
start at zero, so early on they are too small; dividing by ``1 - beta**t``
("bias correction") undoes that.

The two differ only in weight decay:

* Adam adds ``weight_decay * p`` to the gradient (an L2 penalty), so the decay
  is rescaled by ``1/sqrt(v)`` like the rest of the gradient;
* AdamW ("decoupled" decay, Loshchilov & Hutter) shrinks the weight directly,
  ``p *= 1 - lr * weight_decay``, before the Adam step.
"""

from __future__ import annotations

import math

from .. import backend, fast
from ..tensor import no_grad
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW", "adam_update"]


class Adam(Optimizer):
    """Adam, PyTorch's formulation. At step ``t`` for a parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                    # Adam (L2); AdamW: p *= 1 - lr * weight_decay
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate (1e-3).
        betas: decay rates of the two moment averages ((0.9, 0.999)).
        eps: added to the denominator for stability (1e-8).
        weight_decay: L2 penalty (0).
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0):
        name = type(self).__name__
        if lr < 0.0:
            raise ValueError(f"{name}: invalid learning rate {lr} (expected >= 0)")
        if eps < 0.0:
            raise ValueError(f"{name}: invalid eps {eps} (expected >= 0)")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay} (expected >= 0)")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient (in place).

        ``closure`` (optional) recomputes and returns the loss; its value is returned.
        """
        loss = self._evaluate(closure)
        with no_grad():
            for group in self.param_groups:
                lr, (beta1, beta2) = group["lr"], group["betas"]
                eps, weight_decay = group["eps"], group["weight_decay"]
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    p, grad = param.data, param.grad.data
                    xp = backend.get_array_module(p)
                    state = self._state_on_device(param)
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = xp.zeros_like(p)
                        state["exp_avg_sq"] = xp.zeros_like(p)
                    state["step"] += 1
                    update = fast.adam_step if fast.enabled() else adam_update   # fast: one pass (fast/kernels/adam.py)
                    update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=lr,
                           beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                           decoupled=self._decoupled_weight_decay)
        return loss


def adam_update(p, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam (``decoupled=False``) or AdamW step at step number ``step`` (from 1) for one
    parameter: ``p`` and both moments (all of p's shape) are updated in place."""
    if decoupled:
        p *= 1 - lr * weight_decay                            # AdamW: shrink the weight itself
    elif weight_decay != 0:
        grad = grad + weight_decay * p                        # Adam: an L2 penalty in the gradient
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad                  # m
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * grad * grad     # v
    xp = backend.get_array_module(p)
    step_size = lr / (1 - beta1**step)                                   # lr, with m's bias correction
    denom = xp.sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + eps       # sqrt(v), with v's bias correction
    p -= step_size * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01): ``p *= 1 - lr * weight_decay`` each step.

    Same arguments as :class:`Adam`; only the default ``weight_decay`` and where
    the decay is applied differ.
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
