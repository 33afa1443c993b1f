"""The loss registry: each spec function described as data (in the spirit of OpInfo).

A :class:`LossSpec` names the spec function, its oracle decomposition
(``oracle.<fn>_terms``), a strategy of generated cases per dtype, its fixed edge
cases, the invalid inputs the spec rejects, and the properties it must satisfy.
The generic tests in ``test_conformance.py`` are parametrized over this registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from hypothesis import strategies as st

import oracle
import oracle.gradients
from oracle.core import format_of

from .cases import Case
from .strategies import (
    class_indices,
    dtype_value_lists,
    dtype_values,
    logits,
    probabilities,
    shapes_with_classes,
    to_dtype,
    weights,
)

__all__ = ["REGISTRY", "LossSpec", "spec_for"]

EdgeBuilder = Callable[[str], Case]


@dataclass(frozen=True)
class LossSpec:
    name: str
    terms: Callable  # oracle decomposition: (*args, **kwargs) -> LossTerms
    cases: Callable[[str], st.SearchStrategy[Case]]
    edge_cases: dict[str, EdgeBuilder] = field(default_factory=dict)
    invalid_cases: dict[str, EdgeBuilder] = field(default_factory=dict)
    reductions: tuple[str, ...] = ("none", "mean", "sum")
    legacy_reduction_arguments: bool = True  # takes size_average/reduce (not every F.* loss does)
    # Exact gradient of the output's sum w.r.t. ``input`` and its error-model quantities
    # (suites/gradients.py); by default ``oracle.<name>_grad`` and
    # ``oracle.gradients.<name>_grad_condition``. Without ``grad`` gradients are not tested.
    grad: Callable | None = None
    grad_condition: Callable | None = None
    # The differentiable floating parameters whose gradients are tested, the primary one
    # first (default: the first parameter alone). The oracle's ``grad``/``grad_condition``
    # take ``wrt=<name>`` for every one but the primary (``gradient_functions``).
    grad_wrt: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.grad_wrt:
            first = next(iter(inspect.signature(self.terms).parameters))
            object.__setattr__(self, "grad_wrt", (first,))
        if self.grad is None:
            object.__setattr__(self, "grad", getattr(oracle, f"{self.name}_grad", None))
        if self.grad_condition is None:
            object.__setattr__(
                self, "grad_condition", getattr(oracle.gradients, f"{self.name}_grad_condition", None)
            )

    @property
    def reduces(self) -> bool:
        return bool(self.reductions)

    def gradient_functions(self, wrt: str = "") -> tuple[Callable | None, Callable | None]:
        """The oracle's ``(grad, grad_condition)`` w.r.t. ``wrt`` (default: the primary
        parameter, called as they are; another one with ``wrt=``). ``(None, None)`` for a
        parameter not in :attr:`grad_wrt`."""
        if not wrt or wrt == self.grad_wrt[0]:
            return self.grad, self.grad_condition
        if wrt not in self.grad_wrt:
            return None, None
        return (
            partial(self.grad, wrt=wrt) if self.grad is not None else None,
            partial(self.grad_condition, wrt=wrt) if self.grad_condition is not None else None,
        )


def _a(values, dtype: str) -> np.ndarray:
    return to_dtype(np.array(values, dtype=np.float64), dtype)


def _i(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _max(dtype: str) -> float:
    return format_of(dtype).max_finite


REDUCTION = st.sampled_from(["none", "mean", "sum"])

# ---------------------------------------------------------------- cross_entropy / nll


@st.composite
def _ignore_index(draw, n_classes: int) -> int:
    """The default -100, another negative value, or an in-range class."""
    return draw(st.sampled_from([-100, -100, -1, min(1, n_classes - 1)]))


@st.composite
def cross_entropy_cases(draw, dtype: str) -> Case:
    shape, n_classes = draw(shapes_with_classes())
    x = draw(logits(shape, dtype, allow_neg_inf=True))
    kwargs: dict = {}
    if draw(st.booleans()):
        kwargs["weight"] = draw(weights((n_classes,), dtype))
    if draw(st.integers(0, 3)) == 0:
        target = draw(probabilities(shape, dtype))
    else:
        ignore_index = draw(_ignore_index(n_classes))
        target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
        target = draw(class_indices(target_shape, n_classes, ignore_index=ignore_index))
        if ignore_index != -100:
            kwargs["ignore_index"] = ignore_index
    kwargs["reduction"] = draw(REDUCTION)
    if draw(st.booleans()):
        kwargs["label_smoothing"] = draw(st.sampled_from([0.1, 0.5, 1.0]) | st.floats(0.0, 1.0))
    return Case("cross_entropy", {"input": x, "target": target}, kwargs, dtype)


@st.composite
def nll_loss_cases(draw, dtype: str) -> Case:
    shape, n_classes = draw(shapes_with_classes())
    # Log-probabilities: any reals <= 0 in practice; the formula takes any value.
    x = draw(logits(shape, dtype, allow_neg_inf=True, regimes=("moderate", "wide", "tiny")))
    ignore_index = draw(_ignore_index(n_classes))
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = draw(class_indices(target_shape, n_classes, ignore_index=ignore_index))
    kwargs: dict = {}
    if draw(st.booleans()):
        kwargs["weight"] = draw(weights((n_classes,), dtype))
    if ignore_index != -100:
        kwargs["ignore_index"] = ignore_index
    kwargs["reduction"] = draw(REDUCTION)
    return Case("nll_loss", {"input": x, "target": target}, kwargs, dtype)


def _ce(x, t, dtype, label, **kw) -> Case:
    target = _i(t) if np.issubdtype(np.asarray(t).dtype, np.integer) else _a(t, dtype)
    return Case("cross_entropy", {"input": _a(x, dtype), "target": target}, kw, dtype, label)


CROSS_ENTROPY_EDGES: dict[str, EdgeBuilder] = {
    "uniform_logits_give_log_C": lambda d: _ce([[3.0] * 7], [2], d, "uniform_logits_give_log_C"),
    "single_class_gives_0": lambda d: _ce([[5.0], [-2.0]], [0, 0], d, "single_class_gives_0", reduction="none"),
    "logits_40_0": lambda d: _ce([[40.0, 0.0]], [0], d, "logits_40_0", reduction="none"),
    "logits_1e8": lambda d: _ce([[min(1e8, _max(d)), 0.0]], [1], d, "logits_1e8", reduction="none"),
    "logits_at_dtype_max": lambda d: _ce([[_max(d), -_max(d), 0.0]], [2], d, "logits_at_dtype_max", reduction="none"),
    "masked_class_neg_inf": lambda d: _ce([[1.0, -np.inf, 2.0]], [0], d, "masked_class_neg_inf", reduction="none"),
    "masked_target_gives_inf": lambda d: _ce([[1.0, -np.inf, 2.0]], [1], d, "masked_target_gives_inf", reduction="none"),
    "all_ignored_mean_is_nan": lambda d: _ce([[1.0, 2.0], [3.0, 4.0]], [-100, -100], d, "all_ignored_mean_is_nan"),
    "all_ignored_sum_is_0": lambda d: _ce([[1.0, 2.0], [3.0, 4.0]], [-100, -100], d, "all_ignored_sum_is_0", reduction="sum"),
    "in_range_ignore_index": lambda d: _ce([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], [1, 2], d, "in_range_ignore_index", ignore_index=1),
    "weighted_mean_denominator": lambda d: _ce(
        [[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], [0, 2], d, "weighted_mean_denominator", weight=_a([0.25, 1.0, 4.0], d)
    ),
    "zero_selected_weights_mean_is_nan": lambda d: _ce(
        [[1.0, 2.0], [3.0, 4.0]], [0, 0], d, "zero_selected_weights_mean_is_nan", weight=_a([0.0, 1.0], d)
    ),
    "label_smoothing_with_weight_mean": lambda d: _ce(
        [[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], [0, -100], d, "label_smoothing_with_weight_mean",
        weight=_a([0.5, 1.0, 2.0], d), label_smoothing=0.25,
    ),
    "label_smoothing_one": lambda d: _ce([[1.0, 2.0, 3.0]], [0], d, "label_smoothing_one", label_smoothing=1.0),
    "k_extra_dims": lambda d: Case(
        "cross_entropy",
        {"input": _a(np.arange(24, dtype=np.float64).reshape(2, 3, 2, 2) / 4, d), "target": _i([[[0, 1], [2, 0]], [[1, 1], [2, -100]]])},
        {"reduction": "none"}, d, "k_extra_dims",
    ),
    "probability_target_one_hot": lambda d: _ce([[1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0]], d, "probability_target_one_hot"),
    "probability_target_zero_mass_on_masked_class": lambda d: _ce(
        [[1.0, -np.inf, 2.0]], [[0.5, 0.0, 0.5]], d, "probability_target_zero_mass_on_masked_class", reduction="none"
    ),
    "all_classes_masked_is_nan": lambda d: _ce([[-np.inf, -np.inf]], [0], d, "all_classes_masked_is_nan", reduction="none"),
    # the gradients w.r.t. target and weight: smoothing, a class weight of 0, a mean over positions
    "probability_target_weighted_smoothed": lambda d: _ce(
        [[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], [[0.25, 0.25, 0.5], [0.0, 1.0, 0.0]], d,
        "probability_target_weighted_smoothed", weight=_a([0.5, 0.0, 2.0], d), label_smoothing=0.25,
    ),
    # d/dweight of the masked class is 0 (0 log 0 = 0), d/dtarget there +inf
    "probability_target_masked_class_weighted": lambda d: _ce(
        [[1.0, -np.inf, 2.0]], [[0.5, 0.0, 0.5]], d, "probability_target_masked_class_weighted",
        weight=_a([1.0, 2.0, 0.5], d), reduction="sum",
    ),
    # one kept row, no smoothing: the weighted mean is r_y whatever the weights, d/dweight = 0
    "one_kept_row_weighted_mean": lambda d: _ce(
        [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [2, -100], d, "one_kept_row_weighted_mean", weight=_a([0.5, 1.0, 2.0], d)
    ),
}

CROSS_ENTROPY_INVALID: dict[str, EdgeBuilder] = {
    "target_class_out_of_range": lambda d: _ce([[1.0, 2.0]], [2], d, "target_class_out_of_range"),
    "negative_target_not_ignore_index": lambda d: _ce([[1.0, 2.0]], [-1], d, "negative_target_not_ignore_index"),
    "label_smoothing_above_one": lambda d: _ce([[1.0, 2.0]], [0], d, "label_smoothing_above_one", label_smoothing=1.5),
    "label_smoothing_negative": lambda d: _ce([[1.0, 2.0]], [0], d, "label_smoothing_negative", label_smoothing=-0.1),
    "weight_wrong_length": lambda d: _ce([[1.0, 2.0]], [0], d, "weight_wrong_length", weight=_a([1.0, 1.0, 1.0], d)),
    "target_batch_mismatch": lambda d: _ce([[1.0, 2.0], [0.0, 1.0]], [0, 1, 1], d, "target_batch_mismatch"),
    "probability_target_shape_mismatch": lambda d: _ce([[1.0, 2.0]], [[0.5, 0.25, 0.25]], d, "probability_target_shape_mismatch"),
    "target_extra_dims_mismatch": lambda d: Case(
        "cross_entropy", {"input": _a(np.zeros((1, 2, 3)), d), "target": _i([[0, 1]])}, {}, d, "target_extra_dims_mismatch"
    ),
    "unknown_reduction": lambda d: _ce([[1.0, 2.0]], [0], d, "unknown_reduction", reduction="avg"),
}


def _nll(x, t, dtype, label, **kw) -> Case:
    return Case("nll_loss", {"input": _a(x, dtype), "target": _i(t)}, kw, dtype, label)


NLL_EDGES: dict[str, EdgeBuilder] = {
    "neg_inf_log_probability_gives_inf": lambda d: _nll([[-np.inf, -1.0]], [0], d, "neg_inf_log_probability_gives_inf", reduction="none"),
    "all_ignored_mean_is_nan": lambda d: _nll([[-1.0, -2.0]], [-100], d, "all_ignored_mean_is_nan"),
    "weighted_mean_denominator": lambda d: _nll(
        [[-1.0, -2.0, -3.0], [-0.5, -4.0, -0.25]], [0, 2], d, "weighted_mean_denominator", weight=_a([0.25, 1.0, 4.0], d)
    ),
    "ignored_row_with_nan_is_ignored": lambda d: _nll([[np.nan, -1.0], [-0.5, -2.0]], [-100, 1], d, "ignored_row_with_nan_is_ignored"),
    # d/dweight of the weighted mean: (A_c D - S n_c) / D^2, an ignored row left out of both
    "weighted_mean_with_ignored_row": lambda d: _nll(
        [[-1.0, -2.0, -3.0], [-0.5, -4.0, -0.25], [-2.0, -1.0, -0.5]], [0, 2, -100], d,
        "weighted_mean_with_ignored_row", weight=_a([0.25, 1.0, 4.0], d),
    ),
}

NLL_INVALID: dict[str, EdgeBuilder] = {
    "target_class_out_of_range": lambda d: _nll([[-1.0, -2.0]], [2], d, "target_class_out_of_range"),
    "negative_target_not_ignore_index": lambda d: _nll([[-1.0, -2.0]], [-1], d, "negative_target_not_ignore_index"),
    "weight_wrong_length": lambda d: _nll([[-1.0, -2.0]], [0], d, "weight_wrong_length", weight=_a([1.0], d)),
    "target_batch_mismatch": lambda d: _nll([[-1.0, -2.0], [-0.5, -1.5]], [0, 1, 1], d, "target_batch_mismatch"),
    "unknown_reduction": lambda d: _nll([[-1.0, -2.0]], [0], d, "unknown_reduction", reduction="avg"),
}

# ---------------------------------------------------------------- binary cross-entropy


@st.composite
def _elementwise_shape(draw) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=3)))


@st.composite
def _binary_targets(draw, shape, dtype):
    if draw(st.booleans()):
        return to_dtype(np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape), dtype)
    n = int(np.prod(shape))
    return to_dtype(np.array(draw(dtype_value_lists(dtype, 0.0, 1.0, n))).reshape(shape), dtype)


@st.composite
def _elementwise_weight(draw, shape, dtype):
    """A weight of the input's shape, or of its last dimension (broadcast)."""
    if shape and draw(st.booleans()):
        return draw(weights(shape[-1:], dtype))
    return draw(weights(shape, dtype))


@st.composite
def _probability_values(draw, shape, dtype):
    """Probabilities in [0, 1] reaching the ends: exact 0 and 1, the clamp region
    near 0 (log x < -100 needs x < 3.7e-44), and values just below 1."""
    fmt = format_of(dtype)
    n = int(np.prod(shape))
    near_one = 1.0 - 2.0 ** -fmt.p
    elem = st.one_of(
        st.sampled_from([0.0, 1.0, near_one, fmt.smallest_subnormal, 0.5]),
        dtype_values(dtype, 0.0, 1.0),
        dtype_values(dtype, 0.0, 1e-30),
    )
    return to_dtype(np.array(draw(st.lists(elem, min_size=n, max_size=n))).reshape(shape), dtype)


@st.composite
def binary_cross_entropy_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    x = draw(_probability_values(shape, dtype))
    kwargs: dict = {}
    if draw(st.booleans()):
        kwargs["weight"] = draw(_elementwise_weight(shape, dtype))
    kwargs["reduction"] = draw(REDUCTION)
    return Case("binary_cross_entropy", {"input": x, "target": draw(_binary_targets(shape, dtype))}, kwargs, dtype)


@st.composite
def binary_cross_entropy_with_logits_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    x = draw(logits(shape, dtype, allow_neg_inf=True, allow_pos_inf=True))
    kwargs: dict = {}
    if draw(st.booleans()):
        kwargs["weight"] = draw(_elementwise_weight(shape, dtype))
    kwargs["reduction"] = draw(REDUCTION)
    if shape and draw(st.booleans()):
        kwargs["pos_weight"] = draw(weights(shape[-1:], dtype))
    return Case("binary_cross_entropy_with_logits", {"input": x, "target": draw(_binary_targets(shape, dtype))}, kwargs, dtype)


def _bce(x, y, dtype, label, **kw) -> Case:
    return Case("binary_cross_entropy", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


def _bcel(x, y, dtype, label, **kw) -> Case:
    return Case("binary_cross_entropy_with_logits", {"input": _a(x, dtype), "target": _a(y, dtype)}, kw, dtype, label)


BCE_EDGES: dict[str, EdgeBuilder] = {
    "probability_0_and_1_hard_targets": lambda d: _bce([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], d, "probability_0_and_1_hard_targets", reduction="none"),
    "log_clamped_at_minus_100": lambda d: _bce([0.0, 1.0], [1.0, 0.0], d, "log_clamped_at_minus_100", reduction="sum"),
    "smallest_subnormal_probability": lambda d: _bce([format_of(d).smallest_subnormal], [1.0], d, "smallest_subnormal_probability", reduction="none"),
    "soft_target_half": lambda d: _bce([0.5, 0.25], [0.5, 0.5], d, "soft_target_half", reduction="none"),
    "just_below_one": lambda d: _bce([1.0 - 2.0 ** -format_of(d).p], [0.0], d, "just_below_one", reduction="none"),
}

BCE_INVALID: dict[str, EdgeBuilder] = {
    "probability_above_one": lambda d: _bce([1.5], [1.0], d, "probability_above_one"),
    "negative_probability": lambda d: _bce([-0.25], [1.0], d, "negative_probability"),
    "nan_probability": lambda d: _bce([np.nan], [1.0], d, "nan_probability"),
    "target_shape_mismatch": lambda d: _bce([0.5, 0.5], [1.0, 0.0, 1.0], d, "target_shape_mismatch"),
    "weight_not_broadcastable": lambda d: _bce([0.5, 0.5], [1.0, 0.0], d, "weight_not_broadcastable", weight=_a([1.0, 2.0, 3.0], d)),
    "unknown_reduction": lambda d: _bce([0.5], [1.0], d, "unknown_reduction", reduction="avg"),
}

BCEL_EDGES: dict[str, EdgeBuilder] = {
    "logit_minus_40_target_0": lambda d: _bcel([-40.0], [0.0], d, "logit_minus_40_target_0", reduction="none"),
    "logit_40_target_0": lambda d: _bcel([40.0], [0.0], d, "logit_40_target_0", reduction="none"),
    "logits_1e8": lambda d: _bcel([min(1e8, _max(d)), -min(1e8, _max(d))], [1.0, 1.0], d, "logits_1e8", reduction="none"),
    "infinite_logits_matching_hard_targets": lambda d: _bcel([np.inf, -np.inf], [1.0, 0.0], d, "infinite_logits_matching_hard_targets", reduction="none"),
    "infinite_logits_opposing_hard_targets": lambda d: _bcel([np.inf, -np.inf], [0.0, 1.0], d, "infinite_logits_opposing_hard_targets", reduction="none"),
    "pos_weight_broadcast_over_classes": lambda d: _bcel(
        [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.25]], d, "pos_weight_broadcast_over_classes",
        pos_weight=_a([2.0, 0.5, 3.0], d), reduction="none",
    ),
    "logits_at_dtype_max": lambda d: _bcel([_max(d), -_max(d)], [0.0, 0.0], d, "logits_at_dtype_max", reduction="none"),
    # saturated and 1e8 logits with a zero weight and a small pos_weight: the gradients
    # w.r.t. target (p softplus(-x) - softplus(x) cancels to -p x), weight and pos_weight
    "weighted_saturated_logits_small_pos_weight": lambda d: _bcel(
        [[min(1e8, _max(d)), -min(1e8, _max(d))], [40.0, -40.0]], [[1.0, 0.0], [0.5, 0.25]], d,
        "weighted_saturated_logits_small_pos_weight", weight=_a([[2.0, 1.0], [0.0, 3.0]], d),
        pos_weight=_a([4.0, 0.01], d), reduction="mean",
    ),
    "weight_broadcast_over_rows": lambda d: _bcel(
        [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], [[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]], d, "weight_broadcast_over_rows",
        weight=_a([0.5, 2.0, 1.0], d), pos_weight=_a([2.0, 0.5, 3.0], d), reduction="sum",
    ),
}

BCEL_INVALID: dict[str, EdgeBuilder] = {
    "target_shape_mismatch": lambda d: _bcel([0.5, 0.5], [1.0, 0.0, 1.0], d, "target_shape_mismatch"),
    "weight_not_broadcastable": lambda d: _bcel([0.5, 0.5], [1.0, 0.0], d, "weight_not_broadcastable", weight=_a([1.0, 2.0, 3.0], d)),
    "pos_weight_wrong_length": lambda d: _bcel([[0.5, 0.5]], [[1.0, 0.0]], d, "pos_weight_wrong_length", pos_weight=_a([1.0, 2.0, 3.0], d)),
    "unknown_reduction": lambda d: _bcel([0.5], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ---------------------------------------------------------------- kl_div


@st.composite
def kl_div_cases(draw, dtype: str) -> Case:
    shape, _ = draw(shapes_with_classes(max_classes=8, allow_large_classes=False, max_elements=200))
    log_target = draw(st.booleans())
    q = draw(probabilities(shape, "float64"))
    with np.errstate(divide="ignore"):
        x = to_dtype(np.log(q), dtype) if draw(st.booleans()) else draw(logits(shape, dtype, regimes=("moderate", "tiny")))
        p = draw(probabilities(shape, dtype))
        target = to_dtype(np.log(p.astype(np.float64)), dtype) if log_target else p
    kwargs: dict = {"reduction": draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))}
    if log_target:
        kwargs["log_target"] = True
    return Case("kl_div", {"input": x, "target": target}, kwargs, dtype)


def _kl(x, t, dtype, label, **kw) -> Case:
    return Case("kl_div", {"input": _a(x, dtype), "target": _a(t, dtype)}, kw, dtype, label)


KL_EDGES: dict[str, EdgeBuilder] = {
    "zero_target_contributes_0": lambda d: _kl([-1.0, -0.5], [0.0, 1.0], d, "zero_target_contributes_0", reduction="none"),
    "zero_target_at_neg_inf_input": lambda d: _kl([-np.inf, 0.0], [0.0, 1.0], d, "zero_target_at_neg_inf_input", reduction="none"),
    "log_target_neg_inf": lambda d: _kl([-1.0, 0.0], [-np.inf, 0.0], d, "log_target_neg_inf", reduction="none", log_target=True),
    "identical_distributions_give_0": lambda d: _kl(np.log([0.25, 0.75]), [0.25, 0.75], d, "identical_distributions_give_0", reduction="sum"),
    "batchmean_divides_by_batch": lambda d: _kl([[-1.0, -0.5], [-2.0, -0.125]], [[0.5, 0.5], [0.25, 0.75]], d, "batchmean_divides_by_batch", reduction="batchmean"),
}

KL_INVALID: dict[str, EdgeBuilder] = {
    "target_shape_mismatch": lambda d: _kl([-1.0, -0.5], [0.25, 0.25, 0.5], d, "target_shape_mismatch"),
    "unknown_reduction": lambda d: _kl([-1.0], [1.0], d, "unknown_reduction", reduction="avg"),
}

# ---------------------------------------------------------------- activations


@st.composite
def _softmax_family_cases(draw, dtype: str, fn: str) -> Case:
    shape, _ = draw(shapes_with_classes(max_elements=400))
    x = draw(logits(shape, dtype, allow_neg_inf=True))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return Case(fn, {"input": x}, {"dim": dim}, dtype)


@st.composite
def sigmoid_cases(draw, dtype: str) -> Case:
    shape = draw(_elementwise_shape())
    return Case("sigmoid", {"input": draw(logits(shape, dtype, allow_neg_inf=True, allow_pos_inf=True))}, {}, dtype)


def _act(fn, x, dtype, label, **kw) -> Case:
    return Case(fn, {"input": _a(x, dtype)}, kw, dtype, label)


def _softmax_edges(fn: str) -> dict[str, EdgeBuilder]:
    return {
        "masked_class": lambda d: _act(fn, [[1.0, -np.inf, 0.5]], d, "masked_class", dim=1),
        "all_masked_row_is_nan": lambda d: _act(fn, [[-np.inf, -np.inf]], d, "all_masked_row_is_nan", dim=1),
        "pos_inf_row_is_nan": lambda d: _act(fn, [[np.inf, 0.0]], d, "pos_inf_row_is_nan", dim=1),
        "logits_at_dtype_max": lambda d: _act(fn, [[_max(d), -_max(d), 0.0]], d, "logits_at_dtype_max", dim=-1),
        "logits_40_0": lambda d: _act(fn, [[40.0, 0.0]], d, "logits_40_0", dim=1),
    }


SIGMOID_EDGES: dict[str, EdgeBuilder] = {
    "infinities": lambda d: _act("sigmoid", [np.inf, -np.inf], d, "infinities"),
    "large_magnitudes": lambda d: _act("sigmoid", [40.0, -40.0, min(1e8, _max(d)), -_max(d)], d, "large_magnitudes"),
}

SOFTMAX_INVALID: Callable[[str], dict[str, EdgeBuilder]] = lambda fn: {  # noqa: E731
    "dim_out_of_range": lambda d: _act(fn, [[1.0, 2.0]], d, "dim_out_of_range", dim=2),
}

from .specs_regression import specs as regression_specs  # noqa: E402  (needs LossSpec above)

REGISTRY: dict[str, LossSpec] = {
    spec.name: spec
    for spec in [
        LossSpec(
            "cross_entropy", oracle.cross_entropy_terms, cross_entropy_cases, CROSS_ENTROPY_EDGES, CROSS_ENTROPY_INVALID,
            grad_wrt=("input", "target", "weight"),
        ),
        LossSpec("nll_loss", oracle.nll_loss_terms, nll_loss_cases, NLL_EDGES, NLL_INVALID, grad_wrt=("input", "weight")),
        LossSpec("binary_cross_entropy", oracle.binary_cross_entropy_terms, binary_cross_entropy_cases, BCE_EDGES, BCE_INVALID,
                 grad_wrt=("input", "target", "weight")),
        LossSpec(
            "binary_cross_entropy_with_logits", oracle.binary_cross_entropy_with_logits_terms,
            binary_cross_entropy_with_logits_cases, BCEL_EDGES, BCEL_INVALID,
            grad_wrt=("input", "target", "weight", "pos_weight"),
        ),
        LossSpec("kl_div", oracle.kl_div_terms, kl_div_cases, KL_EDGES, KL_INVALID, ("none", "mean", "sum", "batchmean"),
                 grad_wrt=("input", "target")),
        LossSpec(
            "log_softmax", oracle.log_softmax_terms, lambda d: _softmax_family_cases(d, "log_softmax"),
            _softmax_edges("log_softmax"), SOFTMAX_INVALID("log_softmax"), (),
        ),
        LossSpec(
            "softmax", oracle.softmax_terms, lambda d: _softmax_family_cases(d, "softmax"),
            _softmax_edges("softmax"), SOFTMAX_INVALID("softmax"), (),
        ),
        LossSpec("sigmoid", oracle.sigmoid_terms, sigmoid_cases, SIGMOID_EDGES, {}, ()),
        *regression_specs(),
    ]
}


from .specs_margin import margin_specs  # noqa: E402  (issue 5: margin, ranking, embedding)

REGISTRY.update({spec.name: spec for spec in margin_specs()})


def spec_for(name: str) -> LossSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no loss named {name!r} in the registry: known {', '.join(REGISTRY)}") from None
