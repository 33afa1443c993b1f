"""Verdicts and the summaries the report is built from.

Pure functions over records (dicts in the shape of ``reports.results``,
numeric fields already floats): per-cell verdict counts and largest errors
(:func:`summarize`), the accuracy table (:func:`accuracy_rows`) and option
coverage (:func:`option_coverage`).  Kept apart from the file handling in
``reports.results`` so that either can change without the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

VERDICTS: tuple[str, ...] = ("pass", "fail", "deviation", "error", "undecided", "unsupported", "skip")
"""Every verdict a record can carry, in the order the report lists them."""

# Severity decides a summary cell's colour.  A proven mismatch outranks a crash
# (an error says only that we could not tell); both outrank "undecided" (the
# oracle ran out of budget: nothing is known, but it is never a pass), and all
# three outrank a documented deviation.  Unsupported and skip rank below pass: a loss that runs and passes
# in a dtype is green even if one of its generic tests does not apply, and a
# cell is grey only when nothing in it ran.
VERDICT_SEVERITY: dict[str, int] = {
    "fail": 6,
    "error": 5,
    "undecided": 4,
    "deviation": 3,
    "pass": 2,
    "unsupported": 1,
    "skip": 0,
}

DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
"""The floating dtypes under test, widest first: the column order of the report."""

NO_DTYPE = "any"
"""Summary key for records whose test is not tied to one dtype (``dtype: None``)."""


def _worse(a: float | None, b: float | None) -> float | None:
    """The larger error of two; None means "not measured", NaN (an undefined error) dominates."""
    if a is None:
        return b
    if b is None:
        return a
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return max(a, b)


def _exceeds(new: float | None, old: float | None) -> bool:
    """Whether error ``new`` is strictly worse than ``old`` in the order of :func:`_worse`."""
    if new is None:
        return False
    if old is None:
        return True
    if math.isnan(old):
        return False
    return math.isnan(new) or new > old


def worst_verdict(verdicts: Iterable[str]) -> str | None:
    """The most severe verdict (see ``VERDICT_SEVERITY``); an unknown verdict counts as error."""
    best: str | None = None
    for verdict in verdicts:
        if best is None or _severity(verdict) > _severity(best):
            best = verdict
    return best


def _severity(verdict: str) -> int:
    return VERDICT_SEVERITY.get(verdict, VERDICT_SEVERITY["error"])


GRADIENT_TEST_PREFIX = "test_gradient"
"""Tests whose records judge a gradient (``suites/gradients.py``) rather than a value."""


def is_gradient(record: Mapping[str, Any]) -> bool:
    """Whether a record judges the gradient of a loss rather than its value."""
    return str(record.get("test") or "").startswith(GRADIENT_TEST_PREFIX)


def quantity(record: Mapping[str, Any]) -> str:
    """``"value"``, ``"gradient"``, or ``"gradient w.r.t. <param>"`` for a gradient record
    that names the parameter it differentiates by (``wrt``): what its errors measure."""
    if not is_gradient(record):
        return "value"
    return f"gradient w.r.t. {record['wrt']}" if record.get("wrt") else "gradient"


def _new_cell(*, with_gradient: bool = True) -> dict[str, Any]:
    cell = {
        "records": 0,
        "counts": dict.fromkeys(VERDICTS, 0),
        "examples": 0,
        "max_ulp": None,
        "max_normalized": None,
        "max_relative": None,
        "worst_verdict": None,
        "worst": None,
        "worst_nodeid": None,
        "duration_s": 0.0,
    }
    if with_gradient:
        cell["gradient"] = None  # the same tallies over gradient records only, once there are any
    return cell


def _add_to_cell(cell: dict[str, Any], record: Mapping[str, Any]) -> None:
    verdict = record.get("verdict") or "error"
    cell["records"] += 1
    cell["counts"][verdict] = cell["counts"].get(verdict, 0) + 1
    cell["examples"] += int(record.get("examples") or 0)
    cell["max_ulp"] = _worse(cell["max_ulp"], record.get("max_ulp"))
    cell["max_relative"] = _worse(cell["max_relative"], record.get("max_relative"))
    normalized = record.get("max_normalized")
    if _exceeds(normalized, cell["max_normalized"]):
        cell["worst"] = record.get("worst")
        cell["worst_nodeid"] = record.get("nodeid")
    cell["max_normalized"] = _worse(cell["max_normalized"], normalized)
    cell["worst_verdict"] = worst_verdict(
        v for v in (cell["worst_verdict"], verdict) if v is not None
    )
    cell["duration_s"] += float(record.get("duration_s") or 0.0)
    if "gradient" in cell and is_gradient(record):
        if cell["gradient"] is None:
            cell["gradient"] = {**_new_cell(with_gradient=False), "wrt": []}
        _add_to_cell(cell["gradient"], record)
        if record.get("wrt") and record["wrt"] not in cell["gradient"]["wrt"]:
            cell["gradient"]["wrt"].append(record["wrt"])  # the parameters differentiated


def dtype_key(dtype: str | None) -> str:
    """The summary key of a record's dtype: the dtype name, or ``NO_DTYPE`` for None."""
    return dtype if dtype else NO_DTYPE


def dtype_order(dtype: str | None) -> tuple[int, str]:
    """Sort key putting dtypes widest first (``DTYPES``), then others by name, ``NO_DTYPE`` among them."""
    dtype = dtype_key(dtype)
    return (DTYPES.index(dtype), "") if dtype in DTYPES else (len(DTYPES), dtype)


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and largest errors per (loss, adapter, dtype) and per (loss, adapter).

    Returns::

        {"losses":   [loss, ...]                      # sorted
         "adapters": [adapter, ...]                   # sorted
         "columns":  [(adapter, dtype), ...]          # matrix columns: adapter, then dtype widest first
         "cells":    {loss: {adapter: {dtype: cell}}} # dtype None is keyed NO_DTYPE
         "totals":   {loss: {adapter: cell}}
         "overall":  cell}

    and a *cell* is ``{"records", "counts": {verdict: n}, "examples", "max_ulp",
    "max_normalized", "max_relative", "worst_verdict", "worst", "worst_nodeid",
    "duration_s", "gradient"}``: ``gradient`` is None, or the same tallies over the
    cell's gradient records only (the matrix's gradient line); ``counts`` has every verdict in ``VERDICTS`` (zeros
    included); the maxima are None when no record measured them and NaN when
    one measured an undefined error; ``worst`` is the worst-case dict of the
    record with the largest normalized error.
    """
    cells: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    totals: dict[str, dict[str, dict[str, Any]]] = {}
    overall = _new_cell()
    columns: set[tuple[str, str]] = set()
    for record in records:
        loss, adapter = record.get("loss") or "", record.get("adapter") or ""
        dtype = dtype_key(record.get("dtype"))
        columns.add((adapter, dtype))
        _add_to_cell(
            cells.setdefault(loss, {}).setdefault(adapter, {}).setdefault(dtype, _new_cell()),
            record,
        )
        _add_to_cell(totals.setdefault(loss, {}).setdefault(adapter, _new_cell()), record)
        _add_to_cell(overall, record)
    return {
        "losses": sorted(cells),
        "adapters": sorted({a for a, _ in columns}),
        "columns": sorted(columns, key=lambda c: (c[0], dtype_order(c[1]))),
        "cells": cells,
        "totals": totals,
        "overall": overall,
    }


def accuracy_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (loss, adapter, dtype, test, quantity) among records that measured an error.

    Kept per test and quantity so that forward values and gradients (or random and edge
    cases, or the gradients w.r.t. different parameters) are graded separately. Each row is
    a summary cell (see :func:`summarize`) plus its ``loss``, ``adapter``, ``dtype``,
    ``test`` and ``quantity`` (``"value"``, ``"gradient"`` or ``"gradient w.r.t. target"``,
    :func:`quantity`).
    """
    rows: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for record in records:
        if all(record.get(f) is None for f in ("max_ulp", "max_normalized", "max_relative")):
            continue
        key = (
            record.get("loss") or "",
            record.get("adapter") or "",
            dtype_key(record.get("dtype")),
            record.get("test") or "",
            quantity(record),
        )
        cell = rows.get(key)
        if cell is None:
            cell = rows[key] = {
                **_new_cell(with_gradient=False),
                "loss": key[0],
                "adapter": key[1],
                "dtype": key[2],
                "test": key[3],
                "quantity": quantity(record),
            }
        _add_to_cell(cell, record)
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1], dtype_order(k[2]), k[3], k[4]))]


def option_coverage(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """How many examples exercised each option: ``{loss: {adapter: {option: examples}}}``."""
    coverage: dict[str, dict[str, dict[str, int]]] = {}
    for record in records:
        options = record.get("options") or {}
        if not options:
            continue
        slot = coverage.setdefault(record.get("loss") or "", {}).setdefault(
            record.get("adapter") or "", {}
        )
        for option, count in options.items():
            slot[option] = slot.get(option, 0) + int(count or 0)
    return coverage


def semantic_differences(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Where adapters disagree on the same fixed case: one row per edge case and dtype.

    Edge cases are small, hand-written and identical for every adapter, so they are
    the smallest cases on which frameworks can be compared. A row appears when at
    least two adapters ran the case and their verdicts or observed values differ;
    it carries the exact value and each adapter's value and verdict.
    """
    groups: dict[tuple[str, str, str], dict[str, Mapping[str, Any]]] = {}
    for record in records:
        if record.get("test") != "test_edge_cases" or not record.get("case_label"):
            continue
        key = (record.get("loss") or "", record.get("case_label") or "", dtype_key(record.get("dtype")))
        groups.setdefault(key, {})[record.get("adapter") or ""] = record
    rows = []
    for (loss, label, dtype), by_adapter in sorted(groups.items()):
        if len(by_adapter) < 2:
            continue
        values = {name: _observed_of(r) for name, r in by_adapter.items()}
        verdicts = {name: r.get("verdict") for name, r in by_adapter.items()}
        if len(set(values.values())) < 2 and len(set(verdicts.values())) < 2:
            continue
        exact = next((_exact_of(r) for r in by_adapter.values() if _exact_of(r)), "")
        case = next((_case_of(r) for r in by_adapter.values() if _case_of(r)), "")
        rows.append(
            {
                "loss": loss, "label": label, "dtype": dtype, "exact": exact, "case": case,
                "adapters": [
                    {"name": name, "observed": values[name], "verdict": verdicts[name]}
                    for name in sorted(by_adapter)
                ],
            }
        )
    return rows


def _detail(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record.get("failure") or record.get("deviation_example") or record.get("worst") or {}


def _observed_of(record: Mapping[str, Any]) -> str:
    return str(_detail(record).get("observed") or "")


def _exact_of(record: Mapping[str, Any]) -> str:
    return str(_detail(record).get("exact") or "")


def _case_of(record: Mapping[str, Any]) -> str:
    return str(_detail(record).get("case") or "")
