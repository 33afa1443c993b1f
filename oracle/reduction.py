"""Reductions and the per-term decomposition every loss returns.

PyTorch's losses compute a tensor of per-element terms ``t_j`` (what
``reduction="none"`` returns) and then reduce it: ``"sum"`` adds the terms,
``"mean"`` divides that sum by a loss-specific *denominator* (the number of
elements, or the sum of the selected class weights for ``cross_entropy`` and
``nll_loss``), and ``kl_div``'s ``"batchmean"`` divides by the batch size.

A loss oracle returns a :class:`LossTerms`: the exact terms, the reduction, the
denominator, and two per-term quantities the error model needs (see
``suites/verdict.py``):

* ``condition[j]`` — ``sum_i |x_i * dt_j/dx_i|`` over the term's floating inputs
  (logits or probabilities *and* floating targets: DESIGN.md's mixed-stable model
  perturbs every floating input), plus the magnitudes of the summands the formula
  adds (so the bound covers the rounding of each summand);
* ``scale[j]`` — the term's absolute working scale ``s_j``: how large the
  quantities are that the standard stable algorithm necessarily adds and
  subtracts (``max |x|`` for softmax losses, ``|x|`` for sigmoid losses);
* ``inner_sum[j]`` (optional, with ``inner_count``) — for an output element whose
  formula contains a sum of ``inner_count`` addends computed by the algorithm
  (softmax's row sum ``S = sum_k e^{x_k - m}``), the size of the error that sum's
  rounding causes in the element per unit of relative error of the sum:
  ``p_c`` for ``softmax`` (``p_c = e_c / S``) and 1 for ``log_softmax``
  (``log S`` moves by ``dS/S``). The verdict multiplies it by the summation
  constant of ``inner_count`` addends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from .core import exact_add

__all__ = ["REDUCTIONS", "LossTerms", "divide", "exact_sum", "resolve_reduction"]

REDUCTIONS = ("none", "mean", "sum")


def resolve_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """The reduction PyTorch documents for the legacy ``size_average``/``reduce`` pair.

    From the docs of every ``torch.nn`` loss: both are deprecated; "specifying
    either of those two args will override reduction". When either is given,
    a ``None`` among them counts as its default ``True``; ``reduce=False``
    means no reduction, otherwise ``size_average=False`` means sum, else mean.
    """
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(
            f"reduction={reduction!r} is not valid: expected one of {', '.join(map(repr, allowed))}"
        )


def exact_sum(values: Any) -> mpf:
    """The exact sum of mpf values (:func:`oracle.core.exact_add`; the order does not matter).

    Terms are exact or carry their full working precision; keeping their sum
    exact preserves tiny parts (a ``log1p`` tail far below the working precision)
    that can decide on which side of a rounding midpoint the result lies.
    """
    total = mpf(0)
    for v in np.asarray(values, dtype=object).reshape(-1):
        total = exact_add(total, v)
    return total


def divide(numerator: mpf, denominator: mpf) -> mpf:
    """IEEE-style division: x/0 is ±inf and 0/0 (or nan/0) is nan, never an exception;
    otherwise precise enough to keep every bit of the numerator's information.

    mpmath raises ZeroDivisionError where IEEE arithmetic (and so every framework)
    yields a special value; the spec's mean over zero weight is 0/0 = nan.
    """
    if denominator == 0:
        if numerator == 0 or numerator != numerator:
            return mpmath.nan
        return mpmath.inf if numerator > 0 else -mpmath.inf
    # At a precision covering both operands' bits (+64), not the working precision: an exact
    # sum may carry a tail far below it (exact_add's sticky bit, e.g. log1p(e^-10016) on top of
    # 10016), which decides a rounding at a half-way point and must survive the mean's division.
    bits = sum(int(v._mpf_[3]) for v in (numerator, denominator) if mpmath.isfinite(v) and v != 0)
    return mpmath.fdiv(numerator, denominator, prec=max(mpmath.mp.prec, bits + 64))


@dataclass(frozen=True)
class LossTerms:
    """Exact per-term decomposition of one loss evaluation (see module docstring).

    ``terms``, ``condition`` and ``scale`` are object ndarrays of ``mpf`` with
    the shape of the ``reduction="none"`` output (``condition`` and ``scale`` may be
    float64 ndarrays instead: the arb fast path's float64 estimates, which only size
    the tolerance). ``denominator`` is ``None`` unless the reduction divides.
    """

    terms: np.ndarray
    condition: np.ndarray
    scale: np.ndarray
    reduction: str
    denominator: mpf | None = None
    inner_sum: np.ndarray | None = None
    inner_count: int = 0

    @property
    def count(self) -> int:
        """How many terms a reduction adds up (drives the summation error term)."""
        return int(self.terms.size)

    @property
    def value(self) -> Any:
        """The loss's output: the terms themselves, or their reduction.

        A mean over a zero denominator is NaN, whatever the sum: every element
        ignored, every selected class weight zero, or no elements. PyTorch (the
        tie-breaker) divides the NLL part 0/0 first, so a nonzero label-smoothing
        sum over a zero weight sum is NaN there too, not infinity.
        """
        if self.reduction == "none":
            return self.terms
        total = exact_sum(self.terms)
        if self.reduction == "sum":
            return total
        assert self.denominator is not None, "a dividing reduction needs its denominator"
        if self.denominator == 0:
            return mpmath.nan
        return divide(total, self.denominator)
