"""Tests of ``oracle/gradients_regression.py``: the regression losses' exact gradients w.r.t.
every differentiable parameter (``LossSpec.grad_wrt``) and their error model, and
``ctc_loss``'s gradient condition.

* Each ``<loss>_grad(..., wrt=z)`` against ``mpmath.diff`` of the output's sum in ``z``
  (away from kinks: ``|x - y|`` kept off 0 and off ``delta``/``beta``).
* Each ``<loss>_grad_condition(..., wrt=z)`` covers the true first-order sensitivity of
  that gradient to every floating array input, measured numerically, and is not loose
  (``tests/test_oracle_gradient_conditions.py``'s check, per parameter).
* The kink terms: Huber's and smooth L1's ``kink_reach`` is 0 at ``|d| = delta`` and
  large away from it.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import gradients as og
from suites.registry import REGISTRY

from .test_oracle_gradient_conditions import _compare, _sensitivity
from .test_oracle_gradients import DPS, REL, ABS_FLOOR, floats_array, moderate, output_sum

SHAPE = (2, 3)
positive = st.floats(0.2, 3.0)


def _numerical(fn: str, args: dict, kwargs: dict, wrt: str) -> np.ndarray:
    """d sum(fn(...)) / d wrt_i by ``mpmath.diff``, the other inputs fixed."""
    loss = getattr(oracle, fn)
    container = args if wrt in args else kwargs
    base = oracle.mp_array(container[wrt])
    grad = np.empty(base.shape, dtype=object)
    for idx in np.ndindex(base.shape):
        def f(t, idx=idx):
            moved = base.copy()
            moved[idx] = t
            call_args = dict(args, **({wrt: moved} if container is args else {}))
            call_kwargs = dict(kwargs, **({wrt: moved} if container is kwargs else {}))
            return output_sum(loss(*call_args.values(), **call_kwargs))
        grad[idx] = mpmath.diff(f, base[idx])
    return grad


def assert_grad_matches_numerical(fn: str, args: dict, kwargs: dict, wrt: str) -> None:
    __tracebackhide__ = True
    grad, _ = REGISTRY[fn].gradient_functions(wrt)
    with mpmath.workdps(DPS):
        value = output_sum(getattr(oracle, fn)(*args.values(), **kwargs))
        assume(mpmath.isfinite(value))
        analytic = grad(*args.values(), **kwargs)
        numeric = _numerical(fn, args, kwargs, wrt)
        expected_shape = np.shape(args.get(wrt, kwargs.get(wrt)))
        assert analytic.shape == expected_shape, f"{fn} d/d{wrt}: shape {analytic.shape} != {expected_shape}"
        bad = [(idx, mpmath.nstr(analytic[idx], 30), mpmath.nstr(numeric[idx], 30))
               for idx in np.ndindex(numeric.shape)
               if not abs(analytic[idx] - numeric[idx]) <= REL * abs(numeric[idx]) + ABS_FLOOR]
    assert not bad, f"{fn} d/d{wrt}: analytic vs numerical (index, analytic, numerical): {bad[:4]}"


def assert_condition_covers_wrt(fn: str, args: dict, kwargs: dict, wrt: str, tight: bool = True) -> None:
    __tracebackhide__ = True
    grad, condition = REGISTRY[fn].gradient_functions(wrt)
    with mpmath.workprec(128):
        analytic = condition(*args.values(), **kwargs).condition
        g = np.asarray(grad(*args.values(), **kwargs), dtype=object)
    true = _sensitivity(grad, args, kwargs)
    assert analytic.shape == true.shape
    with mpmath.workprec(128):
        _compare(f"{fn} d/d{wrt}" if tight else "cross_entropy", analytic, true, g)


def _apart(x: np.ndarray, y: np.ndarray, *kinks: float) -> bool:
    d = np.abs(x - y)
    return bool(all(np.all(np.abs(d - k) > 1e-3) for k in (0.0, *kinks)))


# ------------------------------------------------------------------ gradients


@settings(max_examples=5, deadline=None)
@given(data=st.data(), fn=st.sampled_from(["l1_loss", "mse_loss", "huber_loss"]),
       reduction=st.sampled_from(["none", "mean", "sum"]), weighted=st.booleans())
def test_pointwise_gradients_wrt_every_parameter(data, fn, reduction, weighted):
    x, y = floats_array(data, moderate, SHAPE), floats_array(data, moderate, SHAPE)
    kwargs = {"reduction": reduction}
    if fn == "huber_loss":
        kwargs["delta"] = data.draw(st.sampled_from([0.5, 1.0, 4.0]))
    assume(_apart(x, y, kwargs.get("delta", 0.0)))
    if weighted:
        kwargs["weight"] = floats_array(data, positive, SHAPE)
    for wrt in REGISTRY[fn].grad_wrt:
        if wrt == "weight" and not weighted:
            continue
        assert_grad_matches_numerical(fn, {"input": x, "target": y}, kwargs, wrt)


@settings(max_examples=5, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), beta=st.sampled_from([0.0, 0.5, 2.0]))
def test_smooth_l1_gradients(data, reduction, beta):
    x, y = floats_array(data, moderate, SHAPE), floats_array(data, moderate, (3,))  # target broadcast
    assume(_apart(x, y, beta))
    for wrt in ("input", "target"):
        assert_grad_matches_numerical("smooth_l1_loss", {"input": x, "target": y}, {"reduction": reduction, "beta": beta}, wrt)


@settings(max_examples=5, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), log_input=st.booleans(), full=st.booleans())
def test_poisson_nll_gradients(data, reduction, log_input, full):
    x = floats_array(data, st.floats(-3, 3) if log_input else st.floats(0.1, 5), SHAPE)
    y = floats_array(data, st.floats(0.0, 6.0), SHAPE)
    assume(np.all(np.abs(y - 1) > 1e-3))  # the Stirling mask's jump at y = 1
    kwargs = {"log_input": log_input, "full": full, "reduction": reduction}
    for wrt in ("input", "target"):
        if wrt == "target" and not log_input:
            assume(np.all(y > 1e-3))  # y log(x + eps) at y = 0 is a special value (0 log z)
        assert_grad_matches_numerical("poisson_nll_loss", {"input": x, "target": y}, kwargs, wrt)


@settings(max_examples=5, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), full=st.booleans(),
       form=st.sampled_from(["same", "last_dim_missing", "one_dim_1"]))
def test_gaussian_nll_gradients(data, reduction, full, form):
    x, y = floats_array(data, moderate, SHAPE), floats_array(data, moderate, SHAPE)
    vshape = {"same": SHAPE, "last_dim_missing": SHAPE[:-1], "one_dim_1": (1, SHAPE[1])}[form]
    var = floats_array(data, st.floats(0.05, 4.0), vshape)
    args = {"input": x, "target": y, "var": var}
    for wrt in ("input", "target", "var"):
        assert_grad_matches_numerical("gaussian_nll_loss", args, {"full": full, "reduction": reduction}, wrt)


def test_gaussian_var_gradient_passes_straight_through_the_clamp():
    """PyTorch clamps ``var`` at ``eps`` under ``no_grad``: below ``eps`` the gradient is
    ``(1/s - d^2/s^2)/2`` at ``s = eps`` (torch 2.13: ``var=1e-9, d=1`` -> -2.5e11 for a mean
    of two), not the derivative of the clamped function (0)."""
    x, y, var = np.array([1.0, 2.0]), np.array([0.5, 3.0]), np.array([0.5, 1e-9])
    g = oracle.gaussian_nll_loss_grad(x, y, var, wrt="var")
    s = mpf(1e-6)
    assert g[1] == (1 / s - 1 / (s * s)) / 2 / 2
    assert float(g[1]) == pytest.approx(-2.5e11, rel=1e-5)


def test_unknown_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="no differentiable parameter 'weight'"):
        oracle.smooth_l1_loss_grad(np.array([1.0]), np.array([0.0]), wrt="weight")
    with pytest.raises(ValueError, match="no differentiable parameter 'var'"):
        oracle.gaussian_nll_loss_grad(np.array([1.0]), np.array([0.0]), 1.0, wrt="var")
    with pytest.raises(ValueError, match="only log_probs"):
        oracle.ctc_loss_grad(np.zeros((2, 3)), np.array([1]), [2], [1], wrt="targets")


# ------------------------------------------------------------------ conditions


@settings(max_examples=5, deadline=None)
@given(data=st.data(), fn=st.sampled_from(["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"]),
       reduction=st.sampled_from(["none", "mean", "sum"]), weighted=st.booleans())
def test_pointwise_conditions_cover(data, fn, reduction, weighted):
    x, y = floats_array(data, moderate, SHAPE), floats_array(data, moderate, SHAPE)
    kwargs = {"reduction": reduction}
    if fn == "huber_loss":
        kwargs["delta"] = data.draw(st.sampled_from([0.5, 1.0, 4.0]))
    if fn == "smooth_l1_loss":
        kwargs["beta"] = data.draw(st.sampled_from([0.0, 0.5, 2.0]))
    assume(_apart(x, y, kwargs.get("delta", kwargs.get("beta", 0.0))))
    if weighted and fn != "smooth_l1_loss":
        kwargs["weight"] = floats_array(data, positive, SHAPE)
    for wrt in REGISTRY[fn].grad_wrt:
        if wrt == "weight" and "weight" not in kwargs:
            continue
        # the weighted mean's weight gradient (t_i - F)/W cancels: coverage only
        tight = not (wrt == "weight" and reduction == "mean" and fn != "huber_loss")
        assert_condition_covers_wrt(fn, {"input": x, "target": y}, kwargs, wrt, tight)


@settings(max_examples=5, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), log_input=st.booleans(), full=st.booleans())
def test_poisson_nll_conditions_cover(data, reduction, log_input, full):
    x = floats_array(data, st.floats(-3, 3) if log_input else st.floats(0.1, 5), SHAPE)
    y = floats_array(data, st.floats(0.01, 6.0), SHAPE)
    assume(np.all(np.abs(y - 1) > 1e-3))
    for wrt in ("input", "target"):
        # e^x - y and 1 - y/z cancel: coverage only
        assert_condition_covers_wrt("poisson_nll_loss", {"input": x, "target": y},
                                    {"log_input": log_input, "full": full, "reduction": reduction}, wrt, tight=False)


@settings(max_examples=5, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), full=st.booleans())
def test_gaussian_nll_conditions_cover(data, reduction, full):
    x, y = floats_array(data, moderate, SHAPE), floats_array(data, moderate, SHAPE)
    var = floats_array(data, st.floats(0.05, 4.0), SHAPE[:-1])
    for wrt in ("input", "target", "var"):
        # 1 - d^2/s cancels for var: coverage only there
        assert_condition_covers_wrt("gaussian_nll_loss", {"input": x, "target": y, "var": var},
                                    {"full": full, "reduction": reduction}, wrt, tight=wrt != "var")


@settings(max_examples=4, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_ctc_condition_covers(data, reduction):
    lp = floats_array(data, st.floats(-4, 0), (3, 2, 3))
    args = {"log_probs": lp, "targets": np.array([[1, 2], [1, 1]]), "input_lengths": np.array([3, 3]),
            "target_lengths": np.array([2, 1])}
    assert_condition_covers_wrt("ctc_loss", args, {"reduction": reduction}, "log_probs", tight=False)


def test_kink_reach():
    """At ``|d| = delta`` the kink is reached by any perturbation (0); at ``|d| = delta / 2`` it
    is a fixed fraction away, so no dtype's ``K_IN u`` reaches it."""
    at = og.huber_loss_grad_condition(np.array([1.5, 0.25]), np.array([0.5, 0.0]), delta=1.0, wrt="target")
    assert at.kink_reach[0] == 0 and at.kink_reach[1] > 0.5
    assert at.kink_condition[0] > 0
    sl1 = og.smooth_l1_loss_grad_condition(np.array([2.0]), np.array([0.0]), beta=2.0)
    assert sl1.kink_reach[0] == 0
