"""The one switch between the floors: the fast floor (default) or the reference floor.

    TINYCNN_FAST=0 python train.py          # the whole engine on the reference floor
    tinycnn.set_fast(False)                 # the same, from Python
    with tinycnn.reference_floor():         # ... for a block only
        loss = model(x)

Every op that has a fast version reads the switch at its one dispatch point, when the op is
called (functional/conv.py: ``if fast.enabled(): return fast.Conv2d.apply(...)``); an op
recorded on one floor runs its backward on that floor.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["enabled", "set_fast", "reference_floor", "fast_floor"]


def _from_environment() -> bool:
    text = os.environ.get("TINYCNN_FAST", "").strip()
    if text not in ("", "0", "1"):
        raise ValueError(f"TINYCNN_FAST must be 1 (the fast floor, the default) or 0 (the reference floor), "
                         f"got {text!r}")
    return text != "0"


_enabled = _from_environment()


def enabled() -> bool:
    """Whether ops run on the fast floor (True by default; ``TINYCNN_FAST=0`` or ``set_fast(False)``: no)."""
    return _enabled


def set_fast(flag: bool) -> None:
    """Run the engine on the fast floor (True) or on the reference floor (False)."""
    global _enabled
    if not isinstance(flag, bool):
        raise TypeError(f"set_fast: expected True or False, got {flag!r}")
    _enabled = flag


@contextlib.contextmanager
def _floor(flag: bool):
    previous = _enabled
    set_fast(flag)
    try:
        yield
    finally:
        set_fast(previous)


def reference_floor():
    """Context manager: the ops inside run on the reference floor (the switch is restored after)."""
    return _floor(False)


def fast_floor():
    """Context manager: the ops inside run on the fast floor (the switch is restored after)."""
    return _floor(True)
