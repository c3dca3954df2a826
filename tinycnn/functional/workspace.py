"""Scratch arrays that the CPU convolution reuses from chunk to chunk and step to step.

The convolution (conv.py) runs im2col + GEMM on a few images at a time, tens of chunks
per layer and pass. Every chunk needs the same arrays: the zero-padded images, the
column matrix, the GEMM's output. Allocating them afresh each time costs more than it
seems: the padded array must be zeroed (a full write), and building the strided window
view (``as_strided``) takes Python time on every chunk. A ``Workspace`` allocates them
once per chunk shape and keeps them:

* ``padded`` (C, Hp + 1, n, Wp) is zeroed once. Afterwards only its interior is ever
  written (``interior``), so the border stays zero: padding costs nothing.
* ``windows`` is the (C, KH, KW, OH, n, RW) view of ``padded`` whose copy is im2col.
* ``cols`` (C*KH*KW, OH*n*RW) receives that copy.

On a GPU the batch is one chunk and CuPy's memory pool already recycles allocations,
so workspaces are for NumPy only.

A workspace's arrays are overwritten by the next chunk with the same key: whatever is
computed from them must be used (or copied) before then. Workspaces are per thread, so
two threads running models at once never share one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

__all__ = ["Workspace", "workspace"]

# How many workspaces a thread keeps (least recently used dropped first). ResNet-20
# uses about a dozen keys (a layer shape x full and last chunk x role); a few MB each.
MAX_WORKSPACES = 48

_local = threading.local()


class Workspace:
    """The reusable im2col arrays for one chunk geometry and dtype (see the module docstring)."""

    def __init__(self, geometry, dtype):
        from .im2col import _windows  # im2col.py imports this module

        n, c, h, w = geometry.x_shape
        ph, pw = geometry.padding
        kh, kw = geometry.kernel
        self.padded = np.zeros(geometry.padded_shape, dtype=dtype)       # (C, Hp + 1, n, Wp)
        self.interior = self.padded[:, ph:ph + h, :, pw:pw + w]            # (C, H, n, W) view
        self.windows = _windows(self.padded, geometry)                    # (C, KH, KW, OH, n, RW) view
        self.cols_by_window = np.empty(self.windows.shape, dtype=dtype)  # (C, KH, KW, OH, n, RW)
        self.cols = self.cols_by_window.reshape(c * kh * kw, -1)          # the same memory as a matrix


def workspace(geometry, dtype, role: str) -> Workspace:
    """This thread's workspace for ``geometry`` and ``dtype``, made on first use.

    ``role`` keeps apart workspaces that are alive at the same time with the same
    geometry: the backward pass holds the input's columns ("input") and the padded
    output gradient ("grad") together.
    """
    cache = getattr(_local, "workspaces", None)
    if cache is None:
        cache = _local.workspaces = OrderedDict()
    key = (geometry, np.dtype(dtype).str, role)
    found = cache.get(key)
    if found is None:
        found = cache[key] = Workspace(geometry, dtype)
        if len(cache) > MAX_WORKSPACES:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


def clear() -> None:
    """Drop this thread's workspaces (their memory goes back to the allocator)."""
    _local.workspaces = OrderedDict()
