"""Helpers for the data tests: write small synthetic files in each official format.

Not a test module (no ``test_`` prefix); imported by test_datasets.py and test_download.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

REAL_DATA = Path(os.environ.get("TINYCNN_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 00 00 08 ndim, big-endian dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_set(folder: Path, n_train=12, n_test=6, gz=True, seed=0):
    """Write the four MNIST-style IDX files; return ({stem: content sha256}, {split: (images, labels)})."""
    rng = np.random.default_rng(seed)
    checksums, arrays = {}, {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            content = idx_bytes(array)
            write(folder / (stem + (".gz" if gz else "")), content, gz)
            checksums[stem] = sha256(content)
        arrays[split] = (images, labels)
    return checksums, arrays


def cifar_records(n: int, seed: int):
    """(bytes of n binary records, images (n, 3, 32, 32), labels (n,))."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = (np.arange(n) + seed) % 10
    records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(n, -1)], axis=1)
    return records.tobytes(), images, labels


BATCHES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]


def make_cifar_batches(n_per_batch=4):
    """{batch name: (record bytes, images, labels)} for the six CIFAR-10 batches."""
    return {name: cifar_records(n_per_batch, seed) for seed, name in enumerate(BATCHES)}


def write_cifar_bins(folder: Path, batches, gz=False):
    for name, (data, _, _) in batches.items():
        write(folder / (f"{name}.bin" + (".gz" if gz else "")), data, gz)


def _add_member(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_cifar_binary_tar(path: Path, batches) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        names = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
        _add_member(tar, "cifar-10-batches-bin/batches.meta.txt", names)
        for name, (data, _, _) in batches.items():
            _add_member(tar, f"cifar-10-batches-bin/{name}.bin", data)
    return path


def write_cifar_python_tar(path: Path, batches) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, (_, images, labels) in batches.items():
            batch = {b"batch_label": name.encode(), b"labels": [int(x) for x in labels],
                     b"data": images.reshape(len(images), -1)}
            _add_member(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
    return path
