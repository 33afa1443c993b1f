r"""``kl_div`` and ``entropy``, exactly.

``kl_div(input, target, reduction="mean", log_target=False)`` follows
``torch.nn.functional.kl_div``: ``input`` holds log-probabilities ``log q``, and
the pointwise term is

.. math::
    t = p (\log p - \log q)      \quad (\texttt{log\_target=False},\ p = \texttt{target})

    t = e^{s} (s - \log q)      \quad (\texttt{log\_target=True},\ s = \texttt{target} = \log p)

Reductions: ``none``; ``sum``; ``mean`` divides by the number of elements (the
docs warn that this is not the true KL divergence); ``batchmean`` divides the sum
by ``input.size(0)`` -- of ``input`` itself, before broadcasting -- and by 1 for a
0-d input, as PyTorch's Python wrapper does.
``input`` and ``target`` broadcast against each other.

Conventions: ``0 log 0 = 0`` -- a zero target probability (``p = 0``, or
``s = -inf`` with ``log_target``) contributes 0 whatever ``input`` is, including
``-inf`` (the standard convention of the KL divergence, ``0 log(0/q) = 0``); a
negative target is outside the domain of ``log`` and gives NaN.

``entropy(p, dim=-1) = -sum_c p_c log p_c`` with the same conventions. It is not
a ``torch.nn.functional`` function; the suite uses it for the identity
``H(P, Q) = H(P) + KL(P || Q)``.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .core import is_nan, mp_array
from .reduction import LossTerms, check_reduction, exact_sum, resolve_reduction

__all__ = ["entropy", "kl_div", "kl_div_grad", "kl_div_terms"]

KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _xlogx(p: mpf) -> mpf:
    """``p log p`` with ``0 log 0 = 0`` and NaN for ``p < 0``."""
    if is_nan(p) or p < 0:
        return mpmath.nan
    return mpf(0) if p == 0 else p * mpmath.log(p)


def _pointwise(q_log: mpf, target: mpf, log_target: bool) -> tuple[mpf, mpf, mpf]:
    """``(t, dt/dinput, cond)`` for one element; cond as in ``oracle.reduction``."""
    if log_target:
        if target == -mpmath.inf:
            return mpf(0), mpf(0), mpf(0)
        p = mpmath.exp(target)
        t = p * (target - q_log)
        # summands p s and p log q, their input sensitivity |p log q|, and the target's
        # own: |s dt/ds| = |s| |t + p|.
        return t, -p, abs(p) * (abs(target) + 2 * abs(q_log)) + abs(target * (t + p))
    if target == 0:
        return mpf(0), mpf(0), mpf(0)
    t = _xlogx(target) - target * q_log
    # summands p log p and p log q, the input's |p log q|, and the target's |p dt/dp| =
    # |p (log p + 1 - log q)|.
    target_sensitivity = abs(target * (mpmath.log(target) + 1 - q_log)) if target > 0 else mpf(0)
    return t, -target, abs(_xlogx(target)) + 2 * abs(target * q_log) + target_sensitivity


def _broadcast(input, target):
    input, target = np.asarray(input), np.asarray(target)
    try:
        return np.broadcast_arrays(mp_array(input), mp_array(target))
    except ValueError:
        raise ValueError(
            f"input of shape {input.shape} and target of shape {target.shape} do not broadcast"
        ) from None


def kl_div_terms(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False
) -> LossTerms:
    """The elementwise decomposition of :func:`kl_div` (module docstring)."""
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction, KL_REDUCTIONS)
    x, y = _broadcast(input, target)
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        terms[idx], _, cond[idx] = _pointwise(x[idx], y[idx], log_target)
    if reduction == "mean":
        denominator = mpf(x.size)
    elif reduction == "batchmean":
        # PyTorch divides by input.size(0): the input's own first dimension, not the
        # broadcast shape's, and not at all for a 0-d input.
        shape = np.shape(input)
        denominator = mpf(shape[0] if shape else 1)
    else:
        denominator = None
    return LossTerms(
        terms=terms,
        condition=cond,
        scale=np.full(x.shape, mpf(0), dtype=object),
        reduction="mean" if reduction == "batchmean" else reduction,
        denominator=denominator,
    )


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    r"""Exact ``torch.nn.functional.kl_div`` (module docstring)."""
    return kl_div_terms(input, target, size_average, reduce, reduction, log_target).value


def kl_div_grad(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False,
    wrt: str = "input",
) -> np.ndarray:
    """Exact gradient of the output's sum w.r.t. ``input``: ``-p`` (``-e^s``), scaled by
    the reduction's denominator; 0 where the target probability is 0.

    ``wrt="target"``: ``oracle.gradients_divergence`` (``log p + 1 - x``, ``-inf`` at ``p = 0``).
    """
    if wrt != "input":
        from .gradients_divergence import kl_div_grad_wrt

        return kl_div_grad_wrt(input, target, size_average, reduce, reduction, log_target, wrt=wrt)
    lt = kl_div_terms(input, target, size_average, reduce, reduction, log_target)
    x, y = _broadcast(input, target)
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        g = _pointwise(x[idx], y[idx], log_target)[1]
        grad[idx] = g / lt.denominator if lt.denominator is not None else g
    return _sum_to_shape(grad, np.shape(input))


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting: sum (exactly) over the axes ``input`` was broadcast along."""
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if not axes:
        return grad
    moved = np.moveaxis(grad, axes, tuple(range(len(axes))))
    flat = moved.reshape((-1, *moved.shape[len(axes):]))
    out = np.empty(flat.shape[1:], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = exact_sum(flat[(slice(None), *idx)])
    return out.reshape(shape)


def entropy(p, dim: int = -1):
    r"""Shannon entropy ``H(p) = -sum_c p_c log p_c`` along ``dim`` (nats; ``0 log 0 = 0``).

    Returns an mpf for a 1-d ``p``, else an object array without ``dim``.
    """
    exact = mp_array(p)
    moved = np.moveaxis(exact, dim, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = -exact_sum([_xlogx(v) for v in moved[idx]])
    return out[()] if out.ndim == 0 else out
