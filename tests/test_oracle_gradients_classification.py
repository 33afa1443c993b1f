"""Tests of ``oracle/gradients_classification.py``: ``cross_entropy``'s exact gradients w.r.t.
``target`` (class probabilities) and ``weight`` (class indices and probabilities), and
``nll_loss``'s w.r.t. ``weight``.

* Each gradient against ``mpmath.diff`` of the output's sum (every reduction, label
  smoothing, ``ignore_index``, the weighted mean's denominator).
* Each condition covers the true first-order sensitivity of that gradient to every floating
  input, measured numerically (``tests/test_oracle_gradient_conditions.py``'s check).
* Hand values: the weighted mean's ``(A_c D - S n_c) / D^2``, an exactly-zero derivative
  (one kept row), all rows ignored, the masked-class conventions.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import gradients as og
from suites.registry import REGISTRY

from .test_oracle_gradients import floats_array, moderate
from .test_oracle_gradients_regression import assert_condition_covers_wrt, assert_grad_matches_numerical

N, C = 3, 3
REDUCTIONS = st.sampled_from(["none", "mean", "sum"])
SMOOTHING = st.sampled_from([0.0, 0.0, 0.25, 1.0])


def _probabilities(data) -> np.ndarray:
    raw = floats_array(data, st.floats(0.0, 1.0), (N, C)) + np.array([1e-3, 0.0, 0.0])
    return raw / raw.sum(axis=1, keepdims=True)


def _weight(data) -> np.ndarray:
    return floats_array(data, st.floats(0.2, 3.0), (C,))


@settings(max_examples=6, deadline=None)
@given(data=st.data(), reduction=REDUCTIONS, eps=SMOOTHING, weighted=st.booleans())
def test_cross_entropy_probability_target_gradients(data, reduction, eps, weighted):
    x, p = floats_array(data, moderate, (N, C)), _probabilities(data)
    kwargs = {"reduction": reduction, "label_smoothing": eps}
    if weighted:
        kwargs["weight"] = _weight(data)
    for wrt in ("target", "weight") if weighted else ("target",):
        assert_grad_matches_numerical("cross_entropy", {"input": x, "target": p}, kwargs, wrt)
        assert_condition_covers_wrt("cross_entropy", {"input": x, "target": p}, kwargs, wrt, tight=wrt == "target")


@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=REDUCTIONS, eps=SMOOTHING, ignore=st.sampled_from([-100, 1]))
def test_cross_entropy_index_target_weight_gradient(data, reduction, eps, ignore):
    """The weighted mean's denominator moves with the weights (``(A_c D - S n_c) / D^2``)."""
    x = floats_array(data, moderate, (N, C))
    y = np.array(data.draw(st.lists(st.sampled_from([0, 1, 2, ignore]), min_size=N, max_size=N)), dtype=np.int64)
    kwargs = {"weight": _weight(data), "reduction": reduction, "label_smoothing": eps, "ignore_index": ignore}
    args = {"input": x, "target": y}
    if reduction == "mean" and all(v == ignore for v in y):
        return  # mean of nothing: NaN, its gradient undefined (test_all_ignored)
    assert_grad_matches_numerical("cross_entropy", args, kwargs, "weight")
    assert_condition_covers_wrt("cross_entropy", args, kwargs, "weight", tight=reduction != "mean")


@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=REDUCTIONS)
def test_nll_loss_weight_gradient(data, reduction):
    x = floats_array(data, moderate, (N, C))
    y = np.array(data.draw(st.lists(st.sampled_from([0, 1, 2, -100]), min_size=N, max_size=N)), dtype=np.int64)
    if reduction == "mean" and all(v == -100 for v in y):
        return
    args, kwargs = {"input": x, "target": y}, {"weight": _weight(data), "reduction": reduction}
    assert_grad_matches_numerical("nll_loss", args, kwargs, "weight")
    assert_condition_covers_wrt("nll_loss", args, kwargs, "weight", tight=reduction != "mean")


def test_weighted_mean_hand_values():
    """nll_loss, x = [[-1, -2, -3], [-0.5, -4, -0.25]], y = [0, 2], w = [0.25, 1, 4]:
    D = 4.25, S = 0.25 * 1 + 4 * 0.25 = 1.25; dF/dw_c = (A_c D - S n_c) / D^2 with
    A = [1, 0, 0.25], n = [1, 0, 1]: [3, 0, -0.1875] / 18.0625."""
    x = np.array([[-1.0, -2.0, -3.0], [-0.5, -4.0, -0.25]])
    with mpmath.workdps(50):
        g = oracle.nll_loss_grad(x, np.array([0, 2]), np.array([0.25, 1.0, 4.0]), wrt="weight")
        expected = [mpf(3) / mpf("18.0625"), 0, mpf("-0.1875") / mpf("18.0625")]
        assert [mpmath.almosteq(a, b, 1e-40) for a, b in zip(g, expected)] == [True] * 3 and g[1] == 0
    # sum: A_c itself
    gs = oracle.nll_loss_grad(x, np.array([0, 2]), np.array([0.25, 1.0, 4.0]), reduction="sum", wrt="weight")
    assert list(gs) == [1, 0, mpf("0.25")]


def test_one_kept_row_mean_weight_gradient_is_exactly_zero():
    """One kept row, no smoothing: ``F = r_y`` whatever ``w_y`` -- the derivative is exactly 0
    (the oracle's form drops the identically-zero term, so correct rounding terminates).
    With smoothing ``F = (1-eps) r_y + eps/C sum_c w_c r_c / w_y`` depends on every weight:
    ``eps/C r_c / w_y`` for ``c != y`` and ``-eps/C sum_{c != y} w_c r_c / w_y^2`` for ``y``."""
    x, y, w = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), np.array([2, -100]), np.array([0.5, 1.0, 2.0])
    assert list(oracle.cross_entropy_grad(x, y, w, wrt="weight")) == [0, 0, 0]
    with mpmath.workdps(50):
        g = oracle.cross_entropy_grad(x, y, w, label_smoothing=0.25, wrt="weight")
        r = [oracle.activations.SoftmaxRow([mpf(1), mpf(2), mpf(3)]).neg_log_prob(c) for c in range(3)]
        k = mpf("0.25") / 3
        expected = [k * r[0] / 2, k * r[1] / 2, -k * (mpf("0.5") * r[0] + r[1]) / 4]
        assert [mpmath.almosteq(a, b, 1e-40) for a, b in zip(g, expected)] == [True] * 3


def test_weighted_mean_weight_gradient_with_a_dominant_class_row():
    """x = [[1e20, 0], [0, 0]], y = [0, 1], w = [1, 1], mean: A = [log1p(e^-1e20), log 2],
    D = 2, S = A_0 + A_1, dF/dw = [(A_0 - log 2) / 4, (log 2 - A_0) / 4]. A_0 D and n_0 S are
    ~2**1.4e20 apart: an exact difference would need a mantissa of that many bits (it raised
    OverflowError, the default-profile run's bfloat16 weight-gradient error); the sticky-bit
    sum keeps the sign of A_0's part."""
    x, y, w = np.array([[1e20, 0.0], [0.0, 0.0]]), np.array([0, 1]), np.array([1.0, 1.0])
    with mpmath.workdps(50):
        g = oracle.cross_entropy_grad(x, y, w, wrt="weight")
        quarter_log2 = mpmath.log(2) / 4
        assert mpmath.almosteq(g[0], -quarter_log2, 1e-40) and mpmath.almosteq(g[1], quarter_log2, 1e-40)
    # the run's case, reduced: one row dominated by 2.1e19, w_4 = 0, class 2's row all zeros
    x = np.zeros((2, 6))
    x[0, 4] = 2.11849e19
    g = oracle.cross_entropy_grad(x, np.array([4, 2]), np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), wrt="weight")
    assert mpmath.almosteq(g[4], -mpmath.log(6), 1e-12) and [g[c] for c in (0, 1, 2, 3, 5)] == [0] * 5


def test_all_ignored():
    """A mean of nothing is 0/0 = NaN (undefined: the suite does not judge it); a sum is 0
    for every weight."""
    x, y, w = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([-100, -100]), np.array([1.0, 2.0])
    assert all(mpmath.isnan(v) for v in oracle.cross_entropy_grad(x, y, w, wrt="weight"))
    assert list(oracle.cross_entropy_grad(x, y, w, reduction="sum", wrt="weight")) == [0, 0]
    assert list(oracle.nll_loss_grad(x, y, w, reduction="sum", wrt="weight")) == [0, 0]


def test_probability_target_hand_values():
    """``d/dp = (1-eps) w_c r_c / N``, ``d/dw_c = sum_n q_c r_c / N``: one row, uniform logits
    (``r = log 3``), ``eps = 0.25``, ``w = [1, 2, 4]``, ``p = [1, 0, 0]``, ``q = [0.8333.., 0.0833.., ..]``."""
    x, p, w = np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]]), np.array([1.0, 2.0, 4.0])
    with mpmath.workdps(50):
        log3 = mpmath.log(3)
        gp = oracle.cross_entropy_grad(x, p, w, label_smoothing=0.25, wrt="target").reshape(-1)
        assert [mpmath.almosteq(a, b, 1e-40) for a, b in zip(gp, [0.75 * log3, 1.5 * log3, 3 * log3])] == [True] * 3
        gw = oracle.cross_entropy_grad(x, p, w, label_smoothing=0.25, wrt="weight")
        q = [mpf(0.75) + mpf(0.25) / 3, mpf(0.25) / 3, mpf(0.25) / 3]
        assert [mpmath.almosteq(a, qc * log3, 1e-40) for a, qc in zip(gw, q)] == [True] * 3


def test_masked_class_conventions():
    """Probability targets, a masked class (logit -inf) with target 0, no smoothing: the loss
    is finite (0 log 0 = 0); d/dw of that class is 0 (its term is identically 0), d/dp is
    +inf (any mass there makes the loss infinite), NaN with a zero weight (0 * inf)."""
    x, p = np.array([[1.0, -np.inf, 2.0]]), np.array([[0.5, 0.0, 0.5]])
    gw = oracle.cross_entropy_grad(x, p, np.array([1.0, 2.0, 1.0]), reduction="sum", wrt="weight")
    assert gw[1] == 0 and all(mpmath.isfinite(v) and v > 0 for v in gw[[0, 2]])
    gp = oracle.cross_entropy_grad(x, p, np.array([1.0, 2.0, 1.0]), reduction="sum", wrt="target").reshape(-1)
    assert gp[1] == mpmath.inf
    gp0 = oracle.cross_entropy_grad(x, p, np.array([1.0, 0.0, 1.0]), reduction="sum", wrt="target").reshape(-1)
    assert mpmath.isnan(gp0[1]) and mpmath.isfinite(gp0[0])
    gc = og.cross_entropy_grad_condition(x, p, np.array([1.0, 2.0, 1.0]), reduction="sum", wrt="target")
    assert gc.condition.reshape(-1)[1] == 0


def test_index_weight_condition_counts_rows():
    gc = og.nll_loss_grad_condition(-np.ones((4, 2)), np.array([0, 1, 1, 0]), np.ones(2), reduction="sum", wrt="weight")
    assert gc.count == 4 and gc.condition.shape == (2,)


def test_registry_and_missing_parameter():
    assert REGISTRY["cross_entropy"].grad_wrt == ("input", "target", "weight")
    assert REGISTRY["nll_loss"].grad_wrt == ("input", "weight")
    with pytest.raises(ValueError, match="no differentiable parameter 'target'"):
        oracle.cross_entropy_grad(np.zeros((1, 2)), np.array([0]), wrt="target")
    with pytest.raises(ValueError, match="no differentiable parameter 'weight'"):
        oracle.nll_loss_grad(np.zeros((1, 2)), np.array([0]), wrt="weight")


def test_mean_weight_gradient_with_a_lone_log1p_tail():
    """Regression (issue 11, jax cross_entropy d/dweight bfloat16 "error": OverflowError "the
    exact result does not fit in memory"). x = [[0, 2^64], [0, 0]], y = [1, 0], w = [1, 0]
    (reduction mean): D = w_0 = 1, F = S/D = log 2 (row 1), and row 0's loss is
    A_1 = log(1 + e^-2^64) ~ e^-2^64, an mpf whose exponent is ~ -2.7e19 bits. dF/dw_1 =
    (A_1 D - n_1 S) / D^2 = e^-2^64 - log 2; formed with an exact subtraction it needed a
    2.7e19-bit mantissa. Expected: -log 2 (the tail lies far below every format), and
    dF/dw_0 = (A_0 - F) / D = log 2 - log 2 = 0 exactly."""
    x = np.array([[0.0, 2.0**64], [0.0, 0.0]], dtype=np.float32)
    y, w = np.array([1, 0]), np.array([1.0, 0.0], dtype=np.float32)
    with mpmath.workdps(50):
        g = oracle.cross_entropy_grad(x, y, w, wrt="weight")
        assert g[0] == 0
        assert mpmath.almosteq(g[1], -mpmath.log(2), 1e-40)
    rounded = oracle.correctly_rounded(lambda: oracle.cross_entropy_grad(x, y, w, wrt="weight"), "bfloat16")[1]
    assert [float(v) for v in np.asarray(rounded).reshape(-1)] == [0.0, -0.69140625]
