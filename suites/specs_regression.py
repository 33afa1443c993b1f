"""Registry entries for the regression, distribution and sequence losses (issue 4).

``l1_loss``, ``mse_loss``, ``huber_loss``, ``smooth_l1_loss``, ``poisson_nll_loss``,
``gaussian_nll_loss`` and ``ctc_loss``: their case strategies, fixed edge cases and the invalid inputs the
spec rejects. :func:`specs` returns the :class:`suites.registry.LossSpec` list that
``suites/registry.py`` adds to its ``REGISTRY`` (imported there lazily, so this module
never imports the registry at import time).

Where the failures live, and so what the strategies reach for:

* differences ``d = x - y`` tiny against ``|x|`` (cancellation: ``y`` one or a few ULPs
  from ``x``), huge (up to the dtype's max, where ``d`` or ``d^2`` overflows), exactly 0,
  and subnormal;
* ``|d|`` around ``delta`` / ``beta`` (both branches of Huber and smooth L1), ``beta = 0``;
* Poisson targets 0 and 1 (no Stirling term) and above 1 (with it), ``exp`` near overflow
  for ``log_input``, rates at 0 where only ``eps`` keeps the log finite;
* Gaussian variances 0 and below ``eps`` (clamped), huge and tiny, and every shape of
  ``var`` the docs allow (a float, ``input``'s shape, one dimension short, a dimension 1).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from oracle.core import format_of

from .cases import Case
from .strategies import dtype_value_lists, dtype_values, to_dtype, weights

__all__ = ["specs"]

REDUCTION = st.sampled_from(["none", "mean", "sum"])


def _a(values, dtype: str) -> np.ndarray:
    return to_dtype(np.array(values, dtype=np.float64), dtype)


def _max(dtype: str) -> float:
    return format_of(dtype).max_finite


@st.composite
def _shape(draw, min_dims: int = 0) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=3)))


def _n(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


@st.composite
def _values(draw, shape, dtype: str, lo: float, hi: float) -> np.ndarray:
    n = _n(shape)
    return _a(np.array(draw(dtype_value_lists(dtype, lo, hi, n))).reshape(shape), dtype)


@st.composite
def _near(draw, x: np.ndarray, dtype: str) -> np.ndarray:
    """Values a few ULPs of ``dtype`` from ``x`` (or equal): ``x - y`` cancels."""
    fmt = format_of(dtype)
    steps = np.array(draw(st.lists(st.integers(-4, 4), min_size=x.size, max_size=x.size)), dtype=np.float64)
    xf = x.astype(np.float64).reshape(-1)
    ulp = np.array([max(abs(v), fmt.smallest_normal) * 2.0 ** (1 - fmt.p) for v in xf])
    return _a((xf + steps * ulp).reshape(x.shape), dtype)


@st.composite
def input_target_pair(draw, shape, dtype: str, *, threshold: float | None = None):
    """``(input, target)`` of ``shape`` in one difference regime (module docstring)."""
    regime = draw(st.sampled_from(["moderate", "moderate", "cancel", "wide", "tiny", "threshold"]))
    fmt = format_of(dtype)
    if regime == "wide":
        x = draw(_values(shape, dtype, -fmt.max_finite, fmt.max_finite))
        y = draw(_values(shape, dtype, -fmt.max_finite, fmt.max_finite))
    elif regime == "tiny":
        x = draw(_values(shape, dtype, -1e-3, 1e-3))
        y = draw(_values(shape, dtype, -fmt.smallest_normal * 4, fmt.smallest_normal * 4))
    else:
        x = draw(_values(shape, dtype, -10.0 if regime != "cancel" else -1e4, 10.0 if regime != "cancel" else 1e4))
        if regime == "cancel":
            y = draw(_near(x, dtype))
        elif regime == "threshold" and threshold:
            # |d| around the branch point: y = x -+ threshold * (1 + k 2^-p)
            n = _n(shape)
            ks = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=np.float64)
            signs = np.array(draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n)))
            d = (threshold * (1 + ks * 2.0 ** -fmt.p) * signs).reshape(shape)
            y = _a(x.astype(np.float64) - d, dtype)
        else:
            y = draw(_values(shape, dtype, -10.0, 10.0))
    if draw(st.booleans()):
        x, y = y, x
    return x, y


@st.composite
def _threshold(draw, dtype: str, *, allow_zero: bool) -> float:
    """A positive ``delta``/``beta`` (0 too for ``beta``), exactly representable in ``dtype``."""
    choices = [1.0, 0.5, 2.0, 1e-3, 100.0] + ([0.0] if allow_zero else [])
    if draw(st.booleans()):
        return float(_a(draw(st.sampled_from(choices)), dtype))
    return float(draw(dtype_values(dtype, 2.0 ** -10, 1e3, allow_subnormal=False)))


# ------------------------------------------------------------------ L1 / MSE / Huber / smooth L1


@st.composite
def _pointwise_cases(draw, dtype: str, fn: str) -> Case:
    shape = draw(_shape())
    kwargs: dict = {"reduction": draw(REDUCTION)}
    threshold = None
    if fn == "huber_loss":
        threshold = draw(_threshold(dtype, allow_zero=False))
        if threshold != 1.0 or draw(st.booleans()):
            kwargs["delta"] = threshold
    elif fn == "smooth_l1_loss":
        threshold = draw(_threshold(dtype, allow_zero=True))
        if threshold != 1.0 or draw(st.booleans()):
            kwargs["beta"] = threshold
    x, y = draw(input_target_pair(shape, dtype, threshold=threshold))
    if fn != "smooth_l1_loss" and draw(st.booleans()):
        kwargs["weight"] = draw(weights(shape, dtype))
    return Case(fn, {"input": x, "target": y}, kwargs, dtype)


def _pair(fn, x, y, dtype, label, **kw) -> Case:
    return Case(fn, {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


def _pointwise_edges(fn: str) -> dict:
    edges = {
        "zero_difference_gives_0": lambda d: _pair(fn, [1.5, -2.0, 0.0], [1.5, -2.0, 0.0], d, "zero_difference_gives_0", reduction="none"),
        "difference_overflows_dtype": lambda d: _pair(fn, [_max(d), 1.0], [-_max(d), 1.0], d, "difference_overflows_dtype", reduction="none"),
        "one_ulp_apart": lambda d: _pair(fn, [1.0, 1e3], [1.0 + 2.0 ** (1 - format_of(d).p), 1e3], d, "one_ulp_apart", reduction="none"),
        "subnormal_difference": lambda d: _pair(
            fn, [format_of(d).smallest_subnormal * 3], [format_of(d).smallest_subnormal], d, "subnormal_difference", reduction="none"
        ),
        "mean_of_mixed_signs": lambda d: _pair(fn, [[0.5, -3.0], [2.0, 0.25]], [[0.0, 1.0], [-2.0, 0.25]], d, "mean_of_mixed_signs"),
        "unbatched_scalar": lambda d: _pair(fn, 3.0, -1.0, d, "unbatched_scalar"),
    }
    if fn in ("l1_loss", "mse_loss", "huber_loss"):
        edges["weighted_mean"] = lambda d: _pair(
            fn, [[0.5, -3.0], [2.0, 0.25]], [[0.0, 1.0], [-2.0, 0.25]], d, "weighted_mean",
            weight=_a([[0.25, 1.0], [4.0, 0.0]], d),
        )
        edges["zero_weights_mean"] = lambda d: _pair(
            fn, [1.0, 2.0], [0.0, 0.0], d, "zero_weights_mean", weight=_a([0.0, 0.0], d),
        )
    if fn == "huber_loss":
        edges.update({
            "difference_at_delta": lambda d: _pair(fn, [2.0, -2.0], [0.0, 0.0], d, "difference_at_delta", reduction="none", delta=2.0),
            "small_delta_is_scaled_l1": lambda d: _pair(fn, [3.0, -0.5], [0.0, 0.0], d, "small_delta_is_scaled_l1", reduction="none", delta=2.0 ** -10),
            "large_delta_is_half_mse": lambda d: _pair(fn, [3.0, -0.5], [0.0, 0.0], d, "large_delta_is_half_mse", reduction="none", delta=1e3 if d != "float16" else 1024.0),
        })
    if fn == "smooth_l1_loss":
        edges.update({
            "beta_0_is_l1": lambda d: _pair(fn, [3.0, -0.5, 0.0], [0.0, 0.25, 0.0], d, "beta_0_is_l1", reduction="none", beta=0.0),
            "difference_at_beta": lambda d: _pair(fn, [0.5, -0.5], [0.0, 0.0], d, "difference_at_beta", reduction="none", beta=0.5),
            "tiny_beta": lambda d: _pair(fn, [2.0 ** -12, 1.0], [0.0, 0.0], d, "tiny_beta", reduction="none", beta=2.0 ** -10),
        })
    return edges


def _pointwise_invalid(fn: str) -> dict:
    invalid = {"unknown_reduction": lambda d: _pair(fn, [1.0], [0.0], d, "unknown_reduction", reduction="avg")}
    if fn in ("l1_loss", "mse_loss", "huber_loss"):
        invalid["weight_wrong_shape"] = lambda d: _pair(fn, [1.0, 2.0], [0.0, 0.0], d, "weight_wrong_shape", weight=_a([1.0, 1.0, 1.0], d))
    if fn == "huber_loss":
        invalid["delta_zero"] = lambda d: _pair(fn, [1.0], [0.0], d, "delta_zero", delta=0.0)
        invalid["delta_negative"] = lambda d: _pair(fn, [1.0], [0.0], d, "delta_negative", delta=-1.0)
    if fn == "smooth_l1_loss":
        invalid["beta_negative"] = lambda d: _pair(fn, [1.0], [0.0], d, "beta_negative", beta=-0.5)
    return invalid


# ------------------------------------------------------------------ Poisson NLL


@st.composite
def _counts(draw, shape, dtype: str) -> np.ndarray:
    """Non-negative targets: 0 and 1 (no Stirling term), counts, non-integers, large."""
    n = _n(shape)
    elem = st.one_of(
        st.sampled_from([0.0, 1.0, 2.0, 0.5, 1.0 + 2.0 ** -format_of(dtype).p * 2]),
        st.integers(0, 100).map(float),
        dtype_values(dtype, 0.0, 10.0),
        dtype_values(dtype, 0.0, min(1e4, _max(dtype) / 4)),
    )
    return _a(np.array(draw(st.lists(elem, min_size=n, max_size=n))).reshape(shape), dtype)


@st.composite
def poisson_nll_loss_cases(draw, dtype: str) -> Case:
    shape = draw(_shape())
    log_input = draw(st.booleans())
    fmt = format_of(dtype)
    if log_input:
        edge = float(np.log(fmt.max_finite))
        x = draw(st.one_of(_values(shape, dtype, -10.0, 10.0), _values(shape, dtype, edge - 4, edge + 4),
                           _values(shape, dtype, -100.0, 5.0)))
    else:
        elem = st.one_of(st.just(0.0), dtype_values(dtype, 0.0, 10.0), dtype_values(dtype, 0.0, 1e-3),
                         dtype_values(dtype, 0.0, _max(dtype)))
        x = _a(np.array(draw(st.lists(elem, min_size=_n(shape), max_size=_n(shape)))).reshape(shape), dtype)
    y = draw(_counts(shape, dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if not log_input:
        kwargs["log_input"] = False
    if draw(st.booleans()):
        kwargs["full"] = True
    # eps is rounded to the dtype by every framework: the default 1e-8 is 0 in float16,
    # so float16 cases draw a representable eps (tests/: the default's own edge case).
    if dtype == "float16" and not log_input:
        kwargs["eps"] = draw(st.sampled_from([2.0 ** -14, 1e-3, 0.5]))
    elif draw(st.integers(0, 3)) == 0:
        kwargs["eps"] = float(_a(draw(st.sampled_from([1e-7, 1e-4, 0.5])), dtype))
    return Case("poisson_nll_loss", {"input": x, "target": y}, kwargs, dtype)


def _poisson(x, y, dtype, label, **kw) -> Case:
    return Case("poisson_nll_loss", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


POISSON_EDGES = {
    "targets_0_and_1_no_stirling_term": lambda d: _poisson([0.5, -1.0, 0.0], [0.0, 1.0, 1.0], d, "targets_0_and_1_no_stirling_term", reduction="none", full=True),
    "stirling_term_above_1": lambda d: _poisson([0.5, 2.0], [2.0, 7.0], d, "stirling_term_above_1", reduction="none", full=True),
    "rate_input_zero_target_zero": lambda d: _poisson([0.0, 2.0], [0.0, 0.0], d, "rate_input_zero_target_zero", reduction="none", log_input=False, eps=0.5),
    "rate_input_zero_default_eps": lambda d: _poisson([0.0], [1.0], d, "rate_input_zero_default_eps", reduction="none", log_input=False),
    "rate_input_with_stirling": lambda d: _poisson([3.0, 0.25], [4.0, 1.0], d, "rate_input_with_stirling", reduction="none", log_input=False, full=True),
    "exp_overflows": lambda d: _poisson([float(np.log(_max(d))) + 1.0], [1.0], d, "exp_overflows", reduction="none"),
    "mean_over_elements": lambda d: _poisson([[0.5, -1.0], [2.0, 0.0]], [[1.0, 0.0], [3.0, 2.0]], d, "mean_over_elements"),
}

POISSON_INVALID = {
    "unknown_reduction": lambda d: _poisson([1.0], [0.0], d, "unknown_reduction", reduction="avg"),
}


# ------------------------------------------------------------------ Gaussian NLL


@st.composite
def _variances(draw, shape, dtype: str) -> np.ndarray:
    n = _n(shape)
    elem = st.one_of(
        st.sampled_from([0.0, 1.0, 1e-7, 2.0 ** -20]),
        dtype_values(dtype, 0.0, 10.0),
        dtype_values(dtype, 0.0, 1e-5),
        dtype_values(dtype, 0.0, min(1e6, _max(dtype))),
    )
    return _a(np.array(draw(st.lists(elem, min_size=n, max_size=n))).reshape(shape), dtype)


@st.composite
def gaussian_nll_loss_cases(draw, dtype: str) -> Case:
    shape = draw(_shape(min_dims=1))
    x, y = draw(input_target_pair(shape, dtype))
    form = draw(st.sampled_from(["same", "same", "last_dim_missing", "one_dim_1", "float"]))
    if form == "float":
        var = float(draw(_variances((), dtype)))
    elif form == "last_dim_missing":
        var = draw(_variances(shape[:-1], dtype))
    elif form == "one_dim_1":
        axis = draw(st.integers(0, len(shape) - 1))
        vshape = tuple(1 if i == axis else s for i, s in enumerate(shape))
        var = draw(_variances(vshape, dtype))
    else:
        var = draw(_variances(shape, dtype))
    kwargs: dict = {"reduction": draw(REDUCTION)}
    if draw(st.booleans()):
        kwargs["full"] = True
    # the default eps 1e-6 is subnormal in float16 (rounded by 1.3%): draw a normal one there
    if dtype == "float16":
        kwargs["eps"] = draw(st.sampled_from([2.0 ** -14, 1e-3, 0.5]))
    elif draw(st.integers(0, 3)) == 0:
        kwargs["eps"] = float(_a(draw(st.sampled_from([1e-3, 1e-8, 0.5])), dtype))
    return Case("gaussian_nll_loss", {"input": x, "target": y, "var": var}, kwargs, dtype)


def _gauss(x, y, var, dtype, label, **kw) -> Case:
    v = var if isinstance(var, float) else _a(var, dtype)
    return Case("gaussian_nll_loss", {"input": _a(x, dtype), "target": _a(y, dtype), "var": v}, kw, dtype, label)


GAUSSIAN_EDGES = {
    "zero_variance_clamped_to_eps": lambda d: _gauss([[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0]], d, "zero_variance_clamped_to_eps", reduction="none", eps=0.5),
    "variance_below_eps": lambda d: _gauss([[1.0]], [[0.5]], [[2.0 ** -12]], d, "variance_below_eps", reduction="none", eps=2.0 ** -10),
    "homoscedastic_last_dim_missing": lambda d: _gauss([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], [[0.0] * 3, [1.0] * 3], [0.5, 2.0], d, "homoscedastic_last_dim_missing", reduction="none"),
    "homoscedastic_dim_1": lambda d: _gauss([[1.0, 2.0], [0.0, -1.0]], [[0.0, 0.0], [1.0, 1.0]], [[0.25, 4.0]], d, "homoscedastic_dim_1", reduction="none"),
    "float_variance": lambda d: _gauss([1.0, -2.0], [0.0, 0.0], 0.25, d, "float_variance", reduction="none"),
    "full_adds_half_log_2pi": lambda d: _gauss([[0.0]], [[0.0]], [[1.0]], d, "full_adds_half_log_2pi", reduction="sum", full=True),
    "unit_variance_is_half_squared_error": lambda d: _gauss([[3.0, -1.0]], [[1.0, 0.0]], [[1.0, 1.0]], d, "unit_variance_is_half_squared_error"),
}

GAUSSIAN_INVALID = {
    "negative_variance": lambda d: _gauss([[1.0, 0.0]], [[0.0, 0.0]], [[1.0, -0.5]], d, "negative_variance"),
    "negative_float_variance": lambda d: _gauss([1.0, 0.0], [0.0, 0.0], -1.0, d, "negative_float_variance"),
    "variance_wrong_shape": lambda d: _gauss([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]], [[0.0] * 3] * 2, [1.0, 1.0, 1.0], d, "variance_wrong_shape"),
    "unknown_reduction": lambda d: _gauss([[1.0]], [[0.0]], [[1.0]], d, "unknown_reduction", reduction="avg"),
}


# ------------------------------------------------------------------ CTC


def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


@st.composite
def ctc_loss_cases(draw, dtype: str) -> Case:
    """Short sequences: T frames, N in 1..3 (or unbatched), C classes; targets of length 0
    up to T (longer than an input length: impossible alignments), with repeats, padded or
    concatenated; log-probabilities from a log-softmax (sometimes peaked, some classes near
    -1e3), or unnormalized."""
    t_max, c = draw(st.integers(1, 10)), draw(st.integers(2, 6))
    unbatched = draw(st.integers(0, 5)) == 0
    n = 1 if unbatched else draw(st.integers(1, 3))
    blank = draw(st.sampled_from([0, 0, c - 1]))
    labels = [v for v in range(c) if v != blank]
    scale = draw(st.sampled_from([1.0, 1.0, 5.0, 1e3]))
    z = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=t_max * n * c, max_size=t_max * n * c))).reshape(t_max, n, c) * scale
    x = z if draw(st.integers(0, 4)) == 0 else _log_softmax_rows(z)
    x = _a(x, dtype)
    input_lengths = np.array([t_max if draw(st.booleans()) else draw(st.integers(0, t_max)) for _ in range(n)], dtype=np.int64)
    seqs = [draw(st.lists(st.sampled_from(labels), min_size=0, max_size=min(t_max + 1, 6))) for _ in range(n)]
    target_lengths = np.array([len(q) for q in seqs], dtype=np.int64)
    kwargs: dict = {"reduction": draw(st.sampled_from(["none", "mean", "sum"]))}
    if blank:
        kwargs["blank"] = blank
    if draw(st.booleans()):
        kwargs["zero_infinity"] = True
    if unbatched:
        args = {"log_probs": x[:, 0, :], "targets": np.array(seqs[0], dtype=np.int64),
                "input_lengths": input_lengths.reshape(()), "target_lengths": target_lengths.reshape(())}
    elif draw(st.booleans()):
        width = max(1, int(target_lengths.max()))
        padded = np.array([q + [labels[0]] * (width - len(q)) for q in seqs], dtype=np.int64)
        args = {"log_probs": x, "targets": padded, "input_lengths": input_lengths, "target_lengths": target_lengths}
    else:
        flat = np.array([v for q in seqs for v in q], dtype=np.int64)
        args = {"log_probs": x, "targets": flat, "input_lengths": input_lengths, "target_lengths": target_lengths}
    return Case("ctc_loss", args, kwargs, dtype)


_CTC_X = [[[-0.5, -1.5, -2.0]], [[-1.0, -0.75, -2.5]], [[-2.0, -1.0, -0.5]], [[-0.25, -2.0, -3.0]]]


def _ctc(x, targets, il, tl, dtype, label, **kw) -> Case:
    args = {"log_probs": _a(x, dtype), "targets": np.array(targets, dtype=np.int64),
            "input_lengths": np.array(il, dtype=np.int64), "target_lengths": np.array(tl, dtype=np.int64)}
    return Case("ctc_loss", args, kw, dtype, label)


CTC_EDGES = {
    "empty_target_is_all_blank_path": lambda d: _ctc(_CTC_X, [[1]], [4], [0], d, "empty_target_is_all_blank_path", reduction="none"),
    "impossible_alignment_is_inf": lambda d: _ctc(_CTC_X, [[1, 1, 1]], [4], [3], d, "impossible_alignment_is_inf", reduction="none"),
    "zero_infinity_zeroes_it": lambda d: _ctc(_CTC_X, [[1, 1, 1]], [4], [3], d, "zero_infinity_zeroes_it", reduction="none", zero_infinity=True),
    "target_as_long_as_input": lambda d: _ctc(_CTC_X, [[1, 2, 1, 2]], [4], [4], d, "target_as_long_as_input", reduction="none"),
    "repeat_needs_a_blank": lambda d: _ctc(_CTC_X, [[2, 2]], [4], [2], d, "repeat_needs_a_blank", reduction="none"),
    "mean_divides_by_target_lengths": lambda d: _ctc(
        [[r[0], r[0]] for r in _CTC_X], [[1, 2], [2, 1]], [4, 3], [2, 1], d, "mean_divides_by_target_lengths"),
    "concatenated_targets": lambda d: _ctc(
        [[r[0], r[0]] for r in _CTC_X], [1, 2, 2], [4, 4], [2, 1], d, "concatenated_targets", reduction="none"),
    "input_length_zero_empty_target": lambda d: _ctc(_CTC_X, [[1]], [0], [0], d, "input_length_zero_empty_target", reduction="none"),
    "blank_last_class": lambda d: _ctc(_CTC_X, [[0, 1]], [4], [2], d, "blank_last_class", reduction="none", blank=2),
    "unbatched": lambda d: Case("ctc_loss", {"log_probs": _a([r[0] for r in _CTC_X], d), "targets": np.array([1, 2], dtype=np.int64),
                                             "input_lengths": np.array(4), "target_lengths": np.array(2)}, {"reduction": "none"}, d, "unbatched"),
}

CTC_INVALID = {
    "target_is_blank": lambda d: _ctc(_CTC_X, [[0, 1]], [4], [2], d, "target_is_blank"),
    "target_class_out_of_range": lambda d: _ctc(_CTC_X, [[3, 1]], [4], [2], d, "target_class_out_of_range"),
    "blank_out_of_range": lambda d: _ctc(_CTC_X, [[1, 1]], [4], [2], d, "blank_out_of_range", blank=3),
    "input_length_above_T": lambda d: _ctc(_CTC_X, [[1, 2]], [5], [2], d, "input_length_above_T"),
    "target_length_above_padded_width": lambda d: _ctc(_CTC_X, [[1, 2]], [4], [3], d, "target_length_above_padded_width"),
    "negative_target_length": lambda d: _ctc(_CTC_X, [[1, 2]], [4], [-1], d, "negative_target_length"),
    "unknown_reduction": lambda d: _ctc(_CTC_X, [[1, 2]], [4], [2], d, "unknown_reduction", reduction="avg"),
}


def specs() -> list:
    """The :class:`suites.registry.LossSpec` of each loss above."""
    import oracle

    from .registry import LossSpec

    pointwise = ("l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss")
    out = [
        LossSpec(
            fn, getattr(oracle, f"{fn}_terms"), (lambda d, fn=fn: _pointwise_cases(d, fn)),
            _pointwise_edges(fn), _pointwise_invalid(fn), legacy_reduction_arguments=fn != "huber_loss",
            grad_wrt=("input", "target") if fn == "smooth_l1_loss" else ("input", "target", "weight"),
        )
        for fn in pointwise
    ]
    out.append(LossSpec("poisson_nll_loss", oracle.poisson_nll_loss_terms, poisson_nll_loss_cases, POISSON_EDGES, POISSON_INVALID,
                        grad_wrt=("input", "target")))
    out.append(LossSpec("gaussian_nll_loss", oracle.gaussian_nll_loss_terms, gaussian_nll_loss_cases, GAUSSIAN_EDGES, GAUSSIAN_INVALID,
                        legacy_reduction_arguments=False, grad_wrt=("input", "target", "var")))
    out.append(LossSpec("ctc_loss", oracle.ctc_loss_terms, ctc_loss_cases, CTC_EDGES, CTC_INVALID, legacy_reduction_arguments=False))
    return out
