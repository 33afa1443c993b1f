"""Recovering what a run leaves behind when it dies before writing its report.

A lossconf run keeps, in ``<report-dir>/.parts/``, one ``<worker>.jsonl`` of
finished records per test process (appended in one write as each item ends) and
one ``<worker>.inflight.json`` per process while an item runs (written by
``suites.isolation.FlightRecorder``: the item and the case its adapter was last
called with). A run killed outright (a segfault without xdist, SIGKILL, a CI
job's hard time limit) leaves exactly those; :func:`recover` makes them a
report marked incomplete, with each in-flight item recorded as an ``error``
naming its case (``python -m reports recover DIR``).

Like the rest of ``reports``, nothing here imports a framework.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reports.results import new_document, new_run_info, read_records

__all__ = ["INFLIGHT_SUFFIX", "PARTS_DIRNAME", "orphan_records", "recover"]

PARTS_DIRNAME = ".parts"
INFLIGHT_SUFFIX = ".inflight.json"


def orphan_records(parts: Path, why: str, *, worker: str | None = None, remove: bool = True) -> list[dict[str, Any]]:
    """``error`` records for the in-flight files in ``parts`` (only ``worker``'s if given),
    each naming its item, the case it died on and ``why``; the files are removed
    unless ``remove`` is false."""
    paths = [Path(parts) / f"{worker}{INFLIGHT_SUFFIX}"] if worker else sorted(Path(parts).glob(f"*{INFLIGHT_SUFFIX}"))
    records = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if remove:
            path.unlink(missing_ok=True)
        case = data.get("case") or ""
        message = f"{data.get('nodeid', '')}: {why}"
        if case:
            message += f"\n  case:     {case}"
        if data.get("repro"):
            message += "\n  repro:\n" + "\n".join("    " + line for line in data["repro"].splitlines())
        started = data.get("started")
        records.append({
            "nodeid": data.get("nodeid", ""),
            "test": data.get("test", ""),
            "adapter": data.get("adapter") or "",
            "loss": data.get("loss") or "",
            "dtype": data.get("dtype"),
            "case_label": data.get("case_label"),
            "wrt": data.get("wrt"),
            "verdict": "error",
            "message": message,
            "duration_s": round(time.time() - started, 3) if isinstance(started, (int, float)) else 0.0,
            "worker": data.get("worker"),
            "failure": {"case": case, "repro": data.get("repro", ""), "message": message, "observed": "", "exact": ""},
        })
    return records



def recover(report_dir: str | Path) -> dict[str, Any]:
    """The results document of an unfinished run from ``report_dir/.parts``, marked incomplete.

    Raises ``FileNotFoundError`` when there are no parts to recover (the run
    finished and wrote its report, or never started).
    """
    parts = Path(report_dir) / PARTS_DIRNAME
    if not parts.is_dir():
        raise FileNotFoundError(f"{parts} does not exist: nothing to recover (did the run finish?)")
    orphans = orphan_records(
        parts, "the run died while this case ran (recovered by python -m reports recover)", remove=False
    )
    records = [r for f in sorted(parts.glob("*.jsonl")) for r in read_records(f)] + orphans
    adapters = {r["adapter"]: {"version": r.get("adapter_version"), "module": r.get("adapter_module") or r["adapter"]} for r in records}
    run = new_run_info(started=None, finished=None, complete=False, adapters=adapters, argv=[])
    return new_document(run, records)
