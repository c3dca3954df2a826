"""Reading a PyTorch ``.pt``/``.pth`` state_dict without PyTorch.

Since PyTorch 1.6, ``torch.save(model.state_dict(), "model.pt")`` writes a zip
archive. All its members sit in one top folder (any name, usually the file's stem):

    model/data.pkl          the dict itself, pickled; each tensor is a call
                            _rebuild_tensor_v2(storage, offset, size, stride, ...)
    model/data/0, data/1 .. raw bytes of each storage, one member per storage
    model/byteorder         "little" or "big" (absent in old files: little)
    model/version, ...      format records we do not need

A tensor is a *view* of a storage: element ``[i, j]`` of a tensor with storage
offset ``o`` and strides ``(s0, s1)`` is storage element ``o + i*s0 + j*s1``.
A transposed tensor or a slice is saved as its whole storage plus that view, and
several tensors may share one storage.

Pickle is a small program: it can name any importable function (``os.system``)
and call it. So we unpickle with :class:`RestrictedUnpickler`, whose
``find_class`` knows only the handful of names a state_dict uses and maps each
to our own NumPy code; every other name is refused before anything runs.
Storages come through ``persistent_load`` and are read from the zip members.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
import zlib

import numpy as np

from .errors import WeightsFileError

__all__ = ["read_torch_zip", "RestrictedUnpickler"]

# PyTorch's typed storage names -> element dtype (little-endian form). bfloat16 has
# no NumPy dtype: its raw 16-bit patterns are read as uint16 and widened to float32.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class StorageType:
    """What ``torch.FloatStorage`` and friends unpickle to: just a name and a dtype."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]
        self.is_bfloat16 = name == "BFloat16Storage"

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class Storage:
    """One storage: a flat (numel,) array of elements read from ``data/<key>``."""

    def __init__(self, array: np.ndarray, storage_type: StorageType, key: str):
        self.array = array
        self.type = storage_type
        self.key = key


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: put the 16 bits back on top, zeros below."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WeightsFileError(f"{what} must be an int, the file has {value!r}")
    return value


def rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> np.ndarray:
    """Our stand-in for ``torch._utils._rebuild_tensor_v2``: the view as a fresh array.

    ``size``/``stride`` are tuples in elements. Bounds are checked before the
    strided view is made, since a crafted file could otherwise make NumPy read
    memory outside the storage.
    """
    if not isinstance(storage, Storage):
        raise WeightsFileError(f"a tensor must be built on a storage, the file gives {type(storage).__name__}")
    offset = _int(storage_offset, "a storage offset")
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        raise WeightsFileError(f"a tensor needs a size and a stride of equal length, got {size!r} and {stride!r}")
    shape = tuple(_int(n, "a tensor size") for n in size)
    steps = tuple(_int(s, "a tensor stride") for s in stride)
    if any(n < 0 for n in shape) or any(s < 0 for s in steps) or offset < 0:
        raise WeightsFileError(f"negative size, stride or offset in a tensor: size {size}, stride {stride}, offset {offset}")
    flat = storage.array
    if 0 in shape:
        values = np.empty(shape, dtype=flat.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(shape, steps))
        if last >= flat.size:
            raise WeightsFileError(
                f"a tensor of size {shape}, stride {steps} at offset {offset} reaches element {last} "
                f"of storage {storage.key!r}, which has only {flat.size} elements (damaged file?)"
            )
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape, strides=tuple(s * flat.itemsize for s in steps), writeable=False
        )
        values = np.array(view, order="C")  # a compact C-order copy that owns its memory
    values = values.astype(values.dtype.newbyteorder("="), copy=False)  # native byte order
    return bfloat16_to_float32(values) if storage.type.is_bfloat16 else values


def rebuild_tensor_v1(storage, storage_offset, size, stride) -> np.ndarray:
    """``torch._utils._rebuild_tensor`` (files from before PyTorch 1.x's v2)."""
    return rebuild_tensor(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state) -> np.ndarray:
    """``torch._utils._rebuild_parameter``: a Parameter is its data here."""
    return data


# Every global a state_dict pickle may name, and what we give it instead.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor_v1,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds tensors as NumPy arrays and refuses every other global.

    ``storage_reader(key, storage_type, numel) -> flat array`` reads one storage.
    """

    def __init__(self, file, storage_reader, source: str):
        super().__init__(file)
        self.storage_reader = storage_reader
        self.source = source
        self.storages: dict[str, Storage] = {}  # shared storages are read once

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise WeightsFileError(
                f"{self.source}: refusing to load global '{module}.{name}' (a PyTorch state_dict only needs "
                "tensors and OrderedDict); this file may be malicious, or it holds more than a state_dict "
                "(if you trust it, re-save only the weights in PyTorch: "
                "torch.save(model.state_dict(), 'weights.pt'))"
            ) from None

    def persistent_load(self, pid):
        # PyTorch writes ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightsFileError(f"{self.source}: unknown persistent record {pid!r:.80} (expected a storage)")
        _, storage_type, key, _location, numel = pid  # location ('cpu', 'cuda:0') does not matter here
        if not isinstance(storage_type, StorageType) or not isinstance(key, str):
            raise WeightsFileError(f"{self.source}: malformed storage record {pid!r:.80}")
        if key not in self.storages:
            array = self.storage_reader(key, storage_type, _int(numel, "a storage size"))
            self.storages[key] = Storage(array, storage_type, key)
        return self.storages[key]


def _archive_prefix(archive: zipfile.ZipFile, source: str) -> str:
    """The top folder holding ``data.pkl`` (PyTorch names it after the file's stem)."""
    names = archive.namelist()
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        if any(n.endswith(".npy") for n in names):
            raise WeightsFileError(f"{source} is a NumPy .npz archive, not a PyTorch file "
                                   "(a tinycnn checkpoint? read it with tinycnn.load)")
        raise WeightsFileError(
            f"{source} is a zip file but not a PyTorch checkpoint: expected one '<folder>/data.pkl' "
            f"member, found {len(pickles)} among {len(names)} members"
        )
    prefix = pickles[0][: -len("data.pkl")]
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise WeightsFileError(
            f"{source} is a TorchScript model (torch.jit.save), not a state_dict; in PyTorch run "
            "torch.save(torch.jit.load(path).state_dict(), 'weights.pt') and load that"
        )
    return prefix


def read_torch_zip(file, source: str):
    """Unpickle a PyTorch zip archive into plain Python objects with NumPy arrays for tensors.

    ``file`` is a path or a binary file object; ``source`` names it in errors.
    Returns what was saved (for ``torch.save(model.state_dict())``, an OrderedDict
    of name -> array).
    """
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as error:
        raise WeightsFileError(f"{source} is damaged or truncated (not a complete zip archive: {error})") from None
    with archive:
        prefix = _archive_prefix(archive, source)
        names = set(archive.namelist())
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsFileError(f"{source}: byteorder record says {byteorder!r}, expected 'little' or 'big'")

        def read_storage(key: str, storage_type: StorageType, numel: int) -> np.ndarray:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise WeightsFileError(f"{source}: storage {key!r} has no member {member!r} (damaged file?)")
            raw = archive.read(member)
            dtype = storage_type.dtype if byteorder == "little" else storage_type.dtype.newbyteorder(">")
            if numel < 0 or len(raw) < numel * dtype.itemsize:
                raise WeightsFileError(
                    f"{source}: storage {key!r} should hold {numel} {storage_type} elements "
                    f"({numel * dtype.itemsize} bytes), its member has {len(raw)} bytes (truncated?)"
                )
            return np.frombuffer(raw, dtype=dtype, count=numel)

        try:
            data = archive.read(prefix + "data.pkl")
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise WeightsFileError(f"{source} is damaged or truncated ({error})") from None
        unpickler = RestrictedUnpickler(io.BytesIO(data), read_storage, source)
        try:
            return unpickler.load()
        except WeightsFileError:
            raise
        except (zipfile.BadZipFile, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError,
                IndexError, KeyError, AttributeError) as error:
            raise WeightsFileError(f"{source}: cannot read its data.pkl ({type(error).__name__}: {error})") from None

