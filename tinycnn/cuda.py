"""``tinycnn.cuda``: the two questions PyTorch scripts ask about GPUs.

    device = tinycnn.device("cuda" if tinycnn.cuda.is_available() else "cpu")

CuPy is imported only when asked (see :mod:`tinycnn.backend`), so these never fail:
without CuPy or a GPU the answers are False and 0.
"""

from __future__ import annotations

from . import backend

__all__ = ["is_available", "device_count"]


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA GPU."""
    return backend.cuda_is_available()


def device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 without CuPy)."""
    try:
        cupy = backend._import_cupy()
    except backend.DeviceError:
        return 0
    return backend._cuda_device_count(cupy)
