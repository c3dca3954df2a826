"""DataLoader: batches of a whole in-memory data set, on the device, in a seeded order.

The fast path for GPUs: the loader copies the *whole* data set (uint8, so CIFAR-10
is 150 MB) to the device once, at construction; each batch is then an index into
arrays already there, and transforms run there too. No per-batch host -> device copy.

Order: with ``shuffle=True``, epoch ``e`` visits the samples in the permutation
drawn from ``(seed, e)``, so the order of any epoch can be recomputed, and a run
resumed from ``state_dict()`` sees the very same batches it would have seen.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from .transforms import ToFloat

__all__ = ["DataLoader"]


def _as_array(values):
    """NumPy arrays and CuPy arrays stay as they are (np.asarray on a CuPy array raises); lists become NumPy."""
    return values if backend.is_cupy_array(values) else np.asarray(values)


def _arrays_of(dataset):
    """(images, labels) arrays of a data set, an (images, labels) pair, or any indexable of pairs.

    NumPy arrays, or CuPy arrays for a data set already on a GPU (left there).
    """
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        return _as_array(dataset.images), _as_array(dataset.labels)
    if isinstance(dataset, tuple) and len(dataset) == 2:
        return _as_array(dataset[0]), _as_array(dataset[1])
    pairs = [dataset[i] for i in range(len(dataset))]   # generic fallback: gather once
    # an item's label may be a CuPy scalar array: to_numpy copies each (np.asarray would raise)
    return np.stack([backend.to_numpy(p[0]) for p in pairs]), backend.to_numpy([p[1] for p in pairs])


class DataLoader:
    """Iterate over ``(images, labels)`` batches as tinycnn Tensors on ``device``.

    Args:
        dataset: an :class:`ImageDataset` (anything with ``.images`` (N, C, H, W) and
            ``.labels`` (N,)), or an ``(images, labels)`` pair of arrays.
        batch_size: samples per batch; the last one may be smaller unless ``drop_last``.
        shuffle: visit the samples in a new seeded order every epoch.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        device: ``"cpu"`` or ``"cuda[:N]"``: where the data set lives and batches come out.
        seed: fixes the order of every epoch; ``None`` draws one from tinycnn's
            generator (so ``tinycnn.manual_seed`` fixes it).
        transform: applied to each batch, a raw array (N, C, H, W) -> array (see
            :mod:`tinycnn.data.transforms`); without one, images become float32 in
            [0, 1]. A transform that leaves uint8 gets the same conversion after it.

    Yields ``images`` float32 (B, C, H, W) and ``labels`` int64 (B,), B = batch size.
    """

    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 device="cpu", seed=None, transform=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        images, labels = _arrays_of(dataset)
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"DataLoader: expected images (N, C, H, W) and labels (N,), got {images.shape} and {labels.shape}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.device = backend.parse_device(device)
        self.transform = transform
        self.seed = int(backend.get_rng().integers(2**63)) if seed is None else int(seed)
        self.epoch = 0  # the epoch the next iteration will run
        # The one host -> device copy (none if the arrays are there already): everything
        # after this happens on the device.
        xp = backend.get_array_module(images)
        self.images = backend.to_device(xp.ascontiguousarray(images), self.device)
        self.labels = backend.to_device(labels.astype(np.int64), self.device)
        self._to_float = ToFloat()
        self.shard = (0, 1)   # (rank, world size): this process takes that share of every batch (set_shard)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices (N,) epoch ``epoch`` visits, in order (a NumPy array)."""
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run epoch ``epoch`` (its order; later ones follow)."""
        if epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def set_shard(self, rank: int, world_size: int) -> None:
        """Yield only share ``rank`` of ``world_size`` of every batch (data parallelism).

        Batch b is still the slice of epoch e's (seed, e) permutation that one process
        would see; it is cut into ``world_size`` contiguous parts, near-equal, and this
        loader yields part ``rank``. Together the ranks see every batch, so every epoch
        once, whatever their number. A rank whose part of a (last, small) batch is
        empty skips it.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"DataLoader.set_shard: expected 0 <= rank < world_size, got rank {rank} of {world_size}")
        self.shard = (int(rank), int(world_size))

    def share(self, batch_size: int) -> tuple:
        """(start, stop) of this loader's part of a batch of ``batch_size`` samples."""
        rank, world = self.shard
        return batch_size * rank // world, batch_size * (rank + 1) // world

    def state_dict(self) -> dict:
        """What a checkpoint needs to resume the same sequence of batches."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(state["epoch"])

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1   # counted at the start, so breaking out early still moves on to a new order
        n, size = len(self.labels), self.batch_size
        end = n - n % size if self.drop_last else n
        order = backend.to_device(self.order(epoch), self.device) if self.shuffle else None
        for start in range(0, end, size):
            first, stop = self.share(min(size, end - start))   # (0, batch size) unless sharded
            if first == stop:
                continue  # this rank's part of a small last batch is empty
            index = order[start + first:start + stop] if self.shuffle else slice(start + first, start + stop)
            images, labels = self.images[index], self.labels[index]
            if self.transform is not None:
                with backend.device_scope(images):   # the transform allocates on the data's GPU
                    images = self.transform(images)
            if images.dtype == np.uint8:
                images = self._to_float(images)
            yield Tensor.from_op(images, None), Tensor.from_op(labels, None)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.labels)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, device={self.device!r}, transform={self.transform!r})")
