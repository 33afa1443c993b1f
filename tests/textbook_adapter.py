"""A "textbook" NumPy implementation of the spec, with five seeded defects.

This is the implementation under test of ``tests/test_teeth.py``: the
conformance suite must catch every defect below *by name* (a failing record
for the loss and case that show it), and the rest of the code is written to be
correct, so that what the suite flags is the defects and not noise.

The seeded defects, exactly these five (three in values, two in gradients):

(a) ``log_softmax`` -- and ``cross_entropy``, which uses it -- computes
    ``x - log(sum(exp(x)))`` *without* subtracting the row's maximum first:
    ``exp`` overflows for large logits (above ~709 in float64, ~88 in float32,
    ~11 in float16), so the result is ``-inf``/NaN where the exact value is
    finite. See :func:`_log_softmax_unshifted`.
(b) ``binary_cross_entropy_with_logits`` computes
    ``-(y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x)))`` -- the log *of* a
    rounded sigmoid: ``1 - sigmoid(x)`` is 0 once ``sigmoid`` saturates (x = 40
    in float64), so the loss is ``inf`` (or NaN) where the exact value is ~x.
(c) Unweighted means: ``cross_entropy`` and ``nll_loss`` with class-index
    targets, ``weight`` and ``reduction="mean"`` divide the weighted sum by the
    *number* of non-ignored targets instead of the sum of the selected weights
    ``sum_n w[y_n]``. See :func:`_index_mean_denominator`.
(d) The gradient of ``binary_cross_entropy_with_logits`` is the textbook
    ``w (sigmoid(x) - y)``, which ignores ``pos_weight``: the derivative is
    ``w ((1 - y + p y) sigmoid(x) - p y)``. See :func:`grad`.
(e) The gradient of ``smooth_l1_loss`` in its linear branch (``|x - y| >= beta > 0``)
    is Huber's ``beta sign(x - y)`` instead of ``sign(x - y)`` (SmoothL1_beta is
    Huber_beta / beta). See :func:`_smooth_l1_grad`.

The other gradients it computes (``sigmoid``, ``kl_div``; ``smooth_l1_loss``'s
quadratic branch and ``beta = 0``) are correct; the rest, and every gradient w.r.t. a
parameter other than ``input``, are unsupported.

Everything else follows ``torch.nn.functional``'s documented semantics and the
oracle's conventions (``oracle/``): computations run in the input's dtype
(bfloat16 in float32, cast back at the end), outputs keep the input's dtype,
invalid inputs raise ``ValueError``, and the deprecated ``size_average`` /
``reduce`` arguments raise ``NotImplementedError`` unless both are None
(the suite reports that as *unsupported*).

Load it with ``pytest suites --adapter tests.textbook_adapter``.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

name = "textbook"
version = "1.0"

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "grad",
    "kl_div",
    "log_softmax",
    "nll_loss",
    "sigmoid",
    "smooth_l1_loss",
    "softmax",
]

_BF16 = np.dtype(ml_dtypes.bfloat16)
_REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------------ helpers


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype arithmetic runs in: the input's own, float32 for bfloat16."""
    return np.dtype(np.float32) if dtype == _BF16 else np.dtype(dtype)


def _floats(a, work: np.dtype) -> np.ndarray:
    return np.asarray(a).astype(work)


def _out(value, dtype: np.dtype) -> np.ndarray:
    """A NumPy array (0-d for a reduced loss) of the input's dtype."""
    return np.asarray(value).astype(dtype)


def _no_legacy(size_average, reduce) -> None:
    if size_average is not None or reduce is not None:
        raise NotImplementedError("the deprecated size_average/reduce arguments")


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction={reduction!r} is not one of {allowed}")


def _reduce(terms: np.ndarray, reduction: str, denominator) -> np.ndarray:
    if reduction == "none":
        return terms
    total = np.sum(terms)
    return total if reduction == "sum" else total / denominator


def _softmax_dim(ndim: int, dim) -> int:
    """``torch.nn.functional``'s implicit dim (deprecated there) when ``dim`` is None."""
    if dim is None:
        return 0 if ndim in (0, 1, 3) else 1
    return dim


def _log_softmax_unshifted(x: np.ndarray, axis: int) -> np.ndarray:
    """SEEDED DEFECT (a): ``x - log(sum(exp(x)))`` without the max shift.

    The stable form is ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the row's
    maximum; without it ``exp`` overflows to inf for large logits and the
    result is ``-inf``/NaN (and all-large-negative rows underflow to ``+inf``).
    """
    return x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` for x >= 0 and ``exp(x) / (1 + exp(x))`` for x < 0:
    neither form overflows, and the second keeps tiny results (subnormals) accurate."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ------------------------------------------------------------------ activations


def sigmoid(input):
    """``torch.sigmoid``: ``1 / (1 + exp(-x))`` elementwise."""
    input = np.asarray(input)
    with np.errstate(all="ignore"):
        return _out(_stable_sigmoid(_floats(input, _work_dtype(input.dtype))), input.dtype)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``F.softmax``: ``exp(x - m) / sum(exp(x - m))`` with ``m`` the row's max (stable).

    A ``+inf`` or NaN logit makes its row NaN; a row of only ``-inf`` is NaN (0/0).
    """
    if dtype is not None:
        raise NotImplementedError("softmax's dtype argument")
    input = np.asarray(input)
    axis = _softmax_dim(input.ndim, dim)
    x = _floats(input, _work_dtype(input.dtype))
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return _out(e / np.sum(e, axis=axis, keepdims=True), input.dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``F.log_softmax``: ``x - log(sum(exp(x)))`` -- with SEEDED DEFECT (a), no max shift."""
    if dtype is not None:
        raise NotImplementedError("log_softmax's dtype argument")
    input = np.asarray(input)
    axis = _softmax_dim(input.ndim, dim)
    x = _floats(input, _work_dtype(input.dtype))
    with np.errstate(all="ignore"):  # an out-of-range dim raises NumPy's AxisError
        return _out(_log_softmax_unshifted(x, axis), input.dtype)


# ------------------------------------------------------------------ classification


def _class_rows(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(C)`` -> ``(1, C)``; ``(N, C, d...)`` -> ``(N*d..., C)``; and the per-position shape."""
    if x.ndim == 0:
        raise ValueError("input must have a class dimension: (C), (N, C) or (N, C, d1, ...)")
    if x.ndim == 1:
        return x.reshape(1, -1), ()
    moved = np.moveaxis(x, 1, -1)
    return moved.reshape(-1, x.shape[1]), moved.shape[:-1]


def _class_weights(weight, n_classes: int, work: np.dtype) -> np.ndarray:
    if weight is None:
        return np.ones(n_classes, dtype=work)
    w = _floats(weight, work)
    if w.shape != (n_classes,):
        raise ValueError(f"weight must have shape ({n_classes},), got {w.shape}")
    return w


def _index_targets(target, out_shape, n_classes: int, ignore_index: int):
    """(targets as flat int64, ignored mask, targets safe to index with)."""
    target = np.asarray(target)
    if target.shape != out_shape:
        raise ValueError(f"class-index target must have shape {out_shape}, got {target.shape}")
    flat = target.reshape(-1).astype(np.int64)
    ignored = flat == ignore_index
    bad = ~ignored & ((flat < 0) | (flat >= n_classes))
    if bad.any():
        raise ValueError(f"target {int(flat[bad][0])} is out of range [0, {n_classes})")
    return flat, ignored, np.where(ignored, 0, flat)


def _index_mean_denominator(selected_weights: np.ndarray, ignored: np.ndarray, work: np.dtype):
    """SEEDED DEFECT (c): the number of non-ignored targets.

    The spec's denominator of ``reduction="mean"`` is ``sum_n w[y_n]`` over the
    non-ignored targets (``selected_weights``, unused here); the two agree only
    when ``weight`` is None or all ones.
    """
    del selected_weights
    return np.asarray(np.count_nonzero(~ignored)).astype(work)


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
    """``F.cross_entropy``, class-index or class-probability targets, with label smoothing.

    ``t_n = (1-eps) w[y_n] r[n, y_n] + eps/C sum_c w_c r[n, c]`` with
    ``r = -log_softmax(x)`` (SEEDED DEFECT (a): unshifted), 0 where ignored;
    ``mean`` divides by the count of non-ignored targets (SEEDED DEFECT (c)).
    Probability targets: ``q = (1-eps) p + eps/C``, ``t_n = sum_c w_c q_c r_c``
    (``0 log 0 = 0``), ``mean`` over the number of positions.
    """
    _no_legacy(size_average, reduce)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    input, target = np.asarray(input), np.asarray(target)
    work = _work_dtype(input.dtype)
    rows, out_shape = _class_rows(_floats(input, work))
    n_classes = rows.shape[1]
    w = _class_weights(weight, n_classes, work)
    # (1 - eps) and eps / C are formed in float64 and rounded once: rounding eps
    # to float16 first would make 1 - eps inaccurate for eps near 1.
    keep = np.asarray(1.0 - label_smoothing).astype(work)
    spread = np.asarray(label_smoothing / n_classes).astype(work)
    with np.errstate(all="ignore"):
        r = -_log_softmax_unshifted(rows, axis=1)
        if np.issubdtype(target.dtype, np.integer):
            _, ignored, safe = _index_targets(target, out_shape, n_classes, ignore_index)
            positions = np.arange(len(safe))
            selected_w = w[safe]
            terms = keep * selected_w * r[positions, safe]
            if label_smoothing:
                terms = terms + spread * np.sum(w * r, axis=1)
            terms = np.where(ignored, np.zeros((), dtype=work), terms)
            denominator = _index_mean_denominator(np.where(ignored, 0, selected_w), ignored, work)
        else:
            if target.shape != input.shape:
                raise ValueError(
                    f"class-probability target must have input's shape {input.shape}, got {target.shape}"
                )
            p, _ = _class_rows(_floats(target, work))
            q = keep * p + spread
            terms = np.sum(np.where(q == 0, np.zeros((), dtype=work), w * q * r), axis=1)
            denominator = np.asarray(len(terms)).astype(work)
        result = _reduce(terms.reshape(out_shape), reduction, denominator)
    return _out(result, input.dtype)


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
):
    """``F.nll_loss``: ``t_n = -w[y_n] x[n, y_n]``, 0 where ignored; ``mean`` divides
    by the count of non-ignored targets (SEEDED DEFECT (c))."""
    _no_legacy(size_average, reduce)
    _check_reduction(reduction)
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"nll_loss needs integer class-index targets, got {target.dtype}")
    work = _work_dtype(input.dtype)
    rows, out_shape = _class_rows(_floats(input, work))
    n_classes = rows.shape[1]
    w = _class_weights(weight, n_classes, work)
    _, ignored, safe = _index_targets(target, out_shape, n_classes, ignore_index)
    with np.errstate(all="ignore"):
        selected_w = w[safe]
        terms = -(selected_w * rows[np.arange(len(safe)), safe])
        terms = np.where(ignored, np.zeros((), dtype=work), terms)
        denominator = _index_mean_denominator(np.where(ignored, 0, selected_w), ignored, work)
        result = _reduce(terms.reshape(out_shape), reduction, denominator)
    return _out(result, input.dtype)


# ------------------------------------------------------------------ binary


def _elementwise(input, target, weight, work):
    input, target = np.asarray(input), np.asarray(target)
    if input.shape != target.shape:
        raise ValueError(f"target shape {target.shape} differs from input shape {input.shape}")
    x, y = _floats(input, work), _floats(target, work)
    w = None if weight is None else np.broadcast_to(_floats(weight, work), x.shape)
    return x, y, w


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``F.binary_cross_entropy``: ``-w [y max(log x, -100) + (1-y) max(log(1-x), -100)]``.

    ``log(1 - x)`` is ``log1p(-x)``, accurate for tiny ``x``; a zero target factor
    times a clamped log is 0. Probabilities outside [0, 1] (or NaN) raise.
    """
    _no_legacy(size_average, reduce)
    _check_reduction(reduction)
    dtype = np.asarray(input).dtype
    work = _work_dtype(dtype)
    x, y, w = _elementwise(input, target, weight, work)
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError("binary_cross_entropy's input must be probabilities in [0, 1]")
    clamp = np.asarray(-100.0).astype(work)
    with np.errstate(all="ignore"):
        log_x = np.maximum(np.log(x), clamp)
        log_1mx = np.maximum(np.log1p(-x), clamp)
        terms = -(y * log_x + (1 - y) * log_1mx)
        if w is not None:
            terms = w * terms
        result = _reduce(terms, reduction, np.asarray(terms.size).astype(work))
    return _out(result, dtype)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    pos_weight=None,
):
    """``F.binary_cross_entropy_with_logits`` -- with SEEDED DEFECT (b).

    Computes ``-w [p y log(s) + (1-y) log(1 - s)]`` with ``s = sigmoid(x)``: the
    log of a rounded sigmoid. Once ``s`` rounds to 1 (x = 40 in float64),
    ``log(1 - s)`` is ``-inf`` and the loss ``inf`` (NaN when ``1 - y`` is 0);
    the stable form is ``w [p y softplus(-x) + (1-y) softplus(x)]``.
    """
    _no_legacy(size_average, reduce)
    _check_reduction(reduction)
    dtype = np.asarray(input).dtype
    work = _work_dtype(dtype)
    x, y, w = _elementwise(input, target, weight, work)
    p = None if pos_weight is None else np.broadcast_to(_floats(pos_weight, work), x.shape)
    with np.errstate(all="ignore"):
        s = _stable_sigmoid(x)
        positive = y * np.log(s)
        if p is not None:
            positive = p * positive
        terms = -(positive + (1 - y) * np.log(1 - s))
        if w is not None:
            terms = w * terms
        result = _reduce(terms, reduction, np.asarray(terms.size).astype(work))
    return _out(result, dtype)


# ------------------------------------------------------------------ divergence


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """``F.kl_div``: ``t = p (log p - input)`` (``log_target``: ``e^s (s - input)``).

    ``0 log 0 = 0``: a zero target probability contributes 0 whatever ``input``
    is; a negative target gives NaN. ``mean`` divides by the number of
    elements, ``batchmean`` by ``input.shape[0]``.
    """
    _no_legacy(size_average, reduce)
    _check_reduction(reduction, (*_REDUCTIONS, "batchmean"))
    dtype = np.asarray(input).dtype
    work = _work_dtype(dtype)
    x, t = np.broadcast_arrays(_floats(input, work), _floats(target, work))
    zero = np.zeros((), dtype=work)
    with np.errstate(all="ignore"):
        if log_target:
            terms = np.where(t == -np.inf, zero, np.exp(t) * (t - x))
        else:
            terms = np.where(t == 0, zero, t * (np.log(t) - x))
        if reduction == "batchmean":
            denominator = np.asarray(x.shape[0] if x.ndim else 1).astype(work)
            result = _reduce(terms, "mean", denominator)
        else:
            result = _reduce(terms, reduction, np.asarray(terms.size).astype(work))
    return _out(result, dtype)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``F.smooth_l1_loss``: ``0.5 d^2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta``
    (``d = x - y``; ``beta = 0`` is L1). ``(0.5 d / beta) d`` keeps ``d^2`` from underflowing
    for a small ``beta``. Same shapes only (no broadcasting)."""
    _no_legacy(size_average, reduce)
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss needs beta >= 0, got {beta!r}")
    dtype = np.asarray(input).dtype
    work = _work_dtype(dtype)
    x, y, _ = _elementwise(input, target, None, work)
    with np.errstate(all="ignore"):
        d = x - y
        ad = np.abs(d)
        if beta == 0:
            terms = ad
        else:
            b = np.asarray(beta).astype(work)
            terms = np.where(ad < b, (0.5 * d / b) * d, ad - 0.5 * b)
        result = _reduce(terms, reduction, np.asarray(terms.size).astype(work))
    return _out(result, dtype)


# ------------------------------------------------------------------ gradients


def grad(fn_name, args, kwargs, wrt="input"):
    """Gradient of ``fn_name(*args.values(), **kwargs)``'s sum w.r.t. ``input`` (NumPy, by hand).

    ``sigmoid``: ``s (1 - s)``; ``kl_div``: ``-p`` (``-e^s``) over the denominator, 0 for a
    zero target; ``binary_cross_entropy_with_logits``: SEEDED DEFECT (d), ``w (s - y)``
    whatever ``pos_weight`` is; ``smooth_l1_loss``: SEEDED DEFECT (e) in the linear branch.
    Anything else is unsupported (NotImplementedError).
    """
    if wrt != "input":
        raise NotImplementedError(f"gradients w.r.t. {wrt!r}")
    call = dict(zip(("input", "target"), args.values()), **kwargs)
    input = np.asarray(call.pop("input"))
    dtype, work = input.dtype, _work_dtype(input.dtype)
    x = _floats(input, work)
    with np.errstate(all="ignore"):
        if fn_name == "sigmoid":
            s = _stable_sigmoid(x)
            return _out(s * (1 - s), dtype)
        if fn_name == "kl_div":
            return _out(_kl_div_grad(x, call), dtype)
        if fn_name == "binary_cross_entropy_with_logits":
            return _out(_bce_with_logits_grad(x, call), dtype)
        if fn_name == "smooth_l1_loss":
            return _out(_smooth_l1_grad(x, call), dtype)
    raise NotImplementedError(f"the textbook adapter has no gradient of {fn_name}")


def _kl_div_grad(x, call):
    _no_legacy(call.get("size_average"), call.get("reduce"))
    work = x.dtype
    t = _floats(call["target"], work)
    if t.shape != x.shape:
        raise NotImplementedError("kl_div gradients with broadcasting")
    p = np.exp(t) if call.get("log_target") else np.where(t == 0, np.zeros((), work), t)
    reduction = call.get("reduction", "mean")
    if reduction == "mean":
        p = p / np.asarray(x.size).astype(work)
    elif reduction == "batchmean":
        p = p / np.asarray(x.shape[0] if x.ndim else 1).astype(work)
    return -p


def _bce_with_logits_grad(x, call):
    """SEEDED DEFECT (d): ``w (sigmoid(x) - y)``, ``pos_weight`` ignored."""
    _no_legacy(call.get("size_average"), call.get("reduce"))
    work = x.dtype
    _, y, w = _elementwise(x, call["target"], call.get("weight"), work)
    g = _stable_sigmoid(x) - y
    if w is not None:
        g = w * g
    if call.get("reduction", "mean") == "mean":
        g = g / np.asarray(x.size).astype(work)
    return g


def _smooth_l1_grad(x, call):
    """``d / beta`` for ``|d| < beta``, ``sign(d)`` for ``beta = 0``; SEEDED DEFECT (e):
    ``beta sign(d)`` (Huber's) in the linear branch. Over ``n`` for ``mean``."""
    _no_legacy(call.get("size_average"), call.get("reduce"))
    work = x.dtype
    _, y, _ = _elementwise(x, call["target"], None, work)
    beta = call.get("beta", 1.0)
    d = x - y
    if beta == 0:
        g = np.sign(d)
    else:
        b = np.asarray(beta).astype(work)
        g = np.where(np.abs(d) < b, d / b, b * np.sign(d))
    if call.get("reduction", "mean") == "mean":
        g = g / np.asarray(x.size).astype(work)
    return g
