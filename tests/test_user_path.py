"""The user path, end to end: gating your own loss implementation with an installed lossconf.

``examples/numpy_losses`` is a user's package (a NumPy kernel with the spec's
signatures); ``numpy_losses.buggy`` is the same with a classic bug (the mean of
``cross_entropy`` counts ignored rows). Each test runs ``python -m lossconf run`` --
the installed command line, ``lossconf/cli.py`` -- in a subprocess from a directory
outside the checkout, the way a user's CI does after

    pip install -e path/to/lossconf     # only the `lossconf` package becomes importable
    pip install -e examples/numpy_losses

Both installs are simulated without touching the environment: ``PYTHONPATH`` holds a
directory with nothing but a link to ``lossconf/`` (what setuptools' editable finder
exposes) and the example's project directory. Selections are narrow (the ``gate``
profile, the fixed edge cases of one loss and dtype) so this file stays fast:

* the correct implementation passes (exit 0, every record a pass or unsupported);
* the buggy one fails (exit 1), naming the loss, the case, a repro that imports the
  user's function, and the command that reruns the case;
* ``python -m lossconf baseline`` turns those failures into a baseline with which the
  same run passes under ``--strict-expectations``;
* without a checkout, the command is a one-line usage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossconf.cli import PATH_OPTIONS, checkout, pytest_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "numpy_losses"
OK, TESTS_FAILED, USAGE_ERROR = 0, 1, 4

# The ignore_index edge cases of cross_entropy: the buggy mean fails all of them.
IGNORED_ROWS = ("--loss", "cross_entropy", "--dtype", "float32", "-k", "test_edge_cases and ignore")


def _lossconf(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    site = cwd.parent / "site"
    site.mkdir(exist_ok=True)
    if not (site / "lossconf").exists():
        (site / "lossconf").symlink_to(ROOT / "lossconf", target_is_directory=True)
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "LOSSCONF_PROFILE", "LOSSCONF_CHECKOUT")
        and not k.startswith("PYTEST_XDIST_")
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(EXAMPLE)]),
        HYPOTHESIS_STORAGE_DIRECTORY=str(cwd / ".hypothesis"),
        **(env_extra or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "lossconf", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )


def _run(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = _lossconf(
        "run", "-p", "no:cacheprovider", "-q", "--hypothesis-profile", "gate",
        "--report-dir", "report", *args, cwd=cwd,
    )
    results = cwd / "report" / "results.json"
    records = json.loads(results.read_text())["records"] if results.exists() else []
    return proc, records


@pytest.fixture
def user_repo(tmp_path) -> Path:
    """An empty directory outside the checkout: the user's repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    return repo


def test_the_correct_implementation_passes(user_repo):
    proc, records = _run(
        "--adapter", "numpy_losses", "--loss", "cross_entropy", "--loss",
        "binary_cross_entropy_with_logits", "--loss", "mse_loss", "--dtype", "float32",
        "-k", "edge_cases", cwd=user_repo,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == OK, output[-3000:]
    verdicts = {r["verdict"] for r in records}
    assert verdicts <= {"pass", "unsupported", "skip"}, verdicts
    passed = {r["loss"] for r in records if r["verdict"] == "pass"}
    assert passed == {"cross_entropy", "binary_cross_entropy_with_logits", "mse_loss"}, passed
    gradients = [r for r in records if r["verdict"] == "pass" and r["test"] == "test_gradient_edge_cases"]
    assert gradients, "the package's own gradients are checked too"
    assert (user_repo / "report" / "index.html").is_file(), "the report lands in the caller's directory"


def test_the_buggy_implementation_fails_with_an_actionable_message(user_repo):
    proc, records = _run("--adapter", "numpy_losses.buggy", *IGNORED_ROWS, cwd=user_repo)
    output = proc.stdout + proc.stderr
    assert proc.returncode == TESTS_FAILED, output[-3000:]
    failed = [r for r in records if r["verdict"] == "fail"]
    assert {r["case_label"] for r in failed} >= {"all_ignored_mean_is_nan", "in_range_ignore_index"}
    assert "cross_entropy [numpy_losses.buggy 0.1.0, float32] does not conform to the spec" in output
    assert "case:     [all_ignored_mean_is_nan] cross_entropy(input=np.array([[1.0, 2.0], [3.0, 4.0]]" in output
    assert "from numpy_losses.buggy import cross_entropy" in output, "the repro calls the user's code"
    assert f"cd {ROOT} && " in output and "--adapter numpy_losses.buggy" in output, "the rerun command"
    assert "python -m lossconf baseline" in output, "the summary says how to accept the failures"


def test_a_baseline_makes_the_buggy_run_pass(user_repo):
    failing, records = _run("--adapter", "numpy_losses.buggy", *IGNORED_ROWS, cwd=user_repo)
    assert failing.returncode == TESTS_FAILED, (failing.stdout + failing.stderr)[-3000:]
    n_failed = sum(r["verdict"] == "fail" for r in records)
    written = _lossconf(
        "baseline", "report/results.json", "-o", "lossconf-baseline.toml", cwd=user_repo
    )
    assert written.returncode == OK, written.stderr
    assert f"for {n_failed} failing item(s)" in written.stdout
    proc, records = _run(
        "--adapter", "numpy_losses.buggy", *IGNORED_ROWS,
        "--expectations", "lossconf-baseline.toml", "--strict-expectations", cwd=user_repo,
    )
    assert proc.returncode == OK, (proc.stdout + proc.stderr)[-3000:]
    assert sum(r["verdict"] == "deviation" for r in records) == n_failed
    assert not [r for r in records if r["verdict"] == "fail"]


def test_without_a_checkout_it_is_a_one_line_usage_error(user_repo):
    proc = _lossconf("run", "--adapter", "numpy_losses", cwd=user_repo,
                     env_extra={"LOSSCONF_CHECKOUT": str(user_repo)})
    assert proc.returncode == USAGE_ERROR
    assert proc.stderr.startswith("lossconf: error: LOSSCONF_CHECKOUT=") and proc.stderr.count("\n") == 1
    assert "pip install -e" in proc.stderr


def test_run_passes_paths_as_absolute_and_everything_else_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = checkout()
    assert root == ROOT
    command = pytest_command(
        ["--expectations", "b.toml", "--report-dir=out", "--junitxml", "j.xml", "-k", "ignore", "--adapter", "m"],
        root,
    )
    assert command[:4] == [sys.executable, "-m", "pytest", str(ROOT / "suites")]
    assert command[4:8] == ["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    assert command[8:] == [
        "--expectations", str(tmp_path / "b.toml"), f"--report-dir={tmp_path / 'out'}",
        "--junitxml", str(tmp_path / "j.xml"), "-k", "ignore", "--adapter", "m",
    ]
    assert "--expectations" in PATH_OPTIONS


def test_the_console_script_is_the_same_command_line():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["lossconf"] == "lossconf.cli:main"
    assert project["tool"]["setuptools"]["packages"] == ["lossconf"], (
        "only the command line is installed; the suite runs from the checkout"
    )
