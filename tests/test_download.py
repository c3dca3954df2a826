"""The verified downloader, against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from _datafiles import make_cifar_batches, make_idx_set, write_cifar_binary_tar
from tinycnn.data import CIFAR10, MNIST, DownloadError, download_file
from tinycnn.data import cifar as cifar_module

PAYLOAD = bytes(range(256)) * 400          # 100 KiB, several read chunks
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (behaviour, body)``; behaviour is ok / truncate / 404."""

    def do_GET(self):
        behaviour, body = self.server.routes.get(self.path, ("404", b""))
        self.server.requests.append(self.path)
        if behaviour == "404":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "truncate":   # promise the whole body, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _refusing_url():
    """A URL on a local port nobody listens on: connection refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/file"


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_download_success(server, tmp_path):
    server.routes["/f.bin"] = ("ok", PAYLOAD)
    dest = download_file(server.url + "/f.bin", tmp_path / "sub" / "f.bin", sha256=PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == []


def test_existing_good_file_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(PAYLOAD)
    download_file(server.url + "/f.bin", dest, sha256=PAYLOAD_SHA256, progress=False)
    assert server.requests == []


def test_checksum_mismatch_leaves_nothing_and_keeps_the_old_file(server, tmp_path):
    server.routes["/f.bin"] = ("ok", PAYLOAD[:-1] + b"X")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"an older copy")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(server.url + "/f.bin", dest, sha256=PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == b"an older copy"
    assert _leftovers(tmp_path) == []


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    server.routes["/f.bin"] = ("truncate", PAYLOAD)
    with pytest.raises(DownloadError) as error:
        download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=PAYLOAD_SHA256, progress=False)
    assert "f.bin" in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("first", ["404", "refused", "truncate"])
def test_falls_back_to_the_next_mirror(server, tmp_path, first):
    server.routes["/good/f.bin"] = ("ok", PAYLOAD)
    if first == "refused":
        first_url = _refusing_url()
    else:
        server.routes["/bad/f.bin"] = (first, PAYLOAD)
        first_url = server.url + "/bad/f.bin"
    dest = download_file([first_url, server.url + "/good/f.bin"], tmp_path / "f.bin",
                         sha256=PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD and _leftovers(tmp_path) == []


def test_all_mirrors_failing_names_each(server, tmp_path):
    with pytest.raises(DownloadError) as error:
        download_file([server.url + "/missing", _refusing_url()], tmp_path / "f.bin",
                      sha256=PAYLOAD_SHA256, progress=False)
    message = str(error.value)
    assert "HTTP 404" in message and "/missing" in message and "copy the file" in message
    assert list(tmp_path.iterdir()) == []


def test_content_checksum_of_gzip(server, tmp_path):
    server.routes["/f.gz"] = ("ok", gzip.compress(PAYLOAD))
    dest = download_file(server.url + "/f.gz", tmp_path / "f.gz", content_sha256=PAYLOAD_SHA256, progress=False)
    assert gzip.decompress(dest.read_bytes()) == PAYLOAD


def test_a_checksum_is_required(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        download_file("http://127.0.0.1:9/f", tmp_path / "f")


def test_mnist_download_true(server, tmp_path, monkeypatch):
    checksums, arrays = make_idx_set(tmp_path / "served", gz=True)
    for path in (tmp_path / "served").iterdir():
        server.routes[f"/mnist/{path.name}"] = ("ok", path.read_bytes())
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    monkeypatch.setattr(MNIST, "mirrors", (server.url + "/gone/", server.url + "/mnist/"))
    root = tmp_path / "data"
    ds = MNIST(root=root, train=False, download=True)
    np.testing.assert_array_equal(ds.labels, arrays["test"][1])
    assert sorted(p.name for p in (root / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_mnist_download_without_network_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", (_refusing_url().removesuffix("file"),))
    with pytest.raises(DownloadError, match="train-images-idx3-ubyte.gz"):
        MNIST(root=tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_cifar_download_true(server, tmp_path, monkeypatch):
    batches = make_cifar_batches()
    tarball = write_cifar_binary_tar(tmp_path / "served" / "cifar-10-binary.tar.gz", batches)
    server.routes["/kriz/cifar-10-binary.tar.gz"] = ("ok", tarball.read_bytes())
    monkeypatch.setattr(cifar_module, "_BINARY_TAR_MD5", hashlib.md5(tarball.read_bytes()).hexdigest())
    monkeypatch.setattr(CIFAR10, "mirrors", (server.url + "/kriz/",))
    ds = CIFAR10(root=tmp_path / "data", train=False, download=True, verify=False)
    np.testing.assert_array_equal(ds.labels, batches["test_batch"][2])
