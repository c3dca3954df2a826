"""CIFAR-10: 50,000 + 10,000 colour images 32x32 in 10 classes (Krizhevsky 2009).

The official *binary* version stores six files of records ``1 label byte + 3072
pixel bytes`` (1024 red, then 1024 green, then 1024 blue, each 32x32 row-major),
10,000 records per file, no header::

    data_batch_1.bin ... data_batch_5.bin   (training)     test_batch.bin   (test)
    batches.meta.txt                        (class names, one per line)

In ``DATA_DIR/cifar10/`` this loader accepts, in this order of preference:

1. the ``.bin`` files, plain or gzipped (``data_batch_1.bin.gz``), directly or in
   ``cifar-10-batches-bin/`` (the official tarball extracted);
2. the official tarball ``cifar-10-binary.tar.gz`` itself (read without extracting);
3. the Python version ``cifar-10-python.tar.gz`` (pickled batches, read with an
   unpickler that only allows NumPy arrays, so it cannot run code).

Binary batches are checked: size always, content sha256 unless ``verify=False``.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .checksum import check_digest
from .dataset import ImageDataset
from .download import download_file
from .errors import CorruptFileError, DatasetNotFoundError
from .idx import read_bytes
from .paths import candidate_dirs, data_dir, find_file, not_found_message

__all__ = ["CIFAR10", "CIFAR10_MEAN", "CIFAR10_STD"]

# Per-channel (R, G, B) mean and std of the 50,000 training images scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

_RECORD = 1 + 3 * 32 * 32      # label byte + R, G, B planes
_PER_BATCH = 10000
_BINARY_TAR = "cifar-10-binary.tar.gz"
_PYTHON_TAR = "cifar-10-python.tar.gz"
_BINARY_TAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"


class CIFAR10(ImageDataset):
    """CIFAR-10: images (N, 3, 32, 32) uint8 (RGB), labels 0-9.

    >>> test = CIFAR10(root="../shared/data", train=False)   # doctest: +SKIP
    >>> test.classes[test.labels[0]]                          # doctest: +SKIP
    'cat'
    """

    name = "CIFAR-10"
    folder = "cifar10"
    CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    mirrors = ("https://www.cs.toronto.edu/~kriz/",)
    MEAN, STD = CIFAR10_MEAN, CIFAR10_STD
    SPLITS = {
        "train": tuple(f"data_batch_{k}" for k in range(1, 6)),
        "test": ("test_batch",),
    }
    content_sha256 = {  # of each uncompressed .bin (see shared/data/cifar10/SOURCE.md)
        "data_batch_1": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
        "data_batch_2": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
        "data_batch_3": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
        "data_batch_4": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
        "data_batch_5": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
        "test_batch": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
    }

    def __init__(self, root=None, train: bool = True, download: bool = False, verify: bool = True):
        """
        Args:
            root: the data directory (holding ``cifar10/``), or the set's own folder;
                default ``$TINYCNN_DATA``, else ``~/.cache/tinycnn``.
            train: the 50,000 training images (True) or the 10,000 test images.
            download: fetch ``cifar-10-binary.tar.gz`` (163 MiB) into ``root/cifar10``
                if no copy is found (md5-verified, atomically renamed into place).
            verify: check each binary batch's content sha256.
        """
        self.train = bool(train)
        self.split = "train" if train else "test"
        self.verify = verify
        batch_names = self.SPLITS[self.split]
        dirs = candidate_dirs(self.folder, root)
        found = self._locate(dirs, batch_names)
        if found is None and download:
            download_file([base + _BINARY_TAR for base in self.mirrors], data_dir(root) / self.folder / _BINARY_TAR,
                          md5=_BINARY_TAR_MD5)
            found = self._locate(dirs, batch_names)
        if found is None:
            raise DatasetNotFoundError(not_found_message(
                f"{self.name} ({self.split})", dirs,
                [f"{b}.bin[.gz]" for b in batch_names] + [f"or {_BINARY_TAR}", f"or {_PYTHON_TAR}"],
                f"pass download=True (or --download on the command line) to fetch {_BINARY_TAR} into "
                f"{data_dir(root) / self.folder}, or copy the files there"))
        kind, where = found
        if kind == "bin":
            batches = [self._parse_binary(read_bytes(path), name, str(path)) for name, path in zip(batch_names, where)]
        elif kind == "binary-tar":
            batches = self._read_binary_tar(where, batch_names)
        else:
            batches = self._read_python_tar(where, batch_names)
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        self.root = where[0].parent if kind == "bin" else where.parent
        super().__init__(images, labels, self._class_names(self.root))

    # ------------------------------------------------------------------ locating
    @staticmethod
    def _locate(dirs, batch_names):
        """("bin", [paths]) or ("binary-tar", path) or ("python-tar", path), or None."""
        for directory in dirs:
            subdirs = (directory, directory / "cifar-10-batches-bin")
            paths = [find_file(subdirs, (f"{b}.bin", f"{b}.bin.gz")) for b in batch_names]
            if all(paths):
                return "bin", paths
            if (directory / _BINARY_TAR).is_file():
                return "binary-tar", directory / _BINARY_TAR
            if (directory / _PYTHON_TAR).is_file():
                return "python-tar", directory / _PYTHON_TAR
        return None

    def _class_names(self, directory: Path) -> tuple:
        meta = find_file([directory, directory / "cifar-10-batches-bin"], ("batches.meta.txt",))
        if meta is None:
            return self.CLASSES
        names = tuple(line.strip() for line in meta.read_text().splitlines() if line.strip())
        if len(names) != 10:
            raise CorruptFileError(f"{meta}: expected 10 class names, one per line, got {len(names)}")
        return names

    # ------------------------------------------------------------------ parsing
    def _parse_binary(self, data: bytes, batch_name: str, what: str):
        """One binary batch -> images (10000, 3, 32, 32) uint8, labels (10000,) int64."""
        if len(data) % _RECORD != 0 or len(data) == 0:
            raise CorruptFileError(
                f"{what}: {len(data)} bytes is not a whole number of {_RECORD}-byte CIFAR records "
                f"(a full batch is {_RECORD * _PER_BATCH} bytes): truncated or not a CIFAR-10 binary batch"
            )
        if self.verify:
            check_digest(hashlib.sha256(data).hexdigest(), self.content_sha256[batch_name], f"{what} (content)")
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
        labels = records[:, 0].astype(np.int64)
        if labels.max() > 9:
            raise CorruptFileError(f"{what}: label byte {labels.max()} found, expected 0..9: not a CIFAR-10 batch")
        return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels

    def _read_binary_tar(self, path: Path, batch_names):
        members = {}
        with _open_tar(path) as tar:
            for member in tar:
                stem = Path(member.name).name.removesuffix(".bin")
                if member.isfile() and member.name.endswith(".bin") and stem in batch_names:
                    members[stem] = _read_member(tar, member, path)
        missing = [b for b in batch_names if b not in members]
        if missing:
            raise CorruptFileError(f"{path}: no member {missing[0]}.bin in the archive (expected cifar-10-batches-bin/*.bin)")
        return [self._parse_binary(members[b], b, f"{path}:{b}.bin") for b in batch_names]

    def _read_python_tar(self, path: Path, batch_names):
        batches = {}
        with _open_tar(path) as tar:
            for member in tar:
                stem = Path(member.name).name
                if member.isfile() and stem in batch_names:
                    batches[stem] = _parse_python_batch(_read_member(tar, member, path), f"{path}:{member.name}")
        missing = [b for b in batch_names if b not in batches]
        if missing:
            raise CorruptFileError(f"{path}: no member {missing[0]} in the archive (expected cifar-10-batches-py/*)")
        return [batches[b] for b in batch_names]

    def extra_repr(self) -> str:
        return f"split={self.split!r}, root='{self.root}'"


def _open_tar(path: Path):
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise CorruptFileError(f"{path}: not a readable tar archive ({error})") from None


def _read_member(tar, member, path) -> bytes:
    try:
        return tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise CorruptFileError(f"{path}: archive is damaged or truncated at {member.name} ({error})") from None


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays, lists, dicts, strings, numbers, and refuses everything else.

    A pickle may name any function to call while loading; allowing only the few
    that rebuild arrays makes loading a downloaded pickle safe.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are allowed")


def _parse_python_batch(data: bytes, what: str):
    """One pickled batch {b"data": (N, 3072) uint8, b"labels": [N ints]} -> (images, labels)."""
    try:
        batch = _ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], dtype=np.int64)
    except Exception as error:  # any malformed pickle: say so rather than return garbage
        raise CorruptFileError(f"{what}: not a CIFAR-10 Python batch ({type(error).__name__}: {error})") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or labels.shape != (pixels.shape[0],):
        raise CorruptFileError(f"{what}: expected data (N, 3072) and N labels, got {pixels.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CorruptFileError(f"{what}: labels must lie in 0..9, got {labels.min()}..{labels.max()}")
    return pixels.reshape(-1, 3, 32, 32), labels
