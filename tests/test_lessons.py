"""Every lesson runs on its own with --quick (skipped, with the reason, when its data is absent)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]*_*.py"))
DATA = Path(os.environ.get("TINYCNN_TEST_DATA", ROOT.parent / "shared" / "data"))
MISSING_DATA = 3  # lessons/lesson_utils.py


def test_there_are_lessons():
    assert LESSONS, "lessons/ holds no NN_name.py (or NNb_name.py) chapter"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_quick(lesson, tmp_path):
    command = [sys.executable, str(lesson), "--quick", "--out", str(tmp_path)]
    if "needs_data=True" in lesson.read_text():  # Lesson(__file__, __doc__, needs_data=True)
        command += ["--data-dir", str(DATA)]
    cache = tmp_path / "cache"      # lesson 6 shares its LeNet-5 through ~/.cache/tinycnn/lessons: not the user's here
    env = dict(os.environ, MPLBACKEND="Agg", XDG_CACHE_HOME=str(cache))
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    if result.returncode == MISSING_DATA:
        pytest.skip(f"{lesson.stem}: real data absent ({result.stderr.strip().splitlines()[0]})")
    assert result.returncode == 0, f"{lesson.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, f"{lesson.name} wrote no figure"
    assert all(p.stat().st_size > 1000 for p in pngs)
    # a --quick run's network is too weak to share: nothing goes into the shared cache
    assert not list(cache.glob("tinycnn/lessons/*.npz")), f"{lesson.name} --quick wrote into the shared cache"
