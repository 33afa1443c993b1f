r"""A fast exact path for the hottest losses: ball arithmetic in python-flint's arb.

Why: the mpmath oracle spends tens of microseconds of Python per element; arb
(FLINT, C) evaluates the same formulas ten to a hundred times faster, and every
result is a *ball* ``[mid - rad, mid + rad]`` guaranteed to contain the exact value.
Rounding is monotonic, so when a ball's two endpoints round to the same float of
the format, every point of the ball does: that float is the correctly rounded
exact value -- proven by the ball, not estimated. A ball that straddles a rounding
boundary (or a midpoint) is re-evaluated at twice the precision, up to
:data:`FAST_MAX_BITS`; past that the fast path declines and the mpmath oracle, with
its midpoint analysis (:func:`oracle.core.correctly_rounded`), decides.

Scope -- where the formulas are the plain ones and no special-value convention is
involved (everything else returns ``None`` and takes the mpmath path):

* ``cross_entropy`` with class-index targets, ``label_smoothing=0``, finite logits
  and weights: ``t_n = w_{y_n} (log sum_c exp(x_{n,c} - m_n) + m_n - x_{n,y_n})``,
  ``m_n = max_c x_{n,c}``, 0 where ``y_n == ignore_index``; ``mean`` divides by
  ``sum_{n not ignored} w_{y_n}`` (declines when that is 0: the spec's NaN).
* ``binary_cross_entropy_with_logits`` with finite inputs:
  ``t = w (p y softplus(-x) + (1 - y) softplus(x))``, ``softplus(x) = log1p(e^x)``
  for ``x <= 0`` and ``x + log1p(e^{-x})`` above.

The error model's per-term quantities (``condition``, ``scale``; see
:mod:`oracle.reduction`) only size the tolerance, so they are computed in float64
NumPy from the same formulas as the mpmath oracle's (relative error ~1e-15, far
below the factor-of-two slack of the error model's constants); a non-finite one
makes the fast path decline. ``exact`` is the balls' midpoints, within
``2**-(bits - 4)`` relative of the exact values -- used for ULP figures only.

Shapes and arguments the spec rejects are left to the mpmath oracle, which raises
the one-line error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from .core import FloatFormat, format_of, round_to_format
from .reduction import LossTerms, resolve_reduction

__all__ = ["FAST_MAX_BITS", "FastEvaluation", "fast_evaluation"]

#: The highest precision the fast path tries before handing the case to mpmath.
#: Balls at 1024 bits straddle a boundary only for values within ~2**-1000
#: relative of a midpoint: exact ties and hidden tails, which mpmath's midpoint
#: re-evaluation is built for.
FAST_MAX_BITS = 1024
_START_BITS = 128


@dataclass(frozen=True)
class FastEvaluation:
    """What the fast path proved: the correctly rounded values and the terms."""

    exact: Any  # mpf, or an object ndarray of mpf (ball midpoints)
    rounded: np.ndarray  # float64 holding the format's values
    terms: LossTerms
    bits: int  # the precision that decided


def fast_evaluation(fn: str, args: dict, kwargs: dict, dtype: Any) -> FastEvaluation | None:
    """The correctly rounded value of ``fn(**args, **kwargs)`` in ``dtype`` by arb, or
    ``None`` when the case is outside the fast path's scope or stays undecided."""
    try:
        import flint
    except ImportError:  # python-flint is optional: the mpmath oracle is complete alone
        return None
    builder = _BUILDERS.get(fn)
    if builder is None:
        return None
    plan = builder(args, kwargs)
    if plan is None:
        return None
    fmt = format_of(dtype)
    saved = flint.ctx.prec
    # At least 128 bits: the balls' midpoints are the "exact" values failure messages print
    # (20 significant digits), so they must be accurate well beyond the target format.
    bits = max(2 * fmt.p + 40, _START_BITS)
    try:
        while bits <= FAST_MAX_BITS:
            flint.ctx.prec = bits
            balls = plan.evaluate(flint.arb)
            decided = _decide(balls, fmt)
            if decided is not None:
                rounded, exact = decided
                try:
                    terms = plan.loss_terms(exact)
                except _Decline:
                    return None
                return FastEvaluation(exact, rounded, terms, bits)
            bits *= 2
    finally:
        flint.ctx.prec = saved
    return None


# ------------------------------------------------------------------ rounding a ball


def _to_mpf(point) -> mpf:
    """An exact arb point (or arf) as an mpf, without rounding."""
    man, exp = point.man_exp()
    return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(man), int(exp)))


def _decide(balls, fmt: FloatFormat):
    """``(rounded, midpoints)`` when every ball rounds to one float, else ``None``.

    ``balls`` is one arb (a reduced loss) or a list of arbs with an output shape
    attached as ``balls.shape``.

    Per ball, a candidate ``r`` (the midpoint converted to the format by NumPy) is
    accepted when the ball lies strictly inside ``r``'s rounding interval,
    ``((r^- + r)/2, (r + r^+)/2)`` with ``r^-``, ``r^+`` the neighbouring floats of the
    format: those half-way points are dyadic, exact in arb, and arb's comparisons are
    certain, so every point of the ball rounds to ``r`` -- the same proof as rounding
    both endpoints, at a fraction of the cost (no mpmath per element). A ball that
    touches a half-way point, a zero or non-finite candidate (signed zeros, overflow),
    or a wrong candidate takes :func:`_decide_one`, the endpoint rounding.
    """
    values = balls if isinstance(balls, _Balls) else _Balls([balls], ())
    items = values.items
    rounded = np.empty(len(items), dtype=np.float64)
    exact = np.empty(len(items), dtype=object)
    candidates, below, above = _candidates(items, fmt)
    arb = type(items[0]) if items else None
    for i, ball in enumerate(items):
        r = candidates[i]
        if r != 0.0 and math.isfinite(below[i]) and math.isfinite(above[i]):
            low = (arb(below[i]) + r) * 0.5  # exact: two neighbouring floats, >= 128 bits
            high = (arb(above[i]) + r) * 0.5
            if ball > low and ball < high:
                rounded[i], exact[i] = r, _to_mpf(ball.mid())
                continue
        decided = _decide_one(ball, fmt)
        if decided is None:
            return None
        rounded[i], exact[i] = decided
    if not isinstance(balls, _Balls):  # a reduced loss: an mpf, as the mpmath oracle gives
        return np.array(rounded[0]), exact[0]
    return rounded.reshape(values.shape), exact.reshape(values.shape)


def _candidates(items: list, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The midpoints rounded to the format by NumPy, and their two neighbours there
    (float64 arrays; non-finite where a ball is not finite)."""
    mids = np.array([float(ball.mid()) if ball.is_finite() else math.nan for ball in items], dtype=np.float64)
    dtype = fmt.numpy_dtype
    with np.errstate(over="ignore", invalid="ignore"):
        r = mids.astype(dtype)
        below = np.nextafter(r, np.array(-np.inf, dtype=dtype)).astype(np.float64)
        above = np.nextafter(r, np.array(np.inf, dtype=dtype)).astype(np.float64)
    return r.astype(np.float64), below, above


def _decide_one(ball, fmt: FloatFormat):
    """``(rounded, midpoint)`` of one ball by rounding both endpoints (mpmath), else None."""
    if not ball.is_finite():
        return None
    lo = round_to_format(_to_mpf(ball.lower()), fmt)
    hi = round_to_format(_to_mpf(ball.upper()), fmt)
    if lo != hi or np.signbit(lo) != np.signbit(hi):
        return None
    return hi, _to_mpf(ball.mid())


@dataclass
class _Balls:
    items: list
    shape: tuple[int, ...]


def _mp(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1).tolist()):
        flat[i] = mpf(v)
    return out


def _reduce(arb, term_balls: list, reduction: str, denominator) -> Any:
    if reduction == "none":
        return None
    total = arb(0)
    for t in term_balls:
        total += t
    return total if reduction == "sum" else total / denominator


# ------------------------------------------------------------------ cross_entropy


@dataclass
class _CrossEntropyPlan:
    rows: np.ndarray  # (R, C) float64 logits
    targets: np.ndarray  # (R,) int64; ignored rows hold -1
    row_weight: np.ndarray  # (R,) float64, w_{y_n} (0 where ignored)
    class_weight: np.ndarray | None
    out_shape: tuple[int, ...]
    reduction: str

    def evaluate(self, arb):
        terms = []
        for row, y, w in zip(self.rows.tolist(), self.targets.tolist(), self.row_weight.tolist()):
            if y < 0:
                terms.append(arb(0))
                continue
            m = max(row)
            s = arb(0)
            for v in row:
                s += (arb(v) - m).exp()
            terms.append(w * (s.log() + (arb(m) - row[y])))
        denominator = arb(0)
        for w in self.row_weight.tolist():
            denominator += w
        reduced = _reduce(arb, terms, self.reduction, denominator)
        return _Balls(terms, self.out_shape) if reduced is None else reduced

    def loss_terms(self, exact) -> LossTerms:
        """Terms as the mpmath oracle states them; condition and scale in float64:
        ``c_n = sum_i |x_i dt_n/dx_i| + |t_n|`` with ``dt/dx_i = w_y (p_i - [i = y])``,
        ``s_n = |w_y| (max_c |x_c| + log sum_c e^{x_c - m})`` (``SoftmaxRow.working_scale``)."""
        x, active = self.rows, self.targets >= 0
        with np.errstate(over="ignore", invalid="ignore"):  # an inf here declines, below
            return self._loss_terms(exact, x, active)

    def _loss_terms(self, exact, x: np.ndarray, active: np.ndarray) -> LossTerms:
        m = x.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(x - m).sum(axis=1))
        lse = m[:, 0] + log_sum
        p = np.exp(x - lse[:, None])
        y = np.where(active, self.targets, 0)
        onehot = np.zeros_like(x)
        onehot[np.arange(len(y)), y] = 1.0
        term_f = self.row_weight * (lse - x[np.arange(len(y)), y])
        cond = np.abs(self.row_weight) * np.abs(x * (p - onehot)).sum(axis=1) + np.abs(term_f)
        scale = np.abs(self.row_weight) * (np.abs(x).max(axis=1) + log_sum)
        cond, scale = np.where(active, cond, 0.0), np.where(active, scale, 0.0)
        if not (np.all(np.isfinite(cond)) and np.all(np.isfinite(scale))):
            raise _Decline
        terms = exact if self.reduction == "none" else _terms_from_rows(self, term_f)
        return LossTerms(
            terms=terms,
            condition=cond.reshape(self.out_shape),
            scale=scale.reshape(self.out_shape),
            reduction=self.reduction,
            denominator=mpmath.fsum(_mp(self.row_weight)) if self.reduction == "mean" else None,
        )


def _terms_from_rows(plan: _CrossEntropyPlan, approximate: np.ndarray) -> np.ndarray:
    """Per-term values for a reduced loss's error model (their magnitudes only)."""
    return _mp(approximate.reshape(plan.out_shape))


class _Decline(Exception):
    """Raised inside a plan when the fast path must hand the case to mpmath."""


def _cross_entropy_plan(args: dict, kwargs: dict) -> _CrossEntropyPlan | None:
    x, target = np.asarray(args["input"]), np.asarray(args["target"])
    if not np.issubdtype(target.dtype, np.integer) or x.ndim == 0:
        return None
    if kwargs.get("label_smoothing", 0.0) != 0:
        return None
    reduction = resolve_reduction(kwargs.get("size_average"), kwargs.get("reduce"), kwargs.get("reduction", "mean"))
    if reduction not in ("none", "mean", "sum"):
        return None
    x = x.astype(np.float64)
    if x.ndim == 1:
        rows, out_shape = x[None, :], ()
    else:
        rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
        out_shape = (x.shape[0], *x.shape[2:])
    n_classes = rows.shape[1]
    if target.shape != out_shape or n_classes == 0 or not np.all(np.isfinite(rows)):
        return None
    weight = kwargs.get("weight")
    class_weight = None if weight is None else np.asarray(weight, dtype=np.float64)
    if class_weight is not None and (class_weight.shape != (n_classes,) or not np.all(np.isfinite(class_weight))):
        return None
    ignore_index = kwargs.get("ignore_index", -100)
    flat = target.reshape(-1).astype(np.int64)
    ignored = flat == ignore_index
    if np.any(~ignored & ((flat < 0) | (flat >= n_classes))):
        return None  # the spec rejects it: the mpmath oracle says so
    safe = np.where(ignored, 0, flat)
    row_weight = np.ones(len(flat)) if class_weight is None else class_weight[safe]
    row_weight = np.where(ignored, 0.0, row_weight)
    if reduction == "mean" and not np.any(row_weight != 0):
        return None  # 0/0: the spec's NaN, the mpmath oracle's convention
    return _CrossEntropyPlan(rows, np.where(ignored, -1, flat), row_weight, class_weight, out_shape, reduction)


# ------------------------------------------------------------------ binary_cross_entropy_with_logits


@dataclass
class _BceLogitsPlan:
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    p: np.ndarray
    reduction: str

    def evaluate(self, arb):
        terms = []
        for xv, yv, wv, pv in zip(self.x.reshape(-1).tolist(), self.y.reshape(-1).tolist(),
                                  self.w.reshape(-1).tolist(), self.p.reshape(-1).tolist()):
            xa = arb(xv)
            positive = arb(pv) * yv * _softplus(-xa, -xv) if yv != 0 else arb(0)
            negative = (1 - arb(yv)) * _softplus(xa, xv)
            terms.append(wv * (positive + negative))
        reduced = _reduce(arb, terms, self.reduction, arb(self.x.size))
        return _Balls(terms, self.x.shape) if reduced is None else reduced

    def loss_terms(self, exact) -> LossTerms:
        """As :func:`oracle.binary.binary_cross_entropy_with_logits_terms`, in float64:
        slope ``w ((1-y) s(x) - p y s(-x))``, target slope ``w (p sp(-x) - sp(x))``,
        ``c = |x slope| + |y target slope| + |w positive| + |w negative|``,
        ``s = |w x| (|1-y| + |1 + (p-1) y|)`` (``s`` the logistic, ``sp`` softplus)."""
        with np.errstate(over="ignore", invalid="ignore"):  # an inf here declines, below
            return self._loss_terms(exact, self.x, self.y, self.w, self.p)

    def _loss_terms(self, exact, x, y, w, p) -> LossTerms:
        sp_pos, sp_neg = np.logaddexp(0.0, x), np.logaddexp(0.0, -x)
        sig_pos, sig_neg = 0.5 * (1 + np.tanh(x / 2)), 0.5 * (1 - np.tanh(x / 2))
        positive = np.where(y != 0, p * y * sp_neg, 0.0)
        negative = (1 - y) * sp_pos
        slope = w * ((1 - y) * sig_pos - p * y * sig_neg)
        cond = np.abs(x * slope) + np.abs(y * w * (p * sp_neg - sp_pos)) + np.abs(w * positive) + np.abs(w * negative)
        scale = np.abs(w * x) * (np.abs(1 - y) + np.abs(1 + (p - 1) * y))
        if not (np.all(np.isfinite(cond)) and np.all(np.isfinite(scale))):
            raise _Decline
        terms = exact if self.reduction == "none" else _mp(w * (positive + negative))
        return LossTerms(
            terms=terms,
            condition=np.array(cond, dtype=np.float64),
            scale=np.array(scale, dtype=np.float64),
            reduction=self.reduction,
            denominator=mpf(x.size) if self.reduction == "mean" else None,
        )


def _softplus(xa, xv: float):
    """``log(1 + e^x)`` for an arb ``xa`` holding the float ``xv``, cancellation-free."""
    if xv <= 0:
        return xa.exp().log1p()
    return xa + (-xa).exp().log1p()


def _bce_logits_plan(args: dict, kwargs: dict) -> _BceLogitsPlan | None:
    reduction = resolve_reduction(kwargs.get("size_average"), kwargs.get("reduce"), kwargs.get("reduction", "mean"))
    if reduction not in ("none", "mean", "sum"):
        return None
    x = np.asarray(args["input"], dtype=np.float64)
    y = np.asarray(args["target"])
    if y.shape != x.shape or np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return None
    y = y.astype(np.float64)
    try:
        w = np.broadcast_to(np.asarray(1.0 if kwargs.get("weight") is None else kwargs["weight"], dtype=np.float64), x.shape)
        p = np.broadcast_to(np.asarray(1.0 if kwargs.get("pos_weight") is None else kwargs["pos_weight"], dtype=np.float64), x.shape)
    except ValueError:
        return None
    if reduction == "mean" and x.size == 0:
        return None
    if not all(np.all(np.isfinite(a)) for a in (x, y, w, p)):
        return None
    return _BceLogitsPlan(x, y, w, p, reduction)


_BUILDERS = {
    "cross_entropy": _cross_entropy_plan,
    "binary_cross_entropy_with_logits": _bce_logits_plan,
}
