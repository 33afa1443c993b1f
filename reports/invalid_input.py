"""The report's "accepts invalid input" section: inputs the spec rejects that an adapter took.

``test_rejects_invalid_input`` calls each adapter on inputs that
``torch.nn.functional`` documents as errors (a class index out of range,
probabilities outside [0, 1], ``label_smoothing`` outside [0, 1], shape
mismatches, a wrong ``weight``/``pos_weight`` length, an unknown reduction). An
adapter that returns a number instead -- NaN, or a silently clipped or wrapped
value -- is a nonconformance of its own kind: the caller gets no error and a
plausible loss. Those records (``fail``, or ``deviation`` where an
expectations entry documents it) are listed here, one row each, with what the
adapter returned and the entry that documents it, if any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["INVALID_INPUT_TEST", "invalid_input_rows"]

INVALID_INPUT_TEST = "test_rejects_invalid_input"


def invalid_input_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (loss, invalid input, adapter) that returned a value instead of raising."""
    rows = []
    for r in records:
        if r.get("test") != INVALID_INPUT_TEST or r.get("verdict") not in ("fail", "deviation"):
            continue
        example = r.get("failure") or r.get("deviation_example") or {}
        deviations = r.get("deviations") or []
        rows.append({
            "loss": r.get("loss") or "",
            "label": r.get("case_label") or "",
            "adapter": r.get("adapter") or "",
            "verdict": r["verdict"],
            "returned": (example or {}).get("observed") or "",
            "case": (example or {}).get("case") or "",
            "documented": [
                {"id": d.get("id", ""), "kind": d.get("kind", ""), "citation": d.get("citation", "")}
                for d in deviations if isinstance(d, Mapping)
            ],
        })
    return sorted(rows, key=lambda row: (row["loss"], row["label"], row["adapter"]))
