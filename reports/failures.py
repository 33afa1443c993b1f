"""Failures grouped by root cause, for the report's failures section.

A run can fail the same way many times: one NaN at ``-inf`` logits shows up in
every dtype, in ``test_matches_oracle`` and ``test_edge_cases``.  A framework
author wants one entry per *cause*, with the smallest case that shows it and
every place it appears, not a page per test item.

The cause of a failure is read from its message, which the suite writes in one
shape (``suites/checks.py``): the ``why:`` line says what kind of mismatch it
was — ``non-finite nan where the exact value is finite``, ``error beyond the
bound of the error model``, an invalid input that was accepted...  A failure is
grouped by (adapter, loss, cause); where a message has no ``why:`` line its
first line stands in, with its numbers (not digits inside names such as
``float16``) and bracketed parameters masked, so that two cases differing only
in their values fall together.  Within a group the
representative is the failure with the shortest case text — Hypothesis has
already shrunk each one, and the shortest is the easiest to read and rerun.

Pure functions over normalized records (``reports.results``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from reports.results import CASE_FIELDS
from reports.summary import dtype_key, dtype_order

PROBLEM_VERDICTS = ("fail", "error", "undecided")
"""Verdicts that get a failure entry: a proven mismatch, a crash of the adapter or the harness,
or a case the oracle could not decide within its budget (never a pass)."""

_EMPTY_CASE: Mapping[str, Any] = {**dict.fromkeys(CASE_FIELDS), "features": []}

_WHY = re.compile(r"^\s*why:\s*(?P<why>.+?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_HEADER = re.compile(r"\[[^\]]*\]")


def root_cause(record: Mapping[str, Any]) -> str:
    """A short, value-free description of why ``record`` failed (its grouping key)."""
    detail = record.get("failure") or {}
    for text in (detail.get("message") or "", record.get("message") or ""):
        match = _WHY.search(text)
        if match:
            return match.group("why")
    text = (record.get("message") or detail.get("message") or "").strip()
    if not text:
        return f"{record.get('verdict') or 'error'} without a message"
    first = text.splitlines()[0]
    first = _HEADER.sub("[…]", first)
    first = _NUMBER.sub("#", first)
    return first[:200]


def _case_length(record: Mapping[str, Any]) -> int:
    detail = record.get("failure") or {}
    case = detail.get("case") or ""
    return len(case) if case else 10**9


def failure_groups(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fail and error records grouped by (adapter, loss, :func:`root_cause`).

    Returns groups ordered by adapter, loss, then most occurrences first::

        {"anchor": "failure-0", "adapter", "loss", "cause", "verdict",
         "count": records in the group, "dtypes": [...], "tests": [...],
         "features": case features common to every failure that recorded them,
         "representative": the record with the shortest case,
         "detail": its failure dict (observed, exact, ulp, normalized, case, repro, message),
         "others": the other records (nodeid, dtype, observed, exact)}
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("verdict") not in PROBLEM_VERDICTS:
            continue
        key = (record.get("adapter") or "", record.get("loss") or "", root_cause(record))
        groups.setdefault(key, []).append(record)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -len(kv[1]), kv[0][2]))
    out = []
    for i, ((adapter, loss, cause), members) in enumerate(ordered):
        members = sorted(members, key=lambda r: (_case_length(r), dtype_order(r.get("dtype")), r.get("nodeid") or ""))
        representative = members[0]
        feature_sets = [
            set((r.get("failure") or {}).get("features") or [])
            for r in members
            if isinstance((r.get("failure") or {}).get("features"), list)
        ]
        common = sorted(set.intersection(*feature_sets)) if feature_sets else []
        verdicts = {r.get("verdict") for r in members}
        out.append(
            {
                "anchor": f"failure-{i}",
                "adapter": adapter,
                "loss": loss,
                "cause": cause,
                "verdict": next(v for v in PROBLEM_VERDICTS if v in verdicts),
                "count": len(members),
                "dtypes": sorted({dtype_key(r.get("dtype")) for r in members}, key=dtype_order),
                "tests": sorted({r.get("test") or "" for r in members}),
                "features": common,
                "representative": representative,
                "detail": {**_EMPTY_CASE, **(representative.get("failure") or representative.get("worst") or {})},
                "others": [
                    {
                        "nodeid": r.get("nodeid") or "",
                        "dtype": dtype_key(r.get("dtype")),
                        "observed": (r.get("failure") or {}).get("observed") or "",
                        "exact": (r.get("failure") or {}).get("exact") or "",
                    }
                    for r in members[1:]
                ],
            }
        )
    return out


def first_failure_anchors(groups: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], str]:
    """``{(loss, adapter, dtype): anchor}`` of the first group that has a failure in that cell."""
    anchors: dict[tuple[str, str, str], str] = {}
    for group in groups:
        for dtype in group["dtypes"]:
            anchors.setdefault((group["loss"], group["adapter"], dtype), group["anchor"])
    return anchors
