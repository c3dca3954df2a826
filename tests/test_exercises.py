"""lessons/check.py passes the solved exercises, fails the unsolved ones, and says what is wrong.

The solved copies live in tests/fixtures/exercise_solutions/ (same file names as
lessons/exercises/). check.py runs as a student runs it, in a subprocess.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "lessons" / "check.py"
EXERCISES = ROOT / "lessons" / "exercises"
SOLUTIONS = ROOT / "tests" / "fixtures" / "exercise_solutions"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]*_*.py"))
EXERCISE_FILES = sorted(EXERCISES.glob("[0-9][0-9]*_*.py"))
KEYS = [p.name.split("_")[0] for p in EXERCISE_FILES]


def run_check(*args):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(CHECK), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def sections(output: str) -> dict:
    """check.py's output split by file: {"03": ["exercise 3.1 ... ok", ...]}."""
    found, current = {}, None
    for line in output.splitlines():
        header = re.fullmatch(r"(\d\d[b]?)_\w+\.py:", line)
        if header:
            current = found.setdefault(header.group(1), [])
        elif current is not None and line.strip().startswith("exercise "):
            current.append(line.strip())
    return found


@pytest.fixture(scope="module")
def check_module():
    spec = importlib.util.spec_from_file_location("lessons_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def solved():
    return run_check("all", "--dir", SOLUTIONS)


@pytest.fixture(scope="module")
def unsolved():
    return run_check("all")


def test_every_lesson_has_exercises_and_a_solved_copy(check_module):
    assert EXERCISE_FILES
    names = {p.name for p in EXERCISE_FILES}
    missing = [p.name for p in LESSONS if p.name not in names]
    assert not missing, f"lessons without an exercise file in lessons/exercises/: {missing}"
    assert {p.name for p in SOLUTIONS.glob("[0-9][0-9]*_*.py")} == names
    assert set(KEYS) == set(check_module.CHECKS), "every exercise file needs checks in check.py, and back"
    for key in KEYS:
        assert 2 <= len(check_module.CHECKS[key]) <= 3, f"lesson {key}: two or three exercises"


@pytest.mark.parametrize("path", EXERCISE_FILES, ids=KEYS)
def test_exercise_file_and_its_solution_define_the_same_names(path):
    def names(file):
        tree = ast.parse(file.read_text())
        return sorted(node.name if not isinstance(node, ast.Assign) else node.targets[0].id
                      for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)))
    assert names(path) == names(SOLUTIONS / path.name)
    stub = path.read_text()
    assert "raise NotImplementedError(\"exercise" in stub or re.search(r"^PREDICTED_\w+ = None", stub, re.M)
    for line in re.findall(r"^PREDICTED_\w+ = .*$", stub, re.M):
        assert " = None  # " in line, f"{path.name}: a prediction starts as None with its options: {line}"


def test_check_passes_on_the_solved_copies(solved):
    assert solved.returncode == 0, solved.stdout[-4000:] + solved.stderr[-2000:]
    assert re.search(r"all \d+ exercises pass", solved.stdout)


@pytest.mark.parametrize("key", KEYS)
def test_each_solved_file_passes(solved, key, check_module):
    lines = sections(solved.stdout).get(key)
    assert lines is not None, f"no section for lesson {key} in:\n{solved.stdout[-3000:]}"
    assert len(lines) == len(check_module.CHECKS[key])
    for line in lines:
        assert line.endswith(" ... ok"), line


@pytest.mark.parametrize("key", KEYS)
def test_each_unsolved_file_is_not_done_yet(unsolved, key, check_module):
    assert unsolved.returncode == 1, unsolved.stdout[-3000:] + unsolved.stderr[-2000:]
    lines = sections(unsolved.stdout).get(key)
    assert lines is not None and len(lines) == len(check_module.CHECKS[key]), unsolved.stdout[-3000:]
    for line in lines:
        assert "... not done yet (NotImplementedError" in line, line


def test_one_lesson_alone_and_its_exit_status():
    result = run_check("3", "--file", SOLUTIONS / "03_convolution.py")
    assert result.returncode == 0, result.stdout
    assert "exercise 3.1  conv backward with loops ... ok" in result.stdout
    result = run_check("03")
    assert result.returncode == 1
    assert "exercise 3.1  conv backward with loops ... not done yet (NotImplementedError" in result.stdout


def test_a_conv_backward_with_a_transposed_kernel_is_wrong_with_a_useful_message(tmp_path):
    solved = (SOLUTIONS / "03_convolution.py").read_text()
    right = "grad_xpad[n, :, rows, cols] += grad[n, o, i, j] * w[o]\n"
    assert right in solved
    wrong = tmp_path / "03_convolution.py"
    wrong.write_text(solved.replace(right, "grad_xpad[n, :, rows, cols] += grad[n, o, i, j] * w[o].transpose(0, 2, 1)\n"))
    result = run_check("03", "--file", wrong)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "exercise 3.1" in line)
    assert "... wrong: " in line and "gradcheck failed for x" in line and "analytic" in line and "numeric" in line
    assert "exercise 3.2  the output-size formula ... ok" in result.stdout      # the others still pass


def test_wrong_answers_say_what_was_expected_and_what_came(tmp_path):
    softmax = (SOLUTIONS / "04_pooling_relu_softmax.py").read_text()
    (tmp_path / "04_pooling_relu_softmax.py").write_text(
        softmax.replace("return float(loss), grad / n", "return float(loss), grad")       # forgot the mean's 1/N
               .replace("PREDICTED_GRADIENT_AT_7 = 4.0", "PREDICTED_GRADIENT_AT_7 = 1.0"))
    init = (SOLUTIONS / "09_depth_batchnorm_residual.py").read_text()
    (tmp_path / "09_depth_batchnorm_residual.py").write_text(
        init.replace("math.sqrt(2.0 / fan_in)", "math.sqrt(1.0 / (3 * fan_in))"))         # the default init's scale
    result = run_check("04", "--dir", tmp_path)
    assert result.returncode == 1
    assert re.search(r"exercise 4\.1 .* wrong: gradient .*expected -?[\d.]+, got -?[\d.]+", result.stdout), result.stdout
    assert "exercise 4.2  predict: overlapping max pooling ... wrong: you predicted 1 at the 7" in result.stdout
    result = run_check("9", "--dir", tmp_path)
    assert result.returncode == 1
    assert re.search(r"exercise 9\.1 .* wrong: .*std .*expected std sqrt\(2 / fan_in\)", result.stdout), result.stdout


def test_bad_arguments_say_what_was_expected():
    result = run_check("99")
    assert result.returncode == 2 and "lesson 99 has no exercises" in result.stderr
    result = run_check("x3")
    assert result.returncode == 2 and "expected a lesson number like 03" in result.stderr


def test_lesson_keys(check_module):
    assert [check_module.lesson_key(k) for k in ("3", "03", "03b", "3B", "10b", "15")] == \
        ["03", "03", "03b", "03b", "10b", "15"]
