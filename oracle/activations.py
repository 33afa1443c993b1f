"""Softmax and sigmoid, exactly: the building blocks of the classification losses.

The formulas are evaluated in forms that never subtract two large, nearly equal
quantities, so that the working precision needed for a correctly rounded result
does not depend on how large the logits are:

* logit differences ``x_k - m`` are formed exactly (``mpmath.fsub(..., exact=True)``);
* with ``m = max_k x_k`` attained at ``k*`` and ``T = sum_{k != k*} exp(x_k - m)``,

  .. math:: \\operatorname{lse}(x) - x_c = (m - x_c) + \\log(1 + T),

  a sum of two non-negative numbers, ``log1p`` keeping ``T`` even when
  ``T < 2^{-p}`` (logits ``[40, 0]``: ``CE = log1p(e^{-40}) = 4.2e-18``);
* ``softplus(x) = log(1 + e^x)`` is ``log1p(e^x)`` for ``x <= 0`` and
  ``x + log1p(e^{-x})`` for ``x > 0``.

Special values (IEEE evaluation of the max-shifted formula gives the same):

* a NaN anywhere in a softmax row makes the whole row NaN;
* a ``+inf`` logit makes its row NaN: with two or more ``+inf`` logits the
  limit does not exist, and the spec does not single out the one-``+inf`` case;
* ``-inf`` logits are *masked* classes: probability 0, log-probability ``-inf``;
  a row of only ``-inf`` is NaN (0/0);
* ``sigmoid(+-inf) = 1, 0``; ``softplus(+inf) = inf``, ``softplus(-inf) = 0``.
"""

from __future__ import annotations

from functools import cached_property

import mpmath
import numpy as np
from mpmath import mpf

from .core import exact_add, is_nan, mp_array
from .reduction import LossTerms

__all__ = [
    "SoftmaxRow",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_terms",
    "logistic",
    "sigmoid",
    "sigmoid_terms",
    "softmax",
    "softmax_terms",
    "softplus",
]


class SoftmaxRow:
    """Exact softmax quantities of one row of logits (a list of mpf).

    Evaluated lazily at the caller's working precision. ``defined`` is False when
    the row is NaN by the conventions above; then every quantity is NaN.
    """

    def __init__(self, logits: list[mpf]):
        self.x = logits
        self.defined = not (
            any(is_nan(v) or v == mpmath.inf for v in logits)
            or all(v == -mpmath.inf for v in logits)
        )

    @cached_property
    def _shifted(self) -> tuple[mpf, list[mpf], mpf]:
        finite = [v for v in self.x if mpmath.isfinite(v)]
        m = max(finite)
        k_star = self.x.index(m)
        e = [mpmath.exp(mpmath.fsub(v, m, exact=True)) for v in self.x]
        tail = mpmath.fsum(e[:k_star] + e[k_star + 1 :])
        return m, e, tail

    @property
    def max_logit(self) -> mpf:
        return self._shifted[0] if self.defined else mpmath.nan

    @cached_property
    def log1p_tail(self) -> mpf:
        """``log(sum_k exp(x_k - m))``, computed as log1p of the non-max part."""
        return mpmath.log1p(self._shifted[2]) if self.defined else mpmath.nan

    def neg_log_prob(self, c: int) -> mpf:
        """``lse(x) - x_c = -log softmax(x)_c >= 0`` (``inf`` for a masked class)."""
        if not self.defined:
            return mpmath.nan
        m = self._shifted[0]
        # Exact addition keeps log1p(T) even when it is far below 2**-prec of m - x_c
        # (logits thousands apart): whether the value sits above or below a rounding
        # midpoint can hinge on it.
        return exact_add(mpmath.fsub(m, self.x[c], exact=True), self.log1p_tail)

    def prob(self, c: int) -> mpf:
        """``softmax(x)_c = exp(x_c - m) / (1 + T)``."""
        if not self.defined:
            return mpmath.nan
        _, e, tail = self._shifted
        return e[c] / (1 + tail)

    def complement(self, c: int) -> mpf:
        """``1 - softmax(x)_c`` without cancellation: ``T / (1 + T)`` at the row's maximum
        (``T`` the other classes' shifted sum), ``1 - p_c`` elsewhere (``p_c <= 1/2`` there).
        ``1 - p`` formed from a ``p`` within ``2^-prec`` of 1 would be an exact 0 where the
        value is ``e^-200``: a cross_entropy gradient at a confident target class."""
        if not self.defined:
            return mpmath.nan
        m, _, tail = self._shifted
        if c == self.x.index(m):
            return tail / (1 + tail)
        return 1 - self.prob(c)

    @cached_property
    def probs(self) -> list[mpf]:
        return [self.prob(c) for c in range(len(self.x))]

    @cached_property
    def working_scale(self) -> mpf:
        """``max_c |x_c| + log(1 + T)`` over finite logits: bounds |x_c| and |lse|.

        The standard algorithm adds and subtracts quantities this large, so its
        absolute error is of order ``u`` times this scale (DESIGN.md, error model).
        """
        finite = [abs(v) for v in self.x if mpmath.isfinite(v)]
        if not finite:
            return mpf(0)
        return max(finite) + (self.log1p_tail if self.defined else 0)


def _rows_along(x: np.ndarray, dim: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Move ``dim`` last and flatten the rest: rows of the softmax axis."""
    moved = np.moveaxis(x, dim, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def _rowwise(input: np.ndarray, dim: int, per_row) -> np.ndarray:
    x = mp_array(input)
    if x.ndim == 0:
        x = x.reshape(1)
        dim = 0
    rows, moved_shape = _rows_along(x, dim)
    out = np.empty(rows.shape, dtype=object)
    for i, row in enumerate(rows):
        out[i] = per_row(SoftmaxRow(list(row)))
    return np.moveaxis(out.reshape(moved_shape), -1, dim).reshape(np.shape(input))


def softmax(input: np.ndarray, dim: int) -> np.ndarray:
    r"""``softmax(x)_c = exp(x_c) / sum_k exp(x_k)`` along ``dim``.

    Same name and parameters as ``torch.nn.functional.softmax`` (``dim`` is
    required here: PyTorch's implicit-dim choice is deprecated). Special values:
    see the module docstring.
    """
    return _rowwise(input, dim, lambda r: r.probs)


def log_softmax(input: np.ndarray, dim: int) -> np.ndarray:
    r"""``log_softmax(x)_c = x_c - log sum_k exp(x_k) = -((m - x_c) + log1p(T))``."""
    return _rowwise(input, dim, lambda r: [mpmath.fneg(r.neg_log_prob(c), exact=True) for c in range(len(r.x))])


def softplus(x: mpf) -> mpf:
    """``log(1 + e^x)``, in a form free of cancellation for either sign of ``x``."""
    if is_nan(x):
        return mpmath.nan
    if x == mpmath.inf:
        return mpmath.inf
    if x <= 0:
        return mpmath.log1p(mpmath.exp(x))
    return exact_add(x, mpmath.log1p(mpmath.exp(-x)))  # keeps the tiny tail


def logistic(x: mpf) -> mpf:
    """``1 / (1 + e^{-x})`` for one mpf, with its limits at +-inf."""
    if is_nan(x):
        return mpmath.nan
    if x == mpmath.inf:
        return mpf(1)
    if x == -mpmath.inf:
        return mpf(0)
    return 1 / (1 + mpmath.exp(-x))


def sigmoid(input: np.ndarray) -> np.ndarray:
    r"""``sigmoid(x) = 1 / (1 + e^{-x})``, elementwise (``torch.sigmoid``)."""
    x = mp_array(input)
    return np.vectorize(logistic, otypes=[object])(x) if x.size else x


def log_sigmoid(input: np.ndarray) -> np.ndarray:
    r"""``log sigmoid(x) = -softplus(-x)``, elementwise (``F.logsigmoid``)."""
    x = mp_array(input)
    return np.vectorize(lambda v: -softplus(-v), otypes=[object])(x) if x.size else x


def _activation_terms(input: np.ndarray, value: np.ndarray, cond: np.ndarray, scale: np.ndarray, inner_sum=None, dim=None):
    count = 0
    if inner_sum is not None:
        shape = np.shape(input)
        count = int(shape[dim]) if len(shape) else 1
    return LossTerms(terms=value, condition=cond, scale=scale, reduction="none", inner_sum=inner_sum, inner_count=count)


def softmax_terms(input: np.ndarray, dim: int):
    """:func:`softmax` with its error-model decomposition (``oracle.reduction``).

    ``cond_c = p_c (|x_c| (1 - p_c) + sum_{j != c} |x_j| p_j)`` from
    ``dp_c/dx_j = p_c ([c = j] - p_j)``; no absolute scale: the relative error of
    ``exp(x_c - m)`` is covered by the input perturbations. The row sum
    ``S = sum_k e^{x_k - m}`` of ``n`` addends is computed by the algorithm: its
    summation error is a relative error of every ``p_c = e_c / S``, so
    ``inner_sum_c = p_c`` over ``n`` addends (the verdict's summation constant).
    """
    value = softmax(input, dim)
    cond = _rowwise(input, dim, lambda r: _softmax_condition(r, log=False))
    inner = np.vectorize(abs, otypes=[object])(value) if value.size else value
    return _activation_terms(input, value, cond, np.full(value.shape, mpf(0), dtype=object), inner, dim)


def log_softmax_terms(input: np.ndarray, dim: int):
    """:func:`log_softmax` with its decomposition: ``cond_c = |x_c| (1 - p_c) +
    sum_{j != c} |x_j| p_j`` and the softmax working scale ``max |x| + log(1 + T)``
    (the algorithm forms ``x_c - lse``, both of that size). The row sum ``S`` of
    ``n`` addends is computed by the algorithm: a relative error ``delta`` of ``S``
    moves ``log S`` by ``delta``, so ``inner_sum_c = 1`` over ``n`` addends."""
    value = log_softmax(input, dim)
    cond = _rowwise(input, dim, lambda r: _softmax_condition(r, log=True))
    scale = _rowwise(input, dim, lambda r: [r.working_scale] * len(r.x))
    return _activation_terms(input, value, cond, scale, np.full(value.shape, mpf(1), dtype=object), dim)


def _softmax_condition(row: SoftmaxRow, *, log: bool) -> list[mpf]:
    if not row.defined:
        return [mpmath.nan] * len(row.x)
    p = row.probs
    finite = [(j, x) for j, x in enumerate(row.x) if mpmath.isfinite(x)]
    spread = mpmath.fsum(abs(x) * p[j] for j, x in finite)
    out = []
    for c, xc in enumerate(row.x):
        own = abs(xc) * (1 - p[c]) if mpmath.isfinite(xc) else mpf(0)
        rest = spread - (abs(xc) * p[c] if mpmath.isfinite(xc) else 0)
        out.append(own + rest if log else p[c] * (own + rest))
    return out


def sigmoid_terms(input: np.ndarray):
    """:func:`sigmoid` with ``cond = |x| sigma(x) (1 - sigma(x))`` and no absolute scale."""
    value = sigmoid(input)
    x = mp_array(input)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        s = value[idx]
        cond[idx] = abs(x[idx] * s * (1 - s)) if mpmath.isfinite(x[idx]) else mpf(0)
    return _activation_terms(input, value, cond, np.full(x.shape, mpf(0), dtype=object))
