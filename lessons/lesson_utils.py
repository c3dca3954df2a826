"""What every lesson shares: its command-line options, where its figures go, its data.

A lesson is run as ``python lessons/NN_name.py`` and takes

    --quick      a few seconds (the tests run every lesson this way)
    (nothing)    the default: at most about 3 minutes on a 2-core CPU
    --full       the real-size run the text talks about
    --out DIR    where the figures go (default: lessons/out/NN_name/)
    --data-dir   folder holding mnist/, fashion-mnist/, cifar10/ (lessons on real data)
    --download   fetch a missing data set
    --device     cpu or cuda (default: the GPU when CuPy sees one)
    --seed       the random seed (default 0)
    --lenet5     (lessons 11-14) auto, train, or a lesson-6 weights file (see Lesson.mnist_lenet5)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import tinycnn

# As the `tinycnn` command does: let the process reuse freed memory (tinycnn/fast/allocator.py).
tinycnn.fast.keep_freed_memory()

# The exit status of a lesson whose data set is missing: the tests skip on it.
MISSING_DATA = 3

# Where lesson 6 saves its trained LeNet-5 by default (lessons 11-14 reuse it) ...
LESSON6_FILE = "lenet5_mnist.npz"
LESSON6_WEIGHTS = Path(__file__).resolve().parent / "out" / "06_lenet5_mnist" / LESSON6_FILE


def lessons_cache_dir() -> Path:
    """... and the shared cache it also writes to, whatever its --out: ``~/.cache/tinycnn/lessons``
    (``$XDG_CACHE_HOME/tinycnn/lessons`` when that variable is set)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tinycnn" / "lessons"


class Lesson:
    """The parsed options of one lesson plus helpers; ``Lesson(__file__, __doc__)``."""

    def __init__(self, file: str, doc: str, needs_data: bool = False, uses_lenet5: bool = False):
        self.name = Path(file).stem
        parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--quick", action="store_true", help="a few seconds: tiny sizes (for tests)")
        size.add_argument("--full", action="store_true", help="the real-size run")
        parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / self.name,
                            help="folder for the figures")
        parser.add_argument("--device", default="auto",
                            help="cpu, cuda or cuda:N (default: auto, the GPU when there is one)")
        parser.add_argument("--seed", type=int, default=0)
        if needs_data:
            parser.add_argument("--data-dir", help="folder holding mnist/, fashion-mnist/, cifar10/ "
                                                   "(default: $TINYCNN_DATA or ~/.cache/tinycnn)")
            parser.add_argument("--download", action="store_true", help="download the data set if missing")
        if uses_lenet5:
            parser.add_argument("--lenet5", default="auto",
                                help="auto: lesson 6's saved LeNet-5 if one is found (else train one); "
                                     "train: always train a quick one here; or the path of a .npz lesson 6 wrote")
        self.args = parser.parse_args()
        self.quick, self.full = self.args.quick, self.args.full
        self.mode = "quick" if self.quick else "full" if self.full else "default"
        self.device = self.args.device
        if self.device == "auto":
            self.device = "cuda" if tinycnn.cuda_is_available() else "cpu"
        self.out = self.args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.figures: list = []
        tinycnn.manual_seed(self.args.seed)

    def pick(self, quick, default, full):
        """The value for the current size: ``lesson.pick(quick=1, default=5, full=20)``."""
        return {"quick": quick, "default": default, "full": full}[self.mode]

    def figure(self, name: str) -> Path:
        """The path of a figure of this lesson (remembered, and listed at the end)."""
        path = self.out / name
        self.figures.append(path)
        return path

    def dataset(self, cls, train: bool = True):
        """Load a real data set, or say how to get it and exit with ``MISSING_DATA``."""
        try:
            return cls(root=self.args.data_dir, train=train, download=self.args.download)
        except tinycnn.data.DatasetNotFoundError as error:
            print(f"{self.name}: this lesson needs {cls.__name__}.\n{error}\n"
                  f"Run it with --data-dir DIR (a folder holding the data set) or --download.", file=sys.stderr)
            sys.exit(MISSING_DATA)

    def lenet5_candidates(self) -> list:
        """Where lesson 6 may have saved its LeNet-5, in the order they are tried: beside this
        lesson's own --out folder (a run with --out ROOT/NN_name for every lesson), lesson 6's
        default folder, then the shared cache lesson 6 writes to whatever its --out."""
        places = [self.out.parent / "06_lenet5_mnist" / LESSON6_FILE, LESSON6_WEIGHTS,
                  lessons_cache_dir() / LESSON6_FILE]
        unique = []
        for place in places:
            if place.resolve() not in [u.resolve() for u in unique]:
                unique.append(place)
        return unique

    def mnist_lenet5(self, n_train=None):
        """A LeNet-5 trained on MNIST: lesson 6's if it is saved and good (>= 97% on 2,000
        test digits), else one epoch of Adam here on ``n_train`` digits (about 97-98%).

        ``--lenet5 auto`` (the default) tries :meth:`lenet5_candidates`; ``--lenet5 train``
        always trains one here (to check a lesson's conclusions without lesson 6's network);
        ``--lenet5 FILE`` loads that file."""
        from tinycnn import models, optim
        from tinycnn.data import MNIST, MNIST_MEAN, MNIST_STD, Compose, DataLoader, Normalize, Subset, ToFloat
        from tinycnn.train import evaluate, fit

        prepare = Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)])
        test_digits = Subset(self.dataset(MNIST, train=False), np.arange(2000))
        test_loader = DataLoader(test_digits, batch_size=500, transform=prepare, device=self.device)
        choice = getattr(self.args, "lenet5", "auto")
        if choice == "train":
            places = []
            print("--lenet5 train: training a LeNet-5 here instead of loading lesson 6's")
        elif choice == "auto":
            places = [p for p in self.lenet5_candidates() if p.exists()]
            if not places:
                print("no saved LeNet-5 from lesson 6 (looked in "
                      + ", ".join(str(p.parent) for p in self.lenet5_candidates())
                      + "; run lessons/06_lenet5_mnist.py first to reuse it): training one")
        else:
            places = [Path(choice)]
            if not places[0].exists():
                sys.exit(f"{self.name}: --lenet5 {choice}: no such file (expected a .npz lesson 6 wrote, "
                         "or 'auto' or 'train')")
        for place in places:
            model = models.lenet5().to(self.device)
            model.load_state_dict(tinycnn.load(place)["model"])
            accuracy = evaluate(model, test_loader)["accuracy"]
            if accuracy >= 0.97:
                print(f"loaded lesson 6's LeNet-5 ({place}): {100 * accuracy:.2f}% on 2,000 MNIST test digits")
                return model
            print(f"lesson 6's LeNet-5 in {place} reaches only {100 * accuracy:.1f}% (a --quick run?): not used")
        if places:
            print("training a LeNet-5 here")
        model = models.lenet5().to(self.device)
        n_train = n_train or self.pick(quick=1000, default=30000, full=55000)
        train_digits = Subset(self.dataset(MNIST, train=True), np.arange(n_train))
        loader = DataLoader(train_digits, batch_size=64, shuffle=True, seed=self.args.seed, transform=prepare,
                            device=self.device)
        start = time.perf_counter()
        fit(model, loader, optim.Adam(model.parameters(), lr=2e-3), epochs=1, progress=False)
        print(f"trained LeNet-5 on {n_train:,} MNIST digits for one epoch in {time.perf_counter() - start:.0f}s: "
              f"{100 * evaluate(model, test_loader)['accuracy']:.2f}% on 2,000 MNIST test digits")
        return model

    def finish(self) -> None:
        """Say where the figures went."""
        if self.figures:
            print(f"\nFigures written to {self.out}/:")
            for path in self.figures:
                print(f"  {path.name}")
