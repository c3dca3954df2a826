"""``load_state_dict_file``: PyTorch weights in, without PyTorch.

    import tinycnn
    model = tinycnn.models.lenet5()
    model.load_state_dict(tinycnn.load_state_dict_file("lenet5.pt"))

tinycnn names every parameter as PyTorch names the same module tree
(``features.0.weight``, ``bn1.running_mean``), so a state_dict saved by PyTorch
for a twin model loads key for key. Two file formats are read, told apart by
their first bytes (not their suffix, since ``.pt``, ``.pth`` and ``.bin`` are all
used for the same thing):

* a PyTorch zip archive (``torch.save`` since PyTorch 1.6): see ``torch_zip.py``;
  it is unpickled with a restricted unpickler, so it cannot run code;
* a ``.safetensors`` file: see ``safetensors.py``.

A checkpoint that wraps the weights, such as ``{"epoch": 9, "state_dict": {...},
"optimizer": {...}}``, is unwrapped when exactly one of the keys ``state_dict``,
``model_state_dict`` or ``model`` holds a dict of tensors; anything else is
refused with the keys that were found. (Its other entries must still be plain
data: an optimizer's state is, a pickled Python object is not.)
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import WeightsFileError
from .safetensors import looks_like_safetensors, read_safetensors
from .torch_zip import read_torch_zip

__all__ = ["load_state_dict_file", "WeightsFileError"]

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_ZIP_MAGIC = b"PK\x03\x04"


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def _unwrap(obj, source: str) -> OrderedDict:
    """The dict of tensors inside what was saved (see the module docstring)."""
    if _is_state_dict(obj):
        return OrderedDict(obj)
    if not isinstance(obj, dict):
        raise WeightsFileError(f"{source} holds a {type(obj).__name__}; expected a state_dict (a dict of name -> tensor)")
    found = [key for key in WRAPPER_KEYS if _is_state_dict(obj.get(key)) and obj[key]]
    if len(found) == 1:
        return OrderedDict(obj[found[0]])
    keys = ", ".join(repr(k) for k in list(obj)[:12]) + (", ..." if len(obj) > 12 else "")
    if len(found) > 1:
        raise WeightsFileError(
            f"{source} holds several dicts of tensors ({', '.join(map(repr, found))}); it is not clear "
            "which are the model's weights: save just one in PyTorch with torch.save(model.state_dict(), path)"
        )
    not_tensors = [k for k, v in obj.items() if not isinstance(v, np.ndarray)][:5]
    raise WeightsFileError(
        f"{source} holds a dict with keys {keys}, but it is not a state_dict (these are not tensors: "
        f"{', '.join(map(repr, not_tensors))}) and none of {', '.join(map(repr, WRAPPER_KEYS))} holds one"
    )


def load_state_dict_file(path) -> "OrderedDict[str, np.ndarray]":
    """Read the weights in a PyTorch ``.pt``/``.pth`` (zip) or ``.safetensors`` file.

    Returns an OrderedDict of name -> NumPy array, in the file's order, ready for
    ``model.load_state_dict(...)``. Arrays keep their dtype (float32, float16,
    float64, int64, ...), except bfloat16, which has no NumPy dtype and becomes
    float32 (exactly: bfloat16 is a float32 with a shorter mantissa).

    Raises FileNotFoundError, or WeightsFileError saying what was expected and
    what the file holds: a legacy (pre-1.6) or TorchScript file, a damaged or
    truncated one, or a pickle naming anything beyond tensors and OrderedDict.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.is_dir():
        raise WeightsFileError(f"{path} is a folder; expected a .pt, .pth or .safetensors file")
    source = str(path)
    with open(path, "rb") as file:
        head = file.read(16)
    size = path.stat().st_size
    if head.startswith(_ZIP_MAGIC):
        return _unwrap(read_torch_zip(path, source), source)
    if looks_like_safetensors(head, size):
        return OrderedDict(read_safetensors(path.read_bytes(), source))
    if head[:1] == b"\x80":  # a bare pickle: torch.save before 1.6, or _use_new_zipfile_serialization=False
        raise WeightsFileError(
            f"{source} is not a PyTorch zip file (legacy pre-1.6 format?); tinycnn reads the zip format only. "
            "Re-save it with a recent PyTorch: torch.save(torch.load(path), 'weights.pt')"
        )
    if size == 0:
        raise WeightsFileError(f"{source} is empty; expected a .pt, .pth or .safetensors file")
    raise WeightsFileError(
        f"{source} is neither a PyTorch zip file nor a safetensors file (it starts with bytes {head[:8]!r})"
    )
