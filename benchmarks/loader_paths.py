"""Images/s of the DataLoader's two paths on MNIST: the whole set on the device vs per item.

    python benchmarks/loader_paths.py --data-dir ../shared/data [--batch-size 64] [--epochs 3] [--train]

* whole set: ``DataLoader(MNIST(...), shuffle=True)``: the built-in set's arrays are copied
  to the device once, a batch is an index into them (plus the uint8 -> float conversion).
* per item: the same images behind a PyTorch-style map-style ``Dataset`` whose
  ``__getitem__`` returns ``(image float32 (1, 28, 28) in [0, 1], label int)``: the
  loader calls it once per sample and stacks the samples (``default_collate``).
* per item, TensorDataset: the same float images as one tensor, ``TensorDataset(x, y)``.

Prints images/s of loading alone (an epoch of batches, nothing done with them) and, with
``--train``, of LeNet-5 training steps fed by each path, so the loader's share shows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinycnn
from tinycnn import models, nn, optim
from tinycnn.utils.data import DataLoader, Dataset, TensorDataset


class PerItemMNIST(Dataset):
    """MNIST as a PyTorch course writes it: one (image, label) per call."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index].astype(np.float32) / 255.0, int(self.labels[index])


def images_per_second(loader, epochs: int, step=None) -> float:
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for images, labels in loader:
            if step is not None:
                step(images, labels)
            seen += len(labels)
    return seen / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of loading measured per path")
    parser.add_argument("--train", action="store_true", help="also time LeNet-5 training steps fed by each path")
    parser.add_argument("--train-images", type=int, default=6400, help="images per path in the training timing")
    args = parser.parse_args(argv)
    tinycnn.fast.keep_freed_memory()   # as the tinycnn command and the other benchmarks do (README, Speed)

    train = tinycnn.data.MNIST(root=args.data_dir, train=True)
    floats = train.images.astype(np.float32) / 255.0
    loaders = {
        "whole set (built-in MNIST)": lambda n=None: DataLoader(
            train if n is None else tinycnn.data.Subset(train, np.arange(n)), args.batch_size, shuffle=True, seed=0),
        "per item (map-style Dataset)": lambda n=None: DataLoader(
            PerItemMNIST(train.images[:n], train.labels[:n]), args.batch_size, shuffle=True, seed=0),
        "per item (TensorDataset)": lambda n=None: DataLoader(
            TensorDataset(floats[:n], train.labels[:n]), args.batch_size, shuffle=True, seed=0),
    }
    print(f"MNIST train set, {len(train)} images, batch {args.batch_size}, "
          f"{tinycnn.get_num_threads()} worker thread(s), CPU")
    print(f"{'path':32s} {'loading img/s':>14s}" + (f" {'LeNet-5 training img/s':>24s}" if args.train else ""))
    for name, make in loaders.items():
        rate = images_per_second(make(), args.epochs)
        line = f"{name:32s} {rate:14,.0f}"
        if args.train:
            tinycnn.manual_seed(0)
            model = models.lenet5()
            optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()

            def step(images, labels):
                loss = loss_fn(model(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            images_per_second(make(args.batch_size * 4), 1, step)          # warm up
            line += f" {images_per_second(make(args.train_images), 1, step):24,.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
