"""Tests of the oracle's analytic gradients (``<loss>_grad``) against numerical
differentiation of the loss itself.

For every input element ``x_i``, ``mpmath.diff`` differentiates
``F(x) = sum(loss(x, ...))`` (the output for ``sum``/``mean``, the sum of the
``none`` output) at 100 significant digits; the oracle's ``_grad`` must agree to
1e-30 relative. The oracle's loss functions accept object arrays of ``mpf``, so
``mpmath.diff`` can move one element while the others stay exact. Inputs keep
away from kinks (BCE's clamp at -100: ``x`` in (0.01, 0.99)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from mpmath import mpf

import oracle

DPS = 100
REL = mpf(10) ** -30
ABS_FLOOR = mpf(10) ** -60  # for gradient entries that are exactly 0
REDUCTIONS = ["none", "mean", "sum"]


def output_sum(value: Any) -> mpf:
    if isinstance(value, np.ndarray):
        return mpmath.fsum(value.reshape(-1).tolist())
    return value


def numerical_gradient(loss: Callable[..., Any], x: np.ndarray, *args, **kwargs) -> np.ndarray:
    """d sum(loss(x)) / d x_i for every i, by ``mpmath.diff`` at the caller's precision."""
    base = oracle.mp_array(x)
    grad = np.empty(base.shape, dtype=object)
    for idx in np.ndindex(base.shape):

        def f(t, idx=idx):
            moved = base.copy()
            moved[idx] = t
            return output_sum(loss(moved, *args, **kwargs))

        grad[idx] = mpmath.diff(f, base[idx])
    return grad


def assert_gradients_agree(loss, loss_grad, x, *args, **kwargs) -> None:
    __tracebackhide__ = True
    with mpmath.workdps(DPS):
        value = output_sum(loss(x, *args, **kwargs))
        if not mpmath.isfinite(value):  # a mean over zero weight is NaN everywhere
            assert currently_in_test_context(), f"loss value {value} is not finite"
            reject()
        analytic = loss_grad(x, *args, **kwargs)
        numeric = numerical_gradient(loss, x, *args, **kwargs)
        assert isinstance(analytic, np.ndarray) and analytic.shape == np.shape(x), (
            f"gradient shape {getattr(analytic, 'shape', None)} != input shape {np.shape(x)}"
        )
        bad = []
        for idx in np.ndindex(numeric.shape):
            a, n = analytic[idx], numeric[idx]
            if not abs(a - n) <= REL * abs(n) + ABS_FLOOR:
                bad.append((idx, mpmath.nstr(a, 35), mpmath.nstr(n, 35)))
    assert not bad, f"analytic vs numerical (index, analytic, numerical): {bad[:4]}"


moderate = st.floats(-15, 15, allow_nan=False)
positive_weight = st.floats(0.1, 3.0)


def floats_array(data, elements, shape) -> np.ndarray:
    size = int(np.prod(shape))
    return np.array(data.draw(st.lists(elements, min_size=size, max_size=size)), dtype=np.float64).reshape(shape)


# ------------------------------------------------------------------------- cross_entropy


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    reduction=st.sampled_from(REDUCTIONS),
    eps=st.sampled_from([0.0, 0.0, 0.1, 1.0]) | st.floats(0, 1),
    weighted=st.booleans(),
)
def test_cross_entropy_class_indices_gradient(data, reduction, eps, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x = floats_array(data, moderate, (n, c))
    ignore_index = data.draw(st.sampled_from([-100, 1]))
    target = np.array(data.draw(st.lists(st.integers(0, c - 1) | st.just(ignore_index),
                                         min_size=n, max_size=n)), dtype=np.int64)
    weight = floats_array(data, positive_weight, (c,)) if weighted else None
    assert_gradients_agree(oracle.cross_entropy, oracle.cross_entropy_grad, x, target, weight=weight,
                           ignore_index=ignore_index, reduction=reduction, label_smoothing=eps)


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    reduction=st.sampled_from(REDUCTIONS),
    eps=st.sampled_from([0.0, 0.3]),
    weighted=st.booleans(),
)
def test_cross_entropy_probability_targets_gradient(data, reduction, eps, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x = floats_array(data, moderate, (n, c))
    p = floats_array(data, st.just(0.0) | st.floats(0, 1), (n, c))
    weight = floats_array(data, positive_weight, (c,)) if weighted else None
    assert_gradients_agree(oracle.cross_entropy, oracle.cross_entropy_grad, x, p, weight=weight,
                           reduction=reduction, label_smoothing=eps)


@settings(max_examples=10, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), probabilities=st.booleans())
def test_cross_entropy_k_dimensional_gradient(data, reduction, probabilities):
    """(N, C, d) input: the class axis is the second, and so is the gradient's."""
    x = floats_array(data, moderate, (2, 3, 2))
    if probabilities:
        target = floats_array(data, st.floats(0, 1), (2, 3, 2))
    else:
        target = np.array(data.draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))).reshape(2, 2)
    assert_gradients_agree(oracle.cross_entropy, oracle.cross_entropy_grad, x, target,
                           weight=np.array([0.5, 1.0, 2.0]), reduction=reduction, label_smoothing=0.1)


def test_cross_entropy_unbatched_gradient():
    x = np.array([1.0, -2.0, 0.5])
    assert_gradients_agree(oracle.cross_entropy, oracle.cross_entropy_grad, x, np.array(2),
                           label_smoothing=0.2)


# ------------------------------------------------------------------------------ nll_loss


@settings(max_examples=20, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_nll_loss_gradient(data, reduction, weighted):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    x = floats_array(data, st.floats(-20, 0), (n, c))
    target = np.array(data.draw(st.lists(st.integers(0, c - 1) | st.just(-100), min_size=n, max_size=n)),
                      dtype=np.int64)
    weight = floats_array(data, positive_weight, (c,)) if weighted else None
    assert_gradients_agree(oracle.nll_loss, oracle.nll_loss_grad, x, target, weight=weight,
                           reduction=reduction)


# ---------------------------------------------------------------------------------- BCE


@settings(max_examples=25, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_binary_cross_entropy_gradient(data, reduction, weighted):
    shape = data.draw(st.sampled_from([(1,), (4,), (2, 3)]))
    x = floats_array(data, st.floats(0.01, 0.99), shape)
    y = floats_array(data, st.sampled_from([0.0, 1.0]) | st.floats(0, 1), shape)
    weight = floats_array(data, st.floats(0, 3), shape) if weighted else None
    assert_gradients_agree(oracle.binary_cross_entropy, oracle.binary_cross_entropy_grad, x, y,
                           weight=weight, reduction=reduction)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    reduction=st.sampled_from(REDUCTIONS),
    weighted=st.booleans(),
    pos_weighted=st.booleans(),
)
def test_binary_cross_entropy_with_logits_gradient(data, reduction, weighted, pos_weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = floats_array(data, st.floats(-20, 20), (n, c))
    y = floats_array(data, st.sampled_from([0.0, 1.0]) | st.floats(0, 1), (n, c))
    weight = floats_array(data, st.floats(0, 3), (c,)) if weighted else None
    pos_weight = floats_array(data, st.floats(0, 5), (c,)) if pos_weighted else None
    assert_gradients_agree(oracle.binary_cross_entropy_with_logits,
                           oracle.binary_cross_entropy_with_logits_grad, x, y, weight=weight,
                           reduction=reduction, pos_weight=pos_weight)


# ------------------------------------------------------------------------------- kl_div


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
    log_target=st.booleans(),
)
def test_kl_div_gradient(data, reduction, log_target):
    shape = data.draw(st.sampled_from([(3,), (2, 3), (2, 2, 2)]))
    x = floats_array(data, st.floats(-10, 0), shape)
    if log_target:
        t = floats_array(data, st.floats(-10, 0) | st.just(-np.inf), shape)
    else:
        t = floats_array(data, st.floats(0, 1) | st.just(0.0), shape)
    assert_gradients_agree(oracle.kl_div, oracle.kl_div_grad, x, t, reduction=reduction,
                           log_target=log_target)


@pytest.mark.parametrize("reduction", ["sum", "batchmean"])
def test_kl_div_gradient_of_a_broadcast_input_has_the_inputs_shape(reduction):
    """Input (3,) against target (2, 3): the gradient w.r.t. ``input`` sums over the
    broadcast rows and has the input's shape."""
    x = np.log(np.array([0.2, 0.3, 0.5]))
    t = np.array([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
    assert_gradients_agree(oracle.kl_div, oracle.kl_div_grad, x, t, reduction=reduction)
