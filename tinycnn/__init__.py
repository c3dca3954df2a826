"""tinycnn: a from-scratch, educational CNN engine on NumPy (CPU) and CuPy (GPU).

    import tinycnn
    x = tinycnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # tensor([2., 4., 6.])
"""

import numpy as _np

from . import backend
from .backend import cuda_is_available, manual_seed
from .fast import get_num_threads, reference_floor, fast_floor, set_fast, set_num_threads
from .functional.math import cat, concatenate, maximum, minimum, pad, stack, where
from .device import device
from .generator import Generator
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save
from .tensor import (
    Function, Tensor, arange, enable_grad, full, is_grad_enabled, linspace, no_grad, ones,
    ones_like, rand, randint, randn, tensor, zeros, zeros_like,
)
from .torch_functions import (  # PyTorch's torch.* functions (tinycnn/torch_functions.py)
    abs, argmax, argmin, as_tensor, eq, exp, flatten, from_numpy, is_tensor, log, log_softmax, max, mean, min,
    numel, sigmoid, softmax, sqrt, sum, tanh,
)

from . import fast, functional, nn, optim, data, models, cuda, utils  # noqa: E402  (after Tensor: they build on it)
from .io import load_state_dict_file  # noqa: E402  (PyTorch .pt/.safetensors weights, read without PyTorch)

__version__ = "0.1.0"

# dtype names as PyTorch spells them (they are NumPy dtypes)
float32 = _np.float32
float64 = _np.float64
float16 = _np.float16
int64 = _np.int64
int32 = _np.int32
uint8 = _np.uint8
bool_ = _np.bool_
bool = _np.bool_  # noqa: A001  (PyTorch's spelling: tinycnn.bool; shadows the builtin only inside tinycnn's namespace)
float = _np.float32  # noqa: A001  (torch.float is float32)
long = _np.int64  # noqa: A001  (torch.long)
int = _np.int32  # noqa: A001  (torch.int)
double = _np.float64


def __getattr__(name):
    # train, runner and viz import tqdm and matplotlib: load them only when used
    if name in ("train", "runner", "viz"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinycnn' has no attribute {name!r}")
