"""The MLX conventions of the oracle (``oracle/conventions.py``) against closed forms.

``mlx-triplet-eps-in-sum``: ``d(a, b) = (sum |a_i - b_i|^p + eps)^(1/p)``, the distance
``mlx.nn.losses.triplet_loss`` documents. Framework-free (no MLX needed).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mpmath import mpf

from oracle.conventions import convention_for
from oracle.core import working_precision

from .test_oracle_gradient_conditions import _sensitivity
from .test_oracle_gradients import assert_gradients_agree, floats_array

TERMS = convention_for("mlx-triplet-eps-in-sum").terms


def _value(*arrays, **kwargs):
    return TERMS(*(np.asarray(a, dtype=np.float64) for a in arrays), reduction="none", **kwargs).value[0]


def test_p2_identical_positive_is_sqrt_eps_apart() -> None:
    with working_precision(200):
        eps = mpf(1e-6)
        exact = 2 + mpmath.sqrt(eps) - mpmath.sqrt(4 + eps)
        got = _value([[1.0, 2.0]], [[1.0, 2.0]], [[3.0, 2.0]], margin=2.0)
        assert abs(got - exact) < mpf(2) ** -180


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_other_p_uses_absolute_differences(p) -> None:
    """``|.|``: a signed sum (optax's) would give 1 + (1 + 0.5) - 2.5 = 0 only by accident here;
    with |d|^p the negative differences count positively."""
    with working_precision(200):
        eps = mpf(1e-6)
        d_ap = mpmath.power(mpmath.power(1, p) + mpmath.power(mpf(0.5), p) + eps, 1 / mpf(p))
        d_an = mpmath.power(mpmath.power(mpf(2.5), p) + eps, 1 / mpf(p))
        exact = max(mpf(0), 1 + d_ap - d_an)
        got = _value([[0.0, 0.0]], [[-1.0, 0.5]], [[-2.5, 0.0]], p=p)
        assert abs(got - exact) < mpf(2) ** -180


def test_swap_is_not_mlx_s() -> None:
    with pytest.raises(ValueError, match="swap"):
        _value([[0.0]], [[1.0]], [[2.0]], swap=True)


# ------------------------------------------------------------------ the convention's gradient

CONVENTION = convention_for("mlx-triplet-eps-in-sum")
ORDER = ("anchor", "positive", "negative")


def _reordered(fn, wrt: str):
    """``fn(anchor, positive, negative)`` called with ``wrt``'s array first (as the numerical
    differentiation of tests/test_oracle_gradients.py wants)."""

    def call(first, *others, **kwargs):
        named = dict(zip([n for n in ORDER if n != wrt], others))
        named[wrt] = first
        return fn(*(named[n] for n in ORDER), **kwargs)

    return call


def _value_of(*arrays, **kwargs):
    return TERMS(*arrays, **kwargs).value


@pytest.mark.parametrize("wrt", ORDER)
def test_gradient_at_a_equal_positive_is_mlxs_not_the_specs(wrt) -> None:
    """a = p = [[0]], n = [[0.125]]: d(a, p) = sqrt(eps) has gradient 0 (no direction), d(a, n) =
    sqrt(0.015625 + eps) gradient -0.125 / d(a, n) w.r.t. a -- what mx.grad returns (0.999968);
    the spec's ||a - p + eps|| gives the anchor 2 and the positive -1."""
    arrays = [np.array([[0.0]]), np.array([[0.0]]), np.array([[0.125]])]
    with working_precision(200):
        slope = mpf(0.125) / mpmath.sqrt(mpf(0.125) ** 2 + mpf(1e-6))
        expected = {"anchor": slope, "positive": mpf(0), "negative": -slope}[wrt]
        got = CONVENTION.grad(*arrays, reduction="sum", wrt=wrt)[0, 0]
        assert abs(got - expected) < mpf(2) ** -180


@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(data=st.data(), wrt=st.sampled_from(ORDER), p=st.sampled_from([1.0, 2.0, 3.0]),
       eps=st.sampled_from([1e-6, 1e-3, 0.0]), reduction=st.sampled_from(["none", "mean", "sum"]),
       shared=st.booleans())
def test_gradient_is_the_derivative_of_the_terms_and_its_condition_covers(data, wrt, p, eps, reduction, shared) -> None:
    """Against high-precision central differences of the convention's value, and the error
    model's condition at least the numerical sensitivity, away from the kinks (central
    differences straddling one average its sides). ``shared``: the anchor and positive share
    a component (p = 2, 3: a zero difference with a nonzero size, where the p = 2 second
    derivative is 1/d, not 0; for p = 1 that is sign's kink)."""
    smooth = st.floats(-6, 6, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    dim = data.draw(st.integers(2, 3))
    arrays = {k: floats_array(data, smooth, (1, dim)) for k in ORDER}
    if shared and p != 1:
        arrays["positive"][:, 0] = arrays["anchor"][:, 0]
    for x, y in (("anchor", "positive"), ("anchor", "negative")):
        apart = np.abs(arrays[x] - arrays[y]) > 1e-3
        assume(apart.all() or (shared and p != 1 and x == "anchor" and y == "positive" and apart[:, 1:].all()))
    kwargs = {"margin": 30.0, "p": p, "eps": eps, "reduction": reduction}  # the hinge stays active
    others = [arrays[k] for k in ORDER if k != wrt]
    assert_gradients_agree(
        _reordered(_value_of, wrt), _reordered(lambda *a, **k: CONVENTION.grad(*a, wrt=wrt, **k), wrt),
        arrays[wrt], *others, **kwargs,
    )
    true = _sensitivity(lambda *a, **k: CONVENTION.grad(*a, **k), arrays, {**kwargs, "wrt": wrt})
    with mpmath.workprec(128):
        analytic = CONVENTION.grad_condition(*arrays.values(), **kwargs, wrt=wrt).condition
        for idx in np.ndindex(true.shape):
            assert analytic[idx] + mpf(10) ** -25 * (1 + true[idx]) >= true[idx], (idx, analytic[idx], true[idx])


def test_grad_at_zero_distance_without_eps_admits_any_direction() -> None:
    """eps = 0 and a = p: d(a, p) = 0 has no direction (the oracle's gradient 0, PyTorch's
    subgradient); the condition admits a jump of 1 in each component (mx.grad's NaN still fails)."""
    arrays = [np.array([[1.0, 2.0]], dtype=np.float32), np.array([[1.0, 2.0]], dtype=np.float32),
              np.array([[3.0, 2.0]], dtype=np.float32)]
    with working_precision(120):
        grad = CONVENTION.grad(*arrays, margin=3.0, eps=0.0, reduction="sum", wrt="positive")
        condition = CONVENTION.grad_condition(*arrays, margin=3.0, eps=0.0, reduction="sum", wrt="positive").condition
    assert list(grad[0]) == [0, 0]
    u = mpf(2) ** -24
    assert all(c * u * 4 >= 1 for c in condition[0])
