"""The ``tinycnn`` command: train, eval, predict, and one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinycnn
from tinycnn.cli import main


@pytest.fixture(scope="module")
def run_dir(shapes_run):
    out, code = shapes_run
    assert code == 0
    return out


def one_line_error(capsys, argv, pattern):
    """Run the command, expect a failure with one stderr line matching ``pattern``."""
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse errors exit
        code = exit.code
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert pattern in err, err
    return err


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "tinycnn.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and tinycnn.__version__ in result.stdout


def test_train_writes_a_run(run_dir, capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.85
    assert (run_dir / "checkpoint.npz").exists()


def test_eval_reproduces_the_test_accuracy(run_dir, capsys):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert result["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert result["images"] > 0


def test_predict_classifies_image_files(run_dir, tmp_path, capsys):
    """48 test images as PNG files, and the same images enlarged 2x as RGBA: the command
    converts them back (2x2 blocks averaged), so both give the same predictions."""
    test_set = tinycnn.data.Shapes(train=False, seed=0)
    labels = [test_set.classes[label] for label in test_set.labels[:48]]
    predictions = {}
    for kind in ("plain", "enlarged"):
        paths = []
        for i in range(48):
            image = Image.fromarray(test_set.images[i].transpose(1, 2, 0))
            if kind == "enlarged":  # other sizes and modes than the training images
                image = image.resize((64, 64), Image.NEAREST).convert("RGBA")
            paths.append(str(tmp_path / f"{kind}{i}.png"))
            image.save(paths[-1])
        capsys.readouterr()
        assert main(["predict", "--checkpoint", str(run_dir / "checkpoint.npz"), "--top", "2", *paths]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == len(paths)
        assert all(line.count("%") == 2 for line in lines)
        predictions[kind] = [line.split(": ", 1)[1].split(" ")[0] for line in lines]
    assert predictions["enlarged"] == predictions["plain"]
    assert np.mean([p == t for p, t in zip(predictions["plain"], labels)]) >= 0.75


def test_bad_arguments_give_one_line_errors(run_dir, tmp_path, capsys):
    one_line_error(capsys, ["train", "--dataset", "imagenet"], "invalid choice")
    one_line_error(capsys, ["train", "--epochs", "0"], "at least 1")
    one_line_error(capsys, ["train", "--lr", "fast"], "expected a finite number above 0")
    one_line_error(capsys, ["train", "--augment", "mixup", "--out", str(tmp_path / "x")], "unknown augmentation 'mixup'")
    one_line_error(capsys, ["train", "--device", "tpu"], "unknown device 'tpu'")
    one_line_error(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nothing"), "--out",
                            str(tmp_path / "y")], "mnist")
    one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "missing.npz")], "does not exist")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((run_dir / "checkpoint.npz").read_bytes()[:1000])
    one_line_error(capsys, ["eval", "--checkpoint", str(damaged)], "damaged")
    # predict reports a bad input on its own line and says how many failed, in one stderr line
    one_line_error(capsys, ["predict", "--checkpoint", str(run_dir), str(tmp_path / "nope.png")],
                   "1 of 1 inputs could not be classified")
    not_image = tmp_path / "text.png"
    not_image.write_text("hello")
    assert main(["predict", "--checkpoint", str(run_dir), str(not_image), str(tmp_path / "nope.png")]) == 1
    out = capsys.readouterr().out
    assert "text.png: error: not an image file Pillow can read" in out and "nope.png: error: no such file" in out
    one_line_error(capsys, ["predict", "--checkpoint", str(run_dir)], "required")


def test_info_names_versions_and_the_worker_count(capsys, monkeypatch):
    monkeypatch.setattr(tinycnn.fast.workers, "_num_threads", 3)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "tinycnn 0.1.0" in out and "numpy" in out
    assert "threads 3 CPU workers" in out


def test_export_writes_an_onnx_file_that_gives_tinycnns_answers(run_dir, tmp_path, capsys):
    """`tinycnn export`: the file takes pixels / 255 (normalisation inside) and gives the logits."""
    pytest.importorskip("onnx", reason="tinycnn export needs the optional onnx package")
    ort = pytest.importorskip("onnxruntime", reason="running the exported file needs onnxruntime")
    from tinycnn.runner import load_checkpoint, model_from_checkpoint, prepare_images

    capsys.readouterr()
    assert main(["export", "--checkpoint", str(run_dir), "--onnx", str(tmp_path / "model.onnx")]) == 0
    assert "input 'input' (batch, 3, 32, 32) pixels / 255" in capsys.readouterr().out
    checkpoint = load_checkpoint(run_dir)
    model = model_from_checkpoint(checkpoint)
    model.eval()
    images = tinycnn.data.Shapes(train=False, n=7, seed=3).images          # uint8 (7, 3, 32, 32)
    expected = model(prepare_images(images, checkpoint["meta"])).data
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(["output"], {"input": (images / 255.0).astype(np.float32)})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == checkpoint["meta"]["classes"]


def test_export_without_onnx_says_how_to_get_it(run_dir, tmp_path, capsys, without_onnx):
    one_line_error(capsys, ["export", "--checkpoint", str(run_dir), "--onnx", str(tmp_path / "m.onnx")],
                   "pip install 'tinycnn[onnx]'")
    assert not (tmp_path / "m.onnx").exists()
