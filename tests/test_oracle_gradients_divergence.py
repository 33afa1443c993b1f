"""Tests of ``oracle/gradients_divergence.py``: ``kl_div``'s exact gradient w.r.t. ``target``
(both ``log_target`` forms, broadcast targets, every reduction) against ``mpmath.diff`` of the
output's sum, its condition against the numerically measured sensitivity, and its values at
a zero target probability (``-inf``, 0, NaN: the module docstring's conventions)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import gradients as og

from .test_oracle_gradients import floats_array
from .test_oracle_gradients_regression import (
    assert_condition_covers_wrt,
    assert_grad_matches_numerical,
)

FN = "kl_div"
SHAPE = (2, 3)
TARGET_SHAPES = st.sampled_from([SHAPE, (3,), (2, 1)])  # the target broadcasts against input


def _case(data, log_target):
    x = floats_array(data, st.floats(-8.0, 2.0), SHAPE)
    shape = data.draw(TARGET_SHAPES)
    values = st.floats(-8.0, 1.0) if log_target else st.floats(0.01, 1.5)
    kwargs = {"reduction": data.draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))}
    if log_target:
        kwargs["log_target"] = True
    return {"input": x, "target": floats_array(data, values, shape)}, kwargs


@settings(max_examples=8, deadline=None)
@given(data=st.data(), log_target=st.booleans())
def test_target_gradient_matches_numerical(data, log_target):
    args, kwargs = _case(data, log_target)
    assert_grad_matches_numerical(FN, args, kwargs, "target")


@settings(max_examples=8, deadline=None)
@given(data=st.data(), log_target=st.booleans())
def test_target_condition_covers(data, log_target):
    args, kwargs = _case(data, log_target)
    # the summands of log p + 1 - x may cancel, but the sensitivity 1 + |x| stays of their size
    assert_condition_covers_wrt(FN, args, kwargs, "target")


@mpmath.workdps(50)
def test_hand_values():
    """``log p + 1 - x`` and ``e^s (s - x + 1)``; batchmean divides by ``input.size(0)``."""
    x = np.array([[-1.0, -0.5], [-2.0, -0.125]])
    p = np.array([[0.5, 0.5], [0.25, 0.75]])
    g = oracle.kl_div_grad(x, p, reduction="batchmean", wrt="target")
    assert mpmath.almosteq(g[1, 0], (mpmath.log(mpf(0.25)) + 1 + 2) / 2, 1e-45)
    s = np.log(p)
    gs = oracle.kl_div_grad(x, s, reduction="sum", log_target=True, wrt="target")
    assert mpmath.almosteq(gs[0, 1], mpmath.exp(mpf(s[0, 1])) * (mpf(s[0, 1]) + mpf(0.5) + 1), 1e-45)
    # p = q = 1: log p - log q = 0, so the gradient is exactly 1 (mean over 2: 1/2)
    assert list(oracle.kl_div_grad(np.array([0.0, 0.0]), np.array([1.0, 1.0]), reduction="mean", wrt="target")) == [0.5, 0.5]


def test_broadcast_target_sums_over_rows():
    """A ``(3,)`` target against a ``(2, 3)`` input: each component adds its two rows, and the
    condition counts them (``count = 2``)."""
    x = np.array([[-1.0, -2.0, -3.0], [0.0, -1.0, -0.5]])
    t = np.array([0.25, 0.5, 0.25])
    g = oracle.kl_div_grad(x, t, reduction="sum", wrt="target")
    assert g.shape == (3,)
    with mpmath.workdps(50):
        expected = 2 * (mpmath.log(mpf(0.25)) + 1) - (mpf(-1) + mpf(0))
        assert mpmath.almosteq(oracle.kl_div_grad(x, t, reduction="sum", wrt="target")[0], expected, 1e-45)
    gc = og.kl_div_grad_condition(x, t, reduction="sum", wrt="target")
    assert gc.count == 2 and gc.summation.shape == (3,)


def test_zero_target_conventions():
    """p = 0: -inf (the one-sided derivative of p log p); s = -inf: 0 (the limit of
    e^s (s - x + 1)); a zero target at an infinite input: NaN (the loss jumps to +-inf)."""
    g = oracle.kl_div_grad(np.array([0.0, -1.0, -np.inf, np.inf]), np.array([0.0, 0.0, 0.0, 0.0]), reduction="none",
                           wrt="target")
    assert g[0] == -mpmath.inf and g[1] == -mpmath.inf and mpmath.isnan(g[2]) and mpmath.isnan(g[3])
    gs = oracle.kl_div_grad(np.array([-1.0, -np.inf]), np.array([-np.inf, -np.inf]), reduction="sum", log_target=True,
                            wrt="target")
    assert gs[0] == 0 and mpmath.isnan(gs[1])
    # the loss there is finite (0), so the suite grades these values
    assert oracle.kl_div(np.array([-1.0]), np.array([0.0]), reduction="sum") == 0


def test_only_input_and_target():
    with pytest.raises(ValueError, match="no differentiable parameter 'weight'"):
        oracle.kl_div_grad(np.array([0.0]), np.array([1.0]), wrt="weight")
