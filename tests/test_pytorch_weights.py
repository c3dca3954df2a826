"""tinycnn.load_state_dict_file: PyTorch .pt (zip) and .safetensors weights, read without PyTorch.

The files in tests/fixtures were written once by PyTorch (make_pytorch_fixtures.py);
beside each, PyTorch's own logits or values. torch is never imported here.
"""

import io
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinycnn
from tinycnn.io import WeightsFileError, load_state_dict_file
from tinycnn.models import ResNet, lenet5, small_cnn

FIXTURES = Path(__file__).parent / "fixtures"


def expected(name):
    with np.load(FIXTURES / f"{name}.expected.npz") as archive:
        return {key: archive[key] for key in archive.files}


def logits(model, x):
    with tinycnn.no_grad():
        return model.eval()(tinycnn.tensor(x)).numpy()


# --------------------------------------------------------------------------- models give PyTorch's logits
@pytest.mark.parametrize("file, make_model", [
    ("lenet5.pt", lambda: lenet5()),                                  # float32, the zip format
    ("small_cnn.safetensors", lambda: small_cnn()),                   # batch norm from safetensors
    ("resnet8_b_half.pt", lambda: ResNet(1, num_classes=10, shortcut="B")),  # float16 weights
])
def test_a_model_loaded_from_pytorch_weights_gives_pytorchs_logits(file, make_model):
    model = make_model()
    state = tinycnn.load_state_dict_file(FIXTURES / file)
    result = model.load_state_dict(state)  # strict: every key present, none left over
    assert result.missing_keys == [] and result.unexpected_keys == []
    reference = expected(file.split(".")[0])
    # measured: at most 9e-8 apart (logits of size ~0.1-0.2), so 1e-6 absolute is no loose bound
    np.testing.assert_allclose(logits(model, reference["input"]), reference["logits"], rtol=1e-5, atol=1e-6)


def test_batch_norm_counters_and_running_stats_arrive():
    state = load_state_dict_file(FIXTURES / "small_cnn.safetensors")
    assert state["features.1.num_batches_tracked"].dtype == np.int64
    assert state["features.1.num_batches_tracked"].shape == () and int(state["features.1.num_batches_tracked"]) == 3
    model = small_cnn()
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.features[1].running_var.numpy(), state["features.1.running_var"])
    assert model.features[1].num_batches_tracked.item() == 3


def test_keys_come_in_the_files_order_and_match_tinycnns_names():
    state = load_state_dict_file(FIXTURES / "lenet5.pt")
    assert list(state) == list(lenet5().state_dict())


# --------------------------------------------------------------------------- dtypes and views
@pytest.mark.parametrize("file", ["dtypes.pt", "dtypes.safetensors"])
def test_every_dtype_reads_as_pytorch_wrote_it(file):
    state = load_state_dict_file(FIXTURES / file)
    reference = expected("dtypes")
    for key, array in state.items():
        want = reference[key]
        assert array.dtype == want.dtype and array.shape == want.shape, key
        np.testing.assert_array_equal(array, want, err_msg=key)
    assert state["bf16"].dtype == np.float32  # NumPy has no bfloat16: widened, exactly
    assert state["f16"].dtype == np.float16 and state["bool"].dtype == np.bool_


def test_views_of_a_shared_storage_come_out_as_their_own_arrays():
    state = load_state_dict_file(FIXTURES / "dtypes.pt")
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_array_equal(state["transposed"], base.T)       # strides (1, 6)
    np.testing.assert_array_equal(state["sliced"], base[1:, 2:5])    # storage offset 8
    np.testing.assert_array_equal(state["every_other"], base[:, ::2])
    assert state["scalar"].shape == () and state["scalar"] == 7
    assert state["empty"].shape == (0, 3)
    for key in ("base", "transposed", "sliced"):  # each owns its memory: no aliasing between entries
        assert state[key].flags.owndata and state[key].flags.c_contiguous
    state["base"][0, 0] = 100
    assert state["transposed"][0, 0] == 0


def test_a_training_checkpoint_is_unwrapped_to_its_state_dict():
    state = load_state_dict_file(FIXTURES / "wrapped.pt")  # {"epoch", "state_dict", "optimizer"}
    reference = expected("wrapped")
    assert list(state) == ["0.weight", "0.bias"]
    for key in state:
        np.testing.assert_array_equal(state[key], reference[key])


def test_a_tinycnn_state_dict_round_trips_through_safetensors_bytes(tmp_path):
    # A safetensors file written by hand from a tinycnn model (what the format is, in six lines)
    import json
    import struct

    state = small_cnn().state_dict()
    kinds = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, chunks, offset = {}, [], 0
    for key, array in state.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": kinds[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    back = load_state_dict_file(tmp_path / "m.safetensors")
    assert list(back) == list(state)
    assert all(np.array_equal(back[k], state[k]) and back[k].dtype == state[k].dtype for k in state)


# --------------------------------------------------------------------------- refusing what is not a state_dict
def _zip_pt(path: Path, data_pkl: bytes, storages: dict | None = None) -> Path:
    """A file laid out as torch.save's zip format, with the given data.pkl."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling calls os.system("touch <marker>")
        return os.system, (f"touch {self.marker}",)


class RunsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling calls eval("open(<marker>, 'w')")
        return eval, (f"open({str(self.marker)!r}, 'w')",)


@pytest.mark.parametrize("payload, global_name", [(RunsShell, os.system.__module__ + ".system"),
                                                     (RunsEval, "(__builtin__|builtins).eval")])  # protocol 2 writes __builtin__
def test_a_malicious_pickle_is_refused_without_running_anything(payload, global_name, tmp_path):
    marker = tmp_path / "pwned"
    # the payload hidden among real-looking entries, as an attacker would
    evil = pickle.dumps({"conv.weight": [1.0, 2.0], "conv.bias": payload(marker)}, protocol=2)
    path = _zip_pt(tmp_path / "model.pt", evil)
    with pytest.raises(WeightsFileError, match=rf"model.pt: refusing to load global '{global_name}' \(a PyTorch "
                                               r"state_dict only needs tensors and OrderedDict\); this file may be malicious"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_a_malicious_legacy_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps(RunsShell(marker), protocol=2))
    with pytest.raises(WeightsFileError, match="not a PyTorch zip file"):
        load_state_dict_file(path)
    assert not marker.exists()


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-ins for the two torch names a tensor pickle uses, so this test can write one without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name goes into the pickle
        raise AssertionError

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _tensor_pickle(torch, key, numel, offset, size, stride, wrap=lambda tensor: {"w": tensor}) -> bytes:
    """data.pkl for {"w": tensor} (or ``wrap(tensor)``) as torch.save writes it: the storage is a persistent id."""

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (StorageRef(), offset, size, stride, False, {})

    class StorageRef:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, key, "cpu", numel) if isinstance(obj, StorageRef) else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(wrap(Tensor()))
    return buffer.getvalue()


def test_a_tensor_reaching_outside_its_storage_is_refused(fake_torch, tmp_path):
    # 4 floats in the storage, but the tensor claims 1,000 elements: a view past the end
    data = _tensor_pickle(fake_torch, "0", 4, 0, (1000,), (1,))
    path = _zip_pt(tmp_path / "big.pt", data, {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(WeightsFileError, match=r"reaches element 999 of storage '0', which has only 4 elements"):
        load_state_dict_file(path)
    # the same tensor, honest this time, loads (checks the hand-made pickle itself)
    good = _zip_pt(tmp_path / "good.pt", _tensor_pickle(fake_torch, "0", 4, 1, (3,), (1,)),
                   {"0": np.arange(4, dtype=np.float32).tobytes()})
    np.testing.assert_array_equal(load_state_dict_file(good)["w"], [1, 2, 3])


def test_a_storage_shorter_than_declared_is_refused(fake_torch, tmp_path):
    data = _tensor_pickle(fake_torch, "0", 8, 0, (8,), (1,))
    path = _zip_pt(tmp_path / "short.pt", data, {"0": np.zeros(3, np.float32).tobytes()})
    with pytest.raises(WeightsFileError, match=r"storage '0' should hold 8 .* its member has 12 bytes \(truncated\?\)"):
        load_state_dict_file(path)


def test_a_legacy_file_is_refused_clearly():
    with pytest.raises(WeightsFileError, match=r"legacy.pt is not a PyTorch zip file \(legacy pre-1.6 format\?\).*torch.save"):
        load_state_dict_file(FIXTURES / "legacy.pt")


@pytest.mark.parametrize("file, message", [
    ("lenet5.pt", r"lenet5.pt is damaged or truncated \(not a complete zip archive"),
    ("small_cnn.safetensors", r"small_cnn.safetensors is truncated: tensor '.*' ends at byte"),
])
def test_a_truncated_file_is_refused_clearly(file, message, tmp_path):
    data = (FIXTURES / file).read_bytes()
    path = tmp_path / file
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(WeightsFileError, match=message):
        load_state_dict_file(path)


def test_other_files_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_state_dict_file(tmp_path / "missing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsFileError, match="is empty"):
        load_state_dict_file(tmp_path / "empty.pt")
    (tmp_path / "notes.pt").write_text("hello, weights")
    with pytest.raises(WeightsFileError, match="neither a PyTorch zip file nor a safetensors file"):
        load_state_dict_file(tmp_path / "notes.pt")
    checkpoint = tinycnn.save({"model": lenet5().state_dict()}, tmp_path / "run.npz")
    with pytest.raises(WeightsFileError, match=r"NumPy .npz archive.*tinycnn.load"):
        load_state_dict_file(checkpoint)
    with zipfile.ZipFile(tmp_path / "script.pt", "w") as archive:  # what torch.jit.save writes
        archive.writestr("script/data.pkl", b"")
        archive.writestr("script/constants.pkl", b"")
        archive.writestr("script/code/__torch__.py", "")
    with pytest.raises(WeightsFileError, match=r"TorchScript model.*state_dict"):
        load_state_dict_file(tmp_path / "script.pt")


def test_a_dict_without_a_clear_state_dict_is_refused(tmp_path):
    def pt(obj, name):
        return _zip_pt(tmp_path / name, pickle.dumps(obj, protocol=2))

    with pytest.raises(WeightsFileError, match=r"keys 'epoch', 'notes'.*not a state_dict.*'state_dict'"):
        load_state_dict_file(pt({"epoch": 3, "notes": "x"}, "a.pt"))
    with pytest.raises(WeightsFileError, match=r"holds a list; expected a state_dict"):
        load_state_dict_file(pt([1, 2], "b.pt"))


def test_a_checkpoint_holding_two_state_dicts_is_ambiguous(fake_torch, tmp_path):
    data = _tensor_pickle(fake_torch, "0", 1, 0, (1,), (1,), wrap=lambda t: {"model": {"w": t}, "state_dict": {"w": t}})
    path = _zip_pt(tmp_path / "two.pt", data, {"0": np.zeros(1, np.float32).tobytes()})
    with pytest.raises(WeightsFileError, match=r"several dicts of tensors \('state_dict', 'model'\)"):
        load_state_dict_file(path)
