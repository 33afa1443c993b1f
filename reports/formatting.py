"""How numbers, durations and times read in the report.

Errors span from 0 to inf over tens of orders of magnitude, so they are shown
with at most three significant digits, in plain notation where that is short
(``0.5``, ``12``, ``1234``) and in scientific notation elsewhere
(``3.2e+07``, ``4.2e-18``).  Sorting never relies on these strings: the HTML
carries :func:`sort_key` values alongside.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

MISSING = "—"
"""What an unmeasured value (None) reads as."""


def format_number(value: Any) -> str:
    """A float for people: ``0.5``, ``3``, ``1234``, ``3.2e+07``, ``inf``, ``nan``; None is "—"."""
    if value is None:
        return MISSING
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1e5 or magnitude < 1e-3:
        mantissa, exponent = f"{x:.2e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{exponent}"
    if magnitude >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def format_count(value: Any) -> str:
    """An integer count with thousands separators: ``12 345``."""
    try:
        return f"{int(value):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return str(value)


def format_duration(seconds: Any) -> str:
    """A duration: ``250 ms``, ``3.4 s``, ``2 min 05 s``, ``1 h 02 min``; None is "—"."""
    if seconds is None:
        return MISSING
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if not math.isfinite(s):
        return format_number(s)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    minutes, secs = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_time(stamp: Any) -> str:
    """An ISO 8601 time stamp as ``2024-05-01 12:34:56 UTC``; unparseable stamps verbatim."""
    if not stamp:
        return MISSING
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    zone = parsed.tzname() or ""
    if zone in ("UTC+00:00", "UTC"):
        zone = "UTC"
    return f"{parsed:%Y-%m-%d %H:%M:%S} {zone}".rstrip()


def sort_key(value: Any) -> str:
    """A value for the table's ``data-sort`` attribute: numbers as JS can compare them.

    None sorts first (``-Infinity``); NaN (an undefined error) sorts last,
    after ``Infinity``, because it is the least reassuring value.
    """
    if value is None:
        return "-Infinity"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)
