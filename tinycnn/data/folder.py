"""Your own images: one folder per class, read into an :class:`ImageDataset`.

Two layouts, as torchvision's ``ImageFolder`` and Keras's
``image_dataset_from_directory`` read them::

    flowers/                      flowers/
      daisy/  001.jpg ...           train/  daisy/ ...  tulip/ ...
      tulip/  a.png ...             test/   daisy/ ...  tulip/ ...   (or val/)

The class names are the sorted folder names; every image is read by
:func:`~tinycnn.data.images.read_image` into (C, S, S) uint8, like the built-in
sets. Decoding runs on all cores (a pool of processes, :class:`~tinycnn.data.images.ImageReader`),
shows a progress bar on large folders, and is cached:
the arrays are kept in the user cache (``~/.cache/tinycnn/image-folders``) under a
key made of the file list, sizes, modification times and the settings, so a second
run starts at once and a changed folder is read again.

A file that cannot be read is skipped with one warning line naming it and the
reason, and a count at the end (``strict=True`` fails instead); a folder that
cannot make a data set (no images, an empty class, one class, two class names that
differ only by case) is a :class:`ImageFolderError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .dataset import ImageDataset
from .images import IMAGE_EXTENSIONS, RESIZE_POLICIES, ImageReader, ImageReadError, is_grey
from .paths import default_data_dir

__all__ = ["ImageFolder", "ImageFolderError", "folder_layout", "list_images"]

log = logging.getLogger("tinycnn.data")
CACHE_VERSION = 1
SPLIT_NAMES = ("train", "test", "val")


class ImageFolderError(ValueError):
    """A folder cannot be read as a labelled image data set; the message says why and what to do."""


def _visible(name: str) -> bool:
    """False for hidden files and the folders and files systems leave behind (``.DS_Store``, ``__MACOSX``)."""
    return not name.startswith(".") and name not in ("Thumbs.db", "desktop.ini", "__MACOSX")


def list_images(folder, recursive: bool = True) -> list:
    """The files under ``folder`` (sorted; hidden ones left out), images or not: bad ones are reported later."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and all(_visible(part) for part in p.relative_to(folder).parts))


def _class_dirs(folder: Path) -> list:
    return sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p.name)), key=lambda p: p.name)


def folder_layout(root) -> dict:
    """``{"train": folder, "test": folder or None}`` for either layout (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"image folder {str(root)!r} does not exist or is not a folder")
    subfolders = {p.name.lower(): p for p in _class_dirs(root)}
    if "train" in subfolders and ("test" in subfolders or "val" in subfolders):
        return {"train": subfolders["train"], "test": subfolders.get("test") or subfolders.get("val")}
    return {"train": root, "test": None}


class ImageFolder(ImageDataset):
    """Images (N, C, S, S) uint8 from ``root/<class>/<files>``, labels by folder, classes sorted.

    Args:
        root: the folder holding one sub-folder per class.
        image_size: the side S every image is resized to.
        channels: 1 (grey) or 3 (RGB); ``None``: 1 if every image is grey, else 3.
        resize: ``"crop"`` (shorter side to S, centre crop: keeps the aspect ratio) or ``"stretch"``.
        classes: the class names to use (a test folder takes its training folder's); by default the sub-folders.
        background: the RGB colour transparent pixels are composited onto.
        strict: fail on the first unreadable file instead of skipping it.
        cache: keep the decoded arrays in the user cache, keyed by the files and settings.
        progress: show a progress bar (default: for more than 500 files).
        workers: decoding processes (default: one per core).

    Attributes beyond :class:`ImageDataset`'s: ``files`` (the path of each image, in
    order), ``skipped`` (``(path, reason)`` of each file left out), ``root``.
    """

    def __init__(self, root, image_size: int = 32, channels: int | None = None, resize: str = "crop",
                 classes=None, background=(255, 255, 255), strict: bool = False, cache: bool = True,
                 progress: bool | None = None, workers: int | None = None):
        if channels not in (None, 1, 3):
            raise ValueError(f"ImageFolder: channels must be 1, 3 or None (decide from the images), got {channels}")
        if resize not in RESIZE_POLICIES:
            raise ValueError(f"ImageFolder: resize must be one of {', '.join(RESIZE_POLICIES)}, got {resize!r}")
        if not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"ImageFolder: image_size must be a positive whole number, got {image_size!r}")
        self.root = Path(root)
        self.image_size, self.resize = image_size, resize
        files, labels, names = self._scan(classes)
        settings = dict(image_size=image_size, channels=channels, resize=resize, background=list(background),
                        classes=list(names))
        cached = _cache_load(files, settings) if cache else None
        if cached is None:
            images, keep, skipped = _decode_all(files, image_size, resize, background, strict, progress, workers)
            labels = labels[keep]
            kept_files = [str(f) for f, k in zip(files, keep) if k]
            if channels is None:
                channels = 1 if len(images) and is_grey(images) else 3
            if channels == 1:
                images = np.ascontiguousarray(images[:, :1])
            if cache:
                _cache_store(files, settings, images, labels, kept_files, skipped)
        else:
            images, labels, kept_files, skipped = cached
        for path, reason in skipped:
            log.warning("skipped %s: %s", path, reason)
        if skipped:
            log.warning("%d of %d files in %s were skipped (not readable as images)", len(skipped), len(files),
                        self.root)
        self.files, self.skipped = kept_files, skipped
        counts = np.bincount(labels, minlength=len(names))
        empty = [name for name, count in zip(names, counts) if count == 0]
        if classes is None and empty:
            raise ImageFolderError(f"{self.root}: class folder {empty[0]!r} has no readable images"
                                   + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""))
        super().__init__(images, labels, names)

    def _scan(self, classes):
        """(files, labels, class names) from the class sub-folders; checks the folder makes a data set."""
        if not self.root.is_dir():
            raise ImageFolderError(f"image folder {str(self.root)!r} does not exist or is not a folder")
        folders = _class_dirs(self.root)
        if not folders:
            loose = [p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            hint = (f" ({len(loose)} images lie directly in it: put each class's images in a sub-folder named "
                    f"after the class)") if loose else ""
            raise ImageFolderError(f"{self.root} has no class sub-folders{hint}")
        by_lower = {}
        for folder in folders:
            if folder.name.lower() in by_lower:
                raise ImageFolderError(f"{self.root}: class folders {by_lower[folder.name.lower()]!r} and "
                                       f"{folder.name!r} differ only by case; rename or merge them (on many "
                                       f"systems they would be one folder)")
            by_lower[folder.name.lower()] = folder.name
        names = tuple(classes) if classes is not None else tuple(f.name for f in folders)
        if classes is not None:
            unknown = [f.name for f in folders if f.name not in names]
            if unknown:
                raise ImageFolderError(f"{self.root}: class folder {unknown[0]!r} is not one of the model's classes "
                                       f"({', '.join(names)})")
        elif len(names) < 2:
            raise ImageFolderError(f"{self.root} has one class folder ({names[0]!r}); a classifier needs at least "
                                   f"two classes")
        files, labels = [], []
        for folder in folders:
            found = list_images(folder)
            if not found and classes is None:
                raise ImageFolderError(f"{self.root}: class folder {folder.name!r} is empty")
            files += found
            labels += [names.index(folder.name)] * len(found)
        if not files:
            raise ImageFolderError(f"{self.root}: no image files in its class folders")
        return files, np.asarray(labels, dtype=np.int64), names

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}, {len(self.skipped)} skipped"


# --------------------------------------------------------------------------- decoding
def _decode_all(files, size, resize, background, strict, progress, workers=None):
    """Decode every file on all cores: (images (N, 3, S, S), kept mask, [(path, reason) skipped])."""
    from tqdm.auto import tqdm

    show = progress if progress is not None else len(files) > 500
    results = []
    with ImageReader(size, 3, resize, background, workers=workers) as reader, \
            tqdm(total=len(files), desc="reading images", unit="img", disable=not show, leave=False) as bar:
        step = 2048  # the progress bar moves every 2048 files
        for start in range(0, len(files), step):
            part = reader.read(files[start: start + step])
            for path, (_, reason) in zip(files[start: start + step], part):
                if reason is not None and strict:
                    raise ImageReadError(path, reason)
            results += part
            bar.update(len(part))
    keep = np.array([image is not None for image, _ in results], dtype=bool)
    skipped = [(str(path), reason) for path, (_, reason) in zip(files, results) if reason is not None]
    images = [image for image, _ in results if image is not None]
    stacked = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
    return stacked, keep, skipped


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Where decoded folders are kept: ``~/.cache/tinycnn/image-folders`` (or under ``$TINYCNN_DATA``)."""
    return default_data_dir() / "image-folders"


def _cache_key(files, settings) -> str:
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "settings": settings}).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _cache_load(files, settings):
    try:
        path = cache_dir() / f"{_cache_key(files, settings)}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as archive:
            record = json.loads(archive["record"].tobytes().decode("utf-8"))
            return archive["images"], archive["labels"], record["files"], [tuple(s) for s in record["skipped"]]
    except (OSError, ValueError, KeyError):  # a damaged cache entry is read again, not an error
        return None


def _cache_store(files, settings, images, labels, kept_files, skipped) -> None:
    record = json.dumps({"files": [str(f) for f in kept_files], "skipped": skipped}).encode("utf-8")
    path = cache_dir() / f"{_cache_key(files, settings)}.npz"
    try:
        atomic_write(path, lambda file: np.savez(file, images=images, labels=labels,
                                                 record=np.frombuffer(record, dtype=np.uint8)))
    except OSError as error:  # a read-only or full cache costs time, not the run
        log.warning("could not cache the decoded images (%s); the next run will decode them again", error)
