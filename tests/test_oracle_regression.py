"""Oracle tests of the regression and distribution losses (``oracle/regression.py``).

Three independent checks, as for the classification losses:

* closed forms: exact rationals (``fractions.Fraction``) for L1, MSE, Huber and smooth L1
  on dyadic inputs, and the documented formulas typed out again with mpmath at 300 bits
  for the Poisson and Gaussian losses (Stirling term, ``eps``, every ``var`` shape);
* an arb cross-check: the same formulas in python-flint balls, correctly rounded to the
  four formats, must equal ``oracle.correctly_rounded``'s floats bit for bit;
* gradients: ``<loss>_grad`` against ``mpmath.diff`` of the loss (away from the kinks
  ``|d| = delta`` and ``d = 0``).

And the invalid inputs the spec rejects must raise ``ValueError``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import working_precision

from .test_oracle_arb import A, arb, cast, check, in_format, reduce_terms
from .test_oracle_gradients import assert_gradients_agree, floats_array
from .test_oracle_losses import assert_close, frac_of

BITS = 300
NAMES = ["float64", "float32", "float16", "bfloat16"]
REDUCTIONS = ["none", "mean", "sum"]


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


def fractions(value) -> list:
    arr = value if isinstance(value, np.ndarray) else np.array(value, dtype=object)
    return [frac_of(v) for v in arr.reshape(-1)]


def F(x) -> Fraction:
    return Fraction(float(x))


# ----------------------------------------------------------------- closed forms: exact rationals


def huber_fraction(d: Fraction, delta: Fraction) -> Fraction:
    return d * d / 2 if abs(d) < delta else delta * (abs(d) - delta / 2)


def smooth_l1_fraction(d: Fraction, beta: Fraction) -> Fraction:
    if beta == 0:
        return abs(d)
    return d * d / (2 * beta) if abs(d) < beta else abs(d) - beta / 2


DYADIC = st.integers(-4096, 4096).map(lambda k: k / 64)


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(DYADIC, min_size=1, max_size=6),
    data=st.data(),
    reduction=st.sampled_from(REDUCTIONS),
    weighted=st.booleans(),
)
def test_pointwise_losses_are_exact_rationals(x, data, reduction, weighted):
    """L1, MSE, Huber, smooth L1 on dyadic inputs: exact, with PyTorch's weighted means
    (``sum w t / sum w`` for L1/MSE, ``sum w t / N`` for Huber)."""
    n = len(x)
    y = data.draw(st.lists(DYADIC, min_size=n, max_size=n))
    w = data.draw(st.lists(st.integers(0, 8).map(lambda k: k / 4), min_size=n, max_size=n)) if weighted else None
    delta = data.draw(st.sampled_from([0.25, 1.0, 3.0, 40.0]))
    beta = data.draw(st.sampled_from([0.0, 0.5, 1.0, 16.0]))
    xa, ya = np.array(x), np.array(y)
    wa = np.array(w) if w is not None else None
    d = [F(a) - F(b) for a, b in zip(x, y)]
    wf = [F(v) for v in w] if w is not None else [Fraction(1)] * n
    expected = {
        "l1_loss": [abs(v) for v in d],
        "mse_loss": [v * v for v in d],
        "huber_loss": [huber_fraction(v, F(delta)) for v in d],
        "smooth_l1_loss": [smooth_l1_fraction(v, F(beta)) for v in d],
    }
    with working_precision(BITS):
        got = {
            "l1_loss": oracle.l1_loss(xa, ya, reduction=reduction, weight=wa),
            "mse_loss": oracle.mse_loss(xa, ya, reduction=reduction, weight=wa),
            "huber_loss": oracle.huber_loss(xa, ya, reduction=reduction, delta=delta, weight=wa),
            "smooth_l1_loss": oracle.smooth_l1_loss(xa, ya, reduction=reduction, beta=beta),
        }
    for fn, terms in expected.items():
        weights = wf if fn != "smooth_l1_loss" else [Fraction(1)] * n
        weighted_terms = [t * v for t, v in zip(terms, weights)]
        if reduction == "none":
            want = weighted_terms
        elif reduction == "sum":
            want = [sum(weighted_terms)]
        else:
            by_weight = fn in ("l1_loss", "mse_loss") and w is not None
            denominator = sum(wf) if by_weight else Fraction(n)
            if denominator == 0:
                assert mpmath.isnan(got[fn]), fn
                continue
            want = sum(weighted_terms) / denominator
            # a mean is rational, not always dyadic: 300-bit agreement
            assert abs(fractions(got[fn])[0] - want) <= abs(want) * Fraction(1, 2**290), fn
            continue
        assert fractions(got[fn]) == want, fn


def test_huber_and_smooth_l1_known_values():
    x, y = np.array([0.5, 3.0, -2.0, 1.0]), np.zeros(4)
    with working_precision(BITS):
        assert fractions(oracle.huber_loss(x, y, reduction="none")) == [Fraction(1, 8), Fraction(5, 2), Fraction(3, 2), Fraction(1, 2)]
        assert fractions(oracle.smooth_l1_loss(x, y, reduction="none", beta=2.0)) == [Fraction(1, 16), 2, 1, Fraction(1, 4)]
        assert fractions(oracle.smooth_l1_loss(x, y, reduction="none", beta=0.0)) == [Fraction(1, 2), 3, 2, 1]


def test_smooth_l1_times_beta_is_huber_and_huber_limits():
    """The docs' identity ``SmoothL1_beta * beta = Huber_beta``, and Huber's limits: MSE/2
    for ``delta > max|d|``, ``delta (L1 - delta/2)`` for ``delta <= min|d|``."""
    x, y = np.array([0.5, 3.0, -2.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.25, 1.0, -7.5])
    with working_precision(BITS):
        for beta in (0.25, 1.0, 4.0):  # powers of two: every value stays dyadic
            s = oracle.smooth_l1_loss(x, y, reduction="none", beta=beta)
            h = oracle.huber_loss(x, y, reduction="none", delta=beta)
            assert [v * F(beta) for v in fractions(s)] == fractions(h)
        assert fractions(oracle.huber_loss(x, y, reduction="none", delta=64.0)) == [
            v / 2 for v in fractions(oracle.mse_loss(x, y, reduction="none"))
        ]
        big = x[np.abs(x - y) > 0], y[np.abs(x - y) > 0]
        delta = 0.125
        assert fractions(oracle.huber_loss(*big, reduction="none", delta=delta)) == [
            F(delta) * (v - F(delta) / 2) for v in fractions(oracle.l1_loss(*big, reduction="none"))
        ]


def test_legacy_arguments_and_broadcasting():
    x, y = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([1.0, 0.0])
    with working_precision(BITS):
        assert fractions(oracle.mse_loss(x, y, reduce=False)) == [0, 4, 4, 25]
        assert fractions(oracle.l1_loss(x, y, size_average=False)) == [0 + 2 + 2 + 5]
        assert fractions(oracle.smooth_l1_loss(x, y, size_average=True, reduction="sum")) == [Fraction(0 + Fraction(3, 2) + Fraction(3, 2) + Fraction(9, 2), 4)]


# ----------------------------------------------------------------- Poisson and Gaussian formulas


def mp_poisson(x, y, log_input, full, eps):
    x, y = mpf(float(x)), mpf(float(y))
    t = mpmath.exp(x) - y * x if log_input else x - y * mpmath.log(x + mpf(eps))
    if full and y > 1:
        t += y * mpmath.log(y) - y + mpmath.log(2 * mpmath.pi * y) / 2
    return t


@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_poisson_nll_loss_documented_formula(log_input, full, eps):
    x = np.array([0.5, 2.0, 0.0, 7.25, 1e-3]) if not log_input else np.array([0.5, -2.0, 0.0, 3.0, -40.0])
    y = np.array([0.0, 1.0, 2.0, 3.5, 100.0])
    with working_precision(BITS):
        got = oracle.poisson_nll_loss(x, y, log_input=log_input, full=full, eps=eps, reduction="none")
        want = np.array([mp_poisson(a, b, log_input, full, eps) for a, b in zip(x, y)], dtype=object)
        assert_close(got, want)
        assert_close(oracle.poisson_nll_loss(x, y, log_input=log_input, full=full, eps=eps), mpmath.fsum(want) / 5)


def test_poisson_conventions():
    """Targets 0 and 1 get no Stirling term; a rate 0 with target 0 is 0; ``eps = 0`` with a
    zero rate is IEEE's ``0 * -inf``: NaN for target 0, ``+inf`` for target > 0."""
    with working_precision(BITS):
        assert fractions(oracle.poisson_nll_loss(np.array([0.0, 0.0]), np.array([0.0, 1.0]), full=True, reduction="none")) == [1, 1]
        got = oracle.poisson_nll_loss(np.array([0.0, 0.0]), np.array([0.0, 1.0]), log_input=False, eps=0.0, reduction="none")
        assert mpmath.isnan(got[0]) and got[1] == mpmath.inf
        assert_close(oracle.poisson_nll_loss(np.array([0.0]), np.array([1.0]), log_input=False, reduction="none"), [-mpmath.log(mpf(1e-8))])
        assert mpmath.isnan(oracle.poisson_nll_loss(np.array([-1.0]), np.array([1.0]), log_input=False, reduction="none")[0])


def mp_gaussian(x, y, v, full, eps):
    s = max(mpf(float(v)), mpf(eps))
    t = (mpmath.log(s) + (mpf(float(x)) - mpf(float(y))) ** 2 / s) / 2
    return t + mpmath.log(2 * mpmath.pi) / 2 if full else t


@pytest.mark.parametrize(
    "var_shape",
    [(2, 3), (2,), (2, 1), (1, 3), "float"],
    ids=["same", "last-dim-missing", "last-dim-1", "first-dim-1", "float"],
)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_loss_variance_shapes(var_shape, full):
    x = np.array([[1.0, 2.0, -3.0], [0.5, 0.0, 4.0]])
    y = np.array([[0.0, 2.5, -1.0], [0.5, 1.0, -4.0]])
    if var_shape == "float":
        var, full_var = 0.25, np.full((2, 3), 0.25)
    else:
        var = np.array([0.5, 1e-9, 2.0, 0.0, 3.0, 1.0][: int(np.prod(var_shape))]).reshape(var_shape)
        full_var = np.broadcast_to(var[..., None] if var_shape == (2,) else var, (2, 3))
    with working_precision(BITS):
        got = oracle.gaussian_nll_loss(x, y, var, full=full, eps=1e-6, reduction="none")
        want = np.array([[mp_gaussian(x[i, j], y[i, j], full_var[i, j], full, 1e-6) for j in range(3)] for i in range(2)], dtype=object)
        assert_close(got, want)
        assert_close(oracle.gaussian_nll_loss(x, y, var, full=full), mpmath.fsum(want.reshape(-1).tolist()) / 6)


def test_gaussian_unit_variance_is_half_squared_error_and_clamp():
    with working_precision(BITS):
        assert fractions(oracle.gaussian_nll_loss(np.array([3.0, -1.0]), np.array([1.0, 0.0]), np.ones(2), reduction="none")) == [2, Fraction(1, 2)]
        # var 0 clamps to eps = 0.5: (log 0.5 + 1 / 0.5) / 2
        assert_close(oracle.gaussian_nll_loss(np.array([1.0]), np.array([0.0]), np.array([0.0]), eps=0.5, reduction="none"),
                     [(mpmath.log(mpf(0.5)) + 2) / 2])


# ----------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: oracle.huber_loss(np.ones(2), np.zeros(2), delta=0.0), "delta > 0"),
        (lambda: oracle.huber_loss(np.ones(2), np.zeros(2), delta=-1.0), "delta > 0"),
        (lambda: oracle.smooth_l1_loss(np.ones(2), np.zeros(2), beta=-0.5), "beta >= 0"),
        (lambda: oracle.l1_loss(np.ones(2), np.zeros(2), weight=np.ones(3)), "weight of shape"),
        (lambda: oracle.mse_loss(np.ones(2), np.zeros(3)), "do not broadcast"),
        (lambda: oracle.poisson_nll_loss(np.ones(2), np.zeros(2), reduction="avg"), "reduction='avg'"),
        (lambda: oracle.gaussian_nll_loss(np.ones((2, 2)), np.zeros((2, 2)), np.array([[1.0, -0.5]])), "negative"),
        (lambda: oracle.gaussian_nll_loss(np.ones(2), np.zeros(2), -1.0), "negative"),
        (lambda: oracle.gaussian_nll_loss(np.ones((2, 3)), np.zeros((2, 3)), np.ones(3)), "incorrect size"),
        (lambda: oracle.gaussian_nll_loss(np.ones((2, 3)), np.zeros((2, 3)), np.ones((2, 3)), reduction="batchmean"), "reduction"),
    ],
)
def test_invalid_inputs_raise_one_line_errors(call, match):
    with working_precision(64), pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------- arb cross-check


def arb_pointwise(fn, x, y, w, reduction, param):
    terms, weights = [], []
    for idx in np.ndindex(x.shape):
        d = A(x[idx]) - A(y[idx])
        a = abs(d)
        if fn == "l1_loss":
            t = a
        elif fn == "mse_loss":
            t = d * d
        elif fn == "huber_loss":
            p = A(param)
            t = d * d / 2 if abs(F(x[idx]) - F(y[idx])) < F(param) else p * (a - p / 2)
        else:
            p = A(param)
            if float(param) == 0:
                t = a
            elif abs(F(x[idx]) - F(y[idx])) < F(param):
                t = d * d / (2 * p)
            else:
                t = a - p / 2
        wv = A(w[idx]) if w is not None else arb(1)
        terms.append(t * wv)
        weights.append(wv)
    denominator = arb(x.size)
    if w is not None and fn in ("l1_loss", "mse_loss"):
        denominator = sum(weights, arb(0))
    return reduce_terms(terms, x.shape, reduction, denominator)


@pytest.mark.slow
@pytest.mark.parametrize("fn", ["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"])
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data())
def test_pointwise_losses_against_arb(name, fn, data):
    shape = data.draw(st.sampled_from([(1,), (3,), (2, 3)]))
    n = int(np.prod(shape))
    values = in_format(st.floats(-1e4, 1e4) | st.floats(-2, 2), name)
    x = cast(np.array(data.draw(st.lists(values, min_size=n, max_size=n))).reshape(shape), name)
    y = cast(np.array(data.draw(st.lists(values, min_size=n, max_size=n))).reshape(shape), name)
    weighted = fn != "smooth_l1_loss" and data.draw(st.booleans())
    w = cast(np.array(data.draw(st.lists(in_format(st.floats(0, 4), name), min_size=n, max_size=n))).reshape(shape), name) if weighted else None
    param = float(cast(data.draw(st.sampled_from([0.5, 1.0, 3.0]) | st.floats(0.01, 100)), name))
    if fn == "smooth_l1_loss" and data.draw(st.booleans()):
        param = 0.0
    assume(param > 0 or fn == "smooth_l1_loss")
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    kw: dict = {"reduction": reduction}
    if fn == "huber_loss":
        kw["delta"] = param
    if fn == "smooth_l1_loss":
        kw["beta"] = param
    if w is not None:
        kw["weight"] = w
    check(
        lambda: getattr(oracle, fn)(x, y, **kw),
        lambda: arb_pointwise(fn, x, y, w, reduction, param),
        name,
        f"{fn}({x!r}, {y!r}, {kw})",
    )


def arb_poisson(x, y, log_input, full, eps, reduction):
    terms = []
    for idx in np.ndindex(x.shape):
        xv, yv = A(x[idx]), A(y[idx])
        t = xv.exp() - yv * xv if log_input else xv - (yv * (xv + arb(eps)).log() if float(y[idx]) != 0 else arb(0))
        if full and float(y[idx]) > 1:
            t += yv * yv.log() - yv + (2 * arb.pi() * yv).log() / 2
        terms.append(t)
    return reduce_terms(terms, x.shape, reduction, arb(x.size))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data(), log_input=st.booleans(), full=st.booleans(), reduction=st.sampled_from(REDUCTIONS))
def test_poisson_nll_loss_against_arb(name, data, log_input, full, reduction):
    n = data.draw(st.integers(1, 4))
    xs = in_format(st.floats(-20, 20) if log_input else st.floats(0, 1e3), name)
    x = cast(data.draw(st.lists(xs, min_size=n, max_size=n)), name)
    y = cast(data.draw(st.lists(in_format(st.sampled_from([0.0, 1.0, 2.0]) | st.floats(0, 50), name), min_size=n, max_size=n)), name)
    eps = data.draw(st.sampled_from([1e-8, 0.5]))
    assume(log_input or eps > 0 or np.all(x.astype(np.float64) > 0))
    kw = dict(log_input=log_input, full=full, eps=eps, reduction=reduction)
    check(lambda: oracle.poisson_nll_loss(x, y, **kw), lambda: arb_poisson(x, y, log_input, full, eps, reduction), name,
          f"poisson_nll_loss({x!r}, {y!r}, {kw})")


def arb_gaussian(x, y, v, full, eps, reduction):
    terms = []
    for idx in np.ndindex(x.shape):
        s = A(v[idx]) if float(v[idx]) >= eps else arb(eps)
        d = A(x[idx]) - A(y[idx])
        t = (s.log() + d * d / s) / 2
        if full:
            t += (2 * arb.pi()).log() / 2
        terms.append(t)
    return reduce_terms(terms, x.shape, reduction, arb(x.size))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data(), full=st.booleans(), reduction=st.sampled_from(REDUCTIONS))
def test_gaussian_nll_loss_against_arb(name, data, full, reduction):
    n = data.draw(st.integers(1, 4))
    x = cast(data.draw(st.lists(in_format(st.floats(-100, 100), name), min_size=n, max_size=n)), name)
    y = cast(data.draw(st.lists(in_format(st.floats(-100, 100), name), min_size=n, max_size=n)), name)
    v = cast(data.draw(st.lists(in_format(st.just(0.0) | st.floats(0, 1e-5) | st.floats(0, 100), name), min_size=n, max_size=n)), name)
    eps = float(cast(data.draw(st.sampled_from([1e-6, 2.0 ** -10, 0.5])), name))
    assume(eps > 0)
    kw = dict(full=full, eps=eps, reduction=reduction)
    check(lambda: oracle.gaussian_nll_loss(x, y, v, **kw), lambda: arb_gaussian(x, y, v, full, eps, reduction), name,
          f"gaussian_nll_loss({x!r}, {y!r}, {v!r}, {kw})")


# ----------------------------------------------------------------- gradients


def _away_from_kinks(x, y, thresholds=()) -> bool:
    d = np.abs(x - y)
    return bool(np.all(d > 1e-3) and all(np.all(np.abs(d - t) > 1e-3) for t in thresholds))


@settings(max_examples=20, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_pointwise_gradients(data, reduction, weighted):
    shape = data.draw(st.sampled_from([(3,), (2, 2)]))
    x = floats_array(data, st.floats(-5, 5), shape)
    y = floats_array(data, st.floats(-5, 5), shape)
    delta = data.draw(st.sampled_from([0.5, 1.0, 2.0]))
    assume(_away_from_kinks(x, y, (delta,)))
    w = floats_array(data, st.floats(0.1, 3.0), shape) if weighted else None
    assert_gradients_agree(oracle.l1_loss, oracle.l1_loss_grad, x, y, reduction=reduction, weight=w)
    assert_gradients_agree(oracle.mse_loss, oracle.mse_loss_grad, x, y, reduction=reduction, weight=w)
    assert_gradients_agree(oracle.huber_loss, oracle.huber_loss_grad, x, y, reduction=reduction, delta=delta, weight=w)
    assert_gradients_agree(oracle.smooth_l1_loss, oracle.smooth_l1_loss_grad, x, y, reduction=reduction, beta=delta)


def test_pointwise_gradient_of_a_broadcast_input_sums_over_rows():
    x, y = np.array([0.5, -2.0]), np.array([[1.0, 0.0], [3.0, -1.0]])
    assert_gradients_agree(oracle.mse_loss, oracle.mse_loss_grad, x, y, reduction="sum")
    assert_gradients_agree(oracle.huber_loss, oracle.huber_loss_grad, x, y, reduction="mean")


@settings(max_examples=20, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), log_input=st.booleans(), full=st.booleans())
def test_poisson_nll_loss_gradient(data, reduction, log_input, full):
    x = floats_array(data, st.floats(-5, 5) if log_input else st.floats(0.01, 20), (3,))
    y = floats_array(data, st.sampled_from([0.0, 1.0, 3.0]) | st.floats(0, 10), (3,))
    assert_gradients_agree(oracle.poisson_nll_loss, oracle.poisson_nll_loss_grad, x, y,
                           log_input=log_input, full=full, reduction=reduction)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), full=st.booleans(), homoscedastic=st.booleans())
def test_gaussian_nll_loss_gradient(data, reduction, full, homoscedastic):
    x = floats_array(data, st.floats(-5, 5), (2, 3))
    y = floats_array(data, st.floats(-5, 5), (2, 3))
    v = floats_array(data, st.floats(0.1, 4) | st.just(0.0), (2,) if homoscedastic else (2, 3))
    assert_gradients_agree(oracle.gaussian_nll_loss, oracle.gaussian_nll_loss_grad, x, y, v,
                           full=full, eps=1e-3, reduction=reduction)


def test_gradients_at_the_kinks_are_pytorchs_subgradients():
    """``sign(0) = 0`` for L1 and the linear branch's ``delta sign(d)`` at ``|d| = delta``."""
    with working_precision(BITS):
        assert list(oracle.l1_loss_grad(np.array([1.0]), np.array([1.0]), reduction="sum")) == [0]
        assert list(oracle.huber_loss_grad(np.array([2.0, -2.0]), np.zeros(2), reduction="sum", delta=2.0)) == [2, -2]
        assert math.isclose(float(oracle.smooth_l1_loss_grad(np.array([0.25]), np.zeros(1), reduction="sum", beta=0.5)[0]), 0.5)
