"""Fixtures shared by several test files."""

import pytest

from tinycnn.cli import main


@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory):
    """A CI-sized `tinycnn train` run on the shapes set: (run directory, exit code).

    4,000 images, 5 epochs: about ten seconds on two cores, shared by the tests that read
    the run's outputs (metrics, plots, checkpoint, eval, predict).
    """
    out = tmp_path_factory.mktemp("shapes-run")
    code = main(["train", "--train-size", "4000", "--val-split", "200", "--epochs", "5", "--batch-size", "32",
                 "--out", str(out), "--quiet"])
    return out, code
