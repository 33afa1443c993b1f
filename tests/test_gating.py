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
* ``--splits N --group I`` (pytest-split) partitions the test ids exactly;
* JUnit XML names every test id and carries its verdict as properties;
* ``--example-db DIR`` puts Hypothesis's database where CI can cache it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from hypothesis import Phase, settings

from suites.baseline import main as baseline_main
from suites.profiles import GATE_EXAMPLES

from .test_harness import ROOT, TESTS_FAILED, run_suite

TEXTBOOK = "tests.textbook_adapter"
DEFECT = ("--adapter", TEXTBOOK, "--loss", "binary_cross_entropy_with_logits", "--dtype", "float64")
SOUND = ("--adapter", TEXTBOOK, "--loss", "sigmoid", "--dtype", "float64")
OK = 0


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """The defective function under the gate profile: the run every test here starts from."""
    return run_suite(*DEFECT, tmp=tmp_path_factory.mktemp("failing"), profile="gate")


def test_gate_profile_is_derandomized_small_and_untargeted():
    gate = settings.get_profile("gate")
    assert gate.derandomize and gate.max_examples == GATE_EXAMPLES
    assert Phase.target not in gate.phases
    assert Phase.target in settings.get_profile("thorough").phases
    assert settings.get_profile("ci").derandomize


def test_a_failing_adapter_fails_with_an_actionable_message(failing_run):
    run = failing_run
    assert run.returncode == TESTS_FAILED, run.tail()
    failed = run.select(verdict="fail")
    assert failed, run.tail()
    for record in failed:
        assert record["rerun"].startswith(f"{__import__('pathlib').Path(sys.executable).name} -m pytest ")
        assert record["nodeid"] in record["rerun"] and f"--adapter {TEXTBOOK}" in record["rerun"]
        assert "--hypothesis-profile gate" in record["rerun"]
        assert record["failure"]["repro"] and record["failure"]["case"]
    assert "lossconf: rerun this case" in run.output
    assert "derandomized profile: the rerun generates the same cases" in run.output
    assert "does not conform to the spec" in run.output and "repro:" in run.output
    assert "python -m suites.baseline" in run.output, "the summary says how to accept the failures"


def test_the_rerun_command_reproduces_the_same_case(failing_run, tmp_path):
    record = failing_run.one(test="test_matches_oracle", verdict="fail")
    args = shlex.split(record["rerun"])
    assert args[:3] == [args[0], "-m", "pytest"]
    proc = subprocess.run(
        [sys.executable, *args[1:], "-p", "no:cacheprovider", "--report-dir", str(tmp_path / "rerun")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == TESTS_FAILED, output[-3000:]
    assert "1 failed" in output, output[-3000:]
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


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_strict_mode_turns_an_entry_that_now_passes_into_a_failure(tmp_path, workers):
    entries = tmp_path / "entries.toml"
    entries.write_text(XPASS_ENTRIES)
    lenient = run_suite(*SOUND, "--expectations", str(entries), *workers, tmp=tmp_path / "lenient", profile="gate")
    assert lenient.returncode == OK, lenient.tail()
    assert "expectations: 0 used, 1 XPASS, 1 not exercised by this run" in lenient.output, lenient.tail()
    assert "XPASS [sigmoid-edges-said-to-fail]" in lenient.output
    assert "kl-div-not-run]" not in lenient.output, "an entry the run never reached is not XPASS"
    strict = run_suite(
        *SOUND, "--expectations", str(entries), "--strict-expectations", *workers,
        tmp=tmp_path / "strict", profile="gate",
    )
    assert strict.returncode == TESTS_FAILED, strict.tail()
    assert "XPASS(strict) [sigmoid-edges-said-to-fail]" in strict.output, strict.tail()
    assert {r["verdict"] for r in strict.records} == {"pass"}, "the items themselves passed"


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


def test_junit_xml_names_every_test_id_and_carries_the_verdict(failing_run, tmp_path):
    xml = tmp_path / "junit.xml"
    run = run_suite(*DEFECT, f"--junitxml={xml}", tmp=tmp_path, profile="gate")
    assert run.returncode == TESTS_FAILED, run.tail()
    cases = ET.parse(xml).getroot().iter("testcase")
    by_name = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        by_name[case.get("name")] = (case, props)
    for record in run.records:
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


def test_example_db_that_is_a_file_is_a_usage_error(tmp_path):
    not_dir = tmp_path / "file"
    not_dir.write_text("")
    run = run_suite(*SOUND, "--example-db", str(not_dir), tmp=tmp_path)
    assert run.returncode == 4 and "--example-db" in run.output and "not a directory" in run.output, run.tail()
