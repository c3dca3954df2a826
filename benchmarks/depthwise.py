"""Time the depthwise convolution's own kernel against the grouped im2col + GEMM it replaced.

    python benchmarks/depthwise.py               # CPU, 2 threads
    python benchmarks/depthwise.py --device cuda

A depthwise convolution is ``conv2d`` with ``groups == channels`` (MobileNet, EfficientNet).
tinycnn used to run it as any grouped convolution: im2col, then the C small products
(inner dimension KH*KW = 9) in one batched ``matmul``. Now it has its own kernel, a
multiply-add per kernel offset (functional/depthwise.py on the reference floor; channels-last
in chunks in tinycnn/fast/depthwise.py), and the fast floor uses it on maps of at most
``MULTIPLY_ADD_MAX_PIXELS`` pixels and on strided layers, the grouped GEMM on the others
(the "fast floor uses" column).

For each layer and floor: forward, and forward + backward (input and weight gradients), in
milliseconds (float32), for the multiply-add kernel and the grouped GEMM (each floor's
Functions called directly), and speed = GEMM time / kernel time (above 1: the kernel is
faster), the median of alternating rounds' ratios (report.py).
"""

from __future__ import annotations

import argparse
import statistics

from report import interleaved, set_cpu_threads

# (name, batch, channels, height/width, kernel, stride)
LAYERS = [
    ("mobilenet_v2 144ch 16x16 s1", 64, 144, 16, 3, 1),
    ("mobilenet_v2 144ch 16x16 s2", 64, 144, 16, 3, 2),
    ("mobilenet_v2 32ch 32x32 s1", 64, 32, 32, 3, 1),
    ("mobilenet_v2 576ch 4x4 s1", 64, 576, 4, 3, 1),
    ("efficientnet 672ch 4x4 k5", 64, 672, 4, 5, 1),
    ("efficientnet 1152ch 2x2 k3", 64, 1152, 2, 3, 1),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads and tinycnn workers (CPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.2)
    return parser.parse_args()


def calls(layer, floor_fast: bool, args):
    """{(pass, method): (function, sync)} at this layer's shape on one floor."""
    import tinycnn
    from tinycnn import backend, fast
    from tinycnn.functional.conv import Conv2d as ReferenceConv2d
    from tinycnn.functional.depthwise import DepthwiseConv2d as ReferenceDepthwise

    _, batch, channels, size, kernel, stride = layer
    tinycnn.manual_seed(0)
    x = tinycnn.randn(batch, channels, size, size, device=args.device, requires_grad=True)
    weight = tinycnn.randn(channels, 1, kernel, kernel, device=args.device, requires_grad=True)
    bias = tinycnn.randn(channels, device=args.device, requires_grad=True)
    pair = lambda v: (v, v)
    settings = dict(stride=pair(stride), padding=pair(kernel // 2), dilation=(1, 1))
    grouped = fast.Conv2d if floor_fast else ReferenceConv2d
    kernel_function = fast.DepthwiseConv2d if floor_fast else ReferenceDepthwise
    methods = {
        "depthwise": lambda: kernel_function.apply(x, weight, bias, **settings),
        "grouped GEMM": lambda: grouped.apply(x, weight, bias, groups=channels, **settings),
    }
    sync = (lambda: backend.array_module(args.device).cuda.Device().synchronize()) if args.device == "cuda" else (lambda: None)

    def floor(fn):
        def run():
            with (tinycnn.fast_floor() if floor_fast else tinycnn.reference_floor()):
                return fn()
        return run

    def forward_only(fn):
        def run():
            with tinycnn.no_grad():    # no graph, as in evaluation
                return fn()
        return run

    def forward_backward(fn):
        def run():
            x.grad = weight.grad = bias.grad = None
            fn().sum().backward()
        return run

    out = {}
    for method, fn in methods.items():
        out[("forward", method)] = (floor(forward_only(fn)), sync)
        out[("forward+backward", method)] = (floor(forward_backward(fn)), sync)
    return out


def main():
    args = parse_args()
    if args.device == "cpu":
        set_cpu_threads(args.threads)
    print(f"depthwise convolution vs grouped GEMM, float32, {args.device}"
          + (f", {args.threads} threads" if args.device == "cpu" else ""))
    from tinycnn.fast import depthwise

    print(f"{'layer':<30} {'floor':<9} {'pass':<17} {'multiply-add ms':>15} {'grouped GEMM ms':>16} {'speed':>6}"
          f"  fast floor uses")
    for layer in LAYERS:
        out_pixels = (-(-layer[3] // layer[5])) ** 2
        small_or_strided = out_pixels <= depthwise.MULTIPLY_ADD_MAX_PIXELS or layer[5] != 1
        uses = "multiply-add" if small_or_strided else "grouped GEMM"
        for floor_fast in (False, True):
            fns = calls(layer, floor_fast, args)
            for pass_name in ("forward", "forward+backward"):
                ours, theirs, ratios = interleaved(fns[(pass_name, "depthwise")], fns[(pass_name, "grouped GEMM")],
                                                   rounds=args.rounds, calls=args.repeats, warmup=args.warmup,
                                                   pause=args.pause)
                print(f"{layer[0]:<30} {'fast' if floor_fast else 'reference':<9} {pass_name:<17} "
                      f"{statistics.median(ours) * 1e3:>15.1f} {statistics.median(theirs) * 1e3:>16.1f} "
                      f"{statistics.median(ratios):>5.2f}x  {uses if floor_fast else ''}", flush=True)


if __name__ == "__main__":
    main()
