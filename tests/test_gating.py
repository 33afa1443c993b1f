"""CI gating, seen from the outside: what a framework's CI job gets from the suite.

Each test runs ``pytest suites`` in a subprocess (``tests/test_harness.run_suite``) on
a small selection of ``tests/textbook_adapter.py`` -- whose
``binary_cross_entropy_with_logits`` has a seeded defect (the log of a rounded
sigmoid) and whose ``sigmoid`` has none -- under the ``gate`` profile:

* a failing adapter fails the run (exit 1), each failure with the case, a repro and
  the command that reruns it; that command, run alone, fails on the same case;
* ``python -m suites.baseline`` writes the run's failures as an expectations file,
  and the same run with ``--expectations`` that file passes, the failures recorded
  as deviations;
* an entry that matched only conforming cases is reported XPASS, and fails the run
  under ``--strict-expectations`` (also with pytest-xdist workers); an entry whose
  loss was not run is neither;
* a random profile's failure replays from ``--example-db DIR`` with its rerun command;
* ``--splits N --group I`` (pytest-split) partitions the test ids exactly;
* JUnit XML names every test id and carries its verdict as properties;
* ``--example-db DIR`` puts Hypothesis's database where CI can cache it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, settings

from suites.baseline import main as baseline_main
from suites.cases import Case
from suites.expectations import ExpectationLookup, load_expectations
from suites.gating import expectation_usage
from suites.profiles import GATE_EXAMPLES, GATE_SECONDARY_EXAMPLES

from .test_harness import ROOT, TESTS_FAILED, run_suite

TEXTBOOK = "tests.textbook_adapter"
DEFECT = ("--adapter", TEXTBOOK, "--loss", "binary_cross_entropy_with_logits", "--dtype", "float64")
SOUND = ("--adapter", TEXTBOOK, "--loss", "sigmoid", "--dtype", "float64")
OK = 0


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """The defective function under the gate profile, with JUnit XML (``junit.xml``
    beside the report): the run most tests here start from."""
    tmp = tmp_path_factory.mktemp("failing")
    return run_suite(*DEFECT, f"--junitxml={tmp / 'junit.xml'}", tmp=tmp, profile="gate")


def _rerun(command: str, tmp_path) -> str:
    """Run a failure's rerun command (with this interpreter); its output."""
    args = shlex.split(command)
    assert args[1:3] == ["-m", "pytest"], command
    proc = subprocess.run(
        [sys.executable, *args[1:], "-p", "no:cacheprovider", "--report-dir", str(tmp_path / "rerun"),
         "--lossconf-cache", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == TESTS_FAILED, output[-3000:]
    assert "1 failed" in output, output[-3000:]
    return output


def test_gate_profile_is_derandomized_small_and_untargeted():
    gate = settings.get_profile("gate")
    assert gate.derandomize and gate.max_examples == GATE_EXAMPLES
    assert Phase.target not in gate.phases
    assert Phase.target in settings.get_profile("thorough").phases
    assert settings.get_profile("ci").derandomize
    for name in ("lossconf", "gate", "ci", "dev", "thorough"):
        assert Phase.explain not in settings.get_profile(name).phases, name  # traced re-runs: minutes per failure


def test_gate_examples_per_check(tmp_path):
    """The gate gives the value test and the first parameter's gradient GATE_EXAMPLES
    cases each, properties and later parameters' gradients fewer, the legacy reduction
    arguments fewer still (suites/profiles.py GATE_SECONDARY_EXAMPLES); counted from the
    run's records of a real adapter (each example of these items calls it once)."""
    pytest.importorskip("torch")
    run = run_suite("--adapter", "torch", "--loss", "mse_loss", "--dtype", "float64", tmp=tmp_path, profile="gate")
    assert run.returncode == OK, run.tail()

    def examples(test: str, **fields) -> set[int]:
        found = {r["examples"] for r in run.select(test=test, **fields)}
        assert found, f"no {test} record {fields}"
        return found

    assert examples("test_matches_oracle") == {GATE_EXAMPLES}
    assert examples("test_properties") == {GATE_SECONDARY_EXAMPLES["test_properties"]}
    assert examples("test_legacy_reduction_arguments") == {GATE_SECONDARY_EXAMPLES["test_legacy_reduction_arguments"]}
    gradients = {r["wrt"]: r["examples"] for r in run.select(test="test_gradient_matches_oracle")}
    later = GATE_SECONDARY_EXAMPLES["gradient_later_parameter"]
    assert gradients == {"input": GATE_EXAMPLES, "target": later, "weight": later}, gradients
    assert later < GATE_EXAMPLES


def test_a_failing_adapter_fails_with_an_actionable_message(failing_run):
    run = failing_run
    assert run.returncode == TESTS_FAILED, run.tail()
    failed = run.select(verdict="fail")
    assert failed, run.tail()
    for record in failed:
        assert record["rerun"].startswith(f"{Path(sys.executable).name} -m pytest ")
        assert record["nodeid"] in record["rerun"] and f"--adapter {TEXTBOOK}" in record["rerun"]
        assert "--hypothesis-profile gate" in record["rerun"]
        assert record["failure"]["repro"] and record["failure"]["case"]
    assert "lossconf: rerun this case" in run.output
    assert "derandomized profile: the rerun generates the same cases" in run.output
    assert "does not conform to the spec" in run.output and "repro:" in run.output
    assert "python -m suites.baseline" in run.output, "the summary says how to accept the failures"


def test_the_rerun_command_reproduces_the_same_case(failing_run, tmp_path):
    record = failing_run.one(test="test_matches_oracle", verdict="fail")
    output = _rerun(record["rerun"], tmp_path)
    assert record["failure"]["case"] in output, "the rerun fails on another case"


def test_a_baseline_makes_the_same_run_pass(failing_run, tmp_path, capsys):
    baseline = tmp_path / "baseline.toml"
    assert baseline_main([str(failing_run.report_dir / "results.json"), "-o", str(baseline)]) == OK
    failed = {r["nodeid"] for r in failing_run.select(verdict="fail")}
    assert f"for {len(failed)} failing item(s)" in capsys.readouterr().out
    run = run_suite(*DEFECT, "--expectations", str(baseline), tmp=tmp_path, profile="gate")
    assert run.returncode == OK, run.tail()
    by_id = {r["nodeid"]: r for r in run.records}
    assert set(by_id) == {r["nodeid"] for r in failing_run.records}, "the same items ran"
    for nodeid in failed:
        assert by_id[nodeid]["verdict"] == "deviation", (nodeid, by_id[nodeid]["verdict"])
        assert all(d["kind"] == "baseline" for d in by_id[nodeid]["deviations"])
    assert "0 XPASS" in run.output, run.tail()


def test_baseline_of_an_unreadable_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text("[]")
    assert baseline_main([str(bad), "-o", str(tmp_path / "b.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a lossconf results file" in err and "\n" not in err


XPASS_ENTRIES = """
[[expected]]
id = "sigmoid-edges-said-to-fail"
kind = "bug"
tests = ["test_edge_cases"]
losses = ["sigmoid"]
reason = "claims the sigmoid edge cases fail; they conform"
citation = "https://example.org/fixed"

[[expected]]
id = "kl-div-not-run"
kind = "bug"
losses = ["kl_div"]
reason = "kl_div is not selected in this run"
citation = "https://example.org/not-run"
"""


def test_an_entry_that_now_passes_is_reported_xpass(tmp_path):
    entries = tmp_path / "entries.toml"
    entries.write_text(XPASS_ENTRIES)
    run = run_suite(*SOUND, "--expectations", str(entries), tmp=tmp_path, profile="gate")
    assert run.returncode == OK, run.tail()
    assert "expectations: 0 used, 1 XPASS, 1 not exercised by this run" in run.output, run.tail()
    assert "XPASS [sigmoid-edges-said-to-fail]" in run.output
    assert "kl-div-not-run]" not in run.output, "an entry the run never reached is not XPASS"


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_strict_mode_turns_an_entry_that_now_passes_into_a_failure(tmp_path, workers):
    entries = tmp_path / "entries.toml"
    entries.write_text(XPASS_ENTRIES)
    run = run_suite(
        *SOUND, "--expectations", str(entries), "--strict-expectations", *workers, tmp=tmp_path, profile="gate"
    )
    assert run.returncode == TESTS_FAILED, run.tail()
    assert "XPASS(strict) [sigmoid-edges-said-to-fail]" in run.output, run.tail()
    assert "kl-div-not-run]" not in run.output
    assert {r["verdict"] for r in run.records} == {"pass"}, "the items themselves passed"


def test_xpass_evidence_skips_conditions_the_oracle_cannot_evaluate(tmp_path):
    """An invalid input (rejected, as it should be) makes the oracle raise inside
    features; asking which entries it meets must not turn a pass into an error."""
    path = tmp_path / "e.toml"
    path.write_text(
        '[[expected]]\nid = "overflow"\nkind = "bug"\nlosses = ["binary_cross_entropy"]\n'
        'when = ["intermediate_exceeds_dtype_max"]\nreason = "r"\ncitation = "https://example.org"\n'
    )
    lookup = ExpectationLookup(load_expectations(path), "textbook", "test_rejects_invalid_input")
    invalid = Case("binary_cross_entropy", {"input": np.array([1.5]), "target": np.array([1.0])}, {}, "float64")
    assert lookup.conforming(invalid) == []


def test_usage_classifies_entries_over_all_records(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(XPASS_ENTRIES)
    fixed, not_run = load_expectations(path)
    records = [
        {"deviations": [], "expectations_conforming": {fixed.id: 2}},
        {"deviations": [{"id": not_run.id, "count": 1}], "expectations_conforming": {}},
    ]
    usage = expectation_usage([fixed, not_run], records)
    assert [e.id for e, _ in usage.used] == [not_run.id]
    assert [(e.id, n) for e, n in usage.xpass] == [(fixed.id, 2)]
    assert expectation_usage([fixed, not_run], records[:1]).unexercised == [not_run]
    # Strictness covers the files given with --expectations, not the built-in ones.
    assert usage.strict_failures(frozenset({str(path)})) == [(fixed, 2)]
    assert usage.strict_failures(frozenset({"adapters/expectations/jax.toml"})) == []


def _collected(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--adapter", TEXTBOOK, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == OK, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_shards_partition_the_test_ids_exactly(tmp_path):
    every = _collected()
    assert len(every) > 300
    shards = [_collected("--splits", "3", "--group", str(i), "--durations-path", str(tmp_path / "none")) for i in (1, 2, 3)]
    union = [nodeid for shard in shards for nodeid in shard]
    assert sorted(union) == sorted(every), "shards must cover every id exactly once"
    assert all(shards) and max(map(len, shards)) - min(map(len, shards)) <= 1, [len(s) for s in shards]
    again = _collected("--splits", "3", "--group", "2", "--durations-path", str(tmp_path / "none"))
    assert again == shards[1], "sharding is deterministic"


def test_junit_xml_names_every_test_id_and_carries_the_verdict(failing_run):
    xml = failing_run.report_dir.parent / "junit.xml"
    by_name = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        by_name[case.get("name")] = (case, {p.get("name"): p.get("value") for p in case.iter("property")})
    assert len(by_name) == len(failing_run.records)
    for record in failing_run.records:
        name = record["nodeid"].split("::", 1)[1]
        assert name in by_name, f"{name} is not a JUnit test case"
        case, props = by_name[name]
        assert props["lossconf.verdict"] == record["verdict"]
        assert props["lossconf.loss"] == record["loss"] and props["lossconf.dtype"] == record["dtype"]
        if record["verdict"] == "fail":
            assert case.find("failure") is not None
            assert props["lossconf.rerun"] == record["rerun"] and props["lossconf.case"]


def test_example_db_directory_is_used_and_named_in_the_rerun_command(tmp_path):
    db = tmp_path / "examples-cache"
    run = run_suite(*DEFECT, "--example-db", str(db), "-k", "test_matches_oracle", tmp=tmp_path, profile="dev", seed=None)
    assert run.returncode == TESTS_FAILED, run.tail()
    assert db.is_dir() and any(p.is_file() for p in db.rglob("*")), "no failing example saved"
    record = run.one(test="test_matches_oracle")
    assert f"--example-db {db}" in record["rerun"] and "--hypothesis-profile dev" in record["rerun"]
    assert "replays the failure from the example database" in run.output
    output = _rerun(record["rerun"], tmp_path)
    assert record["failure"]["case"] in output, "the database did not replay the failing case"


def test_example_db_that_is_a_file_is_a_usage_error(tmp_path):
    not_dir = tmp_path / "file"
    not_dir.write_text("")
    run = run_suite(*SOUND, "--example-db", str(not_dir), tmp=tmp_path)
    assert run.returncode == 4 and "--example-db" in run.output and "not a directory" in run.output, run.tail()
