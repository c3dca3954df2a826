"""Reading one image file as a model input: decode, orient, convert, resize.

A photo or a scan comes in any format, size, mode and orientation; a model wants
a fixed (C, S, S) uint8 array. :func:`read_image` does what the articles on own
data describe, in this order:

1. decode with Pillow (PNG, JPEG, BMP, GIF's first frame, WebP, TIFF, PPM/PGM);
   an image above Pillow's decompression-bomb limit is refused, not decoded;
2. turn it upright as its EXIF orientation says (phones store photos sideways);
3. bring any mode to 8-bit grey or RGB: 16-bit greys are scaled down, CMYK and
   palettes converted, and transparent pixels composited onto a ``background``
   colour (a transparent PNG would otherwise read as black);
4. resize: the shorter side to S, then the centre S x S ("crop": the aspect
   ratio is kept, as a camera crops), or straight to S x S ("stretch").
   Shrinking averages each output pixel's area (``BOX``), as a camera pixel
   does; enlarging interpolates (``BILINEAR``).

The same function serves training (:class:`~tinycnn.data.ImageFolder`) and
``tinycnn predict``, so a model sees its inputs prepared exactly as in training.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .. import backend

__all__ = ["read_image", "ImageReader", "ImageReadError", "IMAGE_EXTENSIONS", "RESIZE_POLICIES", "is_grey"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff",
                    ".ppm", ".pgm", ".pbm", ".pnm")
RESIZE_POLICIES = ("crop", "stretch")


class ImageReadError(ValueError):
    """A file could not be read as an image: ``path`` and ``reason`` (the message joins them)."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def read_image(path, size: int, channels: int = 3, resize: str = "crop", background=(255, 255, 255),
               invert: bool = False) -> np.ndarray:
    """The image file at ``path`` as a uint8 array (channels, size, size).

    Args:
        size: the side S of the square output.
        channels: 1 (grey) or 3 (RGB).
        resize: ``"crop"`` (shorter side to S, centre crop) or ``"stretch"`` (to S x S).
        background: the RGB colour transparent pixels are composited onto.
        invert: 255 - value (dark ink on white paper, for a model trained on light on dark).

    Raises :class:`ImageReadError` naming the file and the reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"read_image: channels must be 1 or 3, got {channels}")
    if resize not in RESIZE_POLICIES:
        raise ValueError(f"read_image: resize must be one of {', '.join(RESIZE_POLICIES)}, got {resize!r}")
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file" if not path.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice it, and raises above; both are a refusal here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # an animated GIF or multi-page TIFF: the first frame
                image = ImageOps.exif_transpose(image)
                image = _to_rgba_or_grey(image)
                if image.mode == "RGBA":
                    image = _composite(image, background)
                image = image.convert("L" if channels == 1 else "RGB")
                image = _resized(image, size, resize, Image)
                array = np.asarray(image, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = Image.MAX_IMAGE_PIXELS
        raise ImageReadError(path, f"the image is too large to decode safely (more than {limit:,} pixels, "
                                   f"Pillow's decompression-bomb limit); shrink it first") from None
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or damaged data
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ImageReadError(path, f"cannot decode the image ({reason})") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return 255 - array if invert else np.ascontiguousarray(array)


def _to_rgba_or_grey(image):
    """Any Pillow mode -> "L", "RGB" or "RGBA" (8 bits per channel)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit and 32-bit greys: scale to 0..255
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8), mode="L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        return image.convert("RGBA")
    if image.mode in ("L", "RGB", "RGBA"):
        return image
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1 (bilevel)


def _composite(image, background):
    """RGBA -> RGB over a solid ``background`` colour, by each pixel's alpha."""
    rgba = np.asarray(image, dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    colour = np.asarray(background, dtype=np.float32).reshape(1, 1, -1)
    blended = rgba[..., :3] * alpha + colour * (1.0 - alpha)
    from PIL import Image

    return Image.fromarray(blended.round().astype(np.uint8), mode="RGB")


def _resized(image, size: int, policy: str, Image):
    width, height = image.size
    if policy == "stretch":
        target = (size, size)
    else:  # shorter side to size, keeping the aspect ratio
        scale = size / min(width, height)
        target = (max(size, round(width * scale)), max(size, round(height * scale)))
    shrinking = target[0] <= width and target[1] <= height
    if target != (width, height):
        image = image.resize(target, Image.BOX if shrinking else Image.BILINEAR)
    if policy == "crop":
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return image


def is_grey(images: np.ndarray) -> bool:
    """Whether RGB images (N, 3, H, W) are all grey (R == G == B everywhere)."""
    return bool(np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(images[:, 1], images[:, 2]))


def _read_chunk(paths, settings) -> list:
    """[(image or None, reason or None)] for each path: the work one process does at a time."""
    results = []
    for path in paths:
        try:
            results.append((read_image(path, **settings), None))
        except ImageReadError as error:
            results.append((None, error.reason))
    return results


class ImageReader:
    """Reads many files with :func:`read_image`'s settings, on every core.

    Decoding a small image is mostly Python-level work (headers, modes, resizing
    calls), which holds the interpreter lock, so threads do not run it in parallel
    (measured: 2 threads read no faster than 1). Many files are therefore read by a
    pool of worker processes, a chunk of files per task; a few files are read here.

        with ImageReader(size=32, channels=3) as reader:
            results = reader.read(paths)        # [(image (C, S, S) or None, reason or None)]
    """

    MIN_FILES_FOR_PROCESSES = 400  # below this, starting the processes costs more than it saves
    CHUNK = 64

    def __init__(self, size: int, channels: int = 3, resize: str = "crop", background=(255, 255, 255),
                 invert: bool = False, workers: int | None = None):
        self.settings = dict(size=size, channels=channels, resize=resize, background=tuple(background),
                             invert=invert)
        self.workers = workers or min(32, backend.usable_cores())
        self._pool = None

    def read(self, paths) -> list:
        paths = [str(p) for p in paths]
        if self.workers <= 1 or (self._pool is None and len(paths) < self.MIN_FILES_FOR_PROCESSES):
            return _read_chunk(paths, self.settings)
        if self._pool is None:
            import multiprocessing

            # "spawn": fresh interpreters, safe beside the parent's threads (a fork would copy their locks)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        chunks = [paths[i: i + self.CHUNK] for i in range(0, len(paths), self.CHUNK)]
        return [result for chunk in self._pool.map(_read_chunk, chunks, [self.settings] * len(chunks))
                for result in chunk]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
