"""``tinycnn explore``'s server: every endpoint, and every kind of bad request (a 4xx, and the server goes on).

The run: LeNet-5 trained for two epochs on a folder of grey 28x28 strokes (tests/_explore_run.py),
so the drawing, the test set and the history all exist; the server runs in a thread on a free port.
"""

import base64
import http.client
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import tinycnn
from tinycnn.cli import main
from tinycnn.explore import Explorer
from tinycnn.explore.drawing import centre_like_mnist
from tinycnn.explore.model_view import ModelView, place_on_input
from tinycnn.explore.server import MAX_UPLOAD_BYTES, is_loopback

from _explore_run import CLASSES, ServerThread, train_stroke_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_stroke_run(tmp_path_factory.mktemp("explore-run"))


@pytest.fixture(scope="module")
def explorer(run_dir):
    explorer = Explorer(run_dir)
    yield explorer
    explorer.close()


@pytest.fixture(scope="module")
def server(explorer):
    thread = ServerThread(explorer)
    yield thread
    thread.close()


def request(server, method, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes, response headers) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if kind.startswith("application/json") else data, response
    finally:
        connection.close()


def png_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def picture(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def stroke_png(run_dir, label="cross", number=0):
    return run_dir.parent / "strokes" / "test" / label / f"{number}.png"


def still_serving(server):
    status, answer, _ = request(server, "GET", "/api/model")
    assert status == 200 and answer["model"] == "lenet5"


# --------------------------------------------------------------------------- GET /api/model
def test_model_lists_the_layers_and_the_input(server, run_dir):
    status, model, _ = request(server, "GET", "/api/model")
    assert status == 200
    layers = [(layer["name"], layer["type"], layer["output_shape"], layer["parameters"]) for layer in model["layers"]]
    assert layers == [
        ("features.0", "Conv2d", [6, 28, 28], 6 * 25 + 6), ("features.1", "ReLU", [6, 28, 28], 0),
        ("features.2", "MaxPool2d", [6, 14, 14], 0), ("features.3", "Conv2d", [16, 10, 10], 16 * 6 * 25 + 16),
        ("features.4", "ReLU", [16, 10, 10], 0), ("features.5", "MaxPool2d", [16, 5, 5], 0),
        ("classifier.0", "Flatten", [400], 0), ("classifier.1", "Linear", [120], 400 * 120 + 120),
        ("classifier.2", "ReLU", [120], 0), ("classifier.3", "Linear", [84], 120 * 84 + 84),
        ("classifier.4", "ReLU", [84], 0), ("classifier.5", "Linear", [3], 84 * 3 + 3)]
    checkpoint = tinycnn.runner.load_checkpoint(run_dir)
    assert model["parameters"] == tinycnn.models.count_parameters(tinycnn.runner.model_from_checkpoint(checkpoint))
    assert model["input"]["channels"] == 1 and model["input"]["size"] == 28
    assert model["input"]["classes"] == list(CLASSES)
    assert model["input"]["mean"] == pytest.approx(checkpoint["meta"]["mean"])
    assert model["input"]["std"] == pytest.approx(checkpoint["meta"]["std"])
    assert model["drawing"] is True and model["testset"] is True
    filters = model["filters"]
    assert filters["layer"] == "features.0" and filters["shape"] == [6, 1, 5, 5]
    assert [picture(p).shape for p in filters["pictures"]] == [(5, 5, 3)] * 6


# --------------------------------------------------------------------------- POST /api/predict
def test_an_upload_gets_the_answer_tinycnn_predict_gives(server, run_dir, capsys):
    path = stroke_png(run_dir)
    status, answer, _ = request(server, "POST", "/api/predict", path.read_bytes(),
                                {"Content-Type": "application/octet-stream"})
    assert status == 200
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(run_dir), "--top", "3", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    expected = [(part.rsplit(" ", 1)[0], float(part.rsplit(" ", 1)[1].rstrip("%")))
                for part in line.split(": ", 1)[1].split(", ")]
    assert [(e["class"], round(100 * e["probability"], 1)) for e in answer["top"]] == expected
    assert sum(answer["probabilities"]) == pytest.approx(1.0)
    assert answer["target_class"] == answer["top"][0]["class"]

    # The input as the model sees it: the file's pixels (already 28x28 grey), and their normalised picture.
    assert np.array_equal(picture(answer["input"]["picture"]), np.asarray(Image.open(path)))
    mean, std = tinycnn.runner.load_checkpoint(run_dir)["meta"]["mean"][0], \
        tinycnn.runner.load_checkpoint(run_dir)["meta"]["std"][0]
    low, high = answer["input"]["range"]
    assert low == pytest.approx((np.asarray(Image.open(path)).min() / 255 - mean) / std, rel=1e-4)
    assert high == pytest.approx((np.asarray(Image.open(path)).max() / 255 - mean) / std, rel=1e-4)

    # Every layer's output: one picture per map, of the map's size; flat outputs as one strip.
    shapes = {layer["name"]: layer["output_shape"] for layer in request(server, "GET", "/api/model")[1]["layers"]}
    assert [layer["name"] for layer in answer["layers"]] == list(shapes)
    for layer in answer["layers"]:
        shape = shapes[layer["name"]]
        if len(shape) == 3:
            assert layer["kind"] == "maps" and layer["total"] == layer["shown"] == shape[0] == len(layer["maps"])
            assert {picture(m).shape for m in layer["maps"]} == {(shape[1], shape[2], 3)}
        else:
            assert layer["kind"] == "vector" and layer["total"] == shape[0]
            assert picture(layer["vector"]).shape == (1, shape[0], 3)
    first = [picture(m) for m in answer["layers"][1]["maps"]]  # after the first ReLU: a stroke shows
    assert max(float(m.max()) for m in first) > 100 and all(m.min() == 0 for m in first)
    assert picture(answer["saliency"]).shape == (224, 224, 3)
    assert picture(answer["gradcam"]).shape == (224, 224, 3)
    assert answer["gradcam_layer"] == "features.4" and answer["gradcam_size"] == [10, 10]


def test_a_data_url_and_a_test_index_give_the_same_answer_as_the_file(server, explorer, run_dir):
    images, _, probabilities = explorer.test_data()
    raw = png_bytes(images[5][0])
    _, by_file, _ = request(server, "POST", "/api/predict", raw, {"Content-Type": "image/png"})
    _, by_url, _ = request(server, "POST", "/api/predict", json.dumps({"image": data_url(raw), "source": "upload"}),
                           {"Content-Type": "application/json"})
    _, by_index, _ = request(server, "POST", "/api/predict", json.dumps({"test_index": 5}),
                             {"Content-Type": "application/json"})
    assert by_file["probabilities"] == pytest.approx(by_url["probabilities"])
    assert by_file["probabilities"] == pytest.approx(by_index["probabilities"])
    assert by_index["probabilities"] == pytest.approx(probabilities[5].tolist(), abs=1e-5)  # the batch's answer


def test_a_drawing_is_centred_like_mnist_before_the_model_sees_it(server, explorer):
    canvas = np.zeros((280, 280), dtype=np.uint8)
    canvas[20:120, 30:60] = 255                   # a tall stroke in the top-left corner, 100 x 30 pixels
    status, answer, _ = request(server, "POST", "/api/predict", json.dumps(
        {"image": data_url(png_bytes(canvas)), "source": "drawing"}), {"Content-Type": "application/json"})
    assert status == 200
    seen = picture(answer["input"]["picture"])
    assert seen.shape == (28, 28)
    assert np.array_equal(seen, centre_like_mnist(canvas))
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20           # the longer side fits the 20x20 box
    assert cols[-1] - cols[0] + 1 == 6            # 30 * 20 / 100, the aspect kept
    mass = seen.astype(float) / seen.sum()
    centre = ((mass.sum(axis=1) * np.arange(28)).sum(), (mass.sum(axis=0) * np.arange(28)).sum())
    assert centre == pytest.approx((13.5, 13.5), abs=0.6)  # centre of mass in the middle
    # an RGBA canvas (what a browser's toDataURL gives) reads the same
    rgba = np.dstack([canvas] * 3 + [np.full_like(canvas, 255)])
    _, again, _ = request(server, "POST", "/api/predict", json.dumps(
        {"image": data_url(png_bytes(rgba)), "source": "drawing"}), {"Content-Type": "application/json"})
    assert again["probabilities"] == pytest.approx(answer["probabilities"])


def test_centre_like_mnist_keeps_aspect_and_centres_mass():
    drawing = np.zeros((300, 200), dtype=np.uint8)
    drawing[250:260, 10:190] = 200                # a wide bar near the bottom
    digit = centre_like_mnist(drawing)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    assert cols[-1] - cols[0] + 1 == 20 and 1 <= rows[-1] - rows[0] + 1 <= 2
    assert abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1
    assert centre_like_mnist(np.zeros((50, 50), dtype=np.uint8)) is None


def test_a_chosen_class_is_explained_instead_of_the_top_one(server, run_dir):
    raw = stroke_png(run_dir, "bar").read_bytes()
    _, top, _ = request(server, "POST", "/api/predict", raw, {"Content-Type": "application/octet-stream"})
    other = (top["target"] + 1) % 3
    _, chosen, _ = request(server, "POST", f"/api/predict?target={other}", raw,
                           {"Content-Type": "application/octet-stream"})
    assert chosen["target"] == other and chosen["target_class"] == CLASSES[other]
    assert chosen["probabilities"] == pytest.approx(top["probabilities"])  # the same answer...
    assert chosen["saliency"] != top["saliency"]                           # ... another explanation


def test_saliency_and_grad_cam_are_lesson_13s(explorer, run_dir):
    """The view's numbers against the lesson's recipe written out on LeNet-5's own layers."""
    view: ModelView = explorer.view
    image = np.asarray(Image.open(stroke_png(run_dir, "cross", 3)))[None]
    look = view.look(image)
    model = view.model
    x = tinycnn.tensor(view.normalise(image)[None], requires_grad=True)
    maps = model.features[:5](x)                 # conv, ReLU, pool, conv, ReLU: (1, 16, 10, 10)
    maps.retain_grad()
    scores = model.classifier(model.features[5](maps))
    choose = np.zeros((1, 3), dtype=np.float32)
    choose[0, look.target] = 1
    (scores * tinycnn.tensor(choose)).sum().backward()
    alpha = maps.grad.numpy().mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((alpha * maps.numpy()).sum(axis=1), 0)[0]
    assert look.target == int(scores.numpy().argmax())
    np.testing.assert_allclose(look.cam, cam, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(look.saliency, np.abs(x.grad.numpy()[0]).max(axis=0), rtol=1e-5, atol=1e-8)
    # LeNet-5's 10x10 cells sit on pixels 4..23: the 4-pixel border gets no heat (lesson 13, part 5)
    start, jump = look.cam_grid
    assert list(start) == [4.5, 4.5] and list(jump) == [2, 2]
    ones = place_on_input(np.ones((10, 10)), start, jump, (28, 28))
    assert ones[4:24, 4:24].min() == 1 and ones.sum() == 400


# --------------------------------------------------------------------------- GET /api/testset, /api/history
def test_test_images_random_and_most_confident_mistakes(server, explorer):
    images, labels, probabilities = explorer.test_data()
    assert len(images) == 60
    status, random_set, _ = request(server, "GET", "/api/testset?mode=random&count=5&seed=3")
    assert status == 200 and len(random_set["items"]) == 5
    assert request(server, "GET", "/api/testset?mode=random&count=5&seed=3")[1]["items"] == random_set["items"]
    for item in random_set["items"]:
        assert item["label"] == CLASSES[labels[item["index"]]]
        assert np.array_equal(picture(item["picture"]), images[item["index"]][0])
    predicted = probabilities.argmax(axis=1)
    wrong = int(np.sum(predicted != labels))
    _, mistakes, _ = request(server, "GET", "/api/testset?mode=mistakes&count=64")
    assert mistakes["mistakes"] == wrong == len(mistakes["items"])
    assert mistakes["accuracy"] == pytest.approx(1 - wrong / 60)
    assert all(item["label"] != item["prediction"] for item in mistakes["items"])
    confidences = [item["confidence"] for item in mistakes["items"]]
    assert confidences == sorted(confidences, reverse=True)


def test_history_gives_the_curves_metrics_and_confusion_matrix(server, run_dir):
    status, answer, _ = request(server, "GET", "/api/history")
    assert status == 200 and answer["finished"] is True
    assert answer["history"] == json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert answer["metrics"] == metrics
    matrix = np.array(answer["confusion"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 60
    assert np.trace(matrix) / 60 == pytest.approx(metrics["test_accuracy"])  # the same best weights as training used


def test_history_of_a_run_still_training_comes_from_its_checkpoint(run_dir, tmp_path):
    training = tmp_path / "training"
    training.mkdir()
    shutil.copy(run_dir / "checkpoint.npz", training / "checkpoint.npz")  # no history.json, no metrics.json yet
    explorer = Explorer(training / "checkpoint.npz", images=str(tmp_path / "moved"))
    try:
        answer = explorer.history()
        assert answer["finished"] is False and answer["epochs_planned"] == 2
        assert [r["epoch"] for r in answer["history"]] == [1, 2]
        assert answer["confusion"] is None  # its data set is not where --images says
    finally:
        explorer.close()


def test_polarity_warning_and_invert(server, run_dir):
    digit = np.asarray(Image.open(stroke_png(run_dir, "pole", 2)))
    paper = png_bytes(255 - digit)                # dark ink on white paper
    _, plain, _ = request(server, "POST", "/api/predict", paper, {"Content-Type": "application/octet-stream"})
    assert "light backgrounds" in plain["warning"] and "tick 'invert'" in plain["warning"]
    _, inverted, _ = request(server, "POST", "/api/predict?invert=1", paper, {"Content-Type": "application/octet-stream"})
    _, original, _ = request(server, "POST", "/api/predict", png_bytes(digit), {"Content-Type": "application/octet-stream"})
    assert inverted["warning"] is None
    assert inverted["probabilities"] == pytest.approx(original["probabilities"])


# --------------------------------------------------------------------------- the page's files, and nothing else
def test_the_page_and_its_two_files_are_served(server):
    status, page, response = request(server, "GET", "/")
    assert status == 200 and response.getheader("Content-Type").startswith("text/html")
    assert b"static/explore.js" in page and b"static/explore.css" in page
    assert b"http://" not in page and b"https://" not in page  # nothing from the internet
    for path, kind in (("/static/explore.js", "text/javascript"), ("/static/explore.css", "text/css")):
        status, body, response = request(server, "GET", path)
        assert status == 200 and response.getheader("Content-Type").startswith(kind) and len(body) > 1000
        assert b"https://" not in body
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py", "/../../../../etc/passwd",
    "/static/../../../../../etc/passwd", "/static//etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/",
    "/static/index.html", "/server.py", "/tinycnn/explore/server.py", "/static/explore.js/../../server.py",
    "/static/explore.js%00.png", "/.git/config", "//etc/passwd", "/static/EXPLORE.JS",
])
def test_no_other_file_is_served(server, path):
    status, body, _ = request(server, "GET", path)
    assert status == 404 and b"root:" not in json.dumps(body).encode() and "nothing here" in body["error"]


# --------------------------------------------------------------------------- bad requests
JSON = {"Content-Type": "application/json"}
RAW = {"Content-Type": "application/octet-stream"}


@pytest.mark.parametrize("method, path, body, headers, status, words", [
    ("POST", "/api/predict", b"hello, not an image", RAW, 400, "not an image file Pillow can read"),
    ("POST", "/api/predict", b"", RAW, 400, "the upload is empty"),
    ("POST", "/api/predict", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, RAW, 400, "cannot read this image"),
    ("POST", "/api/predict", b"{not json", JSON, 400, "not valid JSON"),
    ("POST", "/api/predict", b"\xff\xfe", JSON, 400, "not valid JSON"),
    ("POST", "/api/predict", b"[1, 2]", JSON, 400, "must be an object"),
    ("POST", "/api/predict", b"{}", JSON, 400, "'image' (a data: URL) or 'test_index'"),
    ("POST", "/api/predict", b'{"image": "http://example.com/x.png"}', JSON, 400, "data: URL"),
    ("POST", "/api/predict", b'{"image": 5}', JSON, 400, "data: URL"),
    ("POST", "/api/predict", b'{"image": "data:image/png;base64,@@@"}', JSON, 400, "invalid base64"),
    ("POST", "/api/predict", b'{"image": "data:image/png;base64,aGVsbG8=", "source": "drawing"}', JSON, 400,
     "not an image Pillow can read"),
    ("POST", "/api/predict", b'{"image": "data:image/png;base64,aGVsbG8=", "source": "camera"}', JSON, 400,
     "source must be"),
    ("POST", "/api/predict", b'{"test_index": -1}', JSON, 400, "test_index must be"),
    ("POST", "/api/predict", b'{"test_index": 60}', JSON, 400, "test_index must be"),
    ("POST", "/api/predict", b'{"test_index": "3"}', JSON, 400, "test_index must be"),
    ("POST", "/api/predict", b'{"test_index": true}', JSON, 400, "test_index must be"),
    ("POST", "/api/predict", b'{"test_index": 1.5}', JSON, 400, "test_index must be"),
    ("POST", "/api/predict", b'{"test_index": 1, "target": 3}', JSON, 400, "target must be a class index in [0, 3)"),
    ("POST", "/api/predict", b'{"test_index": 1, "target": "bar"}', JSON, 400, "target must be a class index"),
    ("POST", "/api/predict?target=x", b"x", RAW, 400, "target must be a whole number"),
    ("POST", "/api/predict?target=-1", b"x", RAW, 400, "target must be a whole number"),
    ("GET", "/api/testset?mode=worst", None, {}, 400, "mode must be 'random' or 'mistakes'"),
    ("GET", "/api/testset?count=0", None, {}, 400, "count must be a whole number from 1 to 64"),
    ("GET", "/api/testset?count=65", None, {}, 400, "count must be"),
    ("GET", "/api/testset?count=ten", None, {}, 400, "count must be"),
    ("GET", "/api/testset?seed=-4", None, {}, 400, "seed must be"),
    ("GET", "/api/predict", None, {}, 405, "send the image with POST"),
    ("POST", "/api/model", b"{}", JSON, 405, "is not used here"),
    ("POST", "/", b"{}", JSON, 405, "is not used here"),
    ("POST", "/upload.php", b"{}", JSON, 404, "is not used here"),
    ("PUT", "/api/predict", b"x", RAW, 405, "PUT is not used here"),
    ("DELETE", "/api/model", None, {}, 405, "DELETE is not used here"),
    ("PATCH", "/", b"x", RAW, 405, "PATCH is not used here"),
    ("GET", "/api/nothing", None, {}, 404, "nothing here"),
])
def test_a_bad_request_gets_a_4xx_answer_and_the_server_goes_on(server, method, path, body, headers, status, words):
    got, answer, _ = request(server, method, path, body, headers)
    assert got == status, answer
    assert words in answer["error"], answer["error"]
    still_serving(server)


def test_a_blank_drawing_is_refused(server):
    blank = data_url(png_bytes(np.zeros((280, 280), dtype=np.uint8)))
    status, answer, _ = request(server, "POST", "/api/predict", json.dumps({"image": blank, "source": "drawing"}), JSON)
    assert status == 422 and "draw something first" in answer["error"]
    huge = data_url(png_bytes(np.zeros((10, 3000), dtype=np.uint8)))
    status, answer, _ = request(server, "POST", "/api/predict", json.dumps({"image": huge, "source": "drawing"}), JSON)
    assert status == 400 and "too large" in answer["error"]
    still_serving(server)


def raw_exchange(server, data: bytes) -> bytes:
    """Send bytes as they are on a socket; what comes back until the server closes (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_uploads_above_10_mb_get_413(server):
    assert MAX_UPLOAD_BYTES == 10 * 1024 * 1024
    too_big = b"\0" * (MAX_UPLOAD_BYTES + 1)
    status, answer, _ = request(server, "POST", "/api/predict", too_big, RAW)
    assert status == 413 and "at most 10 MB" in answer["error"]
    # a body announced far above the limit is not waited for
    reply = raw_exchange(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n\r\nabc")
    assert reply.startswith(b"HTTP/1.0 413") or reply.startswith(b"HTTP/1.1 413")
    still_serving(server)


@pytest.mark.parametrize("data, status", [
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\r\n", b"411"),  # no Content-Length
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\n", b"400"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly this", b"400"),  # cut short
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1 and more\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"431"),
])
def test_malformed_http_gets_a_4xx_answer(server, data, status):
    reply = raw_exchange(server, data)
    first_line = reply.split(b"\r\n", 1)[0]
    # (a one-word request line is taken for HTTP/0.9, whose answers have no status line: the code is in the page)
    assert first_line.split(b" ")[1:2] == [status] or b"Error code: " + status in reply, reply[:200]
    still_serving(server)


def test_decompression_bombs_are_refused(server, monkeypatch):
    """Pillow's limit (about 89 million pixels) applies; lowered here so a small image stands in for a bomb."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)
    for pixels in (png_bytes(np.zeros((20, 20), dtype=np.uint8)),      # above the limit: Pillow warns
                   png_bytes(np.zeros((28, 28), dtype=np.uint8))):     # above twice the limit: Pillow raises
        status, answer, _ = request(server, "POST", "/api/predict", pixels, RAW)
        assert status == 400 and "decompression-bomb limit" in answer["error"]
        status, answer, _ = request(server, "POST", "/api/predict", json.dumps(
            {"image": data_url(pixels), "source": "drawing"}), JSON)
        assert status == 400 and "too large to decode safely" in answer["error"]
    monkeypatch.undo()
    still_serving(server)


# --------------------------------------------------------------------------- the command
def test_explore_refuses_what_is_not_a_tinycnn_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint")
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    tinycnn.save({"model": {"w": np.zeros(2)}}, tmp_path / "weights_only.npz")
    for path, words in ((text, "is not a tinycnn checkpoint"), (plain, "not a tinycnn checkpoint (no __tinycnn__"),
                        (tmp_path / "weights_only.npz", "not a model checkpoint"),
                        (tmp_path, "holds no checkpoint.npz"), (tmp_path / "missing.npz", "does not exist")):
        capsys.readouterr()
        assert main(["explore", str(path), "--port", "0"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("tinycnn explore: error:") and words in err, err


def test_is_loopback():
    assert all(map(is_loopback, ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost")))
    assert not any(map(is_loopback, ("0.0.0.0", "192.168.1.5", "::", "example.org")))


def test_the_command_serves_and_warns_when_not_on_loopback(run_dir):
    """`tinycnn explore RUN --host 0.0.0.0 --port 0`: the warning, the URL, a working page; Ctrl+C ends it."""
    process = subprocess.Popen([sys.executable, "-m", "tinycnn.cli", "explore", str(run_dir), "--host", "0.0.0.0",
                                "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a job started in the background (nohup, `&` in a script) inherits SIGINT ignored,
                               # and Python then never turns Ctrl+C into KeyboardInterrupt: give the child the default
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        url = None
        for _ in range(5):
            line = process.stdout.readline()
            if line.startswith("open http://"):
                url = line.split()[1]
                break
        assert url is not None and url.startswith("http://0.0.0.0:"), line
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/model")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopped" in out
        assert "warning: --host 0.0.0.0 makes this page reachable from other machines" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_the_view_on_a_gpu_gives_the_cpu_answers(run_dir, cuda_device):
    on_gpu = Explorer(run_dir, device=cuda_device)
    on_cpu = Explorer(run_dir)
    try:
        image = np.asarray(Image.open(stroke_png(run_dir, "bar", 1)))[None]
        gpu, cpu = on_gpu.view.look(image), on_cpu.view.look(image)
        np.testing.assert_allclose(gpu.probabilities, cpu.probabilities, atol=1e-5)
        np.testing.assert_allclose(gpu.cam, cpu.cam, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(gpu.saliency, cpu.saliency, rtol=1e-3, atol=1e-6)
        assert on_gpu.predict(image)["top"][0]["class"] == on_cpu.predict(image)["top"][0]["class"]
    finally:
        on_gpu.close()
        on_cpu.close()
