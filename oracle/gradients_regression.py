r"""Exact gradients of the regression losses w.r.t. every differentiable parameter, the
error model's quantities for them (:class:`oracle.gradients.GradientCondition`), and the
gradient error model of ``ctc_loss``.

The regression losses (:mod:`oracle.regression`) are ``F = R(w_i t_i)`` over elementwise
terms ``t_i = t(x_i, y_i[, v_i])`` (broadcast), ``R`` the reduction with denominator ``D``
(1 for ``none``/``sum``, ``N`` for a ``mean``, ``W = sum_i w_i`` for the weighted mean of
``l1_loss``/``mse_loss``). For a parameter ``z`` among ``input``, ``target``, ``var``:

.. math::
    \partial F / \partial z_i = w_i\, \partial t_i / \partial z_i / D

summed over the axes ``z`` was broadcast along; for ``weight`` (``none``/``sum``: ``t_i``;
``mean`` by ``N``: ``t_i / N``; ``mean`` by ``W``: ``(t_i - F) / W``).

Per term, with ``d = x - y`` and ``s = max(v, eps)``:

==================  =====================================  ================================
loss                ``dt/dx``  (``dt/dy = -dt/dx``)        other
==================  =====================================  ================================
l1                  ``sign(d)`` (0 at ``d = 0``)
mse                 ``2 d``
huber               ``d`` if ``|d| < delta`` else          ``dt/dw = t``
                    ``delta sign(d)``
smooth_l1           ``d / beta`` if ``|d| < beta`` else
                    ``sign(d)`` (``beta = 0``: L1)
poisson, log        ``e^x - y``                            ``dt/dy = -x [+ log y + 1/(2y)]``
poisson             ``1 - y / (x + eps)``                  ``dt/dy = -log(x + eps) [+ ...]``
gaussian            ``d / s``                              ``dt/dv = (1 - d^2/s) / (2 s)``
==================  =====================================  ================================

PyTorch's conventions, which these follow (checked against torch 2.13 eager):

* ``|d|`` at ``d = 0``: subgradient 0 (``sign(0) = 0``). Computing ``d = x - y`` in
  floating point is exact in its sign (``x - y`` rounds to 0 only for ``x = y``), so no
  kink of ``l1_loss`` is ambiguous after rounding.
* Huber and smooth L1 at ``|d| = delta`` (``beta``): both branches give the same gradient
  (the losses are C^1); PyTorch takes the linear branch there (``|d| < delta`` is false).
* ``full=True`` Poisson: PyTorch masks the Stirling term where ``y <= 1`` with
  ``masked_fill``, so its derivative is 0 there, also at ``y = 1`` where the term's own
  derivative is ``1/2``.
* ``gaussian_nll_loss``: PyTorch clamps ``var`` at ``eps`` under ``torch.no_grad()`` on a
  clone, so the gradient passes straight through the clamp: ``dt/dv`` is the derivative
  w.r.t. ``s`` evaluated at ``s = max(v, eps)``, also where ``v < eps``
  (``var = 1e-9``: ``(1/s - d^2/s^2)/2`` at ``s = 1e-6``, not 0).
* ``poisson_nll_loss``'s ``0 log 0``: the loss is NaN for ``x + eps = 0`` with ``y = 0``
  (IEEE, as in PyTorch), so its gradient is undefined there.

Error model (``suites/gradients.py``): ``c_i = sum_z sum_k |z_k dg_i/dz_k| + m_i`` with
the second derivatives of each term -- the floating parameters ``delta``, ``beta``,
``eps`` count as inputs too, since a framework rounds them to the dtype -- then the
weight's perturbation (``|g_i|``) and a weighted mean's denominator (``|g_i| sum|w| /
|W|``). Huber's and smooth L1's gradients are continuous but their slope jumps at
``|d| = delta``: where a relative perturbation of the inputs within the model's ``K_IN u``
reaches the kink (``kink_reach``), the other branch's sensitivity is added
(``kink_condition``), never elsewhere.

``ctc_loss`` (w.r.t. ``log_probs``): ``g = -gamma`` (posterior occupation), a product of
forward and backward sums of path probabilities over ``P``; ``c_{t,c} = gamma_{t,c}
(1 + sum_{t',c'} |x_{t',c'}| ...)`` -- bounded by ``gamma_{t,c}`` times twice the sum over
the used frames of ``max_c |x_{t,c}|`` (each log-probability moves every path's
log-probability by at most ``u |x|``, so ``alpha beta / P`` by at most twice the sum), plus
``gamma`` for its summands. ``scale``: ``gamma`` times the forward model's working scale
(the log-space algorithm's absolute error in ``log alpha`` becomes a relative one in
``gamma``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath
import numpy as np
from mpmath import mpf

from .core import mp_array, to_mpf
from .divergence import _sum_to_shape
from .gradients import GradientCondition
from .regression import (
    _broadcast,
    _check_beta,
    _check_delta,
    _gaussian_point,
    _huber_point,
    _l1_point,
    _mse_point,
    _poisson_point,
    _prepare,
    _smooth_l1_point,
    _variance,
)
from .reduction import check_reduction

__all__ = [
    "ctc_loss_grad_condition",
    "gaussian_nll_loss_grad_condition",
    "gaussian_nll_loss_grad_wrt",
    "huber_loss_grad_condition",
    "huber_loss_grad_wrt",
    "l1_loss_grad_condition",
    "l1_loss_grad_wrt",
    "mse_loss_grad_condition",
    "mse_loss_grad_wrt",
    "poisson_nll_loss_grad_condition",
    "poisson_nll_loss_grad_wrt",
    "smooth_l1_loss_grad_condition",
    "smooth_l1_loss_grad_wrt",
]

_INF = mpmath.inf


@dataclass
class _Point:
    """One term: its value and forward condition, and per parameter ``dt/dz`` and the
    condition of that derivative (module docstring); ``kink_*`` where it has a kink."""

    t: mpf
    ct: mpf
    g: dict[str, mpf]
    c: dict[str, mpf]
    kink_reach: mpf = _INF
    kink_c: dict[str, mpf] = field(default_factory=dict)


def _l1(x: mpf, y: mpf) -> _Point:
    t, g, ct = _l1_point(x, y)
    # sign(d) is exact (module docstring): no second-order sensitivity at all
    return _Point(t, ct, {"input": g, "target": -g}, {"input": mpf(0), "target": mpf(0)})


def _mse(x: mpf, y: mpf) -> _Point:
    t, g, ct = _mse_point(x, y)
    c = 2 * (abs(x) + abs(y))  # d(2d)/dx = 2, d(2d)/dy = -2
    return _Point(t, ct, {"input": g, "target": -g}, {"input": c, "target": c})


def _huber(delta: mpf) -> Callable[[mpf, mpf], _Point]:
    forward = _huber_point(delta)

    def point(x: mpf, y: mpf) -> _Point:
        t, g, ct = forward(x, y)
        d, spread = x - y, abs(x) + abs(y)
        quadratic = abs(d) < delta
        # quadratic: dg/dx = 1, dg/dy = -1; linear: g = delta sign(d), delta's own perturbation
        c = spread if quadratic else delta
        reach = abs(abs(d) - delta) / (spread + delta) if spread + delta else _INF
        other = delta if quadratic else spread
        return _Point(t, ct, {"input": g, "target": -g}, {"input": c, "target": c}, reach,
                      {"input": other, "target": other})

    return point


def _smooth_l1(beta: mpf) -> Callable[[mpf, mpf], _Point]:
    if beta == 0:
        return _l1
    forward = _smooth_l1_point(beta)

    def point(x: mpf, y: mpf) -> _Point:
        t, g, ct = forward(x, y)
        d, spread = x - y, abs(x) + abs(y)
        quadratic = abs(d) < beta
        # quadratic g = d / beta: (|x| + |y|) / beta, and beta's |beta dg/dbeta| = |d| / beta
        c = (spread + abs(d)) / beta if quadratic else mpf(0)
        reach = abs(abs(d) - beta) / (spread + beta)
        other = mpf(0) if quadratic else (spread + abs(d)) / beta
        return _Point(t, ct, {"input": g, "target": -g}, {"input": c, "target": c}, reach,
                      {"input": other, "target": other})

    return point


def _poisson(log_input: bool, full: bool, eps: mpf) -> Callable[[mpf, mpf], _Point]:
    forward = _poisson_point(log_input, full, eps)

    def point(x: mpf, y: mpf) -> _Point:
        t, gx, ct = forward(x, y)
        if log_input:
            e = mpmath.exp(x)
            # g_x = e^x - y: |x| e^x + |y| (second derivatives), e^x + |y| (summands)
            cx = abs(x) * e + e + 2 * abs(y)
            gy, cy = -x, abs(x)
        else:
            z = x + eps
            if z == 0:
                gy, cy, cx = -_INF if y == 0 else mpmath.nan, mpf(0), mpf(0)
            else:
                log_z = mpmath.log(z) if z > 0 else mpmath.nan
                # g_x = 1 - y / z: |x y| / z^2 + |y / z| + |eps y| / z^2, summands 1 + |y / z|
                cx = (abs(x * y) + abs(eps * y)) / (z * z) + 2 * abs(y / z) + 1
                # g_y = -log z: |x| / |z| + |eps| / |z|
                gy, cy = -log_z, (abs(x) + abs(eps)) / abs(z)
        if full and y > 1:
            log_y = mpmath.log(y)
            # d/dy (y log y - y + log(2 pi y) / 2) = log y + 1 / (2 y); |y| times its derivative
            # (1/y - 1/(2 y^2)), and the two summands
            gy += log_y + 1 / (2 * y)
            cy += abs(1 - 1 / (2 * y)) + abs(log_y) + 1 / (2 * y)
        return _Point(t, ct, {"input": gx, "target": gy}, {"input": cx, "target": cy})

    return point


def _gaussian(full: bool, eps: mpf) -> Callable[[mpf, mpf, mpf], _Point]:
    forward = _gaussian_point(full, eps)

    def point(x: mpf, y: mpf, v: mpf) -> _Point:
        t, gx, ct = forward(x, y, v)
        s = eps if v < eps else v
        d = x - y
        q = d * d / s
        spread = abs(x) + abs(y)
        # g_x = d / s: (|x| + |y|) / s, and s's |s dg/ds| = |d| / s
        cx = (spread + abs(d)) / s
        gv = (1 - q) / (2 * s)
        # g_v = (1 - d^2/s) / (2s): |x dg/dx| + |y dg/dy| = spread |d| / s^2;
        # |s dg/ds| = |2q - 1| / (2s); summands (1 + q) / (2s)
        cv = spread * abs(d) / (s * s) + abs(2 * q - 1) / (2 * s) + (1 + q) / (2 * s)
        return _Point(t, ct, {"input": gx, "target": -gx, "var": gv}, {"input": cx, "target": cx, "var": cv})

    return point


# ------------------------------------------------------------------ assembly


@dataclass
class _Assembled:
    grad: np.ndarray
    condition: GradientCondition


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = mpf(0)
    return out


def _assemble(points: np.ndarray, w: np.ndarray | None, reduction: str, by_weight: bool,
              wrt: str, shape: tuple[int, ...]) -> _Assembled:
    """``dF/d wrt`` and its condition from the per-term points (module docstring), summed to
    ``shape`` (the parameter's, before any expansion)."""
    n = points.size
    if reduction == "mean":
        denominator = mpmath.fsum(w.reshape(-1).tolist()) if (w is not None and by_weight) else mpf(n)
    else:
        denominator = mpf(1)
    abs_d = abs(denominator)
    sum_abs_w = mpmath.fsum(abs(v) for v in w.reshape(-1)) if w is not None else mpf(n)
    weighted_mean = reduction == "mean" and w is not None and by_weight
    grad, cond = _zeros(points.shape), _zeros(points.shape)
    reach, kink = np.full(points.shape, _INF, dtype=object), _zeros(points.shape)
    summation, count = _zeros(points.shape), 0
    if wrt == "weight":
        if w is None:
            raise ValueError("no weight to differentiate by")
        total = mpmath.fsum(w[i] * points[i].t for i in np.ndindex(points.shape))
        value = total / denominator if reduction == "mean" else total
        for i in np.ndindex(points.shape):
            p = points[i]
            if weighted_mean:
                # (t_i - F) / W: t_i's and F's inputs, the weights through F and W
                grad[i] = (p.t - value) / denominator
                spread = mpmath.fsum(abs(w[k]) * (points[k].ct + abs(points[k].t - value)) for k in np.ndindex(points.shape))
                cond[i] = (p.ct + abs(p.t) + abs(value) + spread / abs_d + abs(p.t - value) * sum_abs_w / abs_d) / abs_d
                summation[i] = (mpmath.fsum(abs(w[k] * points[k].t) for k in np.ndindex(points.shape)) / abs_d
                                + abs(value) * sum_abs_w / abs_d) / abs_d
                count = n
            else:
                grad[i] = p.t / denominator
                cond[i] = p.ct / abs_d
    else:
        for i in np.ndindex(points.shape):
            p = points[i]
            wi = w[i] if w is not None else mpf(1)
            g = wi * p.g[wrt] / denominator
            grad[i] = g
            c = abs(wi) * p.c[wrt] / abs_d
            if w is not None:
                c += abs(g)  # the weight's own perturbation
            if weighted_mean:
                c += abs(g) * sum_abs_w / abs_d  # the denominator W moves with every weight
                summation[i] = abs(g)
                count = n
            cond[i] = c
            reach[i] = p.kink_reach
            kink[i] = abs(wi) * p.kink_c.get(wrt, mpf(0)) / abs_d
    grad = _sum_to_shape(grad, shape)
    cond = _sum_to_shape(cond, shape)
    summation = _sum_to_shape(summation, shape)
    kink = _sum_to_shape(kink, shape)
    reach = _min_to_shape(reach, shape)
    return _Assembled(grad, GradientCondition(cond, _zeros(shape), summation, count, kink_reach=reach,
                                              kink_condition=kink))


def _min_to_shape(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Like ``_sum_to_shape``, with the minimum: the closest kink among the summed terms."""
    if values.shape == tuple(shape):
        return values
    extra = values.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, m in enumerate(shape) if m == 1 and values.shape[extra + i] != 1)
    moved = np.moveaxis(values, axes, tuple(range(len(axes))))
    flat = moved.reshape((-1, *moved.shape[len(axes):]))
    out = np.empty(flat.shape[1:], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = min(flat[(slice(None), *idx)].tolist(), default=_INF)
    return out.reshape(shape)


def _points(point, *arrays) -> np.ndarray:
    out = np.empty(arrays[0].shape, dtype=object)
    for i in np.ndindex(out.shape):
        out[i] = point(*(a[i] for a in arrays))
    return out


def _parameter_shape(wrt: str, shapes: dict[str, tuple[int, ...]], fn: str) -> tuple[int, ...]:
    if wrt not in shapes:
        raise ValueError(f"{fn} has no differentiable parameter {wrt!r}: choose one of {', '.join(shapes)}")
    return shapes[wrt]


def _elementwise_loss(fn: str, point, input, target, weight, reduction, by_weight, wrt,
                      size_average=None, reduce=None) -> _Assembled:
    reduction, x, y, w = _prepare(input, target, weight, size_average, reduce, reduction)
    shapes = {"input": np.shape(input), "target": np.shape(target)}
    if weight is not None:
        shapes["weight"] = np.shape(weight)
    shape = _parameter_shape(wrt, shapes, fn)
    return _assemble(_points(point, x, y), w, reduction, by_weight, wrt, shape)


# ------------------------------------------------------------------ the losses


def l1_loss_grad_wrt(input, target, size_average=None, reduce=None, reduction="mean", weight=None, wrt="input"):
    """``dF/d wrt`` of :func:`oracle.l1_loss` (module docstring)."""
    return _elementwise_loss("l1_loss", _l1, input, target, weight, reduction, True, wrt, size_average, reduce).grad


def l1_loss_grad_condition(input, target, size_average=None, reduce=None, reduction="mean", weight=None, wrt="input"):
    """:class:`GradientCondition` of :func:`l1_loss_grad_wrt` (module docstring)."""
    return _elementwise_loss("l1_loss", _l1, input, target, weight, reduction, True, wrt, size_average, reduce).condition


def mse_loss_grad_wrt(input, target, size_average=None, reduce=None, reduction="mean", weight=None, wrt="input"):
    """``dF/d wrt`` of :func:`oracle.mse_loss` (module docstring)."""
    return _elementwise_loss("mse_loss", _mse, input, target, weight, reduction, True, wrt, size_average, reduce).grad


def mse_loss_grad_condition(input, target, size_average=None, reduce=None, reduction="mean", weight=None, wrt="input"):
    """:class:`GradientCondition` of :func:`mse_loss_grad_wrt` (module docstring)."""
    return _elementwise_loss("mse_loss", _mse, input, target, weight, reduction, True, wrt, size_average, reduce).condition


def huber_loss_grad_wrt(input, target, reduction="mean", delta=1.0, weight=None, wrt="input"):
    """``dF/d wrt`` of :func:`oracle.huber_loss` (weighted mean by ``N``)."""
    point = _huber(_check_delta(delta))
    return _elementwise_loss("huber_loss", point, input, target, weight, reduction, False, wrt).grad


def huber_loss_grad_condition(input, target, reduction="mean", delta=1.0, weight=None, wrt="input"):
    """:class:`GradientCondition` of :func:`huber_loss_grad_wrt` (module docstring)."""
    point = _huber(_check_delta(delta))
    return _elementwise_loss("huber_loss", point, input, target, weight, reduction, False, wrt).condition


def smooth_l1_loss_grad_wrt(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0, wrt="input"):
    """``dF/d wrt`` of :func:`oracle.smooth_l1_loss`."""
    point = _smooth_l1(_check_beta(beta))
    return _elementwise_loss("smooth_l1_loss", point, input, target, None, reduction, False, wrt, size_average, reduce).grad


def smooth_l1_loss_grad_condition(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0, wrt="input"):
    """:class:`GradientCondition` of :func:`smooth_l1_loss_grad_wrt` (module docstring)."""
    point = _smooth_l1(_check_beta(beta))
    return _elementwise_loss("smooth_l1_loss", point, input, target, None, reduction, False, wrt, size_average, reduce).condition


def _poisson_args(log_input, full, eps):
    return _poisson(bool(log_input), bool(full), to_mpf(eps))


def poisson_nll_loss_grad_wrt(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                              reduce=None, reduction="mean", wrt="input"):
    """``dF/d wrt`` of :func:`oracle.poisson_nll_loss` (module docstring)."""
    point = _poisson_args(log_input, full, eps)
    return _elementwise_loss("poisson_nll_loss", point, input, target, None, reduction, False, wrt, size_average, reduce).grad


def poisson_nll_loss_grad_condition(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                                    reduce=None, reduction="mean", wrt="input"):
    """:class:`GradientCondition` of :func:`poisson_nll_loss_grad_wrt` (module docstring)."""
    point = _poisson_args(log_input, full, eps)
    return _elementwise_loss("poisson_nll_loss", point, input, target, None, reduction, False, wrt, size_average, reduce).condition


def _gaussian_loss(input, target, var, full, eps, reduction, wrt) -> _Assembled:
    check_reduction(reduction)
    v = _variance(input, var)
    shapes = {"input": np.shape(input), "target": np.shape(target)}
    if isinstance(var, np.ndarray):
        shapes["var"] = np.shape(v)  # var's shape as PyTorch broadcasts it (unsqueezed)
    shape = _parameter_shape(wrt, shapes, "gaussian_nll_loss")
    x, y, vv = _broadcast(input, target, v)
    assembled = _assemble(_points(_gaussian(bool(full), to_mpf(eps)), x, y, vv), None, reduction, False, wrt, shape)
    if wrt == "var" and np.shape(var) != shape:  # var of input's shape without the last dimension
        gc = assembled.condition
        reshape = lambda a: a.reshape(np.shape(var))  # noqa: E731
        assembled = _Assembled(reshape(assembled.grad), GradientCondition(
            reshape(gc.condition), reshape(gc.scale), reshape(gc.summation), gc.count,
            kink_reach=reshape(gc.kink_reach), kink_condition=reshape(gc.kink_condition)))
    return assembled


def gaussian_nll_loss_grad_wrt(input, target, var, full=False, eps=1e-6, reduction="mean", wrt="input"):
    """``dF/d wrt`` of :func:`oracle.gaussian_nll_loss`; ``var`` straight through its clamp."""
    return _gaussian_loss(input, target, var, full, eps, reduction, wrt).grad


def gaussian_nll_loss_grad_condition(input, target, var, full=False, eps=1e-6, reduction="mean", wrt="input"):
    """:class:`GradientCondition` of :func:`gaussian_nll_loss_grad_wrt` (module docstring)."""
    return _gaussian_loss(input, target, var, full, eps, reduction, wrt).condition


# ------------------------------------------------------------------ ctc


def ctc_loss_grad_condition(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
                            zero_infinity=False, wrt="log_probs") -> GradientCondition:
    """The error model of :func:`oracle.ctc_loss_grad` (module docstring): per sequence,
    ``c = |g| (2 sum_t max_c |x_{t,c}| + 1)`` and ``scale = |g|`` times the forward model's
    working scale ``sum_t max_c |x_{t,c}|`` (both over the sequence's used frames)."""
    from .ctc import ctc_loss_grad

    if wrt != "log_probs":
        raise ValueError(f"ctc_loss has no differentiable parameter {wrt!r}: only log_probs")
    grad = ctc_loss_grad(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    x = mp_array(log_probs)
    batched = x.ndim == 3
    g = grad if batched else grad[:, None, :]
    xs = x if batched else x[:, None, :]
    lengths = np.asarray(input_lengths).reshape(-1)
    cond, scale = _zeros(g.shape), _zeros(g.shape)
    for n in range(g.shape[1]):
        steps = int(lengths[n])
        frame_max = [max((abs(v) for v in xs[t, n] if mpmath.isfinite(v)), default=mpf(0)) for t in range(steps)]
        working = mpmath.fsum(frame_max)
        for t in range(steps):
            for c in range(g.shape[2]):
                magnitude = abs(g[t, n, c])
                if mpmath.isnan(magnitude):
                    cond[t, n, c] = scale[t, n, c] = mpmath.nan
                    continue
                cond[t, n, c] = magnitude * (2 * working + 1)
                scale[t, n, c] = magnitude * working
    if not batched:
        cond, scale = cond[:, 0, :], scale[:, 0, :]
    return GradientCondition(cond, scale, _zeros(cond.shape))

