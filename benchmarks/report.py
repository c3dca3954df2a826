"""What the benchmark scripts share: timing tinycnn against PyTorch in alternating rounds, and
what every script writes with ``--json PATH`` (the machine, the settings, the rows)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time


def set_cpu_threads(threads: int) -> None:
    """Give BLAS, OpenMP (PyTorch) and tinycnn's workers ``threads`` threads each.

    They read these variables when first loaded, so call this before importing NumPy,
    PyTorch or tinycnn; subprocesses inherit them.

    Then, as the ``tinycnn`` command does, let malloc keep freed memory for the next step
    (tinycnn/fast/allocator.py; ``import tinycnn`` alone leaves the process as it is)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYCNN_NUM_THREADS"):
        os.environ[var] = str(threads)
    from tinycnn.fast import keep_freed_memory   # imports NumPy: after the variables above
    keep_freed_memory()


def machine_info(device: str, threads: int) -> dict:
    """The facts a result depends on: device, thread count (CPU), NumPy, Python, processor."""
    import numpy as np  # not at module level: the scripts set thread counts before NumPy loads

    return {"device": device, "threads": threads if device == "cpu" else None, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine()}


def write_json(path, config: dict, results: list) -> None:
    """Write ``{"config": config, "results": results}`` to ``path`` and say so."""
    with open(path, "w") as file:
        json.dump({"config": config, "results": results}, file, indent=2)
    print(f"\nwrote {path}")


def call_times(fn, count: int, sync) -> list:
    """Seconds per call of ``fn``, ``count`` calls, with the device synchronised around each."""
    times = []
    for _ in range(count):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def interleaved(ours, theirs, *, rounds: int, calls: int, warmup: int, pause: float):
    """Time ``ours`` and ``theirs`` (each a (function, sync) pair; theirs may be None) in alternating rounds.

    Returns (all of ours' call times, all of theirs', the per-round ratios theirs/ours). A
    round's ratio pairs two medians taken seconds apart, so a slow spell of the machine
    (other programs, or, on a shared cloud host, other machines) hits both sides of it.
    Before each side's round the machine rests ``pause`` seconds, so that the other side's
    idle worker threads (OpenBLAS, OpenMP) have stopped spinning.
    """
    sides = {"ours": ours, "theirs": theirs} if theirs else {"ours": ours}
    for _ in range(warmup):
        for fn, sync in sides.values():
            fn()
            sync()
    times = {who: [] for who in sides}
    round_ratios = []
    for round_index in range(rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        this_round = {}
        for who in order:
            time.sleep(pause)
            fn, sync = sides[who]
            this_round[who] = call_times(fn, calls, sync)
            times[who] += this_round[who]
        if theirs:
            round_ratios.append(statistics.median(this_round["theirs"]) / statistics.median(this_round["ours"]))
    return times["ours"], times.get("theirs", []), round_ratios
