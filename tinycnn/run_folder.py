"""A run folder: where one training run keeps its checkpoint, history, metrics and plots.

Three rules keep a run from being lost or clobbered:

* **One run per folder.** A folder that holds a checkpoint is a run; a new run
  may replace it only when asked to (``--overwrite``), and a resumed run writes
  only into the folder the user named.
* **One process per folder.** While a run trains, the folder holds a lock file
  naming its process; a second ``tinycnn train`` into it is refused. A lock
  left by a process that no longer exists (``kill -9``) is taken over.
* **No debris.** A killed save can leave a hidden temporary file
  (``.checkpoint.npz.*.tmp``, see :mod:`tinycnn.atomic`); holding the lock, the
  run removes such files when it starts and before each save.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .atomic import remove_stale_temporaries

__all__ = ["RunFolder", "RunFolderError", "OUTPUTS", "holds_run", "next_free"]

CHECKPOINT = "checkpoint.npz"
# Everything a run writes (nothing else in the folder is ever touched).
OUTPUTS = (CHECKPOINT, "history.json", "metrics.json", "curves.png", "confusion_matrix.png", "predictions.png")
LOCK = ".tinycnn-run.lock"


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (it holds another run, or a run is training in it)."""


def holds_run(folder) -> bool:
    return (Path(folder) / CHECKPOINT).is_file()


def next_free(folder) -> Path:
    """``folder`` if it holds no run, else the first of ``folder-2``, ``folder-3``, ... that holds none."""
    folder = Path(folder)
    candidate, number = folder, 1
    while holds_run(candidate):
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")
    return candidate


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunFolder:
    """The folder of one run, locked for as long as the ``with`` block lasts.

    Usage::

        with RunFolder("runs/mnist-lenet5") as folder:
            save(checkpoint, folder.checkpoint)
    """

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / CHECKPOINT
        self._lock = self.path / LOCK
        self._locked = False

    def __enter__(self) -> "RunFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire()
        self.remove_debris()
        return self

    def __exit__(self, *exc) -> None:
        if self._locked:
            self._lock.unlink(missing_ok=True)
            self._locked = False

    def _acquire(self) -> None:
        here = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                handle = os.open(self._lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._lock.read_text(errors="replace").split() + ["?", "?"]
                host, pid = holder[0], holder[1]
                alive = host != socket.gethostname() or not pid.isdigit() or _process_exists(int(pid))
                if alive:
                    raise RunFolderError(
                        f"{self.path} is in use by another tinycnn run (process {pid} on {host}); wait for it to "
                        f"end, or delete {self._lock} if no run is training there") from None
                self._lock.unlink(missing_ok=True)  # its process is gone (killed): take over
                continue
            with os.fdopen(handle, "w") as file:
                file.write(here + "\n")
            self._locked = True
            return
        raise RunFolderError(f"cannot lock {self.path}: {self._lock} keeps coming back")

    def remove_debris(self) -> None:
        """Delete temporary files left by saves that were killed (only ours: we hold the lock)."""
        for name in OUTPUTS:
            remove_stale_temporaries(self.path / name)

    def clear(self) -> None:
        """Delete the outputs of the run this folder held (``--overwrite``); other files stay."""
        for name in OUTPUTS:
            (self.path / name).unlink(missing_ok=True)
