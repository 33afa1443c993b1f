"""numpy_losses with one classic bug: ``cross_entropy``'s mean counts the ignored rows.

Everything is :mod:`numpy_losses` except ``cross_entropy(reduction="mean")``, which
divides the sum by ``sum_n w[y_n]`` over *all* positions -- ignored ones included,
with their target replaced by class 0 (the padding a batch of sequences is full of)
-- instead of over the positions that count. With no ``weight`` that is the number
of rows. The loss comes out too small whenever a target is ignored, and ``0`` instead
of ``nan`` when all are. It exists to show a failing gate:
``--adapter numpy_losses.buggy``.
"""

from __future__ import annotations

import numpy as np

from . import binary_cross_entropy_with_logits, grad, mse_loss
from ._losses import check_options, class_index_terms, reduce_terms, rounded

name = "numpy_losses.buggy"
version = "0.1.0"

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "grad", "mse_loss"]


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
    """:func:`numpy_losses.cross_entropy`, but the ``mean`` divides by every row's weight (BUG)."""
    check_options(reduction, size_average, reduce)
    dtype = np.asarray(input).dtype
    terms, exponent, _, _, work = class_index_terms(input, target, weight, ignore_index, label_smoothing)
    n_classes = np.shape(input)[0 if np.ndim(input) == 1 else 1]
    w = np.ones(n_classes, dtype=work) if weight is None else np.asarray(weight).astype(work)
    y = np.asarray(target).reshape(-1)
    every_row = w[np.where(y == ignore_index, 0, y)]  # BUG: ignored rows counted, as class 0
    with np.errstate(all="ignore"):
        result = reduce_terms(terms, reduction, np.sum(every_row), exponent)
    return rounded(result, dtype)
