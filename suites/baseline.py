"""Write a run's current failures as an expectations file: a baseline for adopting the suite.

    python -m suites.baseline lossconf-report/results.json [more.json ...] -o lossconf-baseline.toml
    pytest suites --adapter mypkg.losses --expectations lossconf-baseline.toml   # now passes

A project adopting lossconf usually starts with failures it cannot fix at once. A
baseline accepts exactly the failing test items of a run (one ``kind = "baseline"``
entry per item: its adapter, test, loss, dtype and fixed-case label), so CI gates on
*new* failures from day one, and every accepted one stays visible as a deviation in
the report. An entry has no ``when`` condition: it accepts any failing case of its
item, because a generated item's next failing case need not share the features of
this one. Run with ``--strict-expectations`` to learn when an accepted failure is
fixed (the entry turns XPASS), then delete it -- or replace it with a narrow, cited
entry (``suites/expectations.py``).

Records with verdict ``error`` (the harness or the adapter's loading broke outside any
case) cannot be accepted: they are listed, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["baseline_entries", "main", "render_toml"]

_ENTRY_KEYS = ("adapters", "tests", "losses", "dtypes", "labels", "when")


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(text, ensure_ascii=False)


def _first_lines(message: str, n: int = 4) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " | ".join(lines[:n])


def baseline_entries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One baseline entry per failing test item (legacy-argument variants of one item
    collapse into one entry), in a stable order."""
    entries: dict[tuple, dict[str, Any]] = {}
    for r in records:
        if r.get("verdict") != "fail":
            continue
        adapter = r.get("adapter_name") or r.get("adapter")
        label = r.get("case_label")
        wrt = r.get("wrt")  # a gradient item's differentiated parameter (when = wrt_<name>)
        key = (adapter, r["test"], r["loss"], r["dtype"], label, wrt)
        if key in entries:
            continue
        slug = "-".join(str(k) for k in key if k)
        version = f" {r['adapter_version']}" if r.get("adapter_version") else ""
        entries[key] = {
            "id": "baseline-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", slug),
            "kind": "baseline",
            "adapters": [adapter],
            "tests": [r["test"]],
            "losses": [r["loss"]],
            "dtypes": [r["dtype"]],
            "labels": [label] if label else [],
            "when": [f"wrt_{wrt}"] if wrt else [],
            "reason": f"failing when the baseline was written ({adapter}{version}): "
            + _first_lines(r.get("message", "")),
            "rerun": r.get("rerun") or "",
            "nodeid": r.get("nodeid", ""),
        }
    return [entries[k] for k in sorted(entries, key=lambda k: tuple(str(x) for x in k))]


def render_toml(entries: list[dict[str, Any]], sources: list[str]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = [
        "# lossconf baseline: the failures of a run, accepted as they were.",
        f"# Written {stamp} by `python -m suites.baseline` from {', '.join(sources)}.",
        "# Use: pytest suites --expectations THIS_FILE [--strict-expectations].",
        "# Replace entries with narrow, cited ones (suites/expectations.py) as you learn",
        "# why they fail; delete an entry when --strict-expectations reports it XPASS.",
    ]
    for e in entries:
        out.append("")
        out.append(f"# {e['nodeid']}")
        if e["rerun"]:
            out.append(f"# rerun: {e['rerun']}")
        out.append("[[expected]]")
        out.append(f"id = {_toml_string(e['id'])}")
        out.append(f"kind = {_toml_string(e['kind'])}")
        for key in _ENTRY_KEYS:
            if e[key]:
                out.append(f"{key} = [{', '.join(_toml_string(v) for v in e[key])}]")
        out.append(f"reason = {_toml_string(e['reason'])}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from reports import load_results

    from .expectations import ExpectationsError, load_expectations

    parser = argparse.ArgumentParser(
        prog="python -m suites.baseline",
        description="Write the failures of lossconf results (results.json, merged or per shard) "
        "as an expectations file that makes the same run pass.",
    )
    parser.add_argument("results", nargs="+", help="results.json file(s) of the run")
    parser.add_argument("-o", "--output", required=True, help="expectations file (TOML) to write")
    args = parser.parse_args(argv)

    records: list[dict[str, Any]] = []
    for path in args.results:
        try:
            records += load_results(path)["records"]
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    entries = baseline_entries(records)
    output = Path(args.output)
    output.write_text(render_toml(entries, args.results), encoding="utf-8")
    try:
        load_expectations(output)  # what we write must load
    except ExpectationsError as exc:  # pragma: no cover - a bug of this module
        print(f"error: wrote an invalid file: {exc}", file=sys.stderr)
        return 2
    failing = sum(1 for r in records if r.get("verdict") == "fail")
    print(f"{output}: {len(entries)} baseline entries for {failing} failing item(s) of {len(records)}")
    errors = [r for r in records if r.get("verdict") == "error"]
    for r in errors:
        print(f"cannot baseline an error (fix it): {r['nodeid']}: {_first_lines(r.get('message', ''), 1)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
