"""MNIST (handwritten digits) and Fashion-MNIST (clothes): 60,000 + 10,000 grey 28x28.

Both ship as four IDX files (see :mod:`tinycnn.data.idx`), usually gzipped::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

in ``DATA_DIR/mnist/`` and ``DATA_DIR/fashion-mnist/`` (see :mod:`tinycnn.data.paths`).
Files may also be stored gunzipped (same names without ``.gz``).

Every file is checked: IDX header and size always, and the sha256 of its
(decompressed) content against the official release unless ``verify=False``.
"""

from __future__ import annotations

import hashlib

from .checksum import check_digest
from .dataset import ImageDataset
from .download import download_file
from .errors import CorruptFileError, DatasetNotFoundError
from .idx import parse_idx, read_bytes
from .paths import candidate_dirs, data_dir, find_file, not_found_message

__all__ = ["MNIST", "FashionMNIST", "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD"]

# Mean and std of the training pixels scaled to [0, 1]: the usual Normalize constants.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)


class _IdxDataset(ImageDataset):
    """MNIST-style set: four IDX files in ``DATA_DIR/<folder>``. Subclasses fill in the table."""

    name = ""                 # for messages, e.g. "MNIST"
    folder = ""               # its folder in the data directory, e.g. "mnist"
    CLASSES: tuple = ()
    mirrors: tuple = ()       # base URLs, tried in order; a file's URL is base + file name
    system_dirs: tuple = ()   # read-only places a system package installs the files
    content_sha256: dict = {}  # file stem -> sha256 of its decompressed content
    SPLITS = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
    }
    MEAN: tuple = ()
    STD: tuple = ()

    def __init__(self, root=None, train: bool = True, download: bool = False, verify: bool = True):
        """
        Args:
            root: the data directory (holding ``mnist/`` ...), or the set's own folder;
                default ``$TINYCNN_DATA``, else ``~/.cache/tinycnn``.
            train: the 60,000 training images (True) or the 10,000 test images.
            download: fetch missing files from the official mirrors into
                ``root/<folder>`` (verified, atomically renamed into place).
            verify: check each file's content sha256 against the official release.
        """
        self.train = bool(train)
        self.split = "train" if train else "test"
        images_stem, labels_stem, count = self.SPLITS[self.split]
        dirs = candidate_dirs(self.folder, root, self.system_dirs)
        paths = {}
        for stem in (images_stem, labels_stem):
            path = find_file(dirs, (stem + ".gz", stem))
            if path is None and download:
                path = download_file([base + stem + ".gz" for base in self.mirrors],
                                     data_dir(root) / self.folder / (stem + ".gz"),
                                     content_sha256=self.content_sha256[stem])
            if path is None:
                raise DatasetNotFoundError(not_found_message(
                    f"{self.name} ({self.split})", dirs, [stem + ".gz" for stem in (images_stem, labels_stem)] + ["(or the same without .gz)"],
                    self._how_to_get(root)))
            paths[stem] = path
        images = self._read(paths[images_stem], images_stem, ndim=3, verify=verify)
        labels = self._read(paths[labels_stem], labels_stem, ndim=1, verify=verify)
        if len(images) != len(labels):
            raise CorruptFileError(
                f"{self.name}: {paths[images_stem]} has {len(images)} images but "
                f"{paths[labels_stem]} has {len(labels)} labels"
            )
        if labels.size and labels.max() >= len(self.CLASSES):
            raise CorruptFileError(
                f"{self.name}: {paths[labels_stem]} has label {labels.max()}, expected 0..{len(self.CLASSES) - 1}"
            )
        self.root = paths[images_stem].parent
        super().__init__(images[:, None, :, :], labels, self.CLASSES)  # (N, 28, 28) -> (N, 1, 28, 28)

    def _read(self, path, stem, ndim, verify):
        data = read_bytes(path)
        if verify:
            check_digest(hashlib.sha256(data).hexdigest(), self.content_sha256[stem], f"{path} (content)")
        return parse_idx(data, what=str(path), ndim=ndim)

    def _how_to_get(self, root) -> str:
        return (f"pass download=True (or --download on the command line) to fetch them into "
                f"{data_dir(root) / self.folder}, or copy the files there")

    def extra_repr(self) -> str:
        return f"split={self.split!r}, root='{self.root}'"


class MNIST(_IdxDataset):
    """MNIST handwritten digits: images (N, 1, 28, 28) uint8, labels 0-9.

    >>> train = MNIST(root="../shared/data")             # doctest: +SKIP
    >>> train.images.shape, train.labels[:5]              # doctest: +SKIP
    ((60000, 1, 28, 28), array([5, 0, 4, 1, 9]))
    """

    name = "MNIST"
    folder = "mnist"
    CLASSES = tuple(str(digit) for digit in range(10))
    # yann.lecun.com now refuses downloads; these mirror the official files.
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    content_sha256 = {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
    MEAN, STD = MNIST_MEAN, MNIST_STD


class FashionMNIST(_IdxDataset):
    """Fashion-MNIST (Zalando): images (N, 1, 28, 28) uint8 of 10 kinds of clothing.

    Also found where Debian's ``dataset-fashion-mnist`` package installs it.
    """

    name = "Fashion-MNIST"
    folder = "fashion-mnist"
    CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    content_sha256 = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
    MEAN, STD = FASHION_MNIST_MEAN, FASHION_MNIST_STD

    def _how_to_get(self, root) -> str:
        return super()._how_to_get(root) + "; on Debian/Ubuntu: apt-get install dataset-fashion-mnist"
