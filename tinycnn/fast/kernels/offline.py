"""Checks of the fused kernels that need no GPU: CuPy's own NVRTC compile, and the operation run as C++ on the CPU.

Two things can be wrong with a fusion that the GPU tests would catch and CI, which has no
GPU, would not:

1. **It does not compile as CuPy compiles it.** CuPy wraps the operation in its own kernel
   source (every array read through a ``CArray`` and an indexer; inputs bound as ``const T&``)
   and compiles it with NVRTC at the first call. :func:`cupy_source` builds that exact source
   with CuPy's own code generator, for a dtype and a memory layout, and
   :func:`compile_with_nvrtc` compiles it for ``sm_90`` (an H100/H200) with CuPy's compiler
   options. This needs ``cupy`` and the NVRTC library (``nvidia-cuda-nvrtc``), not a device.
   It catches what the stand-alone ``nvcc`` source (standalone.py) lets through: an
   assignment to an input ("expression must be a modifiable lvalue").

2. **Its arithmetic differs from its reference.** :func:`run_on_cpu` compiles the operation
   string with ``g++`` as plain C++ (the stand-alone source under a prelude that defines the
   few CUDA names it uses, so one "thread" walks every element) and runs it on NumPy arrays,
   to be compared with the reference.

CuPy's code generator is internal (``cupy._core._kernel``); the functions used here are
checked at import, and a change in a new CuPy release shows up as a clear failure here.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile

import numpy as np

from .elementwise import ElementwiseFusion
from .standalone import cuda_source

__all__ = ["LAYOUTS", "cupy_source", "compile_with_nvrtc", "cpp_library", "run_on_cpu"]

# How the arrays reach the kernel, as CuPy sees them after it merges dimensions:
# "contiguous": all C-contiguous, merged into one axis (CArray<T, 1, 1, 1>);
# "strided": 4-d views with arbitrary strides, e.g. a broadcast (1, C, 1, 1) operand (CArray<T, 4, 0, 1>).
LAYOUTS = {"contiguous": (1, True), "strided": (4, False)}

# CuPy's ``_ArgKind`` values (cupy/_core/_kernel.pxd)
_NDARRAY, _INDEXER, _SCALAR = 1, 2, 3


def cupy_source(fusion: ElementwiseFusion, dtype, layout: str = "contiguous") -> str:
    """The CUDA source CuPy generates for ``fusion`` called on ``dtype`` arrays in ``layout``
    (without the ``#include <cupy/carray.cuh>`` CuPy puts in front)."""
    import cupy
    from cupy._core import _carray, _kernel, _scalar

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    ndim, contiguous = LAYOUTS[layout]
    dtype = np.dtype(dtype).type
    kernel = cupy.ElementwiseKernel(fusion.in_params, fusion.out_params, fusion.operation, fusion.name)
    in_arrays = tuple(None if p.name in fusion.scalars else dtype for p in fusion.inputs)
    out_arrays = tuple(dtype for _ in fusion.outputs) if fusion.updates_in_place else ()
    in_types, _, type_map = kernel._decide_params_type(in_arrays, out_arrays)
    arginfos = []
    for param, in_type in zip(fusion.inputs, in_types):
        if param.name in fusion.scalars:   # CuPy passes numbers as CScalars of the bound type
            arginfos.append(_kernel._ArgInfo(_SCALAR, _scalar.CScalar, np.dtype(in_type).type, 0, True, True))
        else:
            arginfos.append(_kernel._ArgInfo(_NDARRAY, cupy.ndarray, dtype, ndim, contiguous, True))
    arginfos += [_kernel._ArgInfo(_NDARRAY, cupy.ndarray, dtype, ndim, contiguous, True) for _ in fusion.outputs]
    arginfos.append(_kernel._ArgInfo(_INDEXER, _carray.Indexer, None, ndim, True, True))
    return _kernel._get_elementwise_kernel_code(tuple(arginfos), type_map, kernel.params, kernel.operation,
                                                kernel.name, kernel.preamble)


def compile_with_nvrtc(fusion: ElementwiseFusion, dtype, layout: str = "contiguous", arch: str = "90") -> bytes:
    """Compile :func:`cupy_source` with NVRTC for ``sm_<arch>`` as CuPy would; returns the cubin.

    Raises ``cupy.cuda.compiler.CompileException`` with NVRTC's log when it does not compile.
    CuPy's ``compile_using_nvrtc`` asks the device for its architecture even when given one
    (a memoized lookup per device), so this calls the program object below it with the arch set.
    """
    from cupy._core import core
    from cupy.cuda import compiler

    source = "#include <cupy/carray.cuh>\n" + cupy_source(fusion, dtype, layout)
    options = core.assemble_cupy_compiler_options(()) + (f"-arch=sm_{arch}", "--device-as-default-execution-space")
    program = compiler._NVRTCProgram(source, f"{fusion.name}.cu", (), (), name_expressions=None, method="cubin")
    binary, _ = program.compile(options, None)
    return binary


# --------------------------------------------------------------------------- the operation as C++ on the CPU
# Just enough CUDA for standalone.py's source to be plain C++: the kernel becomes a function and
# its grid-stride loop runs with one block of one thread, so i walks 0, 1, ..., n - 1.
_PRELUDE = """\
#include <cmath>
using std::sqrt; using std::exp; using std::log; using std::tanh; using std::fabs;
#define __global__
static const struct { long long x; } blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
"""

_C_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def cpp_library(fusions, dtype, directory=None):
    """Compile every fusion's operation for ``dtype`` into one shared library (g++) and load it."""
    c_type = _C_NAMES[np.dtype(dtype)]
    # each source repeats "typedef <c_type> T;": C++ allows the same typedef twice
    source = _PRELUDE + "\n".join(cuda_source(f, c_type) for f in fusions)
    directory = directory or tempfile.mkdtemp(prefix="tinycnn-kernels-")
    stem = os.path.join(directory, "fusions_" + hashlib.sha1(source.encode()).hexdigest()[:12])
    with open(stem + ".cpp", "w") as file:
        file.write(source)
    result = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", stem + ".so", stem + ".cpp"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"g++ could not compile the operations as C++ ({c_type}):\n{result.stderr}")
    return ctypes.CDLL(stem + ".so")


def run_on_cpu(library, fusion: ElementwiseFusion, args, dtype):
    """Run ``fusion``'s compiled operation on ``args`` (the kernel's arguments: NumPy arrays and
    numbers). Arrays are broadcast to one shape and cast to ``dtype``; returns the output(s) like
    the reference: new arrays, or (updating in place) the updated copies of the output arguments."""
    dtype = np.dtype(dtype)
    c_scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    n = int(np.prod(shape))
    keep, c_args = [], []
    params = fusion.arguments
    for param, value in zip(params, args):
        if param.name in fusion.scalars:
            c_args.append(ctypes.c_bool(bool(value)) if param.type == "bool" else c_scalar(value))
            continue
        array = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype), shape), dtype).copy()
        keep.append(array)
        c_args.append(array.ctypes.data_as(ctypes.c_void_p))
    outputs = []
    if not fusion.updates_in_place:
        outputs = [np.empty(shape, dtype) for _ in fusion.outputs]
        c_args += [o.ctypes.data_as(ctypes.c_void_p) for o in outputs]
    else:
        outputs = keep[-len(fusion.outputs):]
    getattr(library, fusion.name)(*c_args, ctypes.c_longlong(n))
    return outputs[0] if len(outputs) == 1 else tuple(outputs)
