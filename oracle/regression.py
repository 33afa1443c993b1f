r"""Regression and distribution losses, exactly: ``l1_loss``, ``mse_loss``, ``huber_loss``,
``smooth_l1_loss``, ``poisson_nll_loss``, ``gaussian_nll_loss``.

Each is elementwise over ``input`` ``x`` and ``target`` ``y`` (broadcast against each
other, as ``torch.nn.functional`` does after warning about a size mismatch), with
``d = x - y``:

.. math::
    \mathrm{L1}:\ t = |d| \qquad \mathrm{MSE}:\ t = d^2

    \mathrm{Huber}_\delta:\ t = \tfrac12 d^2 \ (|d| < \delta), \quad
        \delta (|d| - \tfrac12 \delta) \ \text{otherwise} \qquad (\delta > 0)

    \mathrm{SmoothL1}_\beta:\ t = \tfrac12 d^2 / \beta \ (|d| < \beta), \quad
        |d| - \tfrac12 \beta \ \text{otherwise} \qquad (\beta \ge 0;\ \beta = 0 \text{ is L1})

so ``SmoothL1_beta = Huber_beta / beta`` for ``beta > 0`` (``torch.nn.HuberLoss`` docs).
Both branches agree at ``|d| = delta`` (``beta``), so the choice of ``<`` there does not
matter. ``weight`` (``l1_loss``, ``mse_loss``, ``huber_loss``; PyTorch >= 2.6) must have
``input``'s shape and multiplies each term; the weighted ``mean`` is PyTorch's
implementation (the tie-breaker: the docs only say "weights for each sample"):
``sum(w t) / sum(w)`` for L1 and MSE, but ``sum(w t) / N`` for Huber.

Poisson negative log-likelihood (``torch.nn.PoissonNLLLoss`` docs):

.. math::
    t = e^{x} - y x \ (\texttt{log\_input}), \qquad t = x - y \log(x + \epsilon) \ \text{otherwise}

plus, with ``full=True``, the Stirling term ``y log y - y + (1/2) log(2 pi y)`` where
``y > 1`` (0 for ``y <= 1``, as PyTorch masks it). Arithmetic is IEEE-like: ``log 0 =
-inf`` and ``0 * inf = NaN`` (``x = 0, y = 0, eps = 0`` is NaN, as in PyTorch).

Gaussian negative log-likelihood (``torch.nn.GaussianNLLLoss`` docs), ``v`` the variance:

.. math::
    t = \tfrac12 \left( \log \max(v, \epsilon) + d^2 / \max(v, \epsilon) \right)
        \ [+ \tfrac12 \log 2\pi \ \text{with full}]

``var`` is a float (one variance for all), or an array of ``input``'s shape, or of its
shape without the last dimension (unsqueezed there), or of its rank with exactly one
dimension of size 1 where ``input``'s differs; anything else, and any negative entry, is
rejected, as PyTorch does. The clamp is applied without gradient in PyTorch (a clone
clamped under ``no_grad``), so the gradient w.r.t. ``var`` passes straight through it
(``oracle.gradients_regression``).

All reductions: ``none``; ``sum``; ``mean`` divides by the number of elements (of the
broadcast shape) unless stated above.

Error model (``oracle.reduction``, ``suites/verdict.py``): ``condition`` holds the
sensitivities ``|x dt/dx| + |y dt/dy|`` -- which cover ``d = x - y`` cancelling -- plus the
magnitudes of the summands each formula adds, and the sensitivity to the float
parameters ``delta``, ``beta`` and ``eps``, because a framework rounds them to the
dtype like any other input. ``scale`` is 0: no standard algorithm here needs an absolute
working scale beyond those.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .core import is_nan, mp_array, to_mpf
from .divergence import _sum_to_shape
from .reduction import LossTerms, check_reduction, resolve_reduction

__all__ = [
    "gaussian_nll_loss",
    "gaussian_nll_loss_grad",
    "gaussian_nll_loss_terms",
    "huber_loss",
    "huber_loss_grad",
    "huber_loss_terms",
    "l1_loss",
    "l1_loss_grad",
    "l1_loss_terms",
    "mse_loss",
    "mse_loss_grad",
    "mse_loss_terms",
    "poisson_nll_loss",
    "poisson_nll_loss_grad",
    "poisson_nll_loss_terms",
    "smooth_l1_loss",
    "smooth_l1_loss_grad",
    "smooth_l1_loss_terms",
]


# ------------------------------------------------------------------ shared machinery


def _broadcast(*arrays):
    try:
        return np.broadcast_arrays(*(mp_array(a) for a in arrays))
    except ValueError:
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
        raise ValueError(f"input, target (and var) of shapes {shapes} do not broadcast") from None


def _weight(weight, shape):
    if weight is None:
        return None
    if np.shape(weight) != tuple(shape):
        raise ValueError(f"weight of shape {np.shape(weight)} must have input's shape {shape}")
    return mp_array(weight)


def _elementwise(pointwise, x, y, w, reduction: str, weighted_mean_by_weight: bool) -> LossTerms:
    """Build a LossTerms from ``pointwise(x, y) -> (t, dt/dx, cond)`` over broadcast x, y."""
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        t, _, c = pointwise(x[idx], y[idx])
        wi = w[idx] if w is not None else mpf(1)
        terms[idx] = t * wi if w is not None else t
        cond[idx] = c * abs(wi)
    denominator = None
    if reduction == "mean":
        if w is not None and weighted_mean_by_weight:
            denominator = mpmath.fsum(w.reshape(-1).tolist())
        else:
            denominator = mpf(x.size)
    return LossTerms(
        terms=terms,
        condition=cond,
        scale=np.full(x.shape, mpf(0), dtype=object),
        reduction=reduction,
        denominator=denominator,
    )


def _elementwise_grad(pointwise, input, x, y, w, lt: LossTerms) -> np.ndarray:
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        g = pointwise(x[idx], y[idx])[1]
        if w is not None:
            g = g * w[idx]
        grad[idx] = g / lt.denominator if lt.denominator is not None else g
    return _sum_to_shape(grad, np.shape(input))


def _sign(v: mpf) -> mpf:
    return mpf(0) if v == 0 else (mpf(1) if v > 0 else mpf(-1))


def _prepare(input, target, weight, size_average, reduce, reduction):
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    x, y = _broadcast(input, target)
    w = _weight(weight, np.shape(input))
    return reduction, x, y, (np.broadcast_to(w, x.shape) if w is not None else None)


# ------------------------------------------------------------------ L1 and MSE


def _l1_point(x: mpf, y: mpf):
    d = x - y
    # exact on perturbed inputs: x(1+e1) - y(1+e2) moves d by up to u(|x| + |y|)
    return abs(d), _sign(d), abs(x) + abs(y)


def _mse_point(x: mpf, y: mpf):
    d = x - y
    return d * d, 2 * d, 2 * abs(d) * (abs(x) + abs(y))


def l1_loss_terms(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> LossTerms:
    """The elementwise decomposition of :func:`l1_loss` (module docstring)."""
    reduction, x, y, w = _prepare(input, target, weight, size_average, reduce, reduction)
    return _elementwise(_l1_point, x, y, w, reduction, weighted_mean_by_weight=True)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    r"""Exact ``torch.nn.functional.l1_loss``: ``|x - y|`` (weighted mean: ``sum w t / sum w``)."""
    return l1_loss_terms(input, target, size_average, reduce, reduction, weight).value


def l1_loss_grad(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None, wrt: str = "input") -> np.ndarray:
    """``sign(x - y)`` (0 at ``x = y``, PyTorch's subgradient), weighted and scaled by the mean.

    ``wrt``: ``"input"`` (this formula), or another parameter (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import l1_loss_grad_wrt

        return l1_loss_grad_wrt(input, target, size_average, reduce, reduction, weight, wrt=wrt)
    lt = l1_loss_terms(input, target, size_average, reduce, reduction, weight)
    reduction, x, y, w = _prepare(input, target, weight, size_average, reduce, reduction)
    return _elementwise_grad(_l1_point, input, x, y, w, lt)


def mse_loss_terms(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> LossTerms:
    """The elementwise decomposition of :func:`mse_loss` (module docstring)."""
    reduction, x, y, w = _prepare(input, target, weight, size_average, reduce, reduction)
    return _elementwise(_mse_point, x, y, w, reduction, weighted_mean_by_weight=True)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    r"""Exact ``torch.nn.functional.mse_loss``: ``(x - y)^2`` (weighted mean: ``sum w t / sum w``)."""
    return mse_loss_terms(input, target, size_average, reduce, reduction, weight).value


def mse_loss_grad(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None, wrt: str = "input") -> np.ndarray:
    """``2 (x - y)``, weighted and scaled by the mean.

    ``wrt``: ``"input"`` (this formula), or another parameter (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import mse_loss_grad_wrt

        return mse_loss_grad_wrt(input, target, size_average, reduce, reduction, weight, wrt=wrt)
    lt = mse_loss_terms(input, target, size_average, reduce, reduction, weight)
    reduction, x, y, w = _prepare(input, target, weight, size_average, reduce, reduction)
    return _elementwise_grad(_mse_point, input, x, y, w, lt)


# ------------------------------------------------------------------ Huber and smooth L1


def _huber_point(delta: mpf):
    def point(x: mpf, y: mpf):
        d = x - y
        spread = abs(x) + abs(y)
        if abs(d) < delta:
            return d * d / 2, d, abs(d) * spread
        half = delta * delta / 2
        # summands delta |d| and delta^2/2; the parameter's own rounding: |delta dt/ddelta|
        return delta * abs(d) - half, delta * _sign(d), delta * spread + delta * abs(d) + half + abs(delta * (abs(d) - delta))
    return point


def _smooth_l1_point(beta: mpf):
    def point(x: mpf, y: mpf):
        d = x - y
        spread = abs(x) + abs(y)
        if beta == 0:
            return abs(d), _sign(d), spread
        if abs(d) < beta:
            t = d * d / (2 * beta)
            # d's sensitivity, and beta's |beta dt/dbeta| = t
            return t, d / beta, abs(d) * spread / beta + t
        return abs(d) - beta / 2, _sign(d), spread + abs(d) + beta
    return point


def _check_delta(delta) -> mpf:
    value = to_mpf(delta)
    if is_nan(value) or value <= 0:
        raise ValueError(f"huber_loss needs delta > 0, got {delta!r}")
    return value


def _check_beta(beta) -> mpf:
    value = to_mpf(beta)
    if is_nan(value) or value < 0:
        raise ValueError(f"smooth_l1_loss needs beta >= 0, got {beta!r}")
    return value


def huber_loss_terms(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> LossTerms:
    """The elementwise decomposition of :func:`huber_loss` (module docstring)."""
    reduction, x, y, w = _prepare(input, target, weight, None, None, reduction)
    return _elementwise(_huber_point(_check_delta(delta)), x, y, w, reduction, weighted_mean_by_weight=False)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    r"""Exact ``torch.nn.functional.huber_loss`` (weighted mean: ``sum w t / N``)."""
    return huber_loss_terms(input, target, reduction, delta, weight).value


def huber_loss_grad(input, target, reduction: str = "mean", delta: float = 1.0, weight=None, wrt: str = "input") -> np.ndarray:
    """``d`` for ``|d| < delta``, else ``delta sign(d)``; weighted and scaled by the mean.

    ``wrt``: ``"input"`` (this formula), or another parameter (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import huber_loss_grad_wrt

        return huber_loss_grad_wrt(input, target, reduction, delta, weight, wrt=wrt)
    lt = huber_loss_terms(input, target, reduction, delta, weight)
    reduction, x, y, w = _prepare(input, target, weight, None, None, reduction)
    return _elementwise_grad(_huber_point(_check_delta(delta)), input, x, y, w, lt)


def smooth_l1_loss_terms(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> LossTerms:
    """The elementwise decomposition of :func:`smooth_l1_loss` (module docstring)."""
    reduction, x, y, _ = _prepare(input, target, None, size_average, reduce, reduction)
    return _elementwise(_smooth_l1_point(_check_beta(beta)), x, y, None, reduction, weighted_mean_by_weight=False)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
    r"""Exact ``torch.nn.functional.smooth_l1_loss`` (``beta = 0``: L1)."""
    return smooth_l1_loss_terms(input, target, size_average, reduce, reduction, beta).value


def smooth_l1_loss_grad(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0, wrt: str = "input") -> np.ndarray:
    """``d / beta`` for ``|d| < beta``, else ``sign(d)``; scaled by the mean.

    ``wrt``: ``"input"`` (this formula), or another parameter (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import smooth_l1_loss_grad_wrt

        return smooth_l1_loss_grad_wrt(input, target, size_average, reduce, reduction, beta, wrt=wrt)
    lt = smooth_l1_loss_terms(input, target, size_average, reduce, reduction, beta)
    reduction, x, y, _ = _prepare(input, target, None, size_average, reduce, reduction)
    return _elementwise_grad(_smooth_l1_point(_check_beta(beta)), input, x, y, None, lt)


# ------------------------------------------------------------------ Poisson NLL


def _stirling(y: mpf) -> tuple[mpf, mpf]:
    """``(y log y - y + log(2 pi y) / 2, its error-model magnitude)`` for ``y > 1``, else 0."""
    if not y > 1:
        return mpf(0), mpf(0)
    log_y = mpmath.log(y)
    value = y * log_y - y + mpmath.log(2 * mpmath.pi * y) / 2
    # summands, and the target's sensitivity |y d/dy| = |y log y + 1/2|
    return value, abs(y * log_y) + y + abs(mpmath.log(2 * mpmath.pi * y)) / 2 + abs(y * log_y + mpf(1) / 2)


def _poisson_point(log_input: bool, full: bool, eps: mpf):
    def point(x: mpf, y: mpf):
        if log_input:
            e = mpmath.exp(x)
            t, g = e - y * x, e - y
            # |x| e^x: exp of a rounded x; |x y| twice: the product and the target's sensitivity
            c = abs(x) * e + e + 2 * abs(x * y) + abs(x * g)
        else:
            z = x + eps
            log_z = mpmath.log(z) if z >= 0 else mpmath.nan
            yl = mpf(0) if (y == 0 and mpmath.isfinite(log_z)) else y * log_z
            t = x - yl
            g = 1 - y / z if z != 0 else (mpf(1) if y == 0 else -mpmath.inf * _sign(y))
            # x's own summand and sensitivity, y log z (product, and y's sensitivity), log's
            # argument x + eps (rounded: |y|), and eps as a float rounded to the dtype
            c = abs(x) + 2 * abs(yl) + abs(y) + (abs(x * y / z) + abs(eps * y / z) if z != 0 else mpf(0))
        if full:
            s, sc = _stirling(y)
            t, c = t + s, c + sc
        return t, g, c
    return point


def poisson_nll_loss_terms(
    input, target, log_input: bool = True, full: bool = False, size_average=None,
    eps: float = 1e-8, reduce=None, reduction: str = "mean",
) -> LossTerms:
    """The elementwise decomposition of :func:`poisson_nll_loss` (module docstring)."""
    reduction, x, y, _ = _prepare(input, target, None, size_average, reduce, reduction)
    point = _poisson_point(bool(log_input), bool(full), to_mpf(eps))
    return _elementwise(point, x, y, None, reduction, weighted_mean_by_weight=False)


def poisson_nll_loss(
    input, target, log_input: bool = True, full: bool = False, size_average=None,
    eps: float = 1e-8, reduce=None, reduction: str = "mean",
):
    r"""Exact ``torch.nn.functional.poisson_nll_loss`` (module docstring)."""
    return poisson_nll_loss_terms(input, target, log_input, full, size_average, eps, reduce, reduction).value


def poisson_nll_loss_grad(
    input, target, log_input: bool = True, full: bool = False, size_average=None,
    eps: float = 1e-8, reduce=None, reduction: str = "mean", wrt: str = "input",
) -> np.ndarray:
    """``e^x - y`` (log_input) or ``1 - y / (x + eps)``; the Stirling term has no ``x``.

    ``wrt``: ``"input"`` (this formula), or ``"target"`` (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import poisson_nll_loss_grad_wrt

        return poisson_nll_loss_grad_wrt(input, target, log_input, full, size_average, eps, reduce, reduction, wrt=wrt)
    lt = poisson_nll_loss_terms(input, target, log_input, full, size_average, eps, reduce, reduction)
    reduction, x, y, _ = _prepare(input, target, None, size_average, reduce, reduction)
    point = _poisson_point(bool(log_input), bool(full), to_mpf(eps))
    return _elementwise_grad(point, input, x, y, None, lt)


# ------------------------------------------------------------------ Gaussian NLL

def _variance(input, var) -> np.ndarray:
    """``var`` as an array broadcastable to ``input``, by PyTorch's rules (module docstring)."""
    shape = np.shape(input)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"var has a negative entry: {var!r}")
        return np.full(shape, float(var))
    v = np.asarray(var)
    if np.any(v.astype(np.float64) < 0):
        raise ValueError("var has negative entry/entries")
    if v.shape == shape:
        return v
    if v.shape == shape[:-1]:
        return v[..., None]
    if v.ndim == len(shape) and sum(b for a, b in zip(shape, v.shape) if a != b) == 1:
        return v
    raise ValueError(
        f"var of shape {v.shape} is of incorrect size for input of shape {shape}: expected "
        f"{shape}, {shape[:-1]}, or {shape} with one dimension 1"
    )


def _gaussian_point(full: bool, eps: mpf):
    def point(x: mpf, y: mpf, v: mpf):
        clamped = v < eps
        s = eps if clamped else v
        d = x - y
        log_s = mpmath.log(s)
        q = d * d / s
        t = (log_s + q) / 2
        c = abs(log_s) / 2 + q / 2 + q * (abs(x) + abs(y)) / abs(d) if d != 0 else abs(log_s) / 2
        # the variance (or eps where it clamps) is a floating input: |s dt/ds| = |1 - q| / 2
        c += abs(1 - q) / 2
        if full:
            half_log_2pi = mpmath.log(2 * mpmath.pi) / 2
            t, c = t + half_log_2pi, c + half_log_2pi
        return t, d / s, c
    return point


def _gaussian_prepare(input, target, var, reduction):
    check_reduction(reduction)
    v = _variance(input, var)
    x, y, vv = _broadcast(input, target, v)
    return x, y, vv


def gaussian_nll_loss_terms(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> LossTerms:
    """The elementwise decomposition of :func:`gaussian_nll_loss` (module docstring)."""
    x, y, v = _gaussian_prepare(input, target, var, reduction)
    point = _gaussian_point(bool(full), to_mpf(eps))
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        terms[idx], _, cond[idx] = point(x[idx], y[idx], v[idx])
    return LossTerms(
        terms=terms,
        condition=cond,
        scale=np.full(x.shape, mpf(0), dtype=object),
        reduction=reduction,
        denominator=mpf(x.size) if reduction == "mean" else None,
    )


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    r"""Exact ``torch.nn.functional.gaussian_nll_loss`` (module docstring)."""
    return gaussian_nll_loss_terms(input, target, var, full, eps, reduction).value


def gaussian_nll_loss_grad(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean", wrt: str = "input") -> np.ndarray:
    """``(x - y) / max(v, eps)`` w.r.t. ``input``, scaled by the mean, summed over broadcasting.

    ``wrt``: ``"input"`` (this formula), or another parameter (``oracle.gradients_regression``).
    """
    if wrt != "input":
        from .gradients_regression import gaussian_nll_loss_grad_wrt

        return gaussian_nll_loss_grad_wrt(input, target, var, full, eps, reduction, wrt=wrt)
    lt = gaussian_nll_loss_terms(input, target, var, full, eps, reduction)
    x, y, v = _gaussian_prepare(input, target, var, reduction)
    point = _gaussian_point(bool(full), to_mpf(eps))
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        g = point(x[idx], y[idx], v[idx])[1]
        grad[idx] = g / lt.denominator if lt.denominator is not None else g
    return _sum_to_shape(grad, np.shape(input))
