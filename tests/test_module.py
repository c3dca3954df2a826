"""Module machinery: registration, state_dict, load_state_dict, to/double, train/eval, repr.

None of these tests runs a forward pass, so they need no functional ops.
"""

from collections import OrderedDict

import numpy as np
import pytest

import tinycnn
from tinycnn import nn, optim


class Net(nn.Module):
    """A nested tree with every kind of entry: Sequential children, a buffer-only
    BatchNorm, a bias-less Linear, a ModuleList and a custom buffer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.bn = nn.BatchNorm1d(16, affine=False)
        self.heads = nn.ModuleList([nn.Linear(16, 3), nn.Linear(16, 2, bias=False)])
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("steps", tinycnn.zeros(2))
        self.note = "a plain attribute"


# What torch.nn would name the same tree (checked by hand against PyTorch 2.13).
EXPECTED_STATE = [
    ("scale", (3,)),
    ("steps", (2,)),
    ("features.0.weight", (4, 1, 3, 3)),
    ("features.0.bias", (4,)),
    ("features.1.weight", (4,)),
    ("features.1.bias", (4,)),
    ("features.1.running_mean", (4,)),
    ("features.1.running_var", (4,)),
    ("features.1.num_batches_tracked", ()),
    ("bn.running_mean", (16,)),
    ("bn.running_var", (16,)),
    ("bn.num_batches_tracked", ()),
    ("heads.0.weight", (3, 16)),
    ("heads.0.bias", (3,)),
    ("heads.1.weight", (2, 16)),
]


# --------------------------------------------------------------------------- registration
def test_attributes_register_parameters_modules_and_buffers():
    net = Net()
    assert list(net._parameters) == ["scale"]
    assert list(net._modules) == ["features", "bn", "heads"]
    assert list(net._buffers) == ["steps"]
    assert "note" not in net._parameters and net.note == "a plain attribute"
    assert isinstance(net.scale, nn.Parameter) and net.scale.requires_grad
    assert net.features[0].bias is not None and net.heads[1].bias is None


def test_named_parameters_in_order_and_shared_ones_once():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                     "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert len(list(net.parameters())) == 8
    assert [name for name, _ in net.named_buffers()] == [
        "steps", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
    ]
    shared = nn.Linear(2, 2)
    tied = nn.Sequential(shared, shared)
    assert len(list(tied.parameters())) == 2
    assert [name for name, _ in tied.named_modules()] == ["", "0"]


def test_children_and_modules():
    net = Net()
    assert [name for name, _ in net.named_children()] == ["features", "bn", "heads"]
    assert len(list(net.modules())) == 1 + 1 + 4 + 1 + 1 + 2
    assert [type(m).__name__ for m in net.features.children()] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_assignment_rules():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        layer.weight = tinycnn.zeros(3, 2)
    layer.bias = None  # allowed: the slot stays, empty
    assert "bias" in layer._parameters and layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    del layer.weight
    assert "weight" not in layer._parameters


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\) first in Broken"):
        Broken()


def test_parameter_keeps_dtype_and_requires_grad():
    p = nn.Parameter(np.zeros(3, dtype=np.float64))
    assert p.dtype == np.float64 and p.requires_grad and p.is_leaf
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert repr(nn.Parameter([1.0])).startswith("Parameter containing:\ntensor(")


def test_register_buffer_checks():
    module = nn.Module()
    with pytest.raises(TypeError, match="expected a Tensor or None"):
        module.register_buffer("x", np.zeros(2))
    with pytest.raises(KeyError, match="without '.'"):
        module.register_buffer("a.b", tinycnn.zeros(2))
    module.register_buffer("hidden", tinycnn.zeros(2), persistent=False)
    assert "hidden" not in module.state_dict() and len(list(module.buffers())) == 1


# --------------------------------------------------------------------------- state_dict
def test_state_dict_keys_and_shapes_match_pytorch_naming():
    state = Net().state_dict()
    assert isinstance(state, OrderedDict)
    assert [(key, value.shape) for key, value in state.items()] == EXPECTED_STATE
    assert all(isinstance(value, np.ndarray) for value in state.values())
    assert state["features.1.num_batches_tracked"].dtype == np.int64
    assert state["features.0.weight"].dtype == np.float32


def test_state_dict_is_a_copy():
    net = Net()
    state = net.state_dict()
    state["scale"][...] = 7
    assert np.all(net.scale.numpy() == 1)


def test_load_state_dict_round_trip_in_place():
    tinycnn.manual_seed(1)
    source = Net()
    tinycnn.manual_seed(2)
    target = Net()
    weight_array = target.features[0].weight.data
    assert not np.array_equal(weight_array, source.features[0].weight.data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)
    assert target.features[0].weight.data is weight_array  # copied into, not replaced


def test_load_state_dict_accepts_tensors():
    source, target = Net(), Net()
    target.load_state_dict({key: tinycnn.tensor(value) for key, value in source.state_dict().items()})
    np.testing.assert_array_equal(target.heads[0].weight.numpy(), source.heads[0].weight.numpy())


def test_load_state_dict_keeps_the_model_dtype():
    net = Net()
    state = {key: value.astype(np.float64) if value.dtype.kind == "f" else value for key, value in Net().state_dict().items()}
    state["scale"] = np.array([0.5, 0.25, 0.125])
    net.load_state_dict(state)
    assert net.scale.dtype == np.float32 and net.scale.tolist() == [0.5, 0.25, 0.125]
    assert net.features[1].num_batches_tracked.dtype == np.int64


def test_missing_keys_are_listed():
    state = Net().state_dict()
    del state["heads.0.bias"], state["steps"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "steps", "heads.0.bias"\.'):
        Net().load_state_dict(state)


def test_unexpected_keys_are_listed():
    state = Net().state_dict()
    state["heads.2.weight"] = np.zeros((2, 16), np.float32)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "heads.2.weight"\.'):
        Net().load_state_dict(state)


def test_shape_mismatch_is_explained_and_nothing_is_copied():
    net = Net()
    before = net.state_dict()
    state = Net().state_dict()
    state["heads.0.weight"] = np.zeros((4, 16), np.float32)
    with pytest.raises(RuntimeError, match=r"heads.0.weight: checkpoint has shape \(4, 16\), the model has \(3, 16\)"):
        net.load_state_dict(state)
    with pytest.raises(RuntimeError, match="Size mismatch"):
        net.load_state_dict(state, strict=False)  # a wrong shape is never acceptable
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_non_strict_reports_missing_and_unexpected():
    state = Net().state_dict()
    del state["scale"]
    state["extra"] = np.zeros(1)
    result = Net().load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["extra"]


def test_num_batches_tracked_may_be_absent():
    net = Net()
    state = {key: value for key, value in Net().state_dict().items() if not key.endswith("num_batches_tracked")}
    result = net.load_state_dict(state)
    assert result.missing_keys == []
    assert int(net.features[1].num_batches_tracked.item()) == 0


def test_batchnorm_without_running_stats_saves_only_affine():
    bn = nn.BatchNorm2d(3, track_running_stats=False)
    assert list(bn.state_dict()) == ["weight", "bias"]
    assert bn.running_mean is None


# --------------------------------------------------------------------------- to / double
def test_double_converts_in_place_and_keeps_integer_buffers():
    net = Net()
    params = list(net.parameters())
    net.scale.grad = tinycnn.ones(3)
    assert net.double() is net
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # the same Parameters
    assert net.scale.grad.dtype == np.float64
    assert net.features[1].running_var.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    assert all(value.dtype == np.float64 for key, value in net.state_dict().items() if "num_batches" not in key)
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())


def test_to_accepts_dtype_first_and_device_names():
    net = nn.Linear(2, 2)
    net.to(tinycnn.float64)
    assert net.weight.dtype == np.float64
    net.to("cpu", dtype="float32")
    assert net.weight.dtype == np.float32 and net.weight.device == "cpu"
    with pytest.raises(TypeError, match="floating-point"):
        net.to(dtype=np.int32)
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_optimizer_built_before_double_still_updates_the_model():
    net = nn.Linear(2, 1)
    optimizer = optim.SGD(net.parameters(), lr=1.0)
    net.double()
    net.weight.grad = tinycnn.ones(1, 2, dtype=np.float64)
    before = net.weight.numpy().copy()
    optimizer.step()
    np.testing.assert_allclose(net.weight.numpy(), before - 1.0)


# --------------------------------------------------------------------------- modes, grads
def test_train_and_eval_reach_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.features.train(False)
    assert net.training and not net.features[1].training


def test_zero_grad_and_requires_grad():
    net = Net()
    for p in net.parameters():
        p.grad = tinycnn.ones(*p.shape)
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_default_init_matches_pytorch_rules():
    tinycnn.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    bound = 1 / np.sqrt(8 * 3 * 3)  # kaiming_uniform_(a=sqrt(5)) and the bias rule give the same bound
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.weight.numpy()).max() > 0.9 * bound
    assert np.abs(conv.bias.numpy()).max() <= bound
    linear = nn.Linear(50, 10)
    assert np.abs(linear.weight.numpy()).max() <= 1 / np.sqrt(50)
    bn = nn.BatchNorm2d(5)
    assert bn.weight.tolist() == [1.0] * 5 and bn.bias.tolist() == [0.0] * 5
    assert bn.running_var.tolist() == [1.0] * 5
    tinycnn.manual_seed(0)
    np.testing.assert_array_equal(nn.Conv2d(8, 16, 3).weight.numpy(), conv.weight.numpy())


def test_layer_argument_checks():
    with pytest.raises(ValueError, match=r"in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="expected 4-D input"):
        nn.BatchNorm2d(3)(tinycnn.zeros(2, 3))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm1d(3)(tinycnn.zeros(2, 4))


# --------------------------------------------------------------------------- containers
def test_sequential_indexing_len_iteration_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and seq[1] is list(seq)[1]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Flatten())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"] and len(seq) == 4
    with pytest.raises(IndexError, match="index 4 is out of range for a Sequential of length 4"):
        seq[4]
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    with pytest.raises(TypeError, match="holds Modules"):
        nn.Sequential(nn.ReLU(), "relu")


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers.insert(0, nn.Linear(1, 1))
    del layers[1]
    assert [type(m).__name__ for m in layers] == ["Linear", "Linear", "Linear", "ReLU"]
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]


# --------------------------------------------------------------------------- repr
def test_repr_shows_the_tree_like_pytorch():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "    (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "    (2): ReLU()\n"
        "    (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  )\n"
        "  (bn): BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=False, track_running_stats=True)\n"
        "  (heads): ModuleList(\n"
        "    (0): Linear(in_features=16, out_features=3, bias=True)\n"
        "    (1): Linear(in_features=16, out_features=2, bias=False)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Conv2d(4, 4, 3, stride=2, groups=2, bias=False)) == (
        "Conv2d(4, 4, kernel_size=(3, 3), stride=(2, 2), groups=2, bias=False)"
    )
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25, inplace=False)"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"


def test_sequential_delete_renumbers_and_extend():
    seq = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2))
    del seq[1]
    assert list(seq._modules) == ["0", "1"] and list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    seq.extend([nn.ReLU(), nn.Linear(2, 2)])
    assert list(seq._modules) == ["0", "1", "2", "3"]


def test_deepcopy_and_apply():
    import copy

    net = Net()
    clone = copy.deepcopy(net)
    assert clone.features[0].weight is not net.features[0].weight
    np.testing.assert_array_equal(clone.features[0].weight.numpy(), net.features[0].weight.numpy())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 2


def test_replacing_a_child_keeps_its_place():
    # model.fc = nn.Linear(...) (fine-tuning) or seq[1] = ... must not move the layer to the end:
    # a Sequential runs its children in order, and state_dict keys follow the same order
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    seq[1] = nn.Tanh()
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear"]
    seq[0] = nn.Linear(4, 3)
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = tinycnn.randn(5, 4)
    assert seq(x).shape == (5, 2)
