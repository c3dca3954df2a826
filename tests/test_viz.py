"""tinycnn.viz: every plot writes a readable PNG; the array helpers compute the right things."""

import numpy as np
import pytest
from PIL import Image

import tinycnn
from tinycnn import viz

rng = np.random.default_rng(0)
CLASSES = [f"class {i}" for i in range(10)]


def open_png(path):
    """The saved file as an (H, W, 3) uint8 array, after checking it is a sensible PNG."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 200 and image.height >= 150
        return np.asarray(image.convert("RGB"))


def count_pixels(pixels, color):
    """How many pixels are close to the RGB ``color``."""
    return int((np.abs(pixels.astype(int) - color).max(axis=-1) < 40).sum())


RED, GREEN = (255, 0, 0), (0, 128, 0)


# --------------------------------------------------------------------------- every plot writes a PNG
def history(with_val=True):
    rows = []
    for epoch in range(1, 6):
        row = {"epoch": epoch, "train_loss": 1 / epoch, "train_accuracy": 0.5 + 0.08 * epoch, "lr": 0.1}
        if with_val:
            row.update(val_loss=1.2 / epoch, val_accuracy=0.45 + 0.08 * epoch)
        rows.append(row)
    return rows


PLOTS = {
    "history": lambda p: viz.plot_history(history(), p, title="run"),
    "history_no_val": lambda p: viz.plot_history(history(with_val=False), p),
    "confusion": lambda p: viz.plot_confusion_matrix(
        rng.integers(0, 10, 200), rng.integers(0, 10, 200), CLASSES, p),
    "confusion_counts": lambda p: viz.plot_confusion_matrix(
        [0, 1, 1], [0, 1, 0], ["a", "b"], p, normalize=False, title="counts"),
    "predictions": lambda p: viz.plot_predictions(
        rng.random((12, 3, 16, 16)), rng.integers(0, 10, 12), rng.integers(0, 10, 12), CLASSES, p,
        probs=rng.random((12, 10))),
    "grid": lambda p: viz.plot_image_grid(
        rng.normal(size=(5, 1, 8, 8)), p, titles=list("abcde"), ncols=3, cmap="magma", title="grid"),
    "filters_rgb": lambda p: viz.plot_filters(rng.normal(size=(8, 3, 5, 5)), p),
    "filters_many_in": lambda p: viz.plot_filters(rng.normal(size=(6, 16, 3, 3)), p),
    "feature_maps": lambda p: viz.plot_feature_maps(rng.normal(size=(1, 40, 6, 6)), p, max_maps=12),
    "curves": lambda p: viz.plot_curves(
        {"sgd": [3, 2, 1.5, 1.2], "adam": (np.array([0, 2, 4]), [2.5, 1.0, 0.5])},
        p, "epoch", "loss", title="optimizers", logy=True),
    "bars": lambda p: viz.plot_bars({"clean": 0.91, "gaussian noise": 0.62, "blur": 0.7}, p, "accuracy"),
    "bars_grouped": lambda p: viz.plot_bars({"noise": (62, 80), "blur": (70, 75)}, p, "accuracy (%)",
                                            series_names=("before", "after")),
    "curves_styled": lambda p: viz.plot_curves(
        {"exact": ([1, 10, 100], [1, 2, 3]), "measured": ([1, 10, 100], [1, 2, 3])}, p, "n", "value",
        logx=True, styles={"measured": {"linestyle": "none", "marker": "o"}}),
    "heatmap": lambda p: viz.overlay_heatmap(
        rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8), rng.random((2, 4, 4)), p,
        titles=["x", "y"]),
}


@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_writes_a_png_and_returns_its_path(tmp_path, name):
    path = tmp_path / "nested" / "dir" / f"{name}.png"
    assert PLOTS[name](str(path)) == path
    assert path.stat().st_size > 0
    open_png(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]     # no temp file left behind


def test_saving_replaces_an_existing_file(tmp_path):
    path = tmp_path / "bars.png"
    path.write_bytes(b"old")
    viz.plot_bars({"a": 1, "b": 2}, path, "value")
    open_png(path)


# --------------------------------------------------------------------------- array helpers
def test_confusion_matrix_counts_a_hand_example():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    m = viz.confusion_matrix(y_true, y_pred, 4)
    assert m.dtype == np.int64 and m.shape == (4, 4)
    np.testing.assert_array_equal(m, [[1, 1, 0, 0],
                                      [0, 1, 0, 0],
                                      [1, 0, 2, 0],
                                      [0, 0, 0, 0]])


def test_confusion_cells_show_counts_and_rare_confusions_are_not_zero_percent():
    y_true = np.array([0] * 1000 + [1] * 10)
    y_pred = np.array([0] * 997 + [1] * 3 + [1] * 10)       # 3 of 1000 zeros taken for ones
    counts = viz.confusion_matrix(y_true, y_pred, 2)
    assert viz.confusion_cell_labels(counts) == [["997\n100%", "3\n0.3%"], ["0", "10\n100%"]]
    assert viz.confusion_cell_labels(counts, normalize=False) == [["997", "3"], ["0", "10"]]


def test_confusion_plot_writes_every_count_into_its_cell(tmp_path, monkeypatch):
    written = []
    original = viz.Figure.savefig

    def keep_texts(fig, *args, **kwargs):
        written.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(viz.Figure, "savefig", keep_texts)
    viz.plot_confusion_matrix([0, 0, 0, 1, 2], [0, 0, 1, 1, 0], ["a", "b", "c"], tmp_path / "cm.png")
    assert written == ["2\n67%", "1\n33%", "0", "0", "1\n100%", "0", "1\n100%", "0", "0"]


def test_to_display_ranges_and_layout():
    grey = viz.to_display(np.full((2, 1, 4, 5), 255, dtype=np.uint8))
    assert grey.shape == (2, 4, 5) and np.all(grey == 1.0)

    unit = rng.random((2, 3, 4, 5))
    rgb = viz.to_display(unit)
    assert rgb.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(rgb, unit.transpose(0, 2, 3, 1))    # [0, 1] floats kept as is

    wide = np.stack([np.linspace(-3, 7, 20).reshape(1, 4, 5), np.full((1, 4, 5), 0.5)])
    shown = viz.to_display(wide)                      # first image min-max scaled, second kept
    assert shown[0].min() == 0.0 and shown[0].max() == 1.0
    np.testing.assert_array_equal(shown[1], 0.5)
    assert viz.to_display(np.full((1, 1, 3, 3), 9.0)).max() == 0.0     # constant image: no NaN
    assert viz.to_display(np.zeros((3, 4, 5))).shape == (3, 4, 5)     # (N, H, W) means grey


def test_heatmaps_are_upsampled_bilinearly():
    small = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    big = viz._resize_bilinear(small, 4, 4)
    assert big.shape == (1, 4, 4)
    np.testing.assert_allclose(big[0, 0], [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(big[0, :, 0], [0, 0.5, 1.5, 2])


# --------------------------------------------------------------------------- marking mistakes
@pytest.mark.parametrize("pred, present, absent", [(1, RED, GREEN), (0, GREEN, RED)])
def test_predictions_mark_mistakes_red_and_hits_green(tmp_path, pred, present, absent):
    images = np.zeros((1, 1, 8, 8), dtype=np.uint8)                   # black: adds no colour
    pixels = open_png(viz.plot_predictions(images, [0], [pred], ["cat", "dog"], tmp_path / "p.png",
                                           probs=[0.9]))
    assert count_pixels(pixels, present) > 50
    assert count_pixels(pixels, absent) == 0


# --------------------------------------------------------------------------- inputs
def test_tensors_are_accepted(tmp_path):
    images = tinycnn.tensor(rng.random((4, 3, 8, 8)))
    labels = tinycnn.tensor([0, 1, 2, 1])
    assert viz.to_display(images).shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(viz.confusion_matrix(labels, labels, 3), np.diag([1, 2, 1]))
    viz.plot_predictions(images, labels, labels, ["a", "b", "c"], tmp_path / "p.png",
                         probs=tinycnn.tensor(rng.random(4)))
    viz.plot_filters(tinycnn.randn(4, 1, 3, 3), tmp_path / "f.png")
    viz.plot_feature_maps(tinycnn.randn(3, 5, 5), tmp_path / "m.png")
    viz.overlay_heatmap(images, tinycnn.rand(4, 8, 8), tmp_path / "h.png")
    viz.plot_curves({"loss": tinycnn.tensor([1.0, 0.5])}, tmp_path / "c.png", "step", "loss")


@pytest.mark.parametrize("call, message", [
    (lambda p: viz.to_display(np.zeros((8, 8))), r"\(N, C, H, W\).*got shape \(8, 8\)"),
    (lambda p: viz.to_display(np.zeros((2, 2, 8, 8))), r"C = 1 or 3.*got shape \(2, 2, 8, 8\)"),
    (lambda p: viz.plot_predictions(np.zeros((3, 1, 4, 4)), [0, 1], [0, 1, 1], ["a", "b"], p),
     "expected 3 y_true labels.*got 2"),
    (lambda p: viz.plot_predictions(np.zeros((2, 1, 4, 4)), [0, 5], [0, 1], ["a", "b"], p),
     r"y_true labels in \[0, 2\), got values from 0 to 5"),
    (lambda p: viz.confusion_matrix([0, 1], [0], 2), "same length, got 2 and 1"),
    (lambda p: viz.confusion_matrix([0.5], [0], 2), "integer class labels, got dtype float64"),
    (lambda p: viz.plot_bars({"a": (1, 2, 3)}, p, "v", series_names=("x", "y")), "expected 2 values"),
    (lambda p: viz.plot_curves({"a": [1, 2]}, p, "x", "y", styles={"b": {}}), "styles name curves"),
    (lambda p: viz.plot_image_grid(np.zeros((2, 1, 4, 4)), p, titles=["a"]), "expected 2 titles.*got 1"),
    (lambda p: viz.plot_filters(np.zeros((4, 3, 3)), p), r"\(out, in, kh, kw\), got shape \(4, 3, 3\)"),
    (lambda p: viz.plot_feature_maps(np.zeros((2, 3, 4, 4)), p), r"got shape \(2, 3, 4, 4\)"),
    (lambda p: viz.overlay_heatmap(np.zeros((2, 1, 4, 4)), np.zeros((3, 4, 4)), p),
     "expected 2 heatmaps.*got 3"),
    (lambda p: viz.plot_history([], p), "empty history"),
    (lambda p: viz.plot_curves({"x": ([1, 2], [1])}, p, "x", "y"), "same length, got 2 and 1"),
])
def test_bad_input_is_explained(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
