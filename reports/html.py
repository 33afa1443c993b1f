"""The HTML report: one self-contained file a reader opens offline.

:func:`render_html` turns a results document into a single HTML page — CSS and
a little vanilla JavaScript inline, no network resource of any kind — and
:func:`write_report` writes it as ``index.html`` next to the ``results.json``
it was made from.

Every value from a results document is untrusted text (an adapter's message
may contain ``<script>``): the template is rendered by Jinja2 with
autoescaping on, and no data is ever placed inside the page's ``<script>``;
the JavaScript reads only the DOM (``data-sort`` attributes and text).  The
one markup built outside the templates is the plots' SVG
(``reports/plots.py``), which escapes every text it writes.

The page is a header (``templates/report.html.j2``) and a list of sections,
``SECTIONS``: each names a partial in ``templates/sections/`` and a function
that builds its data from the records (None leaves it out).  Another section
is one partial and one entry there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from reports import formatting as fmt
from reports.deviations import deviation_rows
from reports.failures import PROBLEM_VERDICTS, failure_groups, first_failure_anchors
from reports.invalid_input import invalid_input_rows
from reports.options import option_matrix
from reports.plots import distribution_plots, magnitude_plots
from reports.results import (
    trim_record,
    validate_document,
    write_json_atomic,
    write_text_atomic,
)
from reports.summary import (
    NO_DTYPE,
    VERDICTS,
    accuracy_rows,
    dtype_key,
    dtype_order,
    semantic_differences,
    summarize,
)

_HERE = Path(__file__).resolve().parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"

__all__ = ["PROBLEM_VERDICTS", "SECTIONS", "ReportData", "ReportDirError", "Section", "render_html", "write_report"]

ACCURACY_CASE_CHARS = 2000
"""The accuracy table shows at most this much of a worst case's text (a case with hundreds
of classes runs to tens of kB, once per row); failures always show their whole case."""

NOT_RUN_VERDICTS = ("unsupported", "skip")
"""Verdicts listed compactly, grouped by reason."""


class ReportDirError(OSError):
    """The report's output directory cannot be created or written.

    Its message is one line saying which directory and what to do about it.
    """


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=fmt.format_number,
        thousands=fmt.format_count,
        duration=fmt.format_duration,
        when=fmt.format_time,
        sortkey=fmt.sort_key,
        dtyperank=lambda dtype: dtype_order(dtype)[0],
    )
    return env


@functools.cache
def _inline_asset(name: str, closing_tag: str) -> Markup:
    """A static file's text, trusted (it ships with lossconf) to be inlined verbatim."""
    text = (_STATIC / name).read_text(encoding="utf-8")
    if closing_tag in text.lower():
        raise RuntimeError(f"reports/static/{name} must not contain {closing_tag!r}")
    return Markup(text)


def _not_run_groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unsupported and skipped records, one row per (verdict, adapter, loss, reason)."""
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for record in records:
        if record["verdict"] not in NOT_RUN_VERDICTS:
            continue
        key = (record["verdict"], record["adapter"], record["loss"], record["message"])
        group = groups.setdefault(
            key,
            {
                "verdict": key[0],
                "adapter": key[1],
                "loss": key[2],
                "reason": key[3],
                "count": 0,
                "dtypes": [],
                "tests": [],
            },
        )
        group["count"] += 1
        dtype = dtype_key(record["dtype"])
        if dtype not in group["dtypes"]:
            group["dtypes"].append(dtype)
        if record["test"] not in group["tests"]:
            group["tests"].append(record["test"])
    for group in groups.values():
        group["dtypes"].sort(key=dtype_order)
        group["tests"].sort()
    order = {verdict: i for i, verdict in enumerate(NOT_RUN_VERDICTS)}
    return [groups[k] for k in sorted(groups, key=lambda k: (order[k[0]], *k[1:]))]


def _matrix_rows(
    summary: Mapping[str, Any], first_anchor: Mapping[tuple[str, str, str], str]
) -> list[dict[str, Any]]:
    """The summary matrix as rows of ``{"cell", "group_start"}`` slots.

    ``cell`` is the summary cell plus the anchor of its first failure group
    (``link``), or None where a loss has no records for that column;
    ``group_start`` marks the first column of each adapter after the first.
    """
    rows = []
    columns = summary["columns"]
    for loss in summary["losses"]:
        cells = []
        for i, (adapter, dtype) in enumerate(columns):
            cell = summary["cells"][loss].get(adapter, {}).get(dtype)
            if cell is not None:
                cell = {**cell, "link": first_anchor.get((loss, adapter, dtype))}
            group_start = i > 0 and columns[i - 1][0] != adapter
            cells.append({"cell": cell, "group_start": group_start})
        rows.append({"loss": loss, "cells": cells})
    return rows


def _column_groups(columns: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Adapters with their dtype columns, for the matrix's two header rows."""
    groups: list[dict[str, Any]] = []
    for adapter, dtype in columns:
        if not groups or groups[-1]["adapter"] != adapter:
            groups.append({"adapter": adapter, "dtypes": []})
        groups[-1]["dtypes"].append(dtype)
    return groups


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class Section:
    """One section of the report: its anchor, navigation label and template partial.

    ``build(report)`` returns the partial's data (available there as ``data``),
    or None to leave the section out (an empty deviations table, say);
    ``count(data)`` gives the number shown beside the navigation link, or None.
    ``report`` is a :class:`ReportData`. To add a section, write
    ``templates/sections/<name>.html.j2`` and a :class:`Section` for it in
    ``SECTIONS`` (order = page order).
    """

    id: str
    title: str
    template: str
    build: Callable[[ReportData], Any]
    count: Callable[[Any], int | None] = lambda data: None
    badge: str = ""


@dataclass
class ReportData:
    """What every section builder may use: the normalized document and shared summaries."""

    doc: Mapping[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    failures: list[dict[str, Any]]

    @property
    def run(self) -> Mapping[str, Any]:
        return self.doc["run"]


def _summary_section(report: ReportData) -> dict[str, Any]:
    return {
        "summary": report.summary,
        "column_groups": _column_groups(report.summary["columns"]),
        "matrix": _matrix_rows(report.summary, first_failure_anchors(report.failures)),
    }


def _plots_section(report: ReportData) -> dict[str, Any] | None:
    magnitude, distribution = magnitude_plots(report.records), distribution_plots(report.records)
    if not magnitude and not distribution:
        return None
    return {
        "magnitude": [{**p, "svg": Markup(p["svg"])} for p in magnitude],
        "distribution": [{**p, "svg": Markup(p["svg"])} for p in distribution],
    }


def _or_none(value: Any) -> Any:
    return value or None


SECTIONS: list[Section] = [
    Section("summary", "Summary", "sections/summary.html.j2", _summary_section),
    Section(
        "failures", "Failures", "sections/failures.html.j2", lambda r: r.failures,
        count=lambda data: sum(g["count"] for g in data) or None, badge="v-fail",
    ),
    Section("accuracy", "Accuracy", "sections/accuracy.html.j2", lambda r: accuracy_rows(r.records)),
    Section("plots", "Plots", "sections/plots.html.j2", _plots_section),
    Section(
        "coverage", "Options", "sections/coverage.html.j2",
        lambda r: _or_none(option_matrix(r.records, r.run["adapters"])),
    ),
    Section(
        "deviations", "Deviations", "sections/deviations.html.j2",
        lambda r: _or_none(deviation_rows(r.records)), count=len, badge="v-deviation",
    ),
    Section(
        "invalid-input", "Invalid input", "sections/invalid_input.html.j2",
        lambda r: _or_none(invalid_input_rows(r.records)), count=len, badge="v-fail",
    ),
    Section(
        "differences", "Differences", "sections/differences.html.j2",
        lambda r: _or_none(semantic_differences(r.records)), count=len,
    ),
    Section("not-run", "Not run", "sections/not_run.html.j2", lambda r: _or_none(_not_run_groups(r.records))),
]
"""The report's sections in page order; see :class:`Section` to add one."""


def render_html(doc: Mapping[str, Any]) -> str:
    """The report for a results document, as one self-contained HTML page.

    ``doc`` is validated and normalized first (see
    :func:`reports.results.validate_document`), so a document built by hand
    with missing record fields still renders.
    """
    return _render(validate_document(dict(doc), "the document given to render_html"))


def _render(doc: Mapping[str, Any]) -> str:
    records = doc["records"]
    report = ReportData(doc=doc, records=records, summary=summarize(records), failures=failure_groups(records))
    sections = []
    for section in SECTIONS:
        data = section.build(report)
        if data is None and section.id != "failures":
            continue
        sections.append({"section": section, "data": data, "count": section.count(data) if data else None})
    context = {
        "run": doc["run"],
        "summary": report.summary,
        "verdicts": VERDICTS,
        "sections": sections,
        "schema_version": doc["schema_version"],
        "case_chars": ACCURACY_CASE_CHARS,
        "no_dtype": NO_DTYPE,
        "css": _inline_asset("report.css", "</style"),
        "js": _inline_asset("report.js", "</script"),
    }
    return _environment().get_template("report.html.j2").render(context)


def write_report(doc: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``results.json`` and ``index.html`` for ``doc`` into ``out_dir``; return the HTML's path.

    The directory is created if needed; both files are written atomically, so
    a reader (or a CI artifact upload) never sees half a report. ``results.json``
    is written before the page is rendered, so a rendering error cannot lose it.  Raises
    :class:`ReportDirError` if the directory cannot be created or written.
    """
    out = Path(out_dir)
    normalized = validate_document(dict(doc), "the document given to write_report")
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {**normalized, "records": [trim_record(r) for r in normalized["records"]]}
        # The results first: should rendering ever fail, the run's results survive, and
        # `python -m reports render DIR/results.json` can make the page later.
        write_json_atomic(out / "results.json", written)
        html = _render(normalized)
        return write_text_atomic(out / "index.html", html)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) or (out.exists() and not out.is_dir()):
            reason = "it exists and is not a directory"
        raise ReportDirError(
            f"cannot write the report to {out}: {reason}; choose a directory you can write to"
        ) from exc
