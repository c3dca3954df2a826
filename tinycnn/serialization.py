"""Saving and loading checkpoints as one ``.npz`` file.

``tinycnn.save(obj, path)`` takes a nested structure of dicts and lists whose
leaves are arrays (NumPy or CuPy), Tensors, numbers, strings, booleans or None,
such as ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``.
Arrays go into the archive as ordinary ``.npy`` members (so ``numpy.load`` can
read them too); everything else goes into one JSON member, ``__tinycnn__.json``,
which also records where each array belongs. No pickle is involved, so loading a
file cannot run code. That JSON is strict: a nan or infinite number is stored as
``{"__float__": "nan"}`` and comes back as the same float.

The file is written to a temporary name in the same directory and renamed
only when complete (:mod:`tinycnn.atomic`), so an interrupted save never
replaces a good checkpoint.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import backend
from .atomic import atomic_write
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError", "atomic_write"]

FORMAT = "tinycnn-checkpoint"
VERSION = 1
_META = "__tinycnn__"


class CheckpointError(ValueError):
    """A file is not a readable tinycnn checkpoint, or does not fit what loads it."""


def _split(obj, arrays: dict, where: str):
    """Replace arrays by ``{"__array__": key}`` and collect them into ``arrays``."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        key = f"a{len(arrays)}"
        arrays[key] = backend.to_numpy(obj)
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"save: dictionary keys must be str or int, got {type(k).__name__} at {where}")
        return {
            "__dict__": [[k, _split(v, arrays, f"{where}.{k}")] for k, v in obj.items()],
            "ordered": isinstance(obj, OrderedDict),
        }
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_split(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}  # 'nan', 'inf', '-inf': strict JSON has no such numbers
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__} at {where}; use arrays, numbers, strings, lists and dicts")


def _join(node, arrays):
    if isinstance(node, dict):
        if "__array__" in node:
            return arrays[node["__array__"]]
        if "__float__" in node:
            return float(node["__float__"])
        if "__dict__" in node:
            pairs = [(k, _join(v, arrays)) for k, v in node["__dict__"]]
            return OrderedDict(pairs) if node.get("ordered") else dict(pairs)
        if "__list__" in node:
            items = [_join(v, arrays) for v in node["__list__"]]
            return tuple(items) if node.get("tuple") else items
    return node


def save(obj, path) -> Path:
    """Write ``obj`` (nested dicts/lists of arrays and plain values) to ``path`` atomically.

    The suffix ``.npz`` is added when missing, as ``numpy.savez`` does.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict = {}
    tree = _split(obj, arrays, "checkpoint")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, allow_nan=False)
    arrays[_META] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda file: np.savez(file, **arrays))


def _is_pytorch_zip(path: Path) -> bool:
    """True for a file written by PyTorch's torch.save (a zip holding ``<name>/data.pkl``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load(path, map_location=None, weights_only=True):
    """Read a checkpoint written by :func:`save`; arrays come back as NumPy arrays.

    ``load("model.pt")`` reads ``model.pt.npz`` when it exists, the file
    ``save(obj, "model.pt")`` wrote, so PyTorch's save/load pair works with its own file
    names; a state_dict file written by PyTorch itself is read by
    :func:`tinycnn.io.load_state_dict_file` (without PyTorch, without pickle). ``map_location`` and
    ``weights_only`` are accepted for PyTorch code: arrays always load on the CPU (a
    module's ``load_state_dict`` moves them to its device) and a checkpoint never holds
    code (no pickle), so loading is always "weights only".
    """
    path = Path(path)
    if path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")   # where save(obj, path) wrote
    elif _is_pytorch_zip(path):
        from .io import load_state_dict_file        # a state_dict saved by PyTorch itself (read without pickle)

        return load_state_dict_file(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    with open(path, "rb") as file:
        start = file.read(16)
    if not start.startswith(b"PK"):  # not a zip: np.load would try it as a pickle and talk about allow_pickle
        raise CheckpointError(f"{path} is not a tinycnn checkpoint: a checkpoint is an .npz (zip) archive, this file "
                              f"starts with {start!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META not in archive.files:
                raise CheckpointError(f"{path} is an .npz file but not a tinycnn checkpoint (no {_META} entry)")
            meta = json.loads(archive[_META].tobytes().decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != _META}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is damaged or not a tinycnn checkpoint ({type(error).__name__}: {error})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinycnn checkpoint (format {meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer tinycnn (format version {meta['version']} > {VERSION})")
    return _join(meta["tree"], arrays)
