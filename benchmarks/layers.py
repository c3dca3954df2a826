"""Time conv2d at the shapes of LeNet-5 and ResNet-20, against PyTorch when installed.

    python benchmarks/layers.py                  # CPU, 2 threads
    python benchmarks/layers.py --threads 4
    python benchmarks/layers.py --device cuda
    python benchmarks/layers.py --keep-freed-memory   # glibc keeps freed memory (fewer page faults)

For each layer: forward, and forward + backward, in milliseconds (median of
--repeats runs after --warmup runs) and achieved GFLOP/s, for tinycnn and
PyTorch (float32, the same thread count), and PyTorch's time / tinycnn's time
("speed": above 1 means tinycnn is faster). The first layer of each network
gets no input gradient, as in training (images need none).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# (name, batch, in_channels, height/width, out_channels, kernel, padding, needs input gradient)
LAYERS = [
    ("lenet.conv1", 256, 1, 28, 6, 5, 2, False),
    ("lenet.conv2", 256, 6, 14, 16, 5, 0, True),
    ("resnet20.stage1", 128, 16, 32, 16, 3, 1, True),
    ("resnet20.stage2", 128, 32, 16, 32, 3, 1, True),
    ("resnet20.stage3", 128, 64, 8, 64, 3, 1, True),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads (CPU)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="tell glibc malloc to keep freed memory for reuse (see keep_freed_memory)")
    return parser.parse_args()


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory instead of returning it to the OS.

    NumPy allocates a fresh array for every intermediate result. By default glibc
    serves big blocks (over ~32 MB, and smaller ones after a trim) straight from
    the OS, and the OS zero-fills every new 4 KB page on first touch, so each
    large temporary costs a page-fault pass before any arithmetic. With mmap off
    and a huge trim threshold, freed blocks stay in the process and get reused.
    Same effect as starting Python with
    GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296.
    Returns False where glibc's mallopt is unavailable (macOS, Windows, musl).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def median_ms(fn, repeats, warmup, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def conv_flops(batch, c, size, o, k, pad):
    out = size + 2 * pad - k + 1
    return 2.0 * batch * o * c * k * k * out * out


def time_tinycnn(layer, args):
    import numpy as np

    import tinycnn
    import tinycnn.functional as F

    name, n, c, size, o, k, pad, input_grad = layer
    device = "cuda" if args.device == "cuda" else "cpu"
    x = tinycnn.randn(n, c, size, size, device=device, requires_grad=input_grad)
    w = tinycnn.randn(o, c, k, k, device=device, requires_grad=True)
    b = tinycnn.randn(o, device=device, requires_grad=True)
    grad = tinycnn.randn(n, o, size + 2 * pad - k + 1, size + 2 * pad - k + 1, device=device)
    if device == "cuda":
        import cupy
        sync = cupy.cuda.Device().synchronize
    else:
        sync = lambda: None

    def forward():
        with tinycnn.no_grad():
            F.conv2d(x, w, b, padding=pad)

    def forward_backward():
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, padding=pad).backward(grad)

    assert F.conv2d(x, w, b, padding=pad).dtype == np.float32
    return median_ms(forward, args.repeats, args.warmup, sync), median_ms(forward_backward, args.repeats, args.warmup, sync)


def time_torch(layer, args, torch):
    name, n, c, size, o, k, pad, input_grad = layer
    device = "cuda" if args.device == "cuda" else "cpu"
    conv = torch.nn.Conv2d(c, o, k, padding=pad).to(device)
    x = torch.randn(n, c, size, size, device=device, requires_grad=input_grad)
    grad = torch.randn(n, o, size + 2 * pad - k + 1, size + 2 * pad - k + 1, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            conv(x)

    def forward_backward():
        x.grad = None
        conv.zero_grad(set_to_none=True)
        conv(x).backward(grad)

    return median_ms(forward, args.repeats, args.warmup, sync), median_ms(forward_backward, args.repeats, args.warmup, sync)


def main():
    args = parse_args()
    # BLAS reads its thread count when NumPy is first imported: set it before.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    malloc_note = ""
    if args.keep_freed_memory:
        malloc_note = ", malloc keeps freed memory" if keep_freed_memory() else ", (mallopt unavailable)"
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None

    torch_note = f", PyTorch {torch.__version__}" if torch else (", PyTorch skipped" if args.no_torch else ", PyTorch not installed")
    print(f"conv2d, float32, device={args.device}, threads={args.threads}, NumPy {np.__version__}{torch_note}{malloc_note}")
    print(f"median of {args.repeats} runs after {args.warmup} warm-up runs; "
          "speed = PyTorch time / tinycnn time (>1: tinycnn faster)\n")
    header = f"{'layer':<17}{'shape (N,C,H->O,k)':<22}{'tinycnn fwd':>16}{'tinycnn fwd+bwd':>18}"
    if torch:
        header += f"{'torch fwd':>16}{'torch fwd+bwd':>17}{'speed fwd':>11}{'speed f+b':>11}"
    print(header)
    print("-" * len(header))
    # All tinycnn runs first, then all PyTorch runs: PyTorch's OpenMP threads keep
    # spinning for a while after each op and would slow down whatever runs next.
    ours = [time_tinycnn(layer, args) for layer in LAYERS]
    theirs = [time_torch(layer, args, torch) for layer in LAYERS] if torch else [None] * len(LAYERS)
    cell = lambda ms, fl: f"{ms:7.2f}ms {fl / ms / 1e6:5.1f}GF"
    for layer, (fwd, fb), torch_times in zip(LAYERS, ours, theirs):
        name, n, c, size, o, k, pad, input_grad = layer
        flops = conv_flops(n, c, size, o, k, pad)
        flops_fb = flops * (3 if input_grad else 2)  # backward: weight GEMM (+ input GEMM)
        line = f"{name:<17}{f'{n},{c},{size}->{o},{k}x{k}':<22}{cell(fwd, flops):>16}{cell(fb, flops_fb):>18}"
        if torch_times:
            t_fwd, t_fb = torch_times
            line += f"{cell(t_fwd, flops):>16}{cell(t_fb, flops_fb):>17}{t_fwd / fwd:>10.2f}x{t_fb / fb:>10.2f}x"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
