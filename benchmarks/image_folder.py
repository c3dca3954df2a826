"""How fast a folder of your own images is read, and what the cache buys.

Writes a folder of N generated photos-like images (default 10,000: JPEG and PNG,
40-120 pixels a side, three classes) into a temporary directory, then times
``tinycnn.data.ImageFolder`` reading it to 32x32:

* decoding in this process, and in one worker process per core (the default;
  the time includes starting the processes and writing the cache);
* the second read of the unchanged folder, which comes from the cache;
* ``tinycnn predict``'s work on every file of the folder (read, then classified
  by a small CNN in batches of 256), as images/s.

    python benchmarks/image_folder.py [--images 10000] [--size 32]

Prints images/s for each and the cache's speed-up over decoding on all cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from report import machine_info


def write_folder(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    classes = ("one", "two", "three")
    for name in classes:
        (root / name).mkdir(parents=True)
    for i in range(n):
        height, width = rng.integers(40, 121, 2)
        base = rng.integers(0, 256, 3)
        picture = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(picture).save(root / classes[i % 3] / f"{i}.{'jpg' if i % 2 else 'png'}")


def timed(**kwargs) -> tuple:
    from tinycnn.data import ImageFolder

    start = time.perf_counter()
    folder = ImageFolder(progress=False, **kwargs)
    return time.perf_counter() - start, folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    from tinycnn.backend import usable_cores

    cores = usable_cores()
    print(machine_info("cpu", cores), f"Pillow {Image.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "folder"
        start = time.perf_counter()
        write_folder(root, args.images)
        megabytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
        print(f"wrote {args.images:,} images ({megabytes:.0f} MB, JPEG and PNG, 40-120 px) in "
              f"{time.perf_counter() - start:.1f} s")
        os.environ["TINYCNN_DATA"] = str(Path(tmp) / "cache")  # a cache of its own, removed at the end
        one, _ = timed(root=root, image_size=args.size, workers=1, cache=False)
        every, folder = timed(root=root, image_size=args.size, cache=True)
        cached, again = timed(root=root, image_size=args.size, cache=True)
        assert np.array_equal(folder.images, again.images)
        n = len(folder)
        print(f"decode, this process:     {one:7.2f} s  {n / one:9,.0f} images/s")
        print(f"decode, {cores} processes:      {every:7.2f} s  {n / every:9,.0f} images/s  "
              f"({one / every:.2f}x; includes starting them and writing the cache)")
        print(f"second read (from cache): {cached:7.2f} s  {n / cached:9,.0f} images/s  "
              f"({every / cached:.0f}x the decoding read)")
        seconds = time_predict(root, folder, args.size)
        print(f"predict every file:       {seconds:7.2f} s  {n / seconds:9,.0f} images/s  (small_cnn, batches of 256)")


def time_predict(root: Path, folder, size: int) -> float:
    """Seconds for tinycnn predict's part of the work on every file: read, classify in batches."""
    from tinycnn import models
    from tinycnn.predict_files import Item, classify_files

    model = models.small_cnn(num_classes=len(folder.classes), input_size=size)
    meta = {"classes": list(folder.classes), "image_shape": [3, size, size], "mean": [0.5] * 3, "std": [0.25] * 3,
            "resize": "crop", "background": [0, 0, 0]}
    items = [Item(Path(p)) for p in folder.files]
    start = time.perf_counter()
    classify_files(model, meta, items, progress=False)
    assert all(item.top for item in items)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
