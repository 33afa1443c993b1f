r"""Metamorphic properties: relations between an adapter's own outputs.

The oracle tests judge each output alone; these judge how outputs relate, which
catches semantic slips a single comparison can miss (a mean whose denominator
differs from the sum's, a cross-entropy that is not its framework's NLL of its
log-softmax). Each relation holds *exactly* for the exact functions; the
tolerance is the sum of the error-model bounds of the outputs involved
(``suites/verdict.py``), plus, where one output feeds another, that bound
propagated linearly through the consumer:

* ``sum_is_sum_of_none``: ``A(sum) = sum_j A(none)_j``, tolerance
  ``B_sum + sum_j B_none,j`` (the right side is summed exactly).
* ``mean_is_sum_over_denominator``: ``A(mean) = A(sum) / D`` with the spec's
  denominator ``D``; tolerance ``B_mean + B_sum / |D|``.
* ``unit_weight_is_no_weight``: ``weight`` (and ``pos_weight``) of ones equals none.
* ``ignore_index_drops_rows``: ignored rows contribute nothing, also to the mean's
  denominator: ``A(x, t) = A(x[kept], t[kept])`` for ``sum``/``mean``.
* ``shift_invariance``: softmax losses are unchanged by adding a constant to
  every logit; the logits are drawn on a grid where ``x + c`` is exact.
* ``cross_entropy_is_nll_of_log_softmax``: per position,
  ``|CE - NLL(LSM(x))| <= B_CE + B_NLL + w_y B_LSM[y]``.
* ``bce_with_logits_is_bce_of_sigmoid``: for ``|x| <= 8`` (well conditioned),
  ``|BCEwL(x) - BCE(sigmoid(x))| <= B_1 + B_2 + |dBCE/dp| B_sigmoid``.
* ``smooth_l1_times_beta_is_huber``: ``beta * SmoothL1_beta = Huber_(delta=beta)``
  (``beta`` a power of two, so the product is exact): ``B_H + beta B_S``.
* ``huber_is_half_mse_inside_delta``: with ``delta >= max |d|``, ``Huber = MSE / 2``;
  ``huber_is_scaled_l1_beyond_delta``: with ``delta <= min |d|``,
  ``Huber = delta (L1 - delta / 2)`` -- the L2 and L1 limits of Huber; ``delta`` a
  power of two.
* ``ctc_mean_divides_by_target_lengths``: ``mean = (1/N) sum_n none_n / max(S_n, 1)``.
* ``kl_of_a_distribution_with_itself_is_0``: ``kl_div(s, s, log_target=True) = 0``
  elementwise, ``s = -inf`` included (KL(P || P) = 0).
* ``cross_entropy_is_entropy_plus_kl``: ``H(P, Q) = H(P) + KL(P || Q)`` with
  ``Q = softmax(x)``: ``CE(x, P) = H(P) + sum_c kl_div(LSM(x), P)_c``, ``H(P)``
  exact, tolerance ``B_CE + sum_c (B_KL,c + P_c B_LSM,c)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle.core import format_of, mp_array, to_mpf, working_precision

from .cases import Case
from .checks import AdapterContractError, AdapterFailure, call_adapter, evaluate_oracle
from .registry import REGISTRY
from .strategies import (
    class_indices,
    dtype_value_lists,
    probabilities,
    shapes_with_classes,
    to_dtype,
)

__all__ = ["PROPERTIES", "Property", "PropertyViolation"]


class PropertyViolation(AssertionError):
    """A relation between outputs fails beyond its derived tolerance, or one of its calls
    fails outright. ``call``: the derived call that raised (a weight of ones added, the
    reduction changed), else None. The expectations lookup (``test_properties``) asks the
    generated case first, then that call: a call that raises is a behaviour of that call
    alone, which an entry may describe exactly (its features hold there, not necessarily on
    the generated case)."""

    def __init__(self, message: str, call: Case | None = None) -> None:
        super().__init__(message)
        self.call = call


@dataclass(frozen=True)
class Property:
    name: str
    losses: tuple[str, ...]
    cases: Callable[[str, str], st.SearchStrategy[Case]]
    check: Callable[[Any, Case], None]
    uses: tuple[str, ...] = ()  # other spec functions the relation calls

    def needs(self, loss: str) -> tuple[str, ...]:
        return (loss, *self.uses)


def _observe(adapter, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """(observed as float64, the error-model bound) for one call."""
    try:
        observed = call_adapter(adapter, case)
    except (AdapterFailure, AdapterContractError) as exc:
        raise PropertyViolation(f"  {exc}\n  case: {case.describe()}", call=case) from None
    bound = evaluate_oracle(case).bound
    if observed.shape != bound.shape:
        raise PropertyViolation(
            f"  {case.fn} returned shape {observed.shape}, expected {bound.shape}\n  case: {case.describe()}"
        )
    return observed.astype(np.float64), bound


def _compare(lhs: np.ndarray, rhs: Any, tol: Any, what: str, cases: list[Case]) -> None:
    """Elementwise ``|lhs - rhs| <= tol``; non-finite values must agree exactly, except
    that an infinite ``lhs`` matches a finite ``rhs`` that may round past the dtype's
    largest value (``|rhs| + tol`` at or beyond the overflow threshold, same sign)."""
    fmt = format_of(cases[0].dtype)
    overflow = mpf(fmt.max_finite) + mpf(fmt.max_finite) * mpf(2) ** -(fmt.p + 1)
    lhs = np.asarray(lhs, dtype=np.float64)
    rhs_arr = rhs if isinstance(rhs, np.ndarray) else np.array(rhs, dtype=object)
    tol_arr = np.broadcast_to(np.asarray(tol, dtype=object), lhs.shape)
    with working_precision(80):
        for idx in np.ndindex(lhs.shape):
            left, right, t = lhs[idx], to_mpf(rhs_arr[idx]), to_mpf(tol_arr[idx])
            if math.isinf(left) and mpmath.isfinite(right) and t == t:
                ok = (left > 0) == (right > 0) and abs(right) + t >= overflow
                gap = f"infinite where the exact relation gives {mpmath.nstr(right, 8)}"
            elif math.isnan(left) or right != right or math.isinf(left) or mpmath.isinf(right):
                ok = (math.isnan(left) and right != right) or (left == right)
                gap = "non-finite mismatch"
            else:
                err = abs(to_mpf(left) - right)
                ok = err <= t or (t != t)
                gap = f"|difference| = {mpmath.nstr(err, 6)} > tolerance {mpmath.nstr(t, 6)} ({mpmath.nstr(err / t, 4) if t else 'inf'} x)"
            if not ok:
                where = f" at index {idx}" if idx else ""
                lines = [
                    f"  relation: {what}{where}",
                    f"  left:     {left!r}",
                    f"  right:    {mpmath.nstr(right, 17)}",
                    f"  {gap}",
                ] + [f"  case:     {c.describe()}" for c in cases]
                raise PropertyViolation("\n".join(lines))


def _with(case: Case, **changes) -> Case:
    kwargs = {k: v for k, v in case.kwargs.items() if k not in changes}
    kwargs.update({k: v for k, v in changes.items() if v is not None})
    return Case(case.fn, case.args, kwargs, case.dtype)


def _exact_sum(values: np.ndarray) -> mpf:
    return mpmath.fsum(to_mpf(v) for v in np.asarray(values).reshape(-1))


# ------------------------------------------------------------ reductions


def _reduction_cases(loss: str, dtype: str):
    return REGISTRY[loss].cases(dtype)


def _check_sum_of_none(adapter, case: Case) -> None:
    none, b_none = _observe(adapter, _with(case, reduction="none"))
    total, b_total = _observe(adapter, _with(case, reduction="sum"))
    with working_precision(128):
        _compare(total, _exact_sum(none), b_total + np.sum(b_none), "sum == sum of none", [_with(case, reduction="sum")])


def _check_mean(adapter, case: Case) -> None:
    mean_case = _with(case, reduction="mean")
    sum_case = _with(case, reduction="sum")
    mean, b_mean = _observe(adapter, mean_case)
    total, b_total = _observe(adapter, sum_case)
    denominator = evaluate_oracle(mean_case).terms.denominator
    if denominator == 0 or not np.all(np.isfinite(evaluate_oracle(sum_case).rounded)):
        return  # 0/0, or a sum that rightly overflows the dtype: the oracle tests judge those
    with working_precision(128):
        rhs = to_mpf(total[()]) / denominator
        tol = mpf(b_mean[()]) + mpf(b_total[()]) / abs(denominator)
        _compare(mean, rhs, tol, f"mean == sum / {mpmath.nstr(denominator, 8)} (the spec's denominator)", [mean_case])


def _weight_shape(case: Case) -> tuple[int, ...]:
    x = case.args["input"]
    if case.fn in ("cross_entropy", "nll_loss"):
        return (x.shape[1] if x.ndim > 1 else x.shape[0],)
    return x.shape


def _check_unit_weight(adapter, case: Case) -> None:
    plain = _with(case, weight=None)
    plain = Case(plain.fn, plain.args, {k: v for k, v in plain.kwargs.items() if k not in ("weight", "pos_weight")}, plain.dtype)
    ones = dict(plain.kwargs, weight=to_dtype(np.ones(_weight_shape(case)), case.dtype))
    if case.fn == "binary_cross_entropy_with_logits" and case.args["input"].ndim:
        ones["pos_weight"] = to_dtype(np.ones(case.args["input"].shape[-1:]), case.dtype)
    weighted = Case(plain.fn, plain.args, ones, plain.dtype)
    a, b_a = _observe(adapter, plain)
    b, b_b = _observe(adapter, weighted)
    _compare(b, mp_array(a), b_a + b_b, "weight of ones == no weight", [weighted])


@st.composite
def _ignore_cases(draw, loss: str, dtype: str) -> Case:
    case = draw(REGISTRY[loss].cases(dtype))
    x = case.args["input"]
    target = case.args["target"]
    kwargs = dict(case.kwargs)
    if x.ndim != 2 or not np.issubdtype(target.dtype, np.integer):
        kwargs.pop("weight", None)
        _shape, n_classes = draw(shapes_with_classes(allow_large_classes=False))
        n_classes = max(n_classes, 2)
        x = to_dtype(np.array(draw(dtype_value_lists(dtype, -10, 10, 3 * n_classes))).reshape(3, n_classes), dtype)
        target = draw(class_indices((3,), n_classes))
    ignore = kwargs.get("ignore_index", -100)
    mask = draw(st.lists(st.booleans(), min_size=len(target), max_size=len(target)))
    target = np.where(mask, ignore, target).astype(np.int64)
    kwargs["reduction"] = draw(st.sampled_from(["sum", "mean"]))
    return Case(loss, {"input": x, "target": target}, kwargs, dtype)


def _check_ignore(adapter, case: Case) -> None:
    target = case.args["target"]
    keep = target != case.kwargs.get("ignore_index", -100)
    if not keep.any():
        return
    dropped = Case(case.fn, {"input": case.args["input"][keep], "target": target[keep]}, case.kwargs, case.dtype)
    a, b_a = _observe(adapter, case)
    b, b_b = _observe(adapter, dropped)
    _compare(a, mp_array(b), b_a + b_b, "ignored rows == dropped rows", [case, dropped])


# ------------------------------------------------------------ softmax relations


@st.composite
def _grid_logits(draw, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Logits k/8 with |k| <= 80: adding an integer |c| <= 16 is exact in every dtype."""
    n = int(np.prod(shape))
    ks = draw(st.lists(st.integers(-80, 80), min_size=n, max_size=n))
    return to_dtype(np.array(ks, dtype=np.float64).reshape(shape) / 8, dtype)


@st.composite
def _shift_cases(draw, loss: str, dtype: str) -> Case:
    shape, n_classes = draw(shapes_with_classes(allow_large_classes=False))
    x = draw(_grid_logits(dtype, shape))
    if loss == "cross_entropy":
        target = draw(class_indices(shape[:1] + shape[2:] if len(shape) > 1 else (), n_classes))
        return Case(loss, {"input": x, "target": target}, {"reduction": draw(st.sampled_from(["none", "sum", "mean"]))}, dtype)
    return Case(loss, {"input": x}, {"dim": 1 if len(shape) > 1 else 0}, dtype)


def _check_shift(adapter, case: Case) -> None:
    shift = 11.0
    moved = Case(case.fn, dict(case.args, input=to_dtype(case.args["input"].astype(np.float64) + shift, case.dtype)), case.kwargs, case.dtype)
    a, b_a = _observe(adapter, case)
    b, b_b = _observe(adapter, moved)
    _compare(b, mp_array(a), b_a + b_b, f"f(x + {shift}) == f(x)", [case, moved])


@st.composite
def _ce_index_cases(draw, loss: str, dtype: str) -> Case:
    shape, n_classes = draw(shapes_with_classes(allow_large_classes=False))
    x = draw(_grid_logits(dtype, shape)) if draw(st.booleans()) else draw(REGISTRY["cross_entropy"].cases(dtype)).args["input"]
    if x.shape != shape:
        shape = x.shape
        n_classes = shape[1] if len(shape) > 1 else shape[0]
    target = draw(class_indices(shape[:1] + shape[2:] if len(shape) > 1 else (), n_classes, ignore_index=-100))
    kwargs: dict = {"reduction": "none"}
    if draw(st.booleans()):
        kwargs["weight"] = to_dtype(np.array(draw(dtype_value_lists(dtype, 0.0, 4.0, n_classes))), dtype)
    return Case("cross_entropy", {"input": x, "target": target}, kwargs, dtype)


def _class_dim(x: np.ndarray) -> int:
    return 1 if x.ndim > 1 else 0


def _check_ce_nll(adapter, case: Case) -> None:
    x, target = case.args["input"], case.args["target"]
    ce, b_ce = _observe(adapter, case)
    lsm_case = Case("log_softmax", {"input": x}, {"dim": _class_dim(x)}, case.dtype)
    lsm, b_lsm = _observe(adapter, lsm_case)
    lsm_values = to_dtype(lsm, case.dtype)
    nll_case = Case("nll_loss", {"input": lsm_values, "target": target}, case.kwargs, case.dtype)
    nll, b_nll = _observe(adapter, nll_case)
    weight = case.kwargs.get("weight")
    b_selected = np.take_along_axis(
        np.moveaxis(b_lsm, _class_dim(x), -1).reshape(-1, x.shape[_class_dim(x)]),
        np.where(target.reshape(-1, 1) < 0, 0, target.reshape(-1, 1)), axis=1,
    ).reshape(target.shape)
    w_sel = np.ones(target.shape) if weight is None else weight.astype(np.float64)[np.where(target < 0, 0, target)]
    tol = b_ce + b_nll + np.where(target == -100, 0.0, w_sel * b_selected)
    _compare(ce, mp_array(nll), tol, "cross_entropy == nll_loss(log_softmax)", [case, nll_case])


@st.composite
def _bce_sigmoid_cases(draw, loss: str, dtype: str) -> Case:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    n = int(np.prod(shape))
    # Well conditioned: sigmoid(x) must stay away from 0 and 1 by far more than the
    # dtype's rounding, or BCE's log(1 - p) meets its singularity: |x| <= log(1/(64 u)).
    edge = float(min(8.0, math.floor(math.log(1 / (64 * format_of(dtype).unit_roundoff)))))
    x = to_dtype(np.array(draw(dtype_value_lists(dtype, -edge, edge, n))).reshape(shape), dtype)
    y = to_dtype(np.array(draw(dtype_value_lists(dtype, 0.0, 1.0, n))).reshape(shape), dtype)
    return Case(loss, {"input": x, "target": y}, {"reduction": "none"}, dtype)


def _check_bce_sigmoid(adapter, case: Case) -> None:
    x, y = case.args["input"], case.args["target"]
    direct, b_direct = _observe(adapter, case)
    sig_case = Case("sigmoid", {"input": x}, {}, case.dtype)
    sig, b_sig = _observe(adapter, sig_case)
    bce_case = Case("binary_cross_entropy", {"input": to_dtype(sig, case.dtype), "target": y}, {"reduction": "none"}, case.dtype)
    via, b_via = _observe(adapter, bce_case)
    with working_precision(80):
        p = oracle.sigmoid(x)
        yy = mp_array(y)
        slope = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(x.shape):
            slope[idx] = abs((1 - yy[idx]) / (1 - p[idx]) - yy[idx] / p[idx])
        tol = b_direct + b_via + np.vectorize(float)(slope * b_sig)
    _compare(direct, mp_array(via), tol, "BCEWithLogits(x) == BCE(sigmoid(x))", [case, bce_case])


@st.composite
def _entropy_kl_cases(draw, loss: str, dtype: str) -> Case:
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    x = to_dtype(np.array(draw(dtype_value_lists(dtype, -10.0, 10.0, n * c))).reshape(n, c), dtype)
    p = draw(probabilities((n, c), dtype))
    return Case("cross_entropy", {"input": x, "target": p}, {"reduction": "none"}, dtype)


def _check_entropy_kl(adapter, case: Case) -> None:
    x, p = case.args["input"], case.args["target"]
    ce, b_ce = _observe(adapter, case)
    lsm, b_lsm = _observe(adapter, Case("log_softmax", {"input": x}, {"dim": 1}, case.dtype))
    kl_case = Case("kl_div", {"input": to_dtype(lsm, case.dtype), "target": p}, {"reduction": "none"}, case.dtype)
    kl, b_kl = _observe(adapter, kl_case)
    with working_precision(128):
        h = oracle.entropy(p, dim=1)
        rhs = np.array([h[i] + _exact_sum(kl[i]) for i in range(x.shape[0])], dtype=object)
    tol = b_ce + np.sum(b_kl + p.astype(np.float64) * b_lsm, axis=1)
    _compare(ce, rhs, tol, "H(P, Q) == H(P) + KL(P || Q)", [case, kl_case])


# ------------------------------------------------------------ regression relations (issue 4)


@st.composite
def _regression_pairs(draw, loss: str, dtype: str) -> Case:
    from .specs_regression import input_target_pair

    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    x, y = draw(input_target_pair(shape, dtype, threshold=1.0))
    return Case(loss, {"input": x, "target": y}, {"reduction": "none"}, dtype)


def _power_of_two_at_least(v: float) -> float:
    """The power of two above ``v`` (1.0 for v <= 0); inf when it exceeds float64's range."""
    if v <= 0:
        return 1.0
    exponent = math.frexp(v)[1] if math.isfinite(v) else 1025  # frexp(inf) has exponent 0
    return math.ldexp(1.0, exponent) if exponent <= 1023 else math.inf


@st.composite
def _smooth_l1_beta_cases(draw, loss: str, dtype: str) -> Case:
    case = draw(_regression_pairs(loss, dtype))
    beta = math.ldexp(1.0, draw(st.integers(-8, 8)))
    return Case(loss, case.args, {"reduction": "none", "beta": beta}, dtype)


def _check_smooth_l1_is_huber_over_beta(adapter, case: Case) -> None:
    beta = case.kwargs["beta"]
    s, b_s = _observe(adapter, case)
    huber = Case("huber_loss", case.args, {"reduction": "none", "delta": beta}, case.dtype)
    h, b_h = _observe(adapter, huber)
    with working_precision(128):
        rhs = np.vectorize(lambda v: to_mpf(v) * to_mpf(beta), otypes=[object])(s)
    _compare(h, rhs, b_h + beta * b_s, f"huber_loss(delta={beta}) == {beta} * smooth_l1_loss(beta={beta})", [case, huber])


def _finite_differences(case: Case) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(case.args["input"].astype(np.float64) - case.args["target"].astype(np.float64))
    return d[np.isfinite(d)]


def _check_huber_inside_delta(adapter, case: Case) -> None:
    """delta >= max |d|: every element is in the quadratic branch, Huber = MSE / 2."""
    d = _finite_differences(case)
    delta = _power_of_two_at_least(float(d.max()) * 2 if d.size else 1.0)
    if not d.size or delta > format_of(case.dtype).max_finite or d.size != case.args["input"].size:
        return
    huber = Case("huber_loss", case.args, {"reduction": "none", "delta": delta}, case.dtype)
    mse = Case("mse_loss", case.args, {"reduction": "none"}, case.dtype)
    h, b_h = _observe(adapter, huber)
    m, b_m = _observe(adapter, mse)
    with working_precision(128):
        rhs = np.vectorize(lambda v: to_mpf(v) / 2, otypes=[object])(m)
    _compare(h, rhs, b_h + b_m / 2, f"huber_loss(delta={delta}) == mse_loss / 2 where |d| < delta", [huber, mse])


def _check_huber_beyond_delta(adapter, case: Case) -> None:
    """delta <= min |d|: every element is in the linear branch, Huber = delta (L1 - delta/2)."""
    d = _finite_differences(case)
    if not d.size or d.size != case.args["input"].size or d.min() == 0:
        return
    delta = math.ldexp(1.0, math.frexp(float(d.min()))[1] - 2)
    if delta < format_of(case.dtype).smallest_normal:
        return
    huber = Case("huber_loss", case.args, {"reduction": "none", "delta": delta}, case.dtype)
    l1 = Case("l1_loss", case.args, {"reduction": "none"}, case.dtype)
    h, b_h = _observe(adapter, huber)
    a, b_a = _observe(adapter, l1)
    with working_precision(128):
        rhs = np.vectorize(lambda v: to_mpf(delta) * (to_mpf(v) - to_mpf(delta) / 2), otypes=[object])(a)
    _compare(h, rhs, b_h + delta * b_a, f"huber_loss(delta={delta}) == delta (l1_loss - delta/2) where |d| >= delta", [huber, l1])


@st.composite
def _kl_identical_cases(draw, loss: str, dtype: str) -> Case:
    case = draw(REGISTRY["kl_div"].cases(dtype))
    x = case.args["input"]
    if draw(st.booleans()):
        x = np.where(np.arange(x.size).reshape(x.shape) % 3 == 0, -np.inf, x.astype(np.float64)).astype(x.dtype)
    return Case("kl_div", {"input": x, "target": x.copy()}, {"reduction": "none", "log_target": True}, dtype)


def _check_kl_identical(adapter, case: Case) -> None:
    """KL(P || P) = 0: with ``log_target``, ``kl_div(s, s)`` is ``e^s (s - s) = 0`` for every
    element (``s = -inf`` is a zero probability: 0 by the convention), whatever the rounding."""
    kl, b_kl = _observe(adapter, case)
    zeros = np.full(kl.shape, mpf(0), dtype=object)
    _compare(kl, zeros, b_kl, "kl_div(s, s, log_target=True) == 0 (KL(P || P) = 0)", [case])


def _check_ctc_mean(adapter, case: Case) -> None:
    """``mean = (1/N) sum_n none_n / max(S_n, 1)``: each loss over its own target length."""
    mean_case, none_case = _with(case, reduction="mean"), _with(case, reduction="none")
    mean, b_mean = _observe(adapter, mean_case)
    none, b_none = _observe(adapter, none_case)
    lengths = np.maximum(np.asarray(case.args["target_lengths"]).reshape(-1), 1).astype(np.float64)
    if not np.all(np.isfinite(none)):
        return  # an infinite loss makes the mean infinite: the oracle tests judge that
    with working_precision(128):
        rhs = mpmath.fsum(to_mpf(v) / int(n) for v, n in zip(none.reshape(-1), lengths)) / lengths.size
        tol = mpf(b_mean[()]) + mpmath.fsum(mpf(b) / int(n) for b, n in zip(np.asarray(b_none).reshape(-1), lengths)) / lengths.size
    _compare(mean, rhs, tol, "mean == mean over the batch of none / max(target_length, 1)", [mean_case, none_case])


REGRESSION_PROPERTIES = [
    Property("ctc_mean_divides_by_target_lengths", ("ctc_loss",), _reduction_cases, _check_ctc_mean),
    Property("kl_of_a_distribution_with_itself_is_0", ("kl_div",), _kl_identical_cases, _check_kl_identical),
    Property("smooth_l1_times_beta_is_huber", ("smooth_l1_loss",), _smooth_l1_beta_cases, _check_smooth_l1_is_huber_over_beta, ("huber_loss",)),
    Property("huber_is_half_mse_inside_delta", ("huber_loss",), _regression_pairs, _check_huber_inside_delta, ("mse_loss",)),
    Property("huber_is_scaled_l1_beyond_delta", ("huber_loss",), _regression_pairs, _check_huber_beyond_delta, ("l1_loss",)),
]

_REDUCING = tuple(name for name, spec in REGISTRY.items() if spec.reduces)
_WEIGHTED = ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss", "mse_loss", "huber_loss")

PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in [
        Property("sum_is_sum_of_none", _REDUCING, _reduction_cases, _check_sum_of_none),
        # ctc_loss's mean divides each loss by its own target length first (its own property)
        Property("mean_is_sum_over_denominator", (*tuple(n for n in _REDUCING if n not in ("kl_div", "ctc_loss")), "kl_div"), _reduction_cases, _check_mean),
        Property("unit_weight_is_no_weight", _WEIGHTED, _reduction_cases, _check_unit_weight),
        Property("ignore_index_drops_rows", ("cross_entropy", "nll_loss"), _ignore_cases, _check_ignore),
        Property("shift_invariance", ("cross_entropy", "log_softmax", "softmax"), _shift_cases, _check_shift),
        Property("cross_entropy_is_nll_of_log_softmax", ("cross_entropy",), _ce_index_cases, _check_ce_nll, ("log_softmax", "nll_loss")),
        Property("bce_with_logits_is_bce_of_sigmoid", ("binary_cross_entropy_with_logits",), _bce_sigmoid_cases, _check_bce_sigmoid, ("sigmoid", "binary_cross_entropy")),
        Property("cross_entropy_is_entropy_plus_kl", ("cross_entropy",), _entropy_kl_cases, _check_entropy_kl, ("log_softmax", "kl_div")),
        *REGRESSION_PROPERTIES,
    ]
}


# ------------------------------------------------------------ margin, ranking and embedding losses (issue 5)
# Symmetries of the formulas, the -1 terminator, the swap rule and unit class weights. Each
# compares two outputs of the adapter elementwise (reduction none), tolerance B_1 + B_2; for
# the swap rule max(., .) is 1-Lipschitz, so the tolerance is the sum of the three bounds.


def _as_none(case: Case) -> Case:
    return _with(case, reduction="none")


def _margin_none_cases(loss: str, dtype: str):
    return REGISTRY[loss].cases(dtype).map(_as_none)


def _negated(a: np.ndarray, dtype: str) -> np.ndarray:
    return to_dtype(-a.astype(np.float64), dtype)


def _check_ranking_antisymmetry(adapter, case: Case) -> None:
    x1, x2, y = case.args["input1"], case.args["input2"], case.args["target"]
    swapped = Case(case.fn, {"input1": x2, "input2": x1, "target": _negated(y, case.dtype)}, case.kwargs, case.dtype)
    a, b_a = _observe(adapter, case)
    b, b_b = _observe(adapter, swapped)
    _compare(b, mp_array(a), b_a + b_b, "margin_ranking_loss(x2, x1, -y) == margin_ranking_loss(x1, x2, y)", [case, swapped])


def _check_soft_margin_sign_symmetry(adapter, case: Case) -> None:
    x, y = case.args["input"], case.args["target"]
    flipped = Case(case.fn, {"input": _negated(x, case.dtype), "target": _negated(y, case.dtype)}, case.kwargs, case.dtype)
    a, b_a = _observe(adapter, case)
    b, b_b = _observe(adapter, flipped)
    _compare(b, mp_array(a), b_a + b_b, "soft_margin_loss(-x, -y) == soft_margin_loss(x, y)", [case, flipped])


def _check_cosine_symmetry(adapter, case: Case) -> None:
    swapped = Case(case.fn, {"input1": case.args["input2"], "input2": case.args["input1"], "target": case.args["target"]}, case.kwargs, case.dtype)
    a, b_a = _observe(adapter, case)
    b, b_b = _observe(adapter, swapped)
    _compare(b, mp_array(a), b_a + b_b, "cosine_embedding_loss(b, a, y) == cosine_embedding_loss(a, b, y)", [case, swapped])


@st.composite
def _padding_cases(draw, loss: str, dtype: str) -> Case:
    """A multilabel_margin_loss case whose rows end in -1 and padding, and the same case with
    every row's padding (the entries after the first -1) permuted and partly redrawn."""
    case = _as_none(draw(REGISTRY[loss].cases(dtype)))
    target = case.args["target"]
    rows = np.atleast_2d(target).copy()
    c = rows.shape[1]
    for row in rows:
        stops = np.flatnonzero(row == -1)
        if stops.size:
            tail = row[stops[0] + 1:]
            redrawn = [draw(st.integers(-1, c - 1)) if draw(st.booleans()) else v for v in draw(st.permutations(list(tail)))]
            row[stops[0] + 1:] = redrawn
    return Case(case.fn, dict(case.args), dict(case.kwargs), dtype, companion={"repadded_target": rows.reshape(target.shape)})


def _check_padding(adapter, case: Case) -> None:
    plain = Case(case.fn, case.args, case.kwargs, case.dtype)
    repadded = Case(case.fn, dict(case.args, target=case.companion["repadded_target"]), case.kwargs, case.dtype)
    a, b_a = _observe(adapter, plain)
    b, b_b = _observe(adapter, repadded)
    _compare(b, mp_array(a), b_a + b_b, "entries after the -1 terminator do not matter", [plain, repadded])


@st.composite
def _swap_cases(draw, loss: str, dtype: str) -> Case:
    """Triplets with ``eps = 0`` (then d is symmetric) and ``p = 2``, no swap."""
    case = draw(REGISTRY[loss].cases(dtype))
    kwargs = {k: v for k, v in case.kwargs.items() if k not in ("swap", "eps", "p")}
    kwargs.update(reduction="none", eps=0.0)
    return Case(case.fn, case.args, kwargs, dtype)


def _check_swap_rule(adapter, case: Case) -> None:
    a, p, n = case.args["anchor"], case.args["positive"], case.args["negative"]
    swapped = Case(case.fn, case.args, dict(case.kwargs, swap=True), case.dtype)
    other = Case(case.fn, {"anchor": p, "positive": a, "negative": n}, case.kwargs, case.dtype)
    s, b_s = _observe(adapter, swapped)
    x, b_x = _observe(adapter, case)
    o, b_o = _observe(adapter, other)
    rhs = np.maximum(x, o)
    _compare(s, mp_array(rhs), b_s + b_x + b_o, "swap=True == max(f(a, p, n), f(p, a, n)) (eps = 0)", [swapped, case, other])


def _check_unit_class_weight(adapter, case: Case) -> None:
    plain = _with(case, weight=None)
    plain = Case(plain.fn, plain.args, {k: v for k, v in plain.kwargs.items() if k != "weight"}, plain.dtype)
    c = np.shape(case.args["input"])[-1]
    weighted = Case(plain.fn, plain.args, dict(plain.kwargs, weight=to_dtype(np.ones(c), case.dtype)), plain.dtype)
    a, b_a = _observe(adapter, plain)
    b, b_b = _observe(adapter, weighted)
    _compare(b, mp_array(a), b_a + b_b, "class weight of ones == no weight", [weighted])


PROPERTIES.update({
    p.name: p
    for p in [
        Property("ranking_antisymmetry", ("margin_ranking_loss",), _margin_none_cases, _check_ranking_antisymmetry),
        Property("soft_margin_sign_symmetry", ("soft_margin_loss",), _margin_none_cases, _check_soft_margin_sign_symmetry),
        Property("cosine_symmetry", ("cosine_embedding_loss",), _margin_none_cases, _check_cosine_symmetry),
        Property("padding_after_terminator_ignored", ("multilabel_margin_loss",), _padding_cases, _check_padding),
        Property("swap_is_max_over_anchors", ("triplet_margin_loss",), _swap_cases, _check_swap_rule),
        Property("unit_class_weight_is_no_weight", ("multi_margin_loss", "multilabel_soft_margin_loss"), _margin_none_cases, _check_unit_class_weight),
    ]
})
