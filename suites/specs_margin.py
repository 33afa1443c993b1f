"""Registry entries of the margin, ranking and embedding losses (``oracle/margin.py``,
``oracle/embedding.py``): strategies, fixed edge cases and invalid inputs.

The strategies aim at the kinks. Values are drawn on a dyadic grid (``k/8``) or
in the usual magnitude regimes; a *hinge* draw places an input exactly where
``max(0, z)`` switches (``z = 0``: ``x1 = x2 + y margin``, ``x = margin``,
``x_i = x_y - margin``, ``x_i = x_j - 1``), or one float beside it, so both the
value and the side a framework picks are checked there. Targets of
``multilabel_margin_loss`` list classes up to a -1 and then carry *padding* (any
in-range values), so the terminator is exercised.

``triplet_margin_with_distance_loss`` takes a callable ``distance_function``;
cases name it by a string of :data:`oracle.embedding.DISTANCE_FUNCTIONS`
(``"pairwise_distance"``, ``"l1"``, ``"cosine"``) and every adapter maps the
name to its framework's code for that distance (README, "Named distance functions").
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import oracle
from oracle.core import format_of

from .cases import Case
from .strategies import dtype_values, logits, to_dtype, weights

__all__ = ["margin_specs"]

REDUCTION = st.sampled_from(["none", "mean", "sum"])


def _a(values, dtype: str) -> np.ndarray:
    return to_dtype(np.array(values, dtype=np.float64), dtype)


def _i(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _max(dtype: str) -> float:
    return format_of(dtype).max_finite


def _nudge(draw, v: float, dtype: str) -> float:
    """``v`` itself (on the hinge) or one float to either side."""
    how = draw(st.sampled_from(["on", "on", "above", "below"]))
    if how == "on":
        return v
    fmt = format_of(dtype)
    x = float(to_dtype(np.array(v), dtype))
    step = abs(x) * 2.0 ** (1 - fmt.p) if x else fmt.smallest_subnormal
    return float(to_dtype(np.array(x + step if how == "above" else x - step), dtype))


@st.composite
def _grid(draw, shape: tuple[int, ...], dtype: str, *, limit: int = 80) -> np.ndarray:
    """Values ``k/8``, ``|k| <= limit``: sums and differences of a few are exact in every dtype."""
    n = int(np.prod(shape, dtype=np.int64))
    ks = draw(st.lists(st.integers(-limit, limit), min_size=n, max_size=n))
    return to_dtype(np.array(ks, dtype=np.float64).reshape(shape) / 8, dtype)


@st.composite
def _values(draw, shape: tuple[int, ...], dtype: str, *, allow_infinity: bool = False) -> np.ndarray:
    if draw(st.integers(0, 2)) == 0:
        return draw(_grid(shape, dtype))
    regimes = ("moderate", "wide", "tiny", "near_overflow", "large_offset")
    return draw(logits(shape, dtype, allow_neg_inf=allow_infinity, allow_pos_inf=allow_infinity, regimes=regimes))


@st.composite
def _elementwise_shape(draw) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=2)))


@st.composite
def _signs(draw, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return to_dtype(np.array(draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n))).reshape(shape), dtype)


def _margin_value(dtype: str):
    return st.sampled_from([0.0, 1.0, 0.5, -0.5, 2.0]) | dtype_values(dtype, -4.0, 4.0)


# ------------------------------------------------------------------ margin_ranking_loss


@st.composite
def margin_ranking_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    x2 = draw(_values(shape, dtype))
    y = draw(_signs(shape, dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    margin = draw(_margin_value(dtype)) if draw(st.booleans()) else 0.0
    if margin:
        kwargs["margin"] = float(to_dtype(np.array(margin), dtype))
    if draw(st.booleans()) and np.all(np.abs(x2.astype(np.float64)) <= 16):
        # z = -y (x1 - x2) + margin = 0 at x1 = x2 + y margin (exact on the grid), or beside it
        base = x2.astype(np.float64) + y.astype(np.float64) * float(kwargs.get("margin", 0.0))
        x1 = _a([_nudge(draw, v, dtype) for v in base.reshape(-1)], dtype).reshape(shape)
    else:
        x1 = draw(_values(shape, dtype))
    return Case("margin_ranking_loss", {"input1": x1, "input2": x2, "target": y}, kwargs, dtype)


def _mrl(x1, x2, y, dtype, label, **kw) -> Case:
    return Case("margin_ranking_loss", {"input1": _a(x1, dtype), "input2": _a(x2, dtype), "target": _a(y, dtype)}, kw, dtype, label)


MARGIN_RANKING_EDGES = {
    "on_the_hinge_gives_0": lambda d: _mrl([1.5, -2.0], [1.0, -1.5], [1.0, -1.0], d, "on_the_hinge_gives_0", margin=0.5, reduction="none"),
    "ranked_right_and_wrong": lambda d: _mrl([3.0, 1.0], [1.0, 3.0], [1.0, 1.0], d, "ranked_right_and_wrong", reduction="none"),
    "negative_margin": lambda d: _mrl([1.0, 2.0], [1.5, 1.0], [1.0, -1.0], d, "negative_margin", margin=-0.25, reduction="none"),
    "opposite_extremes_overflow": lambda d: _mrl([_max(d)], [-_max(d)], [-1.0], d, "opposite_extremes_overflow", reduction="none"),
    "infinite_input": lambda d: _mrl([np.inf, -np.inf], [0.0, 0.0], [1.0, 1.0], d, "infinite_input", reduction="none"),
}

MARGIN_RANKING_INVALID = {
    "target_label_0": lambda d: _mrl([1.0], [0.0], [0.0], d, "target_label_0"),
    "target_label_2": lambda d: _mrl([1.0], [0.0], [2.0], d, "target_label_2"),
    "input_shape_mismatch": lambda d: _mrl([1.0, 2.0], [0.0], [1.0, 1.0], d, "input_shape_mismatch"),
    "unknown_reduction": lambda d: _mrl([1.0], [0.0], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ hinge_embedding_loss


@st.composite
def hinge_embedding_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    y = draw(_signs(shape, dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["margin"] = float(to_dtype(np.array(draw(_margin_value(dtype))), dtype))
    if draw(st.booleans()):
        m = kwargs.get("margin", 1.0)
        n = int(np.prod(shape, dtype=np.int64))
        x = _a([_nudge(draw, m, dtype) for _ in range(n)], dtype).reshape(shape)
    else:
        x = draw(_values(shape, dtype))
    return Case("hinge_embedding_loss", {"input": x, "target": y}, kwargs, dtype)


def _hel(x, y, dtype, label, **kw) -> Case:
    return Case("hinge_embedding_loss", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


HINGE_EMBEDDING_EDGES = {
    "at_the_margin_gives_0": lambda d: _hel([1.0, 0.5], [-1.0, -1.0], d, "at_the_margin_gives_0", reduction="none"),
    "positive_pairs_give_the_input": lambda d: _hel([-3.0, 0.0, 2.5], [1.0, 1.0, 1.0], d, "positive_pairs_give_the_input", reduction="none"),
    "negative_input_past_margin": lambda d: _hel([-2.0, 3.0], [-1.0, -1.0], d, "negative_input_past_margin", margin=2.0, reduction="none"),
    "mean_of_mixed_labels": lambda d: _hel([0.25, 0.25, 4.0], [1.0, -1.0, -1.0], d, "mean_of_mixed_labels"),
    "infinite_input": lambda d: _hel([np.inf, -np.inf, np.inf], [1.0, -1.0, -1.0], d, "infinite_input", reduction="none"),
}

HINGE_EMBEDDING_INVALID = {
    "target_label_0": lambda d: _hel([0.5], [0.0], d, "target_label_0"),
    "target_shape_mismatch": lambda d: _hel([0.5, 1.0], [1.0], d, "target_shape_mismatch"),
    "unknown_reduction": lambda d: _hel([0.5], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ soft_margin_loss


@st.composite
def soft_margin_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    x = draw(_values(shape, dtype, allow_infinity=draw(st.integers(0, 5)) == 0))
    y = draw(_signs(shape, dtype))
    return Case("soft_margin_loss", {"input": x, "target": y}, {"reduction": draw(REDUCTION)}, dtype)


def _sml(x, y, dtype, label, **kw) -> Case:
    return Case("soft_margin_loss", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


SOFT_MARGIN_EDGES = {
    "zero_input_gives_log_2": lambda d: _sml([0.0, 0.0], [1.0, -1.0], d, "zero_input_gives_log_2", reduction="none"),
    "large_wrong_margin_is_linear": lambda d: _sml([-100.0, 100.0], [1.0, -1.0], d, "large_wrong_margin_is_linear", reduction="none"),
    "exp_overflow_threshold": lambda d: _sml([-12.0, -89.0, -710.0], [1.0, 1.0, 1.0], d, "exp_overflow_threshold", reduction="none"),
    "large_right_margin_is_tiny": lambda d: _sml([40.0, -40.0], [1.0, -1.0], d, "large_right_margin_is_tiny", reduction="none"),
    "dtype_max": lambda d: _sml([_max(d), -_max(d)], [1.0, 1.0], d, "dtype_max", reduction="none"),
    "infinite_input": lambda d: _sml([np.inf, -np.inf], [1.0, 1.0], d, "infinite_input", reduction="none"),
}

SOFT_MARGIN_INVALID = {
    "target_label_0": lambda d: _sml([0.5], [0.0], d, "target_label_0"),
    "target_shape_mismatch": lambda d: _sml([0.5, 1.0], [1.0], d, "target_shape_mismatch"),
    "unknown_reduction": lambda d: _sml([0.5], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ multilabel_soft_margin_loss


@st.composite
def _class_shape(draw, *, max_classes: int = 10) -> tuple[int, ...]:
    c = draw(st.integers(1, max_classes))
    return (c,) if draw(st.integers(0, 3)) == 0 else (draw(st.integers(1, 5)), c)


@st.composite
def multilabel_soft_margin_cases(draw, dtype: str) -> Case:
    shape = draw(_class_shape())
    x = draw(_values(shape, dtype))
    n = int(np.prod(shape))
    y = to_dtype(np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))).reshape(shape), dtype)
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["weight"] = draw(weights(shape[-1:], dtype))
    return Case("multilabel_soft_margin_loss", {"input": x, "target": y}, kwargs, dtype)


def _mlsm(x, y, dtype, label, **kw) -> Case:
    return Case("multilabel_soft_margin_loss", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


MULTILABEL_SOFT_MARGIN_EDGES = {
    "zero_logits_give_log_2": lambda d: _mlsm([[0.0, 0.0, 0.0]], [[1.0, 0.0, 1.0]], d, "zero_logits_give_log_2", reduction="none"),
    "weighted_classes_mean_over_C": lambda d: _mlsm(
        [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], d, "weighted_classes_mean_over_C",
        weight=_a([0.5, 2.0, 0.0], d), reduction="none",
    ),
    "unbatched_input": lambda d: _mlsm([2.0, -1.0], [1.0, 0.0], d, "unbatched_input", reduction="none"),
    "logits_40": lambda d: _mlsm([[40.0, -40.0]], [[0.0, 1.0]], d, "logits_40", reduction="sum"),
    "infinite_logits_matching_targets": lambda d: _mlsm([[np.inf, -np.inf]], [[1.0, 0.0]], d, "infinite_logits_matching_targets", reduction="none"),
}

MULTILABEL_SOFT_MARGIN_INVALID = {
    "weight_wrong_length": lambda d: _mlsm([[0.5, 1.0]], [[1.0, 0.0]], d, "weight_wrong_length", weight=_a([1.0, 1.0, 1.0], d)),
    "target_shape_mismatch": lambda d: _mlsm([[0.5, 1.0]], [[1.0, 0.0, 1.0]], d, "target_shape_mismatch"),
    "unknown_reduction": lambda d: _mlsm([[0.5]], [[1.0]], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ multi_margin_loss


@st.composite
def multi_margin_cases(draw, dtype: str) -> Case:
    c = draw(st.integers(1, 10))
    batched = draw(st.integers(0, 3)) > 0
    n = draw(st.integers(1, 5)) if batched else 1
    x = draw(_values((n, c), dtype)).astype(np.float64)
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    kwargs: dict = {}
    p = draw(st.sampled_from([1, 2]))
    if p != 1:
        kwargs["p"] = p
    margin = float(to_dtype(np.array(draw(_margin_value(dtype))), dtype)) if draw(st.booleans()) else 1.0
    if margin != 1.0:
        kwargs["margin"] = margin
    if draw(st.booleans()) and np.all(np.abs(x) <= 16):
        # put some classes exactly on (or beside) their hinge: x_i = x_y - margin
        for r in range(n):
            for i in range(c):
                if i != y[r] and draw(st.booleans()):
                    x[r, i] = _nudge(draw, x[r, y[r]] - margin, dtype)
    if draw(st.booleans()):
        kwargs["weight"] = draw(weights((c,), dtype))
    kwargs["reduction"] = draw(REDUCTION)
    x = to_dtype(x, dtype)
    target = y if batched else y.reshape(())
    return Case("multi_margin_loss", {"input": x if batched else x.reshape(c), "target": target}, kwargs, dtype)


def _mm(x, y, dtype, label, **kw) -> Case:
    return Case("multi_margin_loss", {"input": _a(x, dtype), "target": _i(y)}, kw, dtype, label)


MULTI_MARGIN_EDGES = {
    "on_the_hinge_adds_nothing": lambda d: _mm([[0.0, 1.0, 0.0]], [1], d, "on_the_hinge_adds_nothing", reduction="none"),
    "p2_weighted": lambda d: _mm([[0.5, 1.0, 2.0], [1.0, -1.0, 0.0]], [0, 2], d, "p2_weighted", p=2, weight=_a([2.0, 0.5, 1.0], d), reduction="none"),
    "margin_half_mean_over_N": lambda d: _mm([[0.5, 1.0, 2.0], [1.0, -1.0, 0.0]], [1, 0], d, "margin_half_mean_over_N", margin=0.5),
    "single_class_gives_0": lambda d: _mm([[3.0], [-2.0]], [0, 0], d, "single_class_gives_0", reduction="none"),
    "unbatched_input": lambda d: Case("multi_margin_loss", {"input": _a([0.5, 1.0, 2.0], d), "target": _i(1)}, {"reduction": "none"}, d, "unbatched_input"),
    "opposite_extremes_overflow": lambda d: _mm([[-_max(d), _max(d)]], [0], d, "opposite_extremes_overflow", reduction="none"),
}

MULTI_MARGIN_INVALID = {
    "target_class_out_of_range": lambda d: _mm([[0.0, 1.0]], [2], d, "target_class_out_of_range"),
    "negative_target": lambda d: _mm([[0.0, 1.0]], [-1], d, "negative_target"),
    "p_3": lambda d: _mm([[0.0, 1.0]], [0], d, "p_3", p=3),
    "weight_wrong_length": lambda d: _mm([[0.0, 1.0]], [0], d, "weight_wrong_length", weight=_a([1.0, 1.0, 1.0], d)),
    "unknown_reduction": lambda d: _mm([[0.0, 1.0]], [0], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ multilabel_margin_loss


@st.composite
def _multilabel_targets(draw, n: int, c: int) -> np.ndarray:
    """Per row: distinct listed classes (sometimes none, sometimes all), a -1 unless the
    list fills the row, then in-range padding (after the terminator it is ignored)."""
    rows = []
    for _ in range(n):
        k = draw(st.integers(0, c))
        listed = draw(st.permutations(range(c)))[:k]
        if draw(st.integers(0, 4)) == 0 and listed:
            listed = [*listed, listed[0]]  # a class listed twice counts twice
            listed = listed[:c]
        row = list(listed)
        if len(row) < c:
            row.append(-1)
            row += draw(st.lists(st.integers(-1, c - 1), min_size=c - len(row), max_size=c - len(row)))
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(n, c)


@st.composite
def multilabel_margin_cases(draw, dtype: str) -> Case:
    c = draw(st.integers(1, 8))
    batched = draw(st.integers(0, 3)) > 0
    n = draw(st.integers(1, 5)) if batched else 1
    x = draw(_values((n, c), dtype)).astype(np.float64)
    target = draw(_multilabel_targets(n, c))
    if draw(st.booleans()) and np.all(np.abs(x) <= 16):
        # a non-target class on (or beside) the hinge of a listed one: x_i = x_j - 1
        for r in range(n):
            listed = [int(v) for v in target[r][: list(target[r]).index(-1) if -1 in target[r] else c]]
            others = [i for i in range(c) if i not in listed]
            if listed and others:
                j, i = draw(st.sampled_from(listed)), draw(st.sampled_from(others))
                x[r, i] = _nudge(draw, x[r, j] - 1.0, dtype)
    x = to_dtype(x, dtype)
    args = {"input": x, "target": target} if batched else {"input": x.reshape(c), "target": target.reshape(c)}
    return Case("multilabel_margin_loss", args, {"reduction": draw(REDUCTION)}, dtype)


def _mlm(x, y, dtype, label, **kw) -> Case:
    return Case("multilabel_margin_loss", {"input": _a(x, dtype), "target": _i(y)}, kw, dtype, label)


MULTILABEL_MARGIN_EDGES = {
    "docs_example": lambda d: _mlm([[0.1, 0.2, 0.4, 0.8]], [[3, 0, -1, 1]], d, "docs_example", reduction="none"),
    "padding_after_terminator_ignored": lambda d: _mlm([[0.1, 0.2, 0.4, 0.8]], [[3, -1, 0, 1]], d, "padding_after_terminator_ignored", reduction="none"),
    "no_listed_class_gives_0": lambda d: _mlm([[0.1, 0.2], [1.0, -1.0]], [[-1, 0], [-1, 1]], d, "no_listed_class_gives_0", reduction="none"),
    "all_classes_listed_gives_0": lambda d: _mlm([[0.1, 0.2, 0.3]], [[2, 0, 1]], d, "all_classes_listed_gives_0", reduction="none"),
    "class_listed_twice_counts_twice": lambda d: _mlm([[0.1, 0.2, 0.4, 0.8]], [[3, 3, -1, 0]], d, "class_listed_twice_counts_twice", reduction="none"),
    "on_the_hinge_adds_nothing": lambda d: _mlm([[1.0, 0.0, 0.5]], [[0, -1, -1]], d, "on_the_hinge_adds_nothing", reduction="none"),
    "unbatched_input": lambda d: _mlm([0.1, 0.2, 0.4, 0.8], [3, 0, -1, 1], d, "unbatched_input", reduction="none"),
}

MULTILABEL_MARGIN_INVALID = {
    "target_class_out_of_range": lambda d: _mlm([[0.1, 0.2]], [[2, -1]], d, "target_class_out_of_range"),
    "target_below_minus_one": lambda d: _mlm([[0.1, 0.2]], [[-2, 0]], d, "target_below_minus_one"),
    "target_shape_mismatch": lambda d: _mlm([[0.1, 0.2]], [[0, -1, 1]], d, "target_shape_mismatch"),
    "unknown_reduction": lambda d: _mlm([[0.1, 0.2]], [[0, -1]], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ cosine_embedding_loss


@st.composite
def cosine_embedding_cases(draw, dtype: str) -> Case:
    dim = draw(st.integers(1, 8))
    batched = draw(st.integers(0, 3)) > 0
    n = draw(st.integers(1, 5)) if batched else 1
    a = draw(_values((n, dim), dtype)).astype(np.float64)
    kind = draw(st.sampled_from(["independent", "independent", "parallel", "zero"]))
    if kind == "parallel":  # cos = +-1 exactly: b = +-2 a (exact scaling; may overflow to inf)
        b = a * draw(st.sampled_from([2.0, -2.0, 0.5]))
    else:
        b = draw(_values((n, dim), dtype)).astype(np.float64)
        if kind == "zero":
            (a if draw(st.booleans()) else b)[draw(st.integers(0, n - 1))] = 0.0
    y = draw(_signs((n,), dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["margin"] = float(to_dtype(np.array(draw(st.sampled_from([0.5, -0.5, 0.0, 0.9]) | dtype_values(dtype, -1.0, 1.0))), dtype))
    a, b = to_dtype(a, dtype), to_dtype(b, dtype)
    if not batched:
        a, b, y = a.reshape(dim), b.reshape(dim), y.reshape(())
    return Case("cosine_embedding_loss", {"input1": a, "input2": b, "target": y}, kwargs, dtype)


def _cel(a, b, y, dtype, label, **kw) -> Case:
    return Case("cosine_embedding_loss", {"input1": _a(a, dtype), "input2": _a(b, dtype), "target": _a(y, dtype)}, kw, dtype, label)


COSINE_EMBEDDING_EDGES = {
    "orthogonal_and_parallel": lambda d: _cel([[1.0, 0.0], [1.0, 2.0]], [[0.0, 3.0], [2.0, 4.0]], [1.0, 1.0], d, "orthogonal_and_parallel", reduction="none"),
    "zero_vector_has_cos_0": lambda d: _cel([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], [[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]], [1.0, -1.0], d, "zero_vector_has_cos_0", reduction="none"),
    "negative_margin_on_zero_vector": lambda d: _cel([[0.0, 0.0]], [[1.0, 1.0]], [-1.0], d, "negative_margin_on_zero_vector", margin=-0.5, reduction="none"),
    "dissimilar_at_the_margin": lambda d: _cel([[3.0, 4.0]], [[3.0, 4.0]], [-1.0], d, "dissimilar_at_the_margin", margin=1.0, reduction="none"),
    "small_vectors": lambda d: _cel([[1e-3, 2e-3]], [[2e-3, 1e-3]], [1.0], d, "small_vectors", reduction="none"),
    "large_vectors": lambda d: _cel([[1e20, 2e20]], [[2e20, 1e20]], [1.0], d, "large_vectors", reduction="none") if d in ("float64", "float32", "bfloat16") else _cel([[1e2, 2e2]], [[2e2, 1e2]], [1.0], d, "large_vectors", reduction="none"),
}

COSINE_EMBEDDING_INVALID = {
    "target_label_0": lambda d: _cel([[1.0, 0.0]], [[0.0, 1.0]], [0.0], d, "target_label_0"),
    "input_shape_mismatch": lambda d: _cel([[1.0, 0.0]], [[0.0, 1.0, 2.0]], [1.0], d, "input_shape_mismatch"),
    "unknown_reduction": lambda d: _cel([[1.0, 0.0]], [[0.0, 1.0]], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ------------------------------------------------------------------ triplet losses


@st.composite
def _triplet_arrays(draw, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    dim = draw(st.integers(1, 8))
    batched = draw(st.integers(0, 3)) > 0
    n = draw(st.integers(1, 5)) if batched else 1
    shape = (n, dim) if batched else (dim,)
    a = draw(_values(shape, dtype))
    kind = draw(st.sampled_from(["independent", "independent", "negative_is_positive", "positive_is_anchor"]))
    p = draw(_values(shape, dtype))
    neg = draw(_values(shape, dtype))
    if kind == "negative_is_positive":  # d(a, n) = d(a, p): the loss is the margin
        neg = p.copy()
    elif kind == "positive_is_anchor":  # d(a, p) = eps D^(1/p)
        p = a.copy()
    return a, p, neg, batched


@st.composite
def triplet_margin_cases(draw, dtype: str) -> Case:
    a, p, neg, _ = draw(_triplet_arrays(dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["margin"] = float(to_dtype(np.array(draw(st.sampled_from([0.5, 2.0, 1e-3]) | dtype_values(dtype, 1e-3, 8.0))), dtype))
    order = draw(st.sampled_from([2, 2, 1, 3]))
    if order != 2:
        kwargs["p"] = float(order)
    eps = draw(st.sampled_from([1e-6, 1e-6, 0.0, 1e-3]))
    if eps != 1e-6:
        kwargs["eps"] = eps
    if draw(st.booleans()):
        kwargs["swap"] = True
    return Case("triplet_margin_loss", {"anchor": a, "positive": p, "negative": neg}, kwargs, dtype)


def _tml(anchor, positive, negative, dtype, label, fn="triplet_margin_loss", **kw) -> Case:
    return Case(fn, {"anchor": _a(anchor, dtype), "positive": _a(positive, dtype), "negative": _a(negative, dtype)}, kw, dtype, label)


TRIPLET_EDGES = {
    "identical_triplet_gives_margin": lambda d: _tml([[1.0, 2.0]], [[1.0, 2.0]], [[1.0, 2.0]], d, "identical_triplet_gives_margin", reduction="none"),
    "eps_added_to_difference": lambda d: _tml([[1.0, 2.0]], [[1.0, 2.0]], [[3.0, 2.0]], d, "eps_added_to_difference", margin=2.0, reduction="none"),
    "on_the_hinge_p1_eps0": lambda d: _tml([[0.0, 0.0]], [[1.0, 0.5]], [[2.5, 0.0]], d, "on_the_hinge_p1_eps0", p=1.0, eps=0.0, reduction="none"),
    "swap_picks_positive_negative_distance": lambda d: _tml([[0.0, 0.0]], [[3.0, 0.0]], [[4.0, 0.0]], d, "swap_picks_positive_negative_distance", swap=True, reduction="none"),
    "unbatched_input": lambda d: _tml([0.0, 1.0], [1.0, 1.0], [2.0, 2.0], d, "unbatched_input", reduction="none"),
    "large_components": lambda d: _tml([[min(1e20, _max(d) / 4), 0.0]], [[0.0, 0.0]], [[0.0, 1.0]], d, "large_components", reduction="none"),
}

TRIPLET_INVALID = {
    "margin_zero": lambda d: _tml([[1.0]], [[0.0]], [[2.0]], d, "margin_zero", margin=0.0),
    "margin_negative": lambda d: _tml([[1.0]], [[0.0]], [[2.0]], d, "margin_negative", margin=-1.0),
    "shape_mismatch": lambda d: _tml([[1.0, 2.0]], [[0.0]], [[2.0, 1.0]], d, "shape_mismatch"),
    "unknown_reduction": lambda d: _tml([[1.0]], [[0.0]], [[2.0]], d, "unknown_reduction", reduction="avg"),
}


@st.composite
def triplet_margin_with_distance_cases(draw, dtype: str) -> Case:
    a, p, neg, _ = draw(_triplet_arrays(dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    name = draw(st.sampled_from([None, *oracle.embedding.DISTANCE_FUNCTIONS]))
    if name is not None:
        kwargs["distance_function"] = name
    if draw(st.booleans()):
        kwargs["margin"] = float(to_dtype(np.array(draw(st.sampled_from([0.5, 2.0]) | dtype_values(dtype, 1e-3, 8.0))), dtype))
    if draw(st.booleans()):
        kwargs["swap"] = True
    return Case("triplet_margin_with_distance_loss", {"anchor": a, "positive": p, "negative": neg}, kwargs, dtype)


_TWD = "triplet_margin_with_distance_loss"

TRIPLET_WITH_DISTANCE_EDGES = {
    "default_distance_identical_triplet": lambda d: _tml([[1.0, 2.0]], [[1.0, 2.0]], [[1.0, 2.0]], d, "default_distance_identical_triplet", fn=_TWD, reduction="none"),
    "l1_distance": lambda d: _tml([[0.0, 0.0]], [[1.0, 0.5]], [[2.0, 0.0]], d, "l1_distance", fn=_TWD, distance_function="l1", reduction="none"),
    "cosine_distance": lambda d: _tml([[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]], d, "cosine_distance", fn=_TWD, distance_function="cosine", reduction="none"),
    "cosine_distance_zero_vector": lambda d: _tml([[0.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]], d, "cosine_distance_zero_vector", fn=_TWD, distance_function="cosine", reduction="none"),
    "swap_with_l1": lambda d: _tml([[0.0, 0.0]], [[3.0, 0.0]], [[4.0, 0.0]], d, "swap_with_l1", fn=_TWD, distance_function="l1", swap=True, reduction="none"),
}

TRIPLET_WITH_DISTANCE_INVALID = {
    "margin_zero": lambda d: _tml([[1.0]], [[0.0]], [[2.0]], d, "margin_zero", fn=_TWD, margin=0.0),
    "shape_mismatch": lambda d: _tml([[1.0, 2.0]], [[0.0]], [[2.0, 1.0]], d, "shape_mismatch", fn=_TWD),
    "unknown_reduction": lambda d: _tml([[1.0]], [[0.0]], [[2.0]], d, "unknown_reduction", fn=_TWD, reduction="avg"),
}


def margin_specs() -> list:
    """The nine LossSpecs (imported lazily: registry.py imports this module)."""
    from .registry import LossSpec

    return [
        LossSpec("margin_ranking_loss", oracle.margin_ranking_loss_terms, margin_ranking_cases, MARGIN_RANKING_EDGES, MARGIN_RANKING_INVALID,
                 grad_wrt=("input1", "input2")),
        LossSpec("hinge_embedding_loss", oracle.hinge_embedding_loss_terms, hinge_embedding_cases, HINGE_EMBEDDING_EDGES, HINGE_EMBEDDING_INVALID),
        LossSpec("soft_margin_loss", oracle.soft_margin_loss_terms, soft_margin_cases, SOFT_MARGIN_EDGES, SOFT_MARGIN_INVALID),
        LossSpec(
            "multilabel_soft_margin_loss", oracle.multilabel_soft_margin_loss_terms, multilabel_soft_margin_cases,
            MULTILABEL_SOFT_MARGIN_EDGES, MULTILABEL_SOFT_MARGIN_INVALID, grad_wrt=("input", "target", "weight"),
        ),
        LossSpec("multi_margin_loss", oracle.multi_margin_loss_terms, multi_margin_cases, MULTI_MARGIN_EDGES, MULTI_MARGIN_INVALID),
        LossSpec(
            "multilabel_margin_loss", oracle.multilabel_margin_loss_terms, multilabel_margin_cases,
            MULTILABEL_MARGIN_EDGES, MULTILABEL_MARGIN_INVALID,
        ),
        LossSpec(
            "cosine_embedding_loss", oracle.cosine_embedding_loss_terms, cosine_embedding_cases,
            COSINE_EMBEDDING_EDGES, COSINE_EMBEDDING_INVALID, grad_wrt=("input1", "input2"),
        ),
        LossSpec("triplet_margin_loss", oracle.triplet_margin_loss_terms, triplet_margin_cases, TRIPLET_EDGES, TRIPLET_INVALID,
                 grad_wrt=("anchor", "positive", "negative")),
        LossSpec(
            _TWD, oracle.triplet_margin_with_distance_loss_terms, triplet_margin_with_distance_cases,
            TRIPLET_WITH_DISTANCE_EDGES, TRIPLET_WITH_DISTANCE_INVALID, legacy_reduction_arguments=False,
            grad_wrt=("anchor", "positive", "negative"),
        ),
    ]
