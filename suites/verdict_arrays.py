r"""The verdict of :func:`suites.verdict.judge`, vectorized: NumPy over float64 arrays.

For outputs too large for a Python loop over mpf (the LLM-scale gradient: 33.5 million
components, ``suites/test_llm_scale.py``). The rules are ``judge``'s, element for element
(``suites.verdict._element_error``):

* an exact NaN or infinity must be matched exactly (NaN by NaN, an infinity by the same one);
* where the exact value is finite, a NaN, or an infinity other than the correctly rounded
  value (an exact value beyond the dtype's range), fails: normalized error ``inf``;
* otherwise ``err = |observed - exact|``, normalized ``err / bound`` (``bound <= 0`` or NaN:
  0 for no error, else ``inf``), ULPs ``err / ulp(exact)``, relative ``err / |exact|``;
* the verdict passes iff every normalized error is at most 1; the worst element is the first
  one with the largest normalized error, and the maxima of the ULP and relative errors are
  taken over all elements.

The difference to ``judge``: ``exact`` is a float64 array (the arb fast path's midpoints,
``2^-51`` relative: :mod:`oracle.fast_grad`) and ``err`` is formed in float64, so the figures
carry a relative error of about ``2^-50`` of the exact value -- ``2^-27`` of a float32 ULP,
far below what is reported. ``tests/test_verdict_arrays.py`` checks that both judges agree
on random cases, and that a perturbed output fails.

Memory: the arrays are read in chunks of :data:`CHUNK` elements; nothing of the output's
size is allocated.
"""

from __future__ import annotations

import math

import numpy as np
from mpmath import mpf

from oracle.core import FloatFormat

from .verdict import Verdict

__all__ = ["CHUNK", "judge_arrays", "ulp_array"]

CHUNK = 1 << 22


def ulp_array(x: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """:func:`oracle.core.ulp` elementwise: ``2^(max(e, emin) - p + 1)`` with
    ``2^e <= |x| < 2^(e+1)``, ``e`` clamped to ``emax``; ``emin`` at 0, ``emax`` beyond the range."""
    with np.errstate(invalid="ignore"):
        _, exponent = np.frexp(np.abs(x))
    e = np.clip(exponent - 1, fmt.emin, fmt.emax)
    e = np.where(x == 0, fmt.emin, np.where(np.isfinite(x), e, fmt.emax))
    return np.ldexp(1.0, (e - fmt.p + 1).astype(np.int64))


def _chunk_errors(obs: np.ndarray, exact: np.ndarray, rounded: np.ndarray, bound: np.ndarray, fmt: FloatFormat):
    """``(normalized, ulps, relative)`` arrays of one chunk, ``judge``'s rules."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        special = ~np.isfinite(exact)
        same_special = (np.isnan(obs) & np.isnan(exact)) | (
            np.isinf(obs) & ~np.isnan(exact) & ((obs > 0) == (exact > 0))
        )
        bad_nonfinite = np.isnan(obs) | (np.isinf(obs) & (obs != rounded))
        err = np.abs(obs - exact)
        positive = bound > 0
        normalized = np.where(positive, err / np.where(positive, bound, 1.0), np.where(err == 0, 0.0, np.inf))
        ulps = err / ulp_array(exact, fmt)
        relative = np.where(exact != 0, err / np.where(exact != 0, np.abs(exact), 1.0), np.where(err == 0, 0.0, np.inf))
        zero = (special & same_special) | (~special & ~bad_nonfinite & np.isinf(obs))
        infinite = (special & ~same_special) | (~special & bad_nonfinite)
        for a in (normalized, ulps, relative):
            a[zero] = 0.0
            a[infinite] = np.inf
    return normalized, ulps, relative


def _reason(obs: float, exact: float, rounded: float, normalized: float) -> str:
    if not math.isfinite(exact):
        same = (math.isnan(obs) and math.isnan(exact)) or (math.isinf(obs) and not math.isnan(exact) and (obs > 0) == (exact > 0))
        return "" if same else f"the exact value is {mpf(exact)}, the observed {obs}"
    if math.isnan(obs) or (math.isinf(obs) and obs != rounded):
        return f"non-finite {obs} where the exact value is finite"
    return "" if normalized <= 1 else "error beyond the bound of the error model"


def judge_arrays(observed: np.ndarray, exact: np.ndarray, rounded: np.ndarray, bound: np.ndarray,
                 fmt: FloatFormat, *, chunk: int = CHUNK) -> Verdict:
    """``judge(observed, exact, rounded, bound, fmt)`` for float64 ``exact`` (module docstring).

    ``observed`` and ``rounded`` may be of any floating dtype (ml_dtypes' bfloat16 included);
    they are converted to float64 one chunk at a time. ``Verdict.exact`` is the float64 exact
    value at the worst element, as an mpf.
    """
    shape = np.shape(observed)
    obs_flat, exact_flat = np.reshape(observed, -1), np.reshape(exact, -1)
    rounded_flat, bound_flat = np.reshape(rounded, -1), np.reshape(bound, -1)
    n = obs_flat.size
    if n == 0:
        return Verdict(True, 0.0, 0.0, 0.0, (), None, None, math.nan, math.nan)
    max_ulp = max_rel = 0.0
    failing = 0
    worst_value, worst_flat = None, 0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        obs = obs_flat[start:stop].astype(np.float64)
        normalized, ulps, relative = _chunk_errors(
            obs, exact_flat[start:stop].astype(np.float64), rounded_flat[start:stop].astype(np.float64),
            bound_flat[start:stop].astype(np.float64), fmt,
        )
        # judge: max(running, x) never takes a NaN; a NaN normalized error fails
        max_ulp = max(max_ulp, float(np.max(np.where(np.isnan(ulps), 0.0, ulps))))
        max_rel = max(max_rel, float(np.max(np.where(np.isnan(relative), 0.0, relative))))
        failing += int(np.count_nonzero(~(normalized <= 1)))
        if worst_value is None and math.isnan(normalized[0]):
            worst_value = math.nan  # judge keeps a NaN first element: nothing compares greater
        ranked = np.where(np.isnan(normalized), -np.inf, normalized)
        k = int(np.argmax(ranked))
        if worst_value is None or (not math.isnan(worst_value) and ranked[k] > worst_value):
            worst_value, worst_flat = float(ranked[k]), start + k
    idx = np.unravel_index(worst_flat, shape) if shape else ()
    idx = tuple(int(i) for i in idx)
    obs_w = float(np.asarray(obs_flat[worst_flat], dtype=np.float64))
    exact_w = float(exact_flat[worst_flat])
    rounded_w = float(np.asarray(rounded_flat[worst_flat], dtype=np.float64))
    bound_w = float(bound_flat[worst_flat])
    normalized_w, _, _ = _chunk_errors(np.array([obs_w]), np.array([exact_w]), np.array([rounded_w]), np.array([bound_w]), fmt)
    return Verdict(
        passed=failing == 0,
        max_ulp=max_ulp,
        max_normalized=float(normalized_w[0]),
        max_relative=max_rel,
        worst_index=idx,
        observed=obs_w,
        exact=mpf(exact_w),
        rounded=rounded_w,
        bound=bound_w,
        reason=_reason(obs_w, exact_w, rounded_w, float(normalized_w[0])),
        failing=failing,
        elements=n,
    )
