"""Your own images: reading files of every kind, image folders, training, predicting, fine-tuning.

The folders are generated here: three classes of patterns (horizontal stripes,
vertical stripes, a checkerboard) in random colours, sizes and file formats,
which a small CNN tells apart in a few epochs.
"""

import csv
import json
import logging

import numpy as np
import pytest
from PIL import Image

from tinycnn import data
from tinycnn.cli import main
from tinycnn.data import ImageFolder, ImageFolderError, ImageReadError, read_image
from tinycnn.runner import load_checkpoint

PATTERNS = ("checker", "horizontal", "vertical")
FORMATS = ("png", "jpg", "bmp", "gif", "webp", "tiff")


def pattern(kind: str, rng, height=None, width=None) -> np.ndarray:
    """An RGB uint8 picture (H, W, 3) of ``kind``: stripes or a checkerboard in two random colours."""
    height = height or int(rng.integers(28, 60))
    width = width or int(rng.integers(28, 60))
    period = int(rng.integers(4, 8))
    y, x = np.mgrid[:height, :width]
    phase = int(rng.integers(period))
    on = {"horizontal": (y + phase) // period % 2, "vertical": (x + phase) // period % 2,
          "checker": ((y + phase) // period + (x + phase) // period) % 2}[kind].astype(bool)
    light, dark = rng.integers(150, 256, 3), rng.integers(0, 100, 3)
    image = np.where(on[..., None], light, dark) + rng.normal(0, 8, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_folder(root, per_class=40, seed=0, formats=FORMATS):
    """root/<pattern>/<i>.<format>: every format and size mixed; returns root."""
    rng = np.random.default_rng(seed)
    for kind in PATTERNS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            fmt = formats[i % len(formats)]
            Image.fromarray(pattern(kind, rng)).save(root / kind / f"{i}.{fmt}")
    return root


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own cache directory (decoded folders are cached under $TINYCNN_DATA)."""
    monkeypatch.setenv("TINYCNN_DATA", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- one file
def test_every_format_and_mode_reads_to_the_requested_shape(tmp_path):
    rng = np.random.default_rng(1)
    picture = pattern("vertical", rng, 40, 60)
    Image.fromarray(picture).save(tmp_path / "a.png")
    reference = read_image(tmp_path / "a.png", 32, 3)
    assert reference.shape == (3, 32, 32) and reference.dtype == np.uint8
    for fmt in FORMATS:
        Image.fromarray(picture).save(tmp_path / f"b.{fmt}")
        image = read_image(tmp_path / f"b.{fmt}", 32, 3)
        assert image.shape == (3, 32, 32)
        tolerance = 40 if fmt in ("jpg", "webp", "gif") else 0  # lossy or 256-colour formats
        assert np.abs(image.astype(int) - reference).mean() <= tolerance, fmt
    grey = read_image(tmp_path / "a.png", 16, 1)
    assert grey.shape == (1, 16, 16)
    Image.fromarray(picture).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg", 32, 3).shape == (3, 32, 32)
    Image.fromarray(picture).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png", 32, 3).shape == (3, 32, 32)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png", 64, 1)
    assert image.min() == 0 and image.max() == 255 and len(np.unique(image)) > 200


def test_transparency_is_composited_onto_the_background(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (0, 0, 0, 255)  # an opaque black square on a transparent background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "icon.png")
    on_white = read_image(tmp_path / "icon.png", 32, 3)
    assert (on_white[:, 0, 0] == 255).all() and (on_white[:, 16, 16] == 0).all()  # not read as all black
    on_black = read_image(tmp_path / "icon.png", 32, 1, background=(0, 0, 0))
    assert on_black[0, 0, 0] == 0
    Image.fromarray(rgba[..., 3]).convert("LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png", 32, 1).shape == (1, 32, 32)


def test_gif_first_frame_and_exif_orientation(tmp_path):
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert tuple(read_image(tmp_path / "anim.gif", 8, 3)[:, 4, 4]) == (255, 0, 0)
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:20] = 255  # white top half of a portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(tall).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "phone.jpg", 20, 1, resize="stretch")
    # viewed upright the white half is on the right, not on top
    assert upright[0, :, -3:].mean() > 200 and upright[0, :, :3].mean() < 50


def test_non_square_images_are_cropped_or_stretched(tmp_path):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = 255  # white left third
    Image.fromarray(wide).save(tmp_path / "wide.png")
    cropped = read_image(tmp_path / "wide.png", 20, 1)  # the centre 20x20: all black
    stretched = read_image(tmp_path / "wide.png", 20, 1, resize="stretch")  # the white third squeezed in
    assert cropped.max() == 0
    assert stretched[0, :, :5].mean() > 200 and stretched[0, :, -5:].max() == 0


def test_bad_files_raise_with_their_name_and_reason(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.png: not an image file"):
        read_image(tmp_path / "notes.png", 32)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:100])
    with pytest.raises(ImageReadError, match="cut.png: cannot decode the image"):
        read_image(tmp_path / "cut.png", 32)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as if whole.png were 14000 x 14000
    with pytest.raises(ImageReadError, match="too large to decode safely .* decompression-bomb limit"):
        read_image(tmp_path / "whole.png", 32)


# --------------------------------------------------------------------------- folders
def test_image_folder_reads_classes_and_skips_a_corrupt_file(tmp_path, caplog):
    root = make_folder(tmp_path / "set", per_class=6)
    (root / "vertical" / "nested").mkdir()
    Image.fromarray(pattern("vertical", np.random.default_rng(5))).save(root / "vertical" / "nested" / "deep.png")
    (root / "checker" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "checker" / ".DS_Store").write_bytes(b"\0")  # hidden: not even a warning
    with caplog.at_level(logging.WARNING, logger="tinycnn.data"):
        folder = ImageFolder(root, image_size=24)
    assert folder.classes == PATTERNS
    assert folder.images.shape == (19, 3, 24, 24) and folder.images.dtype == np.uint8
    assert list(folder.class_counts()) == [6, 6, 7]
    assert [path.endswith("broken.jpg") for path, _ in folder.skipped] == [True]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("broken.jpg: not an image file" in w for w in warnings)
    assert any("1 of 20 files" in w for w in warnings)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        ImageFolder(root, image_size=24, strict=True, cache=False)


def test_grey_folders_get_one_channel_unless_asked(tmp_path):
    root = tmp_path / "digits"
    rng = np.random.default_rng(2)
    for kind in PATTERNS:
        (root / kind).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(pattern(kind, rng)).convert("L").save(root / kind / f"{i}.png")
    assert ImageFolder(root, image_size=16).images.shape[1] == 1
    assert ImageFolder(root, image_size=16, channels=3).images.shape[1] == 3


def test_folders_that_cannot_make_a_data_set_say_why(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        ImageFolder(tmp_path / "nowhere")
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (8, 8)).save(loose / "a.png")
    with pytest.raises(ImageFolderError, match="no class sub-folders .*1 images lie directly in it"):
        ImageFolder(loose)
    one = make_folder(tmp_path / "one", per_class=2)
    for kind in PATTERNS[1:]:
        for file in (one / kind).iterdir():
            file.unlink()
        (one / kind).rmdir()
    with pytest.raises(ImageFolderError, match="one class folder .*at least two classes"):
        ImageFolder(one)
    empty = make_folder(tmp_path / "empty", per_class=2)
    (empty / "zebra").mkdir()
    with pytest.raises(ImageFolderError, match="class folder 'zebra' is empty"):
        ImageFolder(empty)
    unreadable = make_folder(tmp_path / "unreadable", per_class=2)
    (unreadable / "zebra").mkdir()
    (unreadable / "zebra" / "z.png").write_text("text")
    with pytest.raises(ImageFolderError, match="class folder 'zebra' has no readable images"):
        ImageFolder(unreadable)
    cased = make_folder(tmp_path / "cased", per_class=2)
    (cased / "Checker").mkdir()
    Image.new("RGB", (8, 8)).save(cased / "Checker" / "a.png")
    with pytest.raises(ImageFolderError, match="differ only by case"):
        ImageFolder(cased)


def test_the_cache_makes_a_second_read_instant_and_notices_changes(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "set", per_class=4)
    first = ImageFolder(root, image_size=16)
    from tinycnn.data.images import ImageReader

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the folder is cached")

    with monkeypatch.context() as patch:
        patch.setattr(ImageReader, "read", no_decoding)
        again = ImageFolder(root, image_size=16)
    np.testing.assert_array_equal(first.images, again.images)
    assert again.files == first.files
    Image.fromarray(pattern("checker", np.random.default_rng(9))).save(root / "checker" / "new.png")
    changed = ImageFolder(root, image_size=16)  # a changed folder is read again
    assert len(changed) == len(first) + 1
    assert ImageFolder(root, image_size=8).images.shape[-1] == 8  # other settings: another cache entry


def test_stratified_split_keeps_each_class_share():
    labels = np.array([0] * 300 + [1] * 40 + [2] * 10)
    dataset = data.ImageDataset(np.zeros((350, 1, 2, 2), np.uint8), labels, ("a", "b", "c"))
    rest, held = data.stratified_split(dataset, 35, seed=0)
    assert len(held) == 35 and len(rest) == 315
    assert list(held.class_counts()) == [30, 4, 1]
    assert set(held.indices).isdisjoint(rest.indices)


# --------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """`tinycnn train --images` on a generated folder with train/ and test/: (root, run folder)."""
    root = tmp_path_factory.mktemp("patterns")
    make_folder(root / "train", per_class=70, seed=0)
    make_folder(root / "test", per_class=15, seed=1)
    run = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYCNN_DATA", str(root / "cache"))
        code = main(["train", "--images", str(root), "--image-size", "24", "--epochs", "6", "--out", str(run),
                     "--quiet"])
    assert code == 0
    return root, run


def test_train_on_a_folder_learns_it_and_records_its_preprocessing(folder_run):
    root, run = folder_run
    metrics = json.loads((run / "metrics.json").read_text())
    print("test accuracy on the generated test/ folder:", metrics["test_accuracy"])
    assert metrics["test_accuracy"] >= 0.8  # chance is 1/3
    meta = load_checkpoint(run)["meta"]
    assert meta["classes"] == list(PATTERNS) and meta["image_shape"] == [3, 24, 24]
    assert meta["resize"] == "crop" and len(meta["background"]) == 3
    assert meta["train_images"] == 210 - 21  # 10% held out for validation, by class


def test_eval_of_a_folder_run_reproduces_its_test_accuracy(folder_run, capsys):
    root, run = folder_run
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == pytest.approx(json.loads((run / "metrics.json").read_text())["test_accuracy"])


def test_predict_a_labelled_folder_with_csv_json_and_a_bad_file(folder_run, tmp_path, capsys, monkeypatch):
    root, run = folder_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new" / "checker" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for kind in PATTERNS:
        (tmp_path / "new" / kind).mkdir(exist_ok=True)
        for i in range(10):
            Image.fromarray(pattern(kind, rng)).save(tmp_path / "new" / kind / f"{i}.png")
    Image.fromarray(pattern("checker", rng)).save(tmp_path / "new" / "checker" / "deeper" / "x.jpg")
    (tmp_path / "new" / "vertical" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    capsys.readouterr()
    code = main(["predict", "--checkpoint", str(run), "new", "--csv", "out.csv", "--json", "out.json", "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 1  # one file could not be read: reported, the rest predicted
    lines = out.strip().splitlines()
    assert sum(": error: " in line for line in lines) == 1 and any("broken.png: error:" in line for line in lines)
    predicted = [line for line in lines if line.startswith("new/") and ": error: " not in line]
    assert len(predicted) == 31 and all(line.count("%") == 2 for line in predicted)
    accuracy = next(line for line in lines if line.startswith("accuracy"))
    assert float(accuracy.split()[1].rstrip("%")) >= 75 and "on 31 labelled images" in accuracy
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert "1 of 32 inputs could not be classified" in err
    rows = list(csv.DictReader(open("out.csv")))
    assert len(rows) == 32 and {r["label"] for r in rows} == set(PATTERNS)
    assert sum(bool(r["error"]) for r in rows) == 1
    records = json.loads(open("out.json").read())
    assert len(records) == 32 and len(records[0]["top"]) == 2


def test_predict_keeps_transparency_and_warns_about_reversed_polarity(folder_run, tmp_path, capsys):
    root, run = folder_run
    from tinycnn.predict_files import Item, classify_files
    from tinycnn.runner import model_from_checkpoint

    checkpoint = load_checkpoint(run)
    rng = np.random.default_rng(3)
    picture = pattern("horizontal", rng, 40, 40)
    rgba = np.dstack([picture, np.full((40, 40), 255, np.uint8)])
    rgba[:, :3, 3] = 0  # a transparent margin on the left
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    seen = {}
    from tinycnn.data.images import ImageReader
    real_read = ImageReader.read

    def keep(reader, paths):  # what predict hands the model
        results = real_read(reader, paths)
        seen["image"] = results[0][0]
        return results

    ImageReader.read = keep
    try:
        classify_files(model_from_checkpoint(checkpoint), checkpoint["meta"], [Item(tmp_path / "alpha.png")])
    finally:
        ImageReader.read = real_read
    margin = seen["image"][:, :, 0]  # composited onto the training images' background colour, not black
    assert (margin == np.array(checkpoint["meta"]["background"])[:, None]).all()

    background = np.mean(checkpoint["meta"]["background"])
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    for i in range(6):  # backgrounds on the other side of the grey scale from training's
        level = 255 if background < 128 else 0
        Image.new("RGB", (30, 30), (level,) * 3).save(flipped / f"{i}.png")
    capsys.readouterr()
    main(["predict", "--checkpoint", str(run), str(flipped)])
    assert "--invert" in capsys.readouterr().err
    main(["predict", "--checkpoint", str(run), str(tmp_path / "alpha.png")])
    assert "--invert" not in capsys.readouterr().err


def test_fine_tune_from_a_run_with_frozen_features(folder_run, tmp_path, capsys):
    root, run = folder_run
    source = load_checkpoint(run)
    target = tmp_path / "subset"
    for kind in PATTERNS[:2]:  # a new task: two of the classes, fewer images
        (target / kind).mkdir(parents=True)
        for file in sorted((root / "train" / kind).iterdir())[:20]:
            (target / kind / file.name).write_bytes(file.read_bytes())
    capsys.readouterr()
    assert main(["train", "--images", str(target), "--image-size", "24", "--epochs", "2", "--init-from", str(run),
                 "--freeze", "features", "--out", str(tmp_path / "tuned")]) == 0
    out = capsys.readouterr().out
    assert "init from" in out and "re-initialised classifier.1.weight: (3, 288) in the source, (2, 288) here" in out
    assert "frozen:" in out
    tuned = load_checkpoint(tmp_path / "tuned")
    best = source["fit_state"]["best_state"]
    for name, value in tuned["model"].items():
        if name.startswith("features.") and "running" not in name and "num_batches" not in name:
            np.testing.assert_array_equal(value, best[name], err_msg=name)  # frozen: exactly as loaded
    assert main(["train", "--images", str(target), "--freeze", "featurez", "--out", str(tmp_path / "x")]) == 1
    assert "--freeze featurez: no parameter of this model is named so; its parts are classifier, features" in \
        capsys.readouterr().err


def test_a_model_saved_from_python_can_be_used_by_predict(folder_run, tmp_path, capsys):
    import tinycnn
    from tinycnn.runner import model_from_checkpoint, save_model

    root, run = folder_run
    checkpoint = load_checkpoint(run)
    model = model_from_checkpoint(checkpoint)
    meta = checkpoint["meta"]
    tinycnn.save(model.state_dict(), tmp_path / "weights.npz")
    image = next((root / "test" / "vertical").iterdir())
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(tmp_path / "weights.npz"), str(image)]) == 1
    assert "save the model with tinycnn.save_model" in capsys.readouterr().err
    save_model(tmp_path / "model.npz", model, name="small_cnn", classes=meta["classes"], mean=meta["mean"],
               std=meta["std"], image_shape=meta["image_shape"], background=meta["background"])
    assert main(["predict", "--checkpoint", str(tmp_path / "model.npz"), str(image)]) == 0
    assert capsys.readouterr().out.split(": ")[1].startswith("vertical")
    assert main(["eval", "--checkpoint", str(tmp_path / "model.npz")]) == 1
    assert "give a labelled folder to evaluate it on with --images DIR" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "model.npz"), "--images", str(root / "test")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 45 and result["test_accuracy"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["test_accuracy"])  # the run's test set is test/
    if __import__("importlib").util.find_spec("onnx"):
        assert main(["export", "--checkpoint", str(tmp_path / "model.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 0


def test_fine_tune_from_pytorch_weights(tmp_path, capsys):
    """--init-from a PyTorch .pt (a LeNet-5 twin's state_dict, tests/fixtures): the matching names load."""
    from pathlib import Path

    weights = Path(__file__).parent / "fixtures" / "lenet5.pt"
    root = tmp_path / "grey"
    rng = np.random.default_rng(4)
    for kind in PATTERNS:
        (root / kind).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(pattern(kind, rng)).convert("L").save(root / kind / f"{i}.png")
    capsys.readouterr()
    assert main(["train", "--images", str(root), "--model", "lenet5", "--image-size", "28", "--epochs", "1",
                 "--init-from", str(weights), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "loaded 8 of 10 tensors" in out
    assert "re-initialised classifier.5.weight: (10, 84) in the source, (3, 84) here" in out


def test_reading_in_worker_processes_gives_what_reading_here_gives(tmp_path, monkeypatch):
    from tinycnn.data.images import ImageReader

    root = make_folder(tmp_path / "set", per_class=30)
    (root / "vertical" / "broken.png").write_text("not an image")
    here = ImageFolder(root, image_size=16, workers=1, cache=False)
    monkeypatch.setattr(ImageReader, "MIN_FILES_FOR_PROCESSES", 1)
    monkeypatch.setattr(ImageReader, "CHUNK", 7)  # several chunks, the last one short
    pooled = ImageFolder(root, image_size=16, workers=2, cache=False)
    np.testing.assert_array_equal(here.images, pooled.images)
    assert here.files == pooled.files and here.skipped == pooled.skipped and len(pooled.skipped) == 1
    with pytest.raises(ImageReadError, match="broken.png"):
        ImageFolder(root, image_size=16, workers=2, cache=False, strict=True)
