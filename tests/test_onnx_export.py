"""export_onnx: every zoo model, run in onnxruntime, gives tinycnn's eval-mode logits.

Needs the optional packages ``onnx`` (to export) and ``onnxruntime`` (to run the file);
each test skips, saying which is missing, without them.
"""

import numpy as np
import pytest

import tinycnn
from tinycnn import nn
from tinycnn.io.onnx import OnnxExportError, export_onnx
from tinycnn.models import MODELS, TAKES_SMALL_INPUT, get_model

try:
    import onnx
except ImportError:
    onnx = None
try:
    import onnxruntime as ort
except ImportError:
    ort = None

needs_onnx = pytest.mark.skipif(onnx is None, reason="export needs the optional 'onnx' package (pip install 'tinycnn[onnx]')")
needs_onnxruntime = pytest.mark.skipif(
    onnx is None or ort is None, reason="running the exported files needs the optional 'onnx' and 'onnxruntime' packages"
)

def assert_close(got, expected):
    """Equal to 1e-5, relative to each value and to the logits' scale (float32).

    Two engines summing in different orders differ by rounding, which grows with
    depth and with the activations' size: for ResNet-56 both tinycnn's and
    onnxruntime's float32 logits are ~1.5e-5 away from tinycnn's float64 answer (logits
    of size ~5), so a bare elementwise 1e-5 would test rounding, not the export.
    Measured here, |onnxruntime - tinycnn| / max|logits|: at most ~7e-6 (ResNet-56,
    option B), ~1e-6 for ResNet-20/32, below 1e-6 for the small nets.
    """
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


# (model name, keyword arguments, input shape (C, H, W)): the zoo and its options
# The torchvision twins at 32x32 take small_input=True; AlexNet and the VGGs are left out (57-134M
# weights: a 230-540 MB file each; their layers are all covered by the other models).
TOO_BIG_TO_EXPORT_IN_TESTS = ("alexnet", "vgg11_bn", "vgg16_bn")
ZOO = [(name, {"small_input": True} if name in TAKES_SMALL_INPUT else {}, (1, 28, 28) if name == "lenet5" else (3, 32, 32))
       for name in MODELS if name not in TOO_BIG_TO_EXPORT_IN_TESTS]
ZOO += [(name, {"shortcut": "B"}, (3, 32, 32)) for name in ("resnet20", "resnet32", "resnet56")]
ZOO += [("lenet5", {"in_channels": 3, "input_size": 32}, (3, 32, 32)), ("small_cnn", {"input_size": 48}, (3, 48, 48))]


def calibrate_batch_norm(model, shape, batches: int = 2, seed: int = 0):
    """Give every BatchNorm real running statistics: train-mode forwards with momentum 1,
    so each running mean/variance is that of the last batch, as after training. (With the
    fresh 0/1 statistics, random ResNet-56 logits reach the hundreds and the test would
    measure rounding in huge numbers rather than the export.)"""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    rng = np.random.default_rng(seed)
    model.train()
    with tinycnn.no_grad():
        for _ in range(batches):
            model(tinycnn.tensor(rng.standard_normal((8, *shape)).astype(np.float32)))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return model


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x})
    return output


def tinycnn_logits(model, x: np.ndarray) -> np.ndarray:
    with tinycnn.no_grad():
        return model(tinycnn.tensor(x)).numpy()


def assert_exports_faithfully(model, shape, tmp_path, batch_sizes=(1, 3)):
    path = export_onnx(model, tmp_path / "model.onnx", input_shape=(1, *shape))
    onnx.checker.check_model(onnx.load(str(path)))
    rng = np.random.default_rng(1)
    for n in batch_sizes:  # one file, several batch sizes: the batch dimension is dynamic
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        expected, got = tinycnn_logits(model, x), run_onnx(path, x)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert_close(got, expected)
    return path


@needs_onnxruntime
@pytest.mark.parametrize("name, kwargs, shape", ZOO, ids=[f"{n}{'-' + '-'.join(f'{k}={v}' for k, v in kw.items()) if kw else ''}"
                                                        for n, kw, _ in ZOO])
def test_zoo_model_matches_tinycnn_in_onnxruntime(name, kwargs, shape, tmp_path):
    tinycnn.manual_seed(0)
    model = get_model(name, num_classes=7, **{"in_channels": shape[0], **kwargs})
    calibrate_batch_norm(model, shape)
    assert_exports_faithfully(model, shape, tmp_path)


@needs_onnx
def test_the_graph_reads_like_the_model(tmp_path):
    tinycnn.manual_seed(0)
    model = get_model("resnet20")
    graph = onnx.load(str(export_onnx(model, tmp_path / "r.onnx", (3, 32, 32)))).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Conv") == 19 and ops.count("BatchNormalization") == 19 and ops.count("Add") == 9
    assert ops.count("Pad") == 2 and ops.count("Slice") == 2  # the two option-A shortcuts
    assert ops.count("GlobalAveragePool") == 1 and ops.count("Gemm") == 1
    initializers = {init.name for init in graph.initializer}
    assert {"conv1.weight", "layer1.0.bn1.running_var", "fc.weight", "fc.bias"} <= initializers
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@needs_onnx
def test_the_model_is_left_as_it_was(tmp_path):
    model = get_model("vgg_small")
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "v.onnx", (3, 32, 32))
    assert model.training and all(m.training for m in model.modules())
    assert all("forward" not in vars(m) for m in model.modules())  # the trace's wrappers are gone
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # no running stats moved


class Everything(nn.Module):
    """Layers and tensor operations beyond the zoo's: what a student's own model may use."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=2, dilation=2, groups=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.act = nn.LeakyReLU(0.2)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)
        self.uneven = nn.AdaptiveAvgPool2d((3, 2))  # windows of uneven, overlapping sizes
        self.flat = nn.Flatten(2)                   # (N, C, 3, 2) -> (N, C, 6)
        self.seq_linear = nn.Linear(6, 5)           # on a 3-D input: MatMul + Add
        self.bn1d = nn.BatchNorm1d(8)
        self.head = nn.Linear(8 * 5 + 8, 4)
        self.scale = nn.Parameter(tinycnn.tensor(np.linspace(0.5, 1.5, 4).astype(np.float32)))

    def forward(self, x):
        y = self.act(self.grouped(self.conv(x)))
        y = self.bn(y) - 0.5 * y
        pooled = self.uneven(self.avg(y))
        seq = self.bn1d(self.seq_linear(self.flat(pooled)))          # (N, 8, 5)
        channel_mean = y.mean(axis=(2, 3))                            # (N, 8)
        corner = tinycnn.functional.math.permute(y, 0, 2, 3, 1)[:, 0, -1, :]  # (N, 8) via Transpose/Slice/Squeeze
        features = tinycnn.cat([seq.reshape(seq.shape[0], -1), channel_mean + corner / 2], dim=1)
        return self.head(features) * self.scale


@needs_onnxruntime
def test_layers_and_operations_beyond_the_zoo(tmp_path):
    tinycnn.manual_seed(3)
    model = calibrate_batch_norm(Everything(), (3, 17, 15))
    assert_exports_faithfully(model, (3, 17, 15), tmp_path)


class TanhGate(nn.Module):
    """A hand-made layer whose operation (tanh) has no ONNX translation in tinycnn."""

    def forward(self, x):
        return x * tinycnn.functional.math.tanh(x)


@needs_onnx
def test_an_unsupported_module_is_named_in_the_error(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), TanhGate(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    with pytest.raises(OnnxExportError, match=r"module '1' \(TanhGate\) computes Tanh, which has no ONNX translation"):
        export_onnx(model, tmp_path / "swish.onnx", (1, 8, 8))
    assert not (tmp_path / "swish.onnx").exists()
    assert all("forward" not in vars(m) for m in model.modules())  # cleaned up after the error too


@needs_onnx
def test_unexportable_settings_are_refused_clearly(tmp_path):
    no_stats = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(OnnxExportError, match="track_running_stats=False"):
        export_onnx(no_stats, tmp_path / "a.onnx", (1, 8, 8))
    with pytest.raises(ValueError, match="opset must be between 13"):
        export_onnx(nn.ReLU(), tmp_path / "b.onnx", (1, 8, 8), opset=9)
    with pytest.raises(ValueError, match=r"input_shape should be \(N, C, H, W\) or \(C, H, W\)"):
        export_onnx(nn.ReLU(), tmp_path / "c.onnx", (8, 8))


def test_export_says_how_to_install_onnx_when_it_is_missing(tmp_path, without_onnx):
    with pytest.raises(ImportError, match=r"pip install 'tinycnn\[onnx\]'"):
        export_onnx(nn.ReLU(), tmp_path / "x.onnx", (1, 4, 4))


@needs_onnxruntime
@pytest.mark.parametrize("opset", [13, 18])
def test_other_opsets(opset, tmp_path):
    tinycnn.manual_seed(0)
    model = calibrate_batch_norm(Everything(), (3, 17, 15))
    path = export_onnx(model, tmp_path / "m.onnx", (3, 17, 15), opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    x = np.random.default_rng(0).standard_normal((2, 3, 17, 15)).astype(np.float32)
    assert_close(run_onnx(path, x), tinycnn_logits(model, x))


@needs_onnxruntime
def test_normalisation_and_metadata_can_travel_in_the_file(tmp_path):
    from tinycnn.data.transforms import Normalize

    tinycnn.manual_seed(0)
    model = calibrate_batch_norm(get_model("small_cnn", num_classes=3), (3, 32, 32))
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
    path = export_onnx(model, tmp_path / "n.onnx", (3, 32, 32), normalize=(mean, std),
                       metadata={"classes": '["circle", "square", "triangle"]'})
    images = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)  # pixels / 255
    assert_close(run_onnx(path, images), tinycnn_logits(model, Normalize(mean, std)(images)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["classes"] == '["circle", "square", "triangle"]'
    with pytest.raises(ValueError, match="normalize needs 1 or 3 values"):
        export_onnx(model, tmp_path / "bad.onnx", (3, 32, 32), normalize=((0.5, 0.5), (1, 1)))


class Indexed(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.index = index
        self.conv = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        return self.conv(x)[self.index]


@needs_onnxruntime
@pytest.mark.parametrize("index", [
    (slice(None), slice(None), slice(None, None, -1)),           # flip: negative step to the start
    (Ellipsis, slice(1, -1)),                                    # ... and negative ends
    (slice(None), -1, slice(None, None, -2), 0),                 # ints squeeze their axes
    (slice(None), slice(3, 0, -1)),
    slice(None, 1),                                              # the batch axis: still dynamic
], ids=["flip", "ellipsis", "ints", "backwards", "batch"])
def test_indexing_exports_as_numpy_indexes(index, tmp_path):
    assert_exports_faithfully(Indexed(index), (2, 5, 6), tmp_path)


@needs_onnxruntime
@pytest.mark.parametrize("opset", [13, 17])
def test_architecture_layers_export(tmp_path, opset):
    """The layers of MobileNet, EfficientNet, GoogLeNet and SqueezeNet: ReLU6, Hardtanh, Hardswish,
    Hardsigmoid, SiLU, squeeze-and-excitation, a depthwise convolution, stochastic depth (eval: no
    node), ceil-mode max pooling, uneven adaptive pooling."""
    tinycnn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(inplace=True), nn.Hardswish(),
        nn.SqueezeExcitation(8, 2, scale_activation=nn.Hardsigmoid), nn.Hardtanh(-0.5, 0.5), nn.SiLU(),
        nn.Conv2d(8, 8, 3, groups=8, padding=1), nn.StochasticDepth(0.2, "row"), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.SqueezeExcitation(8, 4, activation=nn.SiLU), nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten(),
    )
    model.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, (3, 9, 9), opset=opset)
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert_close(got, model(tinycnn.tensor(x)).numpy())


@needs_onnx
def test_ceil_mode_pool_whose_last_window_starts_in_the_padding_is_refused(tmp_path):
    with pytest.raises(OnnxExportError, match="ceil_mode MaxPool2d whose last window would start in the padding"):
        export_onnx(nn.Sequential(nn.MaxPool2d(2, 3, 1, ceil_mode=True)), tmp_path / "m.onnx", (1, 4, 4))
