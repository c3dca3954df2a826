"""``tinycnn.device``: PyTorch's device object, as a string tinycnn already understands.

PyTorch code writes ``device = torch.device("cuda" if torch.cuda.is_available() else "cpu")``
and passes it to ``model.to(device)`` and ``tensor.to(device)``. Everywhere in tinycnn a
device is a string (``"cpu"``, ``"cuda:0"``), so a :class:`device` *is* that string (a
``str`` subclass, already in canonical form), with PyTorch's ``.type`` and ``.index``.
"""

from __future__ import annotations

from .backend import parse_device

__all__ = ["device"]


class device(str):  # noqa: N801  (PyTorch's lower-case name)
    """``device("cpu")``, ``device("cuda")`` (GPU 0), ``device("cuda:1")`` or ``device("cuda", 1)``.

    Equal to its canonical string: ``device("cuda") == "cuda:0"``.
    """

    def __new__(cls, type, index=None):  # noqa: A002  (PyTorch's argument name)
        if isinstance(type, device):
            return type
        if index is not None:
            if not isinstance(type, str) or ":" in type:
                raise ValueError(f"device: give an index only with a bare type ('cuda', 1), got {type!r} and {index!r}")
            type = f"{type}:{int(index)}"
        return super().__new__(cls, parse_device(type))

    @property
    def type(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
        return self.split(":")[0]

    @property
    def index(self):
        """The GPU number, or None for the CPU."""
        return int(self.split(":")[1]) if ":" in self else None

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"
