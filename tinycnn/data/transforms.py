"""Batch transforms (augmentation and normalisation) that run wherever the batch is.

Every transform is a callable ``array (N, C, H, W) -> array (N, C, H', W')`` on
*raw arrays* (NumPy on the CPU, CuPy on a GPU; never Tensors: augmentation needs
no gradient), and works on the whole batch at once through the array module
``xp = backend.get_array_module(images)``, so on a GPU it runs on the GPU, with
no Python loop over images.

Dtypes: :class:`ToFloat` turns uint8 (0..255) into float32 (0..1);
:class:`Normalize` needs floats; the geometric transforms keep the dtype they are
given (interpolated uint8 values are rounded back to uint8), so they may come
before or after ``ToFloat``. A typical training pipeline::

    train_transform = Compose([
        RandomCrop(32, padding=4),
        RandomHorizontalFlip(),
        ToFloat(),
        Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])

Randomness: each random transform takes ``seed=None`` (draw from tinycnn's own
generator, ``backend.get_rng(xp)``, so ``tinycnn.manual_seed`` makes runs
reproducible) or an int (its own generator, independent of everything else).
Only ``rng.random`` is used, which NumPy and CuPy generators both provide.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from .affine import affine_grid_sample, affine_matrices

__all__ = [
    "Compose", "ToFloat", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RandomAffine",
    "RandomRotation", "RandomScale", "RandomTranslation", "Cutout",
]


def _check_batch(images, who: str):
    if getattr(images, "ndim", None) != 4:
        raise ValueError(f"{who}: expected a batch of images (N, C, H, W), got shape {getattr(images, 'shape', type(images))}")


class RandomTransform:
    """Base of the random transforms: owns the choice of random generator."""

    def __init__(self, seed=None):
        self.seed = seed
        self._own_rngs = {}  # device ("cpu", "cuda:N") -> its generator, when seeded

    def rng(self, xp, images=None):
        """The generator for ``images`` (arrays of module ``xp``), on their device
        (tinycnn's unless this transform has a seed)."""
        if self.seed is None:
            return backend.get_rng(xp, images)
        device = backend.device_of(images) if images is not None else xp.__name__
        if device not in self._own_rngs:
            with backend.device_scope(images):
                self._own_rngs[device] = xp.random.default_rng(self.seed)
        return self._own_rngs[device]

    def uniform(self, xp, low, high, n: int, images=None):
        """``n`` float32 numbers uniform in [low, high), on the device of ``images``."""
        return (low + (high - low) * self.rng(xp, images).random(n)).astype(xp.float32)

    def integers(self, xp, high: int, n: int, images):
        """``n`` integers uniform in [0, high), on the device of ``images`` (drawn as integers:
        ``floor(high * u)`` with a float32 u can round up to ``high`` itself)."""
        return self.rng(xp, images).integers(0, high, size=n, dtype=xp.int64)


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, images):
        for transform in self.transforms:
            images = transform(images)
        return images

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToFloat:
    """uint8 (N, C, H, W) in 0..255 -> float32 in [0, 1]; float input is only cast to float32."""

    def __call__(self, images):
        xp = backend.get_array_module(images)
        if images.dtype == xp.uint8:
            return images.astype(xp.float32) * xp.float32(1 / 255)
        if not np.issubdtype(images.dtype, xp.floating):
            raise TypeError(f"ToFloat: expected uint8 (0..255) or float images, got dtype {images.dtype}")
        return images.astype(xp.float32, copy=False)

    def __repr__(self) -> str:
        return "ToFloat()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel, on float images (N, C, H, W).

    Use the training set's statistics, e.g. ``Normalize(MNIST_MEAN, MNIST_STD)``.
    """

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean has {len(self.mean)} values but std has {len(self.std)}")
        if min(self.std) <= 0:
            raise ValueError(f"Normalize: std must be positive, got {self.std}")
        self._constants = {}  # (device, dtype) -> (mean, 1/std) arrays (1, C, 1, 1) already there

    def __call__(self, images):
        _check_batch(images, "Normalize")
        xp = backend.get_array_module(images)
        if not np.issubdtype(images.dtype, xp.floating):
            raise TypeError(f"Normalize: expected float images in [0, 1], got dtype {images.dtype}; put ToFloat() before it")
        channels = images.shape[1]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"Normalize: images have {channels} channels but mean/std have {len(self.mean)} values")
        # Made once per device and dtype: building them from the Python tuples for every
        # batch would be a host -> device copy inside each training step on a GPU.
        key = (backend.device_of(images), np.dtype(images.dtype))
        if key not in self._constants:
            mean = xp.asarray(self.mean, dtype=images.dtype).reshape(1, -1, 1, 1)
            scale = 1 / xp.asarray(self.std, dtype=images.dtype).reshape(1, -1, 1, 1)
            self._constants[key] = mean, scale
        mean, scale = self._constants[key]
        return (images - mean) * scale

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop(RandomTransform):
    """Pad each image by ``padding`` pixels, then cut a random ``size`` x ``size`` window.

    ``padding_mode``: ``"zeros"`` (black border) or ``"reflect"`` (mirror the edge,
    without repeating it). (N, C, H, W) -> (N, C, size, size).
    """

    def __init__(self, size, padding: int = 0, padding_mode: str = "zeros", seed=None):
        super().__init__(seed)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"RandomCrop: padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
        self.padding_mode = padding_mode

    def __call__(self, images):
        _check_batch(images, "RandomCrop")
        xp = backend.get_array_module(images)
        p = self.padding
        if p:
            mode = "constant" if self.padding_mode == "zeros" else "reflect"
            images = xp.pad(images, ((0, 0), (0, 0), (p, p), (p, p)), mode=mode)
        n, _, height, width = images.shape
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image {(height, width)}")
        # One random top-left corner per image, then gather every window with one fancy index.
        top = self.integers(xp, height - crop_h + 1, n, images)
        left = self.integers(xp, width - crop_w + 1, n, images)
        rows = top[:, None] + xp.arange(crop_h)       # (N, crop_h)
        cols = left[:, None] + xp.arange(crop_w)      # (N, crop_w)
        batch = xp.arange(n)[:, None, None, None]
        channel = xp.arange(images.shape[1])[None, :, None, None]
        return images[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip(RandomTransform):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(seed)
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, images):
        _check_batch(images, "RandomHorizontalFlip")
        xp = backend.get_array_module(images)
        flip = self.rng(xp, images).random(images.shape[0]) < self.p     # (N,) bool
        return xp.where(flip[:, None, None, None], images[..., ::-1], images)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomAffine(RandomTransform):
    """Random rotation, zoom and shift per image, through one batched sampling grid.

    Args:
        degrees: rotate by an angle uniform in [-degrees, degrees] (or a (min, max) pair);
            positive angles turn counter-clockwise, as in torchvision.
        translate: shift by up to ``(fx * W, fy * H)`` pixels each way (a float: both).
        scale: zoom by a factor uniform in (min, max); > 1 zooms in.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill: the value of pixels that come from outside the image.

    (N, C, H, W) -> (N, C, H, W), same dtype. See :mod:`tinycnn.data.affine`.
    """

    def __init__(self, degrees=0.0, translate=None, scale=None, interpolation: str = "bilinear",
                 fill: float = 0.0, seed=None):
        super().__init__(seed)
        self.degrees = (-float(degrees), float(degrees)) if np.isscalar(degrees) else tuple(map(float, degrees))
        if translate is not None and np.isscalar(translate):
            translate = (translate, translate)
        self.translate = None if translate is None else tuple(map(float, translate))
        self.scale = None if scale is None else tuple(map(float, scale))
        if self.scale is not None and (len(self.scale) != 2 or min(self.scale) <= 0):
            raise ValueError(f"{type(self).__name__}: scale must be a (min, max) pair of positive factors, got {scale}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"{type(self).__name__}: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.interpolation = interpolation
        self.fill = fill

    def __call__(self, images):
        _check_batch(images, type(self).__name__)
        xp = backend.get_array_module(images)
        n, _, height, width = images.shape
        angle = self.uniform(xp, *self.degrees, n, images) * xp.float32(math.pi / 180)
        zoom = self.uniform(xp, *self.scale, n, images) if self.scale else xp.ones(n, xp.float32)
        if self.translate:
            shift_x = self.uniform(xp, -self.translate[0], self.translate[0], n, images) * width
            shift_y = self.uniform(xp, -self.translate[1], self.translate[1], n, images) * height
        else:
            shift_x = shift_y = xp.zeros(n, xp.float32)
        matrices = affine_matrices(angle, zoom, shift_x, shift_y)
        return affine_grid_sample(images, matrices, self.interpolation, self.fill)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"interpolation={self.interpolation!r})")


class RandomRotation(RandomAffine):
    """Rotate each image by a random angle in [-degrees, degrees] about its centre."""

    def __init__(self, degrees, interpolation: str = "bilinear", fill: float = 0.0, seed=None):
        super().__init__(degrees=degrees, interpolation=interpolation, fill=fill, seed=seed)


class RandomScale(RandomAffine):
    """Zoom each image in or out about its centre by a factor in ``scale = (min, max)``."""

    def __init__(self, scale=(0.9, 1.1), interpolation: str = "bilinear", fill: float = 0.0, seed=None):
        super().__init__(scale=scale, interpolation=interpolation, fill=fill, seed=seed)


class RandomTranslation(RandomAffine):
    """Shift each image by up to ``translate = (fx, fy)`` of its width/height (whole pixels)."""

    def __init__(self, translate=(0.1, 0.1), fill: float = 0.0, seed=None):
        super().__init__(translate=translate, interpolation="nearest", fill=fill, seed=seed)

    def __call__(self, images):
        _check_batch(images, "RandomTranslation")
        xp = backend.get_array_module(images)
        n, _, height, width = images.shape
        fx, fy = self.translate
        # Whole-pixel shifts: exact, no blurring.
        shift_x = xp.rint(self.uniform(xp, -fx, fx, n, images) * width)
        shift_y = xp.rint(self.uniform(xp, -fy, fy, n, images) * height)
        matrices = affine_matrices(xp.zeros(n, xp.float32), xp.ones(n, xp.float32), shift_x, shift_y)
        return affine_grid_sample(images, matrices, "nearest", self.fill)


class Cutout(RandomTransform):
    """Blank a random ``size`` x ``size`` square in each image (DeVries & Taylor 2017).

    The square's centre is uniform over the image, so it may be cut by the border.
    """

    def __init__(self, size: int, fill: float = 0.0, seed=None):
        super().__init__(seed)
        if size < 1:
            raise ValueError(f"Cutout: size must be at least 1 pixel, got {size}")
        self.size = int(size)
        self.fill = fill

    def __call__(self, images):
        _check_batch(images, "Cutout")
        xp = backend.get_array_module(images)
        n, _, height, width = images.shape
        cy = self.integers(xp, height, n, images)[:, None, None]
        cx = self.integers(xp, width, n, images)[:, None, None]
        top, left = cy - self.size // 2, cx - self.size // 2
        ys = xp.arange(height)[None, :, None]
        xs = xp.arange(width)[None, None, :]
        hole = (ys >= top) & (ys < top + self.size) & (xs >= left) & (xs < left + self.size)   # (N, H, W)
        # the fill as a scalar of the images' dtype: no array to send to the GPU
        return xp.where(hole[:, None], images.dtype.type(self.fill), images)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"
