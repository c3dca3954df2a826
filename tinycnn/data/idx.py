"""The IDX file format of MNIST and Fashion-MNIST, read with strict checks.

An IDX file is a tiny header followed by raw numbers::

    bytes 0-1   0x00 0x00            (magic)
    byte  2     0x08                 element type (0x08 = unsigned byte)
    byte  3     number of dimensions (3 for images, 1 for labels)
    4 bytes per dimension            its size, big-endian uint32 (e.g. 60000, 28, 28)
    then prod(dims) elements, row-major

Image files have magic number 2051 (0x00000803), label files 2049 (0x00000801).
A file that is gzipped (it starts with 0x1f 0x8b) is decompressed first.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import CorruptFileError

__all__ = ["read_bytes", "parse_idx", "read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_bytes(path) -> bytes:
    """The bytes of a file, gunzipped if it is a gzip file (whatever its name)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorruptFileError(f"{path}: gzip stream is damaged or truncated ({error})") from None


def parse_idx(data: bytes, what="IDX data", ndim: int | None = None) -> np.ndarray:
    """The uint8 array stored in IDX bytes ``data``; checks magic, dims and size.

    ``ndim`` (3 for images, 1 for labels) is what the caller expects; the array
    comes back read-only-free (a copy), shape as the header says, e.g. (N, 28, 28).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CorruptFileError(
            f"{what}: not an IDX file: expected magic bytes 00 00 at the start, got {data[:4].hex(' ') or 'an empty file'}"
        )
    if data[2] != _UBYTE:
        raise CorruptFileError(f"{what}: IDX element type 0x{data[2]:02x}, expected 0x08 (unsigned byte)")
    file_ndim = data[3]
    if ndim is not None and file_ndim != ndim:
        magic = int.from_bytes(data[:4], "big")
        expected_magic = 0x800 + ndim
        raise CorruptFileError(
            f"{what}: IDX magic number {magic} ({file_ndim}-d), expected {expected_magic} ({ndim}-d): "
            "wrong file (images and labels swapped?)"
        )
    header_size = 4 + 4 * file_ndim
    if len(data) < header_size:
        raise CorruptFileError(f"{what}: truncated IDX header ({len(data)} bytes, expected {header_size})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(file_ndim))
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "has trailing bytes"
        raise CorruptFileError(
            f"{what}: file {problem}: header says shape {shape}, i.e. {expected_size} bytes, but it has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a uint8 array; see :func:`parse_idx`."""
    return parse_idx(read_bytes(path), what=str(path), ndim=ndim)
