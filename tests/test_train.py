"""The training loop, checkpoints and resuming, on the built-in shapes set."""

import json

import numpy as np
import pytest

import tinycnn
from tinycnn import models, runner
from tinycnn.runner import RunConfig, load_checkpoint, model_from_checkpoint, run_training
from tinycnn.serialization import CheckpointError, load, save

QUICK = dict(dataset="shapes", train_size=600, val_split=100, batch_size=50, progress=False)


@pytest.fixture(scope="module")
def trained_run(shapes_run):
    out, code = shapes_run
    assert code == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_training_on_shapes_reaches_a_set_accuracy(trained_run):
    out, metrics = trained_run
    assert metrics["test_accuracy"] >= 0.85, metrics
    assert metrics["epochs"] == 5
    assert metrics["train_seconds"] > 0 and metrics["images_per_second"] > 0


def test_run_directory_holds_outputs_and_plots(trained_run):
    out, metrics = trained_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "epochs", "train_seconds", "images_per_second"):
        assert key in saved
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert all("val_accuracy" in r and "train_loss" in r for r in history)
    for name in ("curves.png", "confusion_matrix.png", "predictions.png"):
        path = out / name
        assert path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_reloads_the_best_model(trained_run):
    out, metrics = trained_run
    checkpoint = load_checkpoint(out)
    assert checkpoint["fit_state"]["epoch"] == 5
    assert checkpoint["meta"]["classes"] == list(tinycnn.data.Shapes(n=10).classes)
    model = model_from_checkpoint(checkpoint)
    assert models.count_parameters(model) > 0


def interrupt_after_epoch(monkeypatch, last_epoch):
    """Make the next run stop (as if killed) right after saving epoch ``last_epoch``."""
    real_fit = runner.fit

    def fit_then_stop(*args, on_epoch_end, **kwargs):
        def save_then_stop(state):
            on_epoch_end(state)
            if state.epoch == last_epoch:
                raise KeyboardInterrupt

        return real_fit(*args, on_epoch_end=save_then_stop, **kwargs)

    monkeypatch.setattr(runner, "fit", fit_then_stop)


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    run_training(RunConfig(**QUICK, epochs=3, out=str(straight)))
    interrupted = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        interrupt_after_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            run_training(RunConfig(**QUICK, epochs=3, out=str(interrupted)))
    assert load(interrupted / "checkpoint.npz")["fit_state"]["epoch"] == 1
    run_training(RunConfig(dataset="shapes", progress=False), resume=interrupted / "checkpoint.npz")
    a, b = load(straight / "checkpoint.npz"), load(interrupted / "checkpoint.npz")
    assert a["fit_state"]["epoch"] == b["fit_state"]["epoch"] == 3
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    for key in a["optimizer"]["state"]:
        for name, value in a["optimizer"]["state"][key].items():
            np.testing.assert_array_equal(value, b["optimizer"]["state"][key][name])
    assert [r["train_loss"] for r in a["fit_state"]["history"]] == [r["train_loss"] for r in b["fit_state"]["history"]]
    assert json.loads((straight / "metrics.json").read_text())["test_accuracy"] == \
        json.loads((interrupted / "metrics.json").read_text())["test_accuracy"]


def test_resume_rejects_another_model(tmp_path):
    run_training(RunConfig(**QUICK, epochs=1, out=str(tmp_path)))
    with pytest.raises(CheckpointError, match="cannot resume with --model lenet5: .* trained with model 'small_cnn'"):
        run_training(RunConfig(dataset="shapes", model="lenet5", epochs=2, progress=False), resume=tmp_path)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    run_training(RunConfig(**QUICK, epochs=1, out=str(tmp_path)))
    checkpoint = load_checkpoint(tmp_path)
    checkpoint["config"]["model"] = "vgg_small"
    with pytest.raises(CheckpointError, match="do not fit model 'vgg_small'"):
        model_from_checkpoint(checkpoint)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "vgg_small", "small_cnn"])
def test_state_dict_round_trip_through_a_file(tmp_path, name):
    tinycnn.manual_seed(0)
    in_channels, size = (1, 28) if name == "lenet5" else (3, 32)
    model = models.get_model(name, num_classes=10, in_channels=in_channels)
    images = tinycnn.randn(2, in_channels, size, size)
    model.eval()
    with tinycnn.no_grad():
        expected = model(images).numpy()
    save({"model": model.state_dict()}, tmp_path / "weights.npz")
    tinycnn.manual_seed(1)
    fresh = models.get_model(name, num_classes=10, in_channels=in_channels)
    fresh.load_state_dict(load(tmp_path / "weights.npz")["model"])
    fresh.eval()
    with tinycnn.no_grad():
        np.testing.assert_array_equal(fresh(images).numpy(), expected)


@pytest.mark.parametrize("name,params", [("lenet5", 61_706), ("resnet20", 269_722), ("resnet32", 464_154),
                                         ("resnet56", 853_018)])
def test_model_sizes_match_the_papers(name, params):
    in_channels = 1 if name == "lenet5" else 3
    model = models.get_model(name, num_classes=10, in_channels=in_channels)
    assert models.count_parameters(model) == params
    assert repr(model).splitlines()[1].strip() == f"{params:,} parameters"  # printing a model shows its size


def test_resnet_option_b_and_output_shapes():
    x = tinycnn.randn(2, 3, 32, 32)
    for shortcut in ("A", "B"):
        assert models.resnet20(shortcut=shortcut)(x).shape == (2, 10)
    assert models.lenet5(num_classes=7)(tinycnn.randn(3, 1, 28, 28)).shape == (3, 7)
    assert models.lenet5(in_channels=3, input_size=32)(tinycnn.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="unknown model"):
        models.get_model("no_such_net")   # (alexnet is in the zoo now)


@pytest.mark.parametrize("epochs,expected", [(1, [0.1]), (2, [0.1, 0.01]), (182, None)])
def test_multistep_schedule_never_starts_decayed(epochs, expected):
    from tinycnn.runner import build_optimizer, build_schedule

    config = RunConfig(dataset="cifar10", epochs=epochs).resolved()
    model = models.lenet5()
    optimizer = build_optimizer(config, model)
    schedule, per_batch = build_schedule(config, optimizer, steps_per_epoch=10)
    assert not per_batch
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        schedule.step()
    if expected is not None:
        assert lrs == pytest.approx(expected)
    else:  # the paper's recipe: 0.1, then / 10 at epoch 91 and again at 136
        assert lrs[90] == pytest.approx(0.1) and lrs[91] == pytest.approx(0.01) and lrs[136] == pytest.approx(0.001)
