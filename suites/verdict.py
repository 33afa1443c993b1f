r"""The error model: how far an implementation may be from the exact value.

Tolerances are *derived*, not tuned. For an output value ``L`` (each element for
``reduction="none"``) in a dtype with unit roundoff ``u = 2^-p``, the allowed
error is what a mixed-stable algorithm could make -- exact on slightly
perturbed inputs, plus a small absolute error on the scale at which the
formula necessarily works (DESIGN.md):

.. math::
    |\hat L - L| \le u \Big( k_{out} |L| + k_{in} \sum_j c_j / D
                     + k_{abs} \sum_j s_j / D + k_{red}(n) \big(\sum_j |t_j| / D + |L|\big) \Big)
                 + k_{floor} \cdot \mathrm{tiny}

with the per-term quantities of :class:`oracle.reduction.LossTerms`: ``t_j`` the
terms, ``c_j = sum_i |x_i dt_j/dx_i|`` plus the magnitudes of the summands the
formula adds, ``s_j`` the absolute working scale, ``D`` the mean's denominator
(1 for ``sum``; for ``none`` each element uses its own term and no ``k_red``,
except for a sum *inside* the element's formula: softmax's and log_softmax's row sum
of ``n`` addends adds ``k_red(n) r_j``, ``r_j`` = :attr:`LossTerms.inner_sum`).

The constants, and why:

``K_OUT = 8``
    Roundings applied at or after the last cancellation-prone step: the final
    rounding to the dtype, the product with a weight, the division by the
    denominator, the ``(1 - eps)`` and ``eps / C`` scalings and their sum, and
    one conversion from a wider accumulator -- at most 7, rounded up to 8.
``K_IN = 4``
    Relative perturbation of each input that a stable algorithm's first
    operations amount to: forming ``x - max`` (1), ``exp`` (1), and ``log`` of a
    sum (2, its own rounding and that of the sum's last addition).
``K_ABS = 4``
    Multiples of ``u * s_j`` lost where the standard algorithm adds and
    subtracts quantities of size ``s_j`` (``x_c - max - log(sum)`` for softmax
    losses: three additions of that size, plus the ``log``'s own error).
``k_red(n) = ceil(log2 n) + 2``
    Summation of ``n`` terms: pairwise/cascade summation (PyTorch's CPU
    reductions, NumPy's ``sum``) has error at most ``ceil(log2 n) u sum |t_j|``
    (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.2);
    +2 for the products ``w_j t_j`` and the final division. The same bound covers
    the denominator's own summation (``sum_n w_{y_n}``), which contributes the
    ``|L|`` inside the parentheses.
``K_FLOOR = 16`` times the smallest subnormal
    Results in or near the subnormal range lose relative accuracy: each
    operation whose result falls there has absolute error up to half the
    smallest subnormal; 16 covers every operation counted above.

``u`` is the unit roundoff of the dtype under test, even when a framework
computes float16/bfloat16 in float32 internally: the output's own rounding
dominates then. Special values must match exactly: NaN is NaN, inf is inf.

Two grades: :func:`judge` returns the verdict (pass iff every element's error
is within its bound) and, independently, the accuracy figures -- the largest
ULP error and relative error -- that the report's accuracy tables show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from oracle.core import FloatFormat, is_nan, to_mpf, ulp, working_precision
from oracle.reduction import LossTerms

__all__ = [
    "K_ABS",
    "K_FLOOR",
    "K_IN",
    "K_OUT",
    "Verdict",
    "error_bound",
    "judge",
    "k_red",
]

K_OUT = 8
K_IN = 4
K_ABS = 4
K_FLOOR = 16


def k_red(n: int) -> int:
    """Summation constant for ``n`` terms: ``ceil(log2 n) + 2`` (0 terms or 1: 2)."""
    return (math.ceil(math.log2(n)) if n > 1 else 0) + 2


def _abs_sum(values: np.ndarray) -> mpf:
    return mpmath.fsum(abs(v) for v in values.reshape(-1) if not is_nan(v))


def error_bound(lt: LossTerms, fmt: FloatFormat) -> np.ndarray:
    """The allowed absolute error of each output element (float64 ndarray, 0-d if reduced).

    NaN entries (terms that are NaN by the spec) get a NaN bound: they are judged
    as special values.
    """
    u = mpf(fmt.unit_roundoff)
    floor = mpf(K_FLOOR) * mpf(fmt.smallest_subnormal)
    if lt.reduction == "none":
        return _elementwise_bound(lt, fmt)
    with working_precision(64):
        value = lt.value
        denominator = abs(lt.denominator) if lt.denominator is not None else mpf(1)
        if denominator == 0:
            return np.array(math.nan)
        spread = K_IN * _abs_sum(lt.condition) + K_ABS * _abs_sum(lt.scale)
        summation = k_red(lt.count) * (_abs_sum(lt.terms) / denominator + abs(value))
        bound = u * (K_OUT * abs(value) + spread / denominator + summation) + floor
        return np.array(float(bound))


def _elementwise_bound(lt: LossTerms, fmt: FloatFormat) -> np.ndarray:
    """``u (K_OUT |t| + K_IN c + K_ABS s) + K_FLOOR tiny`` per element, in float64.

    Vectorized: the terms, conditions and scales are converted to float64 once and the
    bound is formed by NumPy. The bound sizes a tolerance; float64's three roundings
    here (relative 1e-15) are far below the factor-of-two slack of the constants, the
    same accuracy as a bound formed at 64 bits. An element whose float64 form is not
    finite while its inputs are (a condition beyond float64's range that ``u`` brings
    back, or an infinite bound) is formed again at 64 bits from the exact values;
    a NaN term, condition or scale gives a NaN bound (judged as a special value).
    """
    shape = lt.terms.shape
    terms = _as_float64(lt.terms)
    cond = _as_float64(lt.condition)
    scale = _as_float64(lt.scale)
    u, floor = fmt.unit_roundoff, K_FLOOR * fmt.smallest_subnormal
    inner = _as_float64(lt.inner_sum) if lt.inner_sum is not None else np.zeros_like(terms)
    k_inner = k_red(lt.inner_count) if lt.inner_sum is not None else 0
    with np.errstate(over="ignore", invalid="ignore"):
        out = u * (K_OUT * np.abs(terms) + K_IN * cond + K_ABS * scale + k_inner * inner) + floor
    for i in np.flatnonzero(np.isinf(out)):
        idx = np.unravel_index(i, shape) if shape else ()
        with working_precision(64):
            t, c, s = lt.terms[idx], lt.condition[idx], lt.scale[idx]
            r = lt.inner_sum[idx] if lt.inner_sum is not None else 0
            out[i] = float(mpf(u) * (K_OUT * abs(t) + K_IN * c + K_ABS * s + k_inner * r) + mpf(floor))
    return out.reshape(shape)


def _as_float64(values: np.ndarray) -> np.ndarray:
    """An object array of mpf (or a float64 array, the fast path's) as flat float64."""
    values = np.asarray(values)
    if values.dtype == np.float64:
        return values.reshape(-1)
    return np.fromiter((float(v) for v in values.reshape(-1)), dtype=np.float64, count=values.size)


@dataclass
class Verdict:
    """The judgement of one observed output against the exact one."""

    passed: bool
    max_ulp: float
    max_normalized: float
    max_relative: float
    worst_index: tuple[int, ...]
    observed: Any  # the observed element at worst_index
    exact: Any  # the exact mpf there
    rounded: float  # the correctly rounded value there
    bound: float  # the allowed error there
    reason: str = ""  # why it failed, in words, when it did
    failing: int = 0  # elements beyond their bound (or non-finite where the exact one is finite)
    elements: int = 0  # elements judged


def _element_error(obs: float, exact: mpf, rounded: float, bound: float, fmt: FloatFormat):
    """(normalized, ulp, relative, reason) for one element."""
    if is_nan(exact) or mpmath.isinf(exact):
        same = (math.isnan(obs) and is_nan(exact)) or (
            math.isinf(obs) and not is_nan(exact) and (obs > 0) == (exact > 0)
        )
        if same:
            return 0.0, 0.0, 0.0, ""
        return math.inf, math.inf, math.inf, f"the exact value is {exact}, the observed {obs}"
    if math.isnan(obs) or (math.isinf(obs) and obs != rounded):
        return math.inf, math.inf, math.inf, f"non-finite {obs} where the exact value is finite"
    if math.isinf(obs):  # exact overflows the dtype and obs is that infinity
        return 0.0, 0.0, 0.0, ""
    err = abs(to_mpf(obs) - exact)
    normalized = float(err / bound) if bound > 0 else (0.0 if err == 0 else math.inf)
    ulps = float(err / ulp(exact, fmt))
    relative = float(err / abs(exact)) if exact != 0 else (0.0 if err == 0 else math.inf)
    reason = "" if normalized <= 1 else "error beyond the bound of the error model"
    return normalized, ulps, relative, reason


def judge(observed: np.ndarray, exact: Any, rounded: np.ndarray, bound: np.ndarray, fmt: FloatFormat) -> Verdict:
    """Compare an adapter's output with the oracle's, elementwise; see module docstring."""
    obs = np.asarray(observed, dtype=np.float64)
    exact_arr = exact if isinstance(exact, np.ndarray) else np.array(exact, dtype=object)
    worst: tuple | None = None
    max_ulp = max_rel = 0.0
    failing = 0
    with working_precision(64):
        for idx in np.ndindex(obs.shape):
            normalized, ulps, rel, reason = _element_error(
                float(obs[idx]), exact_arr[idx], float(rounded[idx]), float(bound[idx]), fmt
            )
            max_ulp, max_rel = max(max_ulp, ulps), max(max_rel, rel)
            if normalized > 1 or math.isnan(normalized):
                failing += 1
            if worst is None or normalized > worst[0]:
                worst = (normalized, idx, reason)
    if worst is None:  # an empty output
        return Verdict(True, 0.0, 0.0, 0.0, (), None, None, math.nan, math.nan)
    normalized, idx, reason = worst
    return Verdict(
        passed=failing == 0,
        max_ulp=max_ulp,
        max_normalized=normalized,
        max_relative=max_rel,
        worst_index=idx,
        observed=float(obs[idx]),
        exact=exact_arr[idx],
        rounded=float(rounded[idx]),
        bound=float(bound[idx]),
        reason=reason,
        failing=failing,
        elements=obs.size,
    )
