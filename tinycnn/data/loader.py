"""DataLoader: batches of a data set, on the device, in a seeded order.

Two paths, chosen at construction (``loader.whole_set`` says which):

* **Whole set** (tinycnn's built-in sets, :class:`ImageDataset` and its ``Subset``,
  an ``(images, labels)`` pair of arrays, and a :class:`map_style.Subset` of those): the
  loader copies the *whole* data set (uint8, so CIFAR-10 is 150 MB) to the device once;
  each batch is then an index into arrays already there, and batch transforms run there
  too. No per-sample Python, no per-batch host -> device copy.
* **Per item** (any other object with ``__getitem__`` and ``__len__``, PyTorch's
  map-style ``Dataset``, or any data set with ``collate_fn=``): every batch calls
  ``dataset[i]`` once per sample, collates the samples (stacking, by
  :func:`default_collate`, or your ``collate_fn``) and moves the batch to the device.
  ``__getitem__`` then runs for every sample of every epoch, so it may do anything
  (read a file, augment at random); the price is Python per sample (see README,
  "Coming from PyTorch", for the measured cost on MNIST).

The whole-set path is taken only when a sample is nothing more than
``(images[i], labels[i])``: a class that overrides ``__getitem__`` gets the per-item
path, so what its ``__getitem__`` does is never skipped.

Order: with ``shuffle=True``, epoch ``e`` visits the samples in the permutation
drawn from ``(seed, e)``, so the order of any epoch can be recomputed, and a run
resumed from ``state_dict()`` sees the very same batches it would have seen.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import map_style
from .collate import default_collate
from .dataset import ImageDataset
from .transforms import ToFloat

__all__ = ["DataLoader"]


def _as_array(values):
    """NumPy arrays and CuPy arrays stay as they are (np.asarray on a CuPy array raises); lists become NumPy."""
    return values if backend.is_cupy_array(values) else np.asarray(values)


def _whole_set_arrays(dataset):
    """(images, labels) arrays when every sample of ``dataset`` is just ``(images[i], labels[i])``, else None.

    NumPy arrays, or CuPy arrays for a data set already on a GPU (left there).
    """
    if isinstance(dataset, tuple) and len(dataset) == 2:
        return _as_array(dataset[0]), _as_array(dataset[1])
    if isinstance(dataset, map_style.Subset):
        arrays = _whole_set_arrays(dataset.dataset)
        if arrays is None:
            return None
        index = backend.to_device(np.asarray(dataset.indices, dtype=np.int64), backend.device_of(arrays[0]))
        return arrays[0][index], arrays[1][index]
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        getitem = getattr(type(dataset), "__getitem__", None)
        if getitem is None or getitem is ImageDataset.__getitem__:
            return _as_array(dataset.images), _as_array(dataset.labels)
    return None


def _is_map_style(dataset) -> bool:
    return hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")


def _to_device(batch, device: str):
    """The batch with every Tensor in it on ``device`` (tuples, lists and dicts walked)."""
    if isinstance(batch, Tensor):
        return batch if batch.device == device else Tensor.from_op(backend.to_device(batch.data, device), None)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(part, device) for part in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


class DataLoader:
    """Iterate over batches as tinycnn Tensors on ``device``.

    Args:
        dataset: a built-in data set (anything with ``.images`` (N, C, H, W) and
            ``.labels`` (N,) and no ``__getitem__`` of its own), an ``(images, labels)``
            pair of arrays: the whole-set path; or any map-style data set (an object
            with ``__getitem__`` and ``__len__``): the per-item path (module docstring).
        batch_size: samples per batch; the last one may be smaller unless ``drop_last``.
            (64 by default; PyTorch's default is 1.)
        shuffle: visit the samples in a new seeded order every epoch.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        device: ``"cpu"`` or ``"cuda[:N]"``: where batches come out (and, on the
            whole-set path, where the data set lives).
        seed: fixes the order of every epoch; ``None`` draws one from ``generator`` if
            given, else from tinycnn's generator (so ``tinycnn.manual_seed`` fixes it).
        transform: whole-set path only: applied to each batch, a raw array (N, C, H, W)
            -> array (see :mod:`tinycnn.data.transforms`); without one, images become
            float32 in [0, 1]. A transform that leaves uint8 gets the same conversion after
            it. (A map-style data set transforms its samples in ``__getitem__``.)
        collate_fn: per-item path: a list of samples -> a batch (default
            :func:`default_collate`: stack). Giving one takes the per-item path.
        generator: a :class:`tinycnn.Generator` the order's seed is drawn from.
        num_workers, pin_memory: accepted so PyTorch code runs; samples are read in this
            process (``num_workers`` > 0 does not start workers) and no memory is pinned.

    Yields on the whole-set path ``images`` float32 (B, C, H, W) and ``labels`` int64 (B,);
    on the per-item path what the collation makes (a tuple of Tensors for tuple samples).
    """

    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 device="cpu", seed=None, transform=None, *, collate_fn=None, generator=None,
                 num_workers: int = 0, pin_memory: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give seed or generator, not both")
        arrays = None if collate_fn is not None else _whole_set_arrays(dataset)
        if arrays is None and not _is_map_style(dataset):
            raise TypeError(
                f"DataLoader: expected a data set with __getitem__ and __len__ (a map-style Dataset), an ImageDataset "
                f"or an (images, labels) pair of arrays, got {type(dataset).__name__}"
            )
        if arrays is None and transform is not None:
            raise ValueError(
                "DataLoader: transform= is the whole-set path's batch transform; this data set is read sample by "
                f"sample ({type(dataset).__name__}.__getitem__), so transform each sample there (or in collate_fn)"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.device = backend.parse_device(device)
        self.transform = transform
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        if seed is None:
            seed = generator.draw_seed() if generator is not None else int(backend.get_rng().integers(2**63))
        self.seed = int(seed)
        self.epoch = 0  # the epoch the next iteration will run
        self.whole_set = arrays is not None
        if not self.whole_set:
            self._num_samples = len(dataset)
            return
        images, labels = arrays
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"DataLoader: expected images (N, C, H, W) and labels (N,), got {images.shape} and {labels.shape}"
            )
        # The one host -> device copy (none if the arrays are there already): everything
        # after this happens on the device.
        xp = backend.get_array_module(images)
        self.images = backend.to_device(xp.ascontiguousarray(images), self.device)
        self.labels = backend.to_device(labels.astype(np.int64), self.device)
        self._num_samples = len(self.labels)
        self._to_float = ToFloat()
        self.shard = (0, 1)   # (rank, world size): this process takes that share of every batch (set_shard)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = self._num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        return self._num_samples

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices (N,) epoch ``epoch`` visits, in order (a NumPy array)."""
        n = self._num_samples
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
        if not self.whole_set:
            yield from self._per_item_batches(epoch)
            return
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

    def _per_item_batches(self, epoch: int):
        """One epoch of the per-item path: ``dataset[i]`` per sample, collated, moved to the device."""
        n, size = self._num_samples, self.batch_size
        stop = n - n % size if self.drop_last else n
        order = self.order(epoch)
        for start in range(0, stop, size):
            samples = [self.dataset[int(i)] for i in order[start:start + size]]
            yield _to_device(self.collate_fn(samples), self.device)

    def __repr__(self) -> str:
        path = "whole set" if self.whole_set else "per item"
        return (f"DataLoader({self._num_samples} samples, {path}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, device={self.device!r}, transform={self.transform!r})")
