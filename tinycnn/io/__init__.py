"""Models in and out: PyTorch weights in (no PyTorch needed), ONNX out.

* :func:`load_state_dict_file` (``weights.py``) reads a PyTorch ``.pt``/``.pth``
  state_dict or a ``.safetensors`` file into NumPy arrays, without running any
  code from the file;
* :func:`export_onnx` (``onnx.py``) writes a model as an ONNX graph that
  onnxruntime, OpenCV, TensorRT or a browser can run (needs ``pip install 'tinycnn[onnx]'``).
"""

from .errors import WeightsFileError
from .onnx import OnnxExportError, export_onnx
from .weights import load_state_dict_file

__all__ = ["load_state_dict_file", "WeightsFileError", "export_onnx", "OnnxExportError"]
