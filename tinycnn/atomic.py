"""Writing a file so that it is either complete or not there at all.

A checkpoint, a plot or a download is first written to a temporary file in the
same directory, checked if there is something to check, and only then renamed
onto its final name. ``os.replace`` is atomic within one file system, so a crash,
a full disk or Ctrl-C mid-write never leaves a half-written file in place of a
good one; on failure the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if check is not None:
            check(Path(temp_name))
        os.chmod(temp_name, _default_permissions())  # mkstemp makes it private (0600)
        os.replace(temp_name, path)
    except BaseException:  # also Ctrl-C
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
    return path
