"""Shapes: a built-in image set, drawn on the fly, that needs no download.

Six classes of simple figures (circle, square, triangle, star, cross, ring), each
image with a random size, position, rotation, foreground and background colour,
and pixel noise. Same ``seed`` -> same images; the train and test sets are drawn
from different seeds derived from ``seed``, so they never share an image stream.

How it is drawn, all images at once (no Python loop over images):

1. every pixel centre gets coordinates ``(u, v)`` in the frame of its image's
   figure: shifted to the figure's centre and rotated by its angle,
   arrays (N, H, W);
2. a *signed distance* ``d`` (in pixels, negative inside) says how far each pixel
   is from the figure's outline; each class has its own formula (a circle:
   ``sqrt(u² + v²) - r``);
3. coverage ``clip(0.5 - d, 0, 1)`` is 1 inside, 0 outside and ramps across the
   outline over one pixel: cheap anti-aliasing;
4. ``image = background + coverage * (foreground - background) + noise``.

Position, colour and orientation all vary, so no single pixel (and no linear
mix of pixels) tells the class: a linear classifier on raw pixels stays low,
while a small CNN, which looks for the same edges and corners everywhere,
learns it within a few epochs.
"""

from __future__ import annotations

import numpy as np

from .dataset import ImageDataset

__all__ = ["Shapes", "draw_shapes", "SHAPES_MEAN", "SHAPES_STD"]

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")

# Per-channel mean and std of the default training set, pixels scaled to [0, 1].
SHAPES_MEAN = (0.5, 0.5, 0.5)
SHAPES_STD = (0.3, 0.3, 0.3)

_TRAIN, _TEST = 0, 1   # mixed into the seed so the splits never share random numbers
_CHUNK = 2048          # images drawn per step: bounds memory to a few (2048, H, W) arrays


def _regular_polygon(u, v, radius, sides):
    """Signed distance (N, H, W) to a regular polygon with circumradius ``radius`` (N, 1, 1).

    In polar coordinates, fold the angle into one edge's sector; the distance to
    that edge's line is ``rho * cos(angle from the edge's normal) - apothem``.
    """
    rho = np.hypot(u, v)
    sector = 2 * np.pi / sides
    phi = np.mod(np.arctan2(v, u), sector) - sector / 2
    return rho * np.cos(phi) - radius * np.cos(np.pi / sides)


def _star(u, v, radius, points=5, inner=0.45):
    """Distance-like field of a star: the outline's radius zig-zags between the tips and ``inner * radius``."""
    rho = np.hypot(u, v)
    sector = 2 * np.pi / points
    t = np.abs(np.mod(np.arctan2(v, u), sector) / sector * 2 - 1)   # 1 at a tip, 0 between tips
    outline = radius * (inner + (1 - inner) * t)
    return (rho - outline) * 0.8   # the slanted edges make |rho - outline| overstate the distance


def _cross(u, v, radius, arm=0.32):
    """Signed distance of a plus sign: the union (min) of two boxes."""
    half_width = arm * radius
    horizontal = np.maximum(np.abs(u) - radius, np.abs(v) - half_width)
    vertical = np.maximum(np.abs(u) - half_width, np.abs(v) - radius)
    return np.minimum(horizontal, vertical)


def _signed_distance(label: int, u, v, radius):
    name = SHAPE_CLASSES[label]
    if name == "circle":
        return np.hypot(u, v) - radius * 0.85
    if name == "square":
        return _regular_polygon(u, v, radius, 4)
    if name == "triangle":
        return _regular_polygon(u, v, radius, 3)
    if name == "star":
        return _star(u, v, radius)
    if name == "cross":
        return _cross(u, v, radius)
    if name == "ring":
        return np.abs(np.hypot(u, v) - radius * 0.7) - radius * 0.22
    raise ValueError(f"unknown shape class {label}")


def draw_shapes(labels, size: int = 32, rng=None, noise: float = 0.06) -> np.ndarray:
    """Draw one random figure per label: uint8 images (N, 3, size, size).

    ``labels`` (N,) index :data:`SHAPE_CLASSES`; ``rng`` a ``numpy.random.Generator``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(rng)
    n = len(labels)
    # Per-image parameters, all drawn up front so a chunk size never changes the result.
    radius = rng.uniform(0.2, 0.42, n) * size                     # circumradius, pixels
    centre = rng.uniform(0, 1, (n, 2)) * (size - 1 - 2 * radius[:, None]) + radius[:, None] + 0.5
    angle = rng.uniform(0, 2 * np.pi, n)
    background = rng.uniform(0, 1, (n, 3))
    # Foreground: every channel differs from the background by 0.3..0.7, so the figure is always visible.
    foreground = np.mod(background + rng.uniform(0.3, 0.7, (n, 3)), 1.0)
    gradient = rng.uniform(-0.15, 0.15, (n, 2))                     # a gentle background slope
    # float32 from here on: half the memory traffic of float64, and plenty for 8-bit pixels
    radius, centre, angle, background, foreground, gradient = (
        a.astype(np.float32) for a in (radius, centre, angle, background, foreground, gradient))
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    pixel = np.arange(size, dtype=np.float32) + 0.5                 # pixel centres
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        cx, cy = centre[part, 0, None, None], centre[part, 1, None, None]
        dx, dy = pixel[None, None, :] - cx, pixel[None, :, None] - cy   # (n, 1, W), (n, H, 1)
        cos, sin = np.cos(angle[part])[:, None, None], np.sin(angle[part])[:, None, None]
        u = dx * cos + dy * sin                                       # rotate into the figure's frame
        v = dy * cos - dx * sin
        r = radius[part, None, None]
        distance = np.empty(u.shape, dtype=np.float32)
        chunk_labels = labels[part]
        for label in np.unique(chunk_labels):   # a loop over classes, not images
            mask = chunk_labels == label
            distance[mask] = _signed_distance(int(label), u[mask], v[mask], r[mask])
        coverage = np.clip(0.5 - distance, 0.0, 1.0)[:, None]        # (n, 1, H, W)
        slope = (gradient[part, 0, None, None] * (dx / size) + gradient[part, 1, None, None] * (dy / size))[:, None]
        bg = background[part, :, None, None] + slope
        fg = foreground[part, :, None, None]
        image = bg + coverage * (fg - bg)
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise)
        image *= 255
        images[part] = np.clip(image + 0.5, 0, 255).astype(np.uint8)   # +0.5 then truncate: round
    return images


class Shapes(ImageDataset):
    """Procedurally drawn figures: images (N, 3, size, size) uint8, labels 0-5.

    Args:
        train: the training split (True) or the test split; they are drawn from
            different seeds derived from ``seed``.
        n: number of images (default 10,000 for train, 2,000 for test); classes
            are balanced (counts differ by at most one).
        size: image height and width in pixels.
        seed: fixes every image and label.

    >>> ds = Shapes(train=True, n=600)
    >>> ds.images.shape, ds.classes[ds.labels[0]] in ds.classes
    ((600, 3, 32, 32), True)
    """

    CLASSES = SHAPE_CLASSES
    MEAN, STD = SHAPES_MEAN, SHAPES_STD

    def __init__(self, train: bool = True, n: int | None = None, size: int = 32, seed: int = 0):
        if n is None:
            n = 10000 if train else 2000
        if n < 0 or size < 8:
            raise ValueError(f"Shapes: need n >= 0 and size >= 8, got n={n}, size={size}")
        self.train, self.size, self.seed = bool(train), int(size), int(seed)
        self.split = "train" if train else "test"
        rng = np.random.default_rng([int(seed), _TRAIN if train else _TEST])
        labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))   # balanced, in random order
        images = draw_shapes(labels, size, rng)
        super().__init__(images, labels, SHAPE_CLASSES)

    def extra_repr(self) -> str:
        return f"split={self.split!r}, seed={self.seed}"
