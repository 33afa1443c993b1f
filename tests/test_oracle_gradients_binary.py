"""Tests of ``oracle/gradients_binary.py``: ``binary_cross_entropy_with_logits``'s exact
gradients w.r.t. ``target``, ``weight``, ``pos_weight`` against ``mpmath.diff`` of the
output's sum, and their conditions against the numerically measured sensitivity."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import gradients as og

from .test_oracle_gradients import floats_array, moderate
from .test_oracle_gradients_regression import assert_condition_covers_wrt, assert_grad_matches_numerical

SHAPE = (2, 3)
FN = "binary_cross_entropy_with_logits"


def _case(data, weight_shape, pos_weight):
    x = floats_array(data, moderate, SHAPE)
    y = floats_array(data, st.floats(0.0, 1.0), SHAPE)
    kwargs = {"reduction": data.draw(st.sampled_from(["none", "mean", "sum"]))}
    if weight_shape is not None:
        kwargs["weight"] = floats_array(data, st.floats(0.2, 3.0), weight_shape)
    if pos_weight:
        kwargs["pos_weight"] = floats_array(data, st.floats(0.1, 4.0), SHAPE[-1:])
    return {"input": x, "target": y}, kwargs


WEIGHT_SHAPES = st.sampled_from([None, SHAPE, (3,), (2, 1)])


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weight_shape=WEIGHT_SHAPES, pos_weight=st.booleans())
def test_gradients_wrt_every_parameter(data, weight_shape, pos_weight):
    args, kwargs = _case(data, weight_shape, pos_weight)
    for wrt in ("input", "target", "weight", "pos_weight"):
        if wrt in ("weight", "pos_weight") and wrt not in kwargs:
            continue
        assert_grad_matches_numerical(FN, args, kwargs, wrt)


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weight_shape=WEIGHT_SHAPES, pos_weight=st.booleans())
def test_conditions_cover(data, weight_shape, pos_weight):
    args, kwargs = _case(data, weight_shape, pos_weight)
    for wrt in ("target", "weight", "pos_weight"):
        if wrt in ("weight", "pos_weight") and wrt not in kwargs:
            continue
        # p a - b (target) cancels where p a ~ b: coverage only there
        assert_condition_covers_wrt(FN, args, kwargs, wrt, tight=wrt != "target")


def test_special_values():
    """``x = +-inf`` with matching hard targets: the loss is 0; d/dy is the limit ``-+inf``
    (``-x`` at p = 1), d/dw is 0 (``0 log 0 = 0``), d/dp is 0 (``y = 0`` or ``a = 0``)."""
    x, y = np.array([np.inf, -np.inf]), np.array([1.0, 0.0])
    kw = {"weight": np.array([2.0, 3.0]), "pos_weight": np.array([0.5]), "reduction": "sum"}
    gy = oracle.binary_cross_entropy_with_logits_grad(x, y, **kw, wrt="target")
    assert gy[0] == -mpmath.inf and gy[1] == mpmath.inf
    assert list(oracle.binary_cross_entropy_with_logits_grad(x, y, **kw, wrt="weight")) == [0, 0]
    assert list(oracle.binary_cross_entropy_with_logits_grad(x, y, **kw, wrt="pos_weight")) == [0]
    # p = 0: the forward's 0 * inf is NaN for y > 0, so d/dy at x = -inf is undefined
    g0 = oracle.binary_cross_entropy_with_logits_grad(x, y, pos_weight=np.array([0.0]), reduction="sum", wrt="target")
    assert g0[0] == -mpmath.inf and mpmath.isnan(g0[1])


def test_target_gradient_is_minus_x_without_pos_weight():
    x = np.array([1e8, -3.5, 0.0])
    g = oracle.binary_cross_entropy_with_logits_grad(x, np.array([0.5, 0.2, 1.0]), reduction="sum", wrt="target")
    assert [mpmath.almosteq(gi, -mpf(xi), 1e-40) for gi, xi in zip(g, x)] == [True] * 3


def test_pos_weight_condition_counts_the_class_sum():
    gc = og.binary_cross_entropy_with_logits_grad_condition(
        np.zeros((4, 2)), np.ones((4, 2)), pos_weight=np.array([1.0, 2.0]), reduction="sum", wrt="pos_weight")
    assert gc.count == 4 and gc.condition.shape == (2,)


def test_missing_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="no differentiable parameter 'pos_weight'"):
        oracle.binary_cross_entropy_with_logits_grad(np.array([1.0]), np.array([0.0]), wrt="pos_weight")


# ------------------------------------------------------------------ binary_cross_entropy

BCE = "binary_cross_entropy"
probability = st.floats(0.01, 0.99)  # away from the clamp's kinks at e^-100 and 1 - e^-100


def _bce_case(data, weight_shape):
    x = floats_array(data, probability, SHAPE)
    y = floats_array(data, st.floats(0.0, 1.0), SHAPE)
    kwargs = {"reduction": data.draw(st.sampled_from(["none", "mean", "sum"]))}
    if weight_shape is not None:
        kwargs["weight"] = floats_array(data, st.floats(0.2, 3.0), weight_shape)
    return {"input": x, "target": y}, kwargs


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weight_shape=WEIGHT_SHAPES)
def test_bce_gradients_wrt_target_and_weight(data, weight_shape):
    args, kwargs = _bce_case(data, weight_shape)
    for wrt in ("target", "weight"):
        if wrt == "weight" and "weight" not in kwargs:
            continue
        assert_grad_matches_numerical(BCE, args, kwargs, wrt)


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weight_shape=WEIGHT_SHAPES)
def test_bce_conditions_cover(data, weight_shape):
    args, kwargs = _bce_case(data, weight_shape)
    for wrt in ("target", "weight"):
        if wrt == "weight" and "weight" not in kwargs:
            continue
        assert_condition_covers_wrt(BCE, args, kwargs, wrt)


@mpmath.workdps(50)
def test_bce_target_gradient_at_the_clamp():
    """``-w (max(log x, -100) - max(log(1 - x), -100))``: +-100 w at x = 0 and 1 (not
    PyTorch's unclamped -logit: +-inf), 100 w below e^-100, 0 at x = 1/2."""
    x = np.array([0.0, 1.0, 1e-45, 0.5, 1e-20])
    g = oracle.binary_cross_entropy_grad(x, np.full(5, 0.5), weight=np.full(5, 2.0), reduction="sum", wrt="target")
    assert [g[0], g[1], g[3]] == [200, -200, 0]
    assert g[2] == -2 * (-100 - mpmath.log1p(-mpf(1e-45)))  # log x clamped, log(1 - x) live: 200 - 2e-45
    assert mpmath.almosteq(g[4], -2 * (mpmath.log(mpf(1e-20)) - mpmath.log1p(-mpf(1e-20))), 1e-40)
    mean = oracle.binary_cross_entropy_grad(x[:2], np.zeros(2), reduction="mean", wrt="target")
    assert list(mean) == [50, -50]


@mpmath.workdps(50)
def test_bce_weight_gradient_is_the_unweighted_term():
    """d/dw = -(y Lx + (1 - y) L1), summed over the rows a ``(C,)`` weight was broadcast
    along: x = 0, y = 1 gives 100 (clamped), x = 0, y = 0 gives 0, x = 1/2 gives log 2."""
    x = np.array([[0.0, 0.5], [0.0, 0.25]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    g = oracle.binary_cross_entropy_grad(x, y, weight=np.array([3.0, 4.0]), reduction="sum", wrt="weight")
    assert g.shape == (2,)
    assert g[0] == 100
    assert mpmath.almosteq(g[1], mpmath.log(2) + mpmath.log(4), 1e-40)
    gc = og.binary_cross_entropy_grad_condition(x, y, weight=np.array([3.0, 4.0]), reduction="sum", wrt="weight")
    assert gc.count == 2 and gc.summation.shape == (2,)


def test_bce_refuses_what_it_does_not_differentiate():
    with pytest.raises(ValueError, match="no differentiable parameter 'weight'"):
        oracle.binary_cross_entropy_grad(np.array([0.5]), np.array([0.0]), wrt="weight")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        oracle.binary_cross_entropy_grad(np.array([1.5]), np.array([0.0]), wrt="target")


# ------------------------------------------------------------------ multilabel_soft_margin_loss

MLSM = "multilabel_soft_margin_loss"


def _mlsm_case(data, weighted, batched=True):
    shape = SHAPE if batched else SHAPE[-1:]
    x = floats_array(data, moderate, shape)
    y = floats_array(data, st.floats(0.0, 1.0), shape)
    kwargs = {"reduction": data.draw(st.sampled_from(["none", "mean", "sum"]))}
    if weighted:
        kwargs["weight"] = floats_array(data, st.floats(0.2, 3.0), data.draw(st.sampled_from([(3,), (1, 3)])))
    return {"input": x, "target": y}, kwargs


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weighted=st.booleans(), batched=st.booleans())
def test_mlsm_gradients_wrt_target_and_weight(data, weighted, batched):
    args, kwargs = _mlsm_case(data, weighted, batched)
    for wrt in ("input", "target", "weight"):
        if wrt == "weight" and not weighted:
            continue
        assert_grad_matches_numerical(MLSM, args, kwargs, wrt)


@settings(max_examples=6, deadline=None)
@given(data=st.data(), weighted=st.booleans())
def test_mlsm_conditions_cover(data, weighted):
    args, kwargs = _mlsm_case(data, weighted)
    for wrt in ("target", "weight"):
        if wrt == "weight" and not weighted:
            continue
        # softplus(-x) - softplus(x) = -x cancels near x = 0: coverage only for target
        assert_condition_covers_wrt(MLSM, args, kwargs, wrt, tight=wrt != "target")


@mpmath.workdps(50)
def test_mlsm_target_gradient_is_minus_w_x_over_c():
    """``w_c (softplus(-x) - softplus(x)) / C = -w_c x / C`` (over N for a mean); at a hard
    target agreeing with an infinite logit the limit ``-+inf`` (PyTorch: the same), and
    ``0 * inf`` = NaN for a zero weight there (the forward multiplies weights as numbers)."""
    x = np.array([[40.0, -3.0, np.inf], [1.0, 0.0, -np.inf]])
    y = np.array([[1.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    g = oracle.multilabel_soft_margin_loss_grad(x, y, weight=np.array([1.0, 2.0, 3.0]), reduction="mean", wrt="target")
    assert [g[0, 0], g[0, 1], g[1, 0], g[1, 1]] == [mpf(-40) / 6, mpf(1), mpf(-1) / 6, 0]
    assert g[0, 2] == -mpmath.inf and g[1, 2] == mpmath.inf
    g0 = oracle.multilabel_soft_margin_loss_grad(x, y, weight=np.array([1.0, 2.0, 0.0]), reduction="sum", wrt="target")
    assert mpmath.isnan(g0[0, 2])


@mpmath.workdps(50)
def test_mlsm_weight_gradient_sums_over_samples():
    """d/dw_c = sum_n [y softplus(-x) + (1 - y) softplus(x)] / C, in the weight's shape; 0 at an
    infinite logit agreeing with its hard target (0 log 0 = 0)."""
    x = np.array([[0.0, np.inf], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [0.0, 1.0]])
    g = oracle.multilabel_soft_margin_loss_grad(x, y, weight=np.array([[1.0, 1.0]]), reduction="sum", wrt="weight")
    assert g.shape == (1, 2)
    assert mpmath.almosteq(g[0, 0], mpmath.log(2), 1e-40)  # (log 2 + log 2) / 2
    assert mpmath.almosteq(g[0, 1], mpmath.log1p(mpmath.exp(-2)) / 2, 1e-40)
    gc = og.multilabel_soft_margin_loss_grad_condition(x, y, weight=np.array([1.0, 1.0]), reduction="sum", wrt="weight")
    assert gc.count == 2 and gc.condition.shape == (2,)
