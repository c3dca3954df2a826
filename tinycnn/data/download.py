"""Fetch a file from a list of mirrors, verified, without ever leaving half a file behind.

    download_file(["https://a.example/f.gz", "https://b.example/f.gz"], "data/mnist/f.gz",
                  content_sha256="ba89...")

The bytes go to a hidden temporary file *in the destination's directory*
(``.f.gz.XXXX.part``); only once the transfer is complete and every checksum
matches is it renamed onto ``dest`` (``os.replace`` is atomic on one file system).
So an interrupted or corrupt transfer never replaces a good file, and nothing is
left behind when a mirror fails: the next mirror is tried instead.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_write
from .checksum import verify_file
from .errors import CorruptFileError, DownloadError

__all__ = ["download_file"]

_CHUNK = 1 << 16
USER_AGENT = "tinycnn (https://pypi.org/project/tinycnn)"


def download_file(urls, dest, *, sha256=None, md5=None, content_sha256=None,
                  progress: bool = True, timeout: float = 30.0) -> Path:
    """Download ``dest`` from the first of ``urls`` that serves it intact.

    Args:
        urls: one URL or a list of mirrors, tried in order.
        dest: where the file ends up.
        sha256, md5: checksum of the file as downloaded.
        content_sha256: sha256 of the gunzipped file (for ``.gz`` files, whose
            headers may differ between mirrors while their content does not).
        progress: show a tqdm progress bar.
        timeout: seconds to wait for a server before giving up on it.

    Returns ``dest``. If ``dest`` already exists and matches the checksums, nothing
    is fetched. Raises :class:`DownloadError` naming each URL and why it failed.
    """
    urls = [urls] if isinstance(urls, (str, bytes)) else list(urls)
    if not urls:
        raise ValueError(f"download_file: no URL given for {dest}")
    if not (sha256 or md5 or content_sha256):
        raise ValueError("download_file: give at least one of sha256, md5, content_sha256, so the download can be verified")
    dest = Path(dest)
    checksums = dict(sha256=sha256, md5=md5, content_sha256=content_sha256)
    if dest.is_file():
        try:
            verify_file(dest, **checksums)
            return dest
        except CorruptFileError:
            pass  # a bad local copy: fetch a good one, and replace it only once verified
    dest.parent.mkdir(parents=True, exist_ok=True)

    failures = []
    for url in urls:
        try:
            _fetch_verified(url, dest, checksums, progress, timeout)
            return dest
        except urllib.error.HTTPError as error:
            failures.append(f"  {url}: HTTP {error.code} {error.reason}")
        except urllib.error.URLError as error:
            failures.append(f"  {url}: {error.reason}")
        except (OSError, http.client.HTTPException, CorruptFileError) as error:
            failures.append(f"  {url}: {type(error).__name__}: {error}")
    raise DownloadError(
        f"could not download {dest.name} from any mirror:\n" + "\n".join(failures) + "\n"
        f"Check the network connection, or copy the file to {dest} by hand."
    )


def _fetch_verified(url: str, dest: Path, checksums: dict, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into a temporary file beside ``dest``; rename it only once verified."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})

    def fetch(out):
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected_size = response.length  # from Content-Length; None if the server does not say
            received = 0
            with tqdm(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=dest.name, disable=not progress, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected_size is not None and received != expected_size:
            raise DownloadError(f"transfer ended early: got {received} of {expected_size} bytes")

    atomic_write(dest, fetch, check=lambda temp: verify_file(temp, **checksums))
