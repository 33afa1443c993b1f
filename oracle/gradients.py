r"""Exact gradients of the activations, and what the gradient error model needs.

The losses' own gradients (``<loss>_grad``, the exact derivative of the output's
sum with respect to ``input``) live beside each loss. This module adds

* ``softmax_grad``, ``log_softmax_grad``, ``sigmoid_grad``: the gradient of the
  output's sum, as for the losses (``F = sum_i f(x)_i``);
* ``<fn>_grad_condition``: a :class:`GradientCondition` per gradient component
  ``g_i``, the quantities of ``suites/gradients.py``'s error model -- the
  analogue for ``g`` of :class:`oracle.reduction.LossTerms`' ``condition`` and
  ``scale`` for the loss value;
* :func:`numerical_grad_condition`, the same quantities for a loss that has a
  ``<loss>_grad`` but no ``<loss>_grad_condition``, from a high-precision
  numerical Jacobian of its gradient.

The condition of a gradient component is its second-order sensitivity: with
every floating input ``z`` (logits, targets, weights) perturbed relatively by at
most ``u``, ``g_i`` moves by at most ``u c_i`` to first order, where

.. math::
    c_i = \sum_z \sum_k |z_k\, \partial g_i / \partial z_k| + m_i

and ``m_i`` is the sum of the magnitudes of the summands the formula of ``g_i``
adds (``p_j - 1`` for a softmax loss at the target class: its rounding is
``u`` times ``p_j + 1``, not ``u |g_i|``). ``scale`` is the absolute working
scale: a softmax gradient is ``A p_j - b_j`` with ``p_j = exp(x_j - lse)``
formed from quantities of size ``max|x| + log(1 + T)``, so even the standard
algorithm's ``p_j`` has relative error ``u`` times that (the forward pass's
``scale``, times the factor ``|A| p_j``). ``summation`` and ``count``: the
magnitude affected by a sum of ``count`` addends the gradient needs (the weight
sum in a weighted mean's denominator, or softmax's backward sum over a row).

The derivatives below are the analytic ones of the gradients in
:mod:`oracle.classification`, :mod:`oracle.binary`, :mod:`oracle.divergence`
(``tests/test_oracle_gradient_conditions.py`` checks them against mpmath's
numerical differentiation).

Conventions at special values (PyTorch's, where it has one):

* The gradient is *undefined* wherever the loss value (the output's sum) is not
  finite -- a masked target class, a NaN or ``+inf`` logit, a mean over zero
  weight (all targets ignored): the suite does not judge those gradients.
* ``-inf`` logits (masked classes) are constants: their softmax probability is
  0, so their gradient is 0 and they perturb nothing.
* ``sigmoid`` and ``binary_cross_entropy_with_logits`` at ``x = +-inf``: the limit
  (``sigma`` is 0 or 1 there), so ``sigmoid_grad(+-inf) = 0``.
* ``binary_cross_entropy``: a log clamped at -100 is constant, so its part of the
  derivative is 0 (``oracle.binary.binary_cross_entropy_grad``); at ``x = 0`` with
  ``y = 0`` the gradient is therefore ``w (1 - y) / (1 - x) = w``.
* ``softmax``: ``sum_j softmax(x)_j = 1``, so the gradient of the sum is exactly 0
  for every defined row; the suite checks it is (within the rounding of that sum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from .activations import SoftmaxRow, _rowwise, logistic
from .binary import LOG_CLAMP, _clamped_log, _clamped_log1m, _elementwise_inputs, _pos_weight
from .classification import _class_rows, _class_weights, _index_targets, _is_index_target, _layout
from .core import is_nan, mp_array, working_precision
from .divergence import _broadcast, _sum_to_shape
from .reduction import resolve_reduction

# The regression losses' and ctc_loss's conditions (and the regression losses' gradients
# w.r.t. every parameter) live in their own module; re-exported at the end of this one, so
# that ``oracle.gradients.<loss>_grad_condition`` finds them.

__all__ = [
    "GradientCondition",
    "binary_cross_entropy_grad_condition",
    "binary_cross_entropy_with_logits_grad_condition",
    "cross_entropy_grad_condition",
    "kl_div_grad_condition",
    "log_softmax_grad",
    "log_softmax_grad_condition",
    "nll_loss_grad_condition",
    "numerical_grad_condition",
    "sigmoid_grad",
    "sigmoid_grad_condition",
    "softmax_grad",
    "softmax_grad_condition",
]


@dataclass(frozen=True)
class GradientCondition:
    """Per gradient component (object arrays of ``mpf``, ``input``'s shape): see module docstring."""

    condition: np.ndarray
    scale: np.ndarray
    summation: np.ndarray
    count: int = 0
    # A kink of the gradient near the case: ``kink_reach`` is the smallest relative
    # perturbation of the inputs that reaches it (None: no kink). Where the error model's
    # own input perturbation ``K_IN u`` reaches it, a legitimate backward pass may be on
    # either side: the bound adds ``u K_IN kink_condition`` (the other side's sensitivity,
    # for a gradient that is continuous there) and ``kink_jump`` (the gradient's jump, for
    # one that is not). Never added elsewhere.
    kink_reach: np.ndarray | None = None
    kink_condition: np.ndarray | None = None
    kink_jump: np.ndarray | None = None


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = mpf(0)
    return out


def _finite(v: mpf) -> bool:
    return bool(mpmath.isfinite(v))


def _row_spread(row: SoftmaxRow) -> list[mpf]:
    """``h_j = |x_j| (1 - p_j) + sum_{k != j} p_k |x_k|`` over finite logits: with
    ``dp_j/dx_k = p_j ([j = k] - p_k)``, ``sum_k |x_k dp_j/dx_k| = p_j h_j``."""
    p = row.probs
    spread = mpmath.fsum(abs(x) * p[k] for k, x in enumerate(row.x) if _finite(x))
    out = []
    for j, x in enumerate(row.x):
        own = abs(x) * (1 - p[j]) if _finite(x) else mpf(0)
        out.append(own + spread - (abs(x) * p[j] if _finite(x) else 0))
    return out


# ------------------------------------------------------------------ activations


def softmax_grad(input: np.ndarray, dim: int) -> np.ndarray:
    """``d/dx_j sum_k softmax(x)_k = p_j (1 - sum_k p_k) = 0`` on every defined row; NaN on an
    undefined one (a NaN or ``+inf`` logit, every logit ``-inf``)."""
    return _rowwise(input, dim, lambda r: [mpf(0) if r.defined else mpmath.nan] * len(r.x))


def log_softmax_grad(input: np.ndarray, dim: int) -> np.ndarray:
    """``d/dx_j sum_k (x_k - lse(x)) = 1 - n p_j`` with ``n`` the row's length.

    A row with a ``-inf`` logit has a ``-inf`` output, so its sum is not finite and
    the gradient undefined (module docstring); the formula is returned anyway.
    """

    def row_grad(r: SoftmaxRow) -> list[mpf]:
        n = len(r.x)
        return [1 - n * pj for pj in r.probs]

    return _rowwise(input, dim, row_grad)


def sigmoid_grad(input: np.ndarray) -> np.ndarray:
    """``d sigma(x) / dx = sigma(x) sigma(-x)``, elementwise; 0 at ``+-inf``."""
    x = mp_array(input)
    return np.vectorize(lambda v: logistic(v) * logistic(-v), otypes=[object])(x) if x.size else x


def softmax_grad_condition(input: np.ndarray, dim: int) -> GradientCondition:
    """The gradient ``p_j (1 - sum_k p_k)`` is exactly 0 and so is its derivative; what a
    standard backward pass (``p_j (g_j - sum_k g_k p_k)`` with ``g = 1``) loses is the
    rounding of its two summands (``m_j = 2 p_j``) and of the row sum of ``n`` computed
    probabilities (``summation = p_j``, ``count = n``)."""
    x = mp_array(input)
    n = x.shape[dim] if x.ndim else 1
    cond = _rowwise(input, dim, lambda r: [2 * pj for pj in r.probs])
    summation = _rowwise(input, dim, lambda r: list(r.probs))
    return GradientCondition(cond, _zeros(x.shape), summation, n)


def log_softmax_grad_condition(input: np.ndarray, dim: int) -> GradientCondition:
    """``g_j = 1 - n p_j``: ``c_j = n p_j h_j + (1 + n p_j)``, scale ``n p_j`` times the row's
    working scale (``p_j`` is ``exp`` of ``x_j - lse``, both of that size)."""

    def cond(r: SoftmaxRow) -> list[mpf]:
        n = len(r.x)
        return [n * pj * hj + 1 + n * pj for pj, hj in zip(r.probs, _row_spread(r))]

    def scale(r: SoftmaxRow) -> list[mpf]:
        n = len(r.x)
        return [n * pj * r.working_scale for pj in r.probs]

    x = mp_array(input)
    return GradientCondition(_rowwise(input, dim, cond), _rowwise(input, dim, scale), _zeros(x.shape))


def sigmoid_grad_condition(input: np.ndarray) -> GradientCondition:
    """``g = sigma (1 - sigma)``: ``dg/dx = g (1 - 2 sigma)``, so ``c = |x| g |1 - 2 sigma| + g``.

    Scale ``sigma^2``: the standard backward pass forms ``1 - sigma`` from the rounded
    output, an absolute error ``u sigma`` that the factor ``sigma`` multiplies -- for a
    saturated ``x > 0`` that is all of ``g = e^{-x}``, the way ``1 - sigma`` in the forward
    pass of a sigmoid loss is (DESIGN.md: such a result passes the gate and shows its
    relative error in the accuracy table).
    """
    x = mp_array(input)
    cond, scale = _zeros(x.shape), _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        v = x[idx]
        if is_nan(v):
            cond[idx] = scale[idx] = mpmath.nan
            continue
        s = logistic(v)
        g = s * logistic(-v)
        cond[idx] = (abs(v) * g * abs(1 - 2 * s) if _finite(v) else 0) + g
        scale[idx] = s * s
    return GradientCondition(cond, scale, _zeros(x.shape))


# ------------------------------------------------------------------ classification


def _mean_scaled(values: np.ndarray, reduction: str, denominator: mpf | None) -> np.ndarray:
    if reduction != "mean" or denominator is None:
        return values
    d = abs(denominator)
    if d == 0:
        return np.vectorize(lambda _: mpmath.nan, otypes=[object])(values) if values.size else values
    return np.vectorize(lambda v: v / d, otypes=[object])(values) if values.size else values


def cross_entropy_grad_condition(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    wrt: str = "input",
) -> GradientCondition:
    r"""Per row, ``g_j = A p_j - b_j`` (:func:`oracle.cross_entropy_grad`):

    * class index ``y``: ``A = (1-eps) w_y + eps W / C``, ``b_j = (1-eps) w_y [j=y] + eps w_j / C``;
    * probabilities ``q = (1-eps) p + eps/C``: ``A = sum_c w_c q_c``, ``b_j = w_j q_j``.

    ``sum_k |x_k dg_j/dx_k| = |A| p_j h_j`` (:func:`_row_spread`); ``g`` is linear in the
    weights and the target probabilities, whose perturbations move it by at most ``u``
    times ``m_j = |A|' p_j + |b_j|`` (``|A|'`` the sum of magnitudes making up ``A``), the
    same quantity as the rounding of the summands: ``c_j = |A| p_j h_j + m_j`` (index;
    ``+ 2 m_j`` for a ``mean``, whose weight-sum denominator moves with the weights too)
    and ``|A| p_j h_j + 2 m_j`` (probabilities). Scale ``|A|' p_j`` times the row's working
    scale. ``mean`` divides everything by the denominator; a weighted denominator is a
    sum of ``count`` weights.

    ``wrt``: ``target`` (class probabilities) / ``weight`` -- ``oracle.gradients_classification``.
    """
    if wrt != "input":
        from .gradients_classification import cross_entropy_wrt_condition

        return cross_entropy_wrt_condition(
            input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing, wrt=wrt
        )
    reduction = resolve_reduction(size_average, reduce, reduction)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    abs_w = [abs(v) for v in w]
    cond, scale = _zeros(layout.rows.shape), _zeros(layout.rows.shape)
    denominator, count = mpf(0), 0
    if _is_index_target(target):
        targets = _index_targets(target, layout, n_classes, ignore_index)
        total_abs_w = mpmath.fsum(abs_w)
        for i, (row_values, y) in enumerate(zip(layout.rows, targets)):
            if y == ignore_index:
                continue
            denominator += w[y]
            count += 1
            row = SoftmaxRow(list(row_values))
            a_abs = (1 - eps) * abs_w[y] + eps / n_classes * total_abs_w
            h, p = _row_spread(row), row.probs
            for j in range(n_classes):
                b = (1 - eps) * abs_w[y] * (1 if j == y else 0) + eps / n_classes * abs_w[j]
                m = a_abs * p[j] + b
                # A weighted mean's denominator is a sum of weights too: their perturbation
                # moves g by up to |g| <= m once more.
                cond[i, j] = a_abs * p[j] * h[j] + (2 * m if reduction == "mean" else m)
                scale[i, j] = a_abs * p[j] * row.working_scale
    else:
        probs, _ = _class_rows(mp_array(target))
        denominator = mpf(len(probs))
        count = 0  # the number of positions: exact
        for i, (row_values, pr) in enumerate(zip(layout.rows, probs)):
            row = SoftmaxRow(list(row_values))
            q = [(1 - eps) * pc + eps / n_classes for pc in pr]
            a_abs = mpmath.fsum(abs(wc * qc) for wc, qc in zip(w, q))
            h, p = _row_spread(row), row.probs
            for j in range(n_classes):
                m = a_abs * p[j] + abs(w[j] * q[j])
                cond[i, j] = a_abs * p[j] * h[j] + 2 * m
                scale[i, j] = a_abs * p[j] * row.working_scale
    cond = _mean_scaled(cond, reduction, denominator)
    scale = _mean_scaled(scale, reduction, denominator)
    grads_shape_cond = layout.unflatten_rows(cond)
    grads_shape_scale = layout.unflatten_rows(scale)
    summation = _summation(grads_shape_cond, reduction, count)
    return GradientCondition(grads_shape_cond, grads_shape_scale, summation, count if reduction == "mean" else 0)


def _summation(cond: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """The magnitude a computed denominator's relative error multiplies: ``|g|`` is at
    most ``c`` (``m_j`` bounds ``|A p_j - b_j|``), so ``c`` itself, or 0 without one.
    PyTorch sums the selected weights (ones without ``weight``) into ``total_weight``."""
    if reduction != "mean" or count <= 1:
        return _zeros(cond.shape)
    return cond.copy()


def nll_loss_grad_condition(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    wrt: str = "input",
) -> GradientCondition:
    """``g = -w_y / D`` at ``[n, y_n]``, else 0: no dependence on ``input``; the weight's
    perturbation gives ``c = |g|``, twice for a ``mean`` (``D = sum_n w_{y_n}`` moves too),
    whose denominator is a sum of ``count`` weights.

    ``wrt="weight"``: ``oracle.gradients_classification``."""
    if wrt != "input":
        from .gradients_classification import nll_loss_wrt_condition

        return nll_loss_wrt_condition(input, target, weight, size_average, ignore_index, reduce, reduction, wrt=wrt)
    reduction = resolve_reduction(size_average, reduce, reduction)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    cond = _zeros(layout.rows.shape)
    denominator, count = mpf(0), 0
    for i, y in enumerate(_index_targets(target, layout, n_classes, ignore_index)):
        if y != ignore_index:
            # the weight's perturbation, and for a mean once more through the denominator
            cond[i, y] = abs(w[y]) * (2 if reduction == "mean" else 1)
            denominator += w[y]
            count += 1
    cond = layout.unflatten_rows(_mean_scaled(cond, reduction, denominator))
    return GradientCondition(cond, _zeros(cond.shape), _summation(cond, reduction, count), count if reduction == "mean" else 0)


# ------------------------------------------------------------------ binary


def binary_cross_entropy_grad_condition(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", wrt: str = "input"
) -> GradientCondition:
    r"""``g = w [(1-y)/(1-x) - y/x]`` (unclamped parts only):

    ``|x dg/dx| = |w| (|x (1-y)| / (1-x)^2 + |y / x|)``, ``|y dg/dy| = |w y| |1/(1-x) + 1/x|``,
    and the summands ``m = |w| (|(1-y)/(1-x)| + |y/x|)`` (also the weight's perturbation).

    ``wrt``: ``target``/``weight`` -- ``oracle.gradients_binary``.
    """
    if wrt != "input":
        from .gradients_binary import binary_cross_entropy_wrt_condition

        return binary_cross_entropy_wrt_condition(input, target, weight, size_average, reduce, reduction, wrt=wrt)
    reduction = resolve_reduction(size_average, reduce, reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    cond = _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = abs(w[idx]) if w is not None else mpf(1)
        first = _clamped_log(xi) > LOG_CLAMP  # y log x is live
        second = _clamped_log1m(xi) > LOG_CLAMP  # (1 - y) log(1 - x) is live
        c = mpf(0)
        if first:
            c += 3 * abs(yi / xi)  # input |x d(y/x)/dx|, target |y d(y/x)/dy|, summand: each |y/x|
        if second:
            c += abs(xi * (1 - yi)) / (1 - xi) ** 2 + abs(yi / (1 - xi)) + abs((1 - yi) / (1 - xi))
        cond[idx] = wi * c
    cond = _mean_scaled(cond, reduction, mpf(x.size))
    return GradientCondition(cond, _zeros(x.shape), _zeros(x.shape))


def binary_cross_entropy_with_logits_grad_condition(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
    wrt: str = "input",
) -> GradientCondition:
    r"""``g = w [(1-y) sigma(x) - p y sigma(-x)]``:

    ``|x dg/dx| = |w| |x| |(1-y) + p y| sigma(x) sigma(-x)``,
    ``|y dg/dy| = |w y| (sigma(x) + |p| sigma(-x))``, ``|p dg/dp| = |w p y| sigma(-x)``,
    summands ``m = |w| (|1-y| sigma(x) + |p y| sigma(-x))``. Scale: the standard backward
    pass (PyTorch's, TensorFlow's) computes ``w ((1 + (p-1) y) sigma(x) - p y)``, whose two
    summands cancel when ``sigma(x)`` is near 1; its absolute error is ``u`` times
    ``|w| (|1 + (p-1) y| sigma(x) + |p y|)``, which with ``p = 1`` the target's perturbation
    already covers and with a large ``p`` does not.

    ``wrt``: ``target``/``weight``/``pos_weight`` -- ``oracle.gradients_binary``.
    """
    if wrt != "input":
        from .gradients_binary import binary_cross_entropy_with_logits_wrt_condition

        return binary_cross_entropy_with_logits_wrt_condition(
            input, target, weight, size_average, reduce, reduction, pos_weight, wrt=wrt
        )
    reduction = resolve_reduction(size_average, reduce, reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    p = _pos_weight(pos_weight, x.shape)
    cond, scale = _zeros(x.shape), _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = abs(w[idx]) if w is not None else mpf(1)
        pi = p[idx] if p is not None else mpf(1)
        s, s_neg = logistic(xi), logistic(-xi)
        scale[idx] = wi * (abs(1 + (pi - 1) * yi) * s + abs(pi * yi))
        curvature = abs(xi) * abs((1 - yi) + pi * yi) * s * s_neg if _finite(xi) else mpf(0)
        target_part = abs(yi) * (s + abs(pi) * s_neg)
        pos_part = abs(pi * yi) * s_neg
        summands = abs(1 - yi) * s + abs(pi * yi) * s_neg
        cond[idx] = wi * (curvature + target_part + pos_part + summands)
    cond = _mean_scaled(cond, reduction, mpf(x.size))
    scale = _mean_scaled(scale, reduction, mpf(x.size))
    return GradientCondition(cond, scale, _zeros(x.shape))


# ------------------------------------------------------------------ divergence


def kl_div_grad_condition(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False,
    wrt: str = "input",
) -> GradientCondition:
    """``g = -p`` (``-e^s``) over the denominator: independent of ``input``; the target's
    perturbation gives ``|g|`` (``|s| |g|`` for ``log_target``), plus ``|g|`` for the
    division. Broadcast axes of ``input`` are summed like the gradient.

    ``wrt="target"``: ``oracle.gradients_divergence``."""
    if wrt != "input":
        from .gradients_divergence import kl_div_wrt_condition

        return kl_div_wrt_condition(input, target, size_average, reduce, reduction, log_target, wrt=wrt)
    reduction = resolve_reduction(size_average, reduce, reduction)
    x, t = _broadcast(input, target)
    cond = _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        ti = t[idx]
        if log_target:
            g = mpf(0) if ti == -mpmath.inf else mpmath.exp(ti)
            cond[idx] = g * (abs(ti) + 1) if g else mpf(0)
        else:
            cond[idx] = 2 * abs(ti)
    if reduction == "mean":
        cond = _mean_scaled(cond, "mean", mpf(x.size))
    elif reduction == "batchmean":
        shape = np.shape(input)
        cond = _mean_scaled(cond, "mean", mpf(shape[0] if shape else 1))
    cond = _sum_to_shape(cond, np.shape(input))
    return GradientCondition(cond, _zeros(cond.shape), _zeros(cond.shape))


# ------------------------------------------------------------------ any loss

#: Most floating input elements :func:`numerical_grad_condition` differentiates by.
NUMERICAL_MAX_ELEMENTS = 64
_STEP_BITS = 120


class ConditionUnavailable(ValueError):
    """The case is too large for :func:`numerical_grad_condition`."""


def numerical_grad_condition(grad: Callable[..., np.ndarray], args: dict[str, Any], kwargs: dict[str, Any]) -> GradientCondition:
    """``c_i = sum_z sum_k |z_k dg_i/dz_k| + |g_i|`` by central differences of ``grad``.

    For a loss with ``<loss>_grad`` but no ``<loss>_grad_condition``: every floating
    array among ``args`` and ``kwargs`` (as exact mpf arrays, which the oracle accepts)
    is moved one element at a time by ``+-h`` with ``h = 2^-120 max(|z_k|, 1)``, at
    ``3 * 120`` bits: the truncation error ``O(h^2)`` and the rounding ``O(2^-360 / h)``
    are both far below ``u`` of any dtype. ``|g_i|`` stands in for the summand
    magnitudes the formula does not expose. Where a step straddles a kink the
    difference quotient is of order ``jump / h`` and the bound is loose there: a loss
    with kinks should provide its own ``_grad_condition``. Raises
    :class:`ConditionUnavailable` beyond :data:`NUMERICAL_MAX_ELEMENTS` elements.
    """
    floating = {
        name: value
        for name, value in list(args.items()) + list(kwargs.items())
        if isinstance(value, np.ndarray) and not np.issubdtype(value.dtype, np.integer)
    }
    total = sum(v.size for v in floating.values())
    if total > NUMERICAL_MAX_ELEMENTS:
        raise ConditionUnavailable(
            f"{total} floating input elements: the numerical gradient condition differentiates "
            f"at most {NUMERICAL_MAX_ELEMENTS}"
        )
    with working_precision(3 * _STEP_BITS):
        exact_args = {k: (mp_array(v) if k in floating else v) for k, v in args.items()}
        exact_kwargs = {k: (mp_array(v) if k in floating else v) for k, v in kwargs.items()}
        base = grad(*exact_args.values(), **exact_kwargs)
        cond = np.vectorize(abs, otypes=[object])(base) if base.size else base.copy()
        for name in floating:
            container = exact_args if name in exact_args else exact_kwargs
            original = container[name]
            for k in np.ndindex(original.shape):
                zk = original[k]
                if not _finite(zk):
                    continue
                h = mpmath.ldexp(max(abs(zk), mpf(1)), -_STEP_BITS)
                moved = []
                for sign in (1, -1):
                    shifted = original.copy()
                    shifted[k] = zk + sign * h
                    container[name] = shifted
                    moved.append(grad(*exact_args.values(), **exact_kwargs))
                container[name] = original
                for i in np.ndindex(cond.shape):
                    cond[i] += abs(zk * (moved[0][i] - moved[1][i]) / (2 * h))
    return GradientCondition(cond, _zeros(cond.shape), _zeros(cond.shape))


# The margin, ranking and embedding losses' conditions live in their own module (it imports
# GradientCondition from here, so it is imported last); re-exported for the registry's lookup.
from .gradients_margin import *  # noqa: E402, F403
from .gradients_margin import __all__ as _margin_all  # noqa: E402

__all__ += _margin_all
from .gradients_regression import (  # noqa: E402  (needs GradientCondition above)
    ctc_loss_grad_condition,
    gaussian_nll_loss_grad_condition,
    huber_loss_grad_condition,
    l1_loss_grad_condition,
    mse_loss_grad_condition,
    poisson_nll_loss_grad_condition,
    smooth_l1_loss_grad_condition,
)

__all__ += [
    "ctc_loss_grad_condition",
    "gaussian_nll_loss_grad_condition",
    "huber_loss_grad_condition",
    "l1_loss_grad_condition",
    "mse_loss_grad_condition",
    "poisson_nll_loss_grad_condition",
    "smooth_l1_loss_grad_condition",
]
