"""A run is never lost, clobbered or silently wasted.

Each test is one way a user lost work before: resuming a copied run, resuming from
another folder or after moving the data, ``--out`` onto an existing run, extending a
finished run, a learning rate of nan, a loss that diverges mid-run, ``kill -9`` during
a save, a full disk, and files or settings that are not what they claim.
"""

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _datafiles import make_idx_set
from tinycnn import runner
from tinycnn.cli import main
from tinycnn.config import RunConfig
from tinycnn.data import MNIST
from tinycnn.run_folder import LOCK, RunFolder, RunFolderError
from tinycnn.runner import load_checkpoint
from tinycnn.serialization import load

# A few seconds per run: 600 drawn shapes, 100 of them for validation.
QUICK = ["--train-size", "600", "--val-split", "100", "--batch-size", "50"]


def train(*argv) -> int:
    return main(["train", *QUICK, "--quiet", *map(str, argv)])


def resume(run, *argv) -> int:
    """``tinycnn train --resume RUN``: the run's own settings, plus ``argv``."""
    return main(["train", "--quiet", "--resume", str(run), *map(str, argv)])


def interrupted_run(folder, monkeypatch, epochs=3, after=1, extra=()):
    """A run of ``epochs`` epochs killed right after saving epoch ``after`` (as by Ctrl-C)."""
    real_fit = runner.fit

    def fit_then_stop(*args, on_epoch_end, **kwargs):
        def save_then_stop(state):
            on_epoch_end(state)
            if state.epoch == after:
                raise KeyboardInterrupt

        return real_fit(*args, on_epoch_end=save_then_stop, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(runner, "fit", fit_then_stop)
        assert train("--epochs", epochs, "--out", folder, *extra) == 130
    assert load_checkpoint(folder)["fit_state"]["epoch"] == after
    return Path(folder)


def fingerprint(folder: Path) -> dict:
    """Every file of a folder with its sha256: equal fingerprints, byte-identical folders."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def lrs(folder) -> list:
    return [round(r["lr"], 12) for r in json.loads((Path(folder) / "history.json").read_text())]


# --------------------------------------------------------------------------- 1. resume writes where the user points
def test_resuming_a_copy_leaves_the_original_untouched(tmp_path, monkeypatch):
    original = interrupted_run(tmp_path / "original", monkeypatch)
    before = fingerprint(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    assert resume(copy) == 0
    assert fingerprint(original) == before
    finished = load_checkpoint(copy)
    assert finished["fit_state"]["epoch"] == 3
    assert finished["config"]["out"] == str(copy)  # the record follows the run; it is not a destination
    assert (copy / "metrics.json").exists() and not (original / "metrics.json").exists()


def test_resuming_from_another_working_directory_writes_into_the_run(tmp_path, monkeypatch):
    run = interrupted_run(tmp_path / "run", monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resume(run) == 0
    assert list(elsewhere.iterdir()) == []  # no ./runs/... appeared here
    assert load_checkpoint(run)["fit_state"]["epoch"] == 3


def test_resume_into_out_continues_a_copy_there(tmp_path, monkeypatch):
    run = interrupted_run(tmp_path / "run", monkeypatch)
    before = fingerprint(run)
    assert resume(run / "checkpoint.npz", "--out", tmp_path / "branch") == 0
    assert fingerprint(run) == before
    assert load_checkpoint(tmp_path / "branch")["fit_state"]["epoch"] == 3


def test_resume_after_moving_the_data(tmp_path, monkeypatch, capsys):
    checksums, _ = make_idx_set(tmp_path / "data" / "mnist", n_train=300, n_test=60)
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    run = tmp_path / "run"
    interrupted_run(run, monkeypatch, epochs=2, extra=["--dataset", "mnist", "--data-dir", tmp_path / "data",
                                                       "--val-split", "50", "--train-size", "300"])
    (tmp_path / "data").rename(tmp_path / "moved")
    capsys.readouterr()
    assert resume(run) == 1
    assert "--data-dir" in error_line(capsys)  # says how to point at the data now
    assert resume(run, "--data-dir", tmp_path / "moved") == 0
    finished = load_checkpoint(run)
    assert finished["fit_state"]["epoch"] == 2 and finished["config"]["data_dir"] == str(tmp_path / "moved")


def test_resume_refuses_other_data_in_the_data_folder(tmp_path, monkeypatch, capsys):
    checksums, _ = make_idx_set(tmp_path / "data" / "mnist", n_train=300, n_test=60)
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    run = interrupted_run(tmp_path / "run", monkeypatch, epochs=2,
                          extra=["--dataset", "mnist", "--data-dir", tmp_path / "data", "--val-split", "50",
                                 "--train-size", "300"])
    checksums, _ = make_idx_set(tmp_path / "other" / "mnist", n_train=200, n_test=60)
    monkeypatch.setattr(MNIST, "content_sha256", checksums)
    capsys.readouterr()
    assert resume(run, "--data-dir", tmp_path / "other") == 1
    assert "training images 150, the run trained with 250" in error_line(capsys)


@pytest.mark.parametrize("option, value, setting", [
    ("--dataset", "mnist", "dataset 'shapes'"),      # used to resume the shapes run silently
    ("--lr", "0.5", "lr 0.01"),
    ("--batch-size", "20", "batch_size 50"),
    ("--optimizer", "sgd", "optimizer 'adam'"),
    ("--model", "lenet5", "model 'small_cnn'"),
])
def test_resume_refuses_a_changed_recipe(tmp_path, monkeypatch, capsys, option, value, setting):
    run = interrupted_run(tmp_path / "run", monkeypatch)
    before = fingerprint(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), option, value]) == 1
    message = error_line(capsys)
    assert f"cannot resume with {option} {value}" in message and setting in message, message
    assert fingerprint(run) == before


def test_resume_honours_what_may_change(tmp_path, monkeypatch, capsys):
    """--device, --quiet and the same recipe values again are accepted (no silent drop)."""
    run = interrupted_run(tmp_path / "run", monkeypatch)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--device", "cpu", "--lr", "0.01", "--dataset", "shapes",
                 "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("test accuracy")  # --quiet honoured: only the result


# --------------------------------------------------------------------------- 2. --out onto a run
def test_out_onto_an_existing_run_is_refused_then_overwritten_on_request(tmp_path, capsys):
    run = tmp_path / "run"
    assert train("--epochs", 1, "--out", run) == 0
    (run / "notes.txt").write_text("mine")
    before = fingerprint(run)
    capsys.readouterr()
    assert train("--epochs", 2, "--out", run) == 1
    message = error_line(capsys)
    assert "already holds a run (small_cnn on shapes, epoch 1 of 1)" in message
    assert f"--resume {run}" in message and "--overwrite" in message
    assert fingerprint(run) == before
    assert train("--epochs", 2, "--out", run, "--overwrite") == 0
    assert load_checkpoint(run)["fit_state"]["epoch"] == 2
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


def test_the_default_folder_is_numbered_instead_of_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train("--epochs", 1) == 0
    first = fingerprint(tmp_path / "runs" / "shapes-small_cnn")
    assert train("--epochs", 1) == 0
    assert fingerprint(tmp_path / "runs" / "shapes-small_cnn") == first
    assert (tmp_path / "runs" / "shapes-small_cnn-2" / "checkpoint.npz").exists()


def test_a_folder_in_use_by_a_live_run_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK).write_text(f"{os.uname().nodename} {sleeper.pid}\n")
        assert train("--epochs", 1, "--out", run) == 1
        assert f"in use by another tinycnn run (process {sleeper.pid}" in error_line(capsys)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert train("--epochs", 1, "--out", run) == 0  # that process is gone now
    assert not (run / LOCK).exists()


# --------------------------------------------------------------------------- 3. extending a run
def planned_lrs(tmp_path, epochs, schedule) -> list:
    """The learning rates of an uninterrupted run planned for ``epochs`` epochs."""
    folder = tmp_path / f"straight-{schedule}-{epochs}"
    assert train("--epochs", epochs, "--schedule", schedule, "--optimizer", "sgd", "--lr", "0.05",
                 "--out", folder) == 0
    return lrs(folder)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_extending_a_finished_run_replans_the_schedule(tmp_path, schedule, capsys):
    run = tmp_path / "run"
    assert train("--epochs", 2, "--schedule", schedule, "--optimizer", "sgd", "--lr", "0.05", "--out", run) == 0
    first = lrs(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 0
    out = capsys.readouterr().out
    assert "extending the run from 2 to 5 epochs" in out
    extended = lrs(run)
    print(schedule, "learning rates, 2 epochs then extended to 5:", extended)
    assert extended[:2] == first  # the epochs trained are history
    assert all(lr > 0 for lr in extended)  # no wasted epoch at lr 0 (the cosine run ended at 0)
    assert extended[2:] == planned_lrs(tmp_path, 5, schedule)[2:]  # as if planned for 5 from the start
    assert load_checkpoint(run)["config"]["epochs"] == 5


def test_extending_a_one_cycle_run_and_an_interrupted_one(tmp_path, monkeypatch):
    run = interrupted_run(tmp_path / "run", monkeypatch, epochs=3, after=1)  # onecycle: the shapes default
    assert resume(run, "--epochs", 4) == 0
    assert load_checkpoint(run)["fit_state"]["epoch"] == 4
    history = json.loads((run / "history.json").read_text())
    assert all(r["lr"] > 0 for r in history)


def test_a_finished_run_says_how_to_extend_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert train("--epochs", 1, "--out", run) == 0
    before = fingerprint(run)
    capsys.readouterr()
    assert resume(run) == 1
    assert "has already trained all its 1 epochs" in error_line(capsys)
    assert resume(run, "--epochs", 1) == 1
    assert "give a total above 1" in error_line(capsys)
    assert fingerprint(run) == before


# --------------------------------------------------------------------------- 4. divergence
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_numbers_are_refused_up_front(tmp_path, capsys, value):
    for option in ("--lr", "--momentum", "--weight-decay", "--label-smoothing"):
        with pytest.raises(SystemExit):
            main(["train", f"{option}={value}", "--out", str(tmp_path / "x")])
        assert "expected a finite number" in error_line(capsys)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="lr: expected a finite number above 0, got nan"):
        RunConfig(lr=math.nan).resolved()


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    real_loss = runner.loss_function
    calls = {"n": 0}

    def poisoned(config):
        loss = real_loss(config)

        def loss_fn(logits, target):
            value = loss(logits, target)
            if logits.requires_grad:  # a training step, not validation
                calls["n"] += 1
                if calls["n"] == 10 + 4:  # epoch 2 (10 steps each), step 4
                    return value * float("nan")
            return value

        return loss_fn

    monkeypatch.setattr(runner, "loss_function", poisoned)
    run = tmp_path / "run"
    assert train("--epochs", 3, "--out", run) == 1
    message = error_line(capsys)
    assert "the loss became nan at epoch 2, step 4 of 10" in message
    assert "the checkpoint of epoch 1" in message and "smaller --lr" in message
    assert load_checkpoint(run)["fit_state"]["epoch"] == 1
    assert not (run / "metrics.json").exists()  # no accuracy is reported for a diverged run


def test_json_files_stay_strict(tmp_path):
    runner.write_json(tmp_path / "h.json", [{"val_loss": float("nan"), "train_loss": float("inf"), "lr": 0.1}])

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    assert json.loads((tmp_path / "h.json").read_text(), parse_constant=refuse) == \
        [{"val_loss": None, "train_loss": None, "lr": 0.1}]


def test_checkpoint_json_is_strict_and_round_trips_non_finite_floats(tmp_path):
    from tinycnn.serialization import save
    path = save({"best": float("-inf"), "loss": float("nan"), "w": np.ones(2)}, tmp_path / "c.npz")
    with np.load(path) as archive:
        text = archive["__tinycnn__"].tobytes().decode("utf-8")
    json.loads(text, parse_constant=lambda constant: pytest.fail(f"non-standard JSON constant {constant}"))
    back = load(path)
    assert back["best"] == float("-inf") and math.isnan(back["loss"])


# --------------------------------------------------------------------------- 5. killed saves, full disks
KILL_DURING_SECOND_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import tinycnn.serialization as serialization
    from tinycnn.cli import main

    real_savez, saves = np.savez, []

    def savez_then_die(file, **arrays):
        saves.append(1)
        if len(saves) == 2:  # epoch 2's checkpoint: half written, then kill -9
            file.write(b"PK\\x03\\x04 half a checkpoint")
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_savez(file, **arrays)

    serialization.np.savez = savez_then_die
    sys.exit(main(sys.argv[1:]))
""")


def test_a_save_killed_midway_leaves_the_last_checkpoint_and_no_debris(tmp_path):
    run = tmp_path / "run"
    argv = ["train", *QUICK, "--quiet", "--epochs", "3", "--out", str(run)]
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_SECOND_SAVE, *argv], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stale = list(run.glob(".checkpoint.npz.*.tmp"))
    assert len(stale) == 1  # what kill -9 leaves behind
    assert load_checkpoint(run)["fit_state"]["epoch"] == 1  # the good one is intact
    assert (run / LOCK).exists()  # the dead process's lock, taken over below
    assert resume(run) == 0
    assert list(run.glob(".*.tmp")) == [] and not (run / LOCK).exists()
    assert load_checkpoint(run)["fit_state"]["epoch"] == 3


@pytest.fixture
def tiny_disk(tmp_path):
    """A mount point for a tmpfs of a chosen size; skips where mounting is not allowed."""
    mounts = []

    def mount(size_bytes: int) -> Path:
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        pages = -(-size_bytes // 4096) * 4096
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages}", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_a_full_disk_names_the_file_and_what_survived(tmp_path, tiny_disk, capsys):
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    probe = tmp_path / "probe"
    assert train("--epochs", 1, "--out", probe) == 0
    size = (probe / "checkpoint.npz").stat().st_size
    disk = tiny_disk(int(size * 1.6))  # room for one checkpoint, not for the next beside it
    run = disk / "run"
    capsys.readouterr()
    assert train("--epochs", 3, "--out", run) == 1
    message = error_line(capsys)
    assert f"cannot write {run / 'checkpoint.npz'}" in message and "No space left on device" in message
    assert "the checkpoint of epoch 1" in message and "is intact" in message
    assert load_checkpoint(run)["fit_state"]["epoch"] == 1
    assert list(run.glob(".*.tmp")) == []


# --------------------------------------------------------------------------- 6. files and settings that are not what they claim
def test_a_text_file_is_not_a_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.npz"
    text.write_text("hello, I am not a checkpoint")
    capsys.readouterr()
    for argv in (["eval", "--checkpoint", str(text)], ["train", "--resume", str(text)]):
        assert main(argv) == 1
        message = error_line(capsys)
        assert "is not a tinycnn checkpoint" in message and "pickle" not in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--checkpoint", str(empty)]) == 1
    assert "holds no checkpoint.npz" in error_line(capsys)


def test_run_folder_removes_only_temporaries_of_its_own_files(tmp_path):
    (tmp_path / ".checkpoint.npz.abc123.tmp").write_bytes(b"x")
    (tmp_path / ".history.json.k2.tmp").write_bytes(b"x")
    (tmp_path / ".other.tmp").write_bytes(b"x")
    with RunFolder(tmp_path):
        assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == [".other.tmp"]
    with RunFolder(tmp_path):
        with pytest.raises(RunFolderError, match="in use by another tinycnn run"):
            RunFolder(tmp_path).__enter__()


@pytest.mark.parametrize("variable, command", [
    ("TINYCNN_NUM_THREADS", ["info"]),
    ("TINYCNN_NUM_THREADS", ["train", "--epochs", "1", "--train-size", "200", "--val-split", "0"]),
    ("TINYCNN_FAST", ["info"]),
    ("TINYCNN_FAST", ["train", "--epochs", "1", "--train-size", "200", "--val-split", "0"]),
    ("TINYCNN_NO_MALLOC_TUNING", ["info"]),
    ("TINYCNN_DEBUG", ["info"]),
])
def test_every_environment_variable_is_checked_with_a_one_line_error(tmp_path, variable, command):
    env = {**os.environ, variable: "abc"}
    result = subprocess.run([sys.executable, "-m", "tinycnn.cli", *command, *(["--out", str(tmp_path / "r")]
                             if command[0] == "train" else [])], capture_output=True, text=True, env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"environment variable {variable} must be" in lines[0] and "got 'abc'" in lines[0]


def test_fused_kernel_switch_is_checked_too(monkeypatch):
    from tinycnn.env import SettingError
    from tinycnn.fast.kernels.elementwise import fused_kernels_enabled

    monkeypatch.setenv("TINYCNN_FUSED_KERNELS", "yes please")
    with pytest.raises(SettingError, match="TINYCNN_FUSED_KERNELS must be 1 or 0"):
        fused_kernels_enabled()
    monkeypatch.setenv("TINYCNN_FUSED_KERNELS", "0")
    assert fused_kernels_enabled() is False
