"""Expected deviations, one row per expectations entry, for the report.

A record whose failing cases all matched entries of an adapter's expectations
file (``adapters/expectations/<framework>.toml``) has verdict ``deviation`` and
lists the entries it met (``record["deviations"]``: id, kind, reason, citation,
count).  The report shows each entry once — what the framework does, whether it
is a documented convention (``semantic``) or a known ``bug``, the citation, and
where it was met — with the first deviating case's observed and exact values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from reports.summary import dtype_key, dtype_order

KIND_ORDER = ("bug", "accepts-invalid-input", "special-value", "semantic")
"""Order of the rows: defects first, then invalid input accepted, special values, conventions
(the kinds of ``suites.expectations.KINDS``)."""


def safe_link(url: Any) -> str | None:
    """``url`` if it is an http(s) address a report may link to, else None.

    Only the scheme is checked (the value is still HTML-escaped where used): a
    ``javascript:`` or ``data:`` citation from a hostile expectations file must
    not become a live link.
    """
    text = str(url or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else None


def deviation_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (adapter, expectation id) met in the run, in ``KIND_ORDER``.

    Each row: ``adapter, id, kind, reason, citation, link`` (the citation when
    it is an http(s) URL), ``cases`` (deviating examples), ``items`` (test
    items), ``losses``, ``dtypes``, ``tests``, and ``example`` — the first
    deviating case of an item that met only this entry (observed, exact, case,
    repro), or None.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        entries = record.get("deviations") or []
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            key = (record.get("adapter") or "", str(entry.get("id") or "?"))
            row = rows.setdefault(
                key,
                {
                    "adapter": key[0],
                    "id": key[1],
                    "kind": str(entry.get("kind") or ""),
                    "reason": str(entry.get("reason") or ""),
                    "citation": str(entry.get("citation") or ""),
                    "link": safe_link(entry.get("citation")),
                    "cases": 0,
                    "items": 0,
                    "losses": [],
                    "dtypes": [],
                    "tests": [],
                    "example": None,
                },
            )
            with contextlib.suppress(TypeError, ValueError):
                row["cases"] += int(entry.get("count") or 0)
            row["items"] += 1
            for field, value in (
                ("losses", record.get("loss") or ""),
                ("dtypes", dtype_key(record.get("dtype"))),
                ("tests", record.get("test") or ""),
            ):
                if value not in row[field]:
                    row[field].append(value)
            example = record.get("deviation_example")
            if row["example"] is None and len(entries) == 1 and isinstance(example, Mapping):
                row["example"] = example
    for row in rows.values():
        row["losses"].sort()
        row["dtypes"].sort(key=dtype_order)
        row["tests"].sort()
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return [
        rows[k]
        for k in sorted(rows, key=lambda k: (k[0], rank.get(rows[k]["kind"], len(rank)), k[1]))
    ]
