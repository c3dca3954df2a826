"""Time conv2d at the shapes of LeNet-5 and ResNet-20, against PyTorch when installed.

    python benchmarks/layers.py                  # CPU, 2 threads
    python benchmarks/layers.py --threads 4
    python benchmarks/layers.py --device cuda

For each layer: forward, and forward + backward, in milliseconds and achieved GFLOP/s,
for tinycnn and PyTorch (float32, the same thread count), and PyTorch's time /
tinycnn's time ("speed": above 1 means tinycnn is faster). The first layer of each
network gets no input gradient, as in training (images need none).

The two alternate, layer by layer, in ``--rounds`` rounds of ``--repeats`` calls
each (after ``--warmup`` calls), with ``--pause`` seconds of rest before each side's
round so that the other side's idle worker threads have stopped spinning. Times are
medians over all calls; the speed is the median of the rounds' own ratios, so that a
slow spell of a shared machine hits both sides of each ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from report import interleaved, set_cpu_threads

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
    parser.add_argument("--rounds", type=int, default=5, help="alternating tinycnn/PyTorch rounds per layer")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each side's round")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    return parser.parse_args()


def conv_flops(batch, c, size, o, k, pad):
    out = size + 2 * pad - k + 1
    return 2.0 * batch * o * c * k * k * out * out


def tinycnn_calls(layer, args):
    """(forward, forward_backward, sync) for tinycnn at this layer's shape."""
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
    return forward, forward_backward, sync


def torch_calls(layer, args, torch):
    """(forward, forward_backward, sync) for PyTorch at this layer's shape."""
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

    return forward, forward_backward, sync


def timed(ours, theirs, args):
    """(our median ms, their median ms or None, median of the rounds' ratios theirs/ours or None)."""
    our_times, their_times, ratios = interleaved(ours, theirs, rounds=args.rounds, calls=args.repeats,
                                                 warmup=args.warmup, pause=args.pause)
    ms = lambda times: 1e3 * statistics.median(times) if times else None
    return ms(our_times), ms(their_times), (statistics.median(ratios) if ratios else None)


def main():
    args = parse_args()
    set_cpu_threads(args.threads)   # before NumPy is imported: BLAS reads its thread count then
    import numpy as np

    from tinycnn.fast import allocator  # set_cpu_threads tuned malloc, as the tinycnn command does

    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None

    torch_note = f", PyTorch {torch.__version__}" if torch else (", PyTorch skipped" if args.no_torch else ", PyTorch not installed")
    print(f"conv2d, float32, device={args.device}, threads={args.threads}, NumPy {np.__version__}{torch_note}, "
          f"tinycnn malloc tuning={allocator.malloc_tuned}")
    print(f"median of {args.rounds} alternating rounds x {args.repeats} calls after {args.warmup} warm-up calls; "
          "speed = PyTorch time / tinycnn time, the median of the rounds' ratios (>1: tinycnn faster)\n")
    header = f"{'layer':<17}{'shape (N,C,H->O,k)':<22}{'tinycnn fwd':>16}{'tinycnn fwd+bwd':>18}"
    if torch:
        header += f"{'torch fwd':>16}{'torch fwd+bwd':>17}{'speed fwd':>11}{'speed f+b':>11}"
    print(header)
    print("-" * len(header))
    cell = lambda ms, fl: f"{ms:7.2f}ms {fl / ms / 1e6:5.1f}GF"
    for layer in LAYERS:
        name, n, c, size, o, k, pad, input_grad = layer
        our_fwd, our_fb, our_sync = tinycnn_calls(layer, args)
        their_fwd, their_fb, their_sync = torch_calls(layer, args, torch) if torch else (None, None, None)
        fwd, t_fwd, speed_fwd = timed((our_fwd, our_sync), (their_fwd, their_sync) if torch else None, args)
        fb, t_fb, speed_fb = timed((our_fb, our_sync), (their_fb, their_sync) if torch else None, args)
        flops = conv_flops(n, c, size, o, k, pad)
        flops_fb = flops * (3 if input_grad else 2)  # backward: weight GEMM (+ input GEMM)
        line = f"{name:<17}{f'{n},{c},{size}->{o},{k}x{k}':<22}{cell(fwd, flops):>16}{cell(fb, flops_fb):>18}"
        if torch:
            line += f"{cell(t_fwd, flops):>16}{cell(t_fb, flops_fb):>17}{speed_fwd:>10.2f}x{speed_fb:>10.2f}x"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
