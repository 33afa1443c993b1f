r"""CTC gradients under the frameworks' conventions, exactly, and their error model.

The spec's gradient of ``ctc_loss`` w.r.t. ``log_probs`` taken as given is ``-gamma``
(:func:`oracle.ctc.ctc_loss_grad`; ``gamma_t(c)`` the posterior occupation of class ``c``
at frame ``t``). No framework returns it:

* ``tf.nn.ctc_loss``, ``optax.losses.ctc_loss`` and Paddle's warp-ctc take *logits* ``x``
  and normalize them (``log_softmax``) themselves, so their gradient is the exact
  derivative of ``CTC(log_softmax(x))`` w.r.t. ``x``:

  .. math:: \partial \ell / \partial x_{t,c} = \mathrm{softmax}(x_t)_c - \gamma_t(c)

  (the chain rule through ``log_softmax``, with ``sum_c gamma_t(c) = 1`` on every used
  frame). :func:`ctc_loss_through_log_softmax_grad`, the convention
  ``ctc-gradient-through-log-softmax``.
* PyTorch's ``F.ctc_loss`` takes log-probabilities, but its backward returns
  ``exp(log_probs) - gamma`` (aten/src/ATen/native/LossCTC.cpp, ``ctc_loss_backward_cpu``:
  ``res = (exp(lp) - exp(res + nll - lp)) * gr``; pytorch#52241): the same formula with
  ``exp(x)`` for ``softmax(x)``, i.e. the gradient through a ``log_softmax`` it *assumes*
  produced ``log_probs``. For normalized rows the two agree; for rounded rows (every float
  row) they differ by ``exp(x) (1 - 1/sum_c exp(x_c))``, within the error model; for
  unnormalized input they differ by far. :func:`ctc_loss_exp_minus_occupation_grad`, the
  convention ``torch-ctc-gradient-exp-minus-occupation``.

``gamma`` is the same in both (it does not change when a frame's log-probabilities are
shifted by a constant: every path's probability is multiplied by the same factor).
Frames beyond ``T_n`` get 0, and so does a sequence whose infinite loss ``zero_infinity``
zeroes (PyTorch's backward zeroes it; TensorFlow and optax are composed that way by the
adapters); ``mean`` scales sequence ``n`` by ``1 / (N max(S_n, 1))``.

Exact zeros: where every path uses class ``c`` at frame ``t`` (every other class's
occupation is exactly 0, so ``gamma = 1`` exactly), ``q - gamma`` is formed as ``q - 1``,
exactly 0 where it is 0 (``expm1(x)`` at ``x = 0``; ``-sum_{c' != c} softmax_{c'}`` with every
other class masked), not as the difference of two roundings near 1, whose tiny residue Ziv's
loop could not decide in float64. Elsewhere the direct difference ``q - gamma``: the
complement form ``(q - 1) + sum_{c' != c} gamma`` would cancel catastrophically for a tiny
``q`` and round to an exact 0 at every precision (``x = -500``: ``e^-500 - gamma`` is
``2e-218``, not 0), which Ziv's loop cannot see either.

Error model (``suites/gradients.py``), per component with ``A`` the reduction's factor:

* ``condition = |A| (q h + 2 W gamma + q + gamma)``: ``h`` the sensitivity of ``q`` to a
  relative perturbation of its row (softmax: the row spread
  ``|x_c| (1 - p_c) + sum_{k != c} p_k |x_k|``; exp: ``|x_c|``), ``2 W gamma`` that of
  ``gamma`` (``W = sum_t max_c |x_{t,c}|`` over the used frames; a posterior covariance,
  bounded as in :func:`oracle.ctc_loss_grad_condition`), ``q + gamma`` the two summands;
* ``scale = |A| (W gamma + S q)``: the log-space recursion's absolute error in
  ``log alpha + log beta`` (of order ``u W``) is a relative one in ``gamma``; a softmax's
  ``p = exp(x - lse)`` has relative error ``u S`` with ``S`` its row's working scale
  (:attr:`oracle.activations.SoftmaxRow.working_scale`); exp of a float is correctly
  rounded to within a few ULPs, which ``K_OUT`` covers (``S = 0``).
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .activations import SoftmaxRow
from .core import mp_array
from .ctc import _forward_backward, _guard_bits, _occupation, _sequences, _single_path
from .gradients import GradientCondition, _zeros
from .reduction import check_reduction

__all__ = [
    "ctc_loss_exp_minus_occupation_grad",
    "ctc_loss_exp_minus_occupation_grad_condition",
    "ctc_loss_through_log_softmax_grad",
    "ctc_loss_through_log_softmax_grad_condition",
]


def _row_parts(row: list[mpf], normalize: bool) -> tuple[list[mpf], list[mpf], list[mpf], mpf]:
    """``(q, q - 1 exactly where 0, h, S)`` of one frame: ``q`` softmax or exp, ``h`` its
    sensitivity to the row's relative perturbation, ``S`` the working scale (module docstring)."""
    n = len(row)
    finite = [mpmath.isfinite(v) for v in row]
    if normalize:
        r = SoftmaxRow(list(row))
        p = r.probs
        spread = mpmath.fsum(abs(v) * p[k] for k, v in enumerate(row) if finite[k])
        h = [(abs(v) * (1 - p[k]) + spread - abs(v) * p[k]) if finite[k] else spread for k, v in enumerate(row)]
        less_one = [-mpmath.fsum(p[j] for j in range(n) if j != k) for k in range(n)]
        return p, less_one, h, r.working_scale
    q = [mpmath.exp(v) for v in row]
    less_one = [mpmath.expm1(v) for v in row]
    h = [abs(v) * qk if f else mpf(0) for v, qk, f in zip(row, q, finite)]
    return q, less_one, h, mpf(0)


def _per_sequence(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, normalize):
    """Yield ``(n, steps, factor, x_n, gamma, finite)`` per sequence, ``gamma`` None where the
    loss is infinite (``finite`` False) or there are no frames."""
    check_reduction(reduction)
    x, sequences, batched = _sequences(log_probs, targets, input_lengths, target_lengths, int(blank))
    n_seq = len(sequences)
    for i, (steps, label) in enumerate(sequences):
        xi = x[:, i, :]
        factor = 1 / (mpf(max(len(label), 1)) * n_seq) if reduction == "mean" else mpf(1)
        with mpmath.workprec(mpmath.mp.prec + _guard_bits(xi, steps)):
            y = np.vectorize(mpmath.exp, otypes=[object])(xi)
            p, alpha, beta, ext = _forward_backward(y, steps, label, int(blank))
            if p == 0 or steps == 0:
                yield i, steps, factor, xi, None, p != 0, x.shape, batched
                continue
            gamma = _occupation(p, alpha, beta, ext, y, steps, xi.shape[1], _single_path(y, steps, ext, int(blank)))
        yield i, steps, factor, xi, gamma, True, x.shape, batched


def _grad(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, normalize) -> np.ndarray:
    grad = None
    batched = True
    for i, steps, factor, xi, gamma, finite, shape, batched in _per_sequence(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, normalize
    ):
        if grad is None:
            grad = np.full(shape, mpf(0), dtype=object)
        if not finite:
            if not zero_infinity:
                grad[:steps, i, :] = mpmath.nan  # the loss is +inf: no gradient
            continue
        if gamma is None:
            continue
        for t in range(steps):
            row = list(xi[t])
            q, less_one, _, _ = _row_parts(row, normalize)
            for c in range(len(row)):
                if gamma[t, c] != 0 and all(gamma[t, k] == 0 for k in range(len(row)) if k != c):
                    g = less_one[c]  # gamma is exactly 1: q - 1, exactly 0 where it is 0
                else:
                    g = q[c] - gamma[t, c]
                grad[t, i, c] = factor * g
    if grad is None:  # no sequences: nothing to differentiate
        grad = np.full(np.shape(log_probs), mpf(0), dtype=object)
        return grad
    return grad if batched else grad[:, 0, :]


def _condition(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, normalize) -> GradientCondition:
    cond = scale = None
    batched = True
    for i, steps, factor, xi, gamma, finite, shape, batched in _per_sequence(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, normalize
    ):
        if cond is None:
            cond, scale = _zeros(shape), _zeros(shape)
        if gamma is None:
            if not finite and not zero_infinity:
                cond[:steps, i, :] = scale[:steps, i, :] = mpmath.nan
            continue
        working = mpmath.fsum(max((abs(v) for v in xi[t] if mpmath.isfinite(v)), default=mpf(0)) for t in range(steps))
        a = abs(factor)
        for t in range(steps):
            row = list(xi[t])
            q, _, h, row_scale = _row_parts(row, normalize)
            for c in range(len(row)):
                gm = gamma[t, c]
                cond[t, i, c] = a * (q[c] * h[c] + 2 * working * gm + q[c] + gm)
                scale[t, i, c] = a * (working * gm + row_scale * q[c])
    if cond is None:
        cond, scale = _zeros(np.shape(log_probs)), _zeros(np.shape(log_probs))
    elif not batched:
        cond, scale = cond[:, 0, :], scale[:, 0, :]
    return GradientCondition(cond, scale, _zeros(cond.shape))


def _check_wrt(wrt: str) -> None:
    if wrt != "log_probs":
        raise ValueError(f"ctc_loss has no differentiable parameter {wrt!r}: only log_probs")


def ctc_loss_through_log_softmax_grad(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False, wrt: str = "log_probs",
) -> np.ndarray:
    r"""``d/dx sum(ctc_loss(log_softmax(x), ...)) = A (softmax(x) - gamma)`` (module docstring):
    the gradient of ``tf.nn.ctc_loss``, ``optax.losses.ctc_loss`` and Paddle's warp-ctc, which
    take logits. NaN on a sequence whose loss is ``+inf`` (undefined), 0 where
    ``zero_infinity`` zeroes it and beyond ``T_n``."""
    _check_wrt(wrt)
    return _grad(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, True)


def ctc_loss_through_log_softmax_grad_condition(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False, wrt: str = "log_probs",
) -> GradientCondition:
    """The error model of :func:`ctc_loss_through_log_softmax_grad` (module docstring)."""
    _check_wrt(wrt)
    return _condition(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, True)


def ctc_loss_exp_minus_occupation_grad(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False, wrt: str = "log_probs",
) -> np.ndarray:
    r"""``A (exp(x) - gamma)``: PyTorch's ``ctc_loss`` backward (module docstring; pytorch#52241).
    Equal to :func:`ctc_loss_through_log_softmax_grad` where every used frame is normalized."""
    _check_wrt(wrt)
    return _grad(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, False)


def ctc_loss_exp_minus_occupation_grad_condition(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False, wrt: str = "log_probs",
) -> GradientCondition:
    """The error model of :func:`ctc_loss_exp_minus_occupation_grad` (module docstring)."""
    _check_wrt(wrt)
    return _condition(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, False)
