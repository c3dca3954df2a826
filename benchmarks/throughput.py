"""Training and inference throughput of whole models, against PyTorch when installed.

    python benchmarks/throughput.py                          # CPU, 2 threads, every model
    python benchmarks/throughput.py --models lenet5-256 resnet20-128 --json out.json
    python benchmarks/throughput.py --device cuda            # exact float32 on both sides
    python benchmarks/throughput.py --device cuda --tf32     # TF32 GEMMs on both sides

Models (``name-batch``): lenet5-64, lenet5-256 (1x28x28 inputs), resnet20-128 (3x32x32),
built from ``tinycnn.models``, trained with SGD (momentum 0.9) on cross-entropy. PyTorch
runs the same architecture with the same batch, float32 and thread count.

A *training step* is zero_grad + forward + loss + backward + optimizer step on one fixed
random batch; *inference* is a forward in eval mode without the graph. Times and img/s
are the median over ``--rounds`` x ``--steps`` timed steps after ``--warmup`` steps.
The rounds alternate tinycnn and PyTorch (tinycnn first in even rounds, PyTorch first in
odd ones), so that noise from other processes on the machine hits both alike; the ratio
is the median of the rounds' own ratios (each from two medians seconds apart), printed
with its range over the rounds, and *best*, the ratio of the two sides' fastest steps. On
a shared cloud machine the speed of the same step can swing 2x within a minute (other
tenants of the host share its caches and memory bandwidth); the range shows how much, and
the fastest steps are the ones least disturbed.

Threads: BLAS reads its thread count when NumPy is first imported, so this script sets
``OPENBLAS_NUM_THREADS`` (and OMP/MKL) before importing NumPy, and also applies it through
``threadpoolctl`` when that is installed. Both libraries keep their worker threads
spinning for a while after each parallel call (OpenBLAS after a GEMM, PyTorch's OpenMP
after each op), and a spinning thread steals a core from whatever runs next. So each
side's round starts after ``--pause`` seconds of rest, and PyTorch keeps its default
OpenMP wait policy, which is how its users run it. (``--omp-wait-policy PASSIVE`` makes
PyTorch's threads sleep at once; measured here it made PyTorch's LeNet-5 step 1.6x
slower, 16.5 -> 27 ms, so it is not the default: an earlier version of this script used it
and overstated tinycnn's ratio.)

Also printed: the GEMM ceiling (NumPy float32 matmul GFLOP/s, large square) and each
model's achieved GFLOP/s, from analytic FLOP counts (2 x multiply-adds of every conv and
linear layer in the forward; a training step counts as 3 x forward: the forward, the
input-gradient and the weight-gradient products).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from report import call_times, interleaved, machine_info, set_cpu_threads, write_json

MODELS = {
    # name: (builder, batch, input shape (C, H, W))
    "lenet5-64": ("lenet5", 64, (1, 28, 28)),
    "lenet5-256": ("lenet5", 256, (1, 28, 28)),
    "resnet20-128": ("resnet20", 128, (3, 32, 32)),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads (CPU)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5, help="alternating tinycnn/PyTorch rounds")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the first round")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--no-inference", action="store_true", help="time training steps only")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds of rest before each side's round (idle worker threads of the other side stop spinning)")
    parser.add_argument("--omp-wait-policy", default="",
                        help="OMP_WAIT_POLICY for PyTorch, e.g. PASSIVE (default: PyTorch's own)")
    parser.add_argument("--tf32", action="store_true",
                        help="GPU: let float32 GEMMs use TF32 tensor cores on both sides (CUPY_TF32=1, "
                             "torch allow_tf32); off by default: exact float32, as on the CPU")
    parser.add_argument("--reference-steps", type=int, default=2,
                        help="timed steps of tinycnn's reference floor (TINYCNN_FAST=0), after one warm-up; 0: skip")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args()


# --------------------------------------------------------------------------- FLOPs
def forward_flops(model, x) -> float:
    """2 x multiply-adds of every conv2d and linear in one forward of ``model`` on ``x``.

    Counted from the shapes the ops actually see: the op Functions' ``forward`` is
    wrapped for one no-grad forward pass.
    """
    import math

    import importlib

    import tinycnn

    # import_module: the package attributes `conv2d`/`linear` are the functions, not the modules
    conv_module = importlib.import_module("tinycnn.functional.conv")
    linear_module = importlib.import_module("tinycnn.functional.linear")

    total = 0.0
    conv_forward, linear_forward = conv_module.Conv2d.forward, linear_module.Linear.forward

    def counting_conv(self, x, weight, bias, stride, padding, dilation, groups):
        nonlocal total
        out = conv_forward(self, x, weight, bias, stride, padding, dilation, groups)
        total += 2.0 * out.size * math.prod(weight.shape[1:])  # each output: C/G*KH*KW multiply-adds
        return out

    def counting_linear(self, x, weight, bias):
        nonlocal total
        out = linear_forward(self, x, weight, bias)
        total += 2.0 * out.size * weight.shape[1]
        return out

    conv_module.Conv2d.forward, linear_module.Linear.forward = counting_conv, counting_linear
    try:
        with tinycnn.no_grad(), tinycnn.reference_floor():   # the reference ops see the same shapes as the fast ones
            model(x)
    finally:
        conv_module.Conv2d.forward, linear_module.Linear.forward = conv_forward, linear_forward
    return total


def gemm_ceiling(xp, sync, size=2048, repeats=7) -> float:
    """GFLOP/s of one float32 size x size matmul (the best the BLAS does here)."""
    a = xp.ones((size, size), dtype=xp.float32)
    b = xp.ones((size, size), dtype=xp.float32)
    out = xp.empty((size, size), dtype=xp.float32)
    times = call_times(lambda: xp.matmul(a, b, out=out), repeats + 2, sync)
    return 2.0 * size**3 / statistics.median(times[2:]) / 1e9


# --------------------------------------------------------------------------- tinycnn
def tinycnn_runner(spec, device):
    """(train_step, infer, flops_forward) closures for one model on a fixed batch."""
    import tinycnn
    import tinycnn.nn as nn
    from tinycnn import models

    builder, batch, shape = spec
    tinycnn.manual_seed(0)
    model = getattr(models, builder)(num_classes=10, in_channels=shape[0]).to(device)
    optimizer = tinycnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = tinycnn.randn(batch, *shape, device=device)
    y = tinycnn.randint(0, 10, (batch,), device=device)

    def train_step():
        model.train()
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with tinycnn.no_grad():
            model(x)

    model.eval()
    return train_step, infer, forward_flops(model, x)


# --------------------------------------------------------------------------- PyTorch
def torch_model(torch, builder, in_channels):
    """The same architectures as tinycnn.models, in PyTorch."""
    nn = torch.nn
    if builder == "lenet5":
        return nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.extra = cout - cin  # option A shortcut: subsample, pad channels with zeros

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x
            if self.extra:
                half = self.extra // 2
                shortcut = nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, half, self.extra - half))
            return torch.relu(out + shortcut)

    layers = [nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            layers.append(Block(cin, cout, stride if b == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_runner(torch, spec, device):
    builder, batch, shape = spec
    torch.manual_seed(0)
    model = torch_model(torch, builder, shape[0]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    return train_step, infer


def main():
    args = parse_args()
    numpy_came_first = "numpy" in sys.modules  # set_cpu_threads itself imports NumPy, after the settings
    if args.device == "cpu":
        set_cpu_threads(args.threads)   # before NumPy and torch are imported
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    # CuPy reads CUPY_TF32 when it is imported: set it (or clear it) before that.
    os.environ["CUPY_TF32"] = "1" if args.tf32 else "0"
    if numpy_came_first:
        print("note: NumPy was imported before the thread settings; relying on threadpoolctl", file=sys.stderr)
    import numpy as np

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads if args.device == "cpu" else None)
    except ImportError:
        pass

    import tinycnn

    device = "cuda" if args.device == "cuda" else "cpu"
    xp = tinycnn.backend.array_module(device)
    sync_ours = (lambda: xp.cuda.Device().synchronize()) if device == "cuda" else (lambda: None)

    torch = None
    if not args.no_torch:
        try:
            import torch
            if device == "cpu":
                torch.set_num_threads(args.threads)
            else:  # the same precision as tinycnn: PyTorch's cuDNN convolutions use TF32 unless told not to
                torch.backends.cuda.matmul.allow_tf32 = args.tf32
                torch.backends.cudnn.allow_tf32 = args.tf32
        except ImportError:
            torch = None
    sync_theirs = (torch.cuda.synchronize if (torch and device == "cuda") else (lambda: None))

    ceiling = gemm_ceiling(xp, sync_ours)
    header_info = {
        **machine_info(device, args.threads), "torch": torch.__version__ if torch else None,
        "malloc_tuning": tinycnn.fast.allocator.malloc_tuned,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "gemm_ceiling_gflops": ceiling,
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup,
        "tf32": bool(args.tf32) if device == "cuda" else None,
    }
    print(f"throughput, float32{' (TF32 GEMMs)' if args.tf32 and device == 'cuda' else ''}, device={device}, threads={args.threads}, NumPy {np.__version__}, "
          f"PyTorch {torch.__version__ if torch else 'not used'}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"tinycnn malloc tuning={header_info['malloc_tuning']}")
    print(f"GEMM ceiling (float32 2048^3 matmul): {ceiling:.1f} GFLOP/s")
    print(f"img/s and ms: median of {args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up; "
          f"ratio = tinycnn img/s / PyTorch img/s, the median of the {args.rounds} rounds' ratios (range: lowest-highest); "
          f"best = the ratio of the two fastest steps; tinycnn runs its fast floor (the default); "
          f"ref img/s: its reference floor (TINYCNN_FAST=0), median of {args.reference_steps} steps after 1 warm-up, "
          f"and fast/ref what the fast floor buys\n")
    header = (f"{'model':<14}{'mode':<7}{'tinycnn img/s':>14}{'GFLOP/s':>9}{'torch img/s':>13}{'GFLOP/s':>9}"
              f"{'ratio':>8}{'round range':>12}{'best':>8}{'ms/step':>9}{'torch ms':>9}{'ref img/s':>10}{'fast/ref':>9}")
    print(header)
    print("-" * len(header))

    results = []
    for name in args.models:
        spec = MODELS[name]
        batch = spec[1]
        train_ours, infer_ours, flops = tinycnn_runner(spec, device)
        train_theirs = infer_theirs = None
        if torch:
            train_theirs, infer_theirs = torch_runner(torch, spec, device)
        modes = [("train", train_ours, train_theirs, 3 * flops)]
        if not args.no_inference:
            modes.append(("infer", infer_ours, infer_theirs, flops))
        for mode, ours, theirs, step_flops in modes:
            ours_times, theirs_times, round_ratios = interleaved(
                (ours, sync_ours), (theirs, sync_theirs) if theirs else None,
                rounds=args.rounds, calls=args.steps, warmup=args.warmup, pause=args.pause)
            t_ours = statistics.median(ours_times)
            t_reference = None
            if args.reference_steps > 0:
                with tinycnn.reference_floor():
                    t_reference = statistics.median(call_times(ours, 1 + args.reference_steps, sync_ours)[1:])
            t_theirs = statistics.median(theirs_times) if theirs_times else None
            row = {
                "model": name, "mode": mode, "batch": batch, "forward_gflop": flops / 1e9,
                "tinycnn_ms": 1e3 * t_ours, "tinycnn_img_s": batch / t_ours, "tinycnn_gflops": step_flops / t_ours / 1e9,
                "torch_ms": 1e3 * t_theirs if t_theirs else None,
                "torch_img_s": batch / t_theirs if t_theirs else None,
                "torch_gflops": step_flops / t_theirs / 1e9 if t_theirs else None,
                "ratio": statistics.median(round_ratios) if round_ratios else None,
                "ratio_rounds": round_ratios,
                "tinycnn_ms_min": 1e3 * min(ours_times), "torch_ms_min": 1e3 * min(theirs_times) if theirs_times else None,
                "reference_ms": 1e3 * t_reference if t_reference else None,
                "reference_img_s": batch / t_reference if t_reference else None,
                "fast_over_reference": t_reference / t_ours if t_reference else None,
            }
            results.append(row)
            line = f"{name:<14}{mode:<7}{row['tinycnn_img_s']:>14.0f}{row['tinycnn_gflops']:>9.1f}"
            if t_theirs:
                spread = f"{min(round_ratios):.2f}-{max(round_ratios):.2f}"
                row["best_ratio"] = row["torch_ms_min"] / row["tinycnn_ms_min"]
                line += (f"{row['torch_img_s']:>13.0f}{row['torch_gflops']:>9.1f}{row['ratio']:>7.2f}x{spread:>12}"
                         f"{row['best_ratio']:>7.2f}x{row['tinycnn_ms']:>9.1f}{row['torch_ms']:>9.1f}")
            else:
                line += f"{'-':>13}{'-':>9}{'-':>8}{'-':>12}{'-':>8}{row['tinycnn_ms']:>9.1f}{'-':>9}"
            if t_reference:
                line += f"{row['reference_img_s']:>10.0f}{row['fast_over_reference']:>8.1f}x"
            print(line, flush=True)

    if args.json:
        write_json(args.json, header_info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
