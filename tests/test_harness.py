"""The conformance harness's error handling, seen from the outside.

Each test runs ``pytest suites --adapter ...`` in a subprocess on a tiny
selection (``--loss sigmoid``, one dtype, the fixed edge cases), the way a user
or CI would, and checks what it leaves behind: the exit code, the records of
``results.json`` and the HTML report. The adapters that break the contract are
in ``tests/faulty_adapters.py``:

* an unknown adapter is a usage error (exit code 4) that lists the built-ins;
* an adapter raising ``RuntimeError`` fails the case with the exception's text,
  and the run goes on to the other items and still writes its report;
* a wrong shape, a wrong dtype or a Python float each fail with a message that
  names the breach (``shape``, ``dtype``, "NumPy array");
* ``NotImplementedError`` or a missing function is *unsupported*: the item is
  skipped and recorded as ``unsupported``, never failed.

``run_suite`` and ``SuiteRun`` are shared with ``tests/test_teeth.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters import BUILTIN_ADAPTERS, load_adapter
from suites import checks
from suites.cases import Case

from .faulty_adapters import NOT_IMPLEMENTED_TEXT, RUNTIME_ERROR_TEXT

ROOT = Path(__file__).resolve().parents[1]
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
TESTS_FAILED = 1  # pytest.ExitCode.TESTS_FAILED
FAULTY = "tests.faulty_adapters"


@dataclass
class SuiteRun:
    """What one ``pytest suites`` subprocess left behind."""

    args: list[str]
    returncode: int
    output: str
    report_dir: Path
    _records: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records of ``results.json`` (the file must exist)."""
        if self._records is None:
            path = self.report_dir / "results.json"
            assert path.is_file(), f"no {path} after the run:\n{self.tail()}"
            self._records = json.loads(path.read_text())["records"]
        return self._records

    def select(self, **fields: Any) -> list[dict[str, Any]]:
        """Records whose fields equal all of ``fields`` (e.g. ``loss="nll_loss"``)."""
        return [r for r in self.records if all(r.get(k) == v for k, v in fields.items())]

    def one(self, **fields: Any) -> dict[str, Any]:
        """The single record matching ``fields``."""
        found = self.select(**fields)
        assert len(found) == 1, f"expected one record with {fields}, found {len(found)}:\n{self.tail()}"
        return found[0]

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run_suite(*args: str, tmp: Path, profile: str = "dev", seed: int | None = 0, timeout: float = 300) -> SuiteRun:
    """Run ``python -m pytest suites <args>`` from the checkout, the report going to ``tmp``.

    Hermetic and deterministic: the Hypothesis profile is ``profile`` (via
    ``LOSSCONF_PROFILE``), the seed is fixed (``seed=None``: Hypothesis draws one,
    and uses its example database, which a fixed seed turns off), the example database lives in
    ``tmp`` (no replay from earlier runs), so does the oracle's cache, the outer run's ``PYTEST_ADDOPTS``
    and xdist worker variables are not inherited, Hypothesis draws no constants
    from the checkout's own code (``tests/hermetic_hypothesis.py``), and nothing
    is written to the checkout.
    """
    report_dir = tmp / "report"
    cmd = [
        sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-p", "tests.hermetic_hypothesis", "-q",
        "--report-dir", str(report_dir), *([f"--hypothesis-seed={seed}"] if seed is not None else []), *args,
    ]
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST_")
    }
    env.update(
        LOSSCONF_PROFILE=profile, HYPOTHESIS_STORAGE_DIRECTORY=str(tmp / "hypothesis"),
        LOSSCONF_CACHE_DIR=str(tmp / "cache"),  # no oracle result from an earlier run (suites/oracle_cache.py)
    )
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return SuiteRun(list(args), proc.returncode, proc.stdout + proc.stderr, report_dir)


# ------------------------------------------------------------------ adapter selection


@pytest.mark.parametrize(
    ("name", "hint"),
    [("no_such_adapter", None), ("torhc", "did you mean 'torch'?")],
    ids=["unknown-module", "typo-of-builtin"],
)
def test_unknown_adapter_is_a_usage_error_listing_the_builtins(tmp_path, name, hint):
    run = run_suite("--adapter", name, "--loss", "sigmoid", "--dtype", "float64", tmp=tmp_path)
    assert run.returncode == USAGE_ERROR, run.tail()
    assert f"unknown adapter {name!r}" in run.output, run.tail()
    builtins = ", ".join(BUILTIN_ADAPTERS)
    assert f"({builtins})" in run.output, f"the built-in adapters ({builtins}) are not listed:\n{run.tail()}"
    assert "package.module:attr" in run.output, run.tail()
    if hint:
        assert hint in run.output, run.tail()
    assert "Traceback" not in run.output, f"a usage error, not a crash:\n{run.tail()}"
    assert not (run.report_dir / "results.json").exists()


# ------------------------------------------------------------------ contract breaches

BREACHES = ["raises_runtime", "wrong_shape", "wrong_dtype", "python_float"]


@pytest.fixture(scope="module")
def breach_run(tmp_path_factory) -> SuiteRun:
    """One run over every contract-breaching adapter: sigmoid's edge cases in float32."""
    adapters = [arg for name in BREACHES for arg in ("--adapter", f"{FAULTY}:{name}")]
    return run_suite(
        *adapters, "--loss", "sigmoid", "--dtype", "float32", "-k", "test_edge_cases",
        tmp=tmp_path_factory.mktemp("breaches"),
    )


def _failures_of(run: SuiteRun, name: str) -> list[dict[str, Any]]:
    """The adapter's records, which must all exist (one per sigmoid edge case) and all fail."""
    records = run.select(adapter=f"{FAULTY}:{name}")
    labels = sorted(r["case_label"] for r in records)
    assert labels == ["infinities", "large_magnitudes"], f"{name}: records for {labels}:\n{run.tail()}"
    for r in records:
        assert r["verdict"] == "fail", f"{name} [{r['case_label']}]: {r['verdict']}: {r['message']}"
        assert r["failure"] and r["failure"]["case"], f"{name}: the failure record has no case"
    return records


def test_breaching_adapters_fail_the_run_and_it_completes(breach_run):
    assert breach_run.returncode == TESTS_FAILED, breach_run.tail()
    assert (breach_run.report_dir / "results.json").is_file()
    assert (breach_run.report_dir / "index.html").is_file()
    assert len(breach_run.records) == 2 * len(BREACHES), breach_run.tail()
    assert {r["test"] for r in breach_run.records} == {"test_edge_cases"}
    assert {r["loss"] for r in breach_run.records} == {"sigmoid"}
    assert {r["dtype"] for r in breach_run.records} == {"float32"}


def test_adapter_raising_runtime_error_fails_with_its_text(breach_run):
    """A raising adapter fails each case with its exception, and the run goes on
    (both of its items, and the other adapters' items after them, are recorded)."""
    for r in _failures_of(breach_run, "raises_runtime"):
        assert f"raised RuntimeError: {RUNTIME_ERROR_TEXT}" in r["message"], r["message"]
        assert "sigmoid" in r["message"] and "float32" in r["message"], r["message"]
        assert r["adapter_version"] == "0.1"


def test_adapter_returning_wrong_shape_fails_naming_the_shape(breach_run):
    r = breach_run.one(adapter=f"{FAULTY}:wrong_shape", case_label="infinities")
    assert "shape (2, 1)" in r["message"] and "(2,)" in r["message"], r["message"]
    for r in _failures_of(breach_run, "wrong_shape"):
        assert "shape" in r["message"], r["message"]


def test_adapter_returning_wrong_dtype_fails_naming_the_dtype(breach_run):
    for r in _failures_of(breach_run, "wrong_dtype"):
        assert "dtype float64 for a float32 case" in r["message"], r["message"]


def test_adapter_returning_python_float_fails_asking_for_an_array(breach_run):
    for r in _failures_of(breach_run, "python_float"):
        assert "returned float" in r["message"], r["message"]
        assert "NumPy array" in r["message"], r["message"]


def test_failure_messages_carry_a_repro(breach_run):
    """Even a contract breach comes with the case and a snippet that calls the adapter."""
    r = breach_run.one(adapter=f"{FAULTY}:wrong_dtype", case_label="infinities")
    assert "case:" in r["message"] and "repro:" in r["message"], r["message"]
    assert f"from {FAULTY} import wrong_dtype" in r["message"], r["message"]


# ------------------------------------------------------------------ unsupported


@pytest.fixture(scope="module")
def unsupported_run(tmp_path_factory) -> SuiteRun:
    """Adapters that do not support sigmoid: one raises NotImplementedError, one lacks it.

    Only the generated and edge-case items: sigmoid has no invalid cases, no
    reduction and no properties, so the other tests have nothing to run.
    """
    return run_suite(
        "--adapter", f"{FAULTY}:not_implemented", "--adapter", f"{FAULTY}:lacks_sigmoid",
        "--loss", "sigmoid", "--dtype", "float64", "-rs",
        "-k", "test_matches_oracle or test_edge_cases",
        tmp=tmp_path_factory.mktemp("unsupported"),
    )


def test_unsupported_is_skipped_not_failed(unsupported_run):
    run = unsupported_run
    assert run.returncode == 0, f"unsupported must not fail the run:\n{run.tail()}"
    summary = run.output.strip().splitlines()[-1]
    assert re.fullmatch(rf"{len(run.records)} skipped, \d+ deselected in .*", summary), run.tail()
    assert f"unsupported: not-implemented.sigmoid: {NOT_IMPLEMENTED_TEXT}" in run.output, run.tail()
    assert "unsupported: adapter 'lacks-sigmoid' has no sigmoid" in run.output, run.tail()
    assert len(run.records) == 6, run.tail()
    assert (run.report_dir / "index.html").is_file()


def test_the_oracle_is_not_run_for_an_unsupported_call(monkeypatch):
    """An unsupported call is Unsupported before the oracle runs: it spends no budget and
    cannot fail the item as undecided (a CTC case whose exact loss is a float32 midpoint
    did, for an adapter without ctc_loss)."""

    def no_oracle(case, convention=None):
        raise AssertionError("the oracle ran for an unsupported call")

    monkeypatch.setattr(checks, "evaluate_oracle", no_oracle)
    adapter = load_adapter(f"{FAULTY}:not_implemented")
    with pytest.raises(checks.Unsupported, match=NOT_IMPLEMENTED_TEXT):
        checks.check_case(adapter, Case("sigmoid", {"input": np.array([0.5])}, {}, "float64"))


def test_an_adapter_writing_into_its_input_cannot_change_the_exact_value():
    """The adapter runs (first) on copies: the oracle judges the case as generated."""
    adapter = load_adapter(f"{FAULTY}:overwrites_input")
    case = Case("sigmoid", {"input": np.array([2.0, -3.0])}, {}, "float64")
    outcome = checks.check_case(adapter, case)
    assert not outcome.passed and outcome.observed.tolist() == [0.5, 0.5]
    assert case.args["input"].tolist() == [2.0, -3.0]


def test_property_that_never_called_the_adapter_is_no_example(tmp_path):
    """A property check that returns early (nothing to compare on a case) made no
    observation: it must not count as a passing example. An adapter supporting none of the
    regression losses gets "unsupported" for their properties, never "pass"."""
    run = run_suite(
        "--adapter", f"{FAULTY}:regression_not_implemented", "--loss", "huber_loss",
        "--dtype", "float64", "-k", "test_properties", tmp=tmp_path,
    )
    assert run.returncode == 0, run.tail()
    assert run.records, run.tail()
    for r in run.records:
        assert (r["verdict"], r["examples"]) == ("unsupported", 0), (r["nodeid"], r["verdict"], r["examples"])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not_implemented", NOT_IMPLEMENTED_TEXT),
        ("lacks_sigmoid", "has no sigmoid"),
    ],
)
def test_unsupported_records(unsupported_run, name, reason):
    records = unsupported_run.select(adapter=f"{FAULTY}:{name}")
    items = sorted((r["test"], r["case_label"] or "") for r in records)
    expected = [("test_edge_cases", "infinities"), ("test_edge_cases", "large_magnitudes"), ("test_matches_oracle", "")]
    assert items == expected, f"{name}: {items}\n{unsupported_run.tail()}"
    for r in records:
        assert r["verdict"] == "unsupported", f"{name} {r['test']} [{r['case_label']}]: {r['verdict']}"
        assert reason in r["message"], r["message"]
        assert r.get("failure") is None


def test_padding_property_case_describes_a_call_the_framework_accepts():
    """The multilabel_margin padding property carries its re-padded target beside the call
    (``Case.companion``), not as a keyword: a failure's case text and repro are then a call
    of ``F.multilabel_margin_loss`` as it exists, and the report's option labels stay real."""
    from hypothesis import given, settings

    from suites.properties import PROPERTIES

    prop = PROPERTIES["padding_after_terminator_ignored"]
    seen = []

    @settings(max_examples=10, database=None, deadline=None)
    @given(case=prop.cases("multilabel_margin_loss", "float64"))
    def draw(case):
        seen.append(case)

    draw()
    assert seen
    for case in seen:
        assert set(case.kwargs) <= {"reduction", "size_average", "reduce"}, case.kwargs
        assert "repadded" not in case.describe() and "repadded_target" in case.companion
        assert case.companion["repadded_target"].shape == case.args["target"].shape


def test_property_violation_names_the_derived_call_that_raised():
    """A property's derived call that raises (here the weight of ones that
    ``unit_weight_is_no_weight`` adds) is carried on the violation as ``call``, so that
    ``test_properties`` can look up the expectations entry describing *that* call (its
    features -- a class weight -- do not hold on the generated case). An accuracy violation
    between calls that all ran carries none: it is judged on the generated case alone."""
    from types import SimpleNamespace

    from suites.cases import Case
    from suites.properties import PROPERTIES, PropertyViolation

    def mse_loss(input, target, reduction="mean", weight=None):
        if weight is not None:
            raise ValueError("this backend rejects weights (lossconf harness test)")
        return np.asarray(np.mean((input - target) ** 2), dtype=input.dtype)

    adapter = SimpleNamespace(name="weightless", function=lambda fn: mse_loss if fn == "mse_loss" else None)
    case = Case("mse_loss", {"input": np.array([0.5, 1.0]), "target": np.array([0.0, 0.0])}, {"reduction": "mean"}, "float64")
    with pytest.raises(PropertyViolation, match="rejects weights") as raised:
        PROPERTIES["unit_weight_is_no_weight"].check(adapter, case)
    assert raised.value.call is not None and raised.value.call.kwargs["weight"].tolist() == [1.0, 1.0]
    assert "weight" not in case.kwargs

    def off_by_one(input, target, reduction="mean", weight=None):
        return np.asarray(np.mean((input - target) ** 2) + (weight is not None), dtype=input.dtype)

    adapter = SimpleNamespace(name="off", function=lambda fn: off_by_one if fn == "mse_loss" else None)
    with pytest.raises(PropertyViolation, match="weight of ones") as raised:
        PROPERTIES["unit_weight_is_no_weight"].check(adapter, case)
    assert raised.value.call is None
