"""Fixtures shared by several test files."""

import pytest

import tinycnn
from tinycnn.cli import main


@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory):
    """A CI-sized `tinycnn train` run on the shapes set: (run directory, exit code).

    4,000 images, 5 epochs: about ten seconds on two cores, shared by the tests that read
    the run's outputs (metrics, plots, checkpoint, eval, predict).
    """
    out = tmp_path_factory.mktemp("shapes-run")
    code = main(["train", "--train-size", "4000", "--val-split", "200", "--epochs", "5", "--batch-size", "32",
                 "--out", str(out), "--quiet"])
    return out, code


# --------------------------------------------------------------------------- GPU
def cuda_missing_reason() -> str | None:
    """None when CuPy imports and sees a GPU, else what is missing (CuPy, or a GPU)."""
    from tinycnn import backend

    if backend.cuda_is_available():
        return None
    try:
        backend.array_module("cuda")
    except backend.DeviceError as error:
        return str(error)
    return "CuPy sees no CUDA GPU"


@pytest.fixture(scope="session")
def cuda_device():
    """``"cuda:0"``, or skip the test (saying why) where CuPy or a GPU is missing."""
    reason = cuda_missing_reason()
    if reason is not None:
        pytest.skip(f"needs CuPy and a CUDA GPU: {reason}")
    return "cuda:0"


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def other_device(request):
    """The device a parity test compares with the CPU.

    ``"cpu"``: the same code path twice on the CPU, which must agree trivially but
    runs every test's own code on machines without a GPU (CI). ``"cuda"``: the real
    comparison, marked ``gpu`` and skipped cleanly without CuPy or a GPU.
    """
    if request.param == "cuda":
        return request.getfixturevalue("cuda_device")
    return "cpu"


@pytest.fixture
def without_onnx(monkeypatch):
    """Make ``import onnx`` fail, as where the optional package is not installed."""
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def worker_count(request, monkeypatch):
    """One worker and two; element-wise layers split even small batches (PARALLEL_MIN_BYTES 0)."""
    from tinycnn.fast import workers

    before = tinycnn.get_num_threads()
    tinycnn.set_num_threads(request.param)
    monkeypatch.setattr(workers, "PARALLEL_MIN_BYTES", 0)
    yield request.param
    tinycnn.set_num_threads(before)
