"""tinycnn.save / tinycnn.load: round trips, atomic writes, damaged files."""

from collections import OrderedDict

import numpy as np
import pytest

import tinycnn
from tinycnn.serialization import CheckpointError, load, save


def test_round_trip_of_a_nested_checkpoint(tmp_path):
    state = OrderedDict([("conv.weight", np.arange(6, dtype=np.float32).reshape(2, 3)), ("bn.num_batches_tracked", np.array(3))])
    checkpoint = {
        "model": state,
        "optimizer": {"state": {0: {"momentum_buffer": np.ones(3)}}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 4,
        "history": [{"loss": 0.5, "val": None}],
        "shape": (1, 28, 28),
        "name": "lenet5",
        "flag": True,
        "tensor": tinycnn.tensor([1.0, 2.0]),
        "scalar": np.float32(2.5),
    }
    path = save(checkpoint, tmp_path / "run" / "ckpt.npz")
    back = load(path)
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == list(state)
    np.testing.assert_array_equal(back["model"]["conv.weight"], state["conv.weight"])
    assert back["model"]["conv.weight"].dtype == np.float32
    assert back["optimizer"]["state"][0]["momentum_buffer"].tolist() == [1, 1, 1]
    assert back["optimizer"]["param_groups"][0]["params"] == [0, 1]
    assert back["epoch"] == 4 and back["history"] == [{"loss": 0.5, "val": None}]
    assert back["shape"] == (1, 28, 28) and back["name"] == "lenet5" and back["flag"] is True
    np.testing.assert_array_equal(back["tensor"], [1.0, 2.0])
    assert back["scalar"] == 2.5


def test_suffix_added_and_readable_by_numpy(tmp_path):
    path = save({"w": np.ones(2)}, tmp_path / "model")
    assert path.name == "model.npz"
    assert len(np.load(path).files) == 2  # the array and the JSON index


def test_failed_save_keeps_the_old_file(tmp_path):
    path = save({"w": np.ones(2)}, tmp_path / "ckpt.npz")
    with pytest.raises(TypeError, match="cannot store a object"):
        save({"w": np.zeros(2), "bad": object()}, path)
    np.testing.assert_array_equal(load(path)["w"], [1, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left behind


def test_damaged_and_foreign_files_are_rejected(tmp_path):
    path = save({"w": np.ones(1000)}, tmp_path / "ckpt.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a tinycnn checkpoint: a checkpoint is an .npz .zip. archive"):
        load(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, w=np.ones(2))
    with pytest.raises(CheckpointError, match="not a tinycnn checkpoint"):
        load(foreign)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "missing.npz")


def test_saved_file_has_ordinary_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = save({"w": np.ones(1)}, tmp_path / "ckpt.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by others, like open(path, "w")
