"""Data parallelism: every rank holds the whole model and averages its gradients with the others.

One step on N ranks, with a global batch of B images::

    rank r:  its share of the batch (B/N images) -> forward -> loss -> backward -> gradient g_r
    all:     g = sum over r of (n_r / B) * g_r          (an all-reduce: every rank gets g)
    rank r:  optimizer.step() with g                    (the same update everywhere)

Each g_r is the gradient of the mean loss over the n_r images of rank r, so the
weighted sum g is the gradient of the mean loss over all B images: exactly what
one process would compute for the whole batch. The ranks start from the same
weights (rank 0's, broadcast) and take the same steps, so they stay identical
without ever sending a weight again. (With equal shares, n_r / B = 1 / N: the
plain average every framework describes.)

Sending one message per parameter would pay the latency of each message many
times; the gradients travel in a few flat *buckets* (``bucket_mb`` each, default
1 MB). Buckets are filled in reverse order of the parameters, because the
backward reaches the last layers first: when the autograd engine reports that
every gradient of a bucket is final (``Tensor.register_post_accumulate_grad_hook``),
that bucket's all-reduce starts (non-blocking) while the backward goes on into
earlier layers. When the last gradient arrives, the step waits for all buckets
and writes the averages back into ``.grad``, so ``optimizer.step()`` needs no change.
"""

from __future__ import annotations

import time

from .. import backend
from ..nn import Module
from ..tensor import is_grad_enabled
from .process_group import group as default_group

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """Parameters whose gradients travel together in one flat array."""

    def __init__(self, params: list, index: int):
        self.params, self.index = params, index
        self.size = sum(p.numel() for p in params)
        self.ready = 0          # gradients final in this backward
        self.flat = None        # the array being reduced: the gradients times n_r, then n_r itself
        self.pending = None     # the all-reduce in flight

    @property
    def nbytes(self) -> int:
        return (self.size + 1) * self.params[0].dtype.itemsize


class DistributedDataParallel(Module):
    """Wrap ``module`` so that every backward leaves the all-ranks average gradient in each ``.grad``.

    Args:
        module: the model (already on its device); its weights and buffers are
            overwritten with rank 0's here, so all ranks start equal.
        group: a :class:`ProcessGroup` (default: the one :func:`init` made).
        bucket_mb: size of one all-reduce message, in megabytes.
        overlap: start a bucket's all-reduce as soon as its gradients are final
            (True), or all of them after the backward (False; to measure the difference).

    Use it as the model: ``loss_fn(ddp(images), labels).backward()``. Its
    ``state_dict`` is the wrapped module's, without a ``module.`` prefix, so a
    checkpoint of a distributed run loads into a plain model and back.

    Attributes (for measuring): ``bytes_per_step`` (what one step reduces),
    ``comm_seconds`` (time the training waited for the all-reduce, summed),
    ``steps``.
    """

    def __init__(self, module: Module, group=None, bucket_mb: float = 1.0, overlap: bool = True):
        super().__init__()
        self.module = module
        self.group = group if group is not None else default_group()
        self.overlap = bool(overlap)
        self._broadcast_state()
        params = [p for p in module.parameters() if p.requires_grad]
        self.buckets = self._make_buckets(params, int(bucket_mb * 2**20))
        self._bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self._names = {id(p): name for name, p in module.named_parameters()}
        self._local_count = 0
        self._launched = 0
        self.comm_seconds, self.steps = 0.0, 0
        self.bytes_per_step = sum(b.nbytes for b in self.buckets)
        if self.group.size > 1:
            for p in params:
                p.register_post_accumulate_grad_hook(self._gradient_ready)

    # ------------------------------------------------------------------ setup
    def _broadcast_state(self) -> None:
        """Rank 0's weights and buffers everywhere: the one time weights are sent."""
        for _, tensor in self.module._state_tensors():
            data = tensor.data if tensor.data.flags.c_contiguous else tensor.data.copy(order="C")  # 0-d stays 0-d
            tensor.data = self.group.broadcast(data, root=0, what="broadcasting rank 0's weights")

    @staticmethod
    def _make_buckets(params: list, capacity: int) -> list:
        """Reverse order (the backward's), cut when a bucket is full or the dtype/device changes."""
        buckets, current, size = [], [], 0
        for p in reversed(params):
            if current and (size + p.data.nbytes > capacity or p.dtype != current[0].dtype
                            or p.device != current[0].device):
                buckets.append(_Bucket(current, len(buckets)))
                current, size = [], 0
            current.append(p)
            size += p.data.nbytes
        if current:
            buckets.append(_Bucket(current, len(buckets)))
        return buckets

    # ------------------------------------------------------------------ the step
    def forward(self, *args, **kwargs):
        if is_grad_enabled() and self.training:
            self._check_last_backward_finished()
            self._local_count = int(args[0].shape[0])   # n_r: this rank's share of the batch
            for bucket in self.buckets:
                bucket.ready = 0
            self._launched = 0
        return self.module(*args, **kwargs)

    def _gradient_ready(self, param) -> None:
        """Called by the autograd engine once ``param.grad`` is final for this backward."""
        bucket = self._bucket_of[id(param)]
        if bucket.ready < 0:
            raise RuntimeError("DistributedDataParallel: a second backward before the next forward; its gradients "
                               "would not be averaged (accumulating gradients over several backwards is not "
                               "supported: use a larger --batch-size)")
        bucket.ready += 1
        if bucket.ready == len(bucket.params) and self.overlap:
            self._launch(bucket)
        for other in self.buckets:   # MPI moves requests on only inside MPI calls: give it a turn
            if other.pending is not None:
                other.pending.test()
        if all(b.ready == len(b.params) for b in self.buckets):
            self._finish()

    def _launch(self, bucket: _Bucket) -> None:
        started = time.perf_counter()
        xp = backend.get_array_module(bucket.params[0].grad.data)
        flat = xp.empty(bucket.size + 1, dtype=bucket.params[0].dtype)
        offset = 0
        for p in bucket.params:
            n = p.numel()
            xp.multiply(p.grad.data.reshape(-1), self._local_count, out=flat[offset:offset + n])
            offset += n
        flat[-1] = self._local_count   # summed, it is the global batch size B
        bucket.flat = flat
        bucket.pending = self.group.iall_reduce(flat, "sum", what=f"all-reduce of gradient bucket {bucket.index}")
        self._launched += 1
        self.comm_seconds += time.perf_counter() - started

    def _finish(self) -> None:
        """Wait for every bucket and write sum(n_r * g_r) / B back into each ``.grad``."""
        started = time.perf_counter()
        for bucket in self.buckets:
            if bucket.pending is None:
                self._launch(bucket)
        for bucket in self.buckets:
            bucket.pending.wait()
            flat, total = bucket.flat, bucket.flat[-1]
            offset = 0
            for p in bucket.params:
                n = p.numel()
                p.grad.data = (flat[offset:offset + n] / total).reshape(p.shape)
                offset += n
            bucket.pending, bucket.flat = None, None
        for bucket in self.buckets:
            bucket.ready = -len(bucket.params)   # done: a further gradient of this backward is an error
        self.comm_seconds += time.perf_counter() - started
        self.steps += 1

    def _check_last_backward_finished(self) -> None:
        started = [b for b in self.buckets if 0 < b.ready < len(b.params)]
        if started:
            missing = [self._names.get(id(p), "?") for b in started for p in b.params if p.grad is None]
            raise RuntimeError(
                "DistributedDataParallel: the last backward did not give every parameter a gradient, so the "
                f"gradients were not averaged (no gradient for: {', '.join(missing) or 'unknown'}); every parameter "
                "that requires grad must take part in the loss, or be frozen (requires_grad=False) before wrapping")

    # ------------------------------------------------------------------ the module it wraps
    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state_dict, strict: bool = True):
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self) -> str:
        return (f"ranks={self.group.size}, buckets={len(self.buckets)}, "
                f"bytes_per_step={self.bytes_per_step:,}, overlap={self.overlap}")
