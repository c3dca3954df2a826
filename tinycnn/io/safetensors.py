"""Reading a ``.safetensors`` file: a JSON table of contents, then raw little-endian bytes.

The format (Hugging Face's, chosen because it cannot carry code):

    8 bytes      N, the header length, an unsigned 64-bit little-endian integer
    N bytes      JSON: {"name": {"dtype": "F32", "shape": [6, 1, 5, 5],
                                 "data_offsets": [begin, end]}, ...,
                        "__metadata__": {"any": "strings"}}   (optional)
    the rest     the tensors' bytes, C order; offsets count from the header's end

No strides, no sharing: each tensor is one contiguous run of bytes.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from .errors import WeightsFileError
from .torch_zip import bfloat16_to_float32

__all__ = ["read_safetensors", "looks_like_safetensors"]

DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits, widened to float32 below
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def looks_like_safetensors(head: bytes, file_size: int) -> bool:
    """The first bytes are a plausible header length followed by a JSON object."""
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= file_size - 8 and head[8:9] == b"{"


def read_safetensors(data: bytes, source: str) -> dict:
    """Every tensor of a safetensors file (its bytes) as name -> NumPy array, in file order.

    BF16 comes back as float32; other dtypes as themselves.
    """
    if len(data) < 8:
        raise WeightsFileError(f"{source} is truncated: {len(data)} bytes, a safetensors file starts with an 8-byte length")
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + length > len(data):
        raise WeightsFileError(
            f"{source} is truncated: its header says {length} bytes of JSON, the file has {len(data) - 8} after the length"
        )
    try:
        header = json.loads(data[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsFileError(f"{source}: the safetensors header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise WeightsFileError(f"{source}: the safetensors header should be a JSON object, got {type(header).__name__}")
    body = memoryview(data)[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            kind, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise WeightsFileError(f"{source}: tensor {name!r} needs dtype, shape and data_offsets, got {entry!r:.120}") from None
        if kind not in DTYPES:
            raise WeightsFileError(f"{source}: tensor {name!r} has dtype {kind!r}; tinycnn reads {', '.join(DTYPES)}")
        dtype = DTYPES[kind]
        if not all(isinstance(n, int) and n >= 0 for n in shape + (begin, end)):
            raise WeightsFileError(f"{source}: tensor {name!r} has a bad shape {shape} or offsets {[begin, end]}")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected:
            raise WeightsFileError(
                f"{source}: tensor {name!r} ({kind}, shape {list(shape)}) needs {expected} bytes, "
                f"its offsets {[begin, end]} give {end - begin}"
            )
        if end > len(body):
            raise WeightsFileError(
                f"{source} is truncated: tensor {name!r} ends at byte {end} of the data, which has {len(body)} bytes"
            )
        array = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        array = array.astype(dtype.newbyteorder("="))  # a native-order copy that owns its memory
        tensors[name] = bfloat16_to_float32(array) if kind == "BF16" else array
    return tensors
