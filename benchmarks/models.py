"""The model zoo in one table: size, FLOPs, speed, memory, and what each learns in the same time.

    python benchmarks/models.py --data-dir ../shared/data --json models.json      # every model, 5 min each
    python benchmarks/models.py --models lenet5 resnet20 --no-accuracy            # speed and size only
    python benchmarks/models.py --blocks --data-dir ../shared/data                # depthwise vs standard conv
    python benchmarks/models.py --device cuda --epochs 30 --data-dir ../shared/data   # GPU: a fixed number of epochs

Every model of ``tinycnn.models.MODELS`` is measured on CIFAR-10's shape, 3x32x32 images and 10
classes (LeNet-5 and the small CNN built for 32x32 inputs; the torchvision twins with
``small_input=True``, their CIFAR adaptation), each in a fresh process:

* **params**: ``count_parameters``.
* **MMAC/img**: forward multiply-adds per image (millions) of every convolution and linear
  layer, counted from the shapes they see in one forward (``tinycnn.models.count_flops``), the
  unit papers and torchvision call "FLOPs"; element-wise ops, pooling and batch norm are left out.
* **train img/s**: training steps (zero_grad, forward, loss, backward, SGD momentum step) on a
  fixed random batch of 128; median over ``--steps`` steps, or more until 1 s has been timed,
  after 2 warm-up steps.
* **b1 ms / ms/img**: inference (eval mode, no graph), median ms per call at batch 1, and per
  image at batch 64.
* **peak MB**: the growth of the peak resident set (``ru_maxrss``) during the timed training
  steps: the activations kept for backward, the gradients, the optimizer's state and the
  allocator's slack; the weights were resident before. Not measured on CUDA.
* **acc**: CIFAR-10 test accuracy (all 10,000 test images) after the same training budget for
  every model: ``--minutes`` (default 5) of training on this machine's cores, one recipe, the full
  50,000 training images (see ``RECIPE``). The budget is wall-clock time less the share of the
  cores other processes took meanwhile (``BudgetClock``), so other work on the machine shortens
  no model's share; the wall time and that share are printed beside it.
  Evaluation is not in the budget. The
  learning rate follows the budget: a warm-up over its first 5%, then a cosine to zero at its
  end, so every model ends its run annealed.

With ``--device cuda`` the budget is ``--epochs`` epochs instead (a GPU's throughput would make
a time budget a contest of tiny models); no GPU figure is printed unless it was measured.

``--blocks`` adds the row the MobileNet paper is about: a network of depthwise-separable
blocks (3x3 depthwise + 1x1 pointwise, each with batch norm and ReLU6) against the same network
with a standard 3x3 convolution in each block: FLOPs, parameters, training speed and accuracy
after the same budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from report import machine_info, set_cpu_threads, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
INPUT = (3, 32, 32)
CLASSES = 10

# one recipe for every model (the accuracy column)
RECIPE = {
    "optimizer": "AdamW", "lr": 2e-3, "weight_decay": 0.05, "batch_size": 128,
    "augment": "random crop (4-pixel padding) + horizontal flip", "warmup": 0.05, "schedule": "cosine over the budget",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads and tinycnn workers (CPU)")
    parser.add_argument("--models", nargs="+", default=None, help="default: every model in tinycnn.models.MODELS")
    parser.add_argument("--data-dir", default=None, help="where CIFAR-10 is (default: tinycnn's)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (median)")
    parser.add_argument("--infer-batch", type=int, default=64, help="batch size of the batched inference latency")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per model (CPU)")
    parser.add_argument("--epochs", type=int, default=30, help="training budget per model (CUDA)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy column (no data set needed)")
    parser.add_argument("--blocks", action="store_true",
                        help="only the depthwise-separable against standard convolution comparison")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that every model runs through the script (6 s budget, 1,000 test images, "
                             "1 timed step): its numbers mean nothing")
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


# --------------------------------------------------------------------------- the models
def build(name: str):
    """A zoo model for 3x32x32 images and 10 classes, or one of the two ``--blocks`` networks."""
    from tinycnn import models

    if name in BLOCK_NETS:
        return block_net(depthwise=name == "separable_blocks")
    from tinycnn.runner import model_arguments

    kwargs = model_arguments(name, INPUT[1])   # as tinycnn train builds it for 32x32 images (small_input=True)
    return models.get_model(name, num_classes=CLASSES, in_channels=INPUT[0], **kwargs)


BLOCK_NETS = ("separable_blocks", "standard_blocks")
BLOCK_WIDTHS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))  # (channels, stride)


def block_net(depthwise: bool):
    """A 3x3 stem, seven blocks, global average pooling and a linear head (3x32x32 -> 10).

    Each block either a depthwise 3x3 convolution then a pointwise 1x1 (MobileNet's separable
    block), or one standard 3x3 convolution with the same input and output channels and stride.
    """
    from tinycnn import nn

    def unit(cin, cout, kernel, stride, groups=1):
        return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU6()]

    layers, cin = unit(3, 32, 3, 1), 32
    for cout, stride in BLOCK_WIDTHS:
        if depthwise:
            layers += unit(cin, cin, 3, stride, groups=cin) + unit(cin, cout, 1, 1)
        else:
            layers += unit(cin, cout, 3, stride)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, CLASSES))


# --------------------------------------------------------------------------- one model's columns
def measure(name: str, args) -> dict:
    """Every column for one model (run in its own process, so that ru_maxrss starts fresh)."""
    import tinycnn
    import tinycnn.nn as nn
    from tinycnn.models import count_flops, count_parameters
    from tinycnn.train import logits_and_loss

    device = args.device
    xp = tinycnn.backend.array_module(device)
    sync = (lambda: xp.cuda.Device().synchronize()) if device == "cuda" else (lambda: None)

    tinycnn.manual_seed(0)
    model = build(name).to(device)
    row = {"model": name, "input": list(INPUT), "parameters": count_parameters(model)}
    model.eval()
    row["forward_mmac_per_image"] = count_flops(model, INPUT) / 1e6

    optimizer = tinycnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batch = 128
    x = tinycnn.randn(batch, *INPUT, device=device)
    y = tinycnn.randint(0, CLASSES, (batch,), device=device)

    def train_step():
        model.train()
        optimizer.zero_grad()
        logits_and_loss(model(x), y, loss_fn)[1].backward()   # GoogLeNet adds its auxiliary heads' losses
        optimizer.step()

    speed_clock = BudgetClock()
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

    row["latency_b1_ms"] = 1e3 * _median_seconds(infer(tinycnn.randn(1, *INPUT, device=device)), 21, sync)
    row["infer_batch"] = args.infer_batch
    big = tinycnn.randn(args.infer_batch, *INPUT, device=device)
    row["latency_batch_ms"] = 1e3 * _median_seconds(infer(big), max(3, args.steps), sync)
    del big
    row["speed_others_share"] = speed_clock.others_took() / speed_clock.wall()   # > 0.05: other work disturbed the timing

    if not args.no_accuracy:
        row.update(train_on_budget(name, args))
    return row


class BudgetClock:
    """Seconds of training used so far: wall time, less the share of the cores other processes took.

    Linux counts the busy time of each core (``/proc/stat``) and of this process's threads
    (``/proc/self/stat``). What the cores this process may run on spent on other processes,
    spread over those cores, is time this process could not have used, so it is taken off the
    wall clock. A model's own threads competing with each other (or leaving a core idle) still
    count against it, as on a laptop. On a quiet machine it reads as the wall clock; without
    ``/proc``, it is the wall clock.
    """

    def __init__(self):
        self.cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.wall_start = time.perf_counter()
        self.others_start = self._others_busy()

    def _others_busy(self) -> float:
        """Seconds this process's cores have been busy with other processes, since boot."""
        try:
            with open("/proc/stat") as file:
                per_core = {int(line.split()[0][3:]): [int(v) for v in line.split()[1:]]
                            for line in file if line.startswith("cpu") and line[3].isdigit()}
            with open("/proc/self/stat") as file:
                own = file.read().rsplit(")", 1)[1].split()     # after the command name, which may hold spaces
        except (OSError, ValueError, IndexError):
            return 0.0
        busy = 0
        for core in self.cores if self.cores is not None else per_core:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (per_core.get(core, []) + [0] * 8)[:8]
            busy += user + nice + system + irq + softirq + steal
        return (busy - int(own[11]) - int(own[12])) / os.sysconf("SC_CLK_TCK")  # less utime, stime

    def others_took(self) -> float:
        """Seconds of this process's cores that other processes took since the start, per core."""
        cores = len(self.cores) if self.cores is not None else os.cpu_count() or 1
        return max(0.0, (self._others_busy() - self.others_start) / cores)

    def wall(self) -> float:
        return time.perf_counter() - self.wall_start

    def used(self) -> float:
        return self.wall() - self.others_took()


def lr_at(fraction: float, peak: float) -> float:
    """The recipe's learning rate after ``fraction`` of the budget: linear warm-up, then cosine to 0."""
    warmup = RECIPE["warmup"]
    if fraction < warmup:
        return peak * (fraction + 1e-3) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (fraction - warmup) / (1 - warmup))))


def train_on_budget(name: str, args) -> dict:
    """Train ``name`` on all of CIFAR-10's training set for the budget; test accuracy at the end."""
    import numpy as np

    import tinycnn
    from tinycnn import data
    from tinycnn.runner import RunConfig, prepare_data
    from tinycnn.train import TrainingDiverged, evaluate, logits_and_loss

    device = args.device
    config = RunConfig(dataset="cifar10", model="resnet20", data_dir=args.data_dir, val_split=0, device=device,
                       batch_size=RECIPE["batch_size"], augment="crop,flip", progress=False, seed=0)
    run_data = prepare_data(config)
    tinycnn.manual_seed(0)
    model = build(name).to(device)
    optimizer = tinycnn.optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    loss_fn = tinycnn.nn.CrossEntropyLoss()

    on_cpu = device == "cpu"
    budget_s = 60 * args.minutes
    clock = BudgetClock()
    steps_per_epoch = len(run_data.train_loader)
    total_steps = args.epochs * steps_per_epoch
    images = steps = 0
    last_losses = []
    model.train()
    while True:
        for inputs, labels in run_data.train_loader:
            fraction = clock.used() / budget_s if on_cpu else steps / total_steps
            if fraction >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(fraction, RECIPE["lr"])
            optimizer.zero_grad()
            _, loss = logits_and_loss(model(inputs), labels, loss_fn)
            loss.backward()
            optimizer.step()
            steps += 1
            images += len(labels)
            if steps % 20 == 0:  # reading the loss waits for the device: not every step
                value = float(loss.item())
                if not np.isfinite(value):
                    raise TrainingDiverged(f"{name}: the loss became {value} at step {steps}")
                last_losses = (last_losses + [value])[-10:]
        else:
            continue
        break
    trained_wall, others_took = clock.wall(), clock.others_took()
    test_loader = run_data.test_loader
    if args.smoke:
        test_loader = data.DataLoader(data.Subset(run_data.test_set, np.arange(1000)), batch_size=RECIPE["batch_size"],
                                      transform=test_loader.transform, device=device)
    test = evaluate(model, test_loader)
    return {
        "accuracy": test["accuracy"], "train_loss": float(np.mean(last_losses)) if last_losses else None,
        "train_images": images, "epochs_seen": images / len(run_data.train_set), "steps": steps,
        "budget_minutes": args.minutes if on_cpu else None, "budget_epochs": None if on_cpu else args.epochs,
        "train_wall_s": trained_wall, "others_took_s": others_took,
    }


# --------------------------------------------------------------------------- the table
def main():
    args = parse_args()
    if args.smoke:
        args.minutes, args.epochs, args.steps = 0.1, 1, 1
    if args.device == "cpu":
        set_cpu_threads(args.threads)   # before NumPy is imported (and inherited by the workers)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return 0

    import numpy as np

    from tinycnn.models import MODELS

    names = list(BLOCK_NETS) if args.blocks else (args.models or list(MODELS))
    for name in names:
        if name not in MODELS and name not in BLOCK_NETS:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join([*MODELS, *BLOCK_NETS])}")
    print(f"models on 3x32x32 inputs, 10 classes, float32, device={args.device}, "
          f"threads={args.threads if args.device == 'cpu' else '-'}, NumPy {np.__version__}, "
          f"Python {platform.python_version()}")
    print(f"train img/s: batch 128, median of {args.steps}+ steps; b1 ms: latency at batch 1; ms/img: at batch "
          f"{args.infer_batch}; peak MB: ru_maxrss growth over the training steps (fresh process per model)")
    if not args.no_accuracy:
        budget = (f"{args.minutes:g} min of training (wall time less the share of the cores other processes took)"
                  if args.device == "cpu" else f"{args.epochs} epochs")
        test_images = "1,000" if args.smoke else "10,000"
        print(f"acc: CIFAR-10 test accuracy ({test_images} images) after {budget}, all 50,000 training images; recipe: "
              + ", ".join(f"{key} {value}" for key, value in RECIPE.items()))
    print()
    header = (f"{'model':<17}{'params':>12}{'MMAC/img':>11}{'train img/s':>12}{'b1 ms':>8}{'ms/img':>8}"
              f"{'peak MB':>9}{'acc':>8}{'epochs':>8}{'wall s':>8}{'others':>8}")
    print(header)
    print("-" * len(header))

    results = []
    for name in names:
        command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--device", args.device,
                   "--threads", str(args.threads), "--steps", str(args.steps), "--infer-batch", str(args.infer_batch),
                   "--minutes", str(args.minutes), "--epochs", str(args.epochs)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        if args.no_accuracy:
            command.append("--no-accuracy")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name:<17}failed:\n{done.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(row)
        peak = f"{row['train_peak_mb']:.0f}" if row["train_peak_mb"] is not None else "-"
        acc = f"{100 * row['accuracy']:.2f}%" if "accuracy" in row else "-"
        epochs = f"{row['epochs_seen']:.2f}" if "epochs_seen" in row else "-"
        wall = f"{row['train_wall_s']:.0f}" if "train_wall_s" in row else "-"
        others = f"{row['others_took_s']:.0f}" if "others_took_s" in row else "-"
        print(f"{name:<17}{row['parameters']:>12,}{row['forward_mmac_per_image']:>11.1f}{row['train_img_s']:>12.1f}"
              f"{row['latency_b1_ms']:>8.1f}{row['latency_batch_ms'] / row['infer_batch']:>8.2f}{peak:>9}{acc:>8}"
              f"{epochs:>8}{wall:>8}{others:>8}", flush=True)

    if args.json:
        info = {**machine_info(args.device, args.threads), "steps": args.steps, "input": list(INPUT),
                "recipe": RECIPE, "minutes": args.minutes if args.device == "cpu" else None,
                "epochs": args.epochs if args.device == "cuda" else None}
        write_json(args.json, info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
