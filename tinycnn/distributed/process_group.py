"""The ranks of this run: who am I, how many are we, and the collectives between us.

``init()`` joins the processes that ``mpiexec -n N`` started (rank 0 .. N-1). A
script that was not launched by MPI gets a world of one, so the same script
runs alone too. The group then answers

* ``rank()``, ``world_size()``: this process's number and how many there are;
* ``all_reduce(array, op)``: every rank ends with the sum (max, min) of all ranks' arrays;
* ``broadcast(array, root)``: every rank ends with ``root``'s array.

Arrays in host memory travel over MPI; CuPy arrays over NCCL when the group was
made for a GPU run (``init(device="cuda")``), else through the host over MPI.
"""

from __future__ import annotations

import os

from .. import backend
from ..env import whole_number
from .errors import DistributedError
from .mpi import MpiCommunicator, SingleProcess

__all__ = ["ProcessGroup", "init", "is_initialized", "group", "rank", "world_size", "local_rank", "all_reduce",
           "broadcast", "launched_size", "mpi_library"]

# what each common launcher puts in the environment of the processes it starts
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_size() -> int:
    """How many processes the MPI launcher started (1 when none did), read from its environment."""
    for name in _LAUNCHER_SIZE:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def mpi_library() -> str | None:
    """The MPI library's name and version, or None when mpi4py is not installed."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.Get_library_version().strip().splitlines()[0]


class ProcessGroup:
    """All ranks of the run: ``mpi`` (always; the world of one without MPI) and ``nccl`` (GPU runs only).

    Attributes: ``rank``, ``size``, ``local_rank``, ``local_size``, ``device``
    (this rank's device: ``cpu`` or the ``cuda:K`` picked from the local rank).
    """

    def __init__(self, mpi, nccl=None, device: str = "cpu"):
        self.mpi, self.nccl, self.device = mpi, nccl, device
        self.rank, self.size = mpi.rank, mpi.size
        self.local_rank, self.local_size = mpi.local_rank, mpi.local_size
        self.timeout = mpi.timeout

    @property
    def backend_name(self) -> str:
        return "nccl" if self.nccl is not None else self.mpi.kind

    def _for(self, array):
        return self.nccl if self.nccl is not None and backend.is_cupy_array(array) else self.mpi

    def iall_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        return self._for(array).iall_reduce(array, op, what)

    def all_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        return self._for(array).all_reduce(array, op, what)

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        return self._for(array).broadcast(array, root, what)

    def all_gather_bytes(self, payload: bytes, what: str = "all-gather") -> list:
        return self.mpi.all_gather_bytes(payload, what)

    def barrier(self, what: str = "barrier") -> None:
        self.mpi.barrier(what)

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)

    def describe(self) -> str:
        return f"rank {self.rank} of {self.size} ({self.backend_name}, {self.device})"


_group: ProcessGroup | None = None


def init(device: str = "cpu", timeout: float | None = None) -> ProcessGroup:
    """Join the ranks ``mpiexec`` started (a world of one if it did not) and return the group.

    ``device="cuda"`` gives each rank the GPU of its local rank (``cuda:K``, K =
    local rank modulo the GPUs this machine has) and NCCL between them. On the
    CPU, each rank takes its share of this machine's cores for its worker
    threads, unless ``TINYCNN_NUM_THREADS`` says otherwise. ``timeout`` (seconds,
    default ``TINYCNN_DIST_TIMEOUT`` or 300) bounds every wait for the other ranks.
    Calling it again returns the same group.
    """
    global _group
    if _group is not None:
        return _group
    timeout = float(timeout if timeout is not None else whole_number("TINYCNN_DIST_TIMEOUT", minimum=1) or 300)
    try:
        from mpi4py import MPI  # noqa: F401  (imported here: initialising MPI only when asked to)
        mpi = MpiCommunicator(timeout=timeout)
    except ImportError:
        if launched_size() > 1:
            raise DistributedError(f"started by an MPI launcher as one of {launched_size()} processes, but mpi4py is "
                                   f"not installed: pip install 'tinycnn[mpi]' (mpi4py and an MPI)") from None
        mpi = SingleProcess()
    device = backend.parse_device(device)
    nccl = None
    if device != "cpu":
        device = _pick_gpu(device, mpi)
        if mpi.size > 1:
            from .nccl import NcclCommunicator
            nccl = NcclCommunicator(mpi)
    else:
        _share_the_cores(mpi.local_size)
    _group = ProcessGroup(mpi, nccl, device)
    return _group


def _pick_gpu(device: str, mpi) -> str:
    """``cuda`` -> ``cuda:K`` for this rank's local rank (an explicit ``cuda:K`` is kept); made current."""
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    index = mpi.local_rank % count if device == "cuda" else int(device.split(":")[1])
    cupy.cuda.Device(index).use()
    return f"cuda:{index}"


_blas_limit = None  # kept alive: the limit holds while this object lives


def _share_the_cores(ranks_here: int) -> None:
    """Give each of the ``ranks_here`` ranks on this machine an equal share of its cores (worker and BLAS
    threads), or ``TINYCNN_NUM_THREADS`` of them when set.

    Two ranks each running as many threads as there are cores would fight for them; and BLAS must
    be held to the share too (measured: 2 ranks with 1 worker but 2-thread BLAS each stepped 2-10x
    slower than one process).
    """
    global _blas_limit
    if ranks_here <= 1:
        return
    from threadpoolctl import threadpool_limits

    from .. import fast

    share = whole_number("TINYCNN_NUM_THREADS", minimum=1) or max(1, backend.usable_cores() // ranks_here)
    fast.set_num_threads(share)
    _blas_limit = threadpool_limits(limits=share, user_api="blas")


def is_initialized() -> bool:
    return _group is not None


def group() -> ProcessGroup:
    """The group made by :func:`init` (raises if there is none)."""
    if _group is None:
        raise DistributedError("tinycnn.distributed.init() has not been called")
    return _group


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1 (0 before init)."""
    return _group.rank if _group is not None else 0


def world_size() -> int:
    """How many ranks train together (1 before init)."""
    return _group.size if _group is not None else 1


def local_rank() -> int:
    """This process's rank among those on the same machine."""
    return _group.local_rank if _group is not None else 0


def all_reduce(array, op: str = "sum"):
    """Reduce ``array`` in place over all ranks (``op``: sum, max or min) and return it."""
    return group().all_reduce(array, op)


def broadcast(array, root: int = 0):
    """Overwrite ``array`` in place with rank ``root``'s and return it."""
    return group().broadcast(array, root)
