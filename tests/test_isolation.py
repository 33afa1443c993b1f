"""Reliability: the harness survives what adapters do to their process, and says so.

Each test runs ``pytest suites`` in a subprocess on a tiny selection (sigmoid's
``infinities`` edge case in float32) with a deliberately misbehaving adapter from
``tests/faulty_adapters.py``, and checks what the run leaves behind:

* segfault, abort, SIGKILL (what the OOM killer sends) and a hang ended by
  pytest-timeout's thread method, under pytest-xdist: each is an ``error`` record
  naming the case and its repro, the other adapter's items still run, and the
  report is written (complete);
* memory exhaustion under ``--memory-limit``: a failure of that case (MemoryError);
* a segfault without xdist kills the run; ``python -m reports recover`` turns
  what it left into a report marked incomplete, naming the case;
* SIGINT and SIGTERM (Ctrl-C, a CI job's time limit): a valid results.json and
  an index.html marked INCOMPLETE, the interrupted case recorded;
* the oracle's budget: an exhausted budget is the verdict ``undecided``, never a pass;
* bad configuration: one-line usage errors (exit 4);
* the report: hostile markup from an adapter is escaped, and this machine's
  paths are redacted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .faulty_adapters import HOSTILE_MARKUP, HOSTILE_PATHS
from .test_harness import FAULTY, ROOT, TESTS_FAILED, USAGE_ERROR, run_suite

INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED
ONE_CASE = ("--loss", "sigmoid", "--dtype", "float32", "-k", "test_edge_cases and infinities")
CRASHERS = ["segfaults", "aborts", "killed", "hangs"]


def _adapters(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--adapter", f"{FAULTY}:{name}")]


def _load(report_dir: Path) -> dict:
    return json.loads((report_dir / "results.json").read_text())


def _records_of(doc: dict, name: str) -> list[dict]:
    return [r for r in doc["records"] if r["adapter"] == f"{FAULTY}:{name}"]


# ------------------------------------------------------------------ crashes under xdist


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory):
    """Four adapters that end their worker, and a correct one, on one xdist worker."""
    return run_suite(
        "-n", "1", "--max-worker-restart", "10", "--timeout", "4", "--timeout-method", "thread",
        *_adapters(*CRASHERS, "correct"), *ONE_CASE, tmp=tmp_path_factory.mktemp("crashes"),
    )


def test_crashing_adapters_still_give_a_full_report(crash_run):
    run = crash_run
    assert run.returncode == TESTS_FAILED, run.tail()
    assert (run.report_dir / "index.html").is_file(), run.tail()
    doc = _load(run.report_dir)
    assert doc["run"]["complete"] is True
    assert len(doc["records"]) == len(CRASHERS) + 1, run.tail()
    [correct] = _records_of(doc, "correct")
    assert correct["verdict"] == "pass", correct["message"]
    assert not list((run.report_dir / ".parts").glob("*")) if (run.report_dir / ".parts").exists() else True


@pytest.mark.parametrize("name", CRASHERS)
def test_each_crash_is_a_failure_of_its_case(crash_run, name):
    [r] = _records_of(_load(crash_run.report_dir), name)
    assert r["verdict"] == "error", r
    assert "crashed while running this case" in r["message"], r["message"]
    assert r["failure"]["case"] == "[infinities] sigmoid(input=np.array([float('inf'), -float('inf')], dtype=np.float32))"
    assert f"from {FAULTY} import {name}" in r["failure"]["repro"], r["failure"]
    assert r["case_label"] == "infinities" and r["dtype"] == "float32" and r["loss"] == "sigmoid"


def test_memory_exhaustion_under_a_limit_fails_its_case(tmp_path):
    run = run_suite("--memory-limit", "1GiB", *_adapters("exhausts_memory"), *ONE_CASE, tmp=tmp_path)
    assert run.returncode == TESTS_FAILED, run.tail()
    [r] = _records_of(_load(run.report_dir), "exhausts_memory")
    assert r["verdict"] == "fail", r
    assert "MemoryError" in r["message"], r["message"]
    assert "[infinities] sigmoid(" in r["failure"]["case"]


# ------------------------------------------------------------------ killed runs


def _suite_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST_")
    }
    env.update(LOSSCONF_PROFILE="dev", HYPOTHESIS_STORAGE_DIRECTORY=str(tmp / "hypothesis"), LOSSCONF_CACHE_DIR=str(tmp / "cache"))
    return env


def _start(tmp: Path, *args: str) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q",
        "--report-dir", str(tmp / "report"), "--hypothesis-seed=0", *args,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=_suite_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# Guards against a hung run, not speed limits: generous, since a loaded CI machine can take
# minutes to start a pytest process that imports the frameworks.
HANG_GUARD_S = 600


def _wait_for_inflight(tmp: Path, proc: subprocess.Popen, adapter: str, timeout: float = HANG_GUARD_S) -> None:
    """Until a test process has noted a case of ``adapter`` as in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (tmp / "report" / ".parts").glob("*.inflight.json"):
            try:
                if adapter in path.read_text() and '"case": "[' in path.read_text():
                    return
            except OSError:
                pass
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {adapter} started:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{adapter} never started within {timeout}s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_a_valid_report_marked_incomplete(tmp_path, sig):
    proc = _start(tmp_path, *_adapters("correct", "hangs"), *ONE_CASE)
    _wait_for_inflight(tmp_path, proc, "hangs")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == INTERRUPTED, out[-3000:]
    doc = _load(tmp_path / "report")
    assert doc["run"]["complete"] is False
    [r] = _records_of(doc, "hangs")
    assert r["verdict"] == "error" and "interrupted" in r["message"], r
    assert r["failure"]["case"].startswith("[infinities] sigmoid("), r
    assert [c["verdict"] for c in _records_of(doc, "correct")] == ["pass"]
    html = (tmp_path / "report" / "index.html").read_text()
    assert "INCOMPLETE" in html and "(incomplete)</title>" in html


def test_sigterm_to_an_xdist_run_with_a_hung_worker_still_writes_the_report(tmp_path):
    """What a CI time limit does: SIGTERM to the controller while a worker hangs in an adapter."""
    proc = _start(tmp_path, "-n", "1", *_adapters("correct", "hangs"), *ONE_CASE)
    _wait_for_inflight(tmp_path, proc, "hangs")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == INTERRUPTED, out[-3000:]
    doc = _load(tmp_path / "report")
    assert doc["run"]["complete"] is False
    [r] = _records_of(doc, "hangs")
    assert r["verdict"] == "error" and r["failure"]["case"].startswith("[infinities] sigmoid("), r
    assert "INCOMPLETE" in (tmp_path / "report" / "index.html").read_text()


def test_segfault_without_xdist_is_recovered_from_its_parts(tmp_path):
    proc = _start(tmp_path, *_adapters("correct", "segfaults"), *ONE_CASE)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == -signal.SIGSEGV, f"{proc.returncode}\n{out[-3000:]}"
    report = tmp_path / "report"
    assert not (report / "results.json").exists()
    done = subprocess.run(
        [sys.executable, "-m", "reports", "recover", str(report)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(report / "index.html")
    doc = _load(report)
    assert doc["run"]["complete"] is False
    [r] = _records_of(doc, "segfaults")
    assert r["verdict"] == "error" and r["failure"]["case"].startswith("[infinities] sigmoid("), r
    assert [c["verdict"] for c in _records_of(doc, "correct")] == ["pass"]
    assert "INCOMPLETE" in (report / "index.html").read_text()


def test_recover_without_parts_is_a_one_line_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "reports", "recover", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nothing to recover" in done.stderr


# ------------------------------------------------------------------ oracle budget


def test_exhausted_oracle_budget_is_undecided_never_a_pass(tmp_path):
    """float32's Ziv loop starts at 2*24+40 = 88 bits: a 64-bit ceiling decides nothing."""
    run = run_suite("--oracle-max-bits", "64", *_adapters("correct"), *ONE_CASE, tmp=tmp_path)
    assert run.returncode == TESTS_FAILED, run.tail()
    [r] = run.records
    assert r["verdict"] == "undecided", r
    assert "could not decide 1 case(s)" in r["message"], r["message"]
    assert "still undecided at 64 bits" in r["message"] and "[infinities] sigmoid(" in r["message"], r["message"]
    html = (run.report_dir / "index.html").read_text()
    assert 'class="failure v-undecided"' in html


# ------------------------------------------------------------------ bad configuration


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"LOSSCONF_PROFILE": "fastest"}, "LOSSCONF_PROFILE='fastest' is not a Hypothesis profile"),
        (("--no-expectations", "--expectations", "x.toml"), {}, "--no-expectations contradicts --expectations"),
        (("--memory-limit", "lots"), {}, "--memory-limit 'lots' is not a size"),
        (("--oracle-budget", "0"), {}, "--oracle-budget and --oracle-max-bits must be positive"),
        (("--report-dir", "/dev/null/report"), {}, "--report-dir /dev/null/report: cannot write there (/dev/null is not a directory)"),
    ],
    ids=["unknown-profile", "conflicting-expectations", "bad-memory-limit", "zero-budget", "unwritable-report-dir"],
)
def test_bad_configuration_is_a_one_line_usage_error(tmp_path, args, env, expected):
    cmd = [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q", *_adapters("correct"), *ONE_CASE, *args]
    done = subprocess.run(cmd, cwd=ROOT, env={**_suite_env(tmp_path), **env}, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == USAGE_ERROR, output[-3000:]
    lines = [line for line in output.splitlines() if expected in line]
    assert len(lines) == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_malformed_expectations_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[expect]\nloss = 'sigmoid'\n")
    run = run_suite("--expectations", str(bad), *_adapters("correct"), *ONE_CASE, tmp=tmp_path)
    assert run.returncode == USAGE_ERROR, run.tail()
    assert "bad.toml" in run.output and "Traceback" not in run.output, run.tail()


# ------------------------------------------------------------------ report security


def test_report_escapes_adapter_text_and_redacts_machine_paths(tmp_path):
    run = run_suite(*_adapters("hostile"), *ONE_CASE, tmp=tmp_path)
    assert run.returncode == TESTS_FAILED, run.tail()
    html = (run.report_dir / "index.html").read_text()
    results = (run.report_dir / "results.json").read_text()
    assert "raised RuntimeError" in html
    assert HOSTILE_MARKUP not in html and "<img src=x" not in html and "<b>0.1</b>" not in html
    assert "&lt;script&gt;alert(" in html
    assert html.count("<script") == 1, "only the report's own script block"
    for path in HOSTILE_PATHS:
        assert f"{path}/lib/kernel.so" not in html and f"{path}/lib/kernel.so" not in results, path
    assert "&lt;python&gt;/lib/kernel.so" in html and "~/lib/kernel.so" in html
