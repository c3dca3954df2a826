"""Collectives over NCCL (``cupy.cuda.nccl``): GPU to GPU, without the host.

NCCL is what PyTorch uses between GPUs: it runs the ring (or tree) all-reduce
as CUDA kernels over NVLink, PCIe or the network. It needs a shared id to
find its peers; rank 0 makes one and MPI hands it to the others, so MPI stays
the launcher and the control channel while NCCL carries the gradients.

NCCL calls are queued on a CUDA stream and return at once; a request here is a
CUDA event recorded after the call, polled against a deadline like MPI's.
Only CuPy arrays go through NCCL; everything else stays with MPI.

NOT YET RUN: no machine with GPUs was available while this was written; its tests
skip without them (tests/test_distributed.py) and say so.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import DistributedError, DistributedTimeout

__all__ = ["NcclCommunicator"]


class _Pending:
    """An NCCL call in flight on ``stream``: ``wait()`` makes the compute stream wait for it (with a deadline)."""

    def __init__(self, event, what: str, timeout: float):
        self.event, self.what, self.timeout, self.done = event, what, timeout, False

    def test(self) -> bool:
        if not self.done and self.event.done:
            self.done = True
        return self.done

    def wait(self) -> None:
        start = time.monotonic()
        while not self.test():
            if time.monotonic() - start > self.timeout:
                raise DistributedTimeout(f"{self.what} (NCCL): the other ranks did not join within "
                                         f"{self.timeout:g} s; a rank has stopped, raised an error or hangs")
            time.sleep(50e-6)


class NcclCommunicator:
    """All-reduce and broadcast of CuPy arrays between the GPUs of all ranks.

    ``mpi`` is the :class:`~tinycnn.distributed.mpi.MpiCommunicator` that carries
    the unique id; the current CuPy device must already be this rank's GPU.
    """

    kind = "nccl"

    def __init__(self, mpi):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as error:
            raise DistributedError(f"NCCL needs CuPy built with NCCL (cupy.cuda.nccl): {error}") from None
        self.cupy, self.nccl = cupy, nccl
        self.rank, self.size, self.timeout = mpi.rank, mpi.size, mpi.timeout
        # the id is a tuple of 128 signed chars; rank 0 draws it, MPI hands it to the others
        uid = np.array(nccl.get_unique_id(), dtype=np.int8) if mpi.rank == 0 else np.zeros(128, dtype=np.int8)
        mpi.broadcast(uid, root=0, what="NCCL id")
        self.comm = nccl.NcclCommunicator(self.size, tuple(int(b) for b in uid), self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)   # the gradients travel beside the compute

    def _dtype(self, array):
        types = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32, np.dtype(np.float64): self.nccl.NCCL_FLOAT64,
                 np.dtype(np.float16): self.nccl.NCCL_FLOAT16, np.dtype(np.int64): self.nccl.NCCL_INT64,
                 np.dtype(np.int32): self.nccl.NCCL_INT32}
        if array.dtype not in types:
            raise ValueError(f"NCCL: cannot reduce dtype {array.dtype}; expected one of "
                             f"{', '.join(str(t) for t in types)}")
        return types[array.dtype]

    def _op(self, op: str):
        ops = {"sum": self.nccl.NCCL_SUM, "max": self.nccl.NCCL_MAX, "min": self.nccl.NCCL_MIN}
        if op not in ops:
            raise ValueError(f"all_reduce: op must be one of {', '.join(ops)}, got {op!r}")
        return ops[op]

    def _after_compute(self):
        """Make the NCCL stream wait for what the compute stream has queued so far (the gradient)."""
        ready = self.cupy.cuda.Event(disable_timing=True)
        ready.record(self.cupy.cuda.get_current_stream())
        self.stream.wait_event(ready)

    def _request(self, what: str) -> _Pending:
        done = self.cupy.cuda.Event(disable_timing=True)
        done.record(self.stream)
        self.cupy.cuda.get_current_stream().wait_event(done)  # later compute sees the reduced values
        return _Pending(done, what, self.timeout)

    def iall_reduce(self, array, op: str = "sum", what: str = "all-reduce") -> _Pending:
        """Start reducing the CuPy ``array`` in place over all ranks' GPUs."""
        if not array.flags.c_contiguous:
            raise ValueError(f"{what}: the array must be contiguous (shape {array.shape})")
        self._after_compute()
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self._dtype(array), self._op(op),
                            self.stream.ptr)
        return self._request(what)

    def all_reduce(self, array, op: str = "sum", what: str = "all-reduce"):
        self.iall_reduce(array, op, what).wait()
        return array

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        self._after_compute()
        self.comm.bcast(array.data.ptr, array.size, self._dtype(array), root, self.stream.ptr)
        self._request(what).wait()
        return array
