"""PyTorch code runs on tinycnn with only its imports changed (tests/pytorch_style/).

Each script there is written as a PyTorch user writes it: the model and loops of the
classic MNIST example, the CIFAR-10 "training a classifier" tutorial, and a user's own
map-style Dataset. Here each one runs for a few steps on small synthetic data; a test
checks that ``tinycnn`` appears in its import lines and nowhere else; and where PyTorch
is installed (never needed by tinycnn) the same file, with ``tinycnn`` swapped for
``torch`` in those imports, runs on PyTorch: proof that it is PyTorch code.
"""

import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).parent / "pytorch_style"
IMPORT = re.compile(r"^(import|from) tinycnn\b")


def load(name: str, to_torch: bool = False, tmp_path=None):
    """The script as a module; with ``to_torch`` its imports rewritten to PyTorch's."""
    path = SCRIPTS / f"{name}.py"
    if to_torch:
        source = "\n".join(IMPORT.sub(lambda m: m.group(1) + " torch", line) for line in path.read_text().splitlines())
        path = tmp_path / f"{name}_torch.py"
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"pytorch_style_{name}_{to_torch}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_mnist(module, tmp_path):
    return module.main(["--train-size", "64", "--test-size", "32", "--batch-size", "16", "--epochs", "2",
                        "--log-interval", "100", "--save-model", str(tmp_path / "mnist_cnn.pt")])


def run_cifar(module, tmp_path):
    return module.main(path=str(tmp_path / "cifar_net.pth"), epochs=2, train_size=96, test_size=32, batch_size=8)


def run_custom(module, tmp_path):
    return module.main(n=96, batch_size=16, epochs=2)


RUNS = {"mnist_example": run_mnist, "cifar_tutorial": run_cifar, "custom_dataset": run_custom}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_tinycnn_appears_only_in_the_imports(name):
    source = (SCRIPTS / f"{name}.py").read_text()
    code = source.replace(ast.get_docstring(ast.parse(source), clean=False), "")   # the docstring may name tinycnn
    lines = code.splitlines()
    assert [line for line in lines if IMPORT.match(line)], "the script imports tinycnn"
    assert [line for line in lines if "tinycnn" in line and not IMPORT.match(line)] == []


def test_mnist_example(tmp_path, capsys):
    result = run_mnist(load("mnist_example"), tmp_path)
    assert len(result["losses"]) == 8 and all(np.isfinite(result["losses"]))
    assert result["lrs"] == pytest.approx([1.0, 0.7])                      # Adadelta's lr, then StepLR's gamma
    assert 0 <= result["accuracy"] <= 100 and np.isfinite(result["test_loss"])
    assert (tmp_path / "mnist_cnn.pt.npz").exists()                          # torch.save's file, read back by torch.load
    assert "epoch 1 [0/64 (0%)]" in capsys.readouterr().out


def test_cifar_tutorial(tmp_path):
    result = run_cifar(load("cifar_tutorial"), tmp_path)
    assert result["total"] == 32 and result["per_class_correct"] == result["correct"]
    assert result["epoch_losses"][1] < result["epoch_losses"][0]              # it learns


def test_custom_dataset():
    result = run_custom(load("custom_dataset"), None)
    assert result["steps_per_epoch"] == 72 // 16                              # drop_last: 4 full batches of 72
    assert result["losses"][-1] < result["losses"][0]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_same_script_runs_on_pytorch(name, tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed (it is never a dependency of tinycnn)")
    result = RUNS[name](load(name, to_torch=True, tmp_path=tmp_path), tmp_path)
    assert result
