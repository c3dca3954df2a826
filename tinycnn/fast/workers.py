"""Running a convolution's chunks, and the batch of an element-wise layer, on several CPU cores.

The fast floor's CPU convolution (fast/conv.py) works through a batch a few images ("a chunk") at a
time: copy the chunk's windows into a column matrix (im2col), multiply it with the
weights (GEMM), copy the result out. The copies run on one core; BLAS spreads each
GEMM over all cores. That leaves cores idle during the copies, and each GEMM thread
has to fetch the columns that another core just wrote into its own cache.

Running whole chunks side by side does better: with W workers, worker w takes
chunks w, w + W, w + 2W, ... and runs each one start to finish with a
single-threaded BLAS, so every core copies and multiplies its own data in its own
cache. (NumPy releases Python's global interpreter lock inside its copies and
products, so the threads do run at the same time.) On 2 cores this made the
forward pass of ResNet-20's first-stage convolutions about 1.5x faster
(benchmarks/README.md).

Results do not depend on timing: a chunk's output goes to its own slice, and sums
over chunks (the weight gradient) add up each worker's chunks in order, then the
workers' totals in worker order. With a different worker count the chunks (fast/conv.py
rounds their count up to a multiple of the workers') and the summation order change, so
results can differ in the last bits; ``set_num_threads(1)`` makes the engine serial.

BLAS threads are set with ``threadpoolctl`` (the library that scikit-learn uses for
this), and only while a convolution's workers run.

Element-wise layers (ReLU, max pooling, batch norm) are plain NumPy passes over
large arrays, which run on one core. ``batch_parts`` and ``map_parts`` split such a
pass by images: worker i computes part i of the batch into its slice of the output
(about 1.7x faster on 2 cores for a LeNet-5 max pooling). Per-channel sums are added
up part by part, in part order.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .. import backend
from ..env import whole_number

__all__ = ["get_num_threads", "set_num_threads", "map_chunks", "batch_parts", "map_parts", "single_threaded_blas",
           "sum_in_order"]

# Element-wise layers split their batch over the workers only from this size on: below
# it, handing a part to a thread (tens of microseconds) costs about what it saves.
PARALLEL_MIN_BYTES = 1 << 20


def _default_num_threads() -> int:
    """``TINYCNN_NUM_THREADS`` if set, else the cores this process may run on."""
    given = whole_number("TINYCNN_NUM_THREADS", minimum=1)
    return given if given is not None else backend.usable_cores()


_num_threads: int | None = None  # read from the environment on first use (a bad value: a one-line error there)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_blas = None                                  # threadpoolctl's controller, made on first use


def get_num_threads() -> int:
    """How many workers the engine runs on the CPU (convolution chunks, parts of a batch)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(count: int) -> None:
    """Run up to ``count`` chunks of a CPU convolution at once (1: serial).

    The default is the environment variable ``TINYCNN_NUM_THREADS`` if set, else the
    number of cores this process may use. (Measured on 2 cores; more workers than
    cores only adds switching.) Like ``torch.set_num_threads``, it sets how many cores
    the engine uses; BLAS keeps its own setting outside the convolutions.
    """
    global _num_threads, _pool
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {count!r}")
    with _pool_lock:
        if _pool is not None and count != get_num_threads():
            _pool.shutdown(wait=True)
            _pool = None
        _num_threads = count


def _workers_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=get_num_threads() - 1, thread_name_prefix="tinycnn-chunks")
        return _pool


def _forget_pool_after_fork() -> None:
    """A forked child has none of its parent's threads: a pool inherited from the parent would
    take work that no thread ever runs. The child makes its own on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


# OpenBLAS runs a product of fewer multiply-adds than this on one thread anyway
# (its SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD).
SMALL_PRODUCT = 65536 * 4


def single_threaded_blas(array, multiply_adds: int):
    """A context in which BLAS runs on the calling thread only, when tinycnn's own workers
    use the cores (NumPy ``array``, more than one thread) and the product is large enough
    for BLAS to use several; else it changes nothing.

    For the engine's other matrix products (the linear layer): a BLAS that ran on two
    threads keeps its idle worker spinning for a while afterwards, and that worker then
    takes a core away from tinycnn's (measured: LeNet-5 steps 1.2x slower).
    """
    if get_num_threads() <= 1 or not isinstance(array, np.ndarray) or multiply_adds < SMALL_PRODUCT:
        return contextlib.nullcontext()
    return _single_threaded_blas()


def _single_threaded_blas():
    """A context in which BLAS runs on the calling thread only."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def sum_in_order(values):
    """The sum of ``values`` added left to right, Nones skipped (None if all are None).

    A fixed order makes the result the same in every run. The sum is made in the first
    value, so the values must be fresh arrays that nothing else holds.
    """
    total = None
    for value in values:
        if value is None:
            continue
        if total is None:
            total = value
        else:
            total += value
    return total


def _run_share(work, chunks):
    """Run ``work`` over ``chunks`` in order; the sum of what it returns (None if nothing)."""
    return sum_in_order(work(chunk, geometry) for chunk, geometry in chunks)


def _side_by_side(calls: list) -> list:
    """Run ``calls[0]()`` on this thread and the others on the workers, all at once; their
    results, in order. Returns only when every call has finished, even if one raised:
    no worker is ever left running on the caller's arrays."""
    pool = _workers_pool()
    futures = [pool.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(futures)
    return [first] + [future.result() for future in futures]


def map_chunks(work, chunks: list):
    """Call ``work(chunk, geometry)`` for every (chunk, geometry) pair; return the sum of the
    results (None if ``work`` returns None).

    With more than one thread (``set_num_threads``) and more than one chunk, the chunks
    are dealt round-robin to the workers; the calling thread is worker 0.
    ``work`` must write only to its own chunk's part of any shared array.
    """
    workers = min(get_num_threads(), len(chunks))
    if workers <= 1:
        return _run_share(work, chunks)
    with _single_threaded_blas():
        totals = _side_by_side([functools.partial(_run_share, work, chunks[w::workers]) for w in range(workers)])
    return sum_in_order(totals)


def batch_parts(array) -> list:
    """How to split ``array`` (N, ...) by images for the workers: one slice of the batch per
    worker for a large NumPy array, else ``[...]`` (all of it, in one piece: GPU arrays,
    small arrays, a single thread)."""
    workers = min(get_num_threads(), array.shape[0] if array.ndim else 1)
    if workers <= 1 or array.nbytes < PARALLEL_MIN_BYTES or not isinstance(array, np.ndarray):
        return [...]
    bounds = [array.shape[0] * w // workers for w in range(workers + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def map_parts(work, parts: list) -> list:
    """``[work(part) for part in parts]``, part i on worker i (the calling thread takes part 0).

    For element-wise work: unlike ``map_chunks``, BLAS is left as it is.
    """
    if len(parts) == 1:
        return [work(parts[0])]
    return _side_by_side([functools.partial(work, part) for part in parts])
