"""The README's code runs as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_an_autograd_example():
    blocks = python_blocks()
    assert blocks, "README.md should hold a ```python example"
    assert len(blocks[0].strip().splitlines()) <= 12


def test_readme_python_examples_run(tmp_path):
    for block in python_blocks():
        result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, f"README example failed:\n{block}\n{result.stderr}"
