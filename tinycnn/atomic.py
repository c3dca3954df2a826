"""Writing a file so that it is either complete or not there at all.

A checkpoint, a plot or a download is first written to a temporary file in the
same directory, checked if there is something to check, and only then renamed
onto its final name. ``os.replace`` is atomic within one file system, so a crash,
a full disk or Ctrl-C mid-write never leaves a half-written file in place of a
good one; on failure the temporary file is removed.

Only ``kill -9`` (or a power cut) mid-write can leave the temporary file
behind: :func:`remove_stale_temporaries` clears those, and a run calls it before
it writes again. An error while writing names the file it was writing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "remove_stale_temporaries", "temporary_pattern"]


def temporary_pattern(path) -> str:
    """The glob pattern of ``path``'s temporary files: ``.NAME.*.tmp`` beside it."""
    return f".{Path(path).name}.*.tmp"


def remove_stale_temporaries(path) -> list:
    """Delete temporary files of ``path`` left by writes that were killed; returns what was removed.

    Call it only when no other process can be writing ``path`` (a run holds its folder's lock).
    """
    path = Path(path)
    removed = []
    for stale in path.parent.glob(temporary_pattern(path)):
        try:
            stale.unlink()
            removed.append(stale)
        except FileNotFoundError:
            pass
    return removed


def _default_permissions() -> int:
    """rw for whoever the umask allows, as ``open(path, "w")`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, write, check=None) -> Path:
    """Call ``write(binary_file)`` on a temporary file, then ``check(temp_path)``, then rename to ``path``.

    ``check`` (optional) raises if the written file is bad (a checksum, a size);
    the rename happens only if ``write`` and ``check`` both return normally.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if check is not None:
            check(Path(temp_name))
        os.chmod(temp_name, _default_permissions())  # mkstemp makes it private (0600)
        os.replace(temp_name, path)
    except BaseException as error:  # also Ctrl-C
        if os.path.exists(temp_name):
            os.remove(temp_name)
        if isinstance(error, OSError) and error.errno is not None:
            # "[Errno 28] No space left on device" alone does not say which file
            raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None
        raise
    return path
