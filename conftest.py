"""pytest plugin of lossconf: options, Hypothesis profiles, adapter selection, results.

Options (``pytest suites --help``):

``--adapter NAME|package.module[:attr]``
    Repeatable. A built-in adapter by name, or a user's own implementation by
    import path. Default: every built-in adapter (those whose framework is not
    installed are skipped with the reason).
``--device DEVICE``   torch device for the built-in torch adapters (``cpu``, ``cuda``).
``--dtype NAME`` / ``--loss NAME``   restrict the run (repeatable).
``--report-dir DIR``  where ``results.json`` and ``index.html`` go (default ``lossconf-report``).
``--oracle-budget SECONDS`` / ``--oracle-max-bits BITS``   the oracle's budget per evaluation;
    a case beyond it is *undecided* (never a pass).
``--memory-limit SIZE``   cap each test process's address space (``suites/isolation.py``).

Crash isolation (``suites/isolation.py``): each test process keeps its in-flight case
on disk; a worker that pytest-xdist reports crashed, or an item cut short by an
interrupt, is recorded as an error naming that case. SIGTERM interrupts like Ctrl-C.

CI options (``--strict-expectations``, ``--example-db``) and the rerun command of each
failure come from ``suites/gating.py``; the profiles from ``suites/profiles.py``.

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
from hypothesis import settings
from hypothesis.errors import InvalidArgument

from suites.oracle_cache import DEFAULT_DIR as DEFAULT_CACHE_DIR
from suites.profiles import DEFAULT_PROFILE, register_profiles

RECORDER_KEY = pytest.StashKey["object"]()
FLIGHT_KEY = pytest.StashKey["object"]()
#: Ids of the expectations entries that explained a deviation in this process (recorders add,
#: lookups skip them when collecting XPASS evidence).
EXPLAINED_KEY = pytest.StashKey[set]()
PARTS_DIRNAME = ".parts"  # reports.recovery.PARTS_DIRNAME

# CI gating (strict expectations, XPASS, rerun commands, JUnit details, --example-db).
pytest_plugins = ["suites.gating"]

# Profiles and their rationale: suites/profiles.py. An unknown one is a usage error
# raised in pytest_configure (a traceback at import time would say nothing useful).
register_profiles()
_PROFILE = os.environ.get("LOSSCONF_PROFILE", DEFAULT_PROFILE)
try:
    settings.load_profile(_PROFILE)
except InvalidArgument:
    _PROFILE_ERROR = (
        f"LOSSCONF_PROFILE={_PROFILE!r} is not a Hypothesis profile: use lossconf, ci, gate, dev or thorough"
    )
else:
    _PROFILE_ERROR = ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossconf", "lossconf conformance suite")
    group.addoption(
        "--adapter", action="append", default=[], metavar="NAME",
        help="adapter to test: a built-in name (torch, torch-nn) or an import path "
        "package.module[:attr]; repeatable (default: all built-in adapters but the opt-in "
        "torch-compile and torch-compile-dynamic)",
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
    # Reliability (suites/isolation.py, oracle.core.oracle_budget). The 60 s default: the
    # costliest generated case measured (cross_entropy, 64 x 300 float32 logits) takes ~3 s
    # on a loaded 2-core machine; 20x that only stops a pathological case.
    group.addoption(
        "--oracle-budget", type=float, default=60.0, metavar="SECONDS",
        help="time one oracle evaluation may take before its case is 'oracle undecided' (default 60)",
    )
    group.addoption(
        "--oracle-max-bits", type=int, default=None, metavar="BITS",
        help="precision ceiling of the oracle's Ziv loop (default 16384); beyond it a case is 'oracle undecided'",
    )
    group.addoption(
        "--lossconf-cache", default=None, metavar="DIR",
        help="directory shared by runs and xdist workers: the oracle's results (DIR/oracle) and JAX's "
        "compilation cache (DIR/jax); 'off' disables it (default $LOSSCONF_CACHE_DIR, else "
        f"{DEFAULT_CACHE_DIR} when the run collects suites/, else off)",
    )
    group.addoption(
        "--memory-limit", default=None, metavar="SIZE",
        help="cap each test process's address space (e.g. 8GiB): an adapter exhausting memory fails its case",
    )


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
    _configure_reliability(config)
    _configure_caches(config)
    _configure_run_seed(config)


def _configure_run_seed(config: pytest.Config) -> None:
    """One seed per run for random profiles, the same in every xdist worker, so that every
    adapter sees the same cases (suites/profiles.py ``separate_per_item``)."""
    import secrets

    from suites.profiles import item_seed, set_run_seed

    if _is_worker(config):
        seed = config.workerinput.get("lossconf_run_seed")
    else:
        given = config.getoption("hypothesis_seed", None)
        seed = secrets.randbits(63) if given is None else item_seed(0, str(given))
    config._lossconf_run_seed = seed
    previous = set_run_seed(seed)
    config.add_cleanup(lambda: set_run_seed(previous))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist: hand the run's seed to each worker."""
    node.workerinput["lossconf_run_seed"] = node.config._lossconf_run_seed


def _configure_caches(config: pytest.Config) -> None:
    """The on-disk caches of ``--lossconf-cache DIR`` (suites/caches.py), undone at the end.
    xdist workers resolve the same directory: they inherit the controller's working directory."""
    from suites.caches import configure_caches

    directory = config.getoption("lossconf_cache") or os.environ.get("LOSSCONF_CACHE_DIR")
    if not directory:
        # The project's own tests (pytest tests) evaluate the oracle with patched pieces and
        # budgets: they get no cache unless asked for one.
        directory = DEFAULT_CACHE_DIR if _runs_suites(config) else "off"
    if directory != "off":
        directory = str(Path(config.invocation_params.dir, directory))
    config.add_cleanup(configure_caches(None if directory == "off" else directory, selected_adapters(config)))


def _runs_suites(config: pytest.Config) -> bool:
    """Whether the command line names the conformance suite (``suites`` or a file in it)."""
    suites = Path(__file__).resolve().parent / "suites"
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == suites or suites in path.parents:
            return True
    return False


def _configure_reliability(config: pytest.Config) -> None:
    """Checks of the configuration (one-line usage errors) and crash isolation
    (suites/isolation.py): in-flight files, memory cap, SIGTERM as an interrupt."""
    import signal

    from suites.isolation import FlightRecorder, apply_memory_limit, parse_size

    if _PROFILE_ERROR:
        raise pytest.UsageError(_PROFILE_ERROR)
    if config.getoption("no_expectations") and config.getoption("expectations"):
        raise pytest.UsageError("--no-expectations contradicts --expectations FILE: give one or the other")
    budget, bits = config.getoption("oracle_budget"), config.getoption("oracle_max_bits")
    if not budget > 0 or (bits is not None and bits < 1):
        raise pytest.UsageError("--oracle-budget and --oracle-max-bits must be positive numbers")
    limit = config.getoption("memory_limit")
    try:
        limit = parse_size(limit) if limit is not None else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    parts = _parts_dir(config)
    problem = _unwritable(parts)
    if problem:
        raise pytest.UsageError(
            f"--report-dir {config.getoption('report_dir')}: cannot write there ({problem}); "
            "choose a directory you can write to"
        )
    controller = not _is_worker(config) and bool(getattr(config.option, "numprocesses", None))
    if not controller:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        config.stash[FLIGHT_KEY] = FlightRecorder(parts, worker)
        if limit is not None:
            config.add_cleanup(apply_memory_limit(limit))
    if not _is_worker(config):
        def interrupt(signum, frame):
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

        previous = signal.signal(signal.SIGTERM, interrupt)
        config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))


def _unwritable(path: Path) -> str:
    """Why ``path`` could not be created and written ("" if it can), without creating it:
    a run of the project's own tests must not leave a report directory behind."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return ""


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
    """The ``--adapter`` names, else every built-in but the opt-in ones (``OPT_IN_ADAPTERS``)."""
    from adapters import BUILTIN_ADAPTERS
    from adapters._loading import OPT_IN_ADAPTERS

    return config.getoption("adapter") or [a for a in BUILTIN_ADAPTERS if a not in OPT_IN_ADAPTERS]


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
    from suites.expectations import ExpectationLookup

    explained = request.config.stash.setdefault(EXPLAINED_KEY, set())
    return ExpectationLookup(request.config._lossconf_expectations, adapter.name, request.node.originalname, explained)


@pytest.fixture
def recorder(request):
    from suites.recording import ItemRecorder

    rec = ItemRecorder(
        request.node, flight=request.config.stash.get(FLIGHT_KEY, None), explained=request.config.stash.setdefault(EXPLAINED_KEY, set())
    )
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
        from suites.gating import annotate_report
        from suites.recording import record_from_report

        worker = getattr(item.config, "workerinput", {}).get("workerid", "main")
        record = record_from_report(item, report, call, rec, worker)
        annotate_report(item, report, record)
        parts = _parts_dir(item.config)
        parts.mkdir(parents=True, exist_ok=True)
        append_record(parts / f"{worker}.jsonl", record)
        if (flight := item.config.stash.get(FLIGHT_KEY, None)) is not None:
            flight.finish_item()
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note the item on disk before it runs (suites/isolation.py): a crash cannot hide it."""
    flight = item.config.stash.get(FLIGHT_KEY, None)
    if flight is not None and "adapter" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec"):
        flight.start_item(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """The oracle's per-evaluation budget (--oracle-budget, --oracle-max-bits)."""
    from oracle.core import OracleBudget, oracle_budget

    budget = OracleBudget(item.config.getoption("oracle_max_bits"), item.config.getoption("oracle_budget"))
    with oracle_budget(budget):
        return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched) -> None:
    """pytest-xdist replaced a dead worker: record its in-flight case as a failure."""
    from reports import append_record
    from suites.isolation import CRASH_HINT, orphan_records

    worker = report.node.gateway.id
    parts = _parts_dir(report.node.config)
    for record in orphan_records(parts, f"worker {worker!r} crashed while running this case; {CRASH_HINT}", worker=worker):
        append_record(parts / "crashed.jsonl", record)


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
    from reports import ReportDirError, append_record, read_records, write_report
    from reports.recovery import orphan_records
    from reports.results import new_document, new_run_info

    for record in orphan_records(parts, "the run ended (interrupted or killed) while this case ran"):
        append_record(parts / "interrupted.jsonl", record)
    records = [r for f in sorted(parts.glob("*.jsonl")) for r in read_records(f)]
    if not records:
        return
    loaded = _read_adapter_info(parts)
    from suites.gating import finish_session

    finish_session(session, records)
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
    elif kind == "gradient":
        # suites/test_conformance.py's gradient tests: loss x differentiated parameter
        pairs = [(n, wrt) for n in losses for wrt in REGISTRY[n].grad_wrt]
        metafunc.parametrize(("loss", "wrt"), pairs, ids=[f"{n}-{wrt}" for n, wrt in pairs])
        metafunc.parametrize("dtype", dtypes)
    elif kind == "gradient-edge":
        from suites.gradients import differentiable

        # each edge case once per parameter it has as a floating array (the builders are cheap)
        triples = [
            (n, label, wrt)
            for n in losses
            for label, build in REGISTRY[n].edge_cases.items()
            for wrt in REGISTRY[n].grad_wrt
            if wrt == REGISTRY[n].grad_wrt[0] or differentiable(build("float64"), wrt)
        ]
        metafunc.parametrize(("loss", "label", "wrt"), triples, ids=[f"{n}-{label}-{w}" for n, label, w in triples])
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
    elif kind == "llm":
        # suites/test_llm_scale.py: cross_entropy at a 128k vocabulary, in the dtypes LLMs train in.
        metafunc.parametrize("loss", [n for n in losses if n == "cross_entropy"])
        metafunc.parametrize("dtype", [d for d in dtypes if d in ("float32", "bfloat16", "float16")])
    elif kind == "reducing":
        # The legacy-argument mapping does not depend on the dtype: one is enough.
        metafunc.parametrize("loss", [n for n in losses if REGISTRY[n].reduces and REGISTRY[n].legacy_reduction_arguments])
        metafunc.parametrize("dtype", ["float32"] if "float32" in dtypes else dtypes[:1])
