r"""Gradient error model of the margin, ranking and embedding losses (:mod:`oracle.margin`,
:mod:`oracle.embedding`): ``<loss>_grad_condition``, the :class:`GradientCondition` of
each component of ``<loss>_grad`` (``suites/gradients.py`` turns it into a bound).

As for the other losses (:mod:`oracle.gradients`), ``condition`` is the gradient's
second-order sensitivity ``c_i = sum_z sum_k |z_k dg_i/dz_k| + m_i`` over every floating
input ``z`` (inputs, targets, weights), with ``m_i`` the magnitudes of the summands the
formula of ``g_i`` adds; ``summation``/``count`` a sum of ``count`` addends the backward
pass forms (the class terms of the multi-class hinges). ``mean`` divides everything by
the number of terms ``N`` (exact).

**Kinks.** These gradients jump where a hinge ``max(0, z)`` switches (and an L1 norm's
``sign(v)`` at ``v = 0``, a ``swap``'s ``min`` at a tie): no second derivative bounds
them. A backward pass that is exact on inputs perturbed relatively by ``u`` evaluates
``z`` with an error up to ``u K_IN S_z`` -- ``S_z`` the forward model's condition of
``z`` (the magnitudes it adds: ``|x1| + |x2| + |margin|``, ``1 + |x_j| + |x_i|``...), the
very quantity the loss value's bound uses for it. Within that distance of the kink
(``|z| <= u K_KINK S_z``) it may land on either side, so the jump ``J_i`` (the
difference of the two one-sided gradients) is admitted: ``c_i += J_i / (u K_KINK)``,
which the bound's ``u K_IN c_i`` turns into exactly ``J_i`` (``K_KINK`` restates
``suites.verdict.K_IN``, which the oracle cannot import; ``tests/`` check they are
equal). Farther away nothing is added: the wrong side is a failure. ``u`` is the unit
roundoff of the input arrays' dtype -- the case's dtype, the one the framework computes
in (float64's for arrays without a float dtype). So at an *exact* kink any value between
the one-sided ones passes (PyTorch's choice, the oracle's exact value, is checked against
torch eager in ``tests/test_oracle_margin_gradients.py``).

PyTorch's conventions at the kinks (``<loss>_grad``'s exact value there):

* ``margin_ranking_loss``, ``hinge_embedding_loss``, ``cosine_embedding_loss`` (``y = -1``),
  the triplet hinges: ``clamp_min(z, 0)``'s backward passes the gradient at ``z = 0``
  (the active side);
* ``multi_margin_loss``, ``multilabel_margin_loss``: their kernels add a class only where
  ``z > 0`` (the inactive side at ``z = 0``; for ``p = 2`` the gradient is continuous there);
* a p-norm at a zero difference: gradient 0 (the norm backward's mask), and ``sign(0) = 0``
  for ``p = 1``; ``swap``'s ``torch.minimum`` at a tie: half to each side;
* ``cosine_embedding_loss`` at a zero vector: the documented cosine has no limit there
  (the oracle's value is PyTorch's 0, its derivative undefined), so its condition is
  ``inf``: any finite gradient passes and only a NaN or infinity fails.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .core import FORMATS, mp_array, to_mpf
from .embedding import (
    COSINE_SIMILARITY_EPS,
    PAIRWISE_EPS,
    TORCH_COSINE_EMBEDDING_EPSILON,
    _exact_differences,
    _p_norm,
    _vectors,
    pairwise_distance,
)
from .gradients import GradientCondition, _zeros
from .margin import _class_rows, _class_targets, _class_weight, _listed_targets, _sum_error_factor
from .reduction import resolve_reduction

__all__ = [
    "K_KINK",
    "cosine_embedding_loss_grad_condition",
    "hinge_embedding_loss_grad_condition",
    "margin_ranking_loss_grad_condition",
    "mlx_triplet_loss_grad_condition",
    "multi_margin_loss_grad_condition",
    "multilabel_margin_loss_grad_condition",
    "multilabel_soft_margin_loss_grad_condition",
    "soft_margin_loss_grad_condition",
    "torch_cosine_embedding_loss_grad_condition",
    "triplet_margin_loss_grad_condition",
    "triplet_margin_with_distance_loss_grad_condition",
]

#: The verdict's input-perturbation constant ``K_IN`` (suites/verdict.py), restated: a kink
#: within ``u K_KINK S_z`` may be crossed (module docstring).
K_KINK = 4


def _unit_roundoff(array) -> mpf:
    """``u`` of the dtype the case computes in: the input array's (float64's for others)."""
    fmt = FORMATS.get(np.asarray(array).dtype.name, FORMATS["float64"])
    return mpf(fmt.unit_roundoff)


def _kink(jump: mpf, z: mpf, size: mpf, u: mpf) -> mpf:
    """The condition that admits ``jump`` where ``z`` is within ``u K_KINK size`` of the kink:
    ``jump / (u K_KINK)``, plus ``2 jump`` for the other side's own rounding (the ``K_OUT u |g|``
    = ``8 u jump`` its value would be allowed, as ``K_IN u (2 jump)``)."""
    if jump == 0 or not mpmath.isfinite(z):
        return mpf(0)
    return jump / (u * K_KINK) + 2 * jump if abs(z) <= u * K_KINK * size else mpf(0)


def _denominator(reduction: str, n: int) -> mpf:
    return mpf(n) if reduction == "mean" else mpf(1)


def _margin(margin) -> mpf:
    return mp_array(np.asarray(margin, dtype=np.float64))[()]


def _check_wrt(wrt: str, allowed: tuple[str, ...], loss: str) -> None:
    if wrt not in allowed:
        raise ValueError(f"{loss}: no gradient w.r.t. {wrt!r}; the oracle differentiates {', '.join(allowed)}")


# ------------------------------------------------------------------ elementwise hinges


def margin_ranking_loss_grad_condition(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> GradientCondition:
    """``g = -+y [z >= 0] / D``, ``z = -y (x1 - x2) + margin``: constant on each side, so only
    the hinge's jump ``1/D`` within ``u K_KINK (|x1| + |x2| + |margin|)`` of ``z = 0``;
    the same for ``input1`` and ``input2`` (``g2 = -g1``)."""
    _check_wrt(wrt, ("input1", "input2"), "margin_ranking_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    x1, x2, y = mp_array(input1), mp_array(input2), mp_array(target)
    m, u, d = _margin(margin), _unit_roundoff(input1), _denominator(reduction, x1.size)
    cond = _zeros(x1.shape)
    for idx in np.ndindex(x1.shape):
        z = -y[idx] * (x1[idx] - x2[idx]) + m
        cond[idx] = _kink(1 / d, z, abs(x1[idx]) + abs(x2[idx]) + abs(m), u)
    return GradientCondition(cond, _zeros(x1.shape), _zeros(x1.shape))


def hinge_embedding_loss_grad_condition(
    input, target, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input",
) -> GradientCondition:
    """``g = 1/D`` (``y = 1``) or ``-[margin - x >= 0]/D`` (``y = -1``): constant on each side;
    the jump ``1/D`` within ``u K_KINK (|x| + |margin|)`` of ``x = margin``."""
    _check_wrt(wrt, ("input",), "hinge_embedding_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    x, y = mp_array(input), mp_array(target)
    m, u, d = _margin(margin), _unit_roundoff(input), _denominator(reduction, x.size)
    cond = _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        if y[idx] != 1:
            cond[idx] = _kink(1 / d, m - x[idx], abs(x[idx]) + abs(m), u)
    return GradientCondition(cond, _zeros(x.shape), _zeros(x.shape))


def soft_margin_loss_grad_condition(
    input, target, size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "input"
) -> GradientCondition:
    r"""``g = -y sigma(z) / D``, ``z = -y x``: ``|x dg/dx| = |x| sigma(z) sigma(-z) / D`` and the
    (floating) target's ``|y dg/dy| <= (sigma(z) + |x| sigma(z) sigma(-z)) / D``, so
    ``c = (2 |x| sigma(z) sigma(-z) + sigma(z)) / D``. No cancellation: ``scale = 0``."""
    _check_wrt(wrt, ("input",), "soft_margin_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    x, y = mp_array(input), mp_array(target)
    d = _denominator(reduction, x.size)
    cond = _zeros(x.shape)
    for idx in np.ndindex(x.shape):
        z = -y[idx] * x[idx]
        s = _logistic(z)
        curvature = 2 * abs(x[idx]) * s * (1 - s) if mpmath.isfinite(z) else mpf(0)
        cond[idx] = (curvature + s) / d
    return GradientCondition(cond, _zeros(x.shape), _zeros(x.shape))


def multilabel_soft_margin_loss_grad_condition(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "input"
) -> GradientCondition:
    r"""``g = w_c [(1 - y) sigma(x) - y sigma(-x)] / (C D)`` (``binary_cross_entropy_with_logits``'
    without ``pos_weight``): ``|x dg/dx| = |w x| sigma(x) sigma(-x)``, ``|y dg/dy| = |w y|``,
    the summands (and the weight's perturbation) ``|w| (|1-y| sigma(x) + |y| sigma(-x))``,
    all over ``C D``. A backward pass computing ``sigma(x) - y`` loses ``u (sigma(x) + |y|)``
    absolutely, which the target's term already covers: ``scale = 0``.

    ``wrt``: ``target``/``weight`` -- ``oracle.gradients_binary``."""
    if wrt != "input":
        from .gradients_binary import multilabel_soft_margin_loss_wrt_condition

        return multilabel_soft_margin_loss_wrt_condition(
            input, target, weight, size_average, reduce, reduction, wrt=wrt
        )
    reduction = resolve_reduction(size_average, reduce, reduction)
    x = mp_array(input)
    rows, _ = _class_rows(x)
    ys = mp_array(target).reshape(rows.shape)
    n, c = rows.shape
    w = _class_weight(weight, c)
    d = _denominator(reduction, n)
    cond = _zeros(rows.shape)
    for i, k in np.ndindex(rows.shape):
        xv, yv = rows[i, k], ys[i, k]
        s, s_neg = _logistic(xv), _logistic(-xv)
        curvature = abs(xv) * s * s_neg if mpmath.isfinite(xv) else mpf(0)
        cond[i, k] = abs(w[k]) * (curvature + abs(yv) + abs(1 - yv) * s + abs(yv) * s_neg) / (c * d)
    return GradientCondition(cond.reshape(x.shape), _zeros(x.shape), _zeros(x.shape))


def _logistic(v: mpf) -> mpf:
    if v == mpmath.inf:
        return mpf(1)
    if v == -mpmath.inf:
        return mpf(0)
    return 1 / (1 + mpmath.exp(-v))


# ------------------------------------------------------------------ multi-class hinges


def multi_margin_loss_grad_condition(
    input, target, p: int = 1, margin: float = 1.0, weight=None, size_average=None, reduce=None,
    reduction: str = "mean", *, wrt: str = "input",
) -> GradientCondition:
    r"""Each class ``i != y`` with ``z_i = margin - x_y + x_i`` adds ``h_i = w_y p z_i^{p-1} / (C D)``
    to ``g_i`` (where ``z_i > 0``) and subtracts it from ``g_y``, ``S_i = |margin| + |x_y| + |x_i|``:

    * ``p = 1``: ``h_i`` is constant; the weight's perturbation moves it by ``|h_i|`` (in
      ``g_i`` and ``g_y``) and the hinge's jump ``|w_y|/(C D)`` is admitted within
      ``u K_KINK S_i`` of ``z_i = 0`` (module docstring);
    * ``p = 2``: ``h_i = 2 w_y z_i / (C D)`` is continuous; ``|x_i dh/dx_i| + |x_y dh/dx_y|``
      with the margin's rounding is ``2 |w_y| S_i / (C D)``, counted for an active class and
      for one within ``u K_KINK S_i`` of activating; plus ``|h_i|`` for the weight.

    ``g_y`` sums ``C - 1`` such terms: ``summation = sum_i |h_i|``, ``count = C - 1``.
    """
    _check_wrt(wrt, ("input",), "multi_margin_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    x = mp_array(input)
    rows, _ = _class_rows(x)
    n, c = rows.shape
    ys = _class_targets(target, n, c, "multi_margin_loss")
    w = _class_weight(weight, c)
    m, u, d = _margin(margin), _unit_roundoff(input), _denominator(reduction, n)
    cond, summation = _zeros(rows.shape), _zeros(rows.shape)
    for r in range(n):
        y = ys[r]
        base = abs(w[y]) / (c * d)
        for i in range(c):
            if i == y:
                continue
            z = m - rows[r, y] + rows[r, i]
            size = abs(m) + abs(rows[r, y]) + abs(rows[r, i])
            h = (base if p == 1 else 2 * base * z) if z > 0 else mpf(0)
            if p == 1:
                extra = h + _kink(base, z, size, u)
            else:
                near = z > -u * K_KINK * size
                extra = h + (2 * base * size if near else mpf(0))
            cond[r, i] += extra
            cond[r, y] += extra
            summation[r, y] += h
    return GradientCondition(cond.reshape(x.shape), _zeros(x.shape), summation.reshape(x.shape), max(c - 1, 0))


def multilabel_margin_loss_grad_condition(
    input, target, size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "input"
) -> GradientCondition:
    """Each listed ``j`` and non-target ``i`` with ``z = 1 - x_j + x_i > 0`` adds ``1/(C D)`` to
    ``g_i`` and subtracts it from ``g_j``: constant, so only the jump ``1/(C D)`` within
    ``u K_KINK (1 + |x_j| + |x_i|)`` of ``z = 0``; the terms a component sums are its
    ``summation`` (``count`` the most terms one component adds)."""
    _check_wrt(wrt, ("input",), "multilabel_margin_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    x = mp_array(input)
    rows, _ = _class_rows(x)
    n, c = rows.shape
    t_rows = np.asarray(target).reshape(n, c)
    u, d = _unit_roundoff(input), _denominator(reduction, n)
    base = 1 / (c * d)
    cond, summation = _zeros(rows.shape), _zeros(rows.shape)
    count = 0
    for r in range(n):
        listed = _listed_targets(t_rows[r], c)
        others = [i for i in range(c) if i not in listed]
        count = max(count, len(listed), len(others))
        for j in listed:
            for i in others:
                z = 1 - rows[r, j] + rows[r, i]
                jump = _kink(base, z, 1 + abs(rows[r, j]) + abs(rows[r, i]), u)
                cond[r, i] += jump
                cond[r, j] += jump
                if z > 0:
                    summation[r, i] += base
                    summation[r, j] += base
    return GradientCondition(cond.reshape(x.shape), _zeros(x.shape), summation.reshape(x.shape), count)


# ------------------------------------------------------------------ cosine


def _cosine_second_order(a: np.ndarray, b: np.ndarray, e: mpf):
    r"""For ``f = a . b / (F_a F_b)``, ``F = max(||.||, e)``: ``(df/da, sens, summands)`` with
    ``sens_i = sum_k |a_k d^2f/da_i da_k| + |b_k d^2f/da_i db_k|`` and the magnitudes of the
    two summands of ``df/da_i = b_i/(F_a F_b) - [||a|| > e] f_a a_i / ||a||^2``.

    With ``A = [||a|| > e]``, ``B = [||b|| > e]``, ``n = ||.||``, ``s = a . b``:

    * ``d/da_k``: ``-A b_i a_k / (n_a^3 F_b) - A/F_b (b_k a_i / n_a^3 + s [i=k] / n_a^3 - 3 s a_i a_k / n_a^5)``
    * ``d/db_k``: ``[i=k] / (F_a F_b) - B b_i b_k / (F_a n_b^3) - A a_i / n_a^3 (a_k / F_b - B s b_k / n_b^3)``

    (``e = 0``: the plain cosine; a zero vector is the caller's business.)
    """
    na = mpmath.sqrt(mpmath.fsum(v * v for v in a))
    nb = mpmath.sqrt(mpmath.fsum(v * v for v in b))
    big_a, big_b = na > e, nb > e
    fa, fb = max(na, e), max(nb, e)
    s = mpmath.fsum(x * y for x, y in zip(a, b))
    dim = len(a)
    grad, sens, summands = [], [], []
    for i in range(dim):
        first = b[i] / (fa * fb)
        second = s * a[i] / (na ** 3 * fb) if big_a else mpf(0)
        grad.append(first - second)
        summands.append(abs(first) + abs(second))
        total = mpf(0)
        for k in range(dim):
            daa = mpf(0)
            if big_a:
                daa = -b[i] * a[k] / (na ** 3 * fb) - (
                    b[k] * a[i] / na ** 3 + (s / na ** 3 if i == k else 0) - 3 * s * a[i] * a[k] / na ** 5
                ) / fb
            dab = (mpf(1) if i == k else mpf(0)) / (fa * fb)
            if big_b:
                dab -= b[i] * b[k] / (fa * nb ** 3)
            if big_a:
                dab -= a[i] / na ** 3 * (a[k] / fb - (s * b[k] / nb ** 3 if big_b else 0))
            total += abs(a[k] * daa) + abs(b[k] * dab)
        sens.append(total)
    return grad, sens, summands


def _cosine_epsilon_second_order(a: np.ndarray, b: np.ndarray, eps: mpf):
    r"""For PyTorch's ``f = s / R``, ``R = sqrt(N_a N_b)``, ``N = ||.||^2 + eps``, ``s = a . b``:
    ``(df/da, sens, summands)`` as :func:`_cosine_second_order` (which has ``max(||.||, e)``
    instead), from ``g_i = df/da_i = b_i / R - f a_i / N_a`` and

    * ``d g_i/da_k = -b_i a_k / (R N_a) - g_k a_i / N_a - f [i=k] / N_a + 2 f a_i a_k / N_a^2``
    * ``d g_i/db_k = [i=k] / R - b_i b_k / (R N_b) - a_i / N_a (a_k / R - f b_k / N_b)``

    (``eps`` is a constant of the formula, not an input: not perturbed). ``eps = 0`` gives the
    plain cosine's (``tests/test_oracle_margin_gradients.py`` checks both against
    :func:`_cosine_second_order` and numerical differentiation).
    """
    na = mpmath.fsum(v * v for v in a) + eps
    nb = mpmath.fsum(v * v for v in b) + eps
    root = mpmath.sqrt(na * nb)
    f = mpmath.fsum(x * y for x, y in zip(a, b)) / root
    dim = len(a)
    grad = [b[i] / root - f * a[i] / na for i in range(dim)]
    summands = [abs(b[i] / root) + abs(f * a[i] / na) for i in range(dim)]
    sens = []
    for i in range(dim):
        total = mpf(0)
        for k in range(dim):
            daa = -b[i] * a[k] / (root * na) - grad[k] * a[i] / na - (f / na if i == k else 0) + 2 * f * a[i] * a[k] / na ** 2
            dab = (1 / root if i == k else 0) - b[i] * b[k] / (root * nb) - a[i] / na * (a[k] / root - f * b[k] / nb)
            total += abs(a[k] * daa) + abs(b[k] * dab)
        sens.append(total)
    return grad, sens, summands


def cosine_embedding_loss_grad_condition(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> GradientCondition:
    r"""``g = -+ dcos/da / D`` (``a`` the differentiated input): ``c_i`` is the sensitivity of
    ``dcos/da_i`` (:func:`_cosine_second_order`: both inputs perturbed) plus its two summands'
    magnitudes (they cancel where ``a`` and ``b`` are nearly parallel), over ``D``. For
    ``y = -1`` the hinge ``max(0, cos - margin)``'s jump ``|dcos/da_i| / D`` is admitted within
    ``u K_KINK S`` of ``cos = margin``, ``S`` the forward condition of the term
    (``2 (sigma + |cos|) + |cos| + |margin| + (ceil(log2 D) + 2)(sigma + |cos|)``,
    ``sigma = sum |a_i b_i| / (|a| |b|)``: the roundings of the dot product and norms,
    ``oracle.embedding``). A zero vector: ``inf`` (module docstring)."""
    return _cosine_embedding_condition(input1, input2, target, margin, size_average, reduce, reduction, wrt, mpf(0))


def torch_cosine_embedding_loss_grad_condition(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> GradientCondition:
    r"""The error model of :func:`oracle.embedding.torch_cosine_embedding_loss_grad`: as
    :func:`cosine_embedding_loss_grad_condition`, of PyTorch's epsilon cosine
    (:func:`_cosine_epsilon_second_order`); finite at a zero vector, where that cosine is
    smooth."""
    return _cosine_embedding_condition(
        input1, input2, target, margin, size_average, reduce, reduction, wrt, to_mpf(TORCH_COSINE_EMBEDDING_EPSILON)
    )


def paddle_cosine_embedding_loss_grad_condition(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> GradientCondition:
    r"""The error model of :func:`oracle.embedding.paddle_cosine_embedding_loss_grad`: as
    :func:`torch_cosine_embedding_loss_grad_condition` with Paddle's epsilon (1e-11 in the dtype)."""
    from .embedding import _paddle_cosine_epsilon

    return _cosine_embedding_condition(
        input1, input2, target, margin, size_average, reduce, reduction, wrt, _paddle_cosine_epsilon(input1)
    )


def _cosine_embedding_condition(input1, input2, target, margin, size_average, reduce, reduction, wrt, eps: mpf) -> GradientCondition:
    _check_wrt(wrt, ("input1", "input2"), "cosine_embedding_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    a, _ = _vectors("input1", input1)
    b, _ = _vectors("input2", input2)
    if wrt == "input2":
        a, b = b, a
    y = mp_array(target).reshape(-1)
    m, u = to_mpf(float(margin)), _unit_roundoff(input1)
    n = a.shape[0]
    d = _denominator(reduction, n)
    cond = _zeros(a.shape)
    for r in range(n):
        if eps == 0 and (all(v == 0 for v in a[r]) or all(v == 0 for v in b[r])):
            cond[r] = [mpmath.inf] * a.shape[1]
            continue
        if eps == 0:
            grad, sens, summands = _cosine_second_order(a[r], b[r], mpf(0))
        else:
            grad, sens, summands = _cosine_epsilon_second_order(a[r], b[r], eps)
        norm = mpmath.sqrt((mpmath.fsum(v * v for v in a[r]) + eps) * (mpmath.fsum(v * v for v in b[r]) + eps))
        cos = mpmath.fsum(p * q for p, q in zip(a[r], b[r])) / norm
        spread = mpmath.fsum(abs(p * q) for p, q in zip(a[r], b[r])) / norm
        size = 2 * (spread + abs(cos)) + abs(cos) + abs(m) + (_sum_error_factor(a.shape[1]) + 2) * (spread + abs(cos))
        active = y[r] == 1 or cos - m >= 0
        for i in range(a.shape[1]):
            smooth = sens[i] + summands[i] if active or abs(cos - m) <= u * K_KINK * size else mpf(0)
            jump = _kink(abs(grad[i]), cos - m, size, u) if y[r] != 1 else mpf(0)
            cond[r, i] = (smooth + jump) / d
    return GradientCondition(cond.reshape(np.shape(input1)), _zeros(np.shape(input1)), _zeros(np.shape(input1)))


# ------------------------------------------------------------------ triplet losses


def _own_power(v: mpf, d: mpf, q: mpf) -> mpf:
    """``|v / d|^{q-2}``, the diagonal of a p-norm's second derivative, at ``v = 0`` too:
    1 for ``q = 2`` (``d^2 ||v|| / dv_i^2 = 1/d`` there), 0 above, unbounded below (``q < 2``)."""
    if v != 0:
        return (abs(v) / d) ** (q - 2)
    return mpf(1) if q == 2 else (mpf(0) if q > 2 else mpmath.inf)


def _pnorm_second_order(a: np.ndarray, b: np.ndarray, p: float, eps: float, u: mpf):
    r"""For ``d = ||v||_p``, ``v = a - b + eps``: ``(dd/da, sens, jump)`` per component.

    ``dd/da_i = e_i = sign(v_i) |v_i / d|^{p-1}`` and
    ``de_i/dv_k = (p - 1)/d (|v_i / d|^{p-2} [i=k] - e_i e_k)``; each ``v_k`` is perturbed by
    ``|a_k| + |b_k| + eps`` (relative), so ``sens_i = sum_k |de_i/dv_k| (|a_k| + |b_k| + eps)``.
    Jumps: ``p = 1``'s ``sign(v_i)`` (PyTorch: 0 at ``v_i = 0``) within ``u K_KINK`` of that
    size, and at ``d = 0`` the direction is undefined (PyTorch's gradient is 0): every
    component may jump by ``|e_i| <= 1``; where every ``v_k`` is within ``u K_KINK`` of its
    size from 0 (e.g. ``eps`` rounded to the dtype cancels ``a - b``), by ``1 + |e_i|``. Scale: ``(p - 1)(ceil(log2 D) + 2) |e_i|``, the
    computed ``d``'s relative error (the forward model's) raised to the power ``p - 1``.
    Returns ``(e, sens, jump, scale)``.
    """
    e_ = to_mpf(float(eps))
    diff = _exact_differences(a, b, e_)
    size = [abs(x) + abs(y) + abs(e_) for x, y in zip(a, b)]
    q = to_mpf(p)
    d = _p_norm(diff, q)
    if d == 0:
        return _undefined_direction(len(diff), u)
    e, sens, jump, scale = _p_norm_derivative_terms(diff, size, d, q, u)
    if all(abs(v) <= u * K_KINK * s for v, s in zip(diff, size)):
        # Every component of v within its input perturbation of 0 (an eps rounded to the
        # dtype can cancel a - b exactly): the perturbed v may point anywhere or be 0
        # (PyTorch's gradient 0), so each component may jump by up to 1 + |e_i|.
        jump = [max(j, _kink(1 + abs(ei), mpf(0), mpf(0), u)) for j, ei in zip(jump, e)]
    return e, sens, jump, scale


def _undefined_direction(dim: int, u: mpf):
    """``(e, sens, jump, scale)`` at ``d = 0``: the direction is undefined (the oracle's
    gradient 0), so every component may jump by 1."""
    return [mpf(0)] * dim, [mpf(0)] * dim, [_kink(mpf(1), mpf(0), mpf(0), u)] * dim, [mpf(0)] * dim


def _p_norm_derivative_terms(diff: list, size: list, d: mpf, q: mpf, u: mpf, eps_term=None):
    r"""The p-norm's ``(e, sens, jump, scale)`` at ``d > 0``, shared by the spec's distance and
    MLX's (``eps_term(e_i)``: its eps's share of ``sens_i``): ``e_i = sign(v_i) |v_i / d|^{q-1}``,
    ``sens_i = sum_k (q - 1)/d |[i=k] |v_i/d|^{q-2} - e_i e_k| size_k``; for ``q = 1`` no
    sensitivity but ``sign(v_i)``'s jump within ``u K_KINK`` of its size. Scale: the computed
    ``d`` carries the forward model's relative error ``(ceil(log2 D) + 2) u`` (sum of powers,
    then the root), which the power ``q - 1`` of ``v_i / d`` amplifies."""
    dim = len(diff)
    e = [mpmath.sign(v) * (abs(v) / d) ** (q - 1) if v else mpf(0) for v in diff]
    scale = [(q - 1) * (_sum_error_factor(dim) + 2) * abs(v) for v in e]
    sens, jump = [], []
    for i in range(dim):
        if q == 1:
            sens.append(mpf(0))
            jump.append(_kink(mpf(1), diff[i], size[i], u))
            continue
        total = eps_term(e[i]) if eps_term is not None else mpf(0)
        for k in range(dim):
            own = _own_power(diff[i], d, q) if i == k else mpf(0)
            if size[k]:  # an unbounded own term (q < 2 at v_i = 0) times a zero size adds nothing
                total += (q - 1) / d * abs(own - e[i] * e[k]) * size[k]
        sens.append(total)
        jump.append(mpf(0))
    return e, sens, jump, scale


def _mlx_distance_second_order(a: np.ndarray, b: np.ndarray, p: float, eps: float, u: mpf):
    r"""For MLX's ``d = (sum_k |delta_k|^p + eps)^(1/p)``, ``delta = a - b``
    (:func:`oracle.embedding.mlx_distance`): ``(dd/da, sens, jump, scale)`` per component.

    ``e_i = sign(delta_i) |delta_i / d|^{p-1}`` and, as for the p-norm (eps only moves ``d``),
    ``de_i/d(delta_k) = (p - 1)/d (|delta_i / d|^{p-2} [i=k] - e_i e_k)``; each ``delta_k`` is
    perturbed by ``|a_k| + |b_k|`` (relative) and eps by itself: ``de_i/d eps = -(p - 1)/p e_i / d^p``.
    Jumps: ``p = 1``'s ``sign(delta_i)`` (``mx.abs``' derivative: 0 at 0) within ``u K_KINK`` of
    its size; at ``d = 0`` (``eps = 0``, ``a = b``) the direction is undefined (the oracle's
    gradient 0): every component may jump by 1, and by ``1 + |e_i|`` where ``eps = 0`` and every
    ``delta_k`` is within reach of 0. Scale: the p-norm's, ``(p - 1)(ceil(log2 D) + 2) |e_i|``.
    """
    from .embedding import _mlx_differences, mlx_distance

    e_, q = to_mpf(float(eps)), to_mpf(p)
    diff = _mlx_differences(a, b)
    size = [abs(x) + abs(y) for x, y in zip(a, b)]
    d, _ = mlx_distance(a, b, p, eps)
    if d == 0:
        return _undefined_direction(len(diff), u)
    # eps moves d: de_i/d eps = -(p - 1)/p e_i / d^p, eps perturbed by itself
    e, sens, jump, scale = _p_norm_derivative_terms(diff, size, d, q, u, eps_term=lambda ei: (q - 1) / q * abs(ei) * e_ / d**q)
    if e_ == 0 and all(abs(v) <= u * K_KINK * s for v, s in zip(diff, size)):
        jump = [max(j, _kink(1 + abs(ei), mpf(0), mpf(0), u)) for j, ei in zip(jump, e)]
    return e, sens, jump, scale


def _cosine_distance_second_order(a: np.ndarray, b: np.ndarray, u: mpf):
    """``d = 1 - f`` (:func:`_cosine_second_order` with the docs' eps): the same magnitudes."""
    grad, sens, summands = _cosine_second_order(a, b, to_mpf(COSINE_SIMILARITY_EPS))
    return [-g for g in grad], [s + m for s, m in zip(sens, summands)], [mpf(0)] * len(grad), [mpf(0)] * len(grad)


def _triplet_condition(anchor, positive, negative, margin, swap, reduction, distance, first, second, wrt) -> GradientCondition:
    """``g = [z >= 0] sum_terms coefficient dd(pair)/d(wrt) / D`` (``oracle.embedding._triplet_terms_of``),
    ``z = margin + d(a,p) - min(d(a,n), d(p,n))``: where the hinge is active or within reach,
    each term's distance sensitivity and jumps, plus its magnitude (the terms cancel where the
    directions agree); the hinge's jump ``|g_i|`` within ``u K_KINK S_z`` of ``z = 0`` (``S_z`` the
    forward condition plus scale of ``z``); for ``swap``, within reach of the tie
    ``d(a,n) = d(p,n)``, the jump of moving the negative term from one distance to the other.
    ``first(x, y, u)``/``second(x, y, u)``: ``(dd/dx, sens, jump, scale)`` / the same for
    ``dd/dy``; ``scale`` the working scale of the computed distance (:func:`_pnorm_second_order`)."""
    from .embedding import _triplet_shares, _triplet_terms_of

    a, _ = _vectors("anchor", anchor)
    pos, _ = _vectors("positive", positive)
    neg, _ = _vectors("negative", negative)
    m, u = to_mpf(float(margin)), _unit_roundoff(anchor)
    n, dim = a.shape
    d = _denominator(reduction, n)
    log_factor = _sum_error_factor(dim) + 2
    cond, scale = _zeros(a.shape), _zeros(a.shape)
    for r in range(n):
        pairs = {"ap": (a[r], pos[r]), "an": (a[r], neg[r]), "pn": (pos[r], neg[r])}
        d_ap, c_ap = distance(a[r], pos[r])
        d_an, c_an = distance(a[r], neg[r])
        d_neg, c_neg, tie_near, d_pn = d_an, c_an, False, None
        if swap:
            d_pn, c_pn = distance(pos[r], neg[r])
            tie_near = abs(d_an - d_pn) <= u * K_KINK * (c_an + c_pn + log_factor * (d_an + d_pn))
            if d_pn < d_an:
                d_neg, c_neg = d_pn, c_pn
        share_an, share_pn = _triplet_shares(d_an, d_pn)
        z = m + d_ap - d_neg
        z_size = c_ap + c_neg + abs(m) + d_ap + d_neg + log_factor * (d_ap + d_neg)
        near = abs(z) <= u * K_KINK * z_size
        if not (z >= 0 or near):
            continue
        terms = _triplet_terms_of(wrt, share_an, share_pn)
        if tie_near:  # either distance may take the negative term: count both fully
            terms = _triplet_terms_of(wrt, mpf(1), mpf(1) if swap else mpf(0))
        parts = [
            (coefficient, pair, *(second if is_second else first)(*pairs[pair], u)) for coefficient, pair, is_second in terms
        ]
        exact_terms = _triplet_terms_of(wrt, share_an, share_pn)
        exact_parts = [
            (coefficient, (second if is_second else first)(*pairs[pair], u)[0]) for coefficient, pair, is_second in exact_terms
        ]
        for i in range(dim):
            total, working = mpf(0), mpf(0)
            for coefficient, _, e, sens, jump, term_scale in parts:
                if coefficient:
                    total += abs(coefficient) * (sens[i] + jump[i] + abs(e[i]))
                    working += abs(coefficient) * term_scale[i]
            if tie_near:  # the negative term moves between d(a,n) and d(p,n)
                total += _kink(sum((abs(e[i]) for c_, pair, e, _, _, _ in parts if c_ and pair != "ap"), mpf(0)), mpf(0), mpf(0), u)
            if near:
                total += _kink(abs(mpmath.fsum(c_ * e[i] for c_, e in exact_parts)), mpf(0), mpf(0), u)
            cond[r, i] = total / d
            scale[r, i] = working / d
    return GradientCondition(cond.reshape(np.shape(anchor)), scale.reshape(np.shape(anchor)), _zeros(np.shape(anchor)))


def _negated(second_order):
    """The second argument's ``(dd/dy, sens, jump)`` of a p-norm distance: ``dd/dy = -dd/dx``
    and the same second-derivative magnitudes."""

    def apply(x, y, u):
        e, sens, jump, scale = second_order(x, y, u)
        return [-v for v in e], sens, jump, scale

    return apply


def triplet_margin_loss_grad_condition(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "anchor",
) -> GradientCondition:
    """See :func:`_triplet_condition` and :func:`_pnorm_second_order` (``wrt``: ``anchor``,
    ``positive`` or ``negative``)."""
    _check_wrt(wrt, ("anchor", "positive", "negative"), "triplet_margin_loss")
    reduction = resolve_reduction(size_average, reduce, reduction)
    first = lambda x, y, u: _pnorm_second_order(x, y, p, eps, u)  # noqa: E731
    return _triplet_condition(
        anchor, positive, negative, margin, swap, reduction,
        lambda x, y: pairwise_distance(x, y, p, eps), first, _negated(first), wrt,
    )


def triplet_margin_with_distance_loss_grad_condition(
    anchor, positive, negative, *, distance_function: str | None = None, margin: float = 1.0, swap: bool = False,
    reduction: str = "mean", wrt: str = "anchor",
) -> GradientCondition:
    """As :func:`triplet_margin_loss_grad_condition` for a named distance (``"cosine"``:
    :func:`_cosine_distance_second_order`, symmetric in its two vectors)."""
    _check_wrt(wrt, ("anchor", "positive", "negative"), "triplet_margin_with_distance_loss")
    from .embedding import _distance

    if distance_function == "cosine":
        first = _cosine_distance_second_order
        second = lambda x, y, u: _cosine_distance_second_order(y, x, u)  # noqa: E731
    else:
        order = 1 if distance_function == "l1" else 2
        first = lambda x, y, u: _pnorm_second_order(x, y, order, PAIRWISE_EPS, u)  # noqa: E731
        second = _negated(first)
    return _triplet_condition(
        anchor, positive, negative, margin, swap, reduction, _distance(distance_function), first, second, wrt
    )


def mlx_triplet_loss_grad_condition(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "anchor",
) -> GradientCondition:
    """The condition of :func:`oracle.embedding.mlx_triplet_loss_grad` (the oracle convention
    ``mlx-triplet-eps-in-sum``): :func:`_triplet_condition` over :func:`_mlx_distance_second_order`."""
    _check_wrt(wrt, ("anchor", "positive", "negative"), "triplet_margin_loss")
    from .embedding import _check_mlx_triplet, mlx_distance

    _check_mlx_triplet(p, swap)
    reduction = resolve_reduction(size_average, reduce, reduction)
    first = lambda x, y, u: _mlx_distance_second_order(x, y, p, eps, u)  # noqa: E731
    return _triplet_condition(
        anchor, positive, negative, margin, False, reduction,
        lambda x, y: mlx_distance(x, y, p, eps), first, _negated(first), wrt,
    )
