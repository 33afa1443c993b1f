"""Inline SVG plots for the report: no library, no script, no network.

Two kinds, both drawn from the per-example samples that each record keeps
(``record["samples"]``: ``[max |input|, normalized error, ULP error]``, at most
``reports.results.MAX_SAMPLES`` per record):

* :func:`magnitude_plots` — error against input magnitude, one panel per softmax
  or sigmoid loss, one colour per adapter.  These losses add and subtract
  logits, so their error grows with ``max|x|`` (see README "Verdicts"); the
  panel shows whether an adapter's error stays under the bound (the line at 1)
  as the logits grow.
* :func:`distribution_plots` — the distribution of ULP errors, one panel per
  dtype, one bar per adapter and bin, as the share of that adapter's samples:
  how often an adapter is exact, within half an ULP (correctly rounded), within
  an ULP, or far off.

Every text in an SVG goes through :func:`html.escape`; the functions return
markup strings that the template inserts verbatim, so they must stay the only
place where the plots' markup is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from reports.summary import dtype_key, dtype_order

MAGNITUDE_LOSSES: tuple[str, ...] = (
    "cross_entropy",
    "log_softmax",
    "softmax",
    "binary_cross_entropy_with_logits",
    "sigmoid",
)
"""The softmax and sigmoid losses: the ones whose error scale is the logits' magnitude."""

PALETTE: tuple[str, ...] = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
"""Adapter colours (distinguishable in print and for the common colour-vision deficiencies
when paired with the legend's names); assigned in adapter-name order, cycling."""

ULP_BINS: tuple[tuple[str, float], ...] = (
    ("0", 0.0),
    ("≤ ½", 0.5),
    ("≤ 1", 1.0),
    ("≤ 4", 4.0),
    ("≤ 16", 16.0),
    ("≤ 2⁸", 256.0),
    ("≤ 2¹⁶", 65536.0),
    ("> 2¹⁶", math.inf),
)
"""Histogram bins of the ULP error: upper bounds, inclusive. Exact, correctly rounded
(≤ ½), faithful (≤ 1), then powers of 4 and 256; non-finite errors get their own bin."""

_W, _H = 440, 272
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 10, 56
_NORMALIZED_FLOOR = 1e-4  # below this (and 0) the error is drawn on the floor row


def adapter_colours(adapters: Iterable[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(adapters)))}


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x


def _samples(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, float, float, float]]:
    """(loss, adapter, dtype, magnitude, normalized, ulp) per sample; malformed samples dropped."""
    out = []
    for record in records:
        for sample in record.get("samples") or []:
            if not isinstance(sample, (list, tuple)) or len(sample) < 3:
                continue
            values = [_finite(v) for v in sample[:3]]
            if any(v is None for v in values):
                continue
            out.append(
                (
                    record.get("loss") or "",
                    record.get("adapter") or "",
                    dtype_key(record.get("dtype")),
                    values[0],
                    values[1],
                    values[2],
                )
            )
    return out


def _text(x: float, y: float, label: str, *, anchor: str = "middle", cls: str = "tick") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(label)}</text>'


def _svg(title: str, body: list[str], legend: Mapping[str, str], width: int = _W) -> str:
    items = []
    x = _LEFT
    for name, colour in legend.items():
        items.append(
            f'<rect x="{x}" y="{_H - 14}" width="10" height="10" fill="{colour}"/>'
            + _text(x + 14, _H - 5, name, anchor="start", cls="legend")
        )
        x += 24 + 7 * len(name)
    return (
        f'<svg class="plot" viewBox="0 0 {width} {_H}" width="{width}" height="{_H}" role="img" '
        f'aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "".join(items) + "</svg>"
    )


def _log_ticks(lo: int, hi: int, max_ticks: int = 7) -> list[int]:
    step = max(1, math.ceil((hi - lo) / max_ticks))
    return list(range(lo, hi + 1, step))


def _magnitude_panel(loss: str, points: list[tuple[str, str, float, float]], colours: Mapping[str, str]) -> str:
    """Scatter of normalized error (log) against max|input| (log), for one loss."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    mags = [m for _, _, m, _ in points if m > 0 and math.isfinite(m)]
    x_lo = math.floor(math.log10(min(mags))) if mags else 0
    x_hi = math.ceil(math.log10(max(mags))) if mags else 1
    x_hi = max(x_hi, x_lo + 1)
    errors = [e for _, _, _, e in points if math.isfinite(e) and e > 0]
    y_lo = int(math.log10(_NORMALIZED_FLOOR))
    y_hi = max(1, math.ceil(math.log10(max(errors)))) if errors else 1
    # x: a column for max|x| = 0 left of the log axis; y: floor row for 0 and a top row for inf/nan
    zero_w = 28
    # Positions are computed from log10 values: decades reach 308 (float64's max), and
    # 10.0**309 would overflow.
    def lx(v: float) -> float:
        return _LEFT + zero_w + (v - x_lo) / (x_hi - x_lo) * (plot_w - zero_w)
    def sx(m: float) -> float:
        if m <= 0 or not math.isfinite(m):
            return _LEFT + zero_w / 2
        return lx(math.log10(m))
    top_band = 28
    def ly(v: float) -> float:
        return _TOP + top_band + (1 - (v - y_lo) / (y_hi - y_lo)) * (plot_h - top_band)
    def sy(e: float) -> float:
        if not math.isfinite(e):
            return _TOP + top_band / 2
        return ly(math.log10(e) if e > _NORMALIZED_FLOOR else y_lo)
    body = [
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>',
        f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{ly(0):.1f}" y2="{ly(0):.1f}" class="bound"/>',
        _text(_LEFT + plot_w - 4, ly(0) - 4, "bound (fail above)", anchor="end", cls="bound-label"),
        _text(_LEFT - 6, _TOP + top_band / 2, "inf/nan", anchor="end"),
        f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{_TOP + top_band}" y2="{_TOP + top_band}" class="grid"/>',
        f'<line x1="{_LEFT + zero_w}" x2="{_LEFT + zero_w}" y1="{_TOP}" y2="{_TOP + plot_h}" class="grid"/>',
    ]
    for v in _log_ticks(y_lo, y_hi):
        y = ly(v)
        label = "≤1e-4" if v == y_lo else f"1e{v}"
        body.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        body.append(_text(_LEFT - 6, y + 4, label, anchor="end"))
    body.append(_text(_LEFT + zero_w / 2, _TOP + plot_h + 14, "0"))
    for v in _log_ticks(x_lo, x_hi):
        x = lx(v)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" class="grid"/>')
        if x - (_LEFT + zero_w / 2) >= 30:  # leave the "0" column's label readable
            body.append(_text(x, _TOP + plot_h + 14, f"1e{v}"))
    body.append(_text(_LEFT + plot_w / 2, _TOP + plot_h + 28, "max |input|", cls="axis"))
    body.append(
        f'<text transform="translate(12 {_TOP + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" class="axis">'
        "error / bound</text>"
    )
    drawn: set[tuple[str, int, int]] = set()
    for adapter, dtype, m, e in points:
        # One circle per adapter and pixel: repeats (Hypothesis replays a failing example
        # while shrinking) add bytes, not information.
        spot = (adapter, round(sx(m)), round(sy(e)))
        if spot in drawn:
            continue
        drawn.add(spot)
        tip = f"{adapter} {dtype}: max|x| = {m:.3g}, error = {e:.3g} × bound"
        body.append(
            f'<circle cx="{sx(m):.1f}" cy="{sy(e):.1f}" r="3" fill="{colours.get(adapter, "#555")}" '
            f'fill-opacity="0.6"><title>{escape(tip)}</title></circle>'
        )
    legend = {a: colours[a] for a in sorted({p[0] for p in points}) if a in colours}
    return _svg(f"{loss}: normalized error against input magnitude", body, legend)


def magnitude_plots(records: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``[{"loss", "svg"}]``: one scatter per softmax/sigmoid loss that has samples."""
    samples = _samples(records)
    colours = adapter_colours(r.get("adapter") or "" for r in records)
    panels = []
    for loss in MAGNITUDE_LOSSES:
        points = [(a, d, m, e) for lo, a, d, m, e, _ in samples if lo == loss]
        if points:
            panels.append({"loss": loss, "svg": _magnitude_panel(loss, points, colours)})
    return panels


def _bin_of(ulp: float) -> int:
    if not math.isfinite(ulp):
        return len(ULP_BINS)
    for i, (_, upper) in enumerate(ULP_BINS):
        if ulp <= upper:
            return i
    return len(ULP_BINS) - 1


def _distribution_panel(dtype: str, counts: Mapping[str, list[int]], colours: Mapping[str, str]) -> str:
    labels = [label for label, _ in ULP_BINS] + ["inf/nan"]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n_bins, adapters = len(labels), sorted(counts)
    slot = plot_w / n_bins
    bar = max(2.0, (slot - 6) / max(1, len(adapters)))
    body = [f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for pct in (0, 25, 50, 75, 100):
        y = _TOP + plot_h * (1 - pct / 100)
        body.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        body.append(_text(_LEFT - 6, y + 4, f"{pct}%", anchor="end"))
    for b, label in enumerate(labels):
        body.append(_text(_LEFT + slot * (b + 0.5), _TOP + plot_h + 14, label))
    for k, adapter in enumerate(adapters):
        total = sum(counts[adapter]) or 1
        for b, n in enumerate(counts[adapter]):
            if not n:
                continue
            height = plot_h * n / total
            x = _LEFT + slot * b + 3 + k * bar
            tip = f"{adapter} {dtype}: {n} of {total} samples with ULP error {labels[b]}"
            body.append(
                f'<rect x="{x:.1f}" y="{_TOP + plot_h - height:.1f}" width="{bar - 1:.1f}" height="{height:.1f}" '
                f'fill="{colours.get(adapter, "#555")}"><title>{escape(tip)}</title></rect>'
            )
    body.append(_text(_LEFT + plot_w / 2, _TOP + plot_h + 28, "ULP error", cls="axis"))
    legend = {a: colours[a] for a in adapters if a in colours}
    return _svg(f"{dtype}: distribution of ULP errors per adapter", body, legend)


def distribution_plots(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"dtype", "svg", "samples"}]``: one histogram per dtype that has samples."""
    samples = _samples(records)
    colours = adapter_colours(r.get("adapter") or "" for r in records)
    by_dtype: dict[str, dict[str, list[int]]] = {}
    for _, adapter, dtype, _, _, ulp in samples:
        bins = by_dtype.setdefault(dtype, {}).setdefault(adapter, [0] * (len(ULP_BINS) + 1))
        bins[_bin_of(ulp)] += 1
    return [
        {
            "dtype": dtype,
            "svg": _distribution_panel(dtype, by_dtype[dtype], colours),
            "samples": sum(sum(c) for c in by_dtype[dtype].values()),
        }
        for dtype in sorted(by_dtype, key=dtype_order)
    ]
