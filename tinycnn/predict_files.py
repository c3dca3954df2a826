"""Classifying image files with a trained model: what ``tinycnn predict`` does.

Files and folders go in (folders are searched recursively); each image is read
exactly as the training images were (:func:`~tinycnn.data.read_image`: the same
size and resize policy, transparency composited onto the training images'
background colour) and classified in batches, so 10,000 files take seconds, not
minutes. A file that cannot be read gets its reason on its own line and the
others are still classified.

A folder whose sub-folders are named after the model's classes is *labelled*:
each image's true class is its sub-folder, and the results include accuracy and
a confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.folder import list_images
from .data.images import IMAGE_EXTENSIONS, ImageReader

__all__ = ["Item", "collect_inputs", "classify_files", "polarity_warning"]


@dataclass
class Item:
    """One input file and, when known, its true class (from a labelled folder)."""

    path: Path
    label: str | None = None
    error: str | None = None
    top: list = field(default_factory=list)  # [(class name, probability)], best first
    border: float | None = None  # the median brightness of the image's outermost pixels, 0..1


def collect_inputs(paths, classes) -> list:
    """The files to classify: each file as given, every image under each folder (recursive).

    Under a folder, an image inside a sub-folder named after one of ``classes``
    gets that class as its label. A path that does not exist is an input with an error.
    """
    items = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            class_set = set(classes)
            found = [p for p in list_images(path) if p.suffix.lower() in IMAGE_EXTENSIONS]
            for file in found:
                parts = file.relative_to(path).parts
                label = next((part for part in parts[:-1] if part in class_set), None)
                items.append(Item(file, label))
            if not found:
                items.append(Item(path, error="no image files in this folder"))
        elif path.exists():
            items.append(Item(path))
        else:
            items.append(Item(path, error="no such file or folder"))
    return items


def classify_files(model, meta: dict, items: list, device: str = "cpu", invert: bool = False, top: int = 3,
                   batch_size: int = 256, progress: bool | None = None) -> list:
    """Fill each item's ``top`` (or ``error``): read in threads, classify a batch at a time.

    Returns the items; ``meta`` is the checkpoint's (image shape, resize policy,
    background, normalisation, classes). Files are read on every core
    (:class:`~tinycnn.data.images.ImageReader`), a batch at a time.
    """
    from tqdm.auto import tqdm

    from .runner import prepare_images
    from .train import predict

    channels, size = meta["image_shape"][0], meta["image_shape"][1]
    background, resize = _background(meta), meta.get("resize", "crop")
    classes = meta["classes"]
    top = min(top, len(classes))

    todo = [item for item in items if item.error is None]
    show = progress if progress is not None else len(todo) > 500
    with ImageReader(size, channels, resize, background, invert) as reader, \
            tqdm(total=len(todo), desc="predict", unit="img", disable=not show, leave=False) as bar:
        for start in range(0, len(todo), 8 * batch_size):  # read many files at once (on every core) ...
            part = todo[start: start + 8 * batch_size]
            readable = []
            for item, (image, reason) in zip(part, reader.read([item.path for item in part])):
                if image is None:
                    item.error = reason
                else:
                    item.border = _border_brightness(image)
                    readable.append((item, image))
            for first in range(0, len(readable), batch_size):  # ... and classify them a batch at a time
                batch = readable[first: first + batch_size]
                probabilities = predict(model, prepare_images(np.stack([image for _, image in batch]), meta, device))
                for (item, _), probs in zip(batch, probabilities):
                    order = np.argsort(-probs, kind="stable")[:top]
                    item.top = [(classes[i], float(probs[i])) for i in order]
            bar.update(len(part))
    return items


def polarity_warning(items: list, meta: dict, invert: bool) -> str | None:
    """A warning when the inputs' background is light and the training images' dark, or the reverse.

    A model trained on white digits on black (MNIST) sees dark ink on white paper
    as something else entirely: it answers, confidently and wrongly.
    """
    trained = np.mean(_background(meta)) / 255.0
    borders = [item.border for item in items if item.border is not None]
    if not borders:
        return None
    seen = float(np.median(borders))
    if abs(seen - trained) < 0.5:
        return None
    inputs, training = ("light", "dark") if seen > trained else ("dark", "light")
    return (f"warning: these images have {inputs} backgrounds, the model's training images {training} ones; if the "
            f"polarity is reversed (e.g. dark ink on white paper), {'drop' if invert else 'add'} --invert")


def _background(meta: dict) -> tuple:
    """The training images' background colour as RGB (black for checkpoints that do not record it)."""
    colour = tuple(meta.get("background") or (0,))
    return colour * 3 if len(colour) == 1 else colour


def _border_brightness(image: np.ndarray) -> float:
    """Median of the outermost pixels of a (C, H, W) uint8 image, on 0..1."""
    edges = np.concatenate([image[:, 0].ravel(), image[:, -1].ravel(), image[:, :, 0].ravel(), image[:, :, -1].ravel()])
    return float(np.median(edges)) / 255.0
