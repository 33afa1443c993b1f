"""Per-item result capture: what a conformance test saw, as one results record.

A test feeds every checked case's :class:`~suites.checks.Outcome` to its
:class:`ItemRecorder`; the plugin (``conftest.py``) turns the recorder and the
pytest report into one record (schema in ``reports/results.py``) and appends it
to the process's results file the moment the test finishes.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from .cases import Case, max_abs_input, repro_text
from .checks import ConformanceFailure, OracleUndecided, Outcome

__all__ = ["ItemRecorder", "record_from_report"]

MAX_SAMPLES = 200


def _finite_or_str(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


class ItemRecorder:
    """Accumulates outcomes of one test item: counts, worst case, the failure."""

    def __init__(self, node, flight=None, explained: set[str] | None = None):
        self.node = node
        self.flight = flight  # suites.isolation.FlightRecorder, or None
        # The ids of the entries that explained a deviation in this process, shared with
        # the expectations lookups (suites.expectations.ExpectationLookup): such an entry
        # is used, never XPASS, so conforming cases need not be asked about it.
        self.explained = explained
        self.last_case: Case | None = None
        self.last_adapter = None
        self.undecided = 0
        self.undecided_text = ""
        self.examples = 0
        self.unsupported = 0
        self.unsupported_reason = ""
        self.options: Counter[str] = Counter()
        self.worst: Outcome | None = None
        self.failure: Outcome | None = None
        self.failure_text = ""
        self.max_ulp = 0.0
        self.max_relative = 0.0
        self.samples: list[list[float | str]] = []
        self.deviations: dict[str, dict[str, Any]] = {}
        self.deviation_example: Outcome | None = None
        self.conforming_matches: Counter[str] = Counter()  # entry id -> conforming cases it met

    def add(self, outcome: Outcome) -> None:
        self.examples += 1
        self.options.update(outcome.case.option_labels())
        if outcome.verdict is not None:
            self.max_ulp = max(self.max_ulp, outcome.ulp)
            self.max_relative = max(self.max_relative, outcome.relative)
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append([max_abs_input(outcome.case), _finite_or_str(outcome.normalized), _finite_or_str(outcome.ulp)])
        if self.worst is None or outcome.normalized > self.worst.normalized:
            self.worst = outcome
        if not outcome.passed:
            self.failure = outcome  # Hypothesis replays the shrunk example last

    def note_case(self, case: Case, adapter) -> None:
        """``adapter`` is about to be called on ``case``: kept on disk (crash isolation)
        and here, so an error that is not a verdict (a timeout) still names its case."""
        self.last_case, self.last_adapter = case, adapter
        if self.flight is not None:
            self.flight.note_case(case, adapter)

    def add_undecided(self, case: Case, text: str) -> None:
        """The oracle could not decide this case within its budget: neither pass nor fail."""
        self.undecided += 1
        self.options.update(case.option_labels())
        self.undecided_text = self.undecided_text or f"{text}\n  case:     {case.describe()}"

    def add_failure_text(self, case: Case, text: str, observed: Any = None) -> None:
        """A failure that is not an oracle comparison (e.g. a property, an invalid input)."""
        self.examples += 1
        self.options.update(case.option_labels())
        self.failure = Outcome(case, False, None, observed, text)

    def add_deviation(self, expectation, outcome: Outcome) -> None:
        """A failing case explained by an expectations entry: counted, not raised.

        The first such case is kept whole, so the report can show what the framework
        returned next to the exact value; accuracy figures stay those of conforming cases."""
        self.add_deviation_text(expectation, outcome.case, outcome.message)
        if self.deviation_example is None:
            self.deviation_example = outcome

    def add_deviation_text(self, expectation, case: Case, text: str) -> None:
        self.examples += 1
        self.options.update(case.option_labels())
        entry = self.deviations.setdefault(
            expectation.id, {"expectation": expectation, "count": 0, "example": text}
        )
        entry["count"] += 1
        if self.explained is not None:
            self.explained.add(expectation.id)

    def deviation_summary(self) -> str:
        lines = []
        for d in self.deviations.values():
            lines.append(f"{d['expectation'].describe()} -- {d['count']} case(s); first:")
            lines += ["    " + line for line in d["example"].splitlines()]
        return "\n".join(lines)

    def add_conforming_matches(self, expectations) -> None:
        """A conforming case met these entries' conditions (evidence of an XPASS)."""
        self.conforming_matches.update(e.id for e in expectations)

    def add_unsupported(self, reason: str) -> None:
        self.unsupported += 1
        self.unsupported_reason = self.unsupported_reason or reason


def case_features(case: Case) -> list[str]:
    """The expectation features (``suites.expectations.FEATURES``) that hold for ``case``.

    Stored with a failing case so that the report can say what the failure's case
    has in common with others (``infinite_input``, ``subnormal_result``...) and a
    reader can write an expectations entry's ``when`` from it. A feature whose
    test raises on an unusual case is left out rather than failing the record.
    """
    from .expectations import FEATURES

    found = []
    for name, holds in FEATURES.items():
        try:
            if holds(case):
                found.append(name)
        except Exception:  # a feature test written for another loss's inputs
            continue
    return found


def _case_dict(outcome: Outcome | None, adapter, *, features: bool = False, repro: bool = True) -> dict[str, Any] | None:
    """A case of a record; ``repro=False`` leaves the repro snippet empty (a passing item's
    worst case: ``reports.results.PASSING_TRIM`` drops it from results.json anyway, and
    building it cost ~1 ms per item)."""
    if outcome is None:
        return None
    v = outcome.verdict
    case = outcome.case
    large = case.too_large_to_write()  # described by its shapes; no repro, no features
    extra = {"features": [] if large else case_features(case)} if features else {}
    return {
        **extra,
        "observed": repr(v.observed) if v else ("" if large else repr(outcome.observed)),
        "exact": str(v.exact) if v else "",
        "ulp": _finite_or_str(v.max_ulp) if v else None,
        "normalized": _finite_or_str(v.max_normalized) if v else None,
        "case": case.describe(),
        "repro": repro_text(adapter, case) if repro else "",
        "message": outcome.message,
    }


def _failure_dict(rec: ItemRecorder, adapter, message: str) -> dict[str, Any] | None:
    """The failing case; for an error that is no verdict (a timeout, say), the case
    the adapter was last called with."""
    if rec.failure is not None:
        return _case_dict(rec.failure, adapter, features=True)
    if rec.last_case is None:
        return None
    return _case_dict(
        Outcome(rec.last_case, False, None, None, message), rec.last_adapter or adapter, features=True
    )


def record_from_report(item, report, call, rec: ItemRecorder | None, worker: str) -> dict[str, Any]:
    """One results record for a finished conformance item."""
    params = item.callspec.params
    adapter = item.funcargs.get("adapter") if hasattr(item, "funcargs") else None
    if report.passed:
        verdict = "deviation" if rec is not None and rec.deviations else "pass"
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        verdict = "unsupported" if "unsupported" in reason else "skip"
    else:
        exc = call.excinfo.value if call.excinfo else None
        verdict = "fail" if isinstance(exc, (ConformanceFailure, AssertionError)) else "error"
        if isinstance(exc, OracleUndecided):
            verdict = "undecided"
    message = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
    elif verdict == "deviation":
        message = rec.deviation_summary()
    elif verdict == "undecided":
        message = str(call.excinfo.value) if call.excinfo else (rec.undecided_text if rec else "")
    elif report.failed:
        message = (rec.failure.message if rec and rec.failure else "") or str(call.excinfo.value if call.excinfo else report.longrepr)
    record: dict[str, Any] = {
        "nodeid": item.nodeid,
        "test": item.originalname,
        "adapter": params.get("adapter"),
        "adapter_name": getattr(adapter, "name", None),
        "adapter_version": getattr(adapter, "version", None),
        "adapter_module": getattr(adapter, "module", None),
        "loss": params.get("loss"),
        "dtype": params.get("dtype"),
        "case_label": params.get("label"),
        "wrt": params.get("wrt"),
        "verdict": verdict,
        "message": message[:20000],
        "duration_s": round(report.duration, 3),
        "worker": worker,
    }
    if rec is not None:
        record.update(
            examples=rec.examples,
            unsupported_examples=rec.unsupported,
            max_ulp=_finite_or_str(rec.max_ulp) if rec.examples else None,
            max_normalized=_finite_or_str(rec.worst.normalized) if rec.worst else None,
            max_relative=_finite_or_str(rec.max_relative) if rec.examples else None,
            worst=_case_dict(rec.worst, adapter, repro=verdict in ("fail", "error")),
            failure=_failure_dict(rec, adapter, message) if verdict in ("fail", "error") else None,
            undecided_examples=rec.undecided,
            # no features: an entry already explains the case (they help write one for a failure;
            # every feature of every deviation cost ~40 ms, some calling the oracle)
            deviation_example=_case_dict(rec.deviation_example, adapter),
            options=dict(rec.options),
            expectations_conforming=dict(rec.conforming_matches),
            samples=rec.samples,
            deviations=[
                {
                    "id": d["expectation"].id, "kind": d["expectation"].kind,
                    "reason": d["expectation"].reason, "citation": d["expectation"].citation,
                    "count": d["count"],
                }
                for d in rec.deviations.values()
            ],
        )
    return record
