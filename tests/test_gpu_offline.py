"""The GPU path, checked on a machine without a GPU (issue 21): what can be proved before a GPU runs it.

1. Every fused kernel compiles as CuPy compiles it: CuPy's own generated source, NVRTC, sm_90,
   float32 and float64, contiguous and strided arrays (needs ``cupy`` and ``nvidia-cuda-nvrtc``).
2. Every kernel's operation, compiled with g++ as plain C++, equals its reference on the CPU
   (needs ``g++``): the arithmetic, which neither compile check sees.
3. Every ``xp.``/``cupy.`` attribute chain in tinycnn/ exists in CuPy (an AST scan; needs ``cupy``).

Each check has a test beside it showing that it fails on a planted bug. Each test skips,
saying what is missing, where a piece is not installed.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import shutil

import numpy as np
import pytest

from tinycnn.fast import kernels
from tinycnn.fast.kernels import FUSIONS
from tinycnn.fast.kernels.elementwise import ElementwiseFusion

FUSION_IDS = [f.name for f in FUSIONS]
DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tinycnn"


def _nvrtc_missing() -> str | None:
    try:
        import cupy  # noqa: F401
        from cupy.cuda import compiler
    except ImportError as error:
        return f"CuPy is not installed ({error}); pip install cupy-cuda13x nvidia-cuda-nvrtc"
    try:
        compiler._get_nvrtc_version()
    except Exception as error:  # the library is missing or does not load
        return f"NVRTC does not load ({type(error).__name__}: {error}); pip install nvidia-cuda-nvrtc"
    return None


needs_nvrtc = pytest.mark.skipif(_nvrtc_missing() is not None, reason=str(_nvrtc_missing()))
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
needs_cupy = pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")


# --------------------------------------------------------------------------- 1. NVRTC, as CuPy compiles
@needs_nvrtc
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fusion", FUSIONS, ids=FUSION_IDS)
def test_kernel_compiles_as_cupy_compiles_it(fusion, dtype, layout):
    from tinycnn.fast.kernels.offline import compile_with_nvrtc, cupy_source

    source = cupy_source(fusion, dtype, layout)
    ndim = 1 if layout == "contiguous" else 4
    assert f"CArray<{'float' if dtype == np.float32 else 'double'}, {ndim}, {int(layout == 'contiguous')}, 1>" in source
    binary = compile_with_nvrtc(fusion, dtype, layout)
    assert binary[:4] == b"\x7fELF", "NVRTC should hand back a cubin (an ELF file) for sm_90"


@needs_nvrtc
def test_nvrtc_check_fails_on_an_assignment_to_an_input():
    """The planted bug from issue 21: nvcc accepts it in the stand-alone source, CuPy's does not."""
    from cupy.cuda.compiler import CompileException

    from tinycnn.fast.kernels.offline import compile_with_nvrtc

    broken = ElementwiseFusion("tinycnn_broken", "T grad, T scale", "T out",
                               "scale = scale * 2; out = grad * scale", reference=lambda grad, scale, result=None: None,
                               scalars=("scale",))
    with pytest.raises(CompileException, match="modifiable lvalue"):
        compile_with_nvrtc(broken, np.float32)


# --------------------------------------------------------------------------- 2. the operation on the CPU
def _sample_arguments(fusion: ElementwiseFusion, rng, dtype):
    from test_kernels import _sample_arguments as sample

    return sample(fusion, rng, dtype)


@pytest.fixture(scope="module", params=DTYPES)
def cpp_kernels(request, tmp_path_factory):
    """(dtype, library): every fusion's operation compiled once per dtype with g++."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    from tinycnn.fast.kernels.offline import cpp_library

    return request.param, cpp_library(FUSIONS, request.param, str(tmp_path_factory.mktemp("cpp")))


def _cpu_mismatch(library, fusion, dtype, nesterov=False, sample_as=None) -> str | None:
    """None when the C++ operation equals the reference on sample arguments (those of ``sample_as``,
    by default of ``fusion`` itself), else what differs."""
    from tinycnn.fast.kernels.offline import run_on_cpu

    args = _sample_arguments(sample_as or fusion, np.random.default_rng(7), dtype)
    if fusion is kernels.SGD_MOMENTUM_STEP:
        args[5] = nesterov
    copy = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = run_on_cpu(library, fusion, args, dtype)
    expected = fusion.reference(*copy)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
        scale = float(np.abs(e).max())
        if g.shape != e.shape or not np.allclose(g, e, rtol=rtol, atol=rtol * scale):
            return f"{fusion.name}: C++ gives {g.ravel()[:4]}..., the reference {e.ravel()[:4]}..."
    return None


CPU_CASES = [pytest.param(f, False, id=f.name) for f in FUSIONS] + [
    pytest.param(kernels.SGD_MOMENTUM_STEP, True, id="tinycnn_sgd_momentum_step-nesterov")]


@pytest.mark.parametrize("fusion, nesterov", CPU_CASES)
def test_kernel_operation_equals_its_reference_on_the_cpu(fusion, nesterov, cpp_kernels):
    dtype, library = cpp_kernels
    assert _cpu_mismatch(library, fusion, dtype, nesterov) is None


@needs_gxx
def test_cpu_run_fails_on_a_wrong_operation(tmp_path):
    """A planted bug: ReLU's gradient passing at out == 0 (>= for >) compiles everywhere; only running it shows it."""
    from tinycnn.fast.kernels.offline import cpp_library

    relu = kernels.RELU_BACKWARD
    broken = ElementwiseFusion(relu.name, relu.in_params, relu.out_params, "grad_x = grad * (T)(out >= (T)0)",
                               reference=relu.reference)
    library = cpp_library([broken], np.float64, str(tmp_path))
    correct = cpp_library([relu], np.float64, str(tmp_path))
    assert _cpu_mismatch(library, broken, np.float64, sample_as=relu) is not None
    assert _cpu_mismatch(correct, relu, np.float64) is None, "the correct operation passes the same check"


# --------------------------------------------------------------------------- 3. every xp. name exists in CuPy
ARRAY_MODULE_NAMES = {"xp", "cupy", "_cupy", "cp"}


def attribute_chains(source: str, filename: str = "<source>"):
    """(line, "xp.a.b") for every attribute chain rooted at an array-module name, longest form only."""
    chains = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Attribute):
            continue
        names, inner = [], node
        while isinstance(inner, ast.Attribute):
            names.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id in ARRAY_MODULE_NAMES:
            chains.append((node.lineno, ".".join([inner.id] + names[::-1])))
    # keep only the longest chains (ast.walk also visits xp.a inside xp.a.b)
    full = {c for _, c in chains}
    return sorted({(line, c) for line, c in chains if not any(o.startswith(c + ".") for o in full)})


def missing_in_cupy(chain: str) -> bool:
    import cupy

    obj, path = cupy, "cupy"
    for name in chain.split(".")[1:]:
        path += "." + name
        if hasattr(obj, name):
            obj = getattr(obj, name)
            continue
        try:                          # a submodule CuPy does not import by itself (cupy.cuda.nccl)
            obj = importlib.import_module(path)
        except ImportError:
            return True
    return False


def _scan(files):
    found = []
    for path in files:
        for line, chain in attribute_chains(path.read_text(), str(path)):
            if missing_in_cupy(chain):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {chain}")
    return found


@needs_cupy
def test_every_array_module_name_in_tinycnn_exists_in_cupy():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    missing = _scan(files)
    assert not missing, "not in CuPy (these lines would fail on a GPU):\n" + "\n".join(missing)


@needs_cupy
def test_the_scan_finds_a_numpy_only_name(tmp_path):
    """A planted bug: a name CuPy does not have is reported with its file and line; real ones are not."""
    path = PACKAGE / "_planted.py"
    try:
        path.write_text("def f(xp, x):\n    return xp.linalg.norm(x) + xp.not_in_cupy(x) + xp.cuda.Device().id\n")
        assert _scan([path]) == [f"tinycnn/_planted.py:2: xp.not_in_cupy"]
    finally:
        path.unlink()
    assert attribute_chains("y = xp.cuda.Device(0).id\nz = cupy.random.default_rng\n") == [
        (1, "xp.cuda.Device"), (2, "cupy.random.default_rng")]
