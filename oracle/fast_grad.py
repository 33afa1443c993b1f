r"""``cross_entropy``'s exact gradient at LLM scale: arb balls, rounding decided by NumPy.

What: the gradient of the output's sum w.r.t. ``input`` for class-index targets,

.. math::
    g_{n,j} = s \, (A_n p_{n,j} - b_{n,j}), \qquad
    A_n = (1-\varepsilon) w_{y_n} + \varepsilon W / C, \quad
    b_{n,j} = (1-\varepsilon) w_{y_n} [j = y_n] + \varepsilon w_j / C,

``p_{n,j} = e_{n,j} / S_n`` with ``e_{n,j} = exp(x_{n,j} - m_n)``, ``m_n = max_c x_{n,c}``,
``S_n = sum_c e_{n,c}``, ``W = sum_c w_c``; ``s = 1/D`` for ``mean`` (``D = sum_{n not
ignored} w_{y_n}``, the value's denominator) and 1 for ``sum``/``none``; ignored rows are 0.
The same formula as :func:`oracle.classification.cross_entropy_grad`. At the target class the
form ``p_y - 1 = -T_n / S_n`` with ``T_n = sum_{c != y} e_{n,c}`` (summed directly) keeps a
confident row (``p_y`` within ``2^-100`` of 1) free of cancellation.

Why a separate path: a 256 x 131072 gradient has 33.5 million components; the mpmath oracle
holds them as objects (gigabytes) at tens of microseconds each. Here every row costs one
arb ball per component (python-flint, C) and one arb sum, and the rounding of all of a row's
balls is decided at once in float64 NumPy:

* a ball's midpoint ``mid`` as a float64 (within ``2^-51`` relative) and its relative
  accuracy (``arb.rel_accuracy_bits``: radius ``< 2^-acc |mid|``) give a float64 radius
  ``unc = |mid| (2^-51 + 2^(2-acc))`` that covers every point of the ball;
* the candidate ``r`` is ``mid`` converted to the format by NumPy, ``r^-``/``r^+`` its
  neighbours there; the half-way points ``(r^- + r)/2`` and ``(r + r^+)/2`` are exact in
  float64 (sums of two floats of at most 24 bits), so ``mid - low > 2 unc`` and
  ``high - mid > 2 unc`` (one float64 rounding of a difference, covered by the factor 2)
  prove that the ball lies strictly inside ``r``'s rounding interval: every point of it
  rounds to ``r`` -- the same proof as :func:`oracle.fast._decide`, without arb calls;
* a zero candidate is accepted the same way when the ball excludes 0 (its sign is the
  rounded zero's sign).

A component the check leaves open (a midpoint below ``2^-1000``, a ball touching a half-way
point, an overflowing candidate, a ball less than 60 bits accurate, whose midpoint would be
a poor ``exact``) is decided by arb comparisons with the half-way points or
by rounding both endpoints (:func:`oracle.fast._decide_one`); then its row is evaluated
again at twice the precision for those components, up to :data:`oracle.fast.FAST_MAX_BITS`;
then the mpmath oracle (:func:`oracle.core.correctly_rounded` of the component's formula)
decides. No component's rounding is ever estimated.

The error model's quantities (:func:`oracle.gradients.cross_entropy_grad_condition`, index
targets) are formed in float64 NumPy per row, as :mod:`oracle.fast` does for the value's
terms: ``c_j = |A| p_j h_j + k m_j`` (``k = 2`` for ``mean``), ``m_j = |A| p_j + |b_j|``,
``h_j = |x_j| (1 - p_j) + sum_c p_c |x_c| - |x_j| p_j``, scale ``|A| p_j (max|x| + log S)``,
all divided by ``|D|`` for ``mean``; ``summation = condition`` for a mean over more than one
position. Relative error ~1e-15, far below the constants' factor-of-two slack.

``exact`` holds the balls' midpoints as float64 (``2^-51`` relative): the verdict's error and
ULP figures are then accurate to ``2^-27`` of the format's ULP, far below what they report.

Scope: class-index targets, finite logits and weights, any ``label_smoothing``; ``mean``
with a zero denominator (the spec's NaN: no gradient) and everything else return ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath import mpf

from .core import FloatFormat, correctly_rounded, format_of
from .fast import FAST_MAX_BITS, _decide_one, _to_mpf
from .reduction import resolve_reduction

__all__ = ["FastGradient", "cross_entropy_grad_component", "cross_entropy_grad_fast"]

_START_BITS = 128
_MID_ERROR = 2.0**-51  # float(arb): its midpoint rounded to float64, either direction
_TINY_MID = 2.0**-1000  # below this a float64 midpoint is too coarse for the check
_EXACT_BITS = 60  # a ball this accurate has a midpoint within 2**-59 relative: float64's own error dominates
_VECTOR_MAX_P = 24  # float32, float16, bfloat16: half-way points have <= 26 bits


@dataclass(frozen=True)
class FastGradient:
    """What the fast path proved, in ``input``'s shape (float64 arrays)."""

    exact: np.ndarray  # ball midpoints (2**-51 relative)
    rounded: np.ndarray  # the correctly rounded values, in the format's NumPy dtype
    condition: np.ndarray  # GradientCondition.condition, float64
    scale: np.ndarray  # GradientCondition.scale, float64
    summation: np.ndarray  # GradientCondition.summation (the condition itself, or zeros)
    count: int  # GradientCondition.count
    bits: int  # the highest arb precision a component needed
    fallbacks: int  # components decided outside the vectorized check


@dataclass(frozen=True)
class _Plan:
    rows: np.ndarray  # (R, C) in the case's dtype (converted per row)
    targets: np.ndarray  # (R,) int64, -1 where ignored
    weight: np.ndarray | None  # (C,) float64
    eps: float
    reduction: str
    denominator: float  # D as a float64 sum (exact in arb below); 1 for sum/none
    row_weights: np.ndarray  # (R,) float64 w_{y_n}, 0 where ignored
    input_shape: tuple[int, ...]
    count: int

    @property
    def n_classes(self) -> int:
        return self.rows.shape[1]


def _plan(input, target, weight, ignore_index: int, reduction: str, label_smoothing: float) -> _Plan | None:
    x, target = np.asarray(input), np.asarray(target)
    if x.ndim == 0 or not np.issubdtype(target.dtype, np.integer):
        return None
    if reduction not in ("none", "mean", "sum"):
        return None
    eps = float(label_smoothing)
    if not (0.0 <= eps <= 1.0):
        return None  # the spec rejects it: the mpmath oracle says so
    if x.ndim == 1:
        rows, out_shape = x[None, :], ()
    else:
        rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
        out_shape = (x.shape[0], *x.shape[2:])
    n_classes = rows.shape[1]
    if target.shape != out_shape or n_classes == 0:
        return None
    step = max(1, (1 << 22) // max(n_classes, 1))  # rows per chunk: float64 copies of 32 MiB
    if not all(np.all(np.isfinite(rows[k : k + step].astype(np.float64))) for k in range(0, len(rows), step)):
        return None
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    if w is not None and (w.shape != (n_classes,) or not np.all(np.isfinite(w))):
        return None
    flat = target.reshape(-1).astype(np.int64)
    ignored = flat == ignore_index
    if np.any(~ignored & ((flat < 0) | (flat >= n_classes))):
        return None
    safe = np.where(ignored, 0, flat)
    row_weights = np.where(ignored, 0.0, np.ones(len(flat)) if w is None else w[safe])
    count = int(np.count_nonzero(~ignored)) if reduction == "mean" else 0
    denominator = 1.0
    if reduction == "mean":
        denominator = math.fsum(row_weights.tolist())  # correctly rounded: 0 only if it is 0
        if denominator == 0:
            return None  # x/0: no gradient (the spec's NaN)
    return _Plan(rows, np.where(ignored, -1, flat), w, eps, reduction, denominator, row_weights, x.shape, count)


def cross_entropy_grad_fast(
    input,
    target,
    dtype,
    *,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    size_average=None,
    reduce=None,
    start_bits: int | None = None,
    max_bits: int = FAST_MAX_BITS,
) -> FastGradient | None:
    """The correctly rounded gradient of ``cross_entropy``'s output sum w.r.t. ``input`` in
    ``dtype``, and its error-model quantities; ``None`` outside the scope (module docstring).

    ``start_bits``/``max_bits`` only exist to exercise the fallbacks in tests.
    """
    try:
        import flint
    except ImportError:  # python-flint is optional: the mpmath oracle is complete alone
        return None
    reduction = resolve_reduction(size_average, reduce, reduction)
    plan = _plan(input, target, weight, ignore_index, reduction, label_smoothing)
    if plan is None:
        return None
    fmt = format_of(dtype)
    first_bits = start_bits or max(2 * fmt.p + 40, _START_BITS)
    n_rows, n_classes = plan.rows.shape
    exact = np.zeros((n_rows, n_classes))
    rounded = np.zeros((n_rows, n_classes), dtype=fmt.numpy_dtype)
    cond = np.zeros((n_rows, n_classes))
    scale = np.zeros((n_rows, n_classes))
    bits_used, fallbacks = first_bits, 0
    saved = flint.ctx.prec
    try:
        constants = _Constants(plan)
        for i in range(n_rows):
            if plan.targets[i] < 0:
                continue  # ignored: every component is exactly 0 (and so is its bound's part)
            row = plan.rows[i].astype(np.float64)
            exact[i], rounded[i], bits, undecided = _row(flint, row, i, plan, constants, fmt, first_bits, max_bits)
            bits_used, fallbacks = max(bits_used, bits), fallbacks + undecided
            cond[i], scale[i] = _row_condition(row, i, plan)
    finally:
        flint.ctx.prec = saved
    condition = _unrows(cond, plan)
    # A mean's denominator is a sum of ``count`` weights; |g| <= c (oracle.gradients._summation)
    summation = condition if (reduction == "mean" and plan.count > 1) else np.zeros(plan.input_shape)
    return FastGradient(
        exact=_unrows(exact, plan),
        rounded=_unrows(rounded, plan),
        condition=condition,
        scale=_unrows(scale, plan),
        summation=summation,
        count=plan.count,
        bits=bits_used,
        fallbacks=fallbacks,
    )


def _unrows(values: np.ndarray, plan: _Plan) -> np.ndarray:
    """Row layout (R, C) back to ``input``'s shape (the inverse of the plan's moveaxis)."""
    shape = plan.input_shape
    if len(shape) == 1:
        return values.reshape(shape)
    moved = values.reshape((shape[0], *shape[2:], shape[1]))
    return np.moveaxis(moved, -1, 1)


class _Constants:
    """The plan's row-independent inputs: Python floats (arb reads them exactly), and the
    balls made of them, once per precision."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        self.w = None if plan.weight is None else plan.weight.tolist()
        self._balls: dict[int, tuple] = {}

    def balls(self, arb, bits: int) -> tuple:
        """``(s, 1 - eps, eps/C, W)`` at ``bits``: the reduction's scale ``1/D`` (or 1),
        the smoothing factors, the weights' sum."""
        if bits not in self._balls:
            plan = self.plan
            s = 1 / _arb_sum(arb, [v for v in plan.row_weights.tolist() if v]) if plan.reduction == "mean" else arb(1)
            eps = arb(plan.eps)
            w_total = arb(plan.n_classes) if self.w is None else _arb_sum(arb, self.w)
            self._balls[bits] = (s, 1 - eps, eps / plan.n_classes, w_total)
        return self._balls[bits]


def _arb_sum(arb, values):
    total = arb(0)
    for v in values:
        total += v
    return total


def _row_balls(arb, bits: int, row: list, i: int, plan: _Plan, constants: _Constants, only=None):
    """The row's gradient balls at ``bits`` (the context's precision) (all components, or those in ``only``)."""
    y = int(plan.targets[i])
    m = max(row)
    e = [(arb(v) - m).exp() for v in row]
    tail = _arb_sum(arb, e[:y]) + _arb_sum(arb, e[y + 1 :])  # T: every class but the target
    total = tail + e[y]  # S
    w = constants.w
    s, keep, spread, w_total = constants.balls(arb, bits)
    w_y = arb(1.0 if w is None else w[y])
    a = keep * w_y + spread * w_total  # A
    k, q = s * a / total, s * spread
    if not plan.eps:
        q = arb(0)

    def component(j: int):
        if j == y:
            # (1-eps) w_y (p_y - 1) + eps/C (W p_y - w_y), with p_y - 1 = -T/S
            return -(s * keep * w_y) * tail / total + q * (w_total * e[y] / total - w_y)
        if not plan.eps:
            return k * e[j]
        return k * e[j] - q * (1.0 if w is None else w[j])

    if only is not None:
        return [component(j) for j in only]
    if not plan.eps:
        balls = [k * v for v in e]
    elif w is None:
        balls = [k * v - q for v in e]
    else:
        balls = [k * v - q * wj for v, wj in zip(e, w)]
    balls[y] = component(y)
    return balls


def _row(flint, row: np.ndarray, i: int, plan: _Plan, constants: _Constants, fmt: FloatFormat, bits: int, max_bits: int):
    """``(exact, rounded, bits, fallbacks)`` of one row: every component decided."""
    arb = flint.arb
    values = row.tolist()
    flint.ctx.prec = bits
    balls = _row_balls(arb, bits, values, i, plan, constants)
    mids, rounded, open_ = _decide_vectorized(balls, fmt)
    fallbacks = int(open_.size)
    pending = [int(j) for j in open_]
    pending_balls = [balls[j] for j in pending]
    while pending:
        still = []
        for j, ball in zip(pending, pending_balls):
            decided = _decide_ball(ball, fmt)
            if decided is None or not _accurate(ball):
                still.append(j)
            else:
                rounded[j], mids[j] = decided
        pending = still
        if not pending:
            break
        bits *= 2
        if bits > max_bits:
            for j in pending:
                rounded[j], mids[j] = _mpmath_component(values, i, j, plan, fmt)
            break
        flint.ctx.prec = bits
        pending_balls = _row_balls(arb, bits, values, i, plan, constants, only=pending)
    return mids, rounded, bits, fallbacks


def _accurate(ball) -> bool:
    """Whether the ball's midpoint is a float64-accurate ``exact`` value (or the ball is 0)."""
    return ball.is_zero() or ball.rel_accuracy_bits() >= _EXACT_BITS


def _decide_vectorized(balls: list, fmt: FloatFormat):
    """``(mids, rounded, open)``: the float64 midpoints, the candidates proven correct
    (module docstring), and the indices the check leaves open -- all of them for float64,
    whose half-way points a float64 cannot hold and whose rounding a float64 midpoint
    cannot decide (:func:`_decide_ball` does, in arb)."""
    pairs = [(float(b), b.rel_accuracy_bits()) for b in balls]
    mids = np.fromiter((p[0] for p in pairs), dtype=np.float64, count=len(pairs))
    dtype = fmt.numpy_dtype
    if fmt.p > _VECTOR_MAX_P:
        return mids, mids.astype(dtype), np.arange(len(pairs))
    accuracy = np.fromiter((p[1] for p in pairs), dtype=np.float64, count=len(pairs))
    with np.errstate(over="ignore", invalid="ignore"):
        unc = np.abs(mids) * (_MID_ERROR + np.exp2(2.0 - np.clip(accuracy, -2000.0, 2000.0)))
        r = mids.astype(dtype)
        below = np.nextafter(r, np.array(-np.inf, dtype=dtype)).astype(np.float64)
        above = np.nextafter(r, np.array(np.inf, dtype=dtype)).astype(np.float64)
        r64 = r.astype(np.float64)
        low, high = (below + r64) * 0.5, (r64 + above) * 0.5  # exact: p <= 24 (module docstring)
        ok = (
            np.isfinite(r64) & np.isfinite(below) & np.isfinite(above) & np.isfinite(unc)
            & (np.abs(mids) >= _TINY_MID) & (accuracy >= _EXACT_BITS)
            & (mids - low > 2 * unc) & (high - mids > 2 * unc)
            & ((r64 != 0) | (np.abs(mids) > 2 * unc))  # a zero's sign: the ball excludes 0
        )
    return mids, r, np.flatnonzero(~ok)


def _decide_ball(ball, fmt: FloatFormat):
    """``(rounded, midpoint)`` of one ball, or ``None`` when it straddles a half-way point.

    In arb: a candidate (the midpoint rounded by NumPy) is accepted when the ball lies
    strictly between its exact half-way points (:func:`oracle.fast._decide`'s proof); a
    ball strictly inside zero's rounding interval rounds to the zero of its sign; anything
    else rounds both endpoints (:func:`oracle.fast._decide_one`)."""
    if ball.is_finite() and not ball.is_zero():
        arb = type(ball)
        mid = float(ball)
        dtype = fmt.numpy_dtype
        with np.errstate(over="ignore", invalid="ignore"):
            r = np.array(mid).astype(dtype)
            below = float(np.nextafter(r, np.array(-np.inf, dtype=dtype)))
            above = float(np.nextafter(r, np.array(np.inf, dtype=dtype)))
        r = float(r)
        if math.isfinite(r) and math.isfinite(below) and math.isfinite(above):
            low = (arb(below) + r) * 0.5  # exact at >= 128 bits: two neighbouring floats
            high = (arb(above) + r) * 0.5
            if ball > low and ball < high and (r != 0 or ball > 0 or ball < 0):
                return (math.copysign(0.0, 1.0 if ball > 0 else -1.0) if r == 0 else r), mid
    decided = _decide_one(ball, fmt)
    if decided is None:
        return None
    rounded, mid = decided
    return rounded, float(mid)


def _mpmath_component(values: list, i: int, j: int, plan: _Plan, fmt: FloatFormat):
    """The mpmath oracle's rounding of one component (``(rounded, exact)``)."""
    exact, rounded = correctly_rounded(lambda: _mp_component(values, i, j, plan), fmt.name)
    return float(rounded), float(exact)


def _mp_component(values: list, i: int, j: int, plan: _Plan) -> mpf:
    from .activations import SoftmaxRow
    from .classification import _index_row_grad

    c = plan.n_classes
    w = [mpf(1)] * c if plan.weight is None else [mpf(v) for v in plan.weight.tolist()]
    y = int(plan.targets[i])
    g = _index_row_grad(SoftmaxRow([mpf(v) for v in values]), y, w, mpmath.fsum(w), mpf(plan.eps))[j]
    if plan.reduction == "mean":
        g = g / mpmath.fsum(mpf(v) for v in plan.row_weights.tolist())
    return g


def _row_condition(row: np.ndarray, i: int, plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """``(condition, scale)`` of one row's components in float64 (module docstring)."""
    y, c, eps = int(plan.targets[i]), plan.n_classes, plan.eps
    m = row.max()
    e = np.exp(row - m)
    total = e.sum()
    p = e / total
    abs_x = np.abs(row)
    w = plan.weight
    abs_wy = abs(float(plan.row_weights[i]))
    abs_w = np.ones(c) if w is None else np.abs(w)
    a_abs = (1 - eps) * abs_wy + eps / c * abs_w.sum()
    b = eps / c * abs_w
    b[y] += (1 - eps) * abs_wy
    spread = float(np.dot(p, abs_x))
    h = np.maximum(abs_x * (1 - p) + (spread - abs_x * p), 0.0)
    m_j = a_abs * p + b
    cond = a_abs * p * h + (2 * m_j if plan.reduction == "mean" else m_j)
    scale = a_abs * p * (abs_x.max() + math.log(total))
    if plan.reduction == "mean":
        d = abs(plan.denominator)
        cond, scale = cond / d, scale / d
    return cond, scale


def cross_entropy_grad_component(input, target, index: tuple[int, ...], *, weight=None, ignore_index: int = -100,
                                 reduction: str = "mean", label_smoothing: float = 0.0, bits: int = 256) -> mpf | None:
    """One component of the exact gradient as an mpf (an arb ball's midpoint at ``bits``),
    for failure messages; ``None`` outside the scope."""
    try:
        import flint
    except ImportError:
        return None
    plan = _plan(input, target, weight, ignore_index, reduction, label_smoothing)
    if plan is None:
        return None
    shape = plan.input_shape
    if len(shape) == 1:
        i, j = 0, index[0]
    else:
        j = index[1]
        rest = (index[0], *index[2:])
        i = int(np.ravel_multi_index(rest, (shape[0], *shape[2:])))
    if plan.targets[i] < 0:
        return mpf(0)
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = bits
        ball = _row_balls(flint.arb, bits, plan.rows[i].astype(np.float64).tolist(), i, plan, _Constants(plan), only=[j])[0]
        return _to_mpf(ball.mid())
    finally:
        flint.ctx.prec = saved

