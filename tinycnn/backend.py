"""Array modules per device: NumPy on ``"cpu"``, CuPy on ``"cuda"``.

Every op in tinycnn is written once against an *array module* ``xp``: the same
code calls ``xp.exp``, ``xp.matmul`` ... and runs on NumPy or on CuPy depending on
where its arrays live (the DeZero trick)::

    xp = get_array_module(x)      # numpy for a numpy array, cupy for a cupy array
    y = xp.maximum(x, 0)

CuPy is imported lazily, only when a CUDA device is asked for or a CuPy array
is seen, so ``import tinycnn`` never needs it.

Random numbers come from generators owned here (one NumPy ``Generator`` for the
CPU, one CuPy generator per GPU), so ``manual_seed(n)`` makes a whole run
reproducible.
"""

from __future__ import annotations

import os

import contextlib
import re

import numpy as np

__all__ = [
    "usable_cores",
    "DeviceError",
    "parse_device",
    "array_module",
    "get_array_module",
    "is_cupy_array",
    "device_of",
    "to_device",
    "to_numpy",
    "cuda_is_available",
    "manual_seed",
    "initial_seed",
    "get_rng",
    "get_rng_state",
    "set_rng_state",
    "scatter_add",
    "device_scope",
    "start_epoch",
]


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


_DEVICE_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def parse_device(device) -> str:
    """Canonical name of a device: ``"cpu"`` or ``"cuda:N"``.

    Accepts ``"cpu"``, ``"cuda"`` (GPU 0), ``"cuda:N"``, or ``None`` (the CPU).
    """
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {type(device).__name__} {device!r}")
    match = _DEVICE_PATTERN.match(device.strip().lower())
    if match is None:
        raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    kind, index = match.groups()
    if kind == "cpu":
        if index is not None:
            raise ValueError(f"unknown device {device!r}: the CPU has no index, use 'cpu'")
        return "cpu"
    return f"cuda:{int(index or 0)}"


# --------------------------------------------------------------------------- CuPy
_cupy = None


def _import_cupy():
    """Import CuPy, or explain exactly what is missing and how to get it."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as error:
        raise DeviceError(
            "device 'cuda' needs CuPy, which is not installed "
            f"({error}). Install it with: pip install 'tinycnn[cuda12]' "
            "(CUDA 12) or pip install 'tinycnn[cuda13]' (CUDA 13)"
        ) from None
    _cupy = cupy
    return cupy


def _cuda_device_count(cupy) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # CUDA driver missing, no GPU, broken install
        return 0


def usable_cores() -> int:
    """How many CPU cores this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy = _import_cupy()
    except DeviceError:
        return False
    return _cuda_device_count(cupy) > 0


def _cuda_device(device: str):
    """The ``cupy.cuda.Device`` for ``"cuda:N"``, after checking it exists."""
    cupy = _import_cupy()
    count = _cuda_device_count(cupy)
    index = int(device.split(":")[1])
    if count == 0:
        raise DeviceError(
            f"device {device!r}: CuPy is installed but no CUDA GPU is visible "
            "(check the NVIDIA driver with `nvidia-smi`, and CUDA_VISIBLE_DEVICES)"
        )
    if index >= count:
        raise DeviceError(f"device {device!r}: only {count} CUDA GPU(s) visible, indices 0..{count - 1}")
    return cupy.cuda.Device(index)


# --------------------------------------------------------------------------- modules
def array_module(device):
    """The array module for a device: ``numpy`` for "cpu", ``cupy`` for "cuda[:N]"."""
    device = parse_device(device)
    if device == "cpu":
        return np
    _cuda_device(device)
    return _cupy


def is_cupy_array(array) -> bool:
    """Whether ``array`` is a CuPy array (checked by its type's module: CuPy is not imported to say "no")."""
    return type(array).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """``cupy`` if any of ``arrays`` is a CuPy array, else ``numpy``."""
    for array in arrays:
        if is_cupy_array(array):
            return _import_cupy()
    return np


def device_of(array) -> str:
    """``"cpu"`` for NumPy data (and Python scalars), ``"cuda:N"`` for CuPy arrays."""
    if is_cupy_array(array):
        return f"cuda:{array.device.id}"
    return "cpu"


def to_device(array, device):
    """A copy of ``array`` on ``device`` (the array itself when already there)."""
    device = parse_device(device)
    if device == "cpu":
        return to_numpy(array)
    cuda_device = _cuda_device(device)
    if is_cupy_array(array):
        if array.device.id == cuda_device.id:
            return array
        with cuda_device:
            return _cupy.copy(array)  # GPU to GPU (cupy.asarray may hand back the array where it is)
    with cuda_device:
        return _cupy.asarray(array)


def to_numpy(array):
    """A NumPy array holding ``array``'s values (copied from the GPU when needed).

    A list or tuple may hold CuPy arrays (a list of per-step losses, say): each is copied.
    """
    if is_cupy_array(array):
        return array.get()
    if isinstance(array, (list, tuple)) and any(is_cupy_array(a) for a in array):
        return np.asarray([to_numpy(a) for a in array])
    return np.asarray(array)


def device_scope(*arrays):
    """A context that makes the GPU holding the first CuPy array among ``arrays`` current.

    CuPy allocates every new array, and runs every kernel, on the *current* device, not on
    the device of the operands: without this, an op on ``cuda:1`` data would compute on
    GPU 0. A ``cupy.ndarray``'s ``.device`` is a ``cupy.cuda.Device``, itself such a context.
    NumPy data (and numbers): a context that does nothing.
    """
    for array in arrays:
        if is_cupy_array(array):
            return array.device
    return contextlib.nullcontext()


def scatter_add(target, indices, values):
    """``target[indices] += values`` with repeated indices adding up (in place).

    ``target[indices] += values`` alone would add a repeated index's values only once.
    ``add.at`` is the unbuffered form, in NumPy and in CuPy (>= 12, atomic adds on the
    GPU; it replaces the deprecated ``cupyx.scatter_add``).
    """
    get_array_module(target).add.at(target, indices, values)
    return target


# --------------------------------------------------------------------------- randomness
# The CPU draws from one NumPy generator, whose state a checkpoint saves and restores exactly.
# A GPU's generator (CuPy's XORWOW) has no state one can read back, so a resumed run could
# not continue its stream. Instead each GPU's generator is derived afresh at every epoch from
# (seed, device, epoch): a run resumed at epoch k draws on the GPU exactly what an
# uninterrupted run drew in epoch k. (Unseeded runs draw fresh entropy; they repeat nothing.)
_seed: int | None = None
_numpy_rng = np.random.default_rng()
_cupy_rngs: dict = {}   # GPU index -> its generator for the current epoch
_epoch = 0


def manual_seed(seed: int) -> None:
    """Seed every random source tinycnn uses (CPU generator and every GPU's)."""
    global _seed, _numpy_rng, _epoch
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _seed = int(seed)
    _numpy_rng = np.random.default_rng(_seed)
    _epoch = 0
    _cupy_rngs.clear()  # re-created from (seed, device, epoch) on first use


def initial_seed() -> int | None:
    """The seed given to the last ``manual_seed`` call (None if never seeded)."""
    return _seed


def start_epoch(epoch: int) -> None:
    """Derive every GPU's generator anew for ``epoch`` (train.fit calls it before each epoch).

    The CPU generator is left alone: its state is saved with a checkpoint.
    """
    global _epoch
    _epoch = int(epoch)
    _cupy_rngs.clear()


def device_seed(device_index: int, epoch: int | None = None) -> int | None:
    """The seed of GPU ``device_index``'s generator in ``epoch`` (default: the current one);
    None when tinycnn was never seeded."""
    if _seed is None:
        return None
    entropy = (_seed, int(device_index), _epoch if epoch is None else int(epoch))
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def get_rng(xp=np, where=None):
    """The generator to draw from for arrays of module ``xp``.

    NumPy: a ``numpy.random.Generator``. CuPy: the ``cupy.random.Generator`` of one GPU,
    seeded from (seed, GPU, epoch): the GPU of ``where`` (an array or a device name such as
    ``"cuda:1"``), or the current GPU when ``where`` is None.
    """
    if xp is np:
        return _numpy_rng
    if where is None:
        index = xp.cuda.Device().id
    elif isinstance(where, str):
        index = int(parse_device(where).split(":")[1])
    else:
        index = where.device.id
    if index not in _cupy_rngs:
        with xp.cuda.Device(index):   # the generator's state lives on that GPU
            _cupy_rngs[index] = xp.random.default_rng(device_seed(index))
    return _cupy_rngs[index]


def get_rng_state() -> dict:
    """What a checkpoint needs to continue the random streams (a JSON-able dict): the seed,
    the CPU generator's state, and the epoch the GPU generators were derived for."""
    return {"seed": _seed, "numpy": _numpy_rng.bit_generator.state, "epoch": _epoch}


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    global _seed, _epoch
    _seed = state.get("seed")
    _numpy_rng.bit_generator.state = state["numpy"]
    _epoch = int(state.get("epoch", 0))
    _cupy_rngs.clear()
