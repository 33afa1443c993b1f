r"""Hand-written gradients of the losses' *sums* w.r.t. ``input`` (what lossconf's ``grad`` asks).

For a ``none`` reduction the gradient of the sum of the outputs, for ``sum`` and
``mean`` that of the reduced value; in ``input``'s shape and dtype.

* ``cross_entropy``, per row with target ``y`` (0 on ignored rows), ``p = softmax(x)``,
  ``W = sum_c w_c``:
  ``dt/dx_j = ((1-eps) w_y + eps/C W) p_j - (1-eps) w_y [j = y] - eps/C w_j``,
  over ``sum_n w[y_n]`` for ``mean``.
* ``binary_cross_entropy_with_logits``: ``w [(1 - y) sigmoid(x) - p y sigmoid(-x)]`` --
  both sigmoids computed directly, never as ``1 - sigmoid(x)``; over ``n`` for ``mean``.
* ``mse_loss``: ``2 w (x - y)``, over ``sum(w)`` (or ``n``) for ``mean``.
"""

from __future__ import annotations

import numpy as np

from ._losses import (
    binary_inputs,
    check_options,
    class_index_terms,
    class_rows,
    floats,
    half_difference,
    neg_log_softmax,
    regression_inputs,
    rounded,
    sigmoid,
)

__all__ = ["grad"]


def grad(fn_name, args, kwargs, wrt="input"):
    """Gradient of ``fn_name(*args.values(), **kwargs)``'s sum w.r.t. ``wrt`` (``input`` only).

    The lossconf adapter protocol: ``args`` maps the leading parameter names to
    arrays, ``kwargs`` holds the options. Raises ``NotImplementedError`` for another
    ``wrt`` or a function without a gradient here.
    """
    if wrt != "input":
        raise NotImplementedError(f"gradients w.r.t. {wrt!r}")
    gradient = _GRADIENTS.get(fn_name)
    if gradient is None:
        raise NotImplementedError(f"numpy_losses has no gradient of {fn_name}")
    call = {**dict(args), **kwargs}
    dtype = np.asarray(call["input"]).dtype
    with np.errstate(all="ignore"):
        return rounded(gradient(**call), dtype)


def _cross_entropy_grad(input, target, weight=None, size_average=None, ignore_index=-100,
                        reduce=None, reduction="mean", label_smoothing=0.0):
    check_options(reduction, size_average, reduce)
    input = np.asarray(input)
    # Validates everything and gives the selected weights (0 on ignored rows).
    _, _, selected, out_shape, work = class_index_terms(input, target, weight, ignore_index, label_smoothing)
    rows, _ = class_rows(floats(input, work))
    n_rows, n_classes = rows.shape
    w = np.ones(n_classes, dtype=work) if weight is None else floats(weight, work)
    y = np.asarray(target).reshape(-1).astype(np.int64)
    ignored = y == ignore_index
    y = np.where(ignored, 0, y)
    _, p = neg_log_softmax(rows)
    keep = np.asarray(1.0 - label_smoothing).astype(work)
    coefficient = keep * selected
    if label_smoothing:
        spread = np.asarray(label_smoothing / n_classes).astype(work)
        coefficient = coefficient + spread * np.sum(w)
    g = coefficient[:, None] * p
    g[np.arange(n_rows), y] -= keep * selected
    if label_smoothing:
        g = g - spread * w
    g[ignored] = 0  # an ignored row never reaches the loss, even when its softmax is NaN
    if reduction == "mean":
        g = g / np.sum(selected)
    if input.ndim == 1:
        return g.reshape(input.shape)
    return np.moveaxis(g.reshape((*out_shape, n_classes)), -1, 1)


def _bce_with_logits_grad(input, target, weight=None, size_average=None, reduce=None,
                          reduction="mean", pos_weight=None):
    check_options(reduction, size_average, reduce)
    x, y, w, p, work = binary_inputs(input, target, weight, pos_weight)
    s_pos = sigmoid(x)
    s_neg = sigmoid(-x)  # not 1 - sigmoid(x): no cancellation, and subnormals survive
    positive = y * s_neg if p is None else p * (y * s_neg)
    g = (1 - y) * s_pos - positive
    if w is not None:
        g = w * g
    if reduction == "mean":
        g = g / np.asarray(g.size).astype(work)
    return g


def _mse_grad(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    check_options(reduction, size_average, reduce)
    x, y, w, work = regression_inputs(input, target, weight)
    if x.shape != np.shape(input):
        raise NotImplementedError("mse_loss gradients with a broadcast input")
    scale = np.asarray(1.0).astype(work)
    if reduction == "mean":
        scale = np.asarray(x.size).astype(work) if w is None else np.sum(w)
    d = x - y
    # Divide first, double last (exact): 2 d overflows only where the gradient does.
    g = (d / scale) * 2
    overflowed = ~np.isfinite(d) & np.isfinite(x) & np.isfinite(y)
    if overflowed.any():  # x - y beyond the dtype's max: use (x - y)/2, times 4
        g = np.where(overflowed, (half_difference(x, y) / scale) * 4, g)
    return g if w is None else w * g


_GRADIENTS = {
    "cross_entropy": _cross_entropy_grad,
    "binary_cross_entropy_with_logits": _bce_with_logits_grad,
    "mse_loss": _mse_grad,
}
