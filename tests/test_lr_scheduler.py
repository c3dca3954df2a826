"""Learning-rate schedules give PyTorch's documented sequences (worked out by hand here).

``lrs(scheduler, n)`` records ``get_last_lr()`` before each of n steps: the lr
used in epochs (or batches) 0, 1, ..., n-1.
"""

import math

import numpy as np
import pytest

from tinycnn import nn, optim
from tinycnn.optim import lr_scheduler


def make_optimizer(lr=0.1, kind="sgd", groups=1):
    params = [nn.Parameter(np.zeros(2)) for _ in range(groups)]
    if kind == "adam":
        return optim.Adam(params, lr=lr)
    return optim.SGD([{"params": [p]} for p in params], lr=lr, momentum=0.9)


def lrs(scheduler, n, group=0):
    values = []
    for _ in range(n):
        values.append(scheduler.get_last_lr()[group])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_step_lr():
    scheduler = lr_scheduler.StepLR(make_optimizer(0.1), step_size=2, gamma=0.1)
    assert lrs(scheduler, 6) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert scheduler.optimizer.param_groups[0]["initial_lr"] == 0.1


def test_step_lr_default_gamma():
    scheduler = lr_scheduler.StepLR(make_optimizer(1.0), step_size=3)
    assert lrs(scheduler, 7) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])


def test_multi_step_lr():
    scheduler = lr_scheduler.MultiStepLR(make_optimizer(1.0), milestones=[2, 5], gamma=0.5)
    assert lrs(scheduler, 7) == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_multi_step_lr_repeated_milestone_decays_twice():
    scheduler = lr_scheduler.MultiStepLR(make_optimizer(1.0), milestones=[1, 1])
    assert lrs(scheduler, 3) == pytest.approx([1, 0.01, 0.01])


def test_cosine_annealing():
    scheduler = lr_scheduler.CosineAnnealingLR(make_optimizer(1.0), T_max=4)
    # (1 + cos(pi * e / 4)) / 2, and back up after T_max as PyTorch's
    expected = [1.0, 0.8535533905932737, 0.5, 0.14644660940672624, 0.0, 0.14644660940672624, 0.5]
    assert lrs(scheduler, 7) == pytest.approx(expected, abs=1e-12)


def test_cosine_annealing_eta_min():
    scheduler = lr_scheduler.CosineAnnealingLR(make_optimizer(0.5), T_max=2, eta_min=0.1)
    assert lrs(scheduler, 3) == pytest.approx([0.5, 0.3, 0.1])


def test_linear_warmup():
    scheduler = lr_scheduler.LinearLR(make_optimizer(0.1), start_factor=0.25, total_iters=3)
    assert lrs(scheduler, 5) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_linear_lr_defaults():
    scheduler = lr_scheduler.LinearLR(make_optimizer(0.3))  # start_factor=1/3, total_iters=5
    assert lrs(scheduler, 7) == pytest.approx([0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3])
    with pytest.raises(ValueError, match="start_factor"):
        lr_scheduler.LinearLR(make_optimizer(), start_factor=0)


def onecycle_expected(max_lr, total_steps, pct_start=0.3):
    """The lr of OneCycleLR's two cosine phases, written out."""
    start, low = max_lr / 25, max_lr / 25 / 1e4
    warmup_end = pct_start * total_steps - 1
    values = []
    for step in range(total_steps):
        if step <= warmup_end:
            pct, a, b = step / warmup_end, start, max_lr
        else:
            pct, a, b = (step - warmup_end) / (total_steps - 1 - warmup_end), max_lr, low
        values.append(b + (a - b) / 2 * (math.cos(math.pi * pct) + 1))
    return values


def test_one_cycle_lr():
    optimizer = make_optimizer()
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    values, momenta = [], []
    for step in range(10):
        if step > 0:
            optimizer.step()
            scheduler.step()
        values.append(scheduler.get_last_lr()[0])
        momenta.append(optimizer.param_groups[0]["momentum"])
    # warm-up over steps 0..2 (pct_start * 10 - 1 = 2), then cosine down to max_lr / 25 / 1e4
    assert values[:3] == pytest.approx([0.04, 0.52, 1.0])
    assert values[-1] == pytest.approx(4e-6)
    assert values == pytest.approx(onecycle_expected(1.0, 10), abs=1e-12)
    # momentum goes the other way: 0.95 -> 0.85 at the peak -> 0.95
    assert momenta[:3] == pytest.approx([0.95, 0.9, 0.85]) and momenta[-1] == pytest.approx(0.95)
    scheduler.step()  # step 10 is still allowed (PyTorch's off-by-one), step 11 is not
    with pytest.raises(ValueError, match="tried to step 11 times, but total_steps is 10"):
        scheduler.step()


def test_one_cycle_lr_with_adam_cycles_beta1_and_epochs_form():
    optimizer = make_optimizer(kind="adam")
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, epochs=4, steps_per_epoch=5)
    assert scheduler.total_steps == 20
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.999)
    assert lrs(scheduler, 20) == pytest.approx(onecycle_expected(0.01, 20), abs=1e-14)
    with pytest.raises(ValueError, match="total_steps or both epochs and steps_per_epoch"):
        lr_scheduler.OneCycleLR(make_optimizer(), max_lr=0.1)


def test_sequential_lr_warmup_then_decay():
    optimizer = make_optimizer(1.0)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
    decay = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[2])
    assert lrs(scheduler, 7) == pytest.approx([0.1, 0.55, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_each_param_group_is_scheduled_from_its_own_lr():
    params = [nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))]
    optimizer = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 1.0}], lr=0.1)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert scheduler.get_last_lr() == [0.1, 1.0]
    scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.05, 0.5])


@pytest.mark.parametrize(
    "make",
    [lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10),
     lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=12),
     lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(o, total_iters=3), lr_scheduler.MultiStepLR(o, [2, 4])], [3])],
    ids=["cosine", "onecycle", "sequential"],
)
def test_state_dict_round_trip_continues_identically(make):
    optimizer = make_optimizer(1.0)
    scheduler = make(optimizer)
    lrs(scheduler, 4)
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    assert "optimizer" not in saved_scheduler
    expected = lrs(scheduler, 7)

    optimizer2 = make_optimizer(1.0)
    scheduler2 = make(optimizer2)
    optimizer2.load_state_dict(saved_optimizer)
    scheduler2.load_state_dict(saved_scheduler)
    assert lrs(scheduler2, 7) == expected


def test_multi_step_lr_state_from_a_plain_dict():
    """Checkpoint files store the milestones Counter as a plain dict; loading restores it."""
    optimizer = make_optimizer(1.0)
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[1, 3])
    state = scheduler.state_dict()
    state["milestones"] = dict(state["milestones"])
    resumed = lr_scheduler.MultiStepLR(make_optimizer(1.0), milestones=[5])
    resumed.load_state_dict(state)
    resumed.step(3)  # jump to epoch 3: the closed form needs the Counter back
    assert resumed.get_last_lr() == pytest.approx([0.01])
