"""The report of a real run: its results.json against the schema, and its page in a real browser.

One small conformance run (``tests.textbook_adapter``, whose seeded defects fail, and
``torch`` where installed, whose documented deviations are met), Hypothesis profile
``dev`` with a fixed seed, writes ``results.json`` and ``index.html``. Then:

* ``results.json`` validates against ``reports/results.schema.json`` (JSON Schema);
* ``index.html`` opens in headless Chromium (Debian's ``chromium``, driven by
  Playwright) without a console error or an uncaught exception, a sortable column
  sorts both ways, the filter box hides the rows that do not match and brings them
  back, and a screenshot is taken (``LOSSCONF_SCREENSHOT=path`` keeps a copy: that is
  how ``docs/report-screenshot.png`` is made).

Chromium is found on PATH (``chromium``, ``chromium-browser``, ``google-chrome``) or named by
``LOSSCONF_CHROMIUM=/path/to/binary``. Where it or Playwright is missing the browser test
skips with the reason —
except under CI (``CI=true``), where a skipped browser test would hide a report that
no longer works, so it fails instead. ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reports.results import load_results

from .test_harness import run_suite

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "reports" / "results.schema.json"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` is false; under CI fail instead of skipping."""
    __tracebackhide__ = True
    if condition:
        return
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the report's browser checks must run in CI; see .ci/run)")
    pytest.skip(reason)


def _chromium() -> str | None:
    explicit = os.environ.get("LOSSCONF_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A small real run with failures (the textbook's defects), passes and, with torch, deviations."""
    adapters = ["--adapter", "tests.textbook_adapter"]
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        adapters += ["--adapter", "torch"]
    run = run_suite(
        *adapters,
        "--loss", "cross_entropy", "--loss", "binary_cross_entropy_with_logits", "--loss", "sigmoid",
        "--dtype", "float32", "-k", "test_matches_oracle or test_edge_cases",
        tmp=tmp_path_factory.mktemp("real-report"),
    )
    assert (run.report_dir / "index.html").is_file(), run.tail()
    return run


def test_results_json_validates_against_the_schema(real_run):
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    require(jsonschema is not None, "jsonschema is not installed (pip install -e '.[dev]')")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = json.loads((real_run.report_dir / "results.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert doc["records"], "the run recorded nothing"
    verdicts = {r["verdict"] for r in doc["records"]}
    assert {"pass", "fail"} <= verdicts, verdicts  # the textbook's defects fail, its sound parts pass
    textbook = doc["run"]["adapters"]["tests.textbook_adapter"]
    assert textbook["version"] == "1.0"
    failures = [r for r in doc["records"] if r["verdict"] == "fail" and r["failure"]]
    assert failures and all(r["failure"]["repro"] for r in failures)  # failing records are whole
    assert all("features" in r["failure"] for r in failures)
    if "torch" in doc["run"]["adapters"]:
        table = doc["run"]["adapters"]["torch"]["options"]
        assert table["cross_entropy"]["label_smoothing"][0] == "native"


def test_results_json_is_one_record_per_line(real_run):
    text = (real_run.report_dir / "results.json").read_text(encoding="utf-8")
    doc = load_results(real_run.report_dir / "results.json")
    record_lines = [line for line in text.splitlines() if line.startswith('{"nodeid"')]
    assert len(record_lines) == len(doc["records"])


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None, "playwright is not installed (pip install -e '.[dev]')")
    executable = _chromium()
    require(executable is not None, "no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        instance = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser, real_run):
    """The report open in a fresh page; ``page.problems`` collects console errors and exceptions."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    requests: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    tab.goto((real_run.report_dir / "index.html").resolve().as_uri())
    tab.wait_for_load_state("load")
    tab.problems = problems
    tab.requests = requests
    yield tab
    context.close()


def test_report_renders_without_console_errors_or_network(page, tmp_path):
    assert page.title().startswith("lossconf report")
    for section in ("summary", "failures", "accuracy", "plots", "coverage"):
        assert page.locator(f"section#{section}").count() == 1, section
    assert page.locator("article.failure").count() >= 1
    assert page.locator("svg.plot").count() >= 1
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("LOSSCONF_SCREENSHOT")
    if keep:
        page.screenshot(path=keep)
    assert page.problems == []
    others = [u for u in page.requests if not u.startswith("file://")]
    assert others == [], f"the report loaded external resources: {others}"


def _column(page, table, index: int) -> list[str]:
    return table.locator(f"tbody tr td:nth-child({index + 1})").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-sort') ?? c.textContent.trim())"
    )


def test_sorting_a_numeric_column_both_ways(page):
    table = page.locator("section#accuracy table.sortable")
    heads = table.locator("thead th")
    names = [h.strip() for h in heads.all_inner_texts()]
    index = next(i for i, name in enumerate(names) if name.startswith("max ULP"))
    assert len(_column(page, table, index)) >= 3, "too few rows to test sorting"

    def as_number(key: str) -> float:
        return {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("inf")}.get(key) or float(key)

    heads.nth(index).click()
    ascending = [as_number(k) for k in _column(page, table, index)]
    assert ascending == sorted(ascending)
    assert heads.nth(index).get_attribute("aria-sort") == "ascending"
    heads.nth(index).click()
    descending = [as_number(k) for k in _column(page, table, index)]
    assert descending == sorted(descending, reverse=True)
    assert descending != ascending or len(set(ascending)) == 1
    assert page.problems == []


def test_sorting_a_text_column(page):
    table = page.locator("section#accuracy table.sortable")
    heads = table.locator("thead th")
    index = [h.strip() for h in heads.all_inner_texts()].index("adapter")
    heads.nth(index).click()
    heads.nth(index).click()  # descending: the opposite of the rendered (ascending) order
    values = [v.lower() for v in _column(page, table, index)]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) >= 1


def test_filter_hides_non_matching_rows_and_escape_restores_them(page):
    rows = page.locator("[data-row]")
    total = rows.count()
    assert total > 5
    page.fill("#filter", "sigmoid")
    page.wait_for_function("document.getElementById('filter-status').textContent.length > 0")
    visible = page.locator("[data-row]:not([hidden])")
    shown = visible.count()
    assert 0 < shown < total
    texts = visible.evaluate_all("rows => rows.map(r => r.textContent.toLowerCase())")
    assert all("sigmoid" in t for t in texts)
    assert page.inner_text("#filter-status") == f"{shown} of {total} rows"
    page.fill("#filter", "sigmoid no-such-word-anywhere")
    page.wait_for_function("document.querySelectorAll('[data-row]:not([hidden])').length === 0")
    page.press("#filter", "Escape")
    page.wait_for_function(f"document.querySelectorAll('[data-row]:not([hidden])').length === {total}")
    assert page.problems == []
