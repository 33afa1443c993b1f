r"""``binary_cross_entropy`` and ``binary_cross_entropy_with_logits``, exactly.

``binary_cross_entropy`` (``torch.nn.BCELoss`` docs), probabilities ``x`` in
[0, 1], targets ``y``, elementwise weights ``w`` broadcast to the input's shape:

.. math::
    t_n = -w_n \left[ y_n \max(\log x_n, -100) + (1 - y_n) \max(\log(1 - x_n), -100) \right]

The clamp of each log at -100 is documented ("BCELoss clamps its log function
outputs to be greater than or equal to -100"): it keeps ``x = 0`` or ``1``
finite, so ``t`` is always finite for finite ``w`` and ``y``. An ``x`` outside
[0, 1] (or NaN) is invalid input: PyTorch raises, and so does the oracle.

``binary_cross_entropy_with_logits`` (``torch.nn.BCEWithLogitsLoss`` docs),
logits ``x``, ``pos_weight`` ``p`` broadcast along the last (class) dimension:

.. math::
    t_n = -w_n \left[ p\, y_n \log\sigma(x_n) + (1 - y_n) \log(1 - \sigma(x_n)) \right]
        = w_n \left[ p\, y_n\, \mathrm{softplus}(-x_n) + (1 - y_n)\, \mathrm{softplus}(x_n) \right]

using ``-log sigma(x) = softplus(-x)`` and ``-log(1 - sigma(x)) = softplus(x)``;
both summands are non-negative for ``y`` in [0, 1] and ``p >= 0``, so the exact
form has no cancellation (the usual max-shifted algorithm does; see ``scale``).

Conventions: ``0 log 0 = 0`` -- a summand whose target factor (``y`` or ``1 - y``)
is zero contributes 0 even when its log is infinite (``x = +-inf`` with a hard
target); weights (``w``, ``p``) multiply as numbers, so a zero weight times an
infinite log is NaN. Reductions: ``mean`` divides by the number of elements.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .activations import logistic, softplus
from .core import is_nan, mp_array
from .reduction import LossTerms, check_reduction, resolve_reduction

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_terms",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_terms",
]

LOG_CLAMP = mpf(-100)


def _target_times(factor: mpf, log_term: mpf) -> mpf:
    """``factor * log_term`` with ``0 * (+-inf) = 0``: the 0 log 0 = 0 convention."""
    return mpf(0) if factor == 0 else factor * log_term


def _elementwise_inputs(input, target, weight):
    input, target = np.asarray(input), np.asarray(target)
    if input.shape != target.shape:
        raise ValueError(
            f"target must have the same shape as input: input {input.shape}, target {target.shape}"
        )
    w = None
    if weight is not None:
        try:
            w = np.broadcast_to(mp_array(weight), input.shape)
        except ValueError:
            raise ValueError(
                f"weight of shape {np.shape(weight)} does not broadcast to input's shape {input.shape}"
            ) from None
    return mp_array(input), mp_array(target), w


def _mean_denominator(reduction: str, n: int):
    return mpf(n) if reduction == "mean" else None


def _clamped_log(v: mpf) -> mpf:
    return max(mpmath.log(v), LOG_CLAMP) if v > 0 else LOG_CLAMP


def _clamped_log1m(x: mpf) -> mpf:
    """``max(log(1 - x), -100)`` via ``log1p(-x)``: ``1 - x`` would round away a tiny ``x``."""
    return max(mpmath.log1p(-x), LOG_CLAMP) if x < 1 else LOG_CLAMP


def binary_cross_entropy_terms(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
) -> LossTerms:
    """The elementwise decomposition of :func:`binary_cross_entropy` (module docstring)."""
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    for v in x.reshape(-1):
        if is_nan(v) or not 0 <= v <= 1:
            raise ValueError(f"binary_cross_entropy input must be in [0, 1], got {mpmath.nstr(v, 8)}")
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        log_x, log_1mx = _clamped_log(xi), _clamped_log1m(xi)
        first, second = _target_times(yi, log_x), _target_times(1 - yi, log_1mx)
        terms[idx] = -(wi * (first + second))
        d_first = -yi / xi if log_x > LOG_CLAMP else mpf(0)
        d_second = (1 - yi) / (1 - xi) if log_1mx > LOG_CLAMP else mpf(0)
        sensitivity = abs(xi * wi * (d_first + d_second)) if xi != 0 else mpf(0)
        # The target is a floating input too: dt/dy = -w (log x - log(1 - x)).
        target_sensitivity = abs(yi * wi * (log_x - log_1mx))
        cond[idx] = sensitivity + target_sensitivity + abs(wi * first) + abs(wi * second)
    return LossTerms(
        terms=terms,
        condition=cond,
        scale=np.full(x.shape, mpf(0), dtype=object),
        reduction=reduction,
        denominator=_mean_denominator(reduction, x.size),
    )


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
):
    r"""Exact ``torch.nn.functional.binary_cross_entropy`` (log clamped at -100)."""
    return binary_cross_entropy_terms(input, target, weight, size_average, reduce, reduction).value


def binary_cross_entropy_grad(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", wrt: str = "input"
) -> np.ndarray:
    """Exact gradient of the output's sum w.r.t. ``input``.

    ``dt/dx = w [(1 - y) / (1 - x) - y / x]`` where neither log is clamped; a
    clamped log is constant, so its part of the derivative is 0. (PyTorch's
    backward instead divides by ``max(x (1 - x), 1e-12)``; that is a property of
    its implementation, not of the documented function.)

    ``wrt``: ``target`` (``-w (Lx - L1)`` with the clamped logs) or ``weight``
    (``oracle.gradients_binary``).
    """
    if wrt != "input":
        from .gradients_binary import binary_cross_entropy_grad_wrt

        return binary_cross_entropy_grad_wrt(input, target, weight, size_average, reduce, reduction, wrt=wrt)
    lt = binary_cross_entropy_terms(input, target, weight, size_average, reduce, reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        d_first = -yi / xi if _clamped_log(xi) > LOG_CLAMP else mpf(0)
        d_second = (1 - yi) / (1 - xi) if _clamped_log1m(xi) > LOG_CLAMP else mpf(0)
        grad[idx] = wi * (d_first + d_second)
    return _mean_scaled(grad, lt)


def _mean_scaled(grad: np.ndarray, lt: LossTerms) -> np.ndarray:
    if lt.reduction != "mean":
        return grad
    n = lt.denominator
    return np.vectorize(lambda g: g / n, otypes=[object])(grad) if grad.size else grad


def _pos_weight(pos_weight, shape):
    if pos_weight is None:
        return None
    try:
        return np.broadcast_to(mp_array(pos_weight), shape)
    except ValueError:
        raise ValueError(
            f"pos_weight of shape {np.shape(pos_weight)} does not broadcast to the target's "
            f"shape {shape}: it must match the class (last) dimension"
        ) from None


def binary_cross_entropy_with_logits_terms(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
) -> LossTerms:
    """The elementwise decomposition of :func:`binary_cross_entropy_with_logits`."""
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    p = _pos_weight(pos_weight, x.shape)
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    scale = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        pi = p[idx] if p is not None else mpf(1)
        positive = _target_times(yi, softplus(-xi)) * pi if yi != 0 else mpf(0)
        negative = _target_times(1 - yi, softplus(xi))
        terms[idx] = wi * (positive + negative)
        if mpmath.isfinite(xi):
            slope = wi * ((1 - yi) * logistic(xi) - pi * yi * logistic(-xi))
            # The max-shifted algorithm adds (1-y) x and (1 + (p-1) y) max(-x, 0):
            # its absolute error is u times these magnitudes.
            scale[idx] = abs(wi * xi) * (abs(1 - yi) + abs(1 + (pi - 1) * yi))
            # The target is a floating input too: dt/dy = w (p softplus(-x) - softplus(x)).
            target_slope = wi * (pi * softplus(-xi) - softplus(xi))
            cond[idx] = abs(xi * slope) + abs(yi * target_slope) + abs(wi * positive) + abs(wi * negative)
        else:
            scale[idx] = mpf(0)
            cond[idx] = mpf(0)
    return LossTerms(
        terms=terms,
        condition=cond,
        scale=scale,
        reduction=reduction,
        denominator=_mean_denominator(reduction, x.size),
    )


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
):
    r"""Exact ``torch.nn.functional.binary_cross_entropy_with_logits`` (module docstring)."""
    return binary_cross_entropy_with_logits_terms(
        input, target, weight, size_average, reduce, reduction, pos_weight
    ).value


def binary_cross_entropy_with_logits_grad(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
    wrt: str = "input",
) -> np.ndarray:
    """Exact gradient of the output's sum w.r.t. ``input``.

    ``dt/dx = w [(1 - y) sigma(x) - p y sigma(-x)]``; at ``x = +-inf`` the limit
    of that expression (``sigma`` is 0 or 1 there).

    ``wrt``: ``"input"`` (this formula), or ``target``/``weight``/``pos_weight``
    (``oracle.gradients_binary``).
    """
    if wrt != "input":
        from .gradients_binary import binary_cross_entropy_with_logits_grad_wrt

        return binary_cross_entropy_with_logits_grad_wrt(
            input, target, weight, size_average, reduce, reduction, pos_weight, wrt=wrt
        )
    lt = binary_cross_entropy_with_logits_terms(
        input, target, weight, size_average, reduce, reduction, pos_weight
    )
    x, y, w = _elementwise_inputs(input, target, weight)
    p = _pos_weight(pos_weight, x.shape)
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        pi = p[idx] if p is not None else mpf(1)
        grad[idx] = wi * ((1 - yi) * logistic(xi) - pi * yi * logistic(-xi))
    return _mean_scaled(grad, lt)
