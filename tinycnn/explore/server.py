"""The web server behind ``tinycnn explore``: one page and a few JSON endpoints.

It is the standard library's :class:`http.server.ThreadingHTTPServer`; the page is three
plain files in ``static/`` (no build step, nothing from the internet). The endpoints:

    GET  /                       the page (and /static/explore.css, /static/explore.js; nothing else)
    GET  /api/model              the model: layers (name, type, output shape, parameters), the
                                 input it takes (channels, size, normalisation, classes), its
                                 first layer's filters, what the page can offer (drawing, test set)
    POST /api/predict            one image -> top classes, the input as the model sees it, every
                                 layer's output as small pictures, saliency and Grad-CAM. The body:
                                 the image file itself (PNG, JPEG, ...; ``?invert=1`` flips grey
                                 levels), or JSON: {"image": "data:image/png;base64,...",
                                 "source": "drawing" | "upload", "invert": bool, "target": class}
                                 or {"test_index": i, "target": class}
    GET  /api/testset?mode=random|mistakes&count=N
                                 test images with their labels and the model's answers (the most
                                 confident mistakes first, for "mistakes")
    GET  /api/history            the run's learning curves (per epoch), metrics, confusion matrix;
                                 read again at every request, so a run still training shows its
                                 progress

Safety: it listens on 127.0.0.1 unless told otherwise; a request body above
``MAX_UPLOAD_BYTES`` is refused (413) unread; images are decoded by Pillow under its
decompression-bomb limit; only the three files of the page are served, by name, from a fixed
table (a path is never joined to a folder); no pickle (checkpoints are read by
:func:`tinycnn.load`); a bad request gets a 4xx answer with a message, and the server
goes on serving.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import sys
import tempfile
import threading
import traceback
import warnings
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..runner import json_safe
from . import pictures
from .drawing import centre_like_mnist
from .model_view import ModelView, place_on_input

__all__ = ["Explorer", "RequestError", "make_server", "serve", "MAX_UPLOAD_BYTES", "is_loopback"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # the largest request body read
MAX_MAPS_PER_LAYER = 32               # feature maps sent per layer (the rest are counted, not drawn)
MAX_VECTOR = 1024                     # values of a flat layer output drawn
MAX_DRAWING_SIDE = 2048               # a canvas larger than this is not a drawing
MAX_TEST_IMAGES = 64                  # images per /api/testset answer

# The page's files: URL path -> (file in static/, content type). Nothing else is ever read from disk.
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/explore.css": ("explore.css", "text/css; charset=utf-8"),
    "/static/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
}
# The page may use only its own files and the pictures inside the JSON (data: URLs).
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class RequestError(Exception):
    """A request the server cannot answer as asked: an HTTP status and a message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = int(status), message


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.x.x.x, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- what the endpoints compute
class Explorer:
    """One checkpoint opened for exploring: answers the endpoints as dicts (the handler sends them as JSON).

    Args:
        checkpoint_path: a run folder or a checkpoint file (refused here, with the usual
            :class:`~tinycnn.serialization.CheckpointError`, when not a tinycnn checkpoint).
        device: ``"cpu"`` or ``"cuda"``.
        data_dir, images: where the run's data set is now, if it has moved (as ``tinycnn eval``).
        weights: ``"best"`` (on validation, the default) or ``"last"``.
    """

    def __init__(self, checkpoint_path, device: str = "cpu", data_dir=None, images=None, weights: str = "best"):
        from ..runner import load_checkpoint, model_from_checkpoint

        given = Path(checkpoint_path)
        self.checkpoint_file = given / "checkpoint.npz" if given.is_dir() else given
        checkpoint = load_checkpoint(checkpoint_path)
        self.config = dict(checkpoint["config"])
        self.meta = dict(checkpoint["meta"])
        self.fit_state = checkpoint.get("fit_state") or {}
        self.run_folder = self.checkpoint_file.parent
        self.device = device
        self.data_dir, self.images_dir = data_dir, images
        self.weights = weights
        self.view = ModelView(model_from_checkpoint(checkpoint, device, weights=weights), self.meta, device)
        self.channels, self.size = int(self.meta["image_shape"][0]), int(self.meta["image_shape"][1])
        self._temporary = tempfile.TemporaryDirectory(prefix="tinycnn-explore-")
        self._test_lock = threading.Lock()
        self._test = None        # (images, labels, probabilities) once loaded
        self._test_error = None  # why the test set is not available
        self._checkpoint_seen = (self._mtime(self.checkpoint_file), self.fit_state)

    def close(self) -> None:
        self._temporary.cleanup()

    # ------------------------------------------------------------------ GET /api/model
    def model_info(self) -> dict:
        weight = self.view.first_conv_weight()
        filters = None
        if weight is not None:
            filters = {"layer": self.view.first_conv_name(), "shape": list(weight.shape),
                       "pictures": pictures.filter_pictures(weight[:64])}
        return {
            "model": self.config.get("model"),
            "dataset": self.config.get("dataset"),
            "checkpoint": str(self.checkpoint_file),
            "weights": self.weights,
            "device": self.device,
            "parameters": int(sum(layer["parameters"] for layer in self.view.layers)),
            "input": {"channels": self.channels, "size": self.size, "mean": self.meta["mean"], "std": self.meta["std"],
                      "classes": self.meta["classes"], "resize": self.meta.get("resize", "crop"),
                      "background": self.meta.get("background")},
            "layers": self.view.layers,
            "filters": filters,
            "drawing": self.channels == 1,  # a drawn digit makes sense for grey models
            "testset": self.config.get("dataset") not in (None, "custom"),
        }

    # ------------------------------------------------------------------ POST /api/predict
    def predict(self, image: np.ndarray, target=None, warning: str | None = None) -> dict:
        """Everything the page shows for one prepared image (uint8 (C, H, W), the model's size)."""
        look = self.view.look(image, target)
        classes = self.meta["classes"]
        order = np.argsort(-look.probabilities, kind="stable")
        scale = max(1, 224 // self.size)
        shown_input, (low, high) = pictures.normalised_picture(look.normalised)
        answer = {
            "top": [{"index": int(i), "class": classes[i], "probability": float(look.probabilities[i])}
                    for i in order[: min(10, len(classes))]],
            "probabilities": [float(p) for p in look.probabilities],
            "target": look.target,
            "target_class": classes[look.target],
            "input": {"picture": pictures.png_data_url(pictures.input_picture(image)),
                      "normalised": pictures.png_data_url(shown_input), "range": [low, high]},
            "layers": [self._layer_pictures(name, output) for name, output in look.outputs],
            "saliency": pictures.png_data_url(pictures.overlay(image, pictures.enlarge(look.saliency, scale), scale)),
            "gradcam": None,
            "gradcam_layer": look.cam_layer,
            "warning": warning,
        }
        if look.cam is not None:
            heat = place_on_input(look.cam, *look.cam_grid, image.shape[1:], scale=scale)
            answer["gradcam"] = pictures.png_data_url(pictures.overlay(image, heat, scale))
            answer["gradcam_size"] = list(look.cam.shape)
        return answer

    def _layer_pictures(self, name: str, output: np.ndarray) -> dict:
        scale = pictures.scale_layer(output)
        if output.ndim == 3:  # maps (C, H, W): one picture per map, the first MAX_MAPS_PER_LAYER
            shown = output[:MAX_MAPS_PER_LAYER]
            return {"name": name, "kind": "maps", "total": int(output.shape[0]), "shown": int(len(shown)),
                    "scale": scale, "maps": [pictures.png_data_url(pictures.coloured(m, scale)) for m in shown]}
        flat = output.reshape(-1)
        return {"name": name, "kind": "vector", "total": int(flat.size), "shown": int(min(flat.size, MAX_VECTOR)),
                "scale": scale, "vector": pictures.png_data_url(pictures.coloured(flat[None, :MAX_VECTOR], scale))}

    def image_from_upload(self, body: bytes, invert: bool = False) -> tuple:
        """An uploaded file -> (image (C, S, S) uint8, warning or None), read exactly as ``tinycnn predict`` reads it."""
        from ..data.images import ImageReadError, read_image
        from ..predict_files import Item, _background, _border_brightness, polarity_warning

        if not body:
            raise RequestError(HTTPStatus.BAD_REQUEST, "the upload is empty: send an image file")
        with tempfile.NamedTemporaryFile(dir=self._temporary.name, suffix=".upload") as file:
            file.write(body)
            file.flush()
            try:
                image = read_image(file.name, self.size, self.channels, self.meta.get("resize", "crop"),
                                   _background(self.meta), invert)
            except ImageReadError as error:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"cannot read this image: {error.reason}") from None
        warning = polarity_warning([Item(Path("upload"), border=_border_brightness(image))], self.meta, invert)
        if warning:
            warning = warning.replace("add --invert", "tick 'invert'").replace("drop --invert", "untick 'invert'")
        return image, warning

    def image_from_drawing(self, body: bytes) -> np.ndarray:
        """A canvas drawing (PNG bytes, light ink on dark) -> (1, S, S) uint8, centred the MNIST way."""
        from PIL import Image, UnidentifiedImageError

        if self.channels != 1:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"drawing is for grey models; this one takes "
                                                       f"{self.channels}-channel images: upload an image instead")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(body)) as picture:
                    if max(picture.size) > MAX_DRAWING_SIDE:
                        raise RequestError(HTTPStatus.BAD_REQUEST, f"a drawing of {picture.size[0]}x"
                                                                   f"{picture.size[1]} pixels is too large (at most "
                                                                   f"{MAX_DRAWING_SIDE} on a side)")
                    if picture.mode in ("RGBA", "LA", "P"):  # transparent canvas: ink over black
                        picture = picture.convert("RGBA")
                        black = Image.new("RGBA", picture.size, (0, 0, 0, 255))
                        picture = Image.alpha_composite(black, picture)
                    drawing = np.asarray(picture.convert("L"), dtype=np.uint8)
        except RequestError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the drawing is too large to decode safely") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the drawing is not an image Pillow can read") from None
        digit = centre_like_mnist(drawing, self.size)
        if digit is None:
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "the drawing is empty: draw something first")
        return digit[None]

    # ------------------------------------------------------------------ GET /api/testset
    def test_data(self) -> tuple:
        """(images, labels, probabilities) of the run's test set, loaded and classified once.

        Raises :class:`RequestError` 404 saying why when the data set cannot be found.
        """
        with self._test_lock:
            if self._test is None and self._test_error is None:
                try:
                    images, labels = self._load_test_set()
                    self._test = (images, labels, self.view.predict_batch(images))
                except RequestError as error:
                    self._test_error = error.message
                except (FileNotFoundError, OSError, ValueError) as error:
                    self._test_error = (f"the run's test set is not available here ({' '.join(str(error).split())});"
                                        f" start explore with --data-dir DIR (or --images DIR) to use it")
            if self._test is None:
                raise RequestError(HTTPStatus.NOT_FOUND, self._test_error)
            return self._test

    def _load_test_set(self) -> tuple:
        from ..runner import RunConfig, load_dataset, prepare_data

        dataset = self.config.get("dataset")
        if dataset in (None, "custom"):
            raise RequestError(HTTPStatus.NOT_FOUND, "this checkpoint records no data set (a model saved with "
                                                     "save_model), so there is no test set to show")
        names = set(RunConfig.__dataclass_fields__)
        saved = RunConfig(**{k: v for k, v in self.config.items() if k in names})
        if self.data_dir is not None:
            saved.data_dir = self.data_dir
        if self.images_dir is not None:
            saved.images = self.images_dir
        saved.download, saved.progress = False, False
        test_set = prepare_data(saved).test_set if dataset == "images" else load_dataset(saved, train=False)
        images, labels = np.asarray(test_set.images), np.asarray(test_set.labels)
        if tuple(images.shape[1:]) != tuple(self.meta["image_shape"]):
            raise RequestError(HTTPStatus.NOT_FOUND, f"the test images found have shape {images.shape[1:]}, the "
                                                     f"model takes {tuple(self.meta['image_shape'])}")
        return images, labels

    def test_images(self, mode: str, count: int, seed=None) -> dict:
        images, labels, probabilities = self.test_data()
        predicted = probabilities.argmax(axis=1)
        if mode == "random":
            chosen = np.random.default_rng(seed).choice(len(images), size=min(count, len(images)), replace=False)
        else:  # the most confident mistakes: wrong answers, most probable first
            wrong = np.flatnonzero(predicted != labels)
            chosen = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:count]
        classes = self.meta["classes"]
        accuracy = float(np.mean(predicted == labels)) if len(labels) else None
        return {"mode": mode, "size": int(len(images)), "accuracy": accuracy,
                "mistakes": int(np.sum(predicted != labels)),
                "items": [{"index": int(i), "label": classes[labels[i]], "prediction": classes[predicted[i]],
                           "confidence": float(probabilities[i, predicted[i]]),
                           "picture": pictures.png_data_url(pictures.input_picture(images[i]))} for i in chosen]}

    def test_image(self, index) -> np.ndarray:
        images = self.test_data()[0]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"test_index must be a whole number in [0, {len(images)}), "
                                                       f"got {index!r}")
        return images[index]

    # ------------------------------------------------------------------ GET /api/history
    @staticmethod
    def _mtime(path: Path):
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    def history(self) -> dict:
        """The run's curves, metrics and confusion matrix, read again now (a run may be training)."""
        from ..serialization import load

        folder = self.run_folder
        metrics = _read_json(folder / "metrics.json")
        history = _read_json(folder / "history.json")
        if history is None:  # still training (or a bare checkpoint): the history saved with the last epoch
            stamp = self._mtime(self.checkpoint_file)
            if stamp is not None and stamp != self._checkpoint_seen[0]:
                try:
                    self._checkpoint_seen = (stamp, load(self.checkpoint_file).get("fit_state") or {})
                except (OSError, ValueError):
                    pass  # being replaced right now: the last one read will do
            history = self._checkpoint_seen[1].get("history") or []
        answer = {"history": history if isinstance(history, list) else [], "metrics": metrics,
                  "epochs_planned": self.config.get("epochs"), "finished": metrics is not None,
                  "confusion": None, "confusion_picture": None}
        try:
            _, labels, probabilities = self.test_data()
            n = len(self.meta["classes"])
            matrix = np.zeros((n, n), dtype=np.int64)
            np.add.at(matrix, (labels, probabilities.argmax(axis=1)), 1)
            answer["confusion"] = {"classes": self.meta["classes"], "matrix": matrix.tolist(),
                                   "note": "on the test set, with the weights explored here"}
        except RequestError:  # no test set here: the picture the run drew, when there is one
            picture = folder / "confusion_matrix.png"
            if picture.is_file():
                answer["confusion_picture"] = ("data:image/png;base64," +
                                               base64.b64encode(picture.read_bytes()).decode("ascii"))
        return answer


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- HTTP
class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`Explorer` held by the server; every answer is a full response."""

    server_version = "tinycnn-explore"
    timeout = 60  # a client that stops sending mid-request does not hold a thread for ever
    quiet = True

    # ------------------------------------------------------------------ dispatch
    def do_GET(self):
        self._answer(self._get)

    def do_HEAD(self):
        self._answer(self._get, head=True)

    def do_POST(self):
        self._answer(self._post)

    def _refuse_method(self):
        self._answer(lambda url: _raise(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not used here"))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _answer(self, route, head: bool = False):
        try:
            url = urlsplit(self.path)
            status, content_type, body = route(url)
        except RequestError as error:
            status, content_type, body = error.status, "application/json", _json_bytes({"error": error.message})
        except Exception as error:  # a bug: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            status, content_type = HTTPStatus.INTERNAL_SERVER_ERROR, "application/json"
            body = _json_bytes({"error": f"internal error ({type(error).__name__}: {error})"})
        self.send_response(status)
        self.send_header("Content-Type", content_type if "charset" in content_type or not content_type.startswith(
            "application/json") else content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Referrer-Policy", "no-referrer")
        if status >= 400 and self.command == "POST":
            self.close_connection = True  # an unread body must not be taken for the next request
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)

    # ------------------------------------------------------------------ GET
    def _get(self, url):
        explorer: Explorer = self.server.explorer
        if url.path in STATIC:
            name, content_type = STATIC[url.path]
            return HTTPStatus.OK, content_type, (resources.files(__package__) / "static" / name).read_bytes()
        query = _query(url)
        if url.path == "/api/model":
            return _json_ok(explorer.model_info())
        if url.path == "/api/history":
            return _json_ok(explorer.history())
        if url.path == "/api/testset":
            mode = query.get("mode", "random")
            if mode not in ("random", "mistakes"):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"mode must be 'random' or 'mistakes', got {mode!r}")
            count = _whole_number(query.get("count", "12"), "count", 1, MAX_TEST_IMAGES)
            seed = _whole_number(query["seed"], "seed", 0, 2 ** 32 - 1) if "seed" in query else None
            return _json_ok(explorer.test_images(mode, count, seed))
        if url.path == "/api/predict":
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, "send the image with POST /api/predict")
        raise RequestError(HTTPStatus.NOT_FOUND, f"nothing here: {url.path}")

    # ------------------------------------------------------------------ POST
    def _post(self, url):
        explorer: Explorer = self.server.explorer
        if url.path != "/api/predict":
            raise RequestError(HTTPStatus.NOT_FOUND if url.path not in STATIC and not url.path.startswith("/api/")
                               else HTTPStatus.METHOD_NOT_ALLOWED, f"POST {url.path} is not used here")
        body = self._read_body()
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        query = _query(url)
        if content_type == "application/json":
            request = _parse_json(body)
            target = request.get("target")
            if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"target must be a class index, got {target!r}")
            warning = None
            if "test_index" in request:
                image = explorer.test_image(request["test_index"])
            elif "image" in request:
                data = _data_url_bytes(request["image"])
                source = request.get("source", "upload")
                if source == "drawing":
                    image = explorer.image_from_drawing(data)
                elif source == "upload":
                    image, warning = explorer.image_from_upload(data, bool(request.get("invert", False)))
                else:
                    raise RequestError(HTTPStatus.BAD_REQUEST, f"source must be 'drawing' or 'upload', got {source!r}")
            else:
                raise RequestError(HTTPStatus.BAD_REQUEST, "the JSON must hold 'image' (a data: URL) or 'test_index'")
        else:  # the file itself
            invert = query.get("invert", "0") in ("1", "true", "yes")
            target = _whole_number(query["target"], "target", 0, 10 ** 9) if "target" in query else None
            image, warning = explorer.image_from_upload(body, invert)
        try:
            return _json_ok(explorer.predict(image, target, warning))
        except ValueError as error:  # a target outside the classes
            raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        if not length.strip().isdigit():
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length must be a whole number, got {length!r}")
        length = int(length)
        if length > MAX_UPLOAD_BYTES:
            self._discard(length)
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"the upload is {length / 2 ** 20:.1f} MB; at most {MAX_UPLOAD_BYTES // 2 ** 20} MB "
                               f"is accepted (a model's input is a few thousand pixels: shrink the image first)")
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes")
        return body


    def _discard(self, length: int) -> None:
        """Read and drop a body that is too large (up to 4 times the limit), so the client, still sending,
        gets the 413 answer instead of a broken connection; a larger one is cut off (the connection closes)."""
        if length > 4 * MAX_UPLOAD_BYTES:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)


def _raise(status, message):
    raise RequestError(status, message)


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=False, default=_plain).encode("utf-8")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def _json_ok(value):
    return HTTPStatus.OK, "application/json", _json_bytes(json_safe(value))


def _query(url) -> dict:
    try:
        pairs = parse_qs(url.query, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except ValueError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"bad query string: {error}") from None
    return {key: values[-1] for key, values in pairs.items()}


def _whole_number(text: str, name: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _parse_json(body: bytes) -> dict:
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON ({error})") from None
    if not isinstance(request, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the JSON must be an object, got {type(request).__name__}")
    return request


def _data_url_bytes(url) -> bytes:
    """The bytes of a ``data:[type];base64,...`` URL (what a canvas's toDataURL gives)."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url[:100]:
        raise RequestError(HTTPStatus.BAD_REQUEST, "'image' must be a data: URL in base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(HTTPStatus.BAD_REQUEST, "'image' holds invalid base64") from None


# --------------------------------------------------------------------------- the server
def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8000, quiet: bool = True) -> ThreadingHTTPServer:
    """A server for ``explorer`` bound to (host, port); port 0 picks a free one (see ``server.server_port``).

    Start it with ``server.serve_forever()`` (in a thread for tests), end it with ``server.shutdown()``.
    """
    handler = type("Handler", (_Handler,), {"quiet": quiet})
    server_class = ThreadingHTTPServer
    if ":" in host:  # an IPv6 address
        import socket

        server_class = type("ThreadingHTTPServer6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = server_class((host, port), handler)
    server.daemon_threads = True
    server.explorer = explorer
    return server


def url_of(server) -> str:
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(checkpoint, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu", data_dir=None, images=None,
          weights: str = "best", open_browser: bool = False, quiet: bool = True) -> None:
    """What ``tinycnn explore`` does: open the checkpoint, start the server, print its URL, serve until Ctrl+C."""
    explorer = Explorer(checkpoint, device=device, data_dir=data_dir, images=images, weights=weights)
    try:
        server = make_server(explorer, host, port, quiet=quiet)
    except OSError as error:
        explorer.close()
        raise OSError(f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port "
                      f"(--port 0 picks a free one)") from None
    if not is_loopback(host):
        print(f"warning: --host {host} makes this page reachable from other machines on the network, without a "
              f"password: anyone who reaches it can run your model on their images. Use it on a network you trust.",
              file=sys.stderr)
    url = url_of(server)
    info = explorer.model_info()
    print(f"tinycnn explore: {info['model']} on {info['dataset']} ({info['parameters']:,} parameters) from "
          f"{explorer.checkpoint_file}")
    print(f"open {url} in a browser (Ctrl+C stops the server)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("tinycnn explore: stopped")
    finally:
        server.server_close()
        explorer.close()
