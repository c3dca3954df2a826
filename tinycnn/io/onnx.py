"""ONNX out: ``export_onnx(model, "model.onnx", input_shape=(1, 3, 32, 32))``.

ONNX is a file format for inference graphs: a list of nodes (``Conv``, ``Relu``,
``Add`` ...), each reading and writing named values, plus the weights as named
constants ("initializers"). onnxruntime, OpenCV's dnn module, TensorRT and
browsers (onnxruntime-web) run it, so a model trained here can be used there.

How the graph is found: by running the model's real ``forward`` once, in eval
mode, on a dummy batch, and watching. Two things are watched:

1. **Layers.** Every layer with a known ONNX translation (``LAYER_HANDLERS``:
   Conv2d, BatchNorm, the activations, pooling, Flatten, Linear, Dropout) has its ``forward``
   wrapped for the duration of the export. When it runs, its handler writes one
   ONNX node for it, with its weights as initializers named like its state_dict
   keys (``layer1.0.conv1.weight``), and the output is named after the layer.
2. **Tensor operations between layers**, such as ResNet's ``out + shortcut(x)``
   or option A's ``x[:, :, ::2, ::2]`` and zero padding. These are not layers,
   but the autograd engine records each as the ``grad_fn`` of its result. When a
   value without a name turns up, we follow its ``grad_fn`` back to values that
   have names and translate each Function on the way (``OP_HANDLERS``).

So any model built from those layers and operations exports, whatever its
``forward`` does in Python (loops, branches, shared layers), as it is traced,
not re-described. Anything else stops the export with an OnnxExportError that
names the module and the operation.

The batch dimension is dynamic (named ``batch``): the file runs on any batch size.
Height and width are fixed to ``input_shape``'s, as the layer sizes after
Flatten depend on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import backend, nn
from ..atomic import atomic_write
from ..fast import reference_floor
from ..functional import math as M
from ..functional.pool import _adaptive_matrix
from ..tensor import Tensor, enable_grad
from ..windows import pair

__all__ = ["export_onnx", "OnnxExportError", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17  # onnxruntime >= 1.11 runs it
MIN_OPSET = 13      # Pad, Slice, Squeeze and ReduceSum take their settings as inputs from 13 on
TRACE_BATCH = 2     # the dummy batch: 2, not 1, so a reshape that mixes up the batch shows
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class OnnxExportError(ValueError):
    """The model contains something the exporter cannot write as ONNX."""


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "export_onnx needs the 'onnx' package, which tinycnn does not install by default: "
            "pip install 'tinycnn[onnx]'  (or: pip install onnx)"
        ) from None
    return onnx


# --------------------------------------------------------------------------- the graph being built
class GraphBuilder:
    """Collects nodes and initializers, and the ONNX name of every traced tensor.

    A tensor's name is looked up by ``id(tensor)``; every traced tensor is kept
    alive in ``self.keep`` so that no id is reused by a new tensor during the trace.
    """

    def __init__(self, onnx, opset: int, parameter_names: dict):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self.names: dict[int, str] = {}
        self.keep: list = []
        self.used: set[str] = {"input", "output"}  # the graph's own input and output
        self.parameter_names = parameter_names  # id(parameter or buffer) -> state_dict key
        self.module_stack: list[tuple[str, nn.Module]] = []

    def unique(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``... if taken (a layer may run twice, as ResNet's relu)."""
        candidate, k = name, 0
        while candidate in self.used:
            k += 1
            candidate = f"{name}_{k}"
        self.used.add(candidate)
        return candidate

    def constant(self, array, name: str) -> str:
        """An initializer holding ``array`` (NumPy or CuPy); returns its name."""
        name = self.unique(name)
        array = np.ascontiguousarray(backend.to_numpy(array))
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op_type: str, inputs: list, name: str, **attributes) -> str:
        """Append one node with one output called ``name`` (made unique); returns the output's name."""
        output = self.unique(name)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def int64s(self, values, name: str) -> str:
        """A 1-D int64 constant: the shapes, pads and axes that opset 13+ passes as inputs."""
        return self.constant(np.asarray(values, dtype=np.int64), name)

    def set_name(self, tensor: Tensor, name: str) -> None:
        self.keep.append(tensor)
        self.names[id(tensor)] = name

    @property
    def where(self) -> str:
        """The module being run, for error messages: "module 'layer1.0' (BasicBlock)"."""
        if not self.module_stack:
            return "model"
        path, module = self.module_stack[-1]
        return f"module '{path or 'model'}' ({type(module).__name__})"

    def scope(self) -> str:
        """The module being run, as a prefix for the names of the nodes its operations make."""
        return self.module_stack[-1][0] if self.module_stack and self.module_stack[-1][0] else "model"

    def name_of(self, value, like: Tensor | None = None) -> str:
        """The ONNX name of ``value``, writing the nodes that compute it if it has none yet.

        ``value`` is a traced Tensor, a parameter or buffer of the model, or a
        plain constant (a Python number or an array), which becomes an
        initializer of ``like``'s dtype.
        """
        if not isinstance(value, Tensor):
            dtype = like.dtype if like is not None else np.float32
            return self.constant(np.asarray(value, dtype=dtype), f"{self.scope()}/const")
        if id(value) in self.names:
            return self.names[id(value)]
        if value._ctx is None:  # a leaf: fine if it is one of the model's own tensors
            if id(value) not in self.parameter_names:
                raise OnnxExportError(
                    f"export_onnx: {self.where} uses a tensor of shape {value.shape} that is neither computed "
                    "from the input nor a parameter or buffer of the model (made under no_grad, with .detach(), "
                    "or a fresh tensor?); register constants with register_buffer so they can be exported"
                )
            name = self.constant(value.data, self.parameter_names[id(value)])
        else:
            function = value._ctx
            handler = OP_HANDLERS.get(type(function))
            if handler is None:
                raise OnnxExportError(
                    f"export_onnx: {self.where} computes {type(function).__name__}, which has no ONNX "
                    f"translation; supported layers: {', '.join(t.__name__ for t in LAYER_HANDLERS)}; supported "
                    f"tensor operations: {', '.join(sorted(t.__name__ for t in OP_HANDLERS))}"
                )
            # The inputs first (recursively, back to named values), so nodes come in topological order.
            name = handler(self, function, value)
        self.set_name(value, name)
        return name


# --------------------------------------------------------------------------- layers -> nodes
# Each handler: (graph, module, path, x_name, x, out) -> the output's name.
# x is the layer's input Tensor and out its output, both from the trace (for shapes).

def _conv2d(g, m: nn.Conv2d, path, x_name, x, out):
    inputs = [x_name, g.constant(m.weight.data, f"{path}.weight")]
    if m.bias is not None:
        inputs.append(g.constant(m.bias.data, f"{path}.bias"))
    (ph, pw) = m.padding
    return g.node("Conv", inputs, path, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=[ph, pw, ph, pw], dilations=list(m.dilation), group=m.groups)  # pads: begins, then ends


def _batch_norm(g, m, path, x_name, x, out):
    if m.running_mean is None:
        raise OnnxExportError(
            f"export_onnx: {path} ({type(m).__name__}) has track_running_stats=False, so it normalises with "
            "each batch's own statistics even in eval mode; ONNX's BatchNormalization needs fixed statistics"
        )
    channels = m.num_features
    weight = m.weight.data if m.affine else np.ones(channels, x.dtype)
    bias = m.bias.data if m.affine else np.zeros(channels, x.dtype)
    inputs = [x_name, g.constant(weight, f"{path}.weight"), g.constant(bias, f"{path}.bias"),
              g.constant(m.running_mean.data, f"{path}.running_mean"),
              g.constant(m.running_var.data, f"{path}.running_var")]
    # Inference form: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias
    return g.node("BatchNormalization", inputs, path, epsilon=float(m.eps))


def _relu(g, m, path, x_name, x, out):
    return g.node("Relu", [x_name], path)


def _leaky_relu(g, m, path, x_name, x, out):
    return g.node("LeakyRelu", [x_name], path, alpha=float(m.negative_slope))


def _pool_attributes(m):
    (ph, pw) = pair(m.padding, "padding", type(m).__name__)
    return dict(kernel_shape=list(pair(m.kernel_size, "kernel_size", type(m).__name__)),
                strides=list(pair(m.stride, "stride", type(m).__name__)), pads=[ph, pw, ph, pw])


def _max_pool(g, m, path, x_name, x, out):
    attributes = _pool_attributes(m)
    dilation = pair(m.dilation, "dilation", "MaxPool2d")
    if m.ceil_mode:
        # ONNX rounds the window count up as PyTorch does. Where PyTorch's rule then drops a
        # last window that would start in the right padding only, ONNX's shape inference
        # (opsets 17 and 19) still counts it while onnxruntime 1.32 drops it: a file that
        # disagrees with itself. Refuse exactly those rare shapes (GoogLeNet's and SqueezeNet's
        # unpadded ceil-mode pools are fine).
        (h, w), kernel, stride = x.shape[2:], attributes["kernel_shape"], attributes["strides"]
        pads = attributes["pads"][:2]
        plain_ceil = tuple(-(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
                           for size, k, s, p, d in zip((h, w), kernel, stride, pads, dilation))
        if plain_ceil != tuple(out.shape[2:]):
            raise OnnxExportError(
                f"export_onnx: {g.where} is a ceil_mode MaxPool2d whose last window would start in the padding "
                f"({tuple(out.shape[2:])} windows here, {plain_ceil} by ONNX's rounding); use padding 0 or ceil_mode=False"
            )
    return g.node("MaxPool", [x_name], path, ceil_mode=int(bool(m.ceil_mode)), dilations=list(dilation),
                  **attributes)


def _avg_pool(g, m, path, x_name, x, out):
    # tinycnn, like PyTorch by default, counts the zero padding in each window's mean
    return g.node("AveragePool", [x_name], path, count_include_pad=1, **_pool_attributes(m))


def _adaptive_avg_pool(g, m, path, x_name, x, out):
    (h, w), (oh, ow) = x.shape[2:], out.shape[2:]
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [x_name], path)
    if h % oh == 0 and w % ow == 0:  # even split: plain non-overlapping windows
        kernel = [h // oh, w // ow]
        return g.node("AveragePool", [x_name], path, kernel_shape=kernel, strides=kernel)
    # Uneven windows overlap; each output is still a mean of a rectangle, so it is
    # rows (OH, H) @ x (N, C, H, W) @ cols.T (W, OW), the matrices tinycnn itself uses.
    rows = g.constant(_adaptive_matrix(h, oh).astype(x.dtype), f"{path}.rows")
    cols_t = g.constant(_adaptive_matrix(w, ow).T.astype(x.dtype), f"{path}.cols_t")
    x_cols = g.node("MatMul", [x_name, cols_t], f"{path}/cols")
    return g.node("MatMul", [rows, x_cols], path)


def _clip(g, m, path, x_name, x, out):   # Hardtanh and ReLU6: Clip with its bounds as inputs (opset >= 11)
    low = g.constant(np.asarray(m.min_val, dtype=x.dtype), f"{path}.min")
    high = g.constant(np.asarray(m.max_val, dtype=x.dtype), f"{path}.max")
    return g.node("Clip", [x_name, low, high], path)


def _sigmoid(g, m, path, x_name, x, out):
    return g.node("Sigmoid", [x_name], path)


def _silu(g, m, path, x_name, x, out):   # x * sigmoid(x)
    return g.node("Mul", [x_name, g.node("Sigmoid", [x_name], f"{path}/sigmoid")], path)


def _hardsigmoid(g, m, path, x_name, x, out):   # max(0, min(1, x/6 + 1/2))
    return g.node("HardSigmoid", [x_name], path, alpha=1.0 / 6.0, beta=0.5)


def _hardswish(g, m, path, x_name, x, out):
    if g.opset >= 14:
        return g.node("HardSwish", [x_name], path)
    gate = g.node("HardSigmoid", [x_name], f"{path}/gate", alpha=1.0 / 6.0, beta=0.5)
    return g.node("Mul", [x_name, gate], path)


def _flatten(g, m, path, x_name, x, out):
    start, end = m.start_dim % x.ndim, m.end_dim % x.ndim
    if start == 1 and end == x.ndim - 1:  # the usual (N, C, H, W) -> (N, C*H*W)
        return g.node("Flatten", [x_name], path, axis=1)
    # Reshape: 0 keeps that input dimension (the batch stays dynamic), -1 is the merged one.
    target = [0] * start + [-1] + list(x.shape[end + 1:])
    return g.node("Reshape", [x_name, g.int64s(target, f"{path}.shape")], path)


def _linear(g, m, path, x_name, x, out):
    weight = m.weight.data
    if x.ndim == 2:  # Gemm: y = x @ weight.T + bias, weight kept in PyTorch's (out, in) layout
        inputs = [x_name, g.constant(weight, f"{path}.weight")]
        if m.bias is not None:
            inputs.append(g.constant(m.bias.data, f"{path}.bias"))
        return g.node("Gemm", inputs, path, transB=1)
    y = g.node("MatMul", [x_name, g.constant(weight.T, f"{path}.weight_t")], path if m.bias is None else f"{path}/matmul")
    if m.bias is None:
        return y
    return g.node("Add", [y, g.constant(m.bias.data, f"{path}.bias")], path)


def _dropout(g, m, path, x_name, x, out):
    return x_name  # eval mode: dropout (and stochastic depth) pass their input through, so no node at all


LAYER_HANDLERS = {
    nn.Conv2d: _conv2d,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm1d: _batch_norm,
    nn.ReLU: _relu,
    nn.LeakyReLU: _leaky_relu,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.Flatten: _flatten,
    nn.Linear: _linear,
    nn.Dropout: _dropout,
    nn.StochasticDepth: _dropout,
    nn.Hardtanh: _clip,
    nn.ReLU6: _clip,
    nn.Sigmoid: _sigmoid,
    nn.SiLU: _silu,
    nn.Hardsigmoid: _hardsigmoid,
    nn.Hardswish: _hardswish,
}


# --------------------------------------------------------------------------- tensor operations -> nodes
# Each handler: (graph, function, out) -> the output's name. function.inputs holds what
# the op was applied to, in order (tensors, then its settings), as Function.apply recorded it.

def _binary(op_type):
    def handler(g, fn, out):
        a, b = fn.inputs
        return g.node(op_type, [g.name_of(a, like=out), g.name_of(b, like=out)], f"{g.scope()}/{op_type}")
    return handler


def _op_relu(g, fn, out):
    return g.node("Relu", [g.name_of(fn.inputs[0])], f"{g.scope()}/Relu")


def _op_sigmoid(g, fn, out):
    return g.node("Sigmoid", [g.name_of(fn.inputs[0])], f"{g.scope()}/Sigmoid")


def _op_neg(g, fn, out):
    return g.node("Neg", [g.name_of(fn.inputs[0])], f"{g.scope()}/Neg")


def _op_reshape(g, fn, out):
    x = fn.inputs[0]
    if x.ndim == 0 or out.ndim == 0 or x.shape[0] != out.shape[0]:
        raise OnnxExportError(
            f"export_onnx: {g.where} reshapes {x.shape} to {out.shape} (traced with batch {TRACE_BATCH}); "
            "only reshapes that keep dimension 0, the batch, can be exported with a dynamic batch"
        )
    target = [0] + list(out.shape[1:])  # 0: copy the batch size from the input
    return g.node("Reshape", [g.name_of(x), g.int64s(target, f"{g.scope()}/shape")], f"{g.scope()}/Reshape")


def _op_permute(g, fn, out):
    x, dims = fn.inputs
    return g.node("Transpose", [g.name_of(x)], f"{g.scope()}/Transpose", perm=[int(d) for d in dims])


def _op_getitem(g, fn, out):
    """Basic indexing (slices, ints, ``...``) as one Slice, then Squeeze for the int indices."""
    x, index = fn.inputs
    parts = index if isinstance(index, tuple) else (index,)
    if any(p is None or hasattr(p, "shape") or isinstance(p, (list, bool)) for p in parts):
        raise OnnxExportError(
            f"export_onnx: {g.where} indexes with {index!r}; only slices, ints and ... can be exported"
        )
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        parts = parts[:at] + (slice(None),) * (x.ndim - len(parts) + 1) + parts[at + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, part in enumerate(parts):
        if isinstance(part, slice):
            if part == slice(None):
                continue
            step = 1 if part.step is None else int(part.step)
            start = part.start if part.start is not None else (0 if step > 0 else INT64_MAX)
            end = part.stop if part.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
        else:  # an int i: the slice [i, i+1), then that axis is squeezed away
            step, start = 1, int(part)
            end = start + 1 if start != -1 else INT64_MAX
            squeeze.append(axis)
        starts.append(int(start)), ends.append(int(end)), axes.append(axis), steps.append(step)
    name = g.name_of(x)
    scope = g.scope()
    if axes:
        name = g.node("Slice", [name, g.int64s(starts, f"{scope}/starts"), g.int64s(ends, f"{scope}/ends"),
                                g.int64s(axes, f"{scope}/axes"), g.int64s(steps, f"{scope}/steps")], f"{scope}/Slice")
    if squeeze:
        name = g.node("Squeeze", [name, g.int64s(squeeze, f"{scope}/squeeze_axes")], f"{scope}/Squeeze")
    if name == g.name_of(x):  # x[:] or x[...]: the same values
        name = g.node("Identity", [name], f"{scope}/Identity")
    return name


def _op_pad(g, fn, out):
    x, widths, value = fn.inputs
    pads = [int(before) for before, _ in widths] + [int(after) for _, after in widths]  # ONNX: begins, then ends
    scope = g.scope()
    return g.node("Pad", [g.name_of(x), g.int64s(pads, f"{scope}/pads"),
                          g.constant(np.asarray(value, dtype=out.dtype), f"{scope}/pad_value")],
                  f"{scope}/Pad", mode="constant")


def _op_concatenate(g, fn, out):
    return g.node("Concat", [g.name_of(t, like=out) for t in fn.inputs], f"{g.scope()}/Concat", axis=int(fn.axis))


def _reduce(op_type):
    def handler(g, fn, out):
        x, axes, keepdims = fn.inputs
        if not axes:  # the reduction over no axes is the identity (tinycnn's axes are never empty otherwise)
            return g.node("Identity", [g.name_of(x)], f"{g.scope()}/Identity")
        inputs, attributes = [g.name_of(x)], {"keepdims": int(bool(keepdims))}
        # ReduceSum takes its axes as an input from opset 13, ReduceMean only from 18
        if op_type == "ReduceSum" or g.opset >= 18:
            inputs.append(g.int64s(list(axes), f"{g.scope()}/axes"))
        else:
            attributes["axes"] = [int(a) for a in axes]
        return g.node(op_type, inputs, f"{g.scope()}/{op_type}", **attributes)
    return handler


OP_HANDLERS = {
    M.Add: _binary("Add"),
    M.Sub: _binary("Sub"),
    M.Mul: _binary("Mul"),
    M.Div: _binary("Div"),
    M.Neg: _op_neg,
    M.ReLU: _op_relu,
    M.Sigmoid: _op_sigmoid,
    M.Reshape: _op_reshape,
    M.Permute: _op_permute,
    M.GetItem: _op_getitem,
    M.Pad: _op_pad,
    M.Concatenate: _op_concatenate,
    M.Mean: _reduce("ReduceMean"),
    M.Sum: _reduce("ReduceSum"),
}


# --------------------------------------------------------------------------- tracing
def _watch(module: nn.Module, path: str, g: GraphBuilder) -> None:
    """Wrap ``module.forward`` (an instance attribute, removed after the export) to record it."""
    original = module.forward
    handler = LAYER_HANDLERS.get(type(module))  # the exact type: a subclass may change forward

    def forward(*args, **kwargs):
        g.module_stack.append((path, module))
        try:
            if handler is None:  # a container or a model: its layers and operations are recorded
                out = original(*args, **kwargs)
                if isinstance(out, Tensor):
                    g.name_of(out)  # name its operations now, while we know which module made them
                return out
            if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
                raise OnnxExportError(f"export_onnx: {g.where} was called with {len(args)} arguments "
                                      f"{'and keywords ' if kwargs else ''}; expected one tensor")
            x = args[0]
            x_name = g.name_of(x)
            out = original(x)
            g.set_name(out, handler(g, module, path or type(module).__name__.lower(), x_name, x, out))
            return out
        finally:
            g.module_stack.pop()

    module.forward = forward


def _normalize_nodes(g: GraphBuilder, normalize, channels: int, dtype) -> str:
    """Sub and Div nodes computing ``(input - mean) / std`` per channel; returns the result's name."""
    try:
        mean, std = (np.atleast_1d(np.asarray(v, dtype=dtype)) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"export_onnx: normalize should be (mean, std), got {normalize!r}") from None
    if mean.ndim != 1 or std.ndim != 1 or len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise ValueError(f"export_onnx: normalize needs 1 or {channels} values for mean and for std, "
                         f"got {mean.tolist()} and {std.tolist()}")
    if (std <= 0).any():
        raise ValueError(f"export_onnx: std must be positive, got {std.tolist()}")
    shape = (1, -1, 1, 1)  # broadcast over (N, C, H, W)
    centred = g.node("Sub", ["input", g.constant(mean.reshape(shape), "normalize.mean")], "normalize/Sub")
    return g.node("Div", [centred, g.constant(std.reshape(shape), "normalize.std")], "normalize")


def _input_shape(input_shape) -> tuple:
    shape = tuple(int(n) for n in input_shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 4:
        return shape[1:]  # the batch size does not matter: it stays dynamic
    raise ValueError(f"export_onnx: input_shape should be (N, C, H, W) or (C, H, W), got {tuple(input_shape)}")


def export_onnx(model: nn.Module, path, input_shape, opset: int = DEFAULT_OPSET, *,
                normalize=None, metadata: dict | None = None) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as an ONNX file, atomically; returns the path.

    Args:
        model: a tinycnn Module taking one ``(N, C, H, W)`` tensor and returning one tensor.
        path: the file to write (``.onnx``).
        input_shape: ``(N, C, H, W)`` or ``(C, H, W)``; N is ignored, as the file's
            batch dimension is dynamic.
        opset: the ONNX operator set version, 13 or newer (default 17).
        normalize: ``(mean, std)``, one value or one per channel, to build the
            input normalisation into the file: its input is then images scaled to
            [0, 1] (``pixels / 255``, what ``ToFloat`` gives) and the graph starts
            with ``(x - mean) / std``. Without it the input is the normalised
            tensor the model itself takes.
        metadata: strings to store in the file's ``metadata_props`` (for example
            the class names as JSON); onnxruntime shows them in
            ``session.get_modelmeta().custom_metadata_map``.

    The file has one input ``input`` of shape ``(batch, C, H, W)`` and one output
    ``output`` of shape ``(batch, ...)`` (the logits), both in the model's dtype.
    It is checked with ``onnx.checker.check_model`` before it replaces ``path``.
    The model is left as it was (its train/eval mode included).
    """
    onnx = _import_onnx()
    latest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"export_onnx: opset must be between {MIN_OPSET} and {latest} (this onnx package's newest), got {opset}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"export_onnx expects a tinycnn Module, got {type(model).__name__}")
    channels, height, width = _input_shape(input_shape)
    tensors = list(model.parameters()) + list(model.buffers())
    dtype = next((t.dtype for t in tensors if t.dtype.kind == "f"), np.dtype(np.float32))
    device = tensors[0].device if tensors else "cpu"

    parameter_names = {id(t): key for key, t in list(model.named_parameters()) + list(model.named_buffers())}
    g = GraphBuilder(onnx, opset, parameter_names)
    modes = {module: module.training for module in model.modules()}
    watched = []
    try:
        model.eval()
        for path_, module in model.named_modules():
            _watch(module, path_, g)
            watched.append(module)
        x = Tensor(np.zeros((TRACE_BATCH, channels, height, width), dtype=dtype), device=device, requires_grad=True)
        g.set_name(x, "input" if normalize is None else _normalize_nodes(g, normalize, channels, dtype))
        # Recording is what the trace reads, so it must be on; the reference floor's
        # Functions are the ones OP_HANDLERS knows.
        with enable_grad(), reference_floor():
            out = model(x)
        if not isinstance(out, Tensor):
            raise OnnxExportError(f"export_onnx: the model returned a {type(out).__name__}; expected one tensor")
        result = g.name_of(out)
    finally:
        for module in watched:
            del module.forward  # the class's forward shows through again
        for module, training in modes.items():
            object.__setattr__(module, "training", training)

    helper = onnx.helper
    g.nodes.append(helper.make_node("Identity", [result], ["output"], name="output"))
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        g.nodes, f"tinycnn {type(model).__name__}",
        [helper.make_tensor_value_info("input", elem_type, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("output", elem_type, ["batch", *out.shape[1:]])],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    from .. import __version__

    onnx_model = helper.make_model(graph, opset_imports=opsets, producer_name="tinycnn", producer_version=__version__,
                                   ir_version=helper.find_min_ir_version_for(opsets))  # older runtimes can read it
    for key, value in (metadata or {}).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.checker.check_model(onnx_model, full_check=True)  # also infers every shape
    return atomic_write(path, lambda file: file.write(onnx_model.SerializeToString()))
