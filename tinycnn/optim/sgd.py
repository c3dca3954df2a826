"""SGD: stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from .. import fast
from ..tensor import no_grad
from .optimizer import Optimizer, required

__all__ = ["SGD", "sgd_update"]


class SGD(Optimizer):
    """Gradient descent, PyTorch's formulation. For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                  # L2 penalty, if weight_decay != 0
        if momentum != 0:
            buf = g                               # first step: the gradient itself
            buf = momentum * buf + (1 - dampening) * g   # later steps
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g

    Note the first-step rule: the buffer starts as the gradient, not as
    ``(1 - dampening) * g``.

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate (required).
        momentum, dampening, weight_decay: floats, 0 by default.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
    """

    def __init__(self, params, lr=required, momentum: float = 0, dampening: float = 0,
                 nesterov: bool = False, weight_decay: float = 0):
        if lr is not required and lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr} (expected >= 0)")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum} (expected >= 0)")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay} (expected >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got {momentum} and {dampening}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient (in place).

        ``closure`` (optional) recomputes and returns the loss; its value is returned.
        """
        loss = self._evaluate(closure)
        with no_grad():
            for group in self.param_groups:
                rule = dict(lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                            weight_decay=group["weight_decay"], nesterov=group["nesterov"])
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    state = self._state_on_device(param) if rule["momentum"] != 0 else {}
                    buf = state.get("momentum_buffer")
                    if fast.enabled() and buf is not None:   # the fast floor: one pass (fast/kernels/sgd.py)
                        fast.sgd_momentum_step(param.data, param.grad.data, buf, **rule)
                        continue
                    buf = sgd_update(param.data, param.grad.data, buf, **rule)
                    if buf is not None:
                        state["momentum_buffer"] = buf
        return loss


def sgd_update(p, grad, buf, *, lr, momentum, dampening, weight_decay, nesterov):
    """One SGD step for one parameter: ``p`` (any shape) is updated in place; returns the new
    momentum buffer (``buf``, None before the first step; None without momentum)."""
    if weight_decay != 0:
        grad = grad + weight_decay * p                        # a new array: p's .grad stays as backward left it
    if momentum != 0:
        if buf is None:
            buf = grad.copy()                                 # first step: the buffer is the gradient
        else:
            buf = momentum * buf + (1 - dampening) * grad
        grad = grad + momentum * buf if nesterov else buf
    p -= lr * grad                                            # in place: the parameter's array object never changes
    return buf
