"""Small helpers shared by the layers (argument normalisation)."""

from __future__ import annotations


def _pair(value, name: str = "argument") -> tuple:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``: the (height, width) form of a 2-D setting."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value), int(value))
