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

from ..env import flag

__all__ = ["enabled", "set_fast", "reference_floor", "fast_floor"]


_enabled = None  # None until first asked: then TINYCNN_FAST decides (read late, so a bad value is a one-line error)


def enabled() -> bool:
    """Whether ops run on the fast floor (True by default; ``TINYCNN_FAST=0`` or ``set_fast(False)``: no)."""
    global _enabled
    if _enabled is None:
        _enabled = flag("TINYCNN_FAST", True, "1: the fast floor, the default; 0: the reference floor")
    return _enabled


def set_fast(flag: bool) -> None:
    """Run the engine on the fast floor (True) or on the reference floor (False)."""
    global _enabled
    if not isinstance(flag, bool):
        raise TypeError(f"set_fast: expected True or False, got {flag!r}")
    _enabled = flag


@contextlib.contextmanager
def _floor(on: bool):
    previous = enabled()
    set_fast(on)
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
