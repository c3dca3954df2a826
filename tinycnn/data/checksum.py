"""Checksums: is this file (or these bytes) exactly the official release?

Gzip files are checked by their *content* (the decompressed bytes) where we can,
because two gzip files with the same content may differ in their headers
(name, timestamp, compression level): ``content_sha256`` is the one to trust.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

from .errors import ChecksumError, CorruptFileError

__all__ = ["file_digest", "check_digest", "verify_file"]

_CHUNK = 1 << 20  # hash 1 MiB at a time: constant memory for any file size


def file_digest(path, algorithm: str = "sha256", gunzip: bool = False) -> str:
    """Hex digest of a file's bytes (of its decompressed bytes with ``gunzip=True``)."""
    digest = hashlib.new(algorithm)
    opener = gzip.open if gunzip else open
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorruptFileError(f"{path}: not a valid gzip file ({error})") from None
    return digest.hexdigest()


def check_digest(actual: str, expected: str, what, algorithm: str = "sha256") -> None:
    """Raise :class:`ChecksumError` unless ``actual == expected`` (hex, any case)."""
    if actual.lower() != expected.lower():
        raise ChecksumError(
            f"{what}: {algorithm} checksum mismatch: expected {expected.lower()}, got {actual.lower()}. "
            "The file is corrupt, truncated or not the official release; delete it and download it again"
        )


def verify_file(path, *, sha256=None, md5=None, content_sha256=None) -> None:
    """Check every checksum given; raise :class:`ChecksumError` on the first mismatch.

    ``sha256``/``md5`` are of the file as stored; ``content_sha256`` of its gunzipped bytes.
    """
    path = Path(path)
    if sha256:
        check_digest(file_digest(path, "sha256"), sha256, path, "sha256")
    if md5:
        check_digest(file_digest(path, "md5"), md5, path, "md5")
    if content_sha256:
        check_digest(file_digest(path, "sha256", gunzip=True), content_sha256, f"{path} (decompressed)", "sha256")
