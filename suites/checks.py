"""Running one case: call the adapter, evaluate the oracle, judge, explain.

The failure message is the product here: a framework author must be able to act
on it without opening our code. It shows the observed and exact values, the ULP
distance, the error in units of the allowed bound, the case, and a repro.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from mpmath import mpf

from oracle.conventions import convention_for
from oracle.core import (
    FloatFormat,
    OracleUndecided,
    correctly_rounded,
    format_of,
    working_precision,
)
from oracle.fast import fast_evaluation
from oracle.reduction import LossTerms

from . import oracle_cache
from .cases import Case, repro_text
from .registry import spec_for
from .verdict import Verdict, error_bound, judge

__all__ = [
    "AdapterContractError",
    "AdapterFailure",
    "ConformanceFailure",
    "Evaluation",
    "Outcome",
    "Unsupported",
    "call_adapter",
    "check_case",
    "evaluate_oracle",
]


class ConformanceFailure(AssertionError):
    """The adapter's output does not conform; the message says how and where."""


class Unsupported(Exception):
    """The adapter does not implement this function or option (not a failure)."""


class AdapterFailure(Exception):
    """The adapter raised on a valid input: a failure of that case, with the case."""


class AdapterContractError(Exception):
    """The adapter returned something outside the contract (type, dtype, shape)."""


@dataclass(frozen=True)
class Evaluation:
    """The oracle's answer for a case: exact value, correctly rounded value, bound."""

    exact: Any  # mpf or object ndarray
    rounded: np.ndarray  # float64, the correctly rounded values
    bound: np.ndarray  # float64, the allowed absolute error per element
    terms: LossTerms


def evaluate_oracle(case: Case, convention: str | None = None) -> Evaluation:
    """Exact value (correctly rounded to the case's dtype, Ziv's loop) and its bound.

    ``convention`` evaluates a framework's documented formula instead of the spec's
    (:mod:`oracle.conventions`), to grade that framework under its own semantics.
    """
    return _evaluate_cached(_CaseKey(case, convention))


class _CaseKey:
    """Hashable identity of a case's inputs, so adapters sharing a case share one oracle run."""

    def __init__(self, case: Case, convention: str | None = None):
        self.case = case
        self.convention = convention
        parts = [case.fn, case.dtype, convention, case.wrt]
        for k, v in list(case.args.items()) + sorted(case.kwargs.items()):
            if isinstance(v, np.ndarray):
                parts.append((k, v.dtype.str, v.shape, v.tobytes()))
            else:
                parts.append((k, repr(v)))
        self.key = tuple(parts)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _CaseKey) and self.key == other.key


@lru_cache(maxsize=256)
def _evaluate_cached(key: _CaseKey) -> Evaluation:
    """In memory (this process), then on disk (every process and run: suites/oracle_cache.py)."""
    disk = oracle_cache.current()
    if disk is not None and (stored := disk.get("value", key.key)) is not None:
        return stored
    evaluation = _evaluate(key)
    if disk is not None:
        disk.put("value", key.key, evaluation)
    return evaluation


def _evaluate(key: _CaseKey) -> Evaluation:
    case = key.case
    terms = convention_for(key.convention).terms if key.convention else spec_for(case.fn).terms
    fmt = format_of(case.dtype)
    if key.convention is None and (fast := fast_evaluation(case.fn, case.args, case.kwargs, case.dtype)):
        # Proven by arb's balls where the case is in the fast path's scope (oracle/fast.py).
        return Evaluation(fast.exact, fast.rounded, error_bound(fast.terms, fmt), fast.terms)
    holder: dict[str, LossTerms] = {}

    def evaluate():
        lt = case.call(terms)
        holder["terms"] = lt
        return lt.value

    exact, rounded = correctly_rounded(evaluate, fmt.name)
    lt = holder["terms"]
    return Evaluation(exact, rounded, error_bound(lt, fmt), lt)


def call_adapter(adapter, case: Case) -> np.ndarray:
    """Call the adapter's function for ``case``; enforce the output contract.

    Raises :class:`Unsupported` for a missing function or ``NotImplementedError``,
    :class:`AdapterFailure` when it raises anything else, and
    :class:`AdapterContractError` for a result that is not a NumPy array or
    scalar of the input's dtype.
    """
    function = adapter.function(case.fn)
    if function is None:
        raise Unsupported(f"adapter {adapter.name!r} has no function {case.fn!r}")
    try:
        result = case.call(function)
    except NotImplementedError as exc:
        raise Unsupported(f"{adapter.name}.{case.fn}: {exc or 'not implemented'}") from exc
    except Exception as exc:
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise AdapterFailure(f"{adapter.name}.{case.fn} raised {tail}") from exc
    if not isinstance(result, (np.ndarray, np.generic)):
        raise AdapterContractError(
            f"{adapter.name}.{case.fn} returned {type(result).__name__}; the adapter contract "
            f"requires a NumPy array (0-d for a reduced loss) of dtype {case.dtype}"
        )
    result = np.asarray(result)
    expected = format_of(case.dtype).numpy_dtype
    if result.dtype != expected:
        raise AdapterContractError(
            f"{adapter.name}.{case.fn} returned dtype {result.dtype} for a {case.dtype} case; "
            f"outputs must keep the input's dtype"
        )
    return result


@dataclass
class Outcome:
    """Result of one case: passed or not, with the figures and the full message."""

    case: Case
    passed: bool
    verdict: Verdict | None
    observed: Any
    message: str

    @property
    def normalized(self) -> float:
        return self.verdict.max_normalized if self.verdict else math.inf

    @property
    def ulp(self) -> float:
        return self.verdict.max_ulp if self.verdict else math.inf

    @property
    def relative(self) -> float:
        return self.verdict.max_relative if self.verdict else math.inf


def _copied(case: Case) -> Case:
    """``case`` with its own copies of every array argument."""
    def copy(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in values.items()}

    return Case(case.fn, copy(case.args), copy(case.kwargs), case.dtype, case.label)


def check_case(adapter, case: Case, *, convention: str | None = None) -> Outcome:
    """Judge ``adapter`` on ``case`` against the oracle (raises Unsupported, OracleUndecided);
    against a documented framework formula instead when ``convention`` names one.

    The adapter runs first, on copies of the case's arrays: an unsupported call raises
    Unsupported before the oracle spends its budget on a case nobody is judged on (and
    cannot fail as undecided), and an adapter that writes into its inputs cannot change
    what the oracle sees."""
    try:
        observed, problem = call_adapter(adapter, _copied(case)), None
    except (AdapterFailure, AdapterContractError) as exc:
        observed, problem = None, str(exc)
    evaluation = evaluate_oracle(case, convention)
    if problem is not None:
        return Outcome(case, False, None, None, failure_message(adapter, case, problem, evaluation, None, None))
    expected_shape = np.shape(evaluation.rounded)
    if observed.shape != expected_shape:
        problem = (
            f"{adapter.name}.{case.fn} returned shape {observed.shape}; the spec's output "
            f"shape for this case is {expected_shape}"
        )
        return Outcome(case, False, None, observed, failure_message(adapter, case, problem, evaluation, None, observed))
    fmt = format_of(case.dtype)
    verdict = judge(observed.astype(np.float64), evaluation.exact, evaluation.rounded, evaluation.bound, fmt)
    message = "" if verdict.passed else failure_message(adapter, case, "", evaluation, verdict, observed)
    return Outcome(case, verdict.passed, verdict, observed, message)


def _fmt_mpf(x: Any, digits: int = 20) -> str:
    if isinstance(x, mpf):
        with working_precision(80):
            from mpmath import nstr

            return nstr(x, digits)
    return repr(x)


def failure_message(adapter, case: Case, problem: str, evaluation: Evaluation | None, verdict: Verdict | None, observed) -> str:
    """One consistent message shape for every conformance failure."""
    fmt: FloatFormat = format_of(case.dtype)
    version = f" {adapter.version}" if getattr(adapter, "version", None) else ""
    lines = [f"{case.fn} [{adapter.name}{version}, {case.dtype}] does not conform to the spec"]
    if problem:
        lines.append(f"  problem:  {problem}")
    if verdict is not None:
        where = f" at index {verdict.worst_index}" if verdict.worst_index else ""
        lines += [
            f"  observed: {verdict.observed!r}{where}",
            f"  exact:    {_fmt_mpf(verdict.exact)}  (correctly rounded to {fmt.name}: {verdict.rounded!r})",
        ]
        if verdict.reason:
            lines.append(f"  why:      {verdict.reason}")
        if math.isfinite(verdict.max_normalized):
            lines.append(
                f"  error:    {verdict.max_ulp:.4g} ULP; {verdict.max_normalized:.4g} x the allowed "
                f"error {verdict.bound:.4g} (error model, suites/verdict.py)"
            )
    elif evaluation is not None and evaluation.rounded.size <= 16:
        lines.append(f"  exact:    {evaluation.rounded.tolist()!r} (correctly rounded to {fmt.name})")
    lines.append(f"  case:     {case.describe()}")
    repro = repro_text(adapter, case)
    if repro:
        lines.append("  repro:")
        lines += ["    " + line for line in repro.splitlines()]
    return "\n".join(lines)


__all__ += ["OracleUndecided", "failure_message"]
