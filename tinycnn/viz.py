"""Plots for training runs and lessons, saved as PNG files.

Every plotting function takes plain arrays (NumPy arrays, lists, tinycnn Tensors
or CuPy arrays), draws one figure, saves it to ``path`` and returns that path
as a :class:`pathlib.Path`::

    from tinycnn import viz
    viz.plot_history(history, "runs/shapes/history.png")
    viz.plot_confusion_matrix(y_true, y_pred, class_names, "runs/shapes/confusion.png")

How the files are written:

* the figures are :class:`matplotlib.figure.Figure` objects rendered by the Agg
  backend; they are never registered with ``pyplot``, so no display is needed,
  no global pyplot state is touched, and each figure is freed when its function
  returns (there is no pyplot window to close);
* missing parent directories are created;
* the PNG is written to a temporary file beside ``path`` and then moved over it
  with :func:`os.replace`, so a reader never sees a half-written image.

Images follow the PyTorch layout ``(N, C, H, W)`` with C = 1 (grey) or 3 (RGB);
:func:`to_display` turns them into what ``imshow`` wants.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import backend
from .atomic import atomic_write

__all__ = [
    "to_display",
    "confusion_matrix",
    "confusion_cell_labels",
    "plot_history",
    "plot_confusion_matrix",
    "plot_predictions",
    "plot_image_grid",
    "plot_filters",
    "plot_feature_maps",
    "plot_curves",
    "plot_bars",
    "overlay_heatmap",
]

CORRECT_COLOR = "green"
WRONG_COLOR = "red"


# --------------------------------------------------------------------------- helpers
def _as_numpy(x) -> np.ndarray:
    """``x`` as a NumPy array: Tensors via ``.numpy()``, CuPy arrays copied to the CPU."""
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return backend.to_numpy(x)


def _labels(y, name: str, num_classes: int) -> np.ndarray:
    """Class labels ``y`` as a 1-D int64 array; ValueError unless 1-D integers in [0, num_classes)."""
    y = _as_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"expected {name} of shape (N,), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected {name} to hold integer class labels, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"expected {name} labels in [0, {num_classes}), "
                         f"got values from {y.min()} to {y.max()}")
    return y.astype(np.int64)


def _check_length(name: str, values, n: int) -> None:
    if len(values) != n:
        raise ValueError(f"expected {n} {name} (one per image), got {len(values)}")


def _save(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (see :mod:`tinycnn.atomic`)."""
    return atomic_write(path, lambda file: fig.savefig(file, format="png"))


def _grid(n: int, ncols: int | None = None, cell: float = 1.8, title=None):
    """A figure with a grid of at least ``n`` image axes, ticks off; returns (fig, axes[:n])."""
    ncols = ncols or math.ceil(math.sqrt(n))
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig, axes[:n]


def _show(ax, image: np.ndarray, cmap="gray") -> None:
    """Draw one display image, (H, W) with ``cmap`` or (H, W, 3) RGB, values in [0, 1]."""
    ax.imshow(image, cmap=None if image.ndim == 3 else cmap, vmin=0.0, vmax=1.0,
              interpolation="nearest")


# --------------------------------------------------------------------------- images
def to_display(images) -> np.ndarray:
    """Images ready for ``imshow``: float in [0, 1], channels last.

    ``images``: (N, C, H, W) with C = 1 or 3, or (N, H, W) grey images.
    Returns (N, H, W) for grey images, (N, H, W, 3) for RGB ones.

    Values are mapped to [0, 1] as follows:

    * uint8 images are divided by 255;
    * any other image whose values already lie in [0, 1] is kept as is;
    * any other image is min-max normalised on its own (its smallest value
      becomes 0, its largest 1; a constant image becomes all 0).
    """
    images = _as_numpy(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError("expected images of shape (N, C, H, W) with C = 1 or 3, "
                         f"or (N, H, W); got shape {images.shape}")
    if len(images) == 0:
        raise ValueError("expected at least one image, got 0")
    if images.dtype == np.uint8:
        out = images.astype(np.float64) / 255.0
    else:
        out = images.astype(np.float64)
        low = out.min(axis=(1, 2, 3), keepdims=True)
        high = out.max(axis=(1, 2, 3), keepdims=True)
        outside = (low < 0.0) | (high > 1.0)
        span = np.where(high > low, high - low, 1.0)
        out = np.where(outside, (out - low) / span, out)
    out = out.transpose(0, 2, 3, 1)           # (N, C, H, W) -> (N, H, W, C)
    return out[..., 0] if out.shape[-1] == 1 else out


def plot_image_grid(images, path, titles=None, ncols=None, cmap=None, title=None) -> Path:
    """A grid of images, each with an optional title.

    ``images``: (N, C, H, W) with C = 1 or 3, or (N, H, W) (see :func:`to_display`).
    ``titles``: N strings or None. ``ncols``: columns (default about sqrt(N)).
    ``cmap``: colormap for grey images (default "gray"); RGB images ignore it.
    """
    shown = to_display(images)
    if titles is not None:
        _check_length("titles", titles, len(shown))
    fig, axes = _grid(len(shown), ncols, title=title)
    for i, ax in enumerate(axes):
        _show(ax, shown[i], cmap or "gray")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    return _save(fig, path)


def plot_predictions(images, y_true, y_pred, class_names, path, probs=None, max_images=36,
                     title=None) -> Path:
    """A grid of images titled "pred (prob%)" over "true"; mistakes in red, hits in green.

    ``images``: (N, C, H, W) (see :func:`to_display`); ``y_true``, ``y_pred``: (N,)
    integer labels indexing ``class_names``. ``probs``: optional, either (N,) the
    probability of each predicted class or (N, num_classes) all class probabilities
    (e.g. softmax outputs), from which the predicted class's is taken.
    Only the first ``max_images`` images are drawn. A misclassified image gets a
    red title and a red frame, a correct one green.
    """
    shown = to_display(images)
    y_true = _labels(y_true, "y_true", len(class_names))
    y_pred = _labels(y_pred, "y_pred", len(class_names))
    n = len(shown)
    _check_length("y_true labels", y_true, n)
    _check_length("y_pred labels", y_pred, n)
    if probs is not None:
        probs = _as_numpy(probs).astype(np.float64)
        _check_length("probs", probs, n)
        if probs.ndim == 2:
            probs = probs[np.arange(n), y_pred]
    n = min(n, max_images)
    fig, axes = _grid(n, cell=2.0, title=title)
    for i, ax in enumerate(axes):
        _show(ax, shown[i])
        color = CORRECT_COLOR if y_pred[i] == y_true[i] else WRONG_COLOR
        pred = str(class_names[y_pred[i]])
        if probs is not None:
            pred += f" ({100 * probs[i]:.0f}%)"
        ax.set_title(f"{pred}\ntrue: {class_names[y_true[i]]}", color=color, fontsize=8)
        for spine in ax.spines.values():
            spine.set(color=color, linewidth=3)
    return _save(fig, path)


def plot_filters(weight, path, title=None) -> Path:
    """Convolution filters as small images.

    ``weight``: (out_channels, in_channels, kh, kw). With in_channels = 1 each
    filter is shown grey, with 3 as an RGB image; otherwise only its first input
    channel is shown, grey. Each filter is scaled by its own largest |value| so
    that 0 is mid-grey, negative weights darker and positive ones lighter.
    """
    weight = _as_numpy(weight).astype(np.float64)
    if weight.ndim != 4:
        raise ValueError(f"expected conv weights of shape (out, in, kh, kw), got shape {weight.shape}")
    if weight.shape[1] not in (1, 3):
        weight = weight[:, :1]
    scale = np.abs(weight).max(axis=(1, 2, 3), keepdims=True)
    scaled = 0.5 + 0.5 * weight / np.where(scale > 0, scale, 1.0)     # in [0, 1], 0 -> 0.5
    return plot_image_grid(scaled, path, title=title or f"{len(weight)} filters")


def plot_feature_maps(maps, path, max_maps=32, title=None) -> Path:
    """Activations of one image, one panel per channel, each with its own color scale.

    ``maps``: (C, H, W) or (1, C, H, W). Only the first ``max_maps`` channels are drawn.
    """
    maps = _as_numpy(maps).astype(np.float64)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError(f"expected feature maps of shape (C, H, W) or (1, C, H, W), got shape {maps.shape}")
    maps = maps[:max_maps]
    fig, axes = _grid(len(maps), cell=1.5, title=title or f"feature maps ({len(maps)} channels)")
    for c, ax in enumerate(axes):
        ax.imshow(maps[c], cmap="viridis", interpolation="nearest")
        ax.set_title(f"channel {c}", fontsize=7)
    return _save(fig, path)


def _resize_bilinear(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (N, h, w) maps to (N, height, width) by bilinear interpolation between pixel centres."""
    def coords(size_in, size_out):
        x = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        lo = np.floor(x).astype(np.int64)
        hi = np.minimum(lo + 1, size_in - 1)
        return lo, hi, x - lo

    y0, y1, wy = coords(maps.shape[1], height)
    x0, x1, wx = coords(maps.shape[2], width)
    rows = maps[:, y0] * (1 - wy)[:, None] + maps[:, y1] * wy[:, None]     # (N, height, w)
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx                 # (N, height, width)


def overlay_heatmap(images, heatmaps, path, titles=None, alpha=0.6, title=None, cmap="jet") -> Path:
    """Heatmaps (saliency, Grad-CAM) drawn in colour over their images.

    ``images``: (N, C, H, W) (see :func:`to_display`); ``heatmaps``: (N, h, w),
    upsampled bilinearly to (H, W) when smaller. Each heatmap is min-max scaled to
    [0, 1] on its own (an all-zero map stays 0: nothing is drawn over it).

    So that both the image and the heat stay readable, colour images are shown in grey
    under the heat (a colour map cannot be read on top of colours), and each pixel's
    heat colour is as opaque as it is hot: ``alpha`` x heat, so cold regions show the
    image untouched and only the hot ones are tinted.
    """
    from matplotlib import colormaps

    shown = to_display(images)
    heatmaps = _as_numpy(heatmaps).astype(np.float64)
    if heatmaps.ndim != 3:
        raise ValueError(f"expected heatmaps of shape (N, H, W), got shape {heatmaps.shape}")
    _check_length("heatmaps", heatmaps, len(shown))
    height, width = shown.shape[1:3]
    if heatmaps.shape[1:] != (height, width):
        heatmaps = _resize_bilinear(heatmaps, height, width)
    low = heatmaps.min(axis=(1, 2), keepdims=True)
    span = heatmaps.max(axis=(1, 2), keepdims=True) - low
    heatmaps = (heatmaps - low) / np.where(span > 0, span, 1.0)
    if shown.ndim == 4:                                            # RGB -> grey (luminance)
        shown = shown @ np.array([0.299, 0.587, 0.114])
    if titles is not None:
        _check_length("titles", titles, len(shown))
    colour = colormaps[cmap]
    fig, axes = _grid(len(shown), cell=2.0, title=title)
    for i, ax in enumerate(axes):
        _show(ax, shown[i])
        rgba = colour(heatmaps[i])                                 # (H, W, 4)
        rgba[..., 3] = alpha * heatmaps[i]
        ax.imshow(rgba, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- classification
def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts ``m[t, p]`` of examples of true class t predicted as class p.

    ``y_true``, ``y_pred``: (N,) integer labels in [0, num_classes).
    Returns an int64 array of shape (num_classes, num_classes): rows are true
    classes, columns predicted ones; row t sums to the number of examples of class t.
    """
    y_true = _labels(y_true, "y_true", num_classes)
    y_pred = _labels(y_pred, "y_pred", num_classes)
    if len(y_true) != len(y_pred):
        raise ValueError(f"expected y_true and y_pred of the same length, got {len(y_true)} and {len(y_pred)}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def confusion_cell_labels(counts, normalize: bool = True) -> list:
    """The text of each cell of a confusion matrix: its count, and with ``normalize`` the
    percentage of its true class under it ("3\n0.3%").

    ``counts``: (K, K) integer counts as :func:`confusion_matrix` returns. A percentage
    under 10% keeps one decimal, so a rare confusion never reads "0%"; an empty cell is "0".
    Returns K lists of K strings.
    """
    counts = np.asarray(counts)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = []
    for t, row in enumerate(counts):
        cells = []
        for count in row:
            if count == 0 or not normalize:
                cells.append(str(int(count)))
                continue
            percent = 100 * count / totals[t, 0]
            cells.append(f"{int(count)}\n{percent:.1f}%" if percent < 10 else f"{int(count)}\n{percent:.0f}%")
        labels.append(cells)
    return labels


def plot_confusion_matrix(y_true, y_pred, class_names, path, normalize=True, title=None) -> Path:
    """The confusion matrix as a colored table, true classes down, predictions across.

    ``y_true``, ``y_pred``: (N,) integer labels; ``class_names``: one name per class.
    Every cell shows its count. With ``normalize`` each cell also shows, and is coloured
    by, the percentage of its true class given that prediction (the diagonal is per-class
    recall); the colour scale is a square root, so a confusion of 1% is still visibly
    tinted. Without ``normalize`` cells are coloured by count.
    """
    from matplotlib.colors import PowerNorm

    counts = confusion_matrix(y_true, y_pred, len(class_names))
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    labels = confusion_cell_labels(counts, normalize)

    n = len(class_names)
    size = max(4.5, 0.65 * n + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    vmax = 1 if normalize else max(counts.max(), 1)
    image = ax.imshow(values, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=vmax))
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    ticks = np.arange(n)
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    dark = values > 0.4 * vmax
    fontsize = 8 if n <= 10 else 7 if n <= 12 else 5
    for t in range(n):
        for p in range(n):
            color = "white" if dark[t, p] else "black" if counts[t, p] else "0.7"
            ax.text(p, t, labels[t][p], ha="center", va="center", fontsize=fontsize, color=color,
                    linespacing=0.9)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(title or f"Confusion matrix (accuracy {100 * accuracy:.1f}%)")
    return _save(fig, path)


# --------------------------------------------------------------------------- curves and bars
def plot_history(history, path, title=None) -> Path:
    """Loss and accuracy per epoch, train vs validation, in two panels side by side.

    ``history``: a list of per-epoch dicts such as
    ``{"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.71, "val_loss": 1.0,
    "val_accuracy": 0.68, "lr": 0.1}``. Validation keys may be missing or None
    (no validation split); the epoch defaults to the position in the list, from 1.
    Accuracy is drawn in percent: if every accuracy value is at most 1 the values
    are taken as fractions and multiplied by 100, otherwise as percentages already.
    """
    if len(history) == 0:
        raise ValueError("expected a non-empty list of per-epoch dicts, got an empty history")

    def series(key):
        values = [row.get(key) for row in history]
        return np.array([np.nan if v is None else float(v) for v in values])

    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    accuracies = np.concatenate([series("train_accuracy"), series("val_accuracy")])
    to_percent = 100.0 if np.nanmax(np.append(accuracies, 0.0)) <= 1.0 else 1.0

    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, kind, scale, ylabel in ((loss_ax, "loss", 1.0, "loss"),
                                    (acc_ax, "accuracy", to_percent, "accuracy (%)")):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = series(f"{split}_{kind}")
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values * scale, style, markersize=3, label=split)
        ax.set(xlabel="epoch", ylabel=ylabel, title=kind)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # whole epochs only
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_curves(curves, path, xlabel, ylabel, title=None, logy=False, logx=False, styles=None) -> Path:
    """Several named curves on one axis, e.g. the loss of SGD vs Adam.

    ``curves``: dict name -> y values (x is then 0, 1, 2, ...) or name -> ``(x, y)``
    pair of equal-length sequences. ``logy`` / ``logx`` put that axis on a log scale.
    ``styles``: optional dict name -> matplotlib keyword arguments for that curve, e.g.
    ``{"finite differences": {"linestyle": "none", "marker": "o"}}``, so that curves lying
    on top of each other stay visible.
    """
    styles = styles or {}
    unknown = set(styles) - set(curves)
    if unknown:
        raise ValueError(f"styles name curves that are not plotted: {sorted(unknown)}; "
                         f"the curves are {list(curves)}")
    if len(curves) == 0:
        raise ValueError("expected at least one curve, got an empty dict")
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, values in curves.items():
        if isinstance(values, tuple) and len(values) == 2 and np.ndim(_as_numpy(values[0])) == 1:
            x, y = _as_numpy(values[0]), _as_numpy(values[1])
            if len(x) != len(y):
                raise ValueError(f"curve {name!r}: expected x and y of the same length, "
                                 f"got {len(x)} and {len(y)}")
            ax.plot(x, y, label=str(name), **styles.get(name, {}))
        else:
            ax.plot(_as_numpy(values), label=str(name), **styles.get(name, {}))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_bars(values, path, ylabel, title=None, series_names=None) -> Path:
    """A bar chart of ``values``, each bar labelled with its value.

    ``values``: dict label -> number (one bar per label), or dict label -> sequence of
    numbers, one per entry of ``series_names`` (grouped bars, one colour per series with
    a legend: e.g. ``{"blur": (91.0, 97.5)}`` with ``series_names=("before", "after")``).
    """
    if len(values) == 0:
        raise ValueError("expected at least one bar, got an empty dict")
    labels = [str(k) for k in values]
    if series_names is None:
        groups = [[float(_as_numpy(v))] for v in values.values()]
        names = [None]
    else:
        names = [str(name) for name in series_names]
        groups = [[float(_as_numpy(x)) for x in v] for v in values.values()]
        for label, group in zip(labels, groups):
            if len(group) != len(names):
                raise ValueError(f"bar group {label!r}: expected {len(names)} values (one per series "
                                 f"{names}), got {len(group)}")
    heights = np.array(groups)                                  # (labels, series)
    width = 0.8 / len(names)
    fig = Figure(figsize=(max(5.0, 0.8 * len(labels) * max(1, 0.7 * len(names)) + 2), 4.5),
                 layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(labels))
    for s, name in enumerate(names):
        offset = (s - (len(names) - 1) / 2) * width
        bars = ax.bar(positions + offset, heights[:, s], width, label=name, color=f"C{s}")
        ax.bar_label(bars, fmt="%.3g", padding=2, fontsize=8 if len(names) > 1 else 10)
    ax.margins(y=0.12)
    crowded = len(labels) > 5 or max(map(len, labels)) > 10
    ax.set_xticks(positions, labels, rotation=30 if crowded else 0,
                  ha="right" if crowded else "center")
    ax.set(ylabel=ylabel, title=title)
    ax.grid(True, axis="y", alpha=0.3)
    if series_names is not None:
        ax.legend()
    return _save(fig, path)
