r"""Documented framework formulas that differ from the spec, evaluated exactly.

When a framework documents a formula other than PyTorch's (Keras clips
probabilities at ``epsilon = 1e-7``; ...), that difference is a *semantic
deviation*, not an accuracy failure. To still grade the framework's accuracy
under its own semantics, the oracle evaluates the framework's documented formula
too. Each convention here is a ``*_terms`` function with the same signature as
the spec loss it replaces (returning :class:`~oracle.reduction.LossTerms`), and
an expectations entry names it (``convention = "keras-bce-clip"``): a case that
fails against the spec is then judged against the convention instead.

Every convention's docstring cites where the framework documents it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath import mpf

from .binary import _elementwise_inputs, _mean_denominator, _target_times
from .core import is_nan, mp_array
from .reduction import LossTerms, check_reduction, resolve_reduction

__all__ = ["CONVENTIONS", "Convention", "convention_for"]

KERAS_EPSILON = mpf(1e-7)  # keras.config.epsilon() default: the float64 value of 1e-7


@dataclass(frozen=True)
class Convention:
    name: str
    loss: str  # the spec function it stands in for
    terms: Callable[..., LossTerms]
    citation: str


def _clip(v: mpf, lo: mpf, hi: mpf) -> mpf:
    return min(max(v, lo), hi)


def keras_binary_cross_entropy_terms(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean",
    *, epsilon: mpf = KERAS_EPSILON,
) -> LossTerms:
    r"""Keras ``binary_crossentropy`` on probabilities (``from_logits=False``):

    .. math:: t = -w [y \log(\mathrm{clip}(x, \epsilon, 1-\epsilon)) + (1-y) \log(1 - \mathrm{clip}(x, \epsilon, 1-\epsilon))]

    with ``epsilon = keras.config.epsilon() = 1e-7`` (the spec clamps each log at
    -100 instead). The clip bounds are ``1e-7`` and ``1 - 1e-7`` as exact reals
    of the float64 constant; Keras forms them in the dtype, a difference far
    below the error bound. Source: ``keras/src/backend/tensorflow/nn.py``
    (``binary_crossentropy``: ``output = clip(output, epsilon, 1 - epsilon)``).
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        if is_nan(xi):
            terms[idx] = cond[idx] = mpmath.nan
            continue
        clipped = _clip(xi, epsilon, 1 - epsilon)
        log_x, log_1mx = mpmath.log(clipped), mpmath.log1p(-clipped)
        first, second = _target_times(yi, log_x), _target_times(1 - yi, log_1mx)
        terms[idx] = -(wi * (first + second))
        inside = epsilon < xi < 1 - epsilon
        sensitivity = abs(wi * (yi - (1 - yi) * clipped / (1 - clipped))) if inside else mpf(0)
        cond[idx] = sensitivity + abs(yi * wi * (log_x - log_1mx)) + abs(wi * first) + abs(wi * second)
    return LossTerms(terms, cond, np.full(x.shape, mpf(0), dtype=object), reduction, _mean_denominator(reduction, x.size))


def keras_kl_divergence_terms(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False,
    *, epsilon: mpf = KERAS_EPSILON,
) -> LossTerms:
    r"""Keras ``kl_divergence(y_true, y_pred)`` expressed in the spec's arguments
    (``input = log q``, ``target = p``): both are clipped to ``[epsilon, 1]`` before
    ``p log(p / q)``, so zero targets contribute ``epsilon log(epsilon / q)`` and
    tiny ``q`` are raised to ``epsilon``. Source: ``keras/src/losses/losses.py``
    (``kl_divergence``: ``y_true = clip(y_true, epsilon, 1)``, same for ``y_pred``).
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction, ("none", "mean", "sum", "batchmean"))
    x, p = np.broadcast_arrays(mp_array(np.asarray(input)), mp_array(np.asarray(target)))
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        pi = mpmath.exp(p[idx]) if log_target else p[idx]
        q = mpmath.exp(x[idx])
        pc, qc = _clip(pi, epsilon, mpf(1)), _clip(q, epsilon, mpf(1))
        t = pc * (mpmath.log(pc) - mpmath.log(qc))
        terms[idx] = t
        cond[idx] = abs(pc * mpmath.log(pc)) + 2 * abs(pc * mpmath.log(qc)) + abs(pc) + abs(t)
    if reduction == "mean":
        denominator = mpf(x.size)
    elif reduction == "batchmean":
        shape = np.shape(input)  # the spec's batch size: input.size(0), before broadcasting
        denominator = mpf(shape[0] if shape else 1)
    else:
        denominator = None
    return LossTerms(
        terms, cond, np.full(x.shape, mpf(0), dtype=object),
        "mean" if reduction == "batchmean" else reduction, denominator,
    )


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in [
        Convention(
            "keras-bce-clip", "binary_cross_entropy", keras_binary_cross_entropy_terms,
            "https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class",
        ),
        Convention(
            "keras-kl-clip", "kl_div", keras_kl_divergence_terms,
            "https://keras.io/api/losses/probabilistic_losses/#kldivergence-class",
        ),
    ]
}


def convention_for(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise KeyError(f"no oracle convention named {name!r}: known {', '.join(CONVENTIONS)}") from None
