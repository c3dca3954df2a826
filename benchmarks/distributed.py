"""Data parallelism on this machine, and what the ring all-reduce predicts for many.

    python benchmarks/distributed.py [--steps 20] [--json PATH]

Measures, for LeNet-5 (batch 128, 1x28x28) and ResNet-20 (batch 64, 3x32x32), training
steps on random data:

* 1 rank x 2 worker threads (one process);
* 2 ranks x 1 thread (``mpiexec -n 2``, the same global batch split in two), with the
  all-reduce overlapped with the backward, and started only after it;

reporting images/s, the time per step spent in the all-reduce (launching buckets and
waiting for them) and the bytes each rank reduces per step. Then a table of predicted
scaling efficiency for 2-64 nodes/GPUs from the measured compute time per step and the
ring all-reduce cost model (see ``predict``).

Internally it runs itself as the worker: ``--worker MODEL --overlap 0|1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"lenet5": (128, (1, 28, 28)), "resnet20": (64, (3, 32, 32))}
# (bandwidth in bytes/s, latency per message in s): typical figures, not measured here
LINKS = {"10 Gb/s": (10e9 / 8, 25e-6), "25 Gb/s": (25e9 / 8, 15e-6), "100 Gb/s": (100e9 / 8, 5e-6),
         "NVLink (300 GB/s)": (300e9, 3e-6)}
NODES = (2, 4, 8, 16, 32, 64)


def worker(name: str, overlap: bool, steps: int) -> dict:
    import tinycnn
    from tinycnn import distributed as dist
    from tinycnn import models, optim
    from tinycnn.functional import cross_entropy

    group = dist.init()
    batch, shape = MODELS[name]
    tinycnn.manual_seed(0)
    model = models.get_model(name, num_classes=10, in_channels=shape[0])
    ddp = dist.DistributedDataParallel(model, overlap=overlap)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lo, hi = batch * group.rank // group.size, batch * (group.rank + 1) // group.size
    rng = np.random.default_rng(0)
    x = tinycnn.tensor(rng.standard_normal((batch,) + shape).astype(np.float32)[lo:hi])
    y = tinycnn.tensor(rng.integers(0, 10, batch)[lo:hi])

    def step():
        loss = cross_entropy(ddp(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: allocations, thread pools, first-touch of the buffers
        step()
    group.barrier()
    ddp.comm_seconds, ddp.steps = 0.0, 0
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"model": name, "ranks": group.size, "threads": tinycnn.fast.get_num_threads(), "overlap": overlap,
            "images_per_second": batch * steps / seconds, "step_ms": 1e3 * seconds / steps,
            "allreduce_ms": 1e3 * ddp.comm_seconds / max(ddp.steps, 1) if group.size > 1 else 0.0,
            "bytes_per_step": ddp.bytes_per_step, "buckets": len(ddp.buckets)}


def run(command: list, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TINYCNN_NUM_THREADS=str(threads))
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][0])


def predict(compute_s: float, nbytes: int) -> dict:
    """Scaling efficiency per link and node count: compute / (compute + ring all-reduce), no overlap.

    ring all-reduce time = 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency
    (reduce-scatter then all-gather: 2 (N-1) steps, each sending bytes/N to the neighbour).
    """
    table = {}
    for link, (bandwidth, latency) in LINKS.items():
        row = {}
        for n in NODES:
            allreduce = 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency
            row[n] = compute_s / (compute_s + allreduce)
        table[link] = row
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=list(MODELS))
    parser.add_argument("--overlap", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, bool(args.overlap), args.steps)
        if int(os.environ.get("PMI_RANK", "0")) == 0:
            print(json.dumps(result))
        return
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("mpiexec not found: pip install 'tinycnn[mpi]'")
    me = [sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps), "--worker"]
    results = []
    for name in MODELS:
        results.append(run(me + [name], threads=2))
        for overlap in (1, 0):
            results.append(run([mpiexec, "-n", "2"] + me + [name, "--overlap", str(overlap)], threads=1))
    print(f"{'model':9} {'ranks x threads':>15} {'overlap':>8} {'img/s':>7} {'step ms':>8} {'all-reduce ms':>14} "
          f"{'bytes/step':>11} {'buckets':>7}")
    for r in results:
        print(f"{r['model']:9} {str(r['ranks']) + ' x ' + str(r['threads']):>15} "
              f"{('yes' if r['overlap'] else 'no') if r['ranks'] > 1 else '-':>8} {r['images_per_second']:7.0f} "
              f"{r['step_ms']:8.1f} {r['allreduce_ms']:14.2f} {r['bytes_per_step']:11,} {r['buckets']:7}")
    print("\nPredicted scaling efficiency, compute / (compute + all-reduce), no overlap; compute = this machine's "
          "1-rank step time\nring all-reduce = 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency "
          f"(latency per message: {', '.join(f'{k} {v[1] * 1e6:g} us' for k, v in LINKS.items())})")
    predictions = {}
    for r in results:
        if r["ranks"] != 1:
            continue
        table = predict(r["step_ms"] / 1e3, r["bytes_per_step"])
        predictions[r["model"]] = table
        print(f"\n{r['model']}: {r['bytes_per_step'] / 1e6:.2f} MB per step, compute {r['step_ms']:.0f} ms per step")
        print(f"{'link':18}" + "".join(f"{n:>7}" for n in NODES))
        for link, row in table.items():
            print(f"{link:18}" + "".join(f"{100 * e:6.1f}%" for e in row.values()))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "predicted_efficiency": predictions}, indent=2))


if __name__ == "__main__":
    main()
