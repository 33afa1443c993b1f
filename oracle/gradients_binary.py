r"""Exact gradients of ``binary_cross_entropy_with_logits`` w.r.t. ``target``, ``weight`` and
``pos_weight``, of ``binary_cross_entropy`` and ``multilabel_soft_margin_loss`` w.r.t. ``target``
and ``weight``, and the error model's quantities for them
(:class:`oracle.gradients.GradientCondition`).

Per element (``oracle.binary``), with ``a = softplus(-x) = -log sigma(x)`` and
``b = softplus(x) = -log(1 - sigma(x))``:

.. math::
    t = w\,(p\,y\,a + (1 - y)\,b), \qquad F = R(t)

(``R``: sum, or mean by the element count ``N``, exact). Hence

==============  ===================================  ======================================
parameter       ``dt/dz``                            convention
==============  ===================================  ======================================
``target``      ``w (p a - b)``  (``-w x`` at p=1)   ``+-inf`` at ``x = -+inf`` (limit);
                                                     NaN for ``p = 0`` at ``x = -inf``
``weight``      ``p y a + (1 - y) b`` (= ``t / w``)  ``0 log 0 = 0`` as in the forward
``pos_weight``  ``w y a``                            ``y = 0`` contributes 0 (also at x=-inf)
==============  ===================================  ======================================

The forward multiplies weights as numbers (``oracle.binary``: a zero weight times an
infinite log is NaN), so at ``x = -inf`` with ``p = 0`` the loss is NaN for every ``y > 0``
and its derivative in ``y`` is undefined (NaN; PyTorch 2.13 also gives NaN there), while
``dt/dp = w y a`` at ``y = 0`` is 0 (``t`` is 0 for every ``p``).

Each is divided by ``N`` for a mean and summed over the axes the parameter was broadcast along
(``pos_weight`` along every axis but the last; ``weight`` wherever it has size 1 or fewer
dimensions). PyTorch (2.13 eager) differentiates ``input`` and ``target`` only: ``weight``
and ``pos_weight`` raise "is not differentiable with respect to argument"; TensorFlow and
JAX differentiate all of them through their own formulas.

Error model (``suites/gradients.py``): ``c = sum_z |z dg/dz| + m`` over ``x, y, w, p``:

* ``target``: ``|x dg/dx| = |w x| (|p| sigma(-x) + sigma(x))``, ``|w dg/dw| = |g|``,
  ``|p dg/dp| = |w p a|``, summands ``m = |w| (|p| a + b)``. Scale: the max-shifted
  forward ``(1-y) x + (1 + (p-1) y) L`` with ``L = log1p(exp(-|x|)) + max(-x, 0)``, which
  TensorFlow and JAX differentiate, gives ``-x + (p-1) L``: its absolute error is ``u``
  times ``|w| (|x| + |p-1| a)`` (with ``p < 1`` and ``x << 0`` the two cancel to ``-p x``).
* ``weight``: ``|x dg/dx| <= |x| (|1-y| sigma(x) + |p y| sigma(-x))``,
  ``|y dg/dy| <= |y| (|p| a + b)``, ``|p dg/dp| = |p y a|``, summands ``|p y a| + |(1-y) b|``;
  scale: the forward's ``|x| (|1-y| + |1 + (p-1) y|)`` (the same max-shifted algorithm).
* ``pos_weight``: ``|x dg/dx| = |w y x| sigma(-x)``, ``|y dg/dy| = |w dg/dw| = |g|``,
  summands ``|g|``; the backward pass sums the ``N / C`` components of each class, so
  ``summation = sum |w y a|`` with ``count`` that many addends.

At ``x = +-inf`` the ``x``-terms are their limits where finite and 0 where the gradient
itself is infinite (the bound of an infinite exact component is not used).

``binary_cross_entropy`` (``oracle.binary``): ``t = -w (y Lx + (1 - y) L1)`` with the
documented clamped logs ``Lx = max(log x, -100)``, ``L1 = max(log(1 - x), -100)``:

==============  ===================================  ======================================
parameter       ``dt/dz``                            at ``x`` in {0, 1}
==============  ===================================  ======================================
``target``      ``-w (Lx - L1)``                     ``100 w`` at 0, ``-100 w`` at 1
``weight``      ``-(y Lx + (1 - y) L1)``             ``100 y`` at 0, ``100 (1 - y)`` at 1
==============  ===================================  ======================================

always finite: the clamp holds each log at -100 where it would be ``-inf`` (and below
``x = e^-100``), and a clamped log is constant in ``x``. PyTorch 2.13 differentiates
``target`` as ``-w logit(x)``, unclamped (``+-inf`` at 0 and 1: an expected deviation), and
not ``weight``. Error model: ``|x dg/dx|`` counts ``1`` for ``log x`` at every ``x > 0`` (its
clamp's kink at ``e^-100`` is continuous; ``m`` holds ``100 |w|`` there, far more) and
``x / (1 - x)`` for an unclamped ``log(1 - x)``; no perturbation of ``x = 1`` crosses that clamp
(as in the forward model). ``target``: ``c = |w| (x-terms + |Lx| + |L1|) + |g|`` (the
summands ``w Lx``, ``w L1``; the weight's perturbation ``|g|``). ``weight``: ``c = |y| + |1-y|
x/(1-x)`` (live parts) ``+ |y (Lx - L1)| + |y Lx| + |(1 - y) L1|``, summed over the axes the
weight was broadcast along (``count`` addends).

``multilabel_soft_margin_loss`` (``oracle.margin``): ``t_n = (1/C) sum_c w_c (y a + (1 - y) b)``
(``a = softplus(-x)``, ``b = softplus(x)``), over ``N`` for a mean (``D``):

* ``target``: ``w_c (a - b) / (C D) = -w_c x / (C D)``; ``-+inf`` at ``x = +-inf`` (a finite
  loss there needs the agreeing hard target), ``0 * inf`` = NaN for ``w_c = 0`` (as
  ``binary_cross_entropy_with_logits``). ``c = (2 |w x| + |w| (a + b)) / (C D)``: the ``x`` and
  ``w`` perturbations, and the summands a backward pass through ``log sigma(x) - log
  sigma(-x)`` adds (PyTorch's), which cancel near ``x = 0``.
* ``weight``: ``sum_n (y a + (1 - y) b) / (C D)`` (0 log 0 = 0), in the weight's shape;
  ``c = |x| (|1-y| sigma(x) + |y| sigma(-x)) + |y x| + |y a| + |(1 - y) b|`` per element (the
  ``y``-term taken as 0 at an infinite ``x``, as the forward model does), summed over the ``N``
  samples (``count = N``).
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .activations import logistic, softplus
from .binary import (
    LOG_CLAMP,
    _clamped_log,
    _clamped_log1m,
    _elementwise_inputs,
    _pos_weight,
    _target_times,
    binary_cross_entropy_terms,
)
from .core import mp_array
from .divergence import _sum_to_shape
from .gradients import GradientCondition
from .margin import _class_rows, _class_weight, multilabel_soft_margin_loss_terms
from .reduction import check_reduction, resolve_reduction

__all__ = [
    "binary_cross_entropy_grad_wrt",
    "binary_cross_entropy_with_logits_grad_wrt",
    "binary_cross_entropy_with_logits_wrt_condition",
    "binary_cross_entropy_wrt_condition",
    "multilabel_soft_margin_loss_grad_wrt",
    "multilabel_soft_margin_loss_wrt_condition",
]

_PARAMETERS = ("input", "target", "weight", "pos_weight")


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = mpf(0)
    return out


def _x_times(x: mpf, v: mpf) -> mpf:
    """``|x| v`` with the limit 0 where ``v`` vanishes at an infinite ``x``."""
    if mpmath.isfinite(x):
        return abs(x) * v
    return mpf(0) if v == 0 else mpmath.inf


def _bcel(input, target, weight, reduction, pos_weight, wrt, size_average, reduce):
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    if wrt not in _PARAMETERS[1:] or (wrt == "weight" and weight is None) or (wrt == "pos_weight" and pos_weight is None):
        given = [n for n, v in (("target", 1), ("weight", weight), ("pos_weight", pos_weight)) if v is not None]
        raise ValueError(
            f"binary_cross_entropy_with_logits has no differentiable parameter {wrt!r} here: "
            f"choose one of input, {', '.join(given)}"
        )
    x, y, w = _elementwise_inputs(input, target, weight)
    p = _pos_weight(pos_weight, x.shape)
    n = x.size
    d = mpf(n) if reduction == "mean" else mpf(1)
    grad, cond, scale, summation = (_zeros(x.shape) for _ in range(4))
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        pi = p[idx] if p is not None else mpf(1)
        a, b = softplus(-xi), softplus(xi)
        s, s_neg = logistic(xi), logistic(-xi)
        ya = _target_times(yi, a)  # y a with 0 log 0 = 0
        b1 = _target_times(1 - yi, b)
        if wrt == "target":
            pa = pi * a  # p = 0 at x = -inf: 0 * inf = NaN, as the forward's p y a for y > 0
            g = wi * (pa - b)
            c = abs(wi) * (_x_times(xi, abs(pi) * s_neg + s) + abs(pa) + (abs(pa) + b)) + abs(g)
            sc = abs(wi) * (_x_times(xi, mpf(1)) + (abs(pi - 1) * a if pi != 1 else mpf(0)))
        elif wrt == "weight":
            g = pi * ya + b1
            c = (_x_times(xi, abs(1 - yi) * s + abs(pi * yi) * s_neg)
                 + abs(yi) * (abs(pi) * a + b) + 2 * abs(pi * ya) + abs(b1))
            sc = _x_times(xi, abs(1 - yi) + abs(1 + (pi - 1) * yi))
        else:  # pos_weight
            g = wi * ya
            c = _x_times(xi, abs(wi * yi) * s_neg) + 3 * abs(g)
            sc = mpf(0)
            summation[idx] = abs(g) / d
        grad[idx], cond[idx], scale[idx] = g / d, c / d, sc / d
    shape = np.shape(pos_weight) if wrt == "pos_weight" else np.shape(weight) if wrt == "weight" else np.shape(target)
    count = n // max(int(np.prod(shape, dtype=np.int64)), 1) if wrt != "target" else 0
    if count <= 1:
        summation = _zeros(x.shape)
        count = 0
    else:  # the backward pass sums ``count`` addends per component
        summation = summation if wrt == "pos_weight" else np.vectorize(abs, otypes=[object])(grad) if grad.size else grad
    to = lambda a: _sum_to_shape(a, shape).reshape(shape)  # noqa: E731
    return to(grad), GradientCondition(to(cond), to(scale), to(summation), count)


def binary_cross_entropy_with_logits_grad_wrt(input, target, weight=None, size_average=None, reduce=None,
                                              reduction="mean", pos_weight=None, wrt="target") -> np.ndarray:
    """``dF/d wrt`` for ``wrt`` in ``target``, ``weight``, ``pos_weight`` (module docstring)."""
    return _bcel(input, target, weight, reduction, pos_weight, wrt, size_average, reduce)[0]


def binary_cross_entropy_with_logits_wrt_condition(input, target, weight=None, size_average=None, reduce=None,
                                                   reduction="mean", pos_weight=None,
                                                   wrt="target") -> GradientCondition:
    """:class:`GradientCondition` of :func:`binary_cross_entropy_with_logits_grad_wrt`."""
    return _bcel(input, target, weight, reduction, pos_weight, wrt, size_average, reduce)[1]


# ------------------------------------------------------------------ binary_cross_entropy


def _bce_logs(xi: mpf) -> tuple[mpf, mpf, bool, bool]:
    """``(Lx, L1, x > 0, 1 - x live)``: the clamped logs, whether ``log x``'s side has a
    sensitivity to count (every ``x > 0``, see below), and whether ``log(1 - x)`` is unclamped."""
    return _clamped_log(xi), _clamped_log1m(xi), xi > 0, _clamped_log1m(xi) > LOG_CLAMP


def _bce(input, target, weight, reduction, wrt, size_average, reduce):
    reduction = resolve_reduction(size_average, reduce, reduction)
    if wrt not in ("target", "weight") or (wrt == "weight" and weight is None):
        given = "target, weight" if weight is not None else "target"
        raise ValueError(
            f"binary_cross_entropy has no differentiable parameter {wrt!r} here: choose one of input, {given}"
        )
    binary_cross_entropy_terms(input, target, weight, size_average, reduce, reduction)  # validates x in [0, 1]
    x, y, w = _elementwise_inputs(input, target, weight)
    n = x.size
    d = mpf(n) if reduction == "mean" else mpf(1)
    grad, cond = _zeros(x.shape), _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        lx, l1, first, second = _bce_logs(xi)
        # |x d/dx| of log x is 1; of log(1 - x), x / (1 - x) where unclamped
        x_first = mpf(1) if first else mpf(0)
        x_second = xi / (1 - xi) if second else mpf(0)
        if wrt == "target":
            g = -wi * (lx - l1)
            c = abs(wi) * (x_first + x_second + abs(lx) + abs(l1)) + abs(g)
        else:  # weight
            g = -(_target_times(yi, lx) + _target_times(1 - yi, l1))
            c = abs(yi) * x_first + abs(1 - yi) * x_second + abs(yi * (lx - l1)) + abs(yi * lx) + abs((1 - yi) * l1)
        grad[idx], cond[idx] = g / d, c / d
    shape = np.shape(weight) if wrt == "weight" else x.shape
    return _reduced_to(grad, cond, _zeros(x.shape), shape, n, wrt == "weight")


def _reduced_to(grad, cond, scale, shape, n, broadcast):
    """Sum ``grad``, ``cond``, ``scale`` (elementwise, the input's shape) over the axes the
    parameter of ``shape`` was broadcast along; the backward pass adds ``count`` addends of
    magnitudes ``|g|`` per component there (the summation term)."""
    count = n // max(int(np.prod(shape, dtype=np.int64)), 1) if broadcast else 0
    if count <= 1:
        summation, count = _zeros(grad.shape), 0
    else:
        summation = np.vectorize(abs, otypes=[object])(grad)
    to = lambda a: _sum_to_shape(a, shape).reshape(shape)  # noqa: E731
    return to(grad), GradientCondition(to(cond), to(scale), to(summation), count)


def binary_cross_entropy_grad_wrt(input, target, weight=None, size_average=None, reduce=None,
                                  reduction="mean", wrt="target") -> np.ndarray:
    """``dF/d wrt`` of ``binary_cross_entropy`` for ``wrt`` in ``target``, ``weight``
    (module docstring)."""
    return _bce(input, target, weight, reduction, wrt, size_average, reduce)[0]


def binary_cross_entropy_wrt_condition(input, target, weight=None, size_average=None, reduce=None,
                                       reduction="mean", wrt="target") -> GradientCondition:
    """:class:`GradientCondition` of :func:`binary_cross_entropy_grad_wrt`."""
    return _bce(input, target, weight, reduction, wrt, size_average, reduce)[1]


# ------------------------------------------------------------------ multilabel_soft_margin_loss


def _mlsm(input, target, weight, reduction, wrt, size_average, reduce):
    reduction = resolve_reduction(size_average, reduce, reduction)
    if wrt not in ("target", "weight") or (wrt == "weight" and weight is None):
        given = "target, weight" if weight is not None else "target"
        raise ValueError(
            f"multilabel_soft_margin_loss has no differentiable parameter {wrt!r} here: choose one of input, {given}"
        )
    multilabel_soft_margin_loss_terms(input, target, weight, size_average, reduce, reduction)  # validates
    rows, _ = _class_rows(mp_array(input))
    ys = mp_array(target).reshape(rows.shape)
    n, c = rows.shape
    w = _class_weight(weight, c)
    d = mpf(c) * (mpf(n) if reduction == "mean" else mpf(1))
    grad, cond = _zeros(rows.shape), _zeros(rows.shape)
    for i, k in np.ndindex(rows.shape):
        xi, yi, wk = rows[i, k], ys[i, k], w[k]
        a, b = softplus(-xi), softplus(xi)
        if wrt == "target":
            g = -wk * xi  # w (softplus(-x) - softplus(x)); 0 * inf = NaN for w = 0 at x = +-inf
            cc = 2 * abs(wk * xi) + abs(wk) * (a + b) if mpmath.isfinite(xi) else mpf(0)
        else:  # weight
            g = _target_times(yi, a) + _target_times(1 - yi, b)
            cc = (_x_times(xi, abs(1 - yi) * logistic(xi) + abs(yi) * logistic(-xi))
                  + (abs(yi * xi) if mpmath.isfinite(xi) else mpf(0))
                  + abs(_target_times(yi, a)) + abs(_target_times(1 - yi, b)))
        grad[i, k], cond[i, k] = g / d, cc / d
    if wrt == "target":
        shape = np.shape(input)
        return grad.reshape(shape), GradientCondition(cond.reshape(shape), _zeros(shape), _zeros(shape))
    gw, gc = _reduced_to(grad, cond, _zeros(rows.shape), (1, c), rows.size, True)
    shape = np.shape(weight)
    return gw.reshape(shape), GradientCondition(*(a.reshape(shape) for a in (gc.condition, gc.scale, gc.summation)),
                                                gc.count)


def multilabel_soft_margin_loss_grad_wrt(input, target, weight=None, size_average=None, reduce=None,
                                         reduction="mean", wrt="target") -> np.ndarray:
    """``dF/d wrt`` of ``multilabel_soft_margin_loss`` for ``wrt`` in ``target``, ``weight``
    (module docstring)."""
    return _mlsm(input, target, weight, reduction, wrt, size_average, reduce)[0]


def multilabel_soft_margin_loss_wrt_condition(input, target, weight=None, size_average=None, reduce=None,
                                              reduction="mean", wrt="target") -> GradientCondition:
    """:class:`GradientCondition` of :func:`multilabel_soft_margin_loss_grad_wrt`."""
    return _mlsm(input, target, weight, reduction, wrt, size_average, reduce)[1]
