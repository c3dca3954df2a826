"""RMSprop, Adagrad and Adadelta: each step against the update rule in PyTorch's docs,
computed here by hand in NumPy (float64), for three steps with changing gradients.

Where PyTorch is installed (never a dependency), the same steps also run on torch.optim.
"""

import numpy as np
import pytest

import tinycnn
from tinycnn import nn, optim

P0 = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]])
GRADS = [np.array([[0.1, -0.2, 0.3], [1.0, 0.0, -0.5]]) * (k + 1) ** 0.5 * (-1) ** k for k in range(3)]


def tinycnn_steps(make):
    param = nn.Parameter(tinycnn.tensor(P0, dtype=np.float64))
    optimizer = make([param])
    seen = []
    for grad in GRADS:
        param.grad = tinycnn.tensor(grad, dtype=np.float64)
        optimizer.step()
        seen.append(param.numpy().copy())
    return seen, optimizer


def rmsprop_by_hand(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p, v, g_avg, buf, out = P0.copy(), np.zeros_like(P0), np.zeros_like(P0), np.zeros_like(P0), []
    for g in GRADS:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            denom = np.sqrt(v - g_avg * g_avg) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
        out.append(p)
    return out


def adagrad_by_hand(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    p, total, out = P0.copy(), np.full_like(P0, initial_accumulator_value), []
    for t, g in enumerate(GRADS, start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        g = g + weight_decay * p
        total = total + g * g
        p = p - clr * g / (np.sqrt(total) + eps)
        out.append(p)
    return out


def adadelta_by_hand(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    p, v, u, out = P0.copy(), np.zeros_like(P0), np.zeros_like(P0), []
    for g in GRADS:
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
        out.append(p)
    return out


CASES = [
    ("RMSprop", {}, rmsprop_by_hand),
    ("RMSprop", dict(lr=0.05, alpha=0.9, weight_decay=0.1, momentum=0.8, centered=True), rmsprop_by_hand),
    ("RMSprop", dict(momentum=0.5), rmsprop_by_hand),
    ("Adagrad", {}, adagrad_by_hand),
    ("Adagrad", dict(lr=0.1, lr_decay=0.5, weight_decay=0.2, initial_accumulator_value=0.3), adagrad_by_hand),
    ("Adadelta", {}, adadelta_by_hand),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-3, weight_decay=0.1), adadelta_by_hand),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items()) or 'defaults'}" for name, kwargs, _ in CASES]


@pytest.mark.parametrize("name, kwargs, by_hand", CASES, ids=IDS)
def test_steps_follow_pytorchs_update_rule(name, kwargs, by_hand):
    seen, _ = tinycnn_steps(lambda params: getattr(optim, name)(params, **kwargs))
    for step, (got, expected) in enumerate(zip(seen, by_hand(**kwargs)), start=1):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=f"{name} step {step}")


@pytest.mark.parametrize("name, kwargs, by_hand", CASES, ids=IDS)
def test_steps_equal_torch_optim(name, kwargs, by_hand):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (it is never a dependency of tinycnn)")
    param = torch.nn.Parameter(torch.tensor(P0))
    optimizer = getattr(torch.optim, name)([param], **kwargs)
    seen, _ = tinycnn_steps(lambda params: getattr(optim, name)(params, **kwargs))
    for step, grad in enumerate(GRADS):
        param.grad = torch.tensor(grad)
        optimizer.step()
        np.testing.assert_allclose(seen[step], param.detach().numpy(), rtol=1e-10, atol=1e-14)


def test_pytorchs_defaults():
    param = [nn.Parameter(tinycnn.zeros(2))]
    assert {k: optim.RMSprop(param).defaults[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")} \
        == dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)
    assert optim.Adagrad(param).defaults == dict(lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                                                 eps=1e-10)
    assert optim.Adadelta(param).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0)


@pytest.mark.parametrize("name, kwargs, by_hand", CASES[1:2] + CASES[4:5] + CASES[5:6], ids=IDS[1:2] + IDS[4:5] + IDS[5:6])
def test_state_dict_resumes_the_same_steps(name, kwargs, by_hand):
    make = lambda params: getattr(optim, name)(params, **kwargs)  # noqa: E731
    _, optimizer = tinycnn_steps(make)
    param = nn.Parameter(tinycnn.tensor(P0, dtype=np.float64))
    resumed = make([param])
    resumed.load_state_dict(optimizer.state_dict())
    assert set(resumed.state[param]) == set(optimizer.state[optimizer.param_groups[0]["params"][0]])
    assert resumed.state[param]["step"] == 3


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.RMSprop(p, lr=-1), "RMSprop: invalid lr -1"),
    (lambda p: optim.RMSprop(p, alpha=1.5), r"RMSprop: invalid alpha 1.5 \(expected a number in \[0, 1\]\)"),
    (lambda p: optim.Adagrad(p, eps=-1e-3), "Adagrad: invalid eps"),
    (lambda p: optim.Adadelta(p, rho=2), "Adadelta: invalid rho 2"),
])
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(tinycnn.zeros(2))])


@pytest.mark.parametrize("floor", [tinycnn.reference_floor, tinycnn.fast_floor], ids=["reference", "fast"])
@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adadelta"])
def test_each_trains_a_small_model(name, floor):
    tinycnn.manual_seed(0)
    x = tinycnn.randn(64, 4)
    y = (x.numpy()[:, 0] > 0).astype(np.int64)
    with floor():
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        optimizer = getattr(optim, name)(model.parameters(), **({"lr": 0.1} if name == "Adagrad" else {}))
        losses = []
        for _ in range(30):
            loss = nn.CrossEntropyLoss()(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
