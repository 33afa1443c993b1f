"""Hypothesis strategies for loss inputs, composed the way Hypothesis's own are.

Every floating value is drawn as a float64 that is *exactly representable* in
the dtype under test (rounded to it first), so casting to the dtype is exact
and the oracle sees precisely what the adapter sees.

Logit magnitudes come in regimes, because the failures live at the edges:
moderate values, the whole finite range up to the dtype's max, a large common
offset with a small spread (1e8-sized logits whose differences matter), values
near ``exp`` overflow (``log(max)``), and tiny/subnormal values.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from oracle.core import FORMATS, format_of

__all__ = [
    "DTYPES",
    "class_indices",
    "dtype_value_lists",
    "dtype_values",
    "logits",
    "numpy_dtype",
    "probabilities",
    "probability_rows",
    "shapes_with_classes",
    "weights",
]

DTYPES = ("float64", "float32", "float16", "bfloat16")


def numpy_dtype(dtype: str) -> np.dtype:
    return FORMATS[dtype].numpy_dtype


def to_dtype(values, dtype: str) -> np.ndarray:
    """Round float64 values to ``dtype`` (round-to-nearest-even); exact if representable."""
    arr = np.asarray(values, dtype=np.float64)
    if dtype == "bfloat16":
        return arr.astype(np.float32).astype(ml_dtypes.bfloat16) if arr.size else arr.astype(ml_dtypes.bfloat16)
    return arr.astype(numpy_dtype(dtype))


def _round(v: float, dtype: str) -> float:
    return float(to_dtype(np.array(v), dtype))


def _bounded_floats(dtype: str, min_value: float, max_value: float, allow_subnormal: bool) -> st.SearchStrategy[float]:
    """The float64 draws behind :func:`dtype_values`, before rounding to ``dtype``."""
    fmt = format_of(dtype)
    lo, hi = max(min_value, -fmt.max_finite), min(max_value, fmt.max_finite)
    subnormals_in_range = lo < fmt.smallest_normal and hi > -fmt.smallest_normal
    return st.floats(
        lo, hi, allow_nan=False, allow_infinity=False,
        allow_subnormal=allow_subnormal and subnormals_in_range,
    )


def _rounded(values, dtype: str, allow_subnormal: bool) -> np.ndarray:
    """float64 ``values`` rounded to ``dtype`` (round-to-nearest keeps each inside the
    drawn interval when its ends are representable: every interval the suite uses,
    [0, 1], [-10, 10], [-max, max], ...); subnormal results flushed to +0 when
    ``allow_subnormal`` is off. The result as float64."""
    r = to_dtype(values, dtype).astype(np.float64)
    if not allow_subnormal:
        r = np.where((r != 0) & (np.abs(r) < format_of(dtype).smallest_normal), 0.0, r)
    return r


def dtype_values(
    dtype: str,
    min_value: float,
    max_value: float,
    *,
    allow_subnormal: bool = True,
) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` that ``dtype`` represents exactly."""
    return _bounded_floats(dtype, min_value, max_value, allow_subnormal).map(
        lambda v: float(_rounded(v, dtype, allow_subnormal))
    )


def dtype_value_lists(
    dtype: str,
    min_value: float,
    max_value: float,
    size: int,
    *,
    allow_subnormal: bool = True,
) -> st.SearchStrategy[list[float]]:
    """``size`` values of :func:`dtype_values` -- the same choices, so the same values
    -- drawn as one list and rounded in one NumPy call: Hypothesis's ``map`` of each
    element costs as much as the float draw itself, and arrays of hundreds of elements
    are the bulk of a run's generation time (benchmarks/profile_run.py)."""
    return st.lists(_bounded_floats(dtype, min_value, max_value, allow_subnormal), min_size=size, max_size=size).map(
        lambda values: _rounded(values, dtype, allow_subnormal).tolist()
    )


def _log_max(dtype: str) -> float:
    return math.log(format_of(dtype).max_finite)


LOGIT_REGIMES = ("moderate", "wide", "large_offset", "near_overflow", "tiny")


@st.composite
def logits(
    draw,
    shape: tuple[int, ...],
    dtype: str,
    *,
    allow_neg_inf: bool = False,
    allow_pos_inf: bool = False,
    regimes: tuple[str, ...] = LOGIT_REGIMES,
) -> np.ndarray:
    """Logits of ``shape`` in ``dtype``, from one magnitude regime (module docstring).

    ``allow_neg_inf`` masks some entries with ``-inf`` (masked classes);
    ``allow_pos_inf`` lets ``+inf`` appear too (sigmoid-family losses, where the
    spec gives ``+inf`` a value).
    """
    fmt = format_of(dtype)
    regime = draw(st.sampled_from(regimes))
    n = int(np.prod(shape, dtype=np.int64))
    if regime == "moderate":
        values = draw(dtype_value_lists(dtype, -10.0, 10.0, n))
    elif regime == "wide":
        values = draw(dtype_value_lists(dtype, -fmt.max_finite, fmt.max_finite, n))
    elif regime == "large_offset":
        offset = draw(st.sampled_from([1e3, 1e5, 1e8, fmt.max_finite / 4]))
        offset = min(offset, fmt.max_finite / 4) * draw(st.sampled_from([1, -1]))
        spread = draw(st.lists(st.integers(-30, 30), min_size=n, max_size=n))
        values = [offset + s for s in spread]
    elif regime == "near_overflow":
        edge = _log_max(dtype)
        values = [v * draw(st.sampled_from([1, -1])) for v in draw(dtype_value_lists(dtype, edge - 8, edge + 8, n))]
    else:  # tiny
        values = draw(dtype_value_lists(dtype, -1e-3, 1e-3, n))
    arr = to_dtype(np.array(values, dtype=np.float64).reshape(shape), dtype).astype(np.float64)
    if allow_neg_inf or allow_pos_inf:
        specials = [-np.inf] * allow_neg_inf + [np.inf] * allow_pos_inf
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        if any(mask) and draw(st.integers(0, 3)) == 0:
            flat = arr.reshape(-1)
            for i, m in enumerate(mask):
                if m and draw(st.integers(0, 2)) == 0:
                    flat[i] = draw(st.sampled_from(specials))
    return to_dtype(arr, dtype)


@st.composite
def shapes_with_classes(draw, *, max_classes: int = 12, allow_large_classes: bool = True, max_elements: int = 1200):
    """``(input_shape, class_axis_size)``: ``(C)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``."""
    if allow_large_classes and draw(st.integers(0, 9)) == 0:
        n_classes = draw(st.integers(max_classes + 1, 300))
    else:
        n_classes = draw(st.integers(1, max_classes))
    form = draw(st.sampled_from(["C", "NC", "NC", "NC", "NCd"]))
    if form == "C":
        return (n_classes,), n_classes
    batch = draw(st.integers(1, max(1, min(6, max_elements // n_classes))))
    if form == "NC":
        return (batch, n_classes), n_classes
    extra = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    shape = (batch, n_classes, *extra)
    while np.prod(shape) > max_elements and batch > 1:
        batch -= 1
        shape = (batch, n_classes, *extra)
    return shape, n_classes


@st.composite
def class_indices(draw, shape: tuple[int, ...], n_classes: int, *, ignore_index: int | None = None) -> np.ndarray:
    """int64 class indices in ``[0, C)``; some (sometimes all) set to ``ignore_index``."""
    n = int(np.prod(shape, dtype=np.int64))
    values = draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    if ignore_index is not None and n:
        mode = draw(st.sampled_from(["none", "some", "some", "all"]))
        if mode == "all":
            values = [ignore_index] * n
        elif mode == "some":
            hits = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            values = [ignore_index if h else v for v, h in zip(values, hits)]
    return np.array(values, dtype=np.int64).reshape(shape)


@st.composite
def probability_rows(draw, n_rows: int, n_classes: int) -> np.ndarray:
    """float64 rows of non-negative values summing to 1 (up to float64 rounding):
    one-hot rows, rows with exact zeros, and dense rows."""
    rows = []
    for _ in range(n_rows):
        kind = draw(st.sampled_from(["one_hot", "sparse", "dense"]))
        if kind == "one_hot":
            row = np.zeros(n_classes)
            row[draw(st.integers(0, n_classes - 1))] = 1.0
        else:
            raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n_classes, max_size=n_classes)))
            if kind == "sparse":
                keep = np.array(draw(st.lists(st.booleans(), min_size=n_classes, max_size=n_classes)))
                raw = raw * keep
            if raw.sum() == 0:
                raw[draw(st.integers(0, n_classes - 1))] = 1.0
            row = raw / raw.sum()
        rows.append(row)
    return np.array(rows).reshape(n_rows, n_classes)


@st.composite
def probabilities(draw, shape: tuple[int, ...], dtype: str, *, class_axis: int = 1) -> np.ndarray:
    """Class-probability targets of ``shape`` (distributions along ``class_axis``)."""
    axis = class_axis if len(shape) > 1 else 0
    moved_shape = (*tuple(np.delete(np.array(shape), axis)), shape[axis])
    n_rows = int(np.prod(moved_shape[:-1], dtype=np.int64))
    rows = draw(probability_rows(n_rows, shape[axis]))
    arr = np.moveaxis(rows.reshape(moved_shape), -1, axis)
    return to_dtype(arr, dtype)


@st.composite
def weights(draw, shape: tuple[int, ...], dtype: str, *, max_value: float = 10.0) -> np.ndarray:
    """Non-negative rescaling weights with some exact zeros and ones."""
    n = int(np.prod(shape, dtype=np.int64))
    elem = st.one_of(st.just(0.0), st.just(1.0), dtype_values(dtype, 0.0, max_value))
    return to_dtype(np.array(draw(st.lists(elem, min_size=n, max_size=n)), dtype=np.float64).reshape(shape), dtype)
