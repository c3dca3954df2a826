"""A fusion's kernel as a stand-alone CUDA file, to check that it compiles without a GPU.

CuPy compiles an ``ElementwiseKernel`` only when it is first called, on a GPU. To catch
a typo in an operation string on a machine without one, :func:`cuda_source` wraps the
operation the way CuPy does and the tests compile the result with ``nvcc -ptx``
(CUDA's compiler works without a GPU). For ``T = float``, the SGD fusion becomes::

    typedef float T;
    extern "C" __global__ void tinycnn_sgd_momentum_step(
            const T* grad_ptr, T lr, ..., bool nesterov, T* param_ptr, T* buf_ptr, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
             i += (long long)gridDim.x * blockDim.x) {     // each thread takes every (grid size)-th i
            const T grad = grad_ptr[i];     // an input array: its element i, read-only
            T &param = param_ptr[i];        // an output: a reference, read and written in place
            T &buf = buf_ptr[i];
            {
                <the operation>
            }
        }
    }

The difference from CuPy's real kernel: CuPy reads every array through an indexer that
knows its shape and strides (so broadcast and strided views work), where this stand-in
reads contiguous arrays of one shape. The operation itself, the part we wrote, is
compiled exactly as CuPy would compile it.
"""

from __future__ import annotations

from .elementwise import ElementwiseFusion

__all__ = ["cuda_source", "C_TYPES"]

# NumPy dtype names used in kernel parameters -> their C++ types (as in CuPy).
C_TYPES = {"bool": "bool", "int32": "int", "int64": "long long", "float32": "float", "float64": "double"}


def _c_type(param_type: str) -> str:
    if param_type == "T":
        return "T"
    if param_type not in C_TYPES:
        raise ValueError(f"kernel parameter type {param_type!r}: expected 'T' or one of {', '.join(C_TYPES)}")
    return C_TYPES[param_type]


def cuda_source(fusion: ElementwiseFusion, t: str = "float") -> str:
    """CUDA C++ source of ``fusion``'s kernel with the type placeholder ``T`` set to ``t``."""
    if t not in ("float", "double"):
        raise ValueError(f"cuda_source: T must be 'float' or 'double', got {t!r}")
    arguments, loads = [], []
    for param in fusion.inputs:
        c_type = _c_type(param.type)
        if param.name in fusion.scalars:
            arguments.append(f"{c_type} {param.name}")                       # a number: passed by value
        else:
            arguments.append(f"const {c_type}* {param.name}_ptr")
            loads.append(f"const {c_type} {param.name} = {param.name}_ptr[i];")
    for param in fusion.outputs:
        c_type = _c_type(param.type)
        arguments.append(f"{c_type}* {param.name}_ptr")
        loads.append(f"{c_type} &{param.name} = {param.name}_ptr[i];")
    arguments.append("long long n")
    operation = [line.strip() for line in fusion.operation.strip().rstrip(";").splitlines() if line.strip()]
    operation[-1] += ";"   # CuPy's operation strings may leave out the last semicolon
    body = loads + ["{"] + ["    " + line for line in operation] + ["}"]
    return (
        f"typedef {t} T;\n"
        f'extern "C" __global__ void {fusion.name}(\n        {", ".join(arguments)}) {{\n'
        "    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;\n"
        "         i += (long long)gridDim.x * blockDim.x) {\n"
        + "".join(f"        {line}\n" for line in body)
        + "    }\n"
        "}\n"
    )
