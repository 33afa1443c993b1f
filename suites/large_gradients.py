r"""Gradient conformance at LLM scale: ``cross_entropy``'s gradient w.r.t. ``input`` with
millions of components, against the arb fast path (:mod:`oracle.fast_grad`).

The rules are ``suites/gradients.py``'s -- the same error model and the same verdict -- formed
on float64 arrays instead of object arrays of mpf:

* the exact gradient, its correct rounding and its condition come from
  :func:`oracle.fast_grad.cross_entropy_grad_fast` (rounding proven per component by arb
  balls, the condition in float64);
* the bound per component is :func:`suites.gradients.gradient_bound`'s,

  .. math::
      u \big( K_{OUT} |g_i| + K_{IN} c_i + K_{ABS} s_i + k_{red}(n) r_i \big) + K_{FLOOR} \cdot \mathrm{tiny}

  in NumPy (:func:`gradient_bound_arrays`; ``cross_entropy`` has no kink, so no kink terms);
* the verdict is :func:`suites.verdict_arrays.judge_arrays`, ``judge``'s rules vectorized.

Memory, per evaluation: the exact values and the bound in float64 and the rounded values in
the dtype (2.3 GB for 256 x 131072 float32 logits; the condition and scale, 0.5 GB more, live
only while the bound is formed). The last three evaluations stay in memory (the LLM test asks
for the same case once per adapter); they are not written to the disk cache.

A failure message names the case by the call that regenerates it (``describe``): the
arrays' literals would be gigabytes.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from oracle.core import FloatFormat, format_of
from oracle.fast_grad import cross_entropy_grad_component, cross_entropy_grad_fast

from .cases import Case
from .checks import AdapterContractError, AdapterFailure, Outcome, Unsupported, _CaseKey
from .gradients import GradientEvaluation, call_adapter_grad
from .verdict import K_ABS, K_FLOOR, K_IN, K_OUT, k_red
from .verdict_arrays import judge_arrays

__all__ = ["LargeGradientEvaluation", "check_large_gradient_case", "evaluate_large_gradient", "gradient_bound_arrays"]


def gradient_bound_arrays(grad: np.ndarray, condition: np.ndarray, scale: np.ndarray, summation: np.ndarray,
                          count: int, fmt: FloatFormat) -> np.ndarray:
    """:func:`suites.gradients.gradient_bound` in float64 NumPy (no kink terms).

    Each term is multiplied by ``u`` before the sum, so a condition near float64's maximum
    does not overflow; NaN anywhere gives a NaN bound (judged as a special value).
    """
    u, floor = fmt.unit_roundoff, K_FLOOR * fmt.smallest_subnormal
    reduction = k_red(count) if count > 1 else 0
    with np.errstate(over="ignore", invalid="ignore"):
        out = (u * K_OUT) * np.abs(grad)
        out += (u * K_IN) * condition
        out += (u * K_ABS) * scale
        if reduction:
            out += (u * reduction) * summation
        out += floor
    return out


@dataclass(frozen=True)
class LargeGradientEvaluation(GradientEvaluation):
    """A :class:`suites.gradients.GradientEvaluation` of float64 arrays (``exact``: the arb
    balls' midpoints; ``rounded``: the dtype's values), with how it was proven."""

    bits: int = 0  # the highest arb precision a component needed
    fallbacks: int = 0  # components decided outside the vectorized check


def evaluate_large_gradient(case: Case) -> LargeGradientEvaluation:
    """The exact gradient of ``cross_entropy``'s output sum w.r.t. ``input``, its rounding and
    bound; :class:`Unsupported` outside the fast path's scope (module docstring)."""
    return _evaluate_cached(_CaseKey(case))


@lru_cache(maxsize=3)
def _evaluate_cached(key: _CaseKey) -> LargeGradientEvaluation:
    case = key.case
    if case.fn != "cross_entropy" or (case.wrt or "input") != "input":
        raise Unsupported(f"the LLM-scale gradient path covers cross_entropy w.r.t. input, not {case.fn} w.r.t. {case.wrt}")
    kwargs = dict(case.kwargs)
    fast = cross_entropy_grad_fast(case.args["input"], case.args["target"], case.dtype, **kwargs)
    if fast is None:
        raise Unsupported(
            "outside the arb gradient fast path's scope (class-index targets, finite logits and "
            "weights, a nonzero mean denominator): oracle/fast_grad.py"
        )
    fmt = format_of(case.dtype)
    bound = gradient_bound_arrays(fast.exact, fast.condition, fast.scale, fast.summation, fast.count, fmt)
    return LargeGradientEvaluation(fast.exact, fast.rounded, bound, fast.bits, fast.fallbacks)


def _message(adapter, case: Case, problem: str, verdict, describe: str) -> str:
    fmt = format_of(case.dtype)
    version = f" {adapter.version}" if getattr(adapter, "version", None) else ""
    lines = [f"gradient d sum({case.fn}(...))/d input [{adapter.name}{version}, {case.dtype}] does not conform to the spec"]
    if problem:
        lines.append(f"  problem:  {problem}")
    if verdict is not None:
        exact = verdict.exact
        # the worst component again, from a 256-bit ball (the verdict holds its float64 midpoint);
        # the message must not fail: that midpoint is exact to 2**-51
        with contextlib.suppress(Exception):
            exact = cross_entropy_grad_component(case.args["input"], case.args["target"], verdict.worst_index, **case.kwargs) or exact
        lines += [
            f"  observed: {verdict.observed!r} at index {verdict.worst_index}",
            f"  exact:    {exact}  (correctly rounded to {fmt.name}: {verdict.rounded!r})",
        ]
        if verdict.reason:
            lines.append(f"  why:      {verdict.reason}")
        if math.isfinite(verdict.max_normalized):
            lines.append(
                f"  error:    {verdict.max_ulp:.4g} ULP (largest); worst {verdict.max_normalized:.4g} x the allowed "
                f"error {verdict.bound:.4g} (error model, suites/gradients.py)"
            )
        lines.append(f"  failing:  {verdict.failing} of {verdict.elements} components beyond their bound")
    lines.append(f"  case:     {describe}")
    lines.append(
        "  gradient: the adapter's grad(), i.e. the framework's autodiff of the output's sum w.r.t. input"
    )
    return "\n".join(lines)


def check_large_gradient_case(adapter, case: Case, describe: str) -> Outcome:
    """Judge ``adapter``'s gradient of ``cross_entropy`` w.r.t. ``input`` on a large ``case``
    (``describe``: the call that regenerates it, for the message). Raises :class:`Unsupported`."""
    evaluation = evaluate_large_gradient(case)
    try:
        observed = call_adapter_grad(adapter, case)
    except (AdapterFailure, AdapterContractError) as exc:
        return Outcome(case, False, None, None, _message(adapter, case, str(exc), None, describe))
    except Unsupported:
        raise
    except Exception as exc:  # an out-of-memory error, say: a failure, with its case
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(case, False, None, None, _message(adapter, case, tail, None, describe))
    fmt = format_of(case.dtype)
    verdict = judge_arrays(observed, evaluation.exact, evaluation.rounded, evaluation.bound, fmt)
    message = "" if verdict.passed else _message(adapter, case, "", verdict, describe)
    return Outcome(case, verdict.passed, verdict, observed, message)
