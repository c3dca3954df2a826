"""Helpers for the ``tinycnn explore`` tests: a small grey 28x28 run trained in seconds, and a server in a thread.

Not a test module (no ``test_`` prefix); imported by test_explore_server.py and test_explore_browser.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from tinycnn.cli import main

CLASSES = ("bar", "cross", "pole")  # a horizontal stroke, both, a vertical stroke


def stroke_image(kind: str, rng) -> np.ndarray:
    """A 28x28 uint8 picture of light strokes on black, placed and sized at random, like a drawn digit."""
    image = np.zeros((28, 28), dtype=np.float64)
    row, col = rng.integers(8, 20, size=2)
    half = rng.integers(6, 10)
    width = rng.integers(2, 4)
    if kind in ("bar", "cross"):
        image[row: row + width, max(0, col - half): col + half] = 1.0
    if kind in ("pole", "cross"):
        image[max(0, row - half): row + half, col: col + width] = 1.0
    image = image * rng.uniform(0.6, 1.0) + rng.normal(0, 0.08, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def write_stroke_folder(root: Path, train_per_class: int = 80, test_per_class: int = 20, seed: int = 0) -> Path:
    """An image folder (train/ and test/, one sub-folder per class) of grey 28x28 PNGs."""
    rng = np.random.default_rng(seed)
    for part, count in (("train", train_per_class), ("test", test_per_class)):
        for kind in CLASSES:
            folder = root / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(stroke_image(kind, rng)).save(folder / f"{i}.png")
    return root


def train_stroke_run(tmp: Path) -> Path:
    """``tinycnn train`` of LeNet-5 on the stroke folder (2 epochs, a few seconds); the run folder."""
    images = write_stroke_folder(tmp / "strokes")
    out = tmp / "strokes-lenet5"
    code = main(["train", "--dataset", "images", "--images", str(images), "--model", "lenet5", "--image-size", "28",
                 "--channels", "1", "--epochs", "2", "--batch-size", "16", "--val-split", "30", "--out", str(out),
                 "--quiet"])
    assert code == 0
    return out


class ServerThread:
    """An explore server on a free port of 127.0.0.1, serving from a thread; ``url`` ends with '/'."""

    def __init__(self, explorer):
        from tinycnn.explore.server import make_server, url_of

        self.server = make_server(explorer, "127.0.0.1", 0)
        self.url = url_of(self.server)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
