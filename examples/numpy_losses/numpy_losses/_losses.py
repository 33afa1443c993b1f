r"""The losses, forward: written the way a kernel author writes them.

Every function takes and returns NumPy arrays, with ``torch.nn.functional``'s
parameters. Arithmetic runs in the input's dtype, except that the 2-byte types
(float16, bfloat16) are computed in float32 and rounded once at the end -- the
usual choice of a kernel with half-precision inputs. The output has the input's
dtype (0-d for ``sum`` and ``mean``). Invalid input raises ``ValueError`` with a
one-line message; the deprecated ``size_average``/``reduce`` arguments raise
``NotImplementedError`` (lossconf reports them *unsupported*), and so do
class-probability targets of ``cross_entropy``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "mse_loss"]

REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------------ helpers


def work_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for the 2-byte floats (float16, ml_dtypes' bfloat16), else ``dtype`` itself."""
    return np.dtype(np.float32) if np.dtype(dtype).itemsize < 4 else np.dtype(dtype)


def floats(a, work: np.dtype) -> np.ndarray:
    return np.asarray(a).astype(work)


def rounded(value, dtype: np.dtype) -> np.ndarray:
    """``value`` rounded to the input's ``dtype`` (beyond its max: inf, as IEEE rounds)."""
    with np.errstate(over="ignore"):
        return np.asarray(value).astype(dtype)


def check_options(reduction: str, size_average=None, reduce=None) -> None:
    if size_average is not None or reduce is not None:
        raise NotImplementedError("the deprecated size_average/reduce arguments")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {REDUCTIONS}")


def class_rows(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(C)`` -> ``(1, C)``; ``(N, C, d...)`` -> ``(N*d..., C)``; and the per-position shape."""
    if x.ndim == 0:
        raise ValueError("input must have a class dimension: (C), (N, C) or (N, C, d1, ...)")
    if x.ndim == 1:
        return x.reshape(1, -1), ()
    moved = np.moveaxis(x, 1, -1)
    return moved.reshape(-1, x.shape[1]), moved.shape[:-1]


def neg_log_softmax(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``r = -log softmax(x)`` per row, and the probabilities ``p = softmax(x)``.

    Shifted by the row's maximum ``m``: ``r_c = log(sum_k exp(x_k - m)) - (x_c - m)``.
    No ``exp`` can overflow (every ``x_k - m <= 0`` and one is 0, so the sum is in
    ``[1, C]``), and ``r_c`` is never the log of a rounded probability: a
    ``softmax`` that underflows to 0 still has a finite ``r_c``. A ``-inf`` logit is
    a masked class (``r_c = inf``, ``p_c = 0``); a ``+inf`` or NaN logit makes its
    row NaN, as does a row of only ``-inf``.
    """
    z = rows - np.max(rows, axis=1, keepdims=True)
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    return np.log(s) - z, e / s


# ------------------------------------------------------------------ cross entropy


def class_index_terms(input, target, weight, ignore_index, label_smoothing):
    """Per-position terms of ``cross_entropy`` with class-index targets.

    ``t_n = (1-eps) w[y_n] r[n, y_n] + eps/C sum_c w_c r[n, c]``, 0 where
    ``y_n == ignore_index``. Returns ``(terms, exponent, selected, out_shape, work)``:
    the terms are ``terms * 2**exponent`` (see :func:`_halved_terms`), and
    ``selected`` are the weights ``w[y_n]`` of the positions that count (0 where
    ignored): their sum is the ``mean``'s denominator.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise NotImplementedError("class-probability targets")
    work = work_dtype(input.dtype)
    rows, out_shape = class_rows(floats(input, work))
    n_classes = rows.shape[1]
    if weight is None:
        w = np.ones(n_classes, dtype=work)
    else:
        w = floats(weight, work)
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},), got {w.shape}")
    if target.shape != out_shape:
        raise ValueError(f"target must have shape {out_shape} for input {input.shape}, got {target.shape}")
    y = target.reshape(-1).astype(np.int64)
    ignored = y == ignore_index
    bad = ~ignored & ((y < 0) | (y >= n_classes))
    if bad.any():
        raise ValueError(f"target class {int(y[bad][0])} is out of range [0, {n_classes})")
    y = np.where(ignored, 0, y)
    zero = np.zeros((), dtype=work)
    # (1 - eps) and eps / C are formed in float64 and rounded once.
    keep = np.asarray(1.0 - label_smoothing).astype(work)
    spread = np.asarray(label_smoothing / n_classes).astype(work)
    with np.errstate(all="ignore"):
        r, _ = neg_log_softmax(rows)
        terms = _smoothed_terms(r, y, w, keep, spread, label_smoothing)
        exponent = 0
        finite_rows = np.all(np.isfinite(rows) | (rows == -np.inf), axis=1) & np.isfinite(w).all()
        if np.any(~np.isfinite(terms) & finite_rows & ~ignored):
            terms, exponent = _halved_terms(rows, y, w, keep, spread, label_smoothing), 1
        # Ignored rows are 0 whatever their logits (even a NaN row).
        terms = np.where(ignored, zero, terms)
    return terms.reshape(out_shape), exponent, np.where(ignored, zero, w[y]), out_shape, work


def _smoothed_terms(r, y, w, keep, spread, label_smoothing):
    terms = w[y] * r[np.arange(len(y)), y]
    if label_smoothing:
        # The smoothing sum is of (eps/C) w_c r_c, scaled *before* adding: the sum of
        # the r_c alone can overflow where the term does not. A masked class (r_c = inf)
        # adds w_c inf for any eps > 0, also when eps/C underflows the dtype (0 inf = NaN).
        smoothing = np.where(np.isinf(r), w * r, (spread * w) * r)
        terms = keep * terms + np.sum(smoothing, axis=1)
    return terms


def _halved_terms(rows, y, w, keep, spread, label_smoothing):
    """The terms over 2, for logits whose differences ``x_c - max`` overflow the dtype.

    ``r_c / 2 = log(s) / 2 - (x_c / 2 - m / 2)`` is finite for finite logits; the
    term can then be finite although an ``r_c`` is not (``(1-eps) r_y`` or
    ``eps/C r_c`` below the max). Halving is exact except for subnormal logits,
    whose rounding is far below the term's own.
    """
    m = np.max(rows, axis=1, keepdims=True)
    s = np.sum(np.exp(rows - m), axis=1, keepdims=True)
    half_r = np.log(s) / 2 - (rows / 2 - m / 2)
    return _smoothed_terms(half_r, y, w, keep, spread, label_smoothing)


def reduce_terms(terms: np.ndarray, reduction: str, denominator, exponent: int = 0) -> np.ndarray:
    """``none``, ``sum`` or ``mean`` (the sum over ``denominator``) of ``terms * 2**exponent``.

    NumPy sums pairwise: the rounding error grows like ``log2(n)``, not ``n``. A sum
    of finite terms can still overflow where the mean does not (terms near the
    dtype's max); then the terms are summed scaled by an exact power of two and the
    scale is put back after the division. The power of two goes back last, so a
    result overflows only if it is beyond the dtype's max. A mean over a zero denominator
    (every target ignored, every selected weight 0) is NaN whatever the sum, as in PyTorch,
    which divides the label-smoothing part and the 0/0 of the rest separately.
    """
    if reduction == "none":
        return np.ldexp(terms, exponent) if exponent else terms
    if reduction == "mean" and denominator == 0:
        return np.asarray(np.nan, dtype=terms.dtype)
    total = np.sum(terms)
    result = total if reduction == "sum" else total / denominator
    if not np.isfinite(result) and np.all(np.isfinite(terms)) and terms.size:
        _, shift = np.frexp(np.max(np.abs(terms)))
        total = np.sum(np.ldexp(terms, -shift))
        result = total if reduction == "sum" else total / denominator
        exponent += int(shift)
    return np.ldexp(result, exponent) if exponent else result


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
):
    """Cross entropy of logits against class indices.

    ``t_n = (1-eps) w[y_n] r[n, y_n] + eps/C sum_c w_c r[n, c]``,
    ``r = -log softmax(x)`` over the class axis (axis 1, or 0 for a ``(C)`` input),
    ``t_n = 0`` where ``y_n == ignore_index``. ``mean`` divides the sum by
    ``sum_n w[y_n]`` over the positions not ignored -- also with label smoothing,
    as PyTorch does -- so all targets ignored give ``0/0 = nan``.
    """
    check_options(reduction, size_average, reduce)
    dtype = np.asarray(input).dtype
    terms, exponent, selected, _, _ = class_index_terms(input, target, weight, ignore_index, label_smoothing)
    with np.errstate(all="ignore"):
        result = reduce_terms(terms, reduction, np.sum(selected), exponent)
    return rounded(result, dtype)


# ------------------------------------------------------------------ binary cross entropy


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` for ``x >= 0``, ``exp(x) / (1 + exp(x))`` below: neither
    overflows, and the second keeps a tiny result (a subnormal) instead of ``1/inf = 0``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``: no overflow, no cancellation."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def binary_inputs(input, target, weight, pos_weight):
    """Inputs of ``binary_cross_entropy_with_logits`` in the work dtype, broadcast and checked."""
    input, target = np.asarray(input), np.asarray(target)
    if input.shape != target.shape:
        raise ValueError(f"target shape {target.shape} differs from input shape {input.shape}")
    work = work_dtype(input.dtype)
    x, y = floats(input, work), floats(target, work)

    def spread(a, what):
        if a is None:
            return None
        try:
            return np.broadcast_to(floats(a, work), x.shape)
        except ValueError:
            raise ValueError(f"{what} of shape {np.shape(a)} does not broadcast to {x.shape}") from None

    return x, y, spread(weight, "weight"), spread(pos_weight, "pos_weight"), work


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    pos_weight=None,
):
    """Binary cross entropy of logits: ``t = w [p y softplus(-x) + (1 - y) softplus(x)]``.

    The same as ``-w [p y log sigmoid(x) + (1-y) log(1 - sigmoid(x))]``, but never the
    log of a rounded sigmoid: ``1 - sigmoid(40.)`` is 0 in float64, its log ``-inf``,
    while ``softplus(40.)`` is 40. Both terms are non-negative for ``y`` in [0, 1], so
    they add without cancellation. A zero factor ``y`` or ``1 - y`` makes its term 0
    even at an infinite logit (``0 log 0 = 0``). ``mean`` divides by the element count.
    """
    check_options(reduction, size_average, reduce)
    dtype = np.asarray(input).dtype
    x, y, w, p, work = binary_inputs(input, target, weight, pos_weight)
    zero = np.zeros((), dtype=work)
    with np.errstate(all="ignore"):
        positive = np.where(y == 0, zero, y * softplus(-x))
        negative = np.where(y == 1, zero, (1 - y) * softplus(x))
        terms, exponent = _weighted_sum(positive, negative, w, p), 0
        finite = np.isfinite(x) & _finite(w) & _finite(p)
        if np.any(~np.isfinite(terms) & finite):
            # w and p multiply terms up to |x|: divide them by powers of two (exactly),
            # and put the scale back after the reduction.
            j, k = _scale_exponent(w), _scale_exponent(p)
            terms = _weighted_sum(
                np.ldexp(positive, -k), np.ldexp(negative, -k),
                None if w is None else np.ldexp(w, -j), p,
            )
            exponent = j + k
        result = reduce_terms(terms, reduction, np.asarray(terms.size).astype(work), exponent)
    return rounded(result, dtype)


def _weighted_sum(positive, negative, w, p):
    """``w (p positive + negative)``, each factor only when given."""
    terms = (positive if p is None else p * positive) + negative
    return terms if w is None else w * terms


def _finite(a):
    return True if a is None else np.isfinite(a)


def _scale_exponent(a) -> int:
    """``e >= 0`` with ``max|a| < 2**e``: dividing by ``2**e`` brings ``a`` below 1 (0 for None)."""
    if a is None:
        return 0
    _, e = np.frexp(np.max(np.abs(a)))
    return max(int(e), 0)


# ------------------------------------------------------------------ mean squared error


def regression_inputs(input, target, weight):
    """``x``, ``y`` broadcast against each other (as PyTorch does), ``w`` of ``input``'s shape."""
    input = np.asarray(input)
    work = work_dtype(input.dtype)
    try:
        x, y = np.broadcast_arrays(floats(input, work), floats(target, work))
    except ValueError:
        raise ValueError(f"target shape {np.shape(target)} does not broadcast to {input.shape}") from None
    w = None
    if weight is not None:
        w = floats(weight, work)
        if w.shape != input.shape:
            raise ValueError(f"weight must have input's shape {input.shape}, got {w.shape}")
        w = np.broadcast_to(w, x.shape)
    return x, y, w, work


def half_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x - y) / 2``, finite for finite inputs (``x - y`` itself overflows at ``max - (-max)``)."""
    return x / 2 - y / 2


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error: ``t = w (x - y)^2``; ``mean`` is ``sum(w t) / sum(w)`` with
    weights (PyTorch's weighted mean for MSE), ``sum(t) / n`` without.

    The straightforward form overflows where the result does not: a difference
    ``x - y`` or its square above the dtype's maximum, summed into a mean or weighted
    by a small ``w``. Only then is it recomputed with an exact power-of-two scale
    (as BLAS's ``nrm2`` does): ``h = (x - y)/2``, ``t = w (h 2^-E)^2`` summed, and the
    result multiplied by ``2^(2E+2)`` last -- overflowing only if the result does.
    """
    check_options(reduction, size_average, reduce)
    dtype = np.asarray(input).dtype
    x, y, w, work = regression_inputs(input, target, weight)
    with np.errstate(all="ignore"):
        d = x - y
        terms = d * d if w is None else w * (d * d)
        denominator = np.asarray(x.size).astype(work) if w is None else np.sum(w)
        result = reduce_terms(terms, reduction, denominator)
        inputs_finite = np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and (w is None or np.all(np.isfinite(w)))
        if inputs_finite and not np.all(np.isfinite(result)):
            result = _scaled_mse(x, y, w, reduction, denominator)
    return rounded(result, dtype)


def _scaled_mse(x, y, w, reduction, denominator):
    """``mse_loss`` with every term written as ``a 2**k`` (``a`` a float, ``k`` an integer).

    ``h = (x - y)/2 = m 2**e`` exactly (``frexp``), so ``t = w (x - y)**2 = (w m**2) 2**(2e+2)``:
    ``w m**2`` is never beyond ``|w|``, and a zero weight times a difference whose square
    overflows is 0, as the formula says, not NaN. A sum is taken at the largest term's
    exponent; only terms far below its rounding error can underflow there.
    """
    if reduction == "mean" and denominator == 0:
        return np.asarray(np.nan, dtype=x.dtype)
    mantissa, exponent = np.frexp(half_difference(x, y))
    a = mantissa * mantissa if w is None else w * (mantissa * mantissa)
    k = 2 * exponent + 2
    if reduction == "none":
        return np.ldexp(a, k)
    _, a_exponent = np.frexp(a)
    nonzero = a != 0
    if not nonzero.any():
        total = np.sum(a)
        return total if reduction == "sum" else total / denominator
    top = int(np.max((a_exponent + k)[nonzero]))
    total = np.sum(np.ldexp(a, k - top))
    if reduction == "mean":
        total = total / denominator
    return np.ldexp(total, top)
