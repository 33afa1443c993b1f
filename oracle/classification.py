r"""``cross_entropy`` and ``nll_loss``, exactly, with PyTorch's semantics.

Shapes (``torch.nn.CrossEntropyLoss`` docs): ``input`` is ``(C)``, ``(N, C)`` or
``(N, C, d_1, ..., d_K)``; a class-index ``target`` is ``()``, ``(N)`` or
``(N, d_1, ..., d_K)`` of integers; a class-probability ``target`` has
``input``'s shape. Each position ``n`` (a row of C logits) gives one term ``t_n``.

Class-index targets, with ``w`` the class weights (ones when ``weight=None``),
``W = sum_c w_c``, ``eps`` the label smoothing, ``y_n`` the target:

.. math::
    t_n = (1-\varepsilon)\, w_{y_n} r_{n,y_n}
          + \frac{\varepsilon}{C} \sum_c w_c\, r_{n,c},
    \qquad r_{n,c} = -\log \operatorname{softmax}(x_n)_c

and ``t_n = 0`` where ``y_n == ignore_index``. ``mean`` divides the sum by
``sum_{n not ignored} w_{y_n}`` -- the weights of the selected classes, also with
label smoothing. The docs leave that denominator ambiguous with smoothing;
PyTorch's implementation (``cross_entropy_loss_label_smoothing`` in
``aten/src/ATen/native/LossNLL.cpp``) is the tie-breaker: it divides the
smoothing term by that same weight sum. All targets ignored (or all selected
weights zero) gives ``0/0 = nan`` for ``mean`` and ``0`` for ``sum``.

Class-probability targets ``p`` (no ``ignore_index``):
``q = (1-eps) p + eps/C``, ``t_n = sum_c w_c q_{n,c} r_{n,c}``, and ``mean``
divides by the number of positions ``N d_1...d_K`` -- *not* by a weight sum
(``cross_entropy_loss_prob_target``, same file).

``nll_loss``: ``t_n = -w_{y_n} x_{n,y_n}``, zero where ignored, ``mean`` over
``sum w_{y_n}`` as above.

Conventions at special values:

* ``0 log 0 = 0``: a class whose target probability ``q_c`` is 0 contributes 0
  to the probability-target term even when its logit is ``-inf`` (information
  theory's convention for cross-entropy; IEEE evaluation of ``q_c * log p_c``
  gives NaN there).
* Ignored positions are 0 whatever their logits (PyTorch never reads them).
* Weights multiply as numbers: a zero weight times an infinite ``r`` is NaN.
* Logit rows follow :mod:`oracle.activations`: ``-inf`` logits are masked
  classes, a NaN or ``+inf`` logit makes the row NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath import mpf

from .activations import SoftmaxRow
from .core import exact_add, mp_array
from .reduction import LossTerms, check_reduction, divide, exact_sum, resolve_reduction

__all__ = [
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_terms",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_terms",
]


@dataclass
class _Layout:
    """Inputs flattened to rows of C classes, and how to undo it."""

    rows: np.ndarray  # object (R, C): exact logits / log-probabilities
    out_shape: tuple[int, ...]  # shape of the reduction='none' output
    in_shape: tuple[int, ...]

    def unflatten_rows(self, rows: np.ndarray) -> np.ndarray:
        """(R, C) rows back to the input's layout (class axis second)."""
        if len(self.in_shape) == 1:
            return rows.reshape(self.in_shape)
        moved = rows.reshape((*self.out_shape, self.in_shape[1]))
        return np.moveaxis(moved, -1, 1)


def _class_rows(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(C) -> (1, C); (N, C, d...) -> (N*d..., C) with the class axis last."""
    if a.ndim == 1:
        return a.reshape(1, -1), ()
    moved = np.moveaxis(a, 1, -1)
    return moved.reshape(-1, a.shape[1]), moved.shape[:-1]


def _layout(input: np.ndarray) -> _Layout:
    if input.ndim == 0:
        raise ValueError("input must have a class dimension: shape (C), (N, C) or (N, C, d1, ...)")
    rows, out_shape = _class_rows(mp_array(input))
    return _Layout(rows, out_shape, input.shape)


def _is_index_target(target: np.ndarray) -> bool:
    return np.issubdtype(target.dtype, np.integer)


def _class_weights(weight, n_classes: int) -> list[mpf]:
    if weight is None:
        return [mpf(1)] * n_classes
    weight = np.asarray(weight)
    if weight.shape != (n_classes,):
        raise ValueError(
            f"weight must have shape ({n_classes},), one entry per class, got {weight.shape}"
        )
    return list(mp_array(weight))


def _index_targets(target: np.ndarray, layout: _Layout, n_classes: int, ignore_index: int):
    if target.shape != layout.out_shape:
        raise ValueError(
            f"class-index target must have shape {layout.out_shape} for input of shape "
            f"{layout.in_shape}, got {target.shape}"
        )
    flat = [int(v) for v in target.reshape(-1)]
    for v in flat:
        if v != ignore_index and not 0 <= v < n_classes:
            raise ValueError(
                f"target class {v} is out of range [0, {n_classes}) and is not "
                f"ignore_index={ignore_index}"
            )
    return flat


def _check_common(reduction: str, label_smoothing: float) -> None:
    check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


def _finite_dot_abs(xs: list[mpf], ds: list[mpf]) -> mpf:
    """``sum_i |x_i d_i|`` over finite x_i (a masked -inf logit is not perturbed)."""
    return mpmath.fsum(abs(x * d) for x, d in zip(xs, ds) if mpmath.isfinite(x))


def cross_entropy_terms(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> LossTerms:
    """The per-position decomposition of :func:`cross_entropy` (module docstring)."""
    reduction = resolve_reduction(size_average, reduce, reduction)
    _check_common(reduction, label_smoothing)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    terms, cond, scale = [], [], []
    if _is_index_target(target):
        targets = _index_targets(target, layout, n_classes, ignore_index)
        total_w = mpmath.fsum(w)
        denominator = mpf(0)
        for row_values, y in zip(layout.rows, targets):
            if y == ignore_index:
                terms.append(mpf(0)), cond.append(mpf(0)), scale.append(mpf(0))
                continue
            row = SoftmaxRow(list(row_values))
            denominator += w[y]
            t = _smoothed_index_term(row, y, w, eps, n_classes)
            grad = _index_row_grad(row, y, w, total_w, eps)
            terms.append(t)
            cond.append(_finite_dot_abs(row.x, grad) + abs(t))
            multiplier = (1 - eps) * abs(w[y]) + eps / n_classes * mpmath.fsum(map(abs, w))
            scale.append(multiplier * row.working_scale)
    else:
        probs, _ = _class_rows(mp_array(target))
        if target.shape != input.shape:
            raise ValueError(
                f"class-probability target must have input's shape {input.shape}, got {target.shape}"
            )
        denominator = mpf(len(probs))
        for row_values, p in zip(layout.rows, probs):
            row = SoftmaxRow(list(row_values))
            q = [_smoothed_probability(pc, eps, n_classes) for pc in p]
            # Exact products and sum, as for index targets: a log1p tail far below the
            # working precision (logits thousands apart) can decide a rounding midpoint.
            t = exact_sum([
                mpmath.fmul(w[c], mpmath.fmul(q[c], row.neg_log_prob(c), exact=True), exact=True)
                for c in range(n_classes)
                if q[c] != 0
            ])
            grad = _prob_row_grad(row, q, w)
            terms.append(t)
            # |t| covers relative perturbations of the targets (t is linear in q).
            cond.append(_finite_dot_abs(row.x, grad) + abs(t))
            scale.append(mpmath.fsum(abs(w[c] * q[c]) for c in range(n_classes)) * row.working_scale)
    shape = layout.out_shape
    return LossTerms(
        terms=_as_array(terms, shape),
        condition=_as_array(cond, shape),
        scale=_as_array(scale, shape),
        reduction=reduction,
        denominator=denominator if reduction == "mean" else None,
    )


def _smoothed_index_term(row: SoftmaxRow, y: int, w: list[mpf], eps: mpf, n_classes: int) -> mpf:
    """``(1-eps) w_y r_y + eps/C sum_c w_c r_c``, formed without rounding where it can be.

    Products with floats and the sums are exact, so a tail far below the working
    precision (``log1p(T)`` when logits are thousands apart) survives to decide on
    which side of a rounding midpoint the term lies. Only a division by a ``C``
    that is not a power of two rounds, and its quotient is then no midpoint.
    """
    t = mpmath.fmul(w[y], row.neg_log_prob(y), exact=True)
    if not eps:
        return t
    t = mpmath.fmul(mpmath.fsub(1, eps, exact=True), t, exact=True)
    smooth = exact_sum([mpmath.fmul(w[c], row.neg_log_prob(c), exact=True) for c in range(n_classes)])
    scaled = mpmath.fmul(eps, smooth, exact=True)
    if n_classes & (n_classes - 1) == 0:
        scaled = mpmath.ldexp(scaled, -(n_classes.bit_length() - 1))
    else:
        scaled = scaled / n_classes
    return exact_add(t, scaled)


def _smoothed_probability(p: mpf, eps: mpf, n_classes: int) -> mpf:
    """``q = (1 - eps) p + eps / C``, exact unless ``C`` is not a power of two (then only
    the quotient ``eps / C`` rounds, at the working precision)."""
    if not eps:
        return p
    head = mpmath.fmul(mpmath.fsub(1, eps, exact=True), p, exact=True)
    if n_classes & (n_classes - 1) == 0:
        spread = mpmath.ldexp(eps, -(n_classes.bit_length() - 1))
    else:
        spread = eps / n_classes
    return exact_add(head, spread)


def _as_array(values: list, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out.reshape(shape)


def _index_row_grad(row: SoftmaxRow, y: int, w: list[mpf], total_w: mpf, eps: mpf) -> list[mpf]:
    """``dt/dx_j = (1-eps) w_y (p_j - [j=y]) + eps/C (W p_j - w_j)`` for one row; at the
    target ``p_y - 1 = -(1 - p_y)`` from :meth:`SoftmaxRow.complement` (no cancellation)."""
    n_classes = len(row.x)
    p = row.probs
    grad = [(1 - eps) * w[y] * p[j] for j in range(n_classes)]
    grad[y] = -(1 - eps) * w[y] * row.complement(y)
    if eps:
        grad = [g + eps / n_classes * (total_w * p[j] - w[j]) for j, g in enumerate(grad)]
    return grad


def _prob_row_grad(row: SoftmaxRow, q: list[mpf], w: list[mpf]) -> list[mpf]:
    """``dt/dx_j = p_j sum_c w_c q_c - w_j q_j`` for ``t = sum_c w_c q_c r_c``."""
    p = row.probs
    mass = mpmath.fsum(wc * qc for wc, qc in zip(w, q))
    return [p[j] * mass - w[j] * q[j] for j in range(len(p))]


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    r"""Exact ``torch.nn.functional.cross_entropy``; formulas in the module docstring.

    Returns an ``mpf`` for ``sum``/``mean`` and an object ndarray of ``mpf`` with
    the target's shape (class-index targets) or the input's shape minus the class
    axis (probability targets) for ``none``. The legacy ``size_average``/``reduce``
    arguments override ``reduction`` as PyTorch documents
    (:func:`oracle.reduction.resolve_reduction`).
    """
    return cross_entropy_terms(
        input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
    ).value


def cross_entropy_grad(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    wrt: str = "input",
) -> np.ndarray:
    """Exact gradient of the output's sum with respect to ``input`` (input's shape).

    Per position, ``d t_n / d x_{n,j}`` is ``(1-eps) w_y (p_j - [j=y]) + eps/C (W p_j
    - w_j)`` for class indices and ``p_j sum_c w_c q_c - w_j q_j`` for probabilities;
    ignored positions get 0; ``mean`` divides by the same denominator as the value.

    ``wrt``: ``"input"`` (this formula), or ``"target"`` (class probabilities) /
    ``"weight"`` (``oracle.gradients_classification``).
    """
    if wrt != "input":
        from .gradients_classification import cross_entropy_grad_wrt

        return cross_entropy_grad_wrt(
            input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing, wrt=wrt
        )
    reduction = resolve_reduction(size_average, reduce, reduction)
    lt = cross_entropy_terms(input, target, weight, None, ignore_index, None, reduction, label_smoothing)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    grads = np.empty(layout.rows.shape, dtype=object)
    if _is_index_target(target):
        total_w = mpmath.fsum(w)
        for i, (row_values, y) in enumerate(zip(layout.rows, [int(v) for v in target.reshape(-1)])):
            if y == ignore_index:
                grads[i] = [mpf(0)] * n_classes
            else:
                grads[i] = _index_row_grad(SoftmaxRow(list(row_values)), y, w, total_w, eps)
    else:
        probs, _ = _class_rows(mp_array(target))
        for i, (row_values, p) in enumerate(zip(layout.rows, probs)):
            q = [_smoothed_probability(pc, eps, n_classes) for pc in p]
            grads[i] = _prob_row_grad(SoftmaxRow(list(row_values)), q, w)
    return _scale_for_reduction(layout.unflatten_rows(grads), lt)


def _scale_for_reduction(grad: np.ndarray, lt: LossTerms) -> np.ndarray:
    if lt.reduction != "mean":
        return grad
    return np.vectorize(lambda g: divide(g, lt.denominator), otypes=[object])(grad)


def nll_loss_terms(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> LossTerms:
    """The per-position decomposition of :func:`nll_loss` (module docstring)."""
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    if not _is_index_target(target):
        raise ValueError(f"nll_loss needs integer class-index targets, got dtype {target.dtype}")
    targets = _index_targets(target, layout, n_classes, ignore_index)
    terms, denominator = [], mpf(0)
    for row_values, y in zip(layout.rows, targets):
        if y == ignore_index:
            terms.append(mpf(0))
            continue
        denominator += w[y]
        terms.append(mpmath.fneg(mpmath.fmul(w[y], row_values[y], exact=True), exact=True))
    t = _as_array(terms, layout.out_shape)
    return LossTerms(
        terms=t,
        condition=np.vectorize(abs, otypes=[object])(t) if t.size else t,
        scale=_as_array([mpf(0)] * len(terms), layout.out_shape),
        reduction=reduction,
        denominator=denominator if reduction == "mean" else None,
    )


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
):
    r"""Exact ``torch.nn.functional.nll_loss``: ``t_n = -w_{y_n} x_{n, y_n}``.

    ``input`` holds log-probabilities (any reals; ``-inf`` gives ``+inf``).
    Reductions, ``ignore_index`` and the mean's weight-sum denominator as for
    :func:`cross_entropy` (module docstring).
    """
    return nll_loss_terms(input, target, weight, size_average, ignore_index, reduce, reduction).value


def nll_loss_grad(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    wrt: str = "input",
) -> np.ndarray:
    """Exact gradient of the output's sum w.r.t. ``input``: ``-w_y`` at ``[n, y_n]``, else 0.

    ``wrt``: ``"input"`` (this formula), or ``"weight"`` (``oracle.gradients_classification``).
    """
    if wrt != "input":
        from .gradients_classification import nll_loss_grad_wrt

        return nll_loss_grad_wrt(input, target, weight, size_average, ignore_index, reduce, reduction, wrt=wrt)
    lt = nll_loss_terms(input, target, weight, size_average, ignore_index, reduce, reduction)
    input, target = np.asarray(input), np.asarray(target)
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    grads = np.empty(layout.rows.shape, dtype=object)
    grads[...] = mpf(0)
    for i, y in enumerate(int(v) for v in target.reshape(-1)):
        if y != ignore_index:
            grads[i, y] = -w[y]
    return _scale_for_reduction(layout.unflatten_rows(grads), lt)
