"""Collectives over MPI (mpi4py): the transport clusters already run.

Every operation here is *non-blocking underneath*: it is started with MPI's
``I...`` call and then waited for with a deadline (:class:`Pending`). A blocking
``MPI_Allreduce`` whose partner has died or hangs would wait forever; a request
polled against a clock raises :class:`DistributedTimeout` instead, naming the
operation, so a broken run ends with a message and not with silence.

Arrays are reduced *in place* (``MPI.IN_PLACE``): no second buffer per bucket.
CuPy arrays go through the host (copy down, reduce, copy up) unless NCCL is in
use (:mod:`tinycnn.distributed.nccl`); a CUDA-aware MPI is not assumed.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import backend
from .errors import DistributedTimeout

__all__ = ["MpiCommunicator", "SingleProcess", "Pending", "Done"]

_OPS = ("sum", "max", "min")


class Pending:
    """A collective in flight. ``wait()`` returns once it is done, or raises after ``timeout`` seconds.

    MPI moves a non-blocking collective forward only while the process is inside
    an MPI call (there is no progress thread), so ``test()`` is also what keeps it
    moving: data parallelism calls it between gradients.
    """

    def __init__(self, request, what: str, timeout: float, finish=None):
        self.request, self.what, self.timeout, self._finish, self.done = request, what, timeout, finish, False

    def test(self) -> bool:
        if not self.done and self.request.Test():
            self._complete()
        return self.done

    def wait(self) -> None:
        if self.done:
            return
        start = time.monotonic()
        spins = 0
        while not self.request.Test():
            spins += 1
            if spins > 1000:  # a short spin first (the answer is usually there), then sleep a little
                if time.monotonic() - start > self.timeout:
                    raise DistributedTimeout(
                        f"{self.what}: the other ranks did not join within {self.timeout:g} s; a rank has stopped, "
                        f"raised an error or hangs (see its own message above; TINYCNN_DIST_TIMEOUT sets the limit)")
                time.sleep(50e-6)
        self._complete()

    def _complete(self) -> None:
        self.done = True
        if self._finish is not None:
            self._finish()


class Done:
    """A :class:`Pending` that is already done (world size 1: nothing to wait for)."""

    done = True

    def test(self) -> bool:
        return True

    def wait(self) -> None:
        return None


class MpiCommunicator:
    """The ranks of an MPI communicator (``MPI.COMM_WORLD`` by default).

    Attributes: ``rank``, ``size``, ``local_rank`` and ``local_size`` (the ranks
    sharing this machine: they pick GPUs and split the cores), ``timeout`` (s).
    """

    kind = "mpi"

    def __init__(self, comm=None, timeout: float = 300.0):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)   # the ranks on this machine
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.timeout = float(timeout)

    def library(self) -> str:
        """The MPI library's own name and version (first line of ``MPI_Get_library_version``)."""
        return self.MPI.Get_library_version().strip().splitlines()[0]

    def _op(self, op: str):
        if op not in _OPS:
            raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
        return {"sum": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}[op]

    def iall_reduce(self, array, op: str = "sum", what: str = "all-reduce") -> Pending:
        """Start reducing ``array`` (contiguous, any device) in place over all ranks; returns the request."""
        if backend.is_cupy_array(array):  # through the host: copy down now, copy the result up when done
            host = backend.to_numpy(array)
            return Pending(self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self._op(op)), what, self.timeout,
                           finish=lambda: array.set(host))
        if not array.flags.c_contiguous:
            raise ValueError(f"{what}: the array must be contiguous (shape {array.shape}, strides {array.strides})")
        return Pending(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self._op(op)), what, self.timeout)

    def all_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        """Reduce ``array`` in place over all ranks (every rank gets the result); returns it."""
        self.iall_reduce(array, op, what).wait()
        return array

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        """Overwrite ``array`` on every rank with rank ``root``'s values, in place; returns it."""
        if backend.is_cupy_array(array):
            host = backend.to_numpy(array)
            Pending(self.comm.Ibcast(host, root=root), what, self.timeout).wait()
            array.set(host)
            return array
        Pending(self.comm.Ibcast(array, root=root), what, self.timeout).wait()
        return array

    def all_gather_bytes(self, payload: bytes, what: str = "all-gather") -> list:
        """Every rank's ``payload``, in rank order (lengths first, then the bytes)."""
        lengths = np.zeros(self.size, dtype=np.int64)
        Pending(self.comm.Iallgather(np.array([len(payload)], dtype=np.int64), lengths), what,
                self.timeout).wait()
        gathered = np.empty(int(lengths.sum()), dtype=np.uint8)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        send = np.frombuffer(payload, dtype=np.uint8)
        Pending(self.comm.Iallgatherv(send, [gathered, lengths, offsets, self.MPI.BYTE]), what, self.timeout).wait()
        return [gathered[o:o + n].tobytes() for o, n in zip(offsets, lengths)]

    def barrier(self, what: str = "barrier") -> None:
        Pending(self.comm.Ibarrier(), what, self.timeout).wait()

    def abort(self, code: int = 1) -> None:
        """End every rank now (``MPI_Abort``): what a rank that failed does, so no other rank waits for it.

        What this rank has printed goes out first: mpiexec forwards each rank's output through a
        proxy, and an abort at once can kill the proxy before it has passed on the error line just
        written (seen: 1 run in 10).
        """
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)
        self.comm.Abort(code)


class SingleProcess:
    """The world of one process (not launched by ``mpiexec``, or without mpi4py): every collective is the identity."""

    kind = "single"
    rank, size, local_rank, local_size = 0, 1, 0, 1
    timeout = float("inf")

    def library(self) -> str:
        return "none (one process)"

    def iall_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        return Done()

    def all_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        return array

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        return array

    def all_gather_bytes(self, payload: bytes, what: str = "all-gather") -> list:
        return [payload]

    def barrier(self, what: str = "barrier") -> None:
        return None

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)
