"""The errors the data package raises, so callers can catch exactly what went wrong.

* :class:`DatasetNotFoundError`: no files where we looked (says where, which files,
  and how to get them);
* :class:`CorruptFileError`: a file is there but is not what it should be
  (truncated, wrong magic number, wrong size, bad gzip stream);
* :class:`ChecksumError`: a file is well-formed but its bytes are not the official
  release (a kind of corrupt file);
* :class:`DownloadError`: every mirror failed (says why, per URL).
"""

from __future__ import annotations

__all__ = ["DatasetNotFoundError", "CorruptFileError", "ChecksumError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are not in any of the directories searched."""


class CorruptFileError(ValueError):
    """A data file exists but its contents are malformed."""


class ChecksumError(CorruptFileError):
    """A file's checksum differs from the one the official release has."""


class DownloadError(OSError):
    """A file could not be fetched from any of its mirrors."""
