r"""Exact gradients of ``cross_entropy`` w.r.t. ``target`` (class probabilities) and
``weight``, and of ``nll_loss`` w.r.t. ``weight``, with the error model's quantities for
them (:class:`oracle.gradients.GradientCondition`).

Notation (``oracle.classification``): per position ``n`` (a row of ``C`` logits),
``r_{n,c} = lse(x_n) - x_{n,c} = -log softmax(x_n)_c >= 0``, ``eps`` the label smoothing,
``w`` the class weights (ones without ``weight``), ``F`` the output's sum.

**Class-probability targets** ``p``, ``q = (1-eps) p + eps/C``,
``t_n = sum_c w_c q_{n,c} r_{n,c}``, ``F = sum_n t_n / D`` with ``D = N`` positions for a
``mean`` (a constant: PyTorch's ``cross_entropy_loss_prob_target`` divides by the
position count, not by a weight sum) and ``D = 1`` otherwise:

.. math::
    \frac{\partial F}{\partial p_{n,c}} = \frac{(1-\varepsilon)\, w_c\, r_{n,c}}{D},
    \qquad
    \frac{\partial F}{\partial w_c} = \frac{1}{D} \sum_n q_{n,c}\, r_{n,c}

* ``d/dw_c``: a class with ``q_{n,c} = 0`` contributes 0 even where ``r_{n,c} = inf``
  (a masked class, logit ``-inf``): the forward's ``0 log 0 = 0`` makes that term
  identically 0 in ``w_c``. (PyTorch's composite forms ``-(log_softmax * target)`` and
  gives ``0 * -inf = NaN`` there: the forward's own finding, entry
  ``cross-entropy-probability-target-masked-class-nan``.)
* ``d/dp_{n,c}`` at a masked class with ``q_{n,c} = 0`` (possible only with ``eps = 0``:
  otherwise ``q >= eps/C`` and the loss is infinite, its gradient undefined): moving
  ``p_{n,c}`` off 0 makes the loss infinite, so the derivative is the formula's value,
  ``+inf`` for ``w_c > 0`` (``-inf`` below 0) and NaN for ``w_c = 0`` (``0 * inf``: the
  forward multiplies weights as numbers). That is also ``-(1-eps) w_c log_softmax`` as
  every framework's backward forms it.

**Class-index targets** ``y_n`` (``ignore_index`` rows dropped, ``R`` rows kept). ``t_n``
is linear in the weights:

.. math::
    t_n = \sum_c w_c\, a_{n,c}, \qquad
    a_{n,c} = (1-\varepsilon)\,[c = y_n]\, r_{n,y_n} + \frac{\varepsilon}{C}\, r_{n,c}

(the smoothing part only for ``eps > 0``: with ``eps = 0`` a masked non-target class is
not read, as in the forward). With ``A_c = sum_n a_{n,c}``, ``S = sum_c w_c A_c`` and,
for a ``mean``, PyTorch's denominator ``D = sum_n w_{y_n} = sum_k w_k n_k`` (``n_k``
the kept rows of class ``k``; also with label smoothing, ``LossNLL.cpp``'s
``cross_entropy_loss_label_smoothing`` divides the smoothing term by it) -- the weight
appears in numerator and denominator, ``F = S / D``:

.. math::
    \frac{\partial F}{\partial w_c} = \frac{A_c D - S\, n_c}{D^2}
      = \frac{1}{D^2} \sum_{k \ne c} w_k\, (A_c n_k - n_c A_k)
    \quad(\text{mean}), \qquad
    \frac{\partial F}{\partial w_c} = A_c \quad(\text{sum, none})

The second form shows which terms cancel (``k = c`` identically): the numerator is
evaluated with exact products and sums (``A_c D - n_c S``, equal to it; a part more than
``2**15`` bits below the other operand is a sticky bit, ``oracle.core.exact_add``), so the derivative
is exactly 0 where it is (one kept row and ``eps = 0``: ``F = r_y`` whatever ``w_y``; all
kept rows of one class), and the only rounding is the division (correct rounding of an
exact 0 terminates; of a rounded near-0 it would not). A ``mean`` over nothing (all rows ignored, or every selected
weight 0) is ``0/0 = NaN``: undefined, and so is its gradient (NaN here; the suite does
not judge it). ``sum`` over all-ignored rows is 0 for every ``w``: gradient 0.

``nll_loss``: ``t_n = -w_{y_n} x_{n,y_n}``, i.e. ``a_{n,c} = -[c = y_n] x_{n,c}`` in the
same formulas (its ``mean`` has the same weight-sum denominator).

PyTorch (2.13) differentiates ``weight`` only through the composite probability-target
path: ``nll_loss_forward`` "is not differentiable with respect to argument 'weight'", so
``cross_entropy`` with class indices and ``nll_loss`` are unsupported there (the adapter's
NotImplementedError); TensorFlow and JAX differentiate their compositions.

**Error model** (``suites/gradients.py``): ``c = sum_z sum_k |z_k dg/dz_k| + m`` by the
triangle inequality over the formulas above, with ``h_{n,j} = sum_k |x_k dr_j/dx_k| =
|x_j| (1 - p_j) + sum_{k != j} |x_k| p_k`` (``oracle.gradients._row_spread``):

* probabilities, ``d/dp``: ``x``: ``(1-eps)|w_c| h_c / D``; ``w``: ``|g|``; summands
  ``|g|``. Scale: ``r`` is formed from quantities of the row's working scale ``s_n``
  (``max|x| + log(1+T)``, as in the forward), times ``(1-eps)|w_c| / D``.
* probabilities, ``d/dw_c``: ``x``: ``sum_n |q| h_{n,c} / D``; ``p``: ``sum_n (1-eps)
  |p| r / D``; summands ``sum_n |q r| / D``; scale ``sum_n |q| s_n / D``; the backward
  sums ``R`` rows: ``summation`` the summands, ``count = R``.
* indices (and ``nll_loss``), ``d/dw_c``, with ``|A|_c = sum_n |a_{n,c}|``, ``X_c =
  sum_n ((1-eps)[c=y_n] h_{n,y} + eps/C h_{n,c})`` (``nll``: ``sum_n [c=y_n] |x_{n,c}|``)
  and ``W_k = |w_k|``: for ``sum``/``none`` ``c = X_c + |A|_c``; for a ``mean`` (``g =
  A_c/D - n_c S/D^2``)

  .. math::
      c = \frac{X_c + |A|_c}{|D|} + \frac{n_c \sum_k W_k (X_k + |A|_k)}{D^2}
          + \frac{|A|_c D_{abs} + n_c S_{abs} + 2 |F| n_c D_{abs}}{D^2}

  (``x`` through ``A_c`` and ``S``; the summands; the weights through ``S`` and ``D``,
  ``D_abs = sum_k W_k n_k``, ``S_abs = sum_k W_k |A|_k``). Scale: ``r``'s working scale
  through ``A_c`` and, for a mean, ``S`` (0 for ``nll_loss``). ``summation``: the
  summands, ``count = R`` (the rows' sum; a mean's ``D`` and ``S`` are sums over them).

An infinite exact component has condition and scale 0 (its bound is not used).
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .activations import SoftmaxRow
from .classification import (
    _class_rows,
    _class_weights,
    _index_targets,
    _is_index_target,
    _layout,
    _smoothed_probability,
)
from .core import exact_add, mp_array
from .reduction import divide, exact_sum, resolve_reduction

__all__ = [
    "cross_entropy_grad_wrt",
    "cross_entropy_wrt_condition",
    "nll_loss_grad_wrt",
    "nll_loss_wrt_condition",
]


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = mpf(0)
    return out


def _finite(v: mpf) -> bool:
    return bool(mpmath.isfinite(v))


def _row_spread(row: SoftmaxRow) -> list[mpf]:
    from .gradients import _row_spread as spread  # oracle.gradients imports this module's callers

    return spread(row)


def _mul(*factors: mpf) -> mpf:
    out = mpf(1)
    for f in factors:
        out = mpmath.fmul(out, f, exact=True)
    return out


def _obj(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _no_parameter(fn: str, wrt: str, given: list[str]) -> ValueError:
    return ValueError(f"{fn} has no differentiable parameter {wrt!r} here: choose one of {', '.join(given)}")


# ------------------------------------------------------------------ probability targets


def _probability_rows(input, target, weight, label_smoothing):
    layout = _layout(np.asarray(input))
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    probs, _ = _class_rows(mp_array(np.asarray(target)))
    rows = [SoftmaxRow(list(r)) for r in layout.rows]
    q = [[_smoothed_probability(pc, eps, n_classes) for pc in pr] for pr in probs]
    return layout, w, eps, probs, rows, q


def _probability_target(input, target, weight, reduction, label_smoothing, wrt):
    layout, w, eps, probs, rows, q = _probability_rows(input, target, weight, label_smoothing)
    n_rows, n_classes = layout.rows.shape
    d = mpf(n_rows) if reduction == "mean" else mpf(1)
    if wrt == "target":
        grad, cond, scale = (_zeros(layout.rows.shape) for _ in range(3))
        for i, row in enumerate(rows):
            h = _row_spread(row)
            for c in range(n_classes):
                g = divide(_mul(1 - eps, w[c], row.neg_log_prob(c)), d)
                grad[i, c] = g
                if _finite(g):
                    factor = (1 - eps) * abs(w[c]) / d
                    cond[i, c] = factor * h[c] + 2 * abs(g)
                    scale[i, c] = factor * row.working_scale
        unflat = layout.unflatten_rows
        return unflat(grad), (unflat(cond), unflat(scale), _zeros(np.shape(target)), 0)
    grad, cond, scale, summands = (_zeros((n_classes,)) for _ in range(4))
    spreads = [_row_spread(row) for row in rows]
    for c in range(n_classes):
        terms, x_part, p_part, s_part = [], [], [], []
        for i, row in enumerate(rows):
            if q[i][c] == 0:  # 0 log 0 = 0: the term is identically 0 in w_c
                continue
            r = row.neg_log_prob(c)
            terms.append(_mul(q[i][c], r))
            x_part.append(abs(q[i][c]) * spreads[i][c])
            p_part.append((1 - eps) * abs(probs[i][c]) * r)
            s_part.append(abs(q[i][c]) * row.working_scale)
        grad[c] = divide(exact_sum(terms), d)
        summands[c] = mpmath.fsum(abs(t) for t in terms) / d
        cond[c] = (mpmath.fsum(x_part) + mpmath.fsum(p_part)) / d + summands[c]
        scale[c] = mpmath.fsum(s_part) / d
    count = n_rows if n_rows > 1 else 0
    return grad, (cond, scale, summands if count else _zeros((n_classes,)), count)


# ------------------------------------------------------------------ class-index targets


def _index_parts(fn, input, target, weight, ignore_index, label_smoothing):
    """Per kept row: its class, ``a_{n,c}`` (list over c), ``X``-terms and scale terms."""
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    kept = []
    for row_values, y in zip(layout.rows, _index_targets(target, layout, n_classes, ignore_index)):
        if y == ignore_index:
            continue
        if fn == "nll_loss":
            a = [mpmath.fneg(row_values[y], exact=True) if c == y else mpf(0) for c in range(n_classes)]
            xs = [abs(row_values[y]) if c == y and _finite(row_values[y]) else mpf(0) for c in range(n_classes)]
            kept.append((y, a, xs, [mpf(0)] * n_classes))
            continue
        row = SoftmaxRow(list(row_values))
        h = _row_spread(row)
        head = _mul(1 - eps, row.neg_log_prob(y))
        a, xs, sc = [], [], []
        for c in range(n_classes):
            own = c == y
            if eps:
                smooth = _mul(eps, row.neg_log_prob(c)) / n_classes
                a.append(mpmath.fadd(head, smooth, exact=True) if own else smooth)
            else:
                a.append(head if own else mpf(0))
            xs.append((1 - eps) * h[y] * own + eps / n_classes * h[c])
            sc.append(((1 - eps) * own + eps / n_classes) * row.working_scale)
        kept.append((y, a, xs, sc))
    return layout, w, n_classes, kept


def _index_weight(fn, input, target, weight, ignore_index, reduction, label_smoothing):
    layout, w, n_classes, kept = _index_parts(fn, input, target, weight, ignore_index, label_smoothing)
    A = [exact_sum([a[c] for _, a, _, _ in kept]) for c in range(n_classes)]
    A_abs = [mpmath.fsum(abs(a[c]) for _, a, _, _ in kept) for c in range(n_classes)]
    X = [mpmath.fsum(xs[c] for _, _, xs, _ in kept) for c in range(n_classes)]
    Ws = [mpmath.fsum(sc[c] for _, _, _, sc in kept) for c in range(n_classes)]
    count = len(kept) if len(kept) > 1 else 0
    if reduction != "mean":
        grad, scale = _obj(A), _obj(Ws)
        cond = _obj([X[c] + A_abs[c] for c in range(n_classes)])
        summation = _obj(A_abs) if count else _zeros((n_classes,))
        return grad, (cond, scale, summation, count)
    n = [sum(1 for y, *_ in kept if y == k) for k in range(n_classes)]
    D = exact_sum([_mul(w[k], n[k]) for k in range(n_classes) if n[k]])
    D2 = mpmath.fmul(D, D, exact=True)
    W = [abs(v) for v in w]
    D_abs = mpmath.fsum(W[k] * n[k] for k in range(n_classes))
    S = exact_sum([_mul(w[k], A[k]) for k in range(n_classes)])
    S_abs = mpmath.fsum(W[k] * A_abs[k] for k in range(n_classes))
    F_abs = abs(divide(S, D))
    XS = mpmath.fsum(W[k] * (X[k] + A_abs[k]) for k in range(n_classes))
    SS = mpmath.fsum(W[k] * Ws[k] for k in range(n_classes))
    grad, cond, scale, summation = (_zeros((n_classes,)) for _ in range(4))
    for c in range(n_classes):
        # exact (exact_add): equal to sum_{k != c} w_k (A_c n_k - n_c A_k), so 0 where that is
        # identically 0. Not mpmath.fsub(exact=True): A_c may be a lone log1p tail (a row whose
        # target logit sits 2e19 above the rest has -log p_y ~ 5 e^-2e19, exponent ~ -3e19 bits),
        # and an exact difference with an O(1) n_c S needs a 3e19-bit mantissa (OverflowError
        # "the exact result does not fit in memory"); exact_add keeps such a tail as its sticky bit.
        numerator = exact_add(_mul(A[c], D), mpmath.fneg(_mul(n[c], S), exact=True))
        grad[c] = divide(numerator, D2)
        if D == 0:
            cond[c] = scale[c] = summation[c] = mpmath.nan
            continue
        own = (A_abs[c] + n[c] * S_abs / abs(D)) / abs(D)
        cond[c] = ((X[c] + A_abs[c]) / abs(D) + n[c] * XS / D2
                   + (A_abs[c] * D_abs + n[c] * S_abs + 2 * F_abs * n[c] * D_abs) / D2)
        scale[c] = Ws[c] / abs(D) + n[c] * SS / D2
        summation[c] = own if count else mpf(0)
    return grad, (cond, scale, summation, count)


# ------------------------------------------------------------------ public functions


def _cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing, wrt):
    reduction = resolve_reduction(size_average, reduce, reduction)
    index = _is_index_target(np.asarray(target))
    if (wrt == "target" and index) or (wrt == "weight" and weight is None) or wrt not in ("target", "weight"):
        given = ["input"] + (["target"] if not index else []) + (["weight"] if weight is not None else [])
        raise _no_parameter("cross_entropy", wrt, given)
    if index:
        return _index_weight("cross_entropy", input, target, weight, ignore_index, reduction, label_smoothing)
    return _probability_target(input, target, weight, reduction, label_smoothing, wrt)


def cross_entropy_grad_wrt(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                           reduction: str = "mean", label_smoothing: float = 0.0, wrt: str = "target") -> np.ndarray:
    """``dF/d wrt`` for ``wrt`` in ``target`` (class probabilities) and ``weight`` (module docstring)."""
    return _cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing, wrt)[0]


def cross_entropy_wrt_condition(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                                reduction: str = "mean", label_smoothing: float = 0.0, wrt: str = "target"):
    """:class:`oracle.gradients.GradientCondition` of :func:`cross_entropy_grad_wrt`."""
    from .gradients import GradientCondition

    parts = _cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing, wrt)[1]
    return GradientCondition(*parts)


def _nll(input, target, weight, size_average, ignore_index, reduce, reduction, wrt):
    reduction = resolve_reduction(size_average, reduce, reduction)
    if wrt != "weight" or weight is None:
        raise _no_parameter("nll_loss", wrt, ["input"] + (["weight"] if weight is not None else []))
    return _index_weight("nll_loss", input, target, weight, ignore_index, reduction, 0.0)


def nll_loss_grad_wrt(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                      reduction: str = "mean", wrt: str = "weight") -> np.ndarray:
    """``dF/d weight`` of ``nll_loss`` (module docstring)."""
    return _nll(input, target, weight, size_average, ignore_index, reduce, reduction, wrt)[0]


def nll_loss_wrt_condition(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                           reduction: str = "mean", wrt: str = "weight"):
    """:class:`oracle.gradients.GradientCondition` of :func:`nll_loss_grad_wrt`."""
    from .gradients import GradientCondition

    return GradientCondition(*_nll(input, target, weight, size_average, ignore_index, reduce, reduction, wrt)[1])
