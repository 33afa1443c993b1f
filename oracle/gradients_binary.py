r"""Exact gradients of ``binary_cross_entropy_with_logits`` w.r.t. ``target``, ``weight`` and
``pos_weight``, and the error model's quantities for them
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
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .activations import logistic, softplus
from .binary import _elementwise_inputs, _pos_weight, _target_times
from .divergence import _sum_to_shape
from .gradients import GradientCondition
from .reduction import check_reduction, resolve_reduction

__all__ = ["binary_cross_entropy_with_logits_grad_wrt", "binary_cross_entropy_with_logits_wrt_condition"]

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
