"""SyncBatchNorm: batch normalisation with the statistics of the whole global batch, over all ranks.

Plain batch norm on N ranks normalises each rank's share with that share's own
mean and variance: a different computation from one process with the whole
batch (and a noisier one when shares are small). SyncBatchNorm all-reduces the
per-channel sums instead, so every rank uses the global batch's statistics:

    forward:  mean = sum_r sum(x_r) / M            (M: values per channel, all ranks)
              var  = sum_r sum((x_r - mean)^2) / M  (a second all-reduce: the two-pass
                                                     form keeps float64 exact to ~1e-16)
    backward: grad_x = w / std * (g - A / M_r - x_hat * Bx / M_r)
              with A = sum_r (M_r/M) sum(g_r), Bx = sum_r (M_r/M) sum(g_r * x_hat_r)

The backward is batch norm's own (tinycnn/functional/norm.py) with the means of
g and g * x_hat taken over all ranks. Each rank's g is the gradient of *its*
mean loss; weighting by its share M_r/M, as the gradient all-reduce does
(data_parallel.py), turns them into the gradient of the global mean loss.
The weight and bias gradients stay local: the gradient all-reduce sums them.
"""

from __future__ import annotations

from .. import functional as F
from ..backend import get_array_module
from ..nn.batchnorm import _BatchNorm
from ..tensor import Function
from .process_group import group as default_group

__all__ = ["SyncBatchNorm"]


class SyncBatchNormFunction(Function):
    """x: (N, C) or (N, C, H, W) on this rank; weight, bias, running stats: (C,) -> same shape as x."""

    def forward(self, x, weight, bias, running_mean, running_var, momentum, eps, group):
        xp = get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        local_count = x.size // x.shape[1]                                 # M_r
        sums = xp.concatenate([x.sum(axis=axes), xp.asarray([local_count], dtype=x.dtype)])
        group.all_reduce(sums, what="SyncBatchNorm: the sums of the batch")
        count = sums[-1]                                                   # M
        mean = sums[:-1] / count
        centered = x - mean.reshape(shape)
        var = group.all_reduce(xp.ascontiguousarray((centered * centered).sum(axis=axes)),
                               what="SyncBatchNorm: the squared deviations") / count
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1))   # unbiased, over the global batch
        std = xp.sqrt(var + eps).astype(x.dtype)
        x_hat = centered / std.reshape(shape)
        out = x_hat if weight is None else x_hat * weight.reshape(shape).astype(x.dtype)
        if bias is not None:
            out = out + bias.reshape(shape).astype(x.dtype)
        self.x_hat, self.std, self.weight, self.axes, self.shape = x_hat, std, weight, axes, shape
        self.share, self.local_count, self.group = local_count / count, local_count, group
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        shape, axes, x_hat = self.shape, self.axes, self.x_hat
        grad_sum, grad_dot = grad.sum(axis=axes), (grad * x_hat).sum(axis=axes)   # (C,) each, this rank
        grad_weight = grad_dot if self.needs_input_grad[1] else None
        grad_bias = grad_sum if self.needs_input_grad[2] else None
        grad_x = None
        if self.needs_input_grad[0]:
            both = xp.concatenate([grad_sum, grad_dot]) * self.share
            self.group.all_reduce(both, what="SyncBatchNorm backward: the sums of the gradient")
            channels = grad_sum.shape[0]
            total_sum, total_dot = both[:channels] / self.local_count, both[channels:] / self.local_count
            scale = 1 / self.std if self.weight is None else self.weight.astype(grad.dtype) / self.std
            grad_x = scale.reshape(shape) * (grad - total_sum.reshape(shape) - x_hat * total_dot.reshape(shape))
        return grad_x, grad_weight, grad_bias


class SyncBatchNorm(_BatchNorm):
    """Batch norm over ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` whose training statistics span all ranks.

    Same parameters, buffers and state_dict keys as BatchNorm1d/2d; in eval mode,
    or in a world of one, it *is* batch norm. ``group`` defaults to the one
    :func:`tinycnn.distributed.init` made. Turn a model's batch norms into these
    with :meth:`convert_sync_batchnorm`.
    """

    _expected_ranks = (2, 3, 4)
    _expected_layout = "(N, C), (N, C, L) or (N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.group = group

    def forward(self, x):
        group = self.group if self.group is not None else default_group()
        if not self.training or group.size == 1:
            return super().forward(x)
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        sequence_shape = tuple(x.shape) if x.ndim == 3 else None
        if sequence_shape is not None:
            x = F.reshape(x, *sequence_shape, 1)
        raw = (lambda t: t.data if t is not None else None)
        out = SyncBatchNormFunction.apply(x, self.weight, self.bias, running_mean=raw(self.running_mean),
                                          running_var=raw(self.running_var), momentum=float(factor),
                                          eps=float(self.eps), group=group)
        return F.reshape(out, *sequence_shape) if sequence_shape is not None else out

    @classmethod
    def convert_sync_batchnorm(cls, module, group=None):
        """Replace every BatchNorm1d/2d in ``module`` (or ``module`` itself) by a SyncBatchNorm sharing its
        parameters and buffers; returns the module (PyTorch's ``nn.SyncBatchNorm.convert_sync_batchnorm``)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                       group=group)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name) is not None:
                    sync.register_buffer(name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child, group)
            if converted is not child:
                module.add_module(name, converted)
        return module
