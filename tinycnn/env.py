"""The environment variables tinycnn reads, each checked the same way.

=========================  =====================================================  =========
variable                   what it sets                                           values
=========================  =====================================================  =========
``TINYCNN_FAST``           the floor: fast (1, the default) or reference (0)      0, 1
``TINYCNN_NUM_THREADS``    CPU worker threads (default: the usable cores)         1, 2, ...
``TINYCNN_FUSED_KERNELS``  fused CuPy kernels on the GPU (1) or their references  0, 1
``TINYCNN_NO_MALLOC_TUNING``  1: the command leaves glibc's allocator alone       0, 1
``TINYCNN_DATA``           the data directory (default ``~/.cache/tinycnn``)      a path
``TINYCNN_DEBUG``          1: the command shows tracebacks, not one-line errors   0, 1
``TINYCNN_DIST_TIMEOUT``   seconds a rank waits for the others (default 300)      1, 2, ...
=========================  =====================================================  =========

(The MPI launcher's own variables, such as ``PMI_SIZE``, are read as the launcher
sets them, in :mod:`tinycnn.distributed`.)

An empty or unset variable takes the default. Any other value that is not one of
the accepted ones is a :class:`SettingError` (a ``ValueError``), one line that
names the variable, what it accepts and what it holds: a typo must not silently
change the engine.
"""

from __future__ import annotations

import os

__all__ = ["SettingError", "flag", "whole_number"]


class SettingError(ValueError):
    """An environment variable holds a value tinycnn does not accept."""


def flag(name: str, default: bool, meaning: str = "") -> bool:
    """``name`` as a yes/no setting: ``1`` or ``0`` (``true``/``false``, ``yes``/``no`` too); unset: ``default``."""
    text = os.environ.get(name, "").strip().lower()
    if text == "":
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"environment variable {name} must be 1 or 0{f' ({meaning})' if meaning else ''}, "
                       f"got {os.environ[name]!r}")


def whole_number(name: str, minimum: int = 1) -> int | None:
    """``name`` as a whole number of at least ``minimum``; unset or empty: None."""
    text = os.environ.get(name, "").strip()
    if text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise SettingError(f"environment variable {name} must be a whole number of at least {minimum}, "
                           f"got {os.environ[name]!r}")
    return value
