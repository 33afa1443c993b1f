"""CI gating: strict expectations, XPASS/stale entries, rerun commands, JUnit details.

A pytest plugin (``conftest.py`` loads it through ``pytest_plugins``) with its options:

``--strict-expectations``
    An entry of a file given with ``--expectations`` (a project's baseline or its own
    entries) that applied to some checked case in this run and explained no failure
    (every case it matched conformed: *XPASS*) fails the run, the way
    ``xfail(strict=True)`` does: the implementation may have been fixed, and the entry
    would hide a regression. Without it, XPASS entries are a warning; so are always
    those of the built-in framework files (``adapters/expectations/``), whose conditions
    describe where a framework *may* deviate (e.g. an accuracy loss in a region).
``--example-db DIR`` (or ``LOSSCONF_EXAMPLE_DB``)
    Hypothesis's example database (failures found, replayed first next time) in
    ``DIR``, so CI can cache it between runs. Derandomized profiles use no database.

Entries are judged over the whole run, from the records of every pytest-xdist worker:

* *used*: explained at least one failing case (a deviation);
* *XPASS*: its condition held only in cases that conformed -- stale, or broader than
  the defect it documents;
* *not exercised*: no checked case met its condition (its loss was not selected, or
  no generated case hit it); nothing can be said.

Each failing item's report gets a ``lossconf: rerun this case`` section with the
command that reruns just that item with the same adapter, options, profile and seed
(derandomized profiles regenerate the same cases; random ones replay the failure from
the example database), and JUnit XML gets the verdict details as ``<property>``
elements of the test case (``lossconf.verdict``, ``lossconf.max_ulp``, ...).
Sharding across CI jobs is pytest-split's ``--splits N --group I``.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ExpectationUsage", "annotate_report", "expectation_usage", "junit_properties", "rerun_command"]

STRICT_FAILED = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossconf")
    group.addoption(
        "--strict-expectations", action="store_true",
        help="fail the run when an expectations entry matched only conforming cases (XPASS)",
    )
    group.addoption(
        "--example-db", metavar="DIR", default=os.environ.get("LOSSCONF_EXAMPLE_DB"),
        help="directory of Hypothesis's example database, e.g. for a CI cache "
        "(default: env LOSSCONF_EXAMPLE_DB, else Hypothesis's .hypothesis/)",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After Hypothesis's plugin has loaded ``--hypothesis-profile``: point the current
    profile at ``--example-db`` (the profile keeps its name, so the run records it)."""
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    db = config.getoption("example_db")
    if db:
        path = Path(db)
        if path.exists() and not path.is_dir():
            raise pytest.UsageError(f"--example-db {db}: not a directory")
        name = settings.get_current_profile_name()
        settings.register_profile(
            name, parent=settings.get_profile(name), database=DirectoryBasedExampleDatabase(path)
        )
        settings.load_profile(name)


# ------------------------------------------------------------------ rerun command


def rerun_command(item: pytest.Item) -> str:
    """The shell command that reruns ``item`` alone, as this run ran it."""
    from hypothesis import settings

    config = item.config
    args = [Path(sys.executable).name, "-m", "pytest", item.nodeid]
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "adapter" in params:
        args += ["--adapter", params["adapter"]]
    if config.getoption("device", "cpu") != "cpu":
        args += ["--device", config.getoption("device")]
    for path in config.getoption("expectations", []) or []:
        args += ["--expectations", path]
    if config.getoption("no_expectations", False):
        args.append("--no-expectations")
    args += ["--hypothesis-profile", settings.get_current_profile_name()]
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        args.append(f"--hypothesis-seed={seed}")
    if config.getoption("example_db", None) and not settings.default.derandomize:
        args += ["--example-db", config.getoption("example_db")]
    command = shlex.join(args)
    # Test ids are relative to the rootdir (the lossconf checkout).
    if Path.cwd().resolve() != config.rootpath.resolve():
        command = f"cd {shlex.quote(str(config.rootpath))} && {command}"
    return command


def _how_it_reproduces(config: pytest.Config) -> str:
    from hypothesis import settings

    if settings.default.derandomize:
        return "derandomized profile: the rerun generates the same cases"
    if config.getoption("hypothesis_seed", None) is not None:
        return "fixed seed: the rerun generates the same cases"
    return ("random profile: the rerun replays the failure from the example database "
            "(or add the @reproduce_failure blob printed above)")


# ------------------------------------------------------------------ per-item report


def junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The verdict details of one results record as JUnit ``<property>`` pairs."""
    props = [("lossconf.verdict", record["verdict"])]
    for key in ("adapter", "loss", "dtype", "case_label", "examples", "max_ulp", "max_normalized", "max_relative"):
        if record.get(key) is not None:
            props.append((f"lossconf.{key}", str(record[key])))
    if record.get("deviations"):
        props.append(("lossconf.deviations", " ".join(d["id"] for d in record["deviations"])))
    failure = record.get("failure") or {}
    if failure.get("case"):
        props.append(("lossconf.case", failure["case"]))
    if record.get("rerun"):
        props.append(("lossconf.rerun", record["rerun"]))
    return props


def annotate_report(item: pytest.Item, report: pytest.TestReport, record: dict[str, Any]) -> None:
    """Add the rerun command (failures) and the JUnit properties of ``record``.

    JUnit XML reads the properties from the item's last report (teardown), so they
    go to ``item.user_properties``, from which every later report copies them."""
    if record["verdict"] in ("fail", "error"):
        record["rerun"] = rerun_command(item)
        report.sections.append((
            "lossconf: rerun this case",
            f"{record['rerun']}\n({_how_it_reproduces(item.config)})",
        ))
    item.user_properties.extend(junit_properties(record))


# ------------------------------------------------------------------ expectations usage


@dataclass
class ExpectationUsage:
    """How each expectations entry fared over the run's records."""

    used: list = field(default_factory=list)  # (entry, deviations)
    xpass: list = field(default_factory=list)  # (entry, conforming cases)
    unexercised: list = field(default_factory=list)
    user_sources: frozenset = frozenset()  # files given with --expectations

    def lines(self, strict_sources: frozenset[str]) -> list[str]:
        out = []
        if self.used or self.xpass or self.unexercised:
            out.append(
                f"expectations: {len(self.used)} used, {len(self.xpass)} XPASS, "
                f"{len(self.unexercised)} not exercised by this run"
            )
        for entry, conforming in self.xpass:
            strict = entry.source in strict_sources
            head = f"{'XPASS(strict)' if strict else 'XPASS'} [{entry.id}] ({entry.source}): its condition held in {conforming} case(s), all conforming"
            if entry.source in self.user_sources:
                out.append(
                    f"{head}, and it explained no failure: the implementation may be fixed -- "
                    f"remove the entry or narrow it"
                    + ("" if strict else " (--strict-expectations fails the run on this)")
                )
            else:
                out.append(f"{head} (built-in entry; informational: it may describe a region, not every case in it)")
        return out

    def strict_failures(self, strict_sources: frozenset[str]) -> list:
        return [(e, n) for e, n in self.xpass if e.source in strict_sources]


def expectation_usage(entries, records: list[dict[str, Any]]) -> ExpectationUsage:
    """Classify ``entries`` as used / XPASS / not exercised from the run's ``records``."""
    deviations: dict[str, int] = {}
    conforming: dict[str, int] = {}
    for r in records:
        for d in r.get("deviations") or ():
            deviations[d["id"]] = deviations.get(d["id"], 0) + d["count"]
        for key, n in (r.get("expectations_conforming") or {}).items():
            conforming[key] = conforming.get(key, 0) + n
    usage = ExpectationUsage()
    for entry in entries:
        if deviations.get(entry.id):
            usage.used.append((entry, deviations[entry.id]))
        elif conforming.get(entry.id):
            usage.xpass.append((entry, conforming[entry.id]))
        else:
            usage.unexercised.append(entry)
    return usage


def finish_session(session: pytest.Session, records: list[dict[str, Any]]) -> None:
    """Judge the expectations over ``records``; under ``--strict-expectations`` an XPASS
    fails the run. The lines go to the terminal summary."""
    config = session.config
    usage = expectation_usage(getattr(config, "_lossconf_expectations", []), records)
    usage.user_sources = frozenset(str(Path(f)) for f in config.getoption("expectations"))
    # Strictness covers the project's own files (a baseline, its own entries). A built-in
    # framework file's conditions describe where the framework *may* deviate (an accuracy
    # loss in a region, say), so a case in that region that happens to conform is no
    # sign of a stale entry; those XPASS lines stay warnings.
    strict_sources = usage.user_sources if config.getoption("strict_expectations") else frozenset()
    config._lossconf_gating_lines = usage.lines(strict_sources)
    if usage.strict_failures(strict_sources) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = STRICT_FAILED
    failed = [r for r in records if r["verdict"] == "fail"]
    if failed:
        results = Path(config.getoption("report_dir")) / "results.json"
        config._lossconf_gating_lines.append(
            f"{len(failed)} conformance failure(s); each shows the case, a repro and the command "
            f"to rerun it. To accept the current failures as a baseline: {_baseline_command()} "
            f"{results} -o lossconf-baseline.toml, then run with --expectations lossconf-baseline.toml"
        )


def _baseline_command() -> str:
    """How to write a baseline, as the caller runs the suite: ``lossconf run`` (``lossconf/cli.py``)
    sets ``LOSSCONF_BASELINE_COMMAND``, because ``python -m suites.baseline`` only works from
    the checkout."""
    return os.environ.get("LOSSCONF_BASELINE_COMMAND") or "python -m suites.baseline"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = getattr(config, "_lossconf_gating_lines", None)
    if lines:
        terminalreporter.write_sep("-", "lossconf gating")
        for line in lines:
            terminalreporter.write_line(line)
