r"""Exact gradient of ``kl_div`` w.r.t. ``target``, and the error model's quantities for it
(:class:`oracle.gradients.GradientCondition`).

Per element (``oracle.divergence``), ``x = input`` (a log-probability), and ``F = R(sum t)``
(``R``: the reduction's denominator ``D``: 1, the element count, or ``input.size(0)`` for
``batchmean``):

==================  ==========================  ==========================================
``log_target``      ``t``                       ``dt/d target``
==================  ==========================  ==========================================
False (``p``)       ``p log p - p x``           ``log p + 1 - x``
True (``s``)        ``e^s (s - x)``             ``e^s (s - x + 1)``
==================  ==========================  ==========================================

Conventions at a zero target probability (the forward's ``0 log(0/q) = 0``: ``t = 0``
there for every finite ``x``):

* ``log_target=False``, ``p = 0``: ``t`` is defined for ``p >= 0`` only (a negative target
  is NaN), and ``p log p`` has slope ``log p + 1 -> -inf`` as ``p -> 0+``: the exact
  (one-sided) derivative is ``-inf``, and that is what is graded -- a framework returning
  ``-inf`` matches, NaN (PyTorch 2.13: ``xlogy``'s backward forms ``p / p = 0/0``) or a finite
  value (a clipped target) fails.
* ``log_target=True``, ``s = -inf``: ``e^s (s - x + 1) -> 0``: the derivative is 0 (PyTorch:
  ``exp(s) (s - x) + exp(s) = 0 * -inf`` = NaN).
* At an infinite ``x`` with a zero target the loss is 0 but jumps to ``+-inf`` for any
  positive probability: no derivative, NaN (not finite, so never a pass for a finite value).

Where the target's probability is positive and ``x`` infinite, the loss itself is infinite
and the suite does not judge the gradient.

``target`` broadcasts against ``input``: its gradient is summed over the broadcast axes
(``count`` addends per component, whose magnitudes ``summation`` carries).

Error model (``suites/gradients.py``): ``c = sum_z |z dg/dz| + m``:

* ``log_target=False``: ``|p dg/dp| = 1``, ``|x dg/dx| = |x|``, summands
  ``m = |log p| + 1 + |x|`` (``log p - x`` cancels when ``q ~ p``: ``g`` is then near 1, and
  ``m`` is the absolute error a standard backward pass makes);
* ``log_target=True``: ``|s dg/ds| = |s| e^s |s - x + 2|``, ``|x dg/dx| = |x| e^s``, summands
  ``m = e^s (|s| + |x| + 1)``.

All divided by ``D``; ``scale = 0``. Components whose exact value is not finite carry 0 (the
bound of a special value is not used).
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .core import is_nan
from .divergence import KL_REDUCTIONS, _broadcast, _sum_to_shape
from .gradients import GradientCondition, _zeros
from .reduction import check_reduction, resolve_reduction

__all__ = ["kl_div_grad_wrt", "kl_div_wrt_condition"]


def _target_slope(x: mpf, t: mpf, log_target: bool) -> tuple[mpf, mpf]:
    """``(dt/d target, its condition)`` for one element (module docstring)."""
    if log_target:
        if t == -mpmath.inf:
            return (mpf(0), mpf(0)) if mpmath.isfinite(x) else (mpmath.nan, mpf(0))
        e = mpmath.exp(t)
        g = e * (t - x + 1)
        if not mpmath.isfinite(g) or not mpmath.isfinite(x):
            return g, mpf(0)
        return g, abs(t) * e * abs(t - x + 2) + abs(x) * e + e * (abs(t) + abs(x) + 1)
    if is_nan(t) or t < 0:
        return mpmath.nan, mpf(0)
    if t == 0:
        return (-mpmath.inf, mpf(0)) if mpmath.isfinite(x) else (mpmath.nan, mpf(0))
    log_p = mpmath.log(t)
    g = log_p + 1 - x
    if not mpmath.isfinite(g):
        return g, mpf(0)
    return g, 1 + abs(x) + abs(log_p) + 1 + abs(x)


def _kl(input, target, reduction, log_target, wrt, size_average, reduce):
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction, KL_REDUCTIONS)
    if wrt != "target":
        raise ValueError(f"kl_div has no differentiable parameter {wrt!r}: choose input or target")
    x, t = _broadcast(input, target)
    if reduction == "mean":
        d = mpf(x.size)
    elif reduction == "batchmean":
        shape = np.shape(input)
        d = mpf(shape[0] if shape else 1)
    else:
        d = mpf(1)
    grad, cond = _zeros(x.shape), _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        g, c = _target_slope(x[idx], t[idx], log_target)
        grad[idx], cond[idx] = g / d, c / d
    shape = np.shape(target)
    count = x.size // max(int(np.prod(shape, dtype=np.int64)), 1)
    if count <= 1:
        summation, count = _zeros(x.shape), 0
    else:
        summation = np.vectorize(abs, otypes=[object])(grad)
    to = lambda a: _sum_to_shape(a, shape).reshape(shape)  # noqa: E731
    return to(grad), GradientCondition(to(cond), _zeros(shape), to(summation), count)


def kl_div_grad_wrt(input, target, size_average=None, reduce=None, reduction="mean", log_target=False,
                    wrt="target") -> np.ndarray:
    """``dF/d target`` of ``kl_div`` (module docstring)."""
    return _kl(input, target, reduction, log_target, wrt, size_average, reduce)[0]


def kl_div_wrt_condition(input, target, size_average=None, reduce=None, reduction="mean", log_target=False,
                         wrt="target") -> GradientCondition:
    """:class:`GradientCondition` of :func:`kl_div_grad_wrt`."""
    return _kl(input, target, reduction, log_target, wrt, size_average, reduce)[1]
