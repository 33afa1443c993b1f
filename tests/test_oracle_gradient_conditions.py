"""Tests of ``oracle/gradients.py``: the activations' exact gradients, and the second-order
quantities of the gradient error model.

* ``softmax_grad``, ``log_softmax_grad``, ``sigmoid_grad`` against ``mpmath.diff`` of the
  output's sum (``tests/test_oracle_gradients.py``'s check).
* :func:`numerical_grad_condition` against closed forms where the Hessian is known.
* Every analytic ``<loss>_grad_condition`` *covers* the true first-order sensitivity
  of its gradient: ``c_i >= sum_z sum_k |z_k dg_i/dz_k|`` over every floating input,
  measured numerically (the bound is sound), and is not vacuous: ``c_i`` stays within
  a small factor of that sensitivity plus ``|g_i|``-sized summands (the bound is tight).
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

from .test_oracle_gradients import assert_gradients_agree, floats_array, moderate

# The analytic conditions of non-cancelling gradients add a few |g_i|-sized summand
# magnitudes to the sensitivity (3 |y/x| for BCE's live log term); beyond this factor they
# would be loose.
TIGHTNESS = 8


def _sensitivity(grad, args, kwargs) -> np.ndarray:
    """``sum_z sum_k |z_k dg_i/dz_k|``: the numerical condition without its ``|g_i|``."""
    gc = og.numerical_grad_condition(grad, args, kwargs)
    with mpmath.workprec(360):
        g = np.asarray(grad(*[oracle.mp_array(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                              for v in args.values()], **kwargs), dtype=object)
        return np.vectorize(lambda c, gi: c - abs(gi), otypes=[object])(gc.condition, g)


def assert_condition_covers(fn: str, args: dict, kwargs: dict) -> None:
    __tracebackhide__ = True
    spec = REGISTRY[fn]
    with mpmath.workprec(128):
        analytic = spec.grad_condition(*args.values(), **kwargs).condition
        g = np.asarray(spec.grad(*args.values(), **kwargs), dtype=object)
    true = _sensitivity(spec.grad, args, kwargs)
    assert analytic.shape == true.shape
    with mpmath.workprec(128):
        _compare(fn, analytic, true, g)


def _compare(fn, analytic, true, g) -> None:
    __tracebackhide__ = True
    for idx in np.ndindex(true.shape):
        a, t, gi = analytic[idx], true[idx], abs(g[idx])
        slack = mpf(10) ** -25 * (1 + t)
        assert a + slack >= t, f"{fn} at {idx}: analytic condition {a} < true sensitivity {t}"
        if fn not in CANCELLING:
            assert a <= TIGHTNESS * (t + gi) + slack, (
                f"{fn} at {idx}: analytic condition {a} is loose: sensitivity {t}, |g| {gi}"
            )


# Gradients that are a difference of larger summands (``p_y - 1``, ``1 - n p_j``, softmax's
# ``p_j - p_j sum p``): their condition includes the summands' magnitudes, which may exceed
# the sensitivity and ``|g|`` by any factor, so only coverage is checked for them.
CANCELLING = {"cross_entropy", "log_softmax", "softmax"}


# ------------------------------------------------------------------ activation gradients


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_softmax_family_gradients(data):
    x = floats_array(data, moderate, (2, 3))
    dim = data.draw(st.sampled_from([0, 1, -1]))
    assert_gradients_agree(oracle.log_softmax, oracle.log_softmax_grad, x, dim)
    assert_gradients_agree(oracle.softmax, oracle.softmax_grad, x, dim)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_sigmoid_gradient(data):
    x = floats_array(data, st.floats(-40, 40), (4,))
    assert_gradients_agree(oracle.sigmoid, oracle.sigmoid_grad, x)


def test_gradient_special_values():
    assert list(oracle.sigmoid_grad(np.array([np.inf, -np.inf]))) == [0, 0]
    assert all(mpmath.isnan(v) for v in oracle.softmax_grad(np.array([[np.inf, 0.0]]), 1).reshape(-1))
    assert list(oracle.softmax_grad(np.array([[-np.inf, 0.0]]), 1).reshape(-1)) == [0, 0]


# ------------------------------------------------------------------ the numerical condition


def test_numerical_condition_matches_the_closed_form_of_an_elementwise_gradient():
    """sigmoid: ``dg/dx = g (1 - 2 sigma)``, so the condition is ``|x g (1 - 2 sigma)| + |g|``."""
    x = np.array([-3.0, 0.25, 2.0, 7.5])
    numeric = og.numerical_grad_condition(oracle.sigmoid_grad, {"input": x}, {}).condition
    with mpmath.workprec(128):
        analytic = og.sigmoid_grad_condition(x).condition
        for a, n in zip(analytic, numeric):
            assert abs(a - n) <= mpf(10) ** -25 * a


def test_numerical_condition_refuses_large_cases():
    with pytest.raises(og.ConditionUnavailable, match="at most 64"):
        og.numerical_grad_condition(oracle.sigmoid_grad, {"input": np.zeros(65)}, {})


# ------------------------------------------------------------------ the analytic conditions


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), eps=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_condition_covers(data, reduction, eps):
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(2, 4))
    x = floats_array(data, moderate, (n, c))
    weight = floats_array(data, st.floats(0.1, 3.0), (c,)) if data.draw(st.booleans()) else None
    if data.draw(st.booleans()):
        target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    else:
        target = floats_array(data, st.floats(0, 1), (n, c))
    kwargs = {"reduction": reduction, "label_smoothing": eps}
    if weight is not None:
        kwargs["weight"] = weight
    assert_condition_covers("cross_entropy", {"input": x, "target": target}, kwargs)


@settings(max_examples=6, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_nll_loss_condition_covers(data, reduction):
    x = floats_array(data, st.floats(-10, 0), (2, 3))
    target = np.array(data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2)), dtype=np.int64)
    weight = floats_array(data, st.floats(0.1, 3.0), (3,))
    assert_condition_covers("nll_loss", {"input": x, "target": target}, {"weight": weight, "reduction": reduction})


@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_binary_cross_entropy_condition_covers(data, reduction):
    x = floats_array(data, st.floats(0.01, 0.99), (3,))
    y = floats_array(data, st.sampled_from([0.0, 1.0]) | st.floats(0, 1), (3,))
    weight = floats_array(data, st.floats(0.1, 3.0), (3,))
    assert_condition_covers("binary_cross_entropy", {"input": x, "target": y}, {"weight": weight, "reduction": reduction})


@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_binary_cross_entropy_with_logits_condition_covers(data, reduction):
    x = floats_array(data, st.floats(-30, 30), (2, 2))
    y = floats_array(data, st.sampled_from([0.0, 1.0]) | st.floats(0, 1), (2, 2))
    kwargs = {"reduction": reduction, "weight": floats_array(data, st.floats(0.1, 3.0), (2,)),
              "pos_weight": floats_array(data, st.floats(0.1, 5.0), (2,))}
    assert_condition_covers("binary_cross_entropy_with_logits", {"input": x, "target": y}, kwargs)


@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]), log_target=st.booleans())
def test_kl_div_condition_covers(data, reduction, log_target):
    x = floats_array(data, st.floats(-10, 0), (2, 3))
    t = floats_array(data, st.floats(-10, 0) if log_target else st.floats(0, 1), (2, 3))
    assert_condition_covers("kl_div", {"input": x, "target": t}, {"reduction": reduction, "log_target": log_target})


@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_activation_conditions_cover(data):
    x = floats_array(data, moderate, (2, 3))
    assert_condition_covers("log_softmax", {"input": x}, {"dim": 1})
    assert_condition_covers("softmax", {"input": x}, {"dim": 1})
    assert_condition_covers("sigmoid", {"input": x[0]}, {})
