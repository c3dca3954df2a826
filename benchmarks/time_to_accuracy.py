"""Time to accuracy: wall seconds until a ``tinycnn train`` recipe reaches a test accuracy.

    python benchmarks/time_to_accuracy.py --data-dir ../shared/data                  # LeNet-5/MNIST on the CPU
    python benchmarks/time_to_accuracy.py --device cuda --data-dir ../shared/data \\
        --targets lenet5-mnist resnet20-cifar10 --json tta.json                       # both, on a GPU

Targets (``name``: model, data set, test accuracy to reach):

* ``lenet5-mnist``: LeNet-5 on MNIST, 99.0%;
* ``resnet20-cifar10``: ResNet-20 on CIFAR-10, 91%. Meant for a GPU (the recipe is up to 182
  epochs of 45,000 images, about 5 minutes each on a 2-core CPU): on the CPU it is skipped,
  with a note, unless it is named explicitly in ``--targets``.

Each run uses the data set's default recipe of ``tinycnn train`` (``tinycnn.runner.DATASETS``:
model, epochs, batch size, optimizer, learning rate and schedule, weight decay, augmentation,
the seeded validation split held out of the training set, seed 0), built with the
``tinycnn.runner`` pieces, and trains it with ``tinycnn.train.fit``. The learning-rate
schedule is laid out for the recipe's full epoch count, exactly as in ``tinycnn train``;
the run just stops early.

**Time-to-accuracy convention**: after every epoch the TEST set is evaluated and the run
stops at the first epoch whose test accuracy reaches the target. This looks at the test
set during training, which is right for this measurement only (as in DAWNBench / MLPerf
"time to accuracy"); it is *not* model selection: ``tinycnn train`` selects on its
validation split and looks at the test set once. The validation pass itself is skipped
here (it does not change the training), so the time is training + test evaluation.

Reported: epochs to target, wall seconds (training + the per-epoch test evaluations,
excluding data loading and model construction, which are timed separately), and the
accuracy curve (test accuracy after every epoch).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from report import machine_info, set_cpu_threads, write_json

TARGETS = {
    # name: (dataset, target test accuracy, runs on the CPU by default?)
    "lenet5-mnist": ("mnist", 0.990, True),
    "resnet20-cifar10": ("cifar10", 0.91, False),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (CPU)")
    parser.add_argument("--data-dir", default=None, help="where the data sets are (default: tinycnn's data directory)")
    parser.add_argument("--targets", nargs="+", default=None, choices=list(TARGETS),
                        help="default: every target that suits the device (on the CPU: lenet5-mnist)")
    parser.add_argument("--progress", action="store_true", help="show the per-batch progress bar")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args()


class _Reached(Exception):
    """Raised from the epoch callback to stop ``fit`` once the target is reached."""


def time_to_accuracy(dataset: str, target: float, device: str, data_dir, progress: bool) -> dict:
    """Train ``dataset``'s default recipe until the test accuracy reaches ``target``."""
    from tinycnn import backend
    from tinycnn.runner import Plan, RunConfig, build_training, loss_function, prepare_data
    from tinycnn.train import evaluate, fit

    config = RunConfig(dataset=dataset, data_dir=data_dir, device=device, progress=progress, out=os.devnull).resolved()
    setup_start = time.perf_counter()
    backend.manual_seed(config.seed)
    # the same data pipeline and parts as tinycnn train: seeded validation split, stats of the training part
    run_data = prepare_data(config)
    parts = build_training(Plan(config, Path(os.devnull)), run_data)
    model, optimizer, train_set, test_loader = parts.model, parts.optimizer, run_data.train_set, run_data.test_loader
    setup_seconds = time.perf_counter() - setup_start

    recipe = {k: getattr(config, k) for k in ("model", "epochs", "batch_size", "optimizer", "lr", "momentum",
                                              "weight_decay", "schedule", "augment", "val_split", "seed")}
    recipe["train_images"] = len(train_set)
    print(f"{dataset}: {config.model}, target {100 * target:.1f}% test accuracy, {len(train_set):,} training images, "
          f"device {device}")
    print("recipe (tinycnn train default): " + ", ".join(f"{k}={v}" for k, v in recipe.items()), flush=True)

    curve = []
    start = time.perf_counter()

    def after_epoch(state):
        test = evaluate(model, test_loader, loss_function(config))
        elapsed = time.perf_counter() - start
        record = state.history[-1]
        curve.append({"epoch": state.epoch, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                      "train_seconds": record["seconds"], "wall_seconds": elapsed})
        print(f"  epoch {state.epoch:3d}  test acc {100 * test['accuracy']:6.2f}%  "
              f"(epoch {record['seconds']:.1f}s training, {elapsed:.1f}s wall so far)", flush=True)
        if test["accuracy"] >= target:
            raise _Reached

    reached = False
    try:
        fit(model, run_data.train_loader, optimizer, config.epochs, scheduler=parts.scheduler,
            step_scheduler_per_batch=parts.per_batch, loss_fn=loss_function(config), on_epoch_end=after_epoch,
            progress=progress, restore_best=False)
    except _Reached:
        reached = True
    wall = time.perf_counter() - start
    return {
        "target": dataset, "model": config.model, "target_accuracy": target, "reached": reached,
        "epochs": len(curve), "wall_seconds": wall,
        "train_seconds": sum(c["train_seconds"] for c in curve),
        "final_test_accuracy": curve[-1]["test_accuracy"] if curve else None,
        "setup_seconds": setup_seconds, "recipe": recipe, "curve": curve,
    }


def main():
    args = parse_args()
    if args.device == "cpu":
        set_cpu_threads(args.threads)   # before NumPy is imported
    import numpy as np

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads if args.device == "cpu" else None)
    except ImportError:
        pass

    names = args.targets
    if names is None:
        names = [n for n, (_, _, on_cpu) in TARGETS.items() if on_cpu or args.device == "cuda"]
        for n, (_, _, on_cpu) in TARGETS.items():
            if not on_cpu and args.device == "cpu":
                print(f"skipping {n}: meant for a GPU (its recipe is 182 epochs; one epoch of ResNet-20 takes "
                      f"several minutes on a 2-core CPU). Name it in --targets to run it anyway.")
    print(f"time to accuracy, device={args.device}, threads={args.threads if args.device == 'cpu' else '-'}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}")
    print("convention: the TEST set is evaluated after every epoch and the run stops at the first epoch that "
          "reaches the target (time-to-accuracy only; not model selection)\n")

    results = []
    for name in names:
        dataset, target, _ = TARGETS[name]
        result = time_to_accuracy(dataset, target, args.device, args.data_dir, args.progress)
        result["name"] = name
        results.append(result)
        print()

    header = f"{'target':<18}{'goal':>7}{'reached':>9}{'epochs':>8}{'wall s':>9}{'train s':>9}{'final acc':>11}"
    print(header)
    print("-" * len(header))
    for r in results:
        final = f"{100 * r['final_test_accuracy']:.2f}%" if r["final_test_accuracy"] is not None else "-"
        print(f"{r['name']:<18}{100 * r['target_accuracy']:>6.1f}%{'yes' if r['reached'] else 'no':>9}"
              f"{r['epochs']:>8}{r['wall_seconds']:>9.1f}{r['train_seconds']:>9.1f}{final:>11}")
    for r in results:
        print(f"\n{r['name']} accuracy curve (epoch: test accuracy): "
              + ", ".join(f"{c['epoch']}: {100 * c['test_accuracy']:.2f}%" for c in r["curve"]))

    if args.json:
        write_json(args.json, machine_info(args.device, args.threads), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
