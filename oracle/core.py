"""Exact arithmetic core of the oracle: formats, exact conversion, precision, rounding.

Everything the loss functions need to be *exact* lives here, in one place:

* :data:`FORMATS` describes the IEEE-754 binary formats under test (float64,
  float32, float16 and bfloat16) by precision ``p`` (significand bits, hidden bit
  included) and exponent range.
* :func:`to_mpf` converts a NumPy float of any of those widths to an ``mpf``
  *exactly*: every such value is a dyadic rational, and it goes through Python's
  ``float`` (binary64, a superset of the other three formats) without rounding.
* :func:`working_precision` is the single precision policy: a context manager
  around ``mpmath.workprec`` so that mpmath's global precision is restored on exit,
  whatever happens inside.
* :func:`round_to_format` rounds an ``mpf`` to a format with IEEE semantics:
  round-to-nearest-even, gradual underflow to subnormals, overflow to infinity.
* :func:`correctly_rounded` implements Ziv's strategy: evaluate at ``p`` bits and
  at a higher precision, accept when both round to the same value in the target
  format, otherwise escalate. It never silently returns an undecided value.
* :func:`ulp_distance` measures ``|observed - exact|`` in units in the last place
  of ``exact`` in the format (the unit of published math-library accuracy tables).

mpmath runs on its gmpy2 backend when gmpy2 is installed (``mpmath.libmp.BACKEND
== "gmpy"``), which makes big-float arithmetic several times faster.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import mpmath
import numpy as np
from mpmath import mpf
from mpmath.libmp import from_float, from_int

__all__ = [
    "FORMATS",
    "FloatFormat",
    "OracleBudget",
    "OracleUndecided",
    "correctly_rounded",
    "exact_add",
    "format_of",
    "is_nan",
    "mp_array",
    "oracle_budget",
    "round_to_format",
    "to_mpf",
    "ulp",
    "ulp_distance",
    "working_precision",
]


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754 binary format: ``p`` significand bits (hidden bit included),
    normal exponents ``emin..emax`` (value = m * 2**e, 1 <= m < 2)."""

    name: str
    p: int
    emin: int
    emax: int

    @property
    def unit_roundoff(self) -> float:
        """u = 2**-p: the largest relative error of one correctly rounded operation."""
        return math.ldexp(1.0, -self.p)

    @property
    def smallest_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.p + 1)

    @property
    def smallest_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def max_finite(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.p), self.emax)

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(ml_dtypes.bfloat16) if self.name == "bfloat16" else np.dtype(self.name)


FORMATS: dict[str, FloatFormat] = {
    "float64": FloatFormat("float64", 53, -1022, 1023),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
}


def format_of(dtype: Any) -> FloatFormat:
    """The :class:`FloatFormat` of a NumPy dtype, dtype name or format name."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unsupported floating dtype {name!r}: lossconf knows {', '.join(FORMATS)}"
        ) from None


class OracleUndecided(ArithmeticError):
    """Ziv's loop reached its precision ceiling without deciding the rounding.

    A case that raises this is reported as *oracle undecided*, never as a pass.
    """


@dataclass(frozen=True)
class OracleBudget:
    """What one case may cost the oracle: a precision ceiling and a time limit.

    ``max_bits`` caps Ziv's loop (below its own ceiling); ``seconds`` is checked
    between the loop's precision steps, so one step at the ceiling can overrun it
    by that step's time, which ``max_bits`` bounds. ``None`` means no limit.
    """

    max_bits: int | None = None
    seconds: float | None = None


_BUDGET: contextvars.ContextVar[OracleBudget] = contextvars.ContextVar(
    "lossconf_oracle_budget", default=OracleBudget()  # noqa: B039 (frozen, immutable)
)


@contextlib.contextmanager
def oracle_budget(budget: OracleBudget) -> Iterator[None]:
    """Apply ``budget`` to each :func:`correctly_rounded` call in the block.

    Each call (one case's evaluation) gets the whole budget, so a pathological
    case cannot stall a run. Scoped by a context variable, restored on exit:
    nothing outside the block changes.
    """
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)


# An mpf from a raw (sign, mantissa, exponent, bits) tuple, taken as it is: no rounding
# to the context's precision (the tuples below are exact by construction).
_make_mpf = mpmath.mp.make_mpf
_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def to_mpf(x: Any) -> mpf:
    """Exact value of a float (NumPy float16/32/64, bfloat16, Python float or int).

    Every finite value of the four formats is representable in binary64, so the
    conversion through ``float`` is exact, and ``mpf`` is built at 53 bits so it
    stays exact whatever precision the caller works at.
    """
    if isinstance(x, mpf):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return _make_mpf(from_int(int(x)))  # prec 0: exact, whatever the caller's precision
    # binary64 holds the value: exact even if the caller works below 53 bits. Built from
    # its raw (sign, mantissa, exponent) without a workprec block, which cost ten times the
    # conversion itself (~500k conversions in a gate run).
    return _make_mpf(from_float(float(x)))


# Exact additions keep tails down to this many bits below the larger operand; a
# smaller tail is replaced by a same-signed stand-in just there (a "sticky bit"):
# it still tells on which side of a rounding midpoint the sum lies, for every
# format (p <= 53 bits), without building a mantissa of 1e38 bits when logits are
# 1e38 apart.
_STICKY_GAP_BITS = 1 << 15


def exact_add(a: mpf, b: mpf) -> mpf:
    """``a + b`` without rounding, except that a part of ``b`` (or ``a``) more than
    ``2**15`` bits below the other operand collapses to a sticky bit (see above)."""
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)) or a == 0 or b == 0:
        return mpmath.fadd(a, b, exact=True)
    top_a, top_b = a._mpf_[2] + a._mpf_[3], b._mpf_[2] + b._mpf_[3]
    if abs(top_a - top_b) <= _STICKY_GAP_BITS:
        return mpmath.fadd(a, b, exact=True)
    big, small, top = (a, b, top_a) if top_a > top_b else (b, a, top_b)
    stand_in = mpmath.ldexp(mpf(1) if small > 0 else mpf(-1), top - _STICKY_GAP_BITS)
    return mpmath.fadd(big, stand_in, exact=True)


def mp_array(a: Any) -> np.ndarray:
    """An object ndarray of exact ``mpf`` values with ``a``'s shape."""
    arr = np.asarray(a)
    out = np.empty(arr.shape, dtype=object)
    flat_out = out.reshape(-1)
    if arr.dtype.kind == "f" or arr.dtype == _BFLOAT16:  # every format's values are binary64 values
        flat_out[:] = [_make_mpf(from_float(v)) for v in arr.astype(np.float64).reshape(-1).tolist()]
        return out
    flat_in = arr.reshape(-1)
    for i in range(flat_in.size):
        flat_out[i] = to_mpf(flat_in[i])
    return out


def is_nan(x: mpf) -> bool:
    return x != x


@contextlib.contextmanager
def working_precision(bits: int) -> Iterator[None]:
    """Evaluate the body at ``bits`` of binary precision; restore the caller's on exit.

    The only place the oracle sets mpmath's precision: ``mpmath.workprec`` saves
    and restores ``mp.prec``, so nothing outside the block sees a change.
    """
    with mpmath.workprec(bits):
        yield


def round_to_format(x: mpf, fmt: FloatFormat) -> float:
    """Round ``x`` to ``fmt`` as IEEE-754 round-to-nearest-even does; return a float.

    The result is a Python float holding the rounded value exactly (binary64
    holds every value of the narrower formats). Subnormals are produced by
    quantizing to a multiple of the smallest subnormal; a result beyond the
    largest finite value after rounding becomes infinity.
    """
    if is_nan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.inf if x > 0 else -math.inf
    if x == 0:
        return math.copysign(0.0, 1.0 if x._mpf_[0] == 0 else -1.0)
    sign, man, exp, bc = x._mpf_
    leading = exp + bc - 1  # x = ±man * 2**exp with 2**leading <= |x| < 2**(leading+1)
    if leading > fmt.emax:
        return -math.inf if sign else math.inf
    if leading < fmt.emin - fmt.p:  # below half the smallest subnormal: rounds to zero
        return -0.0 if sign else 0.0
    quantum = max(leading, fmt.emin) - (fmt.p - 1)  # exponent of the ulp at x
    shift = quantum - exp
    if shift <= 0:
        q = man << (-shift)
    else:
        q = man >> shift
        rem = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and (q & 1)):
            q += 1
    magnitude = math.inf if q.bit_length() + quantum > fmt.emax + 1 else math.ldexp(q, quantum)
    if magnitude > fmt.max_finite:
        magnitude = math.inf
    return -magnitude if sign else magnitude


def ulp(x: mpf | float, fmt: FloatFormat) -> float:
    """The unit in the last place of ``fmt`` at ``x``: 2**(max(e, emin) - p + 1).

    For |x| beyond the largest finite value the ulp of the top binade is used, so
    distances to an overflowed exact value stay finite and meaningful.
    """
    x = to_mpf(x) if not isinstance(x, mpf) else x
    if x == 0 or not mpmath.isfinite(x):
        e = fmt.emin if x == 0 else fmt.emax
    else:
        e = min(max(int(mpmath.floor(mpmath.log(abs(x), 2))), fmt.emin), fmt.emax)
        # log2 of an mpf can land a hair below an exact power of two: correct it.
        if abs(x) >= mpmath.ldexp(1, e + 1) and e < fmt.emax:
            e += 1
        elif abs(x) < mpmath.ldexp(1, e) and e > fmt.emin:
            e -= 1
    return math.ldexp(1.0, e - fmt.p + 1)


def ulp_distance(observed: Any, exact: Any, dtype: Any) -> float:
    """``|observed - exact|`` in units of ``ulp(exact)`` in ``dtype``'s format.

    A correctly rounded result is at most 0.5 ULP away. Special values: equal
    infinities and NaN against NaN are 0; any other disagreement involving a
    non-finite value is ``inf``.
    """
    fmt = format_of(dtype)
    obs = to_mpf(observed)
    ex = to_mpf(exact)
    if is_nan(obs) or is_nan(ex):
        return 0.0 if (is_nan(obs) and is_nan(ex)) else math.inf
    if mpmath.isinf(obs) or mpmath.isinf(ex):
        return 0.0 if obs == ex else math.inf
    with working_precision(64):
        return float(abs(obs - ex) / ulp(ex, fmt))


# Ziv's loop: the first evaluation runs a little above twice the target precision
# (enough headroom for the moderate cancellations the oracle's formulas still
# contain), the confirmation 64 bits higher; each escalation doubles both.
_ZIV_MARGIN_BITS = 64
_ZIV_MAX_BITS = 1 << 14


def correctly_rounded(
    evaluate: Callable[[], Any],
    dtype: Any,
    *,
    start_bits: int | None = None,
    max_bits: int = _ZIV_MAX_BITS,
) -> tuple[Any, np.ndarray]:
    """Evaluate ``evaluate()`` until its rounding to ``dtype`` is decided.

    ``evaluate`` takes no arguments and returns an ``mpf`` or an object ndarray
    of ``mpf``; it is called inside :func:`working_precision` at increasing
    precisions. The rounding is accepted when the evaluations at ``p`` and
    ``p + 64`` bits round to the same values (Ziv's strategy) and no value sits
    exactly halfway between two floats; otherwise ``p`` doubles, up to
    ``max_bits``, after which :class:`OracleUndecided` is raised. Inside
    :func:`oracle_budget` the budget's ``max_bits`` lowers that ceiling, and
    running past its ``seconds`` (checked before each step) raises
    :class:`OracleUndecided` too.

    Returns ``(exact, rounded)``: the higher-precision evaluation (mpf or object
    array) and a float64 ndarray of the correctly rounded values (0-d for a
    scalar), which hold the ``dtype`` values exactly.
    """
    fmt = format_of(dtype)
    bits = start_bits or (2 * fmt.p + 40)
    budget = _BUDGET.get()
    if budget.max_bits is not None and budget.max_bits < max_bits:
        max_bits = budget.max_bits
    deadline = None if budget.seconds is None else time.monotonic() + budget.seconds
    while bits <= max_bits:
        if deadline is not None and time.monotonic() >= deadline:
            raise OracleUndecided(
                f"rounding to {fmt.name} undecided when the oracle's time budget ran out "
                f"(before trying {bits} bits)"
            )
        with working_precision(bits):
            first = _round_all(evaluate(), fmt)
        with working_precision(bits + _ZIV_MARGIN_BITS):
            value = evaluate()
        rounded = _round_all(value, fmt)
        decided = _same_floats(first, rounded)
        # An exact midpoint may hide a term below 2**-bits: look deeper (see below).
        if decided and (bits >= _MIDPOINT_MAX_BITS or not _any_midpoint(value, fmt)):
            return value, rounded
        bits *= 2
    raise OracleUndecided(
        f"rounding to {fmt.name} still undecided at {max_bits} bits of precision"
    )


# A value that is exactly halfway between two floats at p bits may be an exact tie
# (a mean of two floats) or hide a term smaller than 2**-p relative (log1p of
# exp(-5460) added to 16384.8 when logits are 5460 apart): Ziv's two evaluations
# agree on both. Such values are re-evaluated at doubling precision up to this
# many bits; one still halfway there is taken as an exact tie (ties-to-even),
# which is exact unless a logit gap exceeds about 5600.
_MIDPOINT_MAX_BITS = 1 << 13


def _is_midpoint(x: mpf, fmt: FloatFormat) -> bool:
    """Whether ``x`` lies exactly halfway between two neighbouring values of ``fmt``."""
    if not isinstance(x, mpf) or not mpmath.isfinite(x) or x == 0:
        return False
    _, man, exp, bc = x._mpf_
    leading = exp + bc - 1
    if leading > fmt.emax or leading < fmt.emin - fmt.p - 1:
        return False
    quantum = max(leading, fmt.emin) - (fmt.p - 1)
    shift = quantum - exp
    return shift >= 1 and (man & ((1 << shift) - 1)) == 1 << (shift - 1)


def _any_midpoint(value: Any, fmt: FloatFormat) -> bool:
    if isinstance(value, np.ndarray):
        return any(_is_midpoint(v, fmt) for v in value.reshape(-1))
    return _is_midpoint(value, fmt)


def _round_all(value: Any, fmt: FloatFormat) -> np.ndarray:
    if isinstance(value, np.ndarray):
        flat = [round_to_format(v, fmt) for v in value.reshape(-1)]
        return np.array(flat, dtype=np.float64).reshape(value.shape)
    return np.array(round_to_format(value, fmt), dtype=np.float64)


def _same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality, NaN equal to NaN (NaN payloads are not compared)."""
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) & (np.signbit(a) == np.signbit(b))
    return bool(np.all(both_nan | same))
