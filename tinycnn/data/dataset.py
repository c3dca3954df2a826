"""The common shape of every tinycnn data set: whole arrays in memory.

Image-classification sets here are small enough to hold at once, so a data set
is simply two arrays and the class names:

* ``images``: uint8, (N, C, H, W), NCHW as the models expect (MNIST (N, 1, 28, 28),
  CIFAR-10 (N, 3, 32, 32));
* ``labels``: int64, (N,), values in ``0 .. len(classes) - 1``;
* ``classes``: the class names, index = label.

``dataset[i]`` is ``(image (C, H, W) uint8, label int)``. The :class:`DataLoader`
reads ``images``/``labels`` directly and moves them to the device in one copy.
"""

from __future__ import annotations

import numpy as np

from .. import backend

__all__ = ["ImageDataset", "Subset", "random_split", "stratified_split"]


class ImageDataset:
    """Images (N, C, H, W) uint8, labels (N,) int64, and class names.

    Subclasses (MNIST, CIFAR10, Shapes ...) load or draw their arrays and call
    ``super().__init__``; you can also wrap your own arrays directly::

        ImageDataset(images, labels, classes=("cat", "dog"))
    """

    def __init__(self, images, labels, classes=None):
        # CuPy arrays stay on their GPU (np.asarray would raise); lists and the like become NumPy
        images = images if backend.is_cupy_array(images) else np.asarray(images)
        labels = labels if backend.is_cupy_array(labels) else np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"{type(self).__name__}: images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"{type(self).__name__}: labels must be ({images.shape[0]},) to match images {images.shape}, "
                f"got shape {labels.shape}"
            )
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{type(self).__name__}: labels must be integers, got dtype {labels.dtype}")
        if classes is None:
            classes = tuple(str(i) for i in range(int(labels.max()) + 1 if labels.size else 0))
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = tuple(classes)
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"{type(self).__name__}: labels must lie in 0..{len(self.classes) - 1} "
                f"({len(self.classes)} classes), got {self.labels.min()}..{self.labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        """``(image (C, H, W), label)`` for an int index; arrays for a slice or index array."""
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.images[index], self.labels[index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """How many images each class has, (num_classes,) int64."""
        return np.bincount(self.labels, minlength=len(self.classes))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:] if self.images.ndim == 4 else ("?", "?", "?")
        extra = self.extra_repr()
        return (f"{type(self).__name__}({len(self)} images {c}x{h}x{w}, {len(self.classes)} classes"
                + (f", {extra}" if extra else "") + ")")


class Subset(ImageDataset):
    """The images of ``dataset`` at ``indices`` (arrays copied, so it is a data set of its own)."""

    def __init__(self, dataset: ImageDataset, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < -len(dataset) or indices.max() >= len(dataset)):
            raise IndexError(f"Subset: indices must lie in 0..{len(dataset) - 1}, got {indices.min()}..{indices.max()}")
        self.dataset = dataset
        self.indices = indices
        super().__init__(dataset.images[indices], dataset.labels[indices], dataset.classes)

    def extra_repr(self) -> str:
        return f"of {type(self.dataset).__name__}"


def split_lengths(name: str, n: int, lengths) -> list[int]:
    """Counts summing to ``n`` from counts, or from fractions summing to 1 (floors, then the
    remainder handed out round-robin from the first part, as PyTorch does)."""
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1.0) < 1e-6:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # hand out the remainder round-robin
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(x) != x or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(
            f"{name}: lengths must be non-negative counts summing to len(dataset) = {n} "
            f"(or fractions summing to 1), got {lengths} (sum {sum(lengths)})"
        )
    return [int(x) for x in lengths]


def random_split(dataset: ImageDataset, lengths, seed=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)`` (e.g. ``[55000, 5000]``) or
    fractions summing to 1 (e.g. ``[0.9, 0.1]``; leftovers go to the first parts).
    The same ``seed`` gives the same split; ``seed=None`` draws one from tinycnn's
    generator, so ``tinycnn.manual_seed`` fixes it too.
    """
    n = len(dataset)
    lengths = split_lengths("random_split", n, lengths)
    if seed is None:
        seed = int(backend.get_rng().integers(2**63))
    order = np.random.default_rng(seed).permutation(n)
    ends = np.cumsum(lengths)
    return [Subset(dataset, order[end - length: end]) for length, end in zip(lengths, ends)]


def stratified_split(dataset: ImageDataset, held_out: int, seed=None) -> list[Subset]:
    """``[rest, held_out]``: a random split whose held-out part keeps each class's share.

    Own image folders are often unbalanced (300 cats, 40 dogs); a plain random
    split of 34 images could hold no dog at all. Each class gives its share of
    ``held_out`` (largest remainders rounded up), at least one image when it has two.
    """
    n = len(dataset)
    if not 0 < held_out < n:
        raise ValueError(f"stratified_split: held_out must lie in 1..{n - 1}, got {held_out}")
    rng = np.random.default_rng(seed)
    counts = dataset.class_counts()
    exact = counts * held_out / n
    share = np.floor(exact).astype(np.int64)
    for index in np.argsort(-(exact - share), kind="stable")[: held_out - share.sum()]:
        share[index] += 1
    share = np.where((share == 0) & (counts >= 2), 1, share)
    share = np.minimum(share, np.maximum(counts - 1, 0))  # every class keeps an image to train on
    held, rest = [], []
    for label, take in enumerate(share):
        members = rng.permutation(np.flatnonzero(dataset.labels == label))
        held.append(members[:take])
        rest.append(members[take:])
    return [Subset(dataset, np.sort(np.concatenate(rest))), Subset(dataset, np.sort(np.concatenate(held)))]
