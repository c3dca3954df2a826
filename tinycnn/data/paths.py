"""Where data sets live on disk.

A *data directory* holds one folder per data set, as ``../shared/data`` does::

    DATA_DIR/
      mnist/          train-images-idx3-ubyte.gz ...
      fashion-mnist/  train-images-idx3-ubyte.gz ...
      cifar10/        data_batch_1.bin.gz ... (or cifar-10-binary.tar.gz)

The data directory is, in order of precedence,

1. the ``root`` you pass to a data set (``MNIST(root="../shared/data")``),
2. else the ``TINYCNN_DATA`` environment variable,
3. else the user cache, ``$XDG_CACHE_HOME/tinycnn`` (``~/.cache/tinycnn``).

Some sets have extra read-only places where a system package installs them
(Debian's ``dataset-fashion-mnist`` puts Fashion-MNIST in
``/usr/share/datasets/fashion-mnist``); those are searched after the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "default_data_dir", "data_dir", "candidate_dirs", "find_file", "not_found_message"]

ENV_VAR = "TINYCNN_DATA"


def default_data_dir() -> Path:
    """``$TINYCNN_DATA`` if set, else the user cache directory ``~/.cache/tinycnn``."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tinycnn"


def data_dir(root=None) -> Path:
    """The data directory: ``root`` when given, else :func:`default_data_dir`."""
    return Path(root).expanduser() if root is not None else default_data_dir()


def candidate_dirs(folder: str, root=None, system_dirs=()) -> list[Path]:
    """The directories searched, in order, for the set stored in ``folder``.

    ``DATA_DIR/folder`` comes first (it is also where downloads go), then ``DATA_DIR``
    itself (so ``root`` may also point straight at the set's own folder), then the
    system-wide ``system_dirs``.
    """
    base = data_dir(root)
    dirs = [base / folder, base]
    dirs += [Path(d) for d in system_dirs]
    return dirs


def find_file(dirs, names) -> Path | None:
    """The first ``dir/name`` that is a file, trying each dir in turn with every name."""
    for directory in dirs:
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                return path
    return None


def not_found_message(set_name: str, dirs, expected, how_to_get) -> str:
    """The text of a "data set not found" error: where we looked, what for, what to do."""
    searched = "\n".join(f"  {d}" for d in dirs)
    return (
        f"{set_name} not found. Searched:\n{searched}\n"
        f"for the files: {', '.join(expected)}.\n"
        f"To get them: {how_to_get}\n"
        f"(the data directory is the `root` argument, else ${ENV_VAR}, else ~/.cache/tinycnn)"
    )
