"""Optimizers: each step equals the update formula written out in NumPy here.

The reference loops below are PyTorch's documented algorithms, in float64.
"""

import numpy as np
import pytest

import tinycnn
from tinycnn import nn, optim

STEPS = 5


def make_problem(seed=0, shape=(3, 4)):
    """A parameter and a fixed sequence of gradients to feed it."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(STEPS)]
    return start, grads


def run(optimizer_class, start, grads, **settings):
    """Apply ``optimizer_class`` for len(grads) steps; return the parameter values after each."""
    param = nn.Parameter(start.copy())
    optimizer = optimizer_class([param], **settings)
    array = param.data
    history = []
    for grad in grads:
        param.grad = tinycnn.tensor(grad, dtype=np.float64)
        optimizer.step()
        assert param.data is array  # updated in place, never reallocated
        history.append(param.numpy().copy())
    return history


def sgd_reference(start, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    p, buf, history = start.copy(), None, []
    for g in grads:
        g = g + weight_decay * p
        if momentum != 0:
            # first step: the buffer is the gradient itself (no dampening)
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        history.append(p)
    return history


def adam_reference(start, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    p, m, v, history = start.copy(), np.zeros_like(start), np.zeros_like(start), []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(p)
    return history


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
]


@pytest.mark.parametrize("settings", SGD_CASES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_sgd_matches_the_formula(settings):
    start, grads = make_problem()
    for got, expected in zip(run(optim.SGD, start, grads, **settings), sgd_reference(start, grads, **settings)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_sgd_first_momentum_step_is_the_plain_gradient_step():
    start, grads = make_problem()
    [after_one] = run(optim.SGD, start, grads[:1], lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(after_one, start - 0.1 * grads[0])


@pytest.mark.parametrize(
    "settings",
    [dict(), dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)],
    ids=["defaults", "lr", "betas-eps", "l2"],
)
def test_adam_matches_the_formula(settings):
    start, grads = make_problem(1)
    for got, expected in zip(run(optim.Adam, start, grads, **settings), adam_reference(start, grads, **settings)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("settings", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.5)], ids=["default-decay", "decay"])
def test_adamw_decouples_weight_decay(settings):
    start, grads = make_problem(2)
    decay = settings.get("weight_decay", 1e-2)  # AdamW's default
    expected = adam_reference(start, grads, lr=settings["lr"], weight_decay=decay, decoupled=True)
    for got, want in zip(run(optim.AdamW, start, grads, **settings), expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # and it differs from Adam's L2 penalty
    assert not np.allclose(run(optim.Adam, start, grads, lr=0.01, weight_decay=0.5)[-1],
                           run(optim.AdamW, start, grads, lr=0.01, weight_decay=0.5)[-1])


def test_float32_parameters_stay_float32():
    param = nn.Parameter(np.ones(3, dtype=np.float32))
    optimizer = optim.Adam([param], lr=0.1, weight_decay=0.1)
    param.grad = tinycnn.ones(3)
    optimizer.step()
    assert param.dtype == np.float32 and optimizer.state[param]["exp_avg"].dtype == np.float32


def test_param_groups_have_their_own_settings():
    slow, fast = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.SGD([{"params": [slow]}, {"params": [fast], "lr": 1.0, "momentum": 0.5}], lr=0.1)
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 1.0]
    assert optimizer.param_groups[0]["momentum"] == 0 and optimizer.param_groups[1]["momentum"] == 0.5
    assert optimizer.param_groups[1]["params"] == [fast] and optimizer.param_groups[1]["nesterov"] is False
    for _ in range(2):
        slow.grad = tinycnn.ones(2, dtype=np.float64)
        fast.grad = tinycnn.ones(2, dtype=np.float64)
        optimizer.step()
    np.testing.assert_allclose(slow.numpy(), 1 - 0.1 * 2)
    np.testing.assert_allclose(fast.numpy(), 1 - 1.0 * (1 + 1.5))  # buffer 1, then 0.5*1 + 1


def test_parameters_without_grad_are_skipped():
    used, unused = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.Adam([used, unused], lr=0.1)
    used.grad = tinycnn.ones(2, dtype=np.float64)
    optimizer.step()
    assert unused.tolist() == [1.0, 1.0] and unused not in optimizer.state
    assert used.tolist() != [1.0, 1.0]


def test_zero_grad():
    param = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([param], lr=0.1)
    param.grad = tinycnn.ones(2)
    optimizer.zero_grad(set_to_none=False)
    assert param.grad.tolist() == [0.0, 0.0]
    optimizer.zero_grad()
    assert param.grad is None


def test_argument_checks():
    param = nn.Parameter(np.ones(2))
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(param, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="required optimization parameter 'lr'"):
        optim.SGD([param])
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([param], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [param]}, {"params": [param]}], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([param], betas=(0.9, 1.0))


@pytest.mark.parametrize(
    "make",
    [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
     lambda ps: optim.Adam(ps, lr=0.01),
     lambda ps: optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}], lr=0.01)],
    ids=["sgd", "adam", "adamw-groups"],
)
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal((2, 3)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(s.shape) for s in starts] for _ in range(6)]

    def feed(params, optimizer, steps):
        for step_grads in steps:
            for param, grad in zip(params, step_grads):
                param.grad = tinycnn.tensor(grad, dtype=np.float64)
            optimizer.step()

    params = [nn.Parameter(s.copy()) for s in starts]
    optimizer = make(params)
    feed(params, optimizer, grads[:3])
    saved = optimizer.state_dict()
    assert sorted(saved["state"]) == [0, 1]
    assert all(isinstance(v, np.ndarray) for state in saved["state"].values() for v in state.values() if not isinstance(v, int))
    values_at_save = [p.numpy().copy() for p in params]
    feed(params, optimizer, grads[3:])

    resumed_params = [nn.Parameter(v) for v in values_at_save]
    resumed = make(resumed_params)
    saved_copy = {i: {k: np.copy(v) for k, v in state.items()} for i, state in saved["state"].items()}
    resumed.load_state_dict(saved)
    feed(resumed_params, resumed, grads[3:])
    for original, again in zip(params, resumed_params):
        np.testing.assert_array_equal(original.numpy(), again.numpy())
    # the loaded state is a copy: stepping did not change the saved dict
    for index, state in saved["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(value, saved_copy[index][key])
    for key in ("lr", "params"):
        assert [g[key] for g in saved["param_groups"]] == [g[key] for g in resumed.state_dict()["param_groups"]]


def test_state_dict_format_and_load_checks():
    param = nn.Parameter(np.zeros(2, dtype=np.float32))
    optimizer = optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = tinycnn.ones(2)
    optimizer.step()
    saved = optimizer.state_dict()
    assert saved["param_groups"] == [dict(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False, params=[0])]
    buffer = saved["state"][0]["momentum_buffer"]
    assert isinstance(buffer, np.ndarray) and buffer is not optimizer.state[param]["momentum_buffer"]
    other = optim.SGD([nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"hold \[1\] parameters, this optimizer's hold \[2\]"):
        other.load_state_dict(saved)
    # float64 checkpoint state loads in the parameter's dtype
    saved["state"][0]["momentum_buffer"] = buffer.astype(np.float64)
    optimizer.load_state_dict(saved)
    assert optimizer.state[param]["momentum_buffer"].dtype == np.float32


def test_step_returns_the_closure_loss():
    param = nn.Parameter(np.array([2.0]))
    optimizer = optim.SGD([param], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (param * param).sum()
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert loss.item() == 4.0 and param.tolist() == [1.0]  # 2 - 0.25 * 2*2
