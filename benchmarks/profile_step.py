"""Where does a training step's time go? Time per op type, forward and backward.

    python benchmarks/profile_step.py                 # LeNet-5 batch 256 and ResNet-20 batch 128
    python benchmarks/profile_step.py --model resnet20 --batch 128 --steps 5

Every ``Function`` subclass's ``forward`` and ``backward`` is wrapped with a timer
for the run, so the table shows milliseconds per step spent in each op type, the
optimizer step, and the rest ("engine + Python": graph bookkeeping, module calls,
gradient accumulation), with the median over ``--steps`` steps. CPU only.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time

from report import set_cpu_threads


def all_functions(base):
    for sub in base.__subclasses__():
        yield sub
        yield from all_functions(sub)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["lenet5", "resnet20", "both"], default="both")
    parser.add_argument("--batch", type=int, default=None, help="default: 256 for LeNet-5, 128 for ResNet-20")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    set_cpu_threads(args.threads)   # before NumPy is imported

    import tinycnn
    from tinycnn import models, nn
    from tinycnn.tensor import Function

    spent = collections.defaultdict(float)  # (op, "fwd"/"bwd") -> seconds

    def timed(cls, method_name):
        original = getattr(cls, method_name)

        def wrapper(self, *a, **k):
            start = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                spent[(cls.__name__, method_name[:3].replace("for", "fwd").replace("bac", "bwd"))] += \
                    time.perf_counter() - start
        return wrapper

    import tinycnn.functional  # noqa: F401  (loads every op)
    for cls in set(all_functions(Function)):
        for method_name in ("forward", "backward"):
            if method_name in cls.__dict__:
                setattr(cls, method_name, timed(cls, method_name))

    runs = [("lenet5", 256, (1, 28, 28)), ("resnet20", 128, (3, 32, 32))]
    if args.model != "both":
        runs = [r for r in runs if r[0] == args.model]
    for name, batch, shape in runs:
        batch = args.batch or batch
        tinycnn.manual_seed(0)
        model = getattr(models, name)(num_classes=10, in_channels=shape[0])
        optimizer = tinycnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        x, y = tinycnn.randn(batch, *shape), tinycnn.randint(0, 10, (batch,))
        per_step = collections.defaultdict(list)
        for step in range(args.steps + 2):
            spent.clear()
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            t_opt = time.perf_counter()
            optimizer.step()
            end = time.perf_counter()
            if step < 2:
                continue  # warm-up
            per_step["total"].append(end - start)
            per_step["optimizer step"].append(end - t_opt)
            ops = sum(spent.values())
            per_step["engine + Python"].append(t_opt - start - ops)
            for key, seconds in spent.items():
                per_step[key].append(seconds)
        med = {k: 1e3 * statistics.median(v + [0.0] * (args.steps - len(v))) for k, v in per_step.items()}
        total = med.pop("total")
        print(f"\n{name} batch {batch}: {total:.1f} ms per training step (median of {args.steps})")
        for key, ms in sorted(med.items(), key=lambda kv: -kv[1]):
            label = key if isinstance(key, str) else f"{key[0]} {key[1]}"
            print(f"  {label:<28}{ms:8.2f} ms {100 * ms / total:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
