"""pytest plugin of lossconf: options, Hypothesis profiles, adapter selection, results.

Options (``pytest suites --help``):

``--adapter NAME|package.module[:attr]``
    Repeatable. A built-in adapter by name, or a user's own implementation by
    import path. Default: every built-in adapter (those whose framework is not
    installed are skipped with the reason).
``--device DEVICE``   torch device for the built-in torch adapters (``cpu``, ``cuda``).
``--dtype NAME`` / ``--loss NAME``   restrict the run (repeatable).
``--report-dir DIR``  where ``results.json`` and ``index.html`` go (default ``lossconf-report``).

Results: every conformance test item appends one record to a per-process
``.jsonl`` file as soon as it finishes (nothing is lost if a worker dies);
the controlling process merges them at the end of the session -- also under
pytest-xdist -- into ``results.json`` and a self-contained ``index.html``.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

RECORDER_KEY = pytest.StashKey["object"]()
PARTS_DIRNAME = ".parts"

_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.differing_executors,
    ],
)
settings.register_profile("lossconf", max_examples=25, **_COMMON)
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=8, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("LOSSCONF_PROFILE", "lossconf"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossconf", "lossconf conformance suite")
    group.addoption(
        "--adapter", action="append", default=[], metavar="NAME",
        help="adapter to test: a built-in name (torch, torch-nn) or an import path "
        "package.module[:attr]; repeatable (default: all built-in adapters)",
    )
    group.addoption("--device", default="cpu", help="device for built-in adapters that have one (cpu, cuda)")
    group.addoption("--dtype", action="append", default=[], help="only this dtype (repeatable)")
    group.addoption("--loss", action="append", default=[], help="only this loss/function (repeatable)")
    group.addoption(
        "--expectations", action="append", default=[], metavar="FILE",
        help="expected-deviations file (TOML) to apply, in addition to the built-in adapters' own; repeatable",
    )
    group.addoption(
        "--no-expectations", action="store_true",
        help="ignore every expectations file: report each deviation as a failure",
    )
    group.addoption("--report-dir", default="lossconf-report", help="directory for results.json and index.html")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _parts_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("report_dir")).resolve() / PARTS_DIRNAME


def pytest_configure(config: pytest.Config) -> None:
    from adapters import BUILTIN_ADAPTERS, UnknownAdapterError, load_adapter
    from suites.registry import REGISTRY
    from suites.strategies import DTYPES

    for name in config.getoption("adapter"):
        if name in BUILTIN_ADAPTERS:
            continue
        try:
            load_adapter(name, device=config.getoption("device"))
        except UnknownAdapterError as exc:
            raise pytest.UsageError(str(exc)) from None
    for dtype in config.getoption("dtype"):
        if dtype not in DTYPES:
            raise pytest.UsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    for loss in config.getoption("loss"):
        if loss not in REGISTRY:
            raise pytest.UsageError(f"--loss {loss!r} is not in the registry: {', '.join(REGISTRY)}")
    config._lossconf_expectations = _load_all_expectations(config)
    config._lossconf_started = time.time()
    if not _is_worker(config):
        shutil.rmtree(_parts_dir(config), ignore_errors=True)


def _load_all_expectations(config: pytest.Config) -> list:
    """Every expectations entry this run applies; a malformed file is a usage error."""
    from adapters import BUILTIN_ADAPTERS
    from suites.expectations import (
        ExpectationsError,
        builtin_adapters_sharing,
        builtin_expectations_file,
        load_expectations,
    )

    if config.getoption("no_expectations"):
        return []
    builtin_files = {builtin_expectations_file(name) for name in selected_adapters(config)} - {None}
    # A built-in framework's entries apply to that framework's adapters only; a file
    # given with --expectations applies to every adapter unless an entry narrows it.
    sources = [(path, builtin_adapters_sharing(path, BUILTIN_ADAPTERS)) for path in sorted(builtin_files)]
    sources += [(Path(f), ()) for f in config.getoption("expectations")]
    entries = []
    for path, default_adapters in sources:
        try:
            entries += load_expectations(path, default_adapters=default_adapters)
        except ExpectationsError as exc:
            raise pytest.UsageError(str(exc)) from None
    return entries


def selected_adapters(config: pytest.Config) -> list[str]:
    from adapters import BUILTIN_ADAPTERS

    return config.getoption("adapter") or list(BUILTIN_ADAPTERS)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def load_adapter_cached(pytestconfig):
    """Load each adapter once per session; unavailable frameworks skip with the reason."""
    from adapters import AdapterUnavailableError, load_adapter

    cache: dict[str, object] = {}

    def load(name: str):
        if name not in cache:
            try:
                cache[name] = load_adapter(name, device=pytestconfig.getoption("device"))
            except AdapterUnavailableError as exc:
                cache[name] = exc
            else:
                _record_adapter_info(pytestconfig, name, cache[name])
        value = cache[name]
        if isinstance(value, Exception):
            pytest.skip(f"unavailable: {value}")
        return value

    return load


ADAPTERS_PART = "adapters.ndjson"


def _record_adapter_info(config: pytest.Config, name: str, adapter) -> None:
    """Append what the report says about an adapter (version, module, option table) to the
    parts directory, once per process: the controller never loads the frameworks itself."""
    import importlib

    from adapters.options import option_table_of
    from reports import append_record

    try:
        module = importlib.import_module(adapter.module)
    except ImportError:
        module = None
    table = option_table_of(adapter.implementation) or option_table_of(module)
    parts = _parts_dir(config)
    parts.mkdir(parents=True, exist_ok=True)
    append_record(
        parts / ADAPTERS_PART,
        {"name": name, "version": adapter.version, "module": adapter.module, "options": table},
    )


def _read_adapter_info(parts: Path) -> dict[str, dict]:
    """The adapter lines written by :func:`_record_adapter_info`, by adapter name."""
    import json

    info: dict[str, dict] = {}
    path = parts / ADAPTERS_PART
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("name"):
                info.setdefault(entry["name"], {k: v for k, v in entry.items() if k != "name"})
    return info


@pytest.fixture
def adapter(request, load_adapter_cached):
    return load_adapter_cached(request.param)


@pytest.fixture
def expected_deviation(request, adapter):
    """``lookup(case) -> Expectation | None`` for this adapter and test."""
    entries = request.config._lossconf_expectations
    test = request.node.originalname

    def lookup(case):
        return next((e for e in entries if e.matches(adapter.name, test, case)), None)

    return lookup


@pytest.fixture
def recorder(request):
    from suites.recording import ItemRecorder

    rec = ItemRecorder(request.node)
    request.node.stash[RECORDER_KEY] = rec
    return rec


# ------------------------------------------------------------------ results


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    rec = item.stash.get(RECORDER_KEY, None)
    is_conformance = "adapter" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")
    if not is_conformance:
        return report
    done = report.when == "call" or (report.when == "setup" and not report.passed)
    if done:
        from reports import append_record
        from suites.recording import record_from_report

        worker = getattr(item.config, "workerinput", {}).get("workerid", "main")
        record = record_from_report(item, report, call, rec, worker)
        parts = _parts_dir(item.config)
        parts.mkdir(parents=True, exist_ok=True)
        append_record(parts / f"{worker}.jsonl", record)
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect conformance items that pytest made from an empty parameter set (a loss
    with no invalid cases, say): they test nothing and would only clutter the report."""
    empty = [
        item for item in items
        if any("got empty parameter set" in str(m.kwargs.get("reason", "")) for m in item.iter_markers("skip"))
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _is_worker(config):
        return
    parts = _parts_dir(config)
    if not parts.is_dir():
        return
    from reports import ReportDirError, read_records, write_report
    from reports.results import new_document, new_run_info

    records = [r for f in sorted(parts.glob("*.jsonl")) for r in read_records(f)]
    if not records:
        return
    loaded = _read_adapter_info(parts)
    adapters = {}
    for r in records:
        adapters.setdefault(
            r["adapter"],
            loaded.get(r["adapter"])
            or {"version": r.get("adapter_version"), "module": r.get("adapter_module") or r["adapter"]},
        )
    started = config._lossconf_started
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    run = new_run_info(
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        duration_s=round(time.time() - started, 2),
        complete=not interrupted,
        adapters=adapters,
        platform=platform.platform(),
        python=sys.version.split()[0],
        device=config.getoption("device"),
        profile=settings._current_profile,
        seed=_seed_of(config),
        argv=list(config.invocation_params.args),
    )
    try:
        index = write_report(new_document(run, records), Path(config.getoption("report_dir")))
    except ReportDirError as exc:
        config._lossconf_report = f"could not write the report: {exc}"
        return
    shutil.rmtree(parts, ignore_errors=True)
    config._lossconf_report = f"lossconf report: {index} ({len(records)} records)"


def _seed_of(config: pytest.Config) -> str | None:
    """``--hypothesis-seed`` as text, or None when the run was not seeded (random per run)."""
    seed = config.getoption("hypothesis_seed", None)
    return None if seed is None else str(seed)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    line = getattr(config, "_lossconf_report", None)
    if line:
        terminalreporter.write_sep("-", "lossconf")
        terminalreporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize conformance tests: adapter x loss x dtype (x edge/invalid case)."""
    if "adapter" not in metafunc.fixturenames:
        return
    from suites.registry import REGISTRY
    from suites.strategies import DTYPES

    config = metafunc.config
    names = selected_adapters(config)
    metafunc.parametrize("adapter", names, indirect=True, ids=names, scope="function")
    losses = [n for n in REGISTRY if not config.getoption("loss") or n in config.getoption("loss")]
    dtypes = [d for d in DTYPES if not config.getoption("dtype") or d in config.getoption("dtype")]
    marker = metafunc.definition.get_closest_marker("cases")
    kind = marker.args[0] if marker else "generated"
    if kind == "generated":
        metafunc.parametrize("loss", losses)
        metafunc.parametrize("dtype", dtypes)
    elif kind in ("edge", "invalid"):
        table = "edge_cases" if kind == "edge" else "invalid_cases"
        pairs = [(n, label) for n in losses for label in getattr(REGISTRY[n], table)]
        metafunc.parametrize(("loss", "label"), pairs, ids=[f"{n}-{label}" for n, label in pairs])
        metafunc.parametrize("dtype", dtypes if kind == "edge" else dtypes[:1] or ["float32"])
    elif kind == "property":
        from suites.properties import PROPERTIES

        pairs = [(n, p) for p in sorted(PROPERTIES) for n in PROPERTIES[p].losses if n in losses]
        metafunc.parametrize(("loss", "prop"), pairs, ids=[f"{n}-{p}" for n, p in pairs])
        metafunc.parametrize("dtype", dtypes)
    elif kind == "reducing":
        # The legacy-argument mapping does not depend on the dtype: one is enough.
        metafunc.parametrize("loss", [n for n in losses if REGISTRY[n].reduces])
        metafunc.parametrize("dtype", ["float32"] if "float32" in dtypes else dtypes[:1])
