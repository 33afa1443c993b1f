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
