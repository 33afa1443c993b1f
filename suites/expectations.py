"""Expected deviations: documented, cited differences an adapter is allowed to have.

An expectations file is TOML, one ``[[expected]]`` table per entry::

    [[expected]]
    id = "bce-with-logits-infinite-logit-nan"   # unique, stable
    kind = "special-value"        # "semantic" | "special-value" | "bug" | "accepts-invalid-input"
    losses = ["binary_cross_entropy_with_logits"]
    tests = ["test_matches_oracle", "test_edge_cases"]   # optional: default every test
    dtypes = ["float32"]          # optional: default every dtype
    labels = ["..."]              # optional: edge/invalid case labels
    when = ["infinite_input"]     # optional: case features that must all hold
    adapters = ["torch", "torch-nn"]  # optional: default every adapter the file is loaded for
    convention = "keras-bce-clip" # optional: judge matching cases against the framework's own
                                  # documented formula (oracle/conventions.py) instead
    reason = "what differs and why"
    citation = "https://..."      # where the framework documents or tracks it

A failing case that matches an entry is recorded as a *deviation* (the report's
deviation table), not a failure. With ``convention``, the case is re-judged
against the framework's documented formula evaluated exactly by the oracle: it
is a deviation only if the output is accurate under that formula, and a failure
(showing both judgements) otherwise. ``when`` names are the case features in
:data:`FEATURES`: predicates on the case's inputs, so an entry describes the
condition of a difference, not a list of example values.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from oracle.core import format_of

from .cases import Case

__all__ = ["FEATURES", "Expectation", "ExpectationsError", "builtin_expectations_file", "load_expectations"]

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "adapters" / "expectations"


def builtin_expectations_file(adapter_name: str) -> Path | None:
    """``adapters/expectations/<framework>.toml`` for a built-in adapter: ``torch`` and
    ``torch-nn`` share ``torch.toml`` (entries may narrow themselves with ``adapters``)."""
    path = EXPECTATIONS_DIR / f"{adapter_name.split('-')[0]}.toml"
    return path if path.is_file() else None

KINDS = ("semantic", "special-value", "bug", "accepts-invalid-input")
_FIELDS = {"id", "kind", "losses", "tests", "dtypes", "labels", "when", "adapters", "reason", "citation", "convention"}


class ExpectationsError(ValueError):
    """A malformed expectations file; the message names the file, the entry and the fix."""


def _floats(case: Case) -> list[np.ndarray]:
    return [
        np.asarray(v, dtype=np.float64)
        for v in list(case.args.values()) + list(case.kwargs.values())
        if isinstance(v, np.ndarray) and not np.issubdtype(v.dtype, np.integer)
    ]


def _input(case: Case) -> np.ndarray:
    return np.asarray(case.args["input"], dtype=np.float64)


def _logit_spread_overflows(case: Case) -> bool:
    """Some softmax row's max - min over finite logits exceeds the dtype's max: ``x - max``
    overflows to ``-inf`` in the dtype although the exact difference is finite."""
    x = _input(case)
    if x.ndim == 0:
        return False
    rows = np.moveaxis(x, 1 if x.ndim > 1 else 0, -1).reshape(-1, x.shape[1 if x.ndim > 1 else 0])
    limit = format_of(case.dtype).max_finite
    for row in rows:
        finite = row[np.isfinite(row)]
        if finite.size and finite.max() - finite.min() > limit:
            return True
    return False


def _zero_target(case: Case) -> bool:
    """A target probability of exactly 0 (``-inf`` for ``kl_div`` with ``log_target``)."""
    target = np.asarray(case.args.get("target", 1.0), dtype=np.float64)
    zero = -np.inf if case.kwargs.get("log_target") else 0.0
    return bool(np.any(target == zero))


def _intermediate_exceeds_max(case: Case) -> bool:
    """An intermediate a standard algorithm forms in the dtype exceeds the dtype's max
    while the exact result may not: the sum of the terms a reduction adds, or (label
    smoothing) a row's sum over classes of ``w_c * -log p_c``; or a logit spread."""
    from oracle.core import mp_array, working_precision

    from .registry import spec_for

    limit = format_of(case.dtype).max_finite
    if _logit_spread_overflows(case) if case.fn in ("cross_entropy", "log_softmax", "softmax") else False:
        return True
    with working_precision(64):
        terms = case.call(spec_for(case.fn).terms).terms
        magnitudes = [abs(t) for t in terms.reshape(-1) if t == t]
        if sum(magnitudes) > limit:
            return True
        if case.fn == "binary_cross_entropy_with_logits" and _bce_logits_summand_overflows(case, limit):
            return True
        if case.fn == "cross_entropy" and case.kwargs.get("label_smoothing"):
            import oracle

            x = case.args["input"]
            lsm = oracle.log_softmax(x, 1 if x.ndim > 1 else 0)
            weight = case.kwargs.get("weight")
            w = mp_array(weight) if weight is not None else None
            rows = np.moveaxis(lsm, 1 if x.ndim > 1 else 0, -1).reshape(-1, lsm.shape[1 if x.ndim > 1 else 0])
            # The smoothing term is summed over classes and rows before it is scaled by eps/C.
            total = sum(abs(v * (w[c] if w is not None else 1)) for row in rows for c, v in enumerate(row) if v == v)
            if total > limit:
                return True
    return False


def _bce_logits_summand_overflows(case: Case, limit: float) -> bool:
    """The max-shifted form ``(1-y) x + (1 + (p-1) y) (log1p(e^-|x|) + max(-x, 0))`` adds
    summands larger than the dtype's max although their sum (the loss) may be representable."""
    x = _input(case)
    y = np.asarray(case.args["target"], dtype=np.float64)
    p = case.kwargs.get("pos_weight")
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), x.shape) if p is not None else np.ones_like(x)
    with np.errstate(invalid="ignore", over="ignore"):
        first = np.abs((1 - y) * x)
        second = np.abs((1 + (p - 1) * y) * np.maximum(-x, 0))
    finite = np.isfinite(x) & np.isfinite(y)
    return bool(np.any(first[finite] > limit) or np.any(second[finite] > limit))


FEATURES: dict[str, Callable[[Case], bool]] = {
    "infinite_input": lambda c: any(np.isinf(a).any() for a in _floats(c)),
    "probability_target": lambda c: c.fn == "cross_entropy" and not np.issubdtype(np.asarray(c.args["target"]).dtype, np.integer),
    "logit_spread_overflows": _logit_spread_overflows,
    "input_beyond_exp_range": lambda c: bool(
        np.any(np.abs(_input(c)[np.isfinite(_input(c))]) > math.log(format_of(c.dtype).max_finite))
    ),
    "zero_target": _zero_target,
    "intermediate_exceeds_dtype_max": _intermediate_exceeds_max,
    "batchmean_with_legacy_args": lambda c: c.kwargs.get("reduction") == "batchmean"
    and (c.kwargs.get("size_average") is not None or c.kwargs.get("reduce") is not None),
}


# Features of the jax adapter's deviations: XLA:CPU's subnormal flushing, and
# optax's treatment of zero label mass.


def _subnormal(values: np.ndarray, dtype: str) -> bool:
    tiny = format_of(dtype).smallest_normal
    with np.errstate(invalid="ignore"):
        return bool(np.any((values != 0) & (np.abs(values) < tiny)))


def _subnormal_input(case: Case) -> bool:
    """Some floating input is subnormal in the case's dtype (nonzero, below the smallest
    normal): hardware in denormals-are-zero mode reads it as 0."""
    return any(_subnormal(a, case.dtype) for a in _floats(case))


def _subnormal_result(case: Case) -> bool:
    """Some element of the exact result, correctly rounded to the dtype, is subnormal:
    hardware in flush-to-zero mode returns 0 there."""
    from .checks import evaluate_oracle

    try:
        rounded = np.asarray(evaluate_oracle(case).rounded, dtype=np.float64)
    except Exception:  # an input the spec rejects has no exact result
        return False
    return _subnormal(rounded, case.dtype)


def _zero_weight_on_masked_class(case: Case) -> bool:
    """``cross_entropy``/``nll_loss``: a class whose weight is 0 has a ``-inf`` logit in
    some row, so the spec's ``w_c * (-log p_c)`` is ``0 * inf``."""
    weight = case.kwargs.get("weight")
    if weight is None or case.fn not in ("cross_entropy", "nll_loss"):
        return False
    x = _input(case)
    w = np.asarray(weight, dtype=np.float64)
    axis = 1 if x.ndim > 1 else 0
    if x.ndim == 0 or w.shape != (x.shape[axis],):
        return False
    masked = np.moveaxis(np.isneginf(x), axis, -1).reshape(-1, w.size).any(axis=0)
    return bool(np.any(masked & (w == 0)))


FEATURES.update({
    "subnormal_input": _subnormal_input,
    "subnormal_result": _subnormal_result,
    "zero_weight_on_masked_class": _zero_weight_on_masked_class,
})


@dataclass(frozen=True)
class Expectation:
    id: str
    kind: str
    reason: str
    citation: str
    losses: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    when: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    convention: str | None = None  # oracle.conventions name: grade under the framework's own formula
    source: str = ""

    def matches(self, adapter: str, test: str, case: Case) -> bool:
        def listed(values: tuple[str, ...], value: str) -> bool:
            return not values or any(fnmatch.fnmatchcase(value, v) for v in values)

        return (
            listed(self.adapters, adapter)
            and listed(self.tests, test)
            and listed(self.losses, case.fn)
            and listed(self.dtypes, case.dtype)
            and listed(self.labels, case.label)
            and all(FEATURES[f](case) for f in self.when)
        )

    def describe(self) -> str:
        return f"[{self.id}] {self.kind}: {self.reason} ({self.citation})"


def _str_list(value, where: str, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExpectationsError(f"{where}: {field!r} must be a string or a list of strings")
    return tuple(value)


def load_expectations(path: str | Path) -> list[Expectation]:
    """Parse and validate an expectations file; raise :class:`ExpectationsError` on any problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectationsError(f"expectations file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{path} is not valid TOML: {exc}") from None
    entries = data.get("expected", [])
    unknown_top = set(data) - {"expected"}
    if unknown_top or not isinstance(entries, list):
        raise ExpectationsError(f"{path}: expected only [[expected]] tables, found {sorted(unknown_top) or type(entries).__name__}")
    out, seen = [], set()
    for i, entry in enumerate(entries, 1):
        where = f"{path}, entry {i}"
        missing = {"id", "kind", "reason", "citation"} - set(entry)
        if missing:
            raise ExpectationsError(f"{where}: missing required field(s) {', '.join(sorted(missing))}")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ExpectationsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FIELDS))}")
        if entry["kind"] not in KINDS:
            raise ExpectationsError(f"{where}: kind {entry['kind']!r} is not one of {', '.join(KINDS)}")
        if entry["id"] in seen:
            raise ExpectationsError(f"{where}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        when = _str_list(entry.get("when", []), where, "when")
        for feature in when:
            if feature not in FEATURES:
                raise ExpectationsError(f"{where}: unknown feature {feature!r} in 'when'; known: {', '.join(sorted(FEATURES))}")
        convention = entry.get("convention")
        if convention is not None:
            from oracle.conventions import CONVENTIONS

            if convention not in CONVENTIONS:
                raise ExpectationsError(f"{where}: unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
        out.append(
            Expectation(
                id=entry["id"], kind=entry["kind"], reason=entry["reason"], citation=entry["citation"],
                losses=_str_list(entry.get("losses", []), where, "losses"),
                tests=_str_list(entry.get("tests", []), where, "tests"),
                dtypes=_str_list(entry.get("dtypes", []), where, "dtypes"),
                labels=_str_list(entry.get("labels", []), where, "labels"),
                when=when,
                adapters=_str_list(entry.get("adapters", []), where, "adapters"),
                convention=convention,
                source=str(path),
            )
        )
    return out
