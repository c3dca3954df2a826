"""The model zoo in one table: size, FLOPs, speed, memory and accuracy after a fixed budget.

    python benchmarks/models.py --data-dir ../shared/data                 # CPU, 2 threads, every model
    python benchmarks/models.py --models lenet5 resnet20 --no-accuracy    # speed and size only
    python benchmarks/models.py --device cuda --data-dir ../shared/data --train-size 0 --json models.json

For every model in ``tinycnn.models.MODELS``, on the data set it is meant for
(small_cnn: shapes, 6 classes, 3x32x32; lenet5: MNIST, 1x28x28; vgg_small, resnet20/32/56:
CIFAR-10, 3x32x32):

* **params**: ``count_parameters``.
* **MFLOP/img**: forward FLOPs per image, counted analytically: 2 x multiply-adds of every
  conv2d and linear op, from the shapes they see in one forward on a dummy batch
  (``forward_flops`` of ``benchmarks/throughput.py``; elementwise ops, pooling and batch
  norm are not counted).
* **train img/s**: training steps (zero_grad, forward, loss, backward, SGD momentum step) on a
  fixed random batch of the recipe's batch size (shapes 64, else 128); median over
  ``--steps`` steps, or more until 1 s has been timed, after 2 warm-up steps.
* **latency**: inference (eval mode, no graph) on a random batch; median ms per call at
  batch 1 and at ``--infer-batch`` (128), the latter also as ms per image.
* **peak MB**: peak memory of the training steps, measured as the growth of
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident set) during the timed
  training steps, in a fresh subprocess per model (after imports, the model and the batch
  exist). It includes the activations saved for backward, gradients, optimizer state and
  the allocator's slack, not the weights (already resident). ``tracemalloc`` is not used.
  On CUDA the column is not measured (``-``).
* **acc**: test accuracy after ``--budget-epochs`` epochs (default 1) of the data set's
  ``tinycnn train`` recipe (``tinycnn.runner.run_training``; optimizer, lr, schedule laid out
  for the budget, augmentation), trained on the first ``--train-size`` training images
  (default 5000 on the CPU to keep the run short, ``0``: all), no validation split,
  evaluated once on the full test set. One change to the recipe: the CIFAR-10 multistep
  schedule (lr / 10 at 50% and 75% of the epochs) is replaced by a constant lr when the budget is
  under 4 epochs, where its milestones would fall on epoch 0 (``tinycnn train --epochs 1`` on
  CIFAR-10 trains at lr 0.001 instead of 0.1). A budget this small ranks speed of learning, not
  final accuracy. ``--no-accuracy`` skips it.

The default CPU run takes about 7-8 minutes on 2 cores (most of it resnet32/56).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from report import machine_info, set_cpu_threads, write_json

HERE = os.path.dirname(os.path.abspath(__file__))

# model: (data set, number of classes, input shape (C, H, W), recipe batch size)
SETUPS = {
    "small_cnn": ("shapes", 6, (3, 32, 32), 64),
    "lenet5": ("mnist", 10, (1, 28, 28), 128),
    "vgg_small": ("cifar10", 10, (3, 32, 32), 128),
    "resnet20": ("cifar10", 10, (3, 32, 32), 128),
    "resnet32": ("cifar10", 10, (3, 32, 32), 128),
    "resnet56": ("cifar10", 10, (3, 32, 32), 128),
    # the torchvision twins, at 32x32 with small_input=True (as tinycnn train builds them for CIFAR-10)
    **{name: ("cifar10", 10, (3, 32, 32), 128) for name in ("alexnet", "vgg11_bn", "vgg16_bn", "googlenet", "resnet18",
                                                           "mobilenet_v2", "densenet121", "efficientnet_b0",
                                                           "squeezenet1_1")},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (CPU)")
    parser.add_argument("--models", nargs="+", default=None, help="default: every model in tinycnn.models.MODELS")
    parser.add_argument("--data-dir", default=None, help="where MNIST and CIFAR-10 are (default: tinycnn's)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (median)")
    parser.add_argument("--infer-batch", type=int, default=128, help="batch size of the batched inference latency")
    parser.add_argument("--budget-epochs", type=int, default=1, help="epochs of training for the accuracy column")
    parser.add_argument("--train-size", type=int, default=None,
                        help="training images for the accuracy column (default 5000 on the CPU, all on CUDA; 0: all)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy column (no data sets needed)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)  # one model, in a fresh process
    return parser.parse_args()


def _median_seconds(fn, repeats, sync, warmup=2, min_seconds=1.0, max_calls=500) -> float:
    """Median seconds per call of ``fn``: at least ``repeats`` calls and ``min_seconds`` in all."""
    for _ in range(warmup):
        fn()
        sync()
    times = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < max_calls):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # kilobytes on Linux


def budget_schedule(dataset: str, epochs: int):
    """The recipe's schedule (None), except multistep over fewer than 4 epochs: constant lr ("none").

    The CIFAR-10 recipe divides the lr by 10 at 50% and 75% of the epochs; over 1-3 epochs both
    milestones fall on epoch 0 or 1, and a 1-epoch run would train at lr/100 throughout.
    """
    from tinycnn.runner import DATASETS

    return "none" if DATASETS[dataset]["schedule"] == "multistep" and epochs < 4 else None


def measure(name: str, args) -> dict:
    """Every column for one model (run in its own process, so that ru_maxrss starts fresh)."""
    sys.path.insert(0, HERE)
    from throughput import forward_flops

    import tinycnn
    import tinycnn.nn as nn
    from tinycnn import models, runner

    device = args.device
    dataset, num_classes, shape, batch = SETUPS[name]
    xp = tinycnn.backend.array_module(device)
    sync = (lambda: xp.cuda.Device().synchronize()) if device == "cuda" else (lambda: None)
    kwargs = runner.model_arguments(name, shape[1])   # what tinycnn train builds for this image size

    tinycnn.manual_seed(0)
    model = models.get_model(name, num_classes=num_classes, in_channels=shape[0], **kwargs).to(device)
    row = {"model": name, "dataset": dataset, "input": list(shape), "parameters": models.count_parameters(model)}
    model.eval()
    row["forward_mflop_per_image"] = forward_flops(model, tinycnn.randn(1, *shape, device=device)) / 1e6

    # training steps: (batch, C, H, W) -> logits (batch, classes)
    optimizer = tinycnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = tinycnn.randn(batch, *shape, device=device)
    y = tinycnn.randint(0, num_classes, (batch,), device=device)

    def train_step():
        model.train()
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    rss_before = _maxrss_bytes()
    step_seconds = _median_seconds(train_step, args.steps, sync)
    row["train_batch"] = batch
    row["train_img_s"] = batch / step_seconds
    row["train_peak_mb"] = (_maxrss_bytes() - rss_before) / 2**20 if device == "cpu" else None

    def infer(inputs):
        def run():
            model.eval()
            with tinycnn.no_grad():
                model(inputs)
        return run

    row["latency_b1_ms"] = 1e3 * _median_seconds(infer(tinycnn.randn(1, *shape, device=device)), 21, sync)
    big = tinycnn.randn(args.infer_batch, *shape, device=device)
    row["infer_batch"] = args.infer_batch
    row["latency_batch_ms"] = 1e3 * _median_seconds(infer(big), max(3, args.steps), sync)
    del big

    if not args.no_accuracy:
        from tinycnn.runner import RunConfig, run_training

        train_size = args.train_size if args.train_size is not None else (5000 if device == "cpu" else 0)
        if dataset == "shapes":
            train_size = 0  # the shapes recipe's own 6000 drawn images
        with tempfile.TemporaryDirectory() as out:
            config = RunConfig(dataset=dataset, model=name, data_dir=args.data_dir, epochs=args.budget_epochs,
                               train_size=train_size or None, val_split=0, device=device, out=out, progress=False,
                               schedule=budget_schedule(dataset, args.budget_epochs))
            start = time.perf_counter()
            metrics = run_training(config)
        row["accuracy"] = metrics["test_accuracy"]
        row["accuracy_train_images"] = train_size or ("recipe" if dataset == "shapes" else "all")
        row["accuracy_epochs"] = metrics["epochs"]
        row["accuracy_schedule"] = config.schedule or "recipe"
        row["accuracy_seconds"] = time.perf_counter() - start
    return row


def main():
    args = parse_args()
    if args.device == "cpu":
        set_cpu_threads(args.threads)   # before NumPy is imported (and inherited by the workers)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return 0

    import numpy as np

    from tinycnn.models import MODELS

    names = args.models or list(MODELS)
    for name in names:
        if name not in SETUPS:
            raise SystemExit(f"no benchmark setup for model {name!r} (known: {', '.join(SETUPS)})")
    train_size = args.train_size if args.train_size is not None else (5000 if args.device == "cpu" else 0)
    print(f"models, float32, device={args.device}, threads={args.threads if args.device == 'cpu' else '-'}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}")
    print(f"train img/s: median of {args.steps}+ steps (at least 1 s); latency: median ms per inference call; "
          f"peak MB: ru_maxrss growth over the training steps (fresh process per model)")
    if not args.no_accuracy:
        print(f"acc: test accuracy after {args.budget_epochs} epoch(s) of the tinycnn train recipe on "
              f"{'the first ' + str(train_size) if train_size else 'all'} training images (shapes: 6000), "
              f"no validation split, full test set"
              + ("; CIFAR-10: constant lr instead of multistep" if budget_schedule("cifar10", args.budget_epochs) else ""))
    print()
    header = (f"{'model':<11}{'data':<9}{'params':>10}{'MFLOP/img':>11}{'train img/s':>12}{'b1 ms':>8}"
              f"{'b' + str(args.infer_batch) + ' ms':>9}{'ms/img':>8}{'peak MB':>9}{'acc':>8}")
    print(header)
    print("-" * len(header))

    results = []
    for name in names:
        command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--device", args.device,
                   "--threads", str(args.threads), "--steps", str(args.steps), "--infer-batch", str(args.infer_batch),
                   "--budget-epochs", str(args.budget_epochs)]
        if args.train_size is not None:
            command += ["--train-size", str(args.train_size)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        if args.no_accuracy:
            command.append("--no-accuracy")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name:<11}failed:\n{done.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(row)
        peak = f"{row['train_peak_mb']:.0f}" if row["train_peak_mb"] is not None else "-"
        acc = f"{100 * row['accuracy']:.2f}%" if "accuracy" in row else "-"
        print(f"{name:<11}{row['dataset']:<9}{row['parameters']:>10,}{row['forward_mflop_per_image']:>11.2f}"
              f"{row['train_img_s']:>12.0f}{row['latency_b1_ms']:>8.2f}{row['latency_batch_ms']:>9.1f}"
              f"{row['latency_batch_ms'] / row['infer_batch']:>8.3f}{peak:>9}{acc:>8}", flush=True)

    if args.json:
        info = {**machine_info(args.device, args.threads), "steps": args.steps,
                "budget_epochs": args.budget_epochs, "train_size": train_size or "all"}
        write_json(args.json, info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
