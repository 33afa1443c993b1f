"""The option coverage matrix: how each adapter provides each spec option, and how often it ran.

Two sources meet here.  A run's ``run.adapters[name].options`` is the adapter's
declared option table (``adapters.options.option_table_of``): for every loss,
each spec option's status — ``native``, ``composed`` or ``unsupported`` — and a
note naming the API or idiom.  A record's ``options`` counts the examples that
exercised each *case label* (``suites/cases.py``, ``Case.option_labels``:
``reduction=sum``, ``ignore_index=-1``, ``K=2 extra dims``, ...).
:func:`spec_option_of` maps a label to the spec option it exercises, so the
matrix can put the count next to the status: an option declared native that no
example exercised is a hole in the suite, and one declared unsupported that ran
is worth a look.

Pure functions over plain data: no framework, no NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FUNCTION_ROW = "(function)"
"""The table row for the loss function itself (every example counts toward it)."""

LEGACY_REDUCTION = "size_average/reduce (legacy)"

UNDECLARED = "undeclared"
"""Status shown for an adapter that publishes no option table (an external one may not)."""


CLASS_LOSSES = ("cross_entropy", "nll_loss")
"""Losses with a class axis: only for these is an input of rank > 2 the spec's
``(N, C, d1..dK)`` option; for elementwise losses extra dims are just a shape."""

IMPLIED: dict[str, tuple[str, ...]] = {"nll_loss": ("class-index target",)}
"""Options every example of a loss exercises (NLL's target is always class indices)."""


def spec_option_of(label: str, loss: str = "") -> str | None:
    """The spec option (``adapters.options.SPEC_OPTIONS`` name) a case label of ``loss`` exercises.

    None for a label that only restates a default (``label_smoothing=0``,
    ``log_target=False``) or a shape that is no option of ``loss``.  Unknown
    labels map to themselves, so a new label shows up in the matrix rather than
    vanishing.
    """
    key, sep, value = label.partition("=")
    if label.startswith("K=") and label.endswith("extra dims"):
        return "(N, C, d1..dK) input" if loss in CLASS_LOSSES else None
    if not sep:
        return label
    if key in ("size_average", "reduce"):
        return LEGACY_REDUCTION
    if key == "reduction":
        return f"reduction='{value}'"
    if key == "label_smoothing":
        return None if value in ("0", "0.0") else "label_smoothing"
    if key == "log_target":
        return "log_target" if value == "True" else None
    if key in ("ignore_index", "dim"):
        return key
    return key


def _exercised(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """``{(loss, adapter): {spec option: examples}}``, the function row counting every example."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for record in records:
        examples = int(record.get("examples") or 0)
        options = record.get("options") or {}
        if not examples and not options:
            continue
        loss = record.get("loss") or ""
        slot = counts.setdefault((loss, record.get("adapter") or ""), {})
        for option in (FUNCTION_ROW, *IMPLIED.get(loss, ())):
            slot[option] = slot.get(option, 0) + examples
        for label, n in options.items():
            option = spec_option_of(str(label), loss)
            if option is not None:
                slot[option] = slot.get(option, 0) + int(n or 0)
    return counts


def option_matrix(
    records: Iterable[Mapping[str, Any]], adapters: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One block per loss: its spec options as rows, one column per adapter.

    Returns ``[{"loss", "adapters": [name, ...], "rows": [{"option", "cells":
    [{"status", "note", "examples"}, ...]}]}]``. Rows follow the first declared
    table's order (the spec's), then any exercised option no table names.
    ``status`` is the declared one, or ``UNDECLARED``; ``examples`` counts the
    examples that exercised the option (0 when none did).
    """
    records = list(records)
    counts = _exercised(records)
    losses = sorted({loss for loss, _ in counts})
    names = sorted({a for _, a in counts} | {a for a in adapters if _table(adapters, a)})
    declared_losses = {loss for a in names for loss in _table(adapters, a)}
    blocks = []
    for loss in sorted(set(losses) | declared_losses):
        columns = [a for a in names if (loss, a) in counts or loss in _table(adapters, a)]
        if not columns:
            continue
        order: list[str] = []
        for a in columns:
            for option in _table(adapters, a).get(loss, {}):
                if option not in order:
                    order.append(option)
        for a in columns:
            for option in counts.get((loss, a), {}):
                if option not in order:
                    order.append(option)
        if FUNCTION_ROW in order:
            order.remove(FUNCTION_ROW)
        order.insert(0, FUNCTION_ROW)
        rows = []
        for option in order:
            cells = []
            for a in columns:
                table = _table(adapters, a)
                status, note = (UNDECLARED, "")
                if table:
                    status, note = _status(table.get(loss, {}).get(option))
                cells.append(
                    {"status": status, "note": note, "examples": counts.get((loss, a), {}).get(option, 0)}
                )
            rows.append({"option": option, "cells": cells})
        blocks.append({"loss": loss, "adapters": columns, "rows": rows})
    return blocks


def _table(adapters: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    table = (adapters.get(name) or {}).get("options")
    return table if isinstance(table, Mapping) else {}


def _status(entry: Any) -> tuple[str, str]:
    if isinstance(entry, (list, tuple)) and entry:
        return str(entry[0]), str(entry[1]) if len(entry) > 1 else ""
    return "unsupported", ""
