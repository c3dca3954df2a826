"""The PyTorch names a learner types first: import paths, devices, the tensor surface,
losses, layers (each new op gradchecked in float64 on both floors) and map-style data.

The optimizers (RMSprop, Adagrad, Adadelta) are in tests/test_optim_adaptive.py; whole
PyTorch-style scripts in tests/test_pytorch_style.py.
"""

import numpy as np
import pytest

import tinycnn
import tinycnn.nn as nn
import tinycnn.nn.functional as F
from tinycnn.utils.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split

FLOORS = [pytest.param(tinycnn.reference_floor, id="reference"), pytest.param(tinycnn.fast_floor, id="fast")]


def t64(array, grad=True):
    return tinycnn.tensor(np.asarray(array, dtype=np.float64), dtype=np.float64, requires_grad=grad)


# --------------------------------------------------------------------------- import paths, devices
def test_pytorch_import_paths():
    import tinycnn.nn.functional
    import tinycnn.utils.data
    from tinycnn.optim.lr_scheduler import StepLR  # noqa: F401

    assert F is tinycnn.functional and tinycnn.nn.functional is tinycnn.functional
    assert tinycnn.utils.data.DataLoader is tinycnn.data.DataLoader
    assert isinstance(tinycnn.cuda.is_available(), bool) and tinycnn.cuda.device_count() >= 0


def test_device_is_the_canonical_string():
    cpu, gpu = tinycnn.device("cpu"), tinycnn.device("cuda")
    assert cpu == "cpu" and cpu.type == "cpu" and cpu.index is None
    assert gpu == "cuda:0" and gpu.type == "cuda" and gpu.index == 0
    assert tinycnn.device("cuda", 1) == tinycnn.device("cuda:1") == "cuda:1"
    assert repr(tinycnn.device("cuda:1")) == "device(type='cuda', index=1)"
    with pytest.raises(ValueError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
        tinycnn.device("tpu")
    model = nn.Linear(2, 3).to(cpu)
    x = tinycnn.zeros(4, 2, device=cpu).to(cpu)
    assert model(x).device == "cpu" and x.to(tinycnn.float64).dtype == np.float64


# --------------------------------------------------------------------------- tensor surface
def test_max_and_min_with_dim_give_values_and_indices():
    x = tinycnn.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] and indices.dtype == np.int64
    assert tinycnn.max(x, 1).indices.tolist() == [1, 0]
    assert tinycnn.max(x.data, 1).values.tolist() == [5.0, 7.0]          # outputs.data is the raw array
    assert x.min(dim=0, keepdim=True).values.shape == (1, 3)
    assert tinycnn.min(x, 1).indices.tolist() == [0, 1]
    assert x.max().item() == 7.0 and x.max(axis=1).tolist() == [5.0, 7.0]  # NumPy's form: values only
    assert tinycnn.max(x, tinycnn.full((2, 3), 4.0)).tolist() == [[4, 5, 4], [7, 4, 4]]
    values.sum().backward()
    assert x.grad.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_reductions_and_functions_take_pytorch_arguments():
    x = tinycnn.arange(24).float().view(2, 3, 4)
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1, 4) and tinycnn.argmax(x).item() == 23
    assert tinycnn.sum(x, 2).shape == (2, 3) and x.sum(dim=1, keepdim=True).shape == (2, 1, 4)
    assert x.mean(dim=(1, 2)).tolist() == [5.5, 17.5]
    assert tinycnn.flatten(x, 1).shape == (2, 12) and tinycnn.numel(x) == 24
    assert np.allclose(tinycnn.log(tinycnn.exp(x)).numpy(), x.numpy(), atol=1e-4)
    assert np.allclose(tinycnn.softmax(x, dim=2).sum(dim=2).numpy(), 1)
    assert tinycnn.cat((x, x), 1).shape == (2, 6, 4) and tinycnn.stack([x, x], dim=0).shape == (2, 2, 3, 4)


def test_constructors_have_pytorch_signatures():
    assert tinycnn.randn(2, 3).shape == (2, 3) and tinycnn.rand((4,)).shape == (4,)
    assert tinycnn.zeros(2, 3).dtype == np.float32 and tinycnn.ones((2,), dtype=tinycnn.long).dtype == np.int64
    high_only = tinycnn.randint(3, (50,))
    assert high_only.shape == (50,) and 0 <= high_only.numpy().min() and high_only.numpy().max() <= 2
    assert 5 <= tinycnn.randint(5, 8, (2, 2)).numpy().min() and tinycnn.randint(0, 2, size=(3,)).shape == (3,)
    g1, g2 = tinycnn.Generator().manual_seed(3), tinycnn.Generator().manual_seed(3)
    assert tinycnn.randn(5, generator=g1).tolist() == tinycnn.randn(5, generator=g2).tolist()
    with pytest.raises(TypeError, match=r"expected \(high, size\) or \(low, high, size\)"):
        tinycnn.randint(3)


def test_from_numpy_shares_memory_and_as_tensor_keeps_dtype():
    array = np.zeros(3)
    shared = tinycnn.from_numpy(array)
    array[0] = 5
    assert shared.dtype == np.float64 and shared.tolist() == [5, 0, 0]
    assert tinycnn.as_tensor(array) is not None and tinycnn.as_tensor(array).data is array
    assert tinycnn.as_tensor([1.0, 2.0]).dtype == np.float32
    assert tinycnn.as_tensor(array, dtype=tinycnn.float32).dtype == np.float32
    with pytest.raises(TypeError, match="expected a numpy.ndarray"):
        tinycnn.from_numpy([1, 2])


def test_tensor_methods_of_the_first_tutorials():
    pred = tinycnn.tensor([[2], [0], [1]])
    target = tinycnn.tensor([2, 1, 1])
    assert pred.eq(target.view_as(pred)).sum().item() == 2
    assert (pred.view(-1) == target).tolist() == [True, False, True]
    assert pred.ne(0).tolist() == [[True], [False], [True]] and target.lt(2).sum().item() == 2
    assert target.le(1).tolist() == [False, True, True] and target.gt(1).tolist() == [True, False, False]
    assert target.ge(2).tolist() == [True, False, False]
    assert pred.size(0) == 3 and pred.size() == (3, 1) and pred.numel() == 3
    assert target.float().dtype == np.float32 and target.long().dtype == np.int64 and target.int().dtype == np.int32
    classes = ("a", "b", "c")
    assert [classes[label] for label in target] == ["c", "b", "b"]      # a one-element integer tensor is an index
    assert int(target[0]) == 2 and float(target[1]) == 1.0
    assert (target % 2).tolist() == [0, 1, 1] and (target // 2).tolist() == [1, 0, 0]
    assert ((target > 1) | (target < 2)).sum().item() == 3 and (~(target > 1)).tolist() == [False, True, True]
    x = tinycnn.randn(2, 3, requires_grad=True)
    assert x.contiguous() is x and x.clone().grad_fn is not None
    with pytest.raises(RuntimeError, match="'%' has no gradient"):
        x % 2
    with pytest.raises(TypeError, match="only integer tensors"):
        ("a", "b")[tinycnn.tensor(1.0)]


# --------------------------------------------------------------------------- losses
def log_probs_and_target(n=5, c=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c))
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return log_p, rng.integers(0, c, n)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_is_minus_the_target_log_probability(reduction):
    log_p, target = log_probs_and_target()
    per_sample = -log_p[np.arange(5), target]
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    got = F.nll_loss(t64(log_p), tinycnn.tensor(target), reduction=reduction)
    assert np.allclose(got.numpy(), expected)
    logits = t64(np.random.default_rng(1).standard_normal((5, 4)))
    assert np.isclose(F.nll_loss(F.log_softmax(logits, 1), target).item(), F.cross_entropy(logits, target).item())
    assert np.allclose(nn.NLLLoss(reduction=reduction)(t64(log_p), target).numpy(), expected)


def test_nll_loss_refuses_bad_targets():
    log_p, _ = log_probs_and_target()
    with pytest.raises(ValueError, match="nll_loss: target 4 is out of range for 4 classes"):
        F.nll_loss(t64(log_p), np.array([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"nll_loss: target should have shape \(5,\)"):
        F.nll_loss(t64(log_p), np.array([0, 1]))


def test_regression_and_binary_losses_match_their_formulas():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert np.isclose(F.mse_loss(t64(a), t64(b)).item(), ((a - b) ** 2).mean())
    assert np.isclose(nn.L1Loss(reduction="sum")(t64(a), t64(b)).item(), np.abs(a - b).sum())
    assert nn.MSELoss(reduction="none")(t64(a), t64(b)).shape == (4, 3)
    p, t = 1 / (1 + np.exp(-a)), (b > 0).astype(np.float64)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert np.isclose(F.binary_cross_entropy(t64(p), t64(t)).item(), bce.mean())
    assert np.isclose(nn.BCELoss()(t64(p), t).item(), bce.mean())
    assert np.isclose(F.binary_cross_entropy_with_logits(t64(a), t).item(), bce.mean())
    weighted = -(2.5 * t * np.log(p) + (1 - t) * np.log(1 - p))
    assert np.isclose(nn.BCEWithLogitsLoss(pos_weight=2.5)(t64(a), t).item(), weighted.mean())
    with pytest.raises(ValueError, match=r"mse_loss: input and target need the same shape, got \(4, 3\) and \(4,\)"):
        F.mse_loss(t64(a), t64(a[:, 0]))
    with pytest.raises(ValueError, match="must be probabilities in"):
        F.binary_cross_entropy(t64(a), t)


def test_binary_cross_entropy_with_logits_is_stable():
    x = t64([-1000.0, 1000.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 1.0]), reduction="none")
    assert np.allclose(loss.numpy(), [1000.0, 1000.0, np.log(2)])
    loss.sum().backward()
    assert np.allclose(x.grad.numpy(), [-1.0, 1.0, -0.5])
    clamped = F.binary_cross_entropy(t64([0.0, 1.0]), np.array([1.0, 0.0]), reduction="none")
    assert clamped.tolist() == [100.0, 100.0]                           # log clamped at -100, as PyTorch


@pytest.mark.parametrize("floor", FLOORS)
def test_new_ops_gradcheck(floor):
    rng = np.random.default_rng(0)
    log_p, target = log_probs_and_target()
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    p, t = 1 / (1 + np.exp(-a)), rng.random((3, 4))
    with floor():
        for reduction in ("mean", "sum", "none"):
            tinycnn.gradcheck(lambda x: F.nll_loss(x, target, reduction=reduction), [t64(log_p)])
            tinycnn.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [t64(a), t64(b)])
            tinycnn.gradcheck(lambda x, y: F.l1_loss(x, y, reduction=reduction), [t64(a), t64(b)])
            tinycnn.gradcheck(lambda x: F.binary_cross_entropy(x, t, reduction=reduction), [t64(p)])
            tinycnn.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t, reduction=reduction), [t64(a)])
        tinycnn.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, t, pos_weight=np.array([1, 2, 3, 4.0])),
                          [t64(a)])
        tinycnn.gradcheck(lambda x: tinycnn.max(x, 1).values * 1.0 + tinycnn.min(x, 0).values.sum(), [t64(a)])

        def dropped(x):
            tinycnn.manual_seed(7)          # the same channel mask at every evaluation
            return F.dropout2d(x, 0.5)
        tinycnn.gradcheck(dropped, [t64(rng.standard_normal((2, 6, 3, 3)))])
        for module in (nn.Softmax(dim=1), nn.LogSoftmax(dim=0), nn.Sigmoid(), nn.Tanh(), nn.Identity()):
            tinycnn.gradcheck(module, [t64(a)])


def test_one_hot():
    assert F.one_hot(tinycnn.tensor([0, 2, 1])).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert F.one_hot(tinycnn.tensor([[1], [0]]), num_classes=4).shape == (2, 1, 4)
    assert F.one_hot(tinycnn.tensor([1])).dtype == np.int64
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 1\] for 2 classes"):
        F.one_hot(tinycnn.tensor([2]), num_classes=2)


# --------------------------------------------------------------------------- layers
def test_dropout2d_zeroes_whole_channels():
    tinycnn.manual_seed(0)
    layer = nn.Dropout2d(0.5)
    x = tinycnn.ones(8, 16, 4, 4)
    out = layer(x).numpy()
    per_channel = out.reshape(8, 16, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()   # each channel all kept or all dropped
    assert 0.2 < (per_channel[:, :, 0] == 0).mean() < 0.8
    assert layer.eval()(x) is x
    with pytest.raises(ValueError, match=r"expected \(N, C, H, W\) or \(C, H, W\)"):
        F.dropout2d(tinycnn.ones(3, 4), 0.5)


def test_activation_modules_and_containers():
    x = tinycnn.randn(2, 5)
    assert np.allclose(nn.Softmax(dim=1)(x).numpy(), F.softmax(x, 1).numpy())
    assert np.allclose(nn.LogSoftmax(dim=1)(x).numpy(), F.log_softmax(x, 1).numpy())
    assert np.allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())), atol=1e-6)
    assert np.allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()), atol=1e-6)
    assert nn.Identity(54, unused="x")(x) is x
    with pytest.raises(TypeError, match=r"give the dimension to normalise over, e.g. Softmax\(dim=1\)"):
        nn.Softmax()
    heads = nn.ModuleDict({"a": nn.Linear(5, 2), "b": nn.Linear(5, 3)})
    heads["c"] = nn.Identity()
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert heads["b"](x).shape == (2, 3) and len(list(heads.parameters())) == 4
    assert heads.pop("c") is not None and list(heads.keys()) == ["a", "b"]
    with pytest.raises(KeyError, match=r"ModuleDict has no module 'z'; it holds \['a', 'b'\]"):
        heads["z"]


# --------------------------------------------------------------------------- map-style data
class Squares(Dataset):
    """Sample i: (array [i, i], i * i as a Python int)."""

    def __init__(self, n):
        self.n = n
        self.calls = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return np.array([i, i], dtype=np.float32), i * i


def test_per_item_loader_stacks_samples():
    data = Squares(10)
    loader = DataLoader(data, batch_size=4)
    batches = list(loader)
    assert not loader.whole_set and len(loader) == 3 and len(loader.dataset) == 10 and data.calls == 10
    x, y = batches[0]
    assert x.shape == (4, 2) and x.dtype == np.float32 and y.tolist() == [0, 1, 4, 9] and y.dtype == np.int64
    assert batches[-1][0].shape == (2, 2)
    assert len(list(DataLoader(data, batch_size=4, drop_last=True))) == 2


def test_per_item_loader_shuffles_by_its_generator():
    def order(seed):
        loader = DataLoader(Squares(12), batch_size=5, shuffle=True, generator=tinycnn.Generator().manual_seed(seed))
        return [list(np.concatenate([x.numpy()[:, 0] for x, _ in loader]).astype(int)) for _ in range(2)]
    first, second = order(0)
    assert sorted(first) == list(range(12)) and first != list(range(12)) and first != second   # a new order each epoch
    assert order(0) == [first, second] and order(1) != [first, second]


def test_collate_fn_and_default_collate():
    pairs = [(np.ones((2, 2)), 1.5, "a", {"k": 1}), (np.zeros((2, 2)), 2.5, "b", {"k": 2})]
    x, f, s, d = default_collate(pairs)
    assert x.shape == (2, 2, 2) and x.dtype == np.float64 and f.dtype == np.float32 and s == ["a", "b"]
    assert d["k"].tolist() == [1, 2]
    loader = DataLoader(Squares(6), batch_size=3, collate_fn=lambda samples: [i for _, i in samples])
    assert list(loader) == [[0, 1, 4], [9, 16, 25]]
    with pytest.raises(ValueError, match="cannot stack samples of different shapes"):
        default_collate([np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match="pass collate_fn= to batch other types"):
        default_collate([object()])


def test_which_path_a_data_set_takes():
    images = np.arange(6 * 4, dtype=np.uint8).reshape(6, 1, 2, 2)
    built_in = tinycnn.data.ImageDataset(images, np.arange(6) % 3)
    assert DataLoader(built_in, batch_size=4).whole_set

    class Flipped(tinycnn.data.ImageDataset):     # an own __getitem__: must be called, so per item
        def __getitem__(self, i):
            return self.images[i][:, ::-1].copy(), int(self.labels[i])

    flipped = DataLoader(Flipped(images, np.arange(6) % 3), batch_size=4)
    assert not flipped.whole_set and next(iter(flipped))[0].numpy()[0, 0].tolist() == [[2, 3], [0, 1]]
    view = Subset(built_in, [5, 0, 3])           # a view of a built-in set keeps the whole-set path ...
    fast, slow = DataLoader(view, batch_size=2), DataLoader(view, batch_size=2, collate_fn=default_collate)
    assert fast.whole_set and not slow.whole_set
    for (xf, yf), (xs, ys) in zip(fast, slow):   # ... with the same samples
        assert np.allclose(xf.numpy(), xs.numpy() / 255.0) and yf.tolist() == ys.tolist()
    with pytest.raises(ValueError, match="transform= is the whole-set path's batch transform"):
        DataLoader(Squares(4), transform=lambda x: x)
    with pytest.raises(TypeError, match="expected a data set with __getitem__ and __len__"):
        DataLoader(42)


def test_tensor_dataset_and_random_split():
    features, labels = tinycnn.randn(10, 3), tinycnn.arange(10)
    data = TensorDataset(features, labels)
    assert len(data) == 10 and data[4][1].item() == 4 and np.array_equal(data[4][0].numpy(), features.numpy()[4])
    x, y = next(iter(DataLoader(data, batch_size=4)))
    assert x.shape == (4, 3) and y.tolist() == [0, 1, 2, 3]
    a, b = random_split(data, [0.7, 0.3], generator=tinycnn.Generator().manual_seed(1))
    a2, _ = random_split(data, [7, 3], generator=tinycnn.Generator().manual_seed(1))
    assert len(a) == 7 and len(b) == 3 and sorted(a.indices + b.indices) == list(range(10)) and a.indices == a2.indices
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(tinycnn.zeros(3), tinycnn.zeros(4))
    with pytest.raises(ValueError, match="lengths must be non-negative counts summing to len"):
        random_split(data, [3, 3])


# --------------------------------------------------------------------------- save and load
def test_save_and_load_with_pytorch_file_names(tmp_path):
    model = nn.Linear(3, 2)
    tinycnn.save(model.state_dict(), tmp_path / "model.pt")
    state = tinycnn.load(tmp_path / "model.pt", weights_only=True, map_location="cpu")
    assert np.array_equal(state["weight"], model.weight.numpy())
    from pathlib import Path
    fixture = Path(__file__).parent / "fixtures" / "lenet5.pt"          # written by PyTorch itself
    assert list(tinycnn.load(fixture)) == list(tinycnn.models.lenet5().state_dict())


# --------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
def test_new_names_on_a_gpu_equal_the_cpu(cuda_device):
    """Losses, one_hot, the per-item loader and the new optimizers on CuPy (skips without a GPU)."""
    rng = np.random.default_rng(0)
    log_p, target = log_probs_and_target()
    a, t = rng.standard_normal((3, 4)), rng.random((3, 4))
    losses = [lambda x, dev: F.nll_loss(x, tinycnn.tensor(target, device=dev)),
              lambda x, dev: F.binary_cross_entropy_with_logits(x, tinycnn.tensor(t, dtype=np.float64, device=dev)),
              lambda x, dev: F.mse_loss(x, tinycnn.tensor(t, dtype=np.float64, device=dev))]
    for loss, value in zip(losses, [log_p, a, a]):
        results = []
        for dev in ("cpu", cuda_device):
            x = tinycnn.tensor(value, dtype=np.float64, device=dev, requires_grad=True)
            out = loss(x, dev)
            out.backward()
            results.append((out.item(), x.grad.numpy()))
        assert np.isclose(results[0][0], results[1][0]) and np.allclose(results[0][1], results[1][1])
    assert F.one_hot(tinycnn.tensor([0, 2], device=cuda_device)).device == cuda_device
    x, y = next(iter(DataLoader(Squares(6), batch_size=4, device=tinycnn.device("cuda"))))
    assert x.device == y.device == cuda_device and y.tolist() == [0, 1, 4, 9]
    for name in ("RMSprop", "Adagrad", "Adadelta"):
        params = {}
        for dev in ("cpu", cuda_device):
            param = nn.Parameter(tinycnn.tensor(P0_GPU, dtype=np.float64, device=dev))
            optimizer = getattr(tinycnn.optim, name)([param])
            for _ in range(2):
                param.grad = tinycnn.tensor(P0_GPU * 0.1, dtype=np.float64, device=dev)
                optimizer.step()
            params[dev] = param.numpy()
        assert np.allclose(params["cpu"], params[cuda_device], rtol=1e-12)


P0_GPU = np.array([[0.5, -1.0], [2.0, 0.25]])
