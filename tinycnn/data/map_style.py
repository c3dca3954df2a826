"""Map-style datasets, PyTorch's way: an object with ``__getitem__(i)`` and ``__len__()``.

Every PyTorch course teaches data loading with a class like::

    class Squares(Dataset):
        def __init__(self, n):
            self.x = np.random.rand(n, 1).astype(np.float32)
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            return self.x[i], self.x[i] ** 2        # one sample: a tuple of arrays/tensors/numbers

The :class:`~tinycnn.data.DataLoader` calls ``__getitem__`` once per sample and stacks
the samples into batches (:func:`~tinycnn.data.collate.default_collate`). The built-in
sets (:class:`~tinycnn.data.ImageDataset`: MNIST, CIFAR-10 ...) skip that and hand the
loader their whole arrays; see the loader's docstring for when which path is taken.

Here: :class:`Dataset` (the base class), :class:`TensorDataset` (tensors indexed along
their first dimension), :class:`Subset` (a view of some indices) and
:func:`random_split`, all with PyTorch's names and semantics.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from .dataset import split_lengths

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


class Dataset:
    """Base class of a map-style dataset: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(self, index) returning one sample")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__(self)")


class TensorDataset(Dataset):
    """Tensors (or arrays) with the same first dimension N; sample ``i`` is ``(t[i] for t in tensors)``.

    ``TensorDataset(features (N, D), targets (N,))``: each sample is ``(features[i], targets[i])``.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got sizes {sizes}")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor.from_op(_as_array(t), None) for t in tensors)

    def __getitem__(self, index):
        # the raw rows, wrapped: indexing through the autograd op would record a graph per sample
        return tuple(Tensor.from_op(t.data[index], None) for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


def _as_array(values):
    return values if isinstance(values, np.ndarray) or backend.is_cupy_array(values) else np.asarray(values)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (a view: nothing is copied)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: indices must lie in 0..{n - 1}, got {bad[0]}")

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths.

    ``lengths``: counts summing to ``len(dataset)``, or fractions summing to 1 (leftovers go
    to the first parts round-robin, as PyTorch does). ``generator`` (a
    :class:`tinycnn.Generator`) fixes the split; without one, tinycnn's global generator
    draws it (so ``tinycnn.manual_seed`` fixes it too).
    """
    counts = split_lengths("random_split", len(dataset), lengths)
    seed = generator.draw_seed() if generator is not None else int(backend.get_rng().integers(2**63))
    order = np.random.default_rng(seed).permutation(len(dataset))
    ends = np.cumsum(counts)
    return [Subset(dataset, order[end - count: end]) for count, end in zip(counts, ends)]
