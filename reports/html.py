"""The HTML report: one self-contained file a reader opens offline.

:func:`render_html` turns a results document into a single HTML page — CSS and
a little vanilla JavaScript inline, no network resource of any kind — and
:func:`write_report` writes it as ``index.html`` next to the ``results.json``
it was made from.

Every value from a results document is untrusted text (an adapter's message
may contain ``<script>``): the template is rendered by Jinja2 with
autoescaping on, and no data is ever placed inside the page's ``<script>``;
the JavaScript reads only the DOM (``data-sort`` attributes and text).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from reports import formatting as fmt
from reports.invalid_input import invalid_input_rows
from reports.results import (
    CASE_FIELDS,
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
    option_coverage,
    semantic_differences,
    summarize,
)

_HERE = Path(__file__).resolve().parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"

PROBLEM_VERDICTS = ("fail", "error", "undecided")
"""Verdicts that get a full failure block with the case and its repro."""
NOT_RUN_VERDICTS = ("unsupported", "skip")
"""Verdicts listed compactly, grouped by reason."""


_EMPTY_CASE: Mapping[str, Any] = {field: None for field in CASE_FIELDS}


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


def _failure_groups(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The fail/error records in report order, each with an anchor id; and the
    anchor of the first failure per summary cell, for the matrix's links."""
    failures: list[dict[str, Any]] = []
    first_anchor: dict[str, str] = {}
    ordered = sorted(
        (r for r in records if r["verdict"] in PROBLEM_VERDICTS),
        key=lambda r: (r["loss"], r["adapter"], dtype_order(r["dtype"]), r["nodeid"]),
    )
    for i, record in enumerate(ordered):
        anchor = f"failure-{i}"
        detail = record["failure"] or record["worst"] or _EMPTY_CASE
        failures.append({"record": record, "anchor": anchor, "detail": detail})
        first_anchor.setdefault(_cell_id(record), anchor)
    return failures, first_anchor


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


def _cell_id(record: Mapping[str, Any]) -> str:
    return "\x1f".join((record["loss"], record["adapter"], dtype_key(record["dtype"])))


def _matrix_rows(
    summary: Mapping[str, Any], first_anchor: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The summary matrix as rows of ``{"cell", "group_start"}`` slots.

    ``cell`` is the summary cell plus the anchor of its first failure
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
                cell = {**cell, "link": first_anchor.get("\x1f".join((loss, adapter, dtype)))}
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


def render_html(doc: Mapping[str, Any]) -> str:
    """The report for a results document, as one self-contained HTML page.

    ``doc`` is validated and normalized first (see
    :func:`reports.results.validate_document`), so a document built by hand
    with missing record fields still renders.
    """
    return _render(validate_document(dict(doc), "the document given to render_html"))


def _render(doc: Mapping[str, Any]) -> str:
    records = doc["records"]
    summary = summarize(records)
    failures, first_anchor = _failure_groups(records)
    context = {
        "run": doc["run"],
        "records": records,
        "summary": summary,
        "verdicts": VERDICTS,
        "column_groups": _column_groups(summary["columns"]),
        "matrix": _matrix_rows(summary, first_anchor),
        "accuracy": accuracy_rows(records),
        "coverage": option_coverage(records),
        "failures": failures,
        "deviations": [r for r in records if r["verdict"] == "deviation"],
        "differences": semantic_differences(records),
        "invalid_input": invalid_input_rows(records),
        "not_run": _not_run_groups(records),
        "no_dtype": NO_DTYPE,
        "css": _inline_asset("report.css", "</style"),
        "js": _inline_asset("report.js", "</script"),
    }
    return _environment().get_template("report.html.j2").render(context)


def write_report(doc: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``results.json`` and ``index.html`` for ``doc`` into ``out_dir``; return the HTML's path.

    The directory is created if needed; both files are written atomically, so
    a reader (or a CI artifact upload) never sees half a report.  Raises
    :class:`ReportDirError` if the directory cannot be created or written.
    """
    out = Path(out_dir)
    normalized = validate_document(dict(doc), "the document given to write_report")
    html = _render(normalized)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "results.json", normalized)
        return write_text_atomic(out / "index.html", html)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) or (out.exists() and not out.is_dir()):
            reason = "it exists and is not a directory"
        raise ReportDirError(
            f"cannot write the report to {out}: {reason}; choose a directory you can write to"
        ) from exc
