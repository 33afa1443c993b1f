"""Tests of the oracle's losses against closed forms and formulas written out by hand.

Expectations are computed here, independently of the oracle: exact rationals
(``fractions.Fraction``) where the loss is rational, textbook formulas evaluated
with mpmath at a much higher precision than the oracle's (naive forms are fine
there: the precision absorbs their cancellations), python-flint ``arb`` balls
for the tiny cross-entropy of well-separated logits, and PyTorch's documented
formulas and denominators -- the ones ``torch.nn.functional`` implements --
typed out again in this file.
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

BITS = 300  # the oracle's precision in these tests
REL = mpf(2) ** -250  # agreement required between 300-bit evaluations


# --------------------------------------------------------------------------- helpers


def mp(x) -> mpf:
    return mpf(float(x)) if not isinstance(x, mpf) else x


def frac_of(x: mpf) -> Fraction:
    sign, man, exp, _ = x._mpf_
    return (-1) ** sign * int(man) * (Fraction(2) ** int(exp))


def assert_close(got, expected, rel=REL) -> None:
    """Elementwise relative agreement; NaN matches NaN, infinities must be equal."""
    __tracebackhide__ = True
    got_a = np.asarray(got, dtype=object)
    exp_a = np.asarray(expected, dtype=object)
    assert got_a.shape == exp_a.shape, (got_a.shape, exp_a.shape)
    for idx in np.ndindex(exp_a.shape):
        g, e = mp(got_a[idx]), mp(exp_a[idx])
        if mpmath.isnan(e):
            assert mpmath.isnan(g), f"at {idx}: got {g}, expected nan"
        elif mpmath.isinf(e):
            assert g == e, f"at {idx}: got {g}, expected {e}"
        else:
            with working_precision(BITS + 64):
                err = abs(g - e)
                ok = err <= rel * abs(e) or (e == 0 and g == 0)
            assert ok, f"at {idx}: got {mpmath.nstr(g, 40)}, expected {mpmath.nstr(e, 40)}"


def naive_log_softmax_rows(logits: np.ndarray) -> list[list[mpf]]:
    """``x_c - log sum_k exp(x_k)`` per row of a 2-D array, at the caller's precision."""
    out = []
    for row in np.asarray(logits, dtype=np.float64):
        xs = [mpf(float(v)) for v in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs))
        out.append([v - lse for v in xs])
    return out


def at(bits, fn, *args, **kwargs):
    with working_precision(bits):
        return fn(*args, **kwargs)


moderate = st.floats(-20, 20, allow_nan=False, allow_infinity=False)
positive_weight = st.floats(0.1, 3.0)
REDUCTIONS = ["none", "mean", "sum"]


@st.composite
def class_problem(draw, *, max_n=5, max_c=5, ignore=False):
    """(logits (N, C), targets (N,), weights (C,) or None, ignore_index)."""
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(2, max_c))
    logits = np.array(draw(st.lists(st.lists(moderate, min_size=c, max_size=c), min_size=n, max_size=n)))
    targets = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    ignore_index = -100
    if ignore:
        ignore_index = draw(st.sampled_from([-100, 0, c - 1]))
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        targets = [ignore_index if m else t for t, m in zip(targets, mask)]
    weight = None
    if draw(st.booleans()):
        weight = np.array(draw(st.lists(positive_weight, min_size=c, max_size=c)))
    return logits, np.array(targets, dtype=np.int64), weight, ignore_index


# ------------------------------------------------------------------ cross-entropy: closed forms


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 64),
    n=st.integers(1, 3),
    shift=st.one_of(st.floats(-1e6, 1e6), st.floats(allow_nan=False, allow_infinity=False)),
    data=st.data(),
)
def test_uniform_logits_give_log_of_the_class_count(c, n, shift, data):
    logits = np.full((n, c), shift)
    targets = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    eps = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    with working_precision(BITS):
        log_c = mpmath.log(c)
        none = oracle.cross_entropy(logits, targets, reduction="none", label_smoothing=eps)
        mean = oracle.cross_entropy(logits, targets, label_smoothing=eps)
        total = oracle.cross_entropy(logits, targets, reduction="sum", label_smoothing=eps)
        probs = oracle.cross_entropy(logits, np.full((n, c), 1.0 / c), reduction="none")
        single = oracle.cross_entropy(logits[0], targets[0])
        n_log_c = n * log_c
        # probability targets 1/c, rounded to float64, sum to c * fl(1/c), not 1
        probs_expected = log_c * c * mpf(1.0 / c)
    assert_close(none, [log_c] * n)
    assert_close(mean, log_c)
    assert_close(total, n_log_c)
    assert_close(single, log_c)
    assert_close(probs, [probs_expected] * n)


@settings(max_examples=20, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False), n=st.integers(1, 4))
def test_a_single_class_gives_zero(x, n):
    logits = np.full((n, 1), x)
    zeros = np.zeros(n, dtype=np.int64)
    with working_precision(BITS):
        assert oracle.cross_entropy(logits, zeros, reduction="none").tolist() == [0] * n
        assert oracle.cross_entropy(logits, zeros) == 0
        assert oracle.cross_entropy(logits, np.ones((n, 1))) == 0
        assert oracle.cross_entropy(logits, zeros, label_smoothing=0.3) == 0


def arb_log1p_exp_neg(k: int) -> mpf:
    """log1p(exp(-k)) from python-flint at 1000 bits, as an mpf at 600 bits."""
    from flint import arb, ctx

    saved = ctx.prec
    try:
        ctx.prec = 1000
        ball = arb(-k).exp().log1p()
    finally:
        ctx.prec = saved
    man, exp = ball.mid().man_exp()
    with working_precision(600):
        return mpmath.ldexp(mpf(int(man)), int(exp))


def test_well_separated_logits_keep_the_tiny_cross_entropy():
    """Logits [40, 0], target 0: CE = log1p(e^-40) = 4.25e-18, below float64's
    epsilon relative to the logits; the oracle must keep all of it."""
    expected = arb_log1p_exp_neg(40)
    for bits, rel in [(200, mpf(10) ** -40), (400, mpf(2) ** -390)]:
        with working_precision(bits):
            got = oracle.cross_entropy(np.array([40.0, 0.0]), np.array(0))
        assert_close(got, expected, rel=rel)
    with working_precision(200):
        got_batch = oracle.cross_entropy(np.array([[40.0, 0.0], [0.0, 40.0]]), np.array([0, 0]),
                                         reduction="none")
    with working_precision(600):
        expected_batch = [expected, 40 + expected]
    assert_close(got_batch, expected_batch, rel=mpf(10) ** -40)
    # 1e4 apart: exp(-1e4) is far below every float format, and still relative-exact
    with working_precision(200):
        got = oracle.cross_entropy(np.array([[1e4, 0.0]]), np.array([0]), reduction="sum")
        expected = mpmath.exp(-10000)  # log1p(t) = t(1 - t/2 + ...) with t = e^-1e4
    assert_close(got, expected, rel=mpf(10) ** -40)


# Correct rounding just above a tie. Each value below is exactly a rounding
# midpoint of its format plus a positive amount far below the format's ulp:
# CE = (m - x_c) + log1p(sum_k e^(x_k - m)) with m - x_c a midpoint, and
# softplus(x) = x + log1p(e^-x) > x with the mean of the x's a midpoint. Rounding
# to nearest must therefore go *up*, to the neighbour that ties-to-even would not
# pick; an evaluation that loses the positive part sees an exact tie instead.
NEAR_TIES = {
    "cross_entropy float16 [1000, -1000.5] y=1: 2000.5 + 3e-869": (
        lambda: oracle.cross_entropy(np.array([[1000.0, -1000.5]], np.float16), np.array([1]),
                                     reduction="sum"),
        np.float16, 2001.0,
    ),
    "cross_entropy float64 [2**53, -1] y=1: 2**53 + 1 + tiny": (
        lambda: oracle.cross_entropy(np.array([[2.0**53, -1.0]]), np.array([1]), reduction="sum"),
        np.float64, 2.0**53 + 2,
    ),
    "log_softmax float32 [2**24, -1]: -(2**24 + 1) - tiny": (
        lambda: oracle.log_softmax(np.array([2.0**24, -1.0], np.float32), dim=0)[1],
        np.float32, -(2.0**24 + 2),
    ),
    "bce_with_logits float16 mean of [700, 702.5], y=0: 701.25 + 1e-305": (
        lambda: oracle.binary_cross_entropy_with_logits(np.array([700.0, 702.5], np.float16),
                                                        np.zeros(2, np.float16)),
        np.float16, 701.5,
    ),
    "bce_with_logits float64 mean of [800, 800 + 2**-43], y=0: 800 + 2**-44 + 4e-348": (
        lambda: oracle.binary_cross_entropy_with_logits(np.array([800.0, 800.0 + 2.0**-43]), np.zeros(2)),
        np.float64, 800.0 + 2.0**-43,
    ),
}


@pytest.mark.parametrize("case", list(NEAR_TIES.values()), ids=list(NEAR_TIES))
def test_correctly_rounded_just_above_a_rounding_midpoint(case):
    evaluate, dtype, expected = case
    _, rounded = oracle.correctly_rounded(evaluate, dtype)
    assert float(rounded) == expected


def test_masked_classes_drop_out_of_the_softmax():
    """A -inf logit is a masked class: CE over [a, b, -inf] is CE over [a, b]."""
    with working_precision(BITS):
        got = oracle.cross_entropy(np.array([[1.5, -0.25, -np.inf]]), np.array([0]), reduction="none")
        expected = mpmath.log(1 + mpmath.exp(mpf(-0.25) - mpf(1.5)))
        assert_close(got, [expected])
        masked_target = oracle.cross_entropy(np.array([[1.5, -np.inf]]), np.array([1]), reduction="sum")
        assert masked_target == mpmath.inf
        # 0 log 0 = 0: zero probability on the masked class contributes nothing
        probs = oracle.cross_entropy(np.array([[0.0, -np.inf]]), np.array([[1.0, 0.0]]), reduction="sum")
        assert probs == 0


# ------------------------------------------------------------------------- nll_loss


@settings(max_examples=60, deadline=None)
@given(problem=class_problem(ignore=True), reduction=st.sampled_from(REDUCTIONS))
def test_nll_loss_by_hand(problem, reduction):
    logp, targets, weight, ignore_index = problem
    w = [Fraction(1)] * logp.shape[1] if weight is None else [Fraction(v) for v in weight]
    terms, denominator = [], Fraction(0)
    for row, y in zip(logp, targets.tolist()):
        if y == ignore_index:
            terms.append(Fraction(0))
            continue
        terms.append(-w[y] * Fraction(row[y]))
        denominator += w[y]
    with working_precision(BITS):
        got = oracle.nll_loss(logp, targets, weight=weight, ignore_index=ignore_index, reduction=reduction)
    if reduction == "none":
        assert [frac_of(g) for g in got] == terms  # products of two floats: exact
    elif reduction == "sum":
        assert_close(got, mpf_of(sum(terms)))
    elif denominator == 0:
        assert mpmath.isnan(got)
    else:
        assert_close(got, mpf_of(sum(terms) / denominator))


def mpf_of(q: Fraction) -> mpf:
    with working_precision(BITS + 100):
        return mpf(q.numerator) / q.denominator


def test_nll_loss_unbatched_and_k_dimensional():
    logp = np.array([-0.5, -1.25, -3.0])
    with working_precision(BITS):
        assert oracle.nll_loss(logp, np.array(1)) == 1.25
        assert oracle.nll_loss(logp, np.array(2), weight=np.array([1.0, 2.0, 0.5])) == 3.0
        # (N, C, d) = (1, 3, 2): positions (0,0) target 0, (0,1) target 2
        x = np.array([[[-0.5, -2.0], [-1.0, -0.25], [-3.0, -0.75]]])
        got = oracle.nll_loss(x, np.array([[0, 2]]), reduction="none")
        assert got.shape == (1, 2)
        assert got.tolist() == [[mpf(0.5), mpf(0.75)]]
        assert oracle.nll_loss(x, np.array([[0, 2]])) == mpf(0.625)


# ---------------------------------------------------------------- cross-entropy: denominators


def torch_cross_entropy_by_hand(logits, targets, weight, ignore_index, eps, reduction):
    """PyTorch's ``cross_entropy_loss_label_smoothing`` (aten/src/ATen/native/LossNLL.cpp),
    written out: ``(1 - eps) * nll(reduction) + eps / C * smooth(reduction)`` where
    ``smooth_n = -sum_c w_c logp_{n,c}`` (0 where ignored), and ``mean`` divides both
    parts by ``sum_{n not ignored} w_{y_n}`` (by the count without weights)."""
    n_classes = logits.shape[1]
    w = [mpf(1)] * n_classes if weight is None else [mpf(float(v)) for v in weight]
    logp = naive_log_softmax_rows(logits)
    nll, smooth, selected = [], [], []
    for row, y in zip(logp, targets.tolist()):
        if y == ignore_index:
            nll.append(mpf(0)), smooth.append(mpf(0))
            continue
        nll.append(-w[y] * row[y])
        smooth.append(-mpmath.fsum(wc * lc for wc, lc in zip(w, row)))
        selected.append(w[y])
    if reduction == "none":
        return [(1 - mpf(eps)) * a + mpf(eps) / n_classes * b for a, b in zip(nll, smooth)]
    if reduction == "sum":
        return (1 - mpf(eps)) * mpmath.fsum(nll) + mpf(eps) / n_classes * mpmath.fsum(smooth)
    denominator = mpmath.fsum(selected)
    if denominator == 0:
        return mpmath.nan
    return ((1 - mpf(eps)) * mpmath.fsum(nll) / denominator
            + mpf(eps) / n_classes * mpmath.fsum(smooth) / denominator)


@settings(max_examples=60, deadline=None)
@given(
    problem=class_problem(ignore=True),
    eps=st.one_of(st.just(0.0), st.floats(0, 1)),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_cross_entropy_matches_pytorchs_formula(problem, eps, reduction):
    logits, targets, weight, ignore_index = problem
    with working_precision(BITS + 100):
        expected = torch_cross_entropy_by_hand(logits, targets, weight, ignore_index, eps, reduction)
    with working_precision(BITS):
        got = oracle.cross_entropy(logits, targets, weight=weight, ignore_index=ignore_index,
                                   reduction=reduction, label_smoothing=eps)
    assert_close(got, expected)


@settings(max_examples=40, deadline=None)
@given(problem=class_problem(ignore=True))
def test_weighted_mean_divides_by_the_selected_weights(problem):
    logits, targets, weight, ignore_index = problem
    assume(weight is not None and any(t != ignore_index for t in targets.tolist()))
    with working_precision(BITS + 100):
        logp = naive_log_softmax_rows(logits)
        num = den = mpf(0)
        for row, y in zip(logp, targets.tolist()):
            if y != ignore_index:
                num += -mpf(float(weight[y])) * row[y]
                den += mpf(float(weight[y]))
        expected = num / den
    with working_precision(BITS):
        got = oracle.cross_entropy(logits, targets, weight=weight, ignore_index=ignore_index)
    assert_close(got, expected)


@pytest.mark.parametrize("eps", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_targets_ignored(eps, weighted):
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    targets = np.array([-100, -100])
    weight = np.array([1.0, 2.0, 3.0]) if weighted else None
    with working_precision(BITS):
        kw = dict(weight=weight, label_smoothing=eps)
        assert mpmath.isnan(oracle.cross_entropy(logits, targets, **kw))
        assert oracle.cross_entropy(logits, targets, reduction="sum", **kw) == 0
        assert oracle.cross_entropy(logits, targets, reduction="none", **kw).tolist() == [0, 0]
        assert mpmath.isnan(oracle.nll_loss(logits, targets, weight=weight))
        assert oracle.nll_loss(logits, targets, weight=weight, reduction="sum") == 0


def test_zero_weight_of_every_selected_class_gives_nan_mean():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    with working_precision(BITS):
        got = oracle.cross_entropy(logits, np.array([1, 1]), weight=np.array([1.0, 0.0, 1.0]))
    assert mpmath.isnan(got)


def test_label_smoothing_with_weights_known_value():
    """One row, C = 2, logits [0, 0] (log p = -log 2 for both), target 0, weights
    [1, 3], eps = 0.5: nll = log 2, smooth = 4 log 2, mean over w_0 = 1:
    0.5 log 2 + 0.25 * 4 log 2 = 1.5 log 2 (PyTorch gives 1.0397...)."""
    with working_precision(BITS):
        got = oracle.cross_entropy(np.array([[0.0, 0.0]]), np.array([0]), weight=np.array([1.0, 3.0]),
                                   label_smoothing=0.5)
        assert_close(got, 1.5 * mpmath.log(2))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(1, 3), (4, 2), (2, 3, 2), (2, 2, 1, 3)]),
    data=st.data(),
    eps=st.sampled_from([0.0, 0.2]),
    weighted=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_probability_targets_by_hand(shape, data, eps, weighted, reduction):
    """t_n = -sum_c w_c q_c log p_c with q = (1 - eps) p + eps / C; ``mean`` divides
    by the number of positions N d_1 ... (``cross_entropy_loss_prob_target``)."""
    size = int(np.prod(shape))
    logits = np.array(data.draw(st.lists(moderate, min_size=size, max_size=size))).reshape(shape)
    probs = np.array(data.draw(st.lists(st.floats(0, 1), min_size=size, max_size=size))).reshape(shape)
    c = shape[1]
    weight = np.array(data.draw(st.lists(positive_weight, min_size=c, max_size=c))) if weighted else None
    w = [mpf(1)] * c if weight is None else [mpf(float(v)) for v in weight]
    out_shape = (shape[0], *shape[2:])
    with working_precision(BITS + 100):
        rows_x = np.moveaxis(logits, 1, -1).reshape(-1, c)
        rows_p = np.moveaxis(probs, 1, -1).reshape(-1, c)
        terms = []
        for lp, p in zip(naive_log_softmax_rows(rows_x), rows_p):
            q = [(1 - mpf(eps)) * mpf(float(pc)) + mpf(eps) / c for pc in p]
            terms.append(-mpmath.fsum(w[k] * q[k] * lp[k] for k in range(c)))
        expected = {
            "none": np.array(terms, dtype=object).reshape(out_shape),
            "sum": mpmath.fsum(terms),
            "mean": mpmath.fsum(terms) / len(terms),
        }[reduction]
    with working_precision(BITS):
        got = oracle.cross_entropy(logits, probs, weight=weight, reduction=reduction, label_smoothing=eps)
    assert_close(got, expected)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS))
def test_k_dimensional_class_index_targets(data, reduction):
    """(N, C, d1, d2): the class axis is the second; each position is one row."""
    n, c, d1, d2 = 2, 3, 2, 2
    logits = np.array(data.draw(st.lists(moderate, min_size=n * c * d1 * d2,
                                         max_size=n * c * d1 * d2))).reshape(n, c, d1, d2)
    targets = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n * d1 * d2,
                                          max_size=n * d1 * d2))).reshape(n, d1, d2)
    with working_precision(BITS + 100):
        expected = np.empty((n, d1, d2), dtype=object)
        for i, a, b in np.ndindex(n, d1, d2):
            lp = naive_log_softmax_rows(logits[i, :, a, b][None, :])[0]
            expected[i, a, b] = -lp[targets[i, a, b]]
        if reduction != "none":
            total = mpmath.fsum(expected.reshape(-1))
            expected = total if reduction == "sum" else total / expected.size
    with working_precision(BITS):
        got = oracle.cross_entropy(logits, targets, reduction=reduction)
    assert_close(got, expected)


# ------------------------------------------------------------------------------ BCE


@pytest.mark.parametrize(
    "x, y, expected",
    [
        (0.5, 1.0, "log2"),
        (0.5, 0.0, "log2"),
        (0.5, 0.3, "log2"),
        (0.0, 1.0, 100),  # log 0 clamped at -100
        (1.0, 0.0, 100),
        (0.0, 0.5, 50),
        (1.0, 1.0, 0),
        (0.0, 0.0, 0),
        (1e-50, 1.0, 100),  # -log(1e-50) = 115 > 100: clamped
        (0.25, 1.0, "log4"),
        (0.75, 0.0, "log4"),
    ],
)
def test_binary_cross_entropy_known_values(x, y, expected):
    with working_precision(BITS):
        got = oracle.binary_cross_entropy(np.array([x]), np.array([y]), reduction="sum")
        want = {"log2": mpmath.log(2), "log4": mpmath.log(4)}.get(expected, expected)
        assert_close(got, want)


def test_binary_cross_entropy_clamp_boundary():
    """-log x just below and above 100: exp(-99) is not clamped, exp(-101) is."""
    with working_precision(BITS):
        for k, want in [(99, 99), (101, 100)]:
            x = float(mpmath.exp(-k))
            got = oracle.binary_cross_entropy(np.array([x]), np.array([1.0]), reduction="sum")
            exact = -mpmath.log(mpf(x))
            assert_close(got, min(exact, mpf(100)))
            assert abs(got - want) < 1e-10


@pytest.mark.parametrize("x", [1e-300, 2.0**-1074, 1e-20, 2.0**-125])
def test_binary_cross_entropy_keeps_a_tiny_log1m(x):
    """-log(1 - x) ~ x for a tiny x: forming 1 - x at the working precision would
    round it to 1 and return 0."""
    with working_precision(200):
        got = oracle.binary_cross_entropy(np.array([x]), np.array([0.0]), reduction="none")
        expected = -mpmath.log1p(-mpf(x))  # = x + x^2/2 + ...
    assert_close(got, [expected], rel=mpf(2) ** -180)
    _, rounded = oracle.correctly_rounded(
        lambda: oracle.binary_cross_entropy(np.array([x]), np.array([0.0]), reduction="none"), np.float64
    )
    assert float(rounded[0]) == x  # x + x^2/2 rounds to x in float64


@settings(max_examples=40, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_binary_cross_entropy_textbook_formula(data, reduction, weighted):
    n = data.draw(st.integers(1, 6))
    x = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    y = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(positive_weight, min_size=n, max_size=n))) if weighted else None
    with mpmath.workdps(200):
        terms = []
        for i in range(n):
            xi, yi = mpf(float(x[i])), mpf(float(y[i]))
            wi = mpf(float(w[i])) if weighted else mpf(1)
            log_x = max(mpmath.log(xi), -100) if xi > 0 else mpf(-100)
            one_minus_x = mpmath.fsub(1, xi, exact=True)  # 1 - 1e-313 must not round to 1
            log_1mx = max(mpmath.log(one_minus_x), -100) if xi < 1 else mpf(-100)
            terms.append(-wi * (yi * log_x + (1 - yi) * log_1mx))
        expected = {"none": terms, "sum": mpmath.fsum(terms), "mean": mpmath.fsum(terms) / n}[reduction]
    with working_precision(BITS):
        got = oracle.binary_cross_entropy(x, y, weight=w, reduction=reduction)
    assert_close(got, expected, rel=mpf(10) ** -80)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    reduction=st.sampled_from(REDUCTIONS),
    weighted=st.booleans(),
    pos_weighted=st.booleans(),
)
def test_binary_cross_entropy_with_logits_textbook_formula(data, reduction, weighted, pos_weighted):
    """-w [p y log sigma(x) + (1 - y) log(1 - sigma(x))], sigma = 1 / (1 + e^-x), at
    200 digits; pos_weight broadcasts along the last (class) dimension."""
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = np.array(data.draw(st.lists(st.floats(-30, 30), min_size=n * c, max_size=n * c))).reshape(n, c)
    y = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n * c, max_size=n * c))).reshape(n, c)
    w = np.array(data.draw(st.lists(st.floats(0, 3), min_size=c, max_size=c))) if weighted else None
    pw = np.array(data.draw(st.lists(st.floats(0, 5), min_size=c, max_size=c))) if pos_weighted else None
    with mpmath.workdps(200):
        terms = np.empty((n, c), dtype=object)
        for i, j in np.ndindex(n, c):
            xi, yi = mpf(float(x[i, j])), mpf(float(y[i, j]))
            wi = mpf(float(w[j])) if weighted else mpf(1)
            pi = mpf(float(pw[j])) if pos_weighted else mpf(1)
            s = 1 / (1 + mpmath.exp(-xi))
            terms[i, j] = -wi * (pi * yi * mpmath.log(s) + (1 - yi) * mpmath.log(1 - s))
        expected = {
            "none": terms,
            "sum": mpmath.fsum(terms.reshape(-1)),
            "mean": mpmath.fsum(terms.reshape(-1)) / (n * c),
        }[reduction]
    with working_precision(BITS):
        got = oracle.binary_cross_entropy_with_logits(x, y, weight=w, reduction=reduction, pos_weight=pw)
    assert_close(got, expected, rel=mpf(10) ** -80)


def test_binary_cross_entropy_with_logits_known_values():
    with working_precision(BITS):
        f = oracle.binary_cross_entropy_with_logits
        assert_close(f(np.array([0.0]), np.array([1.0]), reduction="sum"), mpmath.log(2))
        assert_close(f(np.array([0.0]), np.array([0.3]), reduction="sum"), mpmath.log(2))
        # y = 1, x = 50: softplus(-50) = log1p(e^-50), tiny but kept
        assert_close(f(np.array([50.0]), np.array([1.0]), reduction="sum"), mpmath.log1p(mpmath.exp(-50)))
        # pos_weight 3 on y = 1 triples the positive part
        assert_close(f(np.array([0.0]), np.array([1.0]), reduction="sum", pos_weight=np.array([3.0])),
                     3 * mpmath.log(2))
        # 0 log 0 = 0 at infinite logits with hard targets
        assert f(np.array([np.inf]), np.array([1.0]), reduction="sum") == 0
        assert f(np.array([-np.inf]), np.array([0.0]), reduction="sum") == 0
        assert f(np.array([-np.inf]), np.array([1.0]), reduction="sum") == mpmath.inf


# ---------------------------------------------------------------------------- kl_div


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(3,), (2, 3), (4, 2), (2, 2, 3)]),
    data=st.data(),
    log_target=st.booleans(),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
)
def test_kl_div_by_hand(shape, data, log_target, reduction):
    size = int(np.prod(shape))
    x = np.array(data.draw(st.lists(st.floats(-10, 0), min_size=size, max_size=size))).reshape(shape)
    if log_target:
        tgt_values = st.one_of(st.floats(-10, 0), st.just(-math.inf))
    else:
        tgt_values = st.one_of(st.floats(0, 1), st.just(0.0))
    t = np.array(data.draw(st.lists(tgt_values, min_size=size, max_size=size))).reshape(shape)
    with working_precision(BITS + 100):
        terms = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            xi, ti = mpf(float(x[idx])), mpf(float(t[idx]))
            if log_target:
                terms[idx] = mpf(0) if ti == -mpmath.inf else mpmath.exp(ti) * (ti - xi)
            else:
                terms[idx] = mpf(0) if ti == 0 else ti * (mpmath.log(ti) - xi)
        total = mpmath.fsum(terms.reshape(-1))
        expected = {
            "none": terms,
            "sum": total,
            "mean": total / size,
            "batchmean": total / shape[0],
        }[reduction]
    with working_precision(BITS):
        got = oracle.kl_div(x, t, reduction=reduction, log_target=log_target)
    assert_close(got, expected)


def test_kl_div_batchmean_divides_by_the_inputs_first_dimension():
    """``F.kl_div``: ``reduced / input.size()[0]`` for batchmean, nothing for a 0-d
    input -- the size of ``input``, not of the broadcast result (the oracle's
    docstring says the same). Here input (3,) broadcasts against target (2, 3)."""
    x = np.log(np.array([0.2, 0.3, 0.5]))
    t = np.array([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
    with working_precision(BITS):
        total = mpmath.fsum(
            mpf(float(t[i, j])) * (mpmath.log(mpf(float(t[i, j]))) - mpf(float(x[j])))
            for i, j in np.ndindex(2, 3)
        )
        assert_close(oracle.kl_div(x, t, reduction="sum"), total)
        assert_close(oracle.kl_div(x, t, reduction="mean"), total / 6)
        assert_close(oracle.kl_div(x, t, reduction="batchmean"), total / 3)


def test_kl_div_batchmean_of_a_0d_input_does_not_divide():
    x = np.array(-1.0)
    t = np.array([0.2, 0.3])
    with working_precision(BITS):
        total = mpmath.fsum(mpf(p) * (mpmath.log(mpf(p)) + 1) for p in (0.2, 0.3))
        assert_close(oracle.kl_div(x, t, reduction="batchmean"), total)
        assert_close(oracle.kl_div(np.array(-1.0), np.array(0.25), reduction="batchmean"),
                     mpf(0.25) * (mpmath.log(mpf(0.25)) + 1))


def test_kl_div_conventions():
    with working_precision(BITS):
        # zero target probability: 0 whatever the input, even -inf
        assert oracle.kl_div(np.array([-np.inf, 3.0]), np.array([0.0, 0.0]), reduction="sum") == 0
        assert oracle.kl_div(np.array([-np.inf]), np.array([-np.inf]), reduction="sum", log_target=True) == 0
        # a negative target is outside log's domain
        assert mpmath.isnan(oracle.kl_div(np.array([-1.0]), np.array([-0.5]), reduction="sum"))
        # p = q gives 0
        assert oracle.kl_div(np.array([0.0]), np.array([1.0]), reduction="sum") == 0


# --------------------------------------------------------------------------- entropy


@pytest.mark.parametrize("c", [1, 2, 3, 7, 10, 1000])
def test_entropy_of_uniform_is_log_c(c):
    with working_precision(BITS):
        # 1/c rounded to float64 sums to 1 only within 2**-50: compare with c * p * log(1/p)
        p = mpf(1.0 / c)
        expected = -c * p * mpmath.log(p)
        assert_close(oracle.entropy(np.full(c, 1.0 / c)), expected)
        if c in (1, 2):  # 1/c is exact: H = log c
            assert_close(oracle.entropy(np.full(c, 1.0 / c)), mpmath.log(c))


def test_entropy_conventions_and_axes():
    with working_precision(BITS):
        assert_close(oracle.entropy(np.array([0.5, 0.5, 0.0])), mpmath.log(2))
        assert oracle.entropy(np.array([1.0, 0.0])) == 0
        p = np.array([[0.5, 0.25], [0.5, 0.75]])
        along_rows = oracle.entropy(p)  # dim=-1
        along_cols = oracle.entropy(p, dim=0)

        def h(*ps):
            return -mpmath.fsum(mpf(v) * mpmath.log(mpf(v)) for v in ps)

        assert_close(along_rows, [h(0.5, 0.25), h(0.5, 0.75)])
        assert_close(along_cols, [h(0.5, 0.5), h(0.25, 0.75)])


@settings(max_examples=50, deadline=None)
@given(data=st.data(), c=st.integers(2, 8), n=st.integers(1, 3))
def test_cross_entropy_is_entropy_plus_kl(data, c, n):
    """H(P, Q) = H(P) + KL(P || Q) with Q = softmax(x), per row, at 200 bits."""
    raw = np.array(data.draw(st.lists(
        st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=c, max_size=c)
        .filter(lambda r: sum(r) > 0), min_size=n, max_size=n)))
    probs = raw / raw.sum(axis=1, keepdims=True)
    logits = np.array(data.draw(st.lists(st.lists(st.floats(-50, 50), min_size=c, max_size=c),
                                         min_size=n, max_size=n)))
    with working_precision(200):
        h_pq = oracle.cross_entropy(logits, probs, reduction="none")
        h_p = oracle.entropy(probs)
        log_q = oracle.log_softmax(logits, dim=1)
        for i in range(n):
            kl = oracle.kl_div(log_q[i], probs[i], reduction="sum")
            assert_close(h_pq[i], h_p[i] + kl, rel=mpf(10) ** -40)


# ------------------------------------------------------------------ legacy reduction args

# PyTorch's ``_Reduction.legacy_get_string``: a None counts as True once either
# argument is given; reduce=False -> 'none', else size_average=False -> 'sum',
# else 'mean'; neither given -> the ``reduction`` argument.
LEGACY_TABLE = [
    # size_average, reduce, resolved (None: the reduction argument stands)
    (None, None, None),
    (None, True, "mean"),
    (None, False, "none"),
    (True, None, "mean"),
    (True, True, "mean"),
    (True, False, "none"),
    (False, None, "sum"),
    (False, True, "sum"),
    (False, False, "none"),
]


@pytest.mark.parametrize("size_average, reduce, resolved", LEGACY_TABLE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_resolve_reduction_table(size_average, reduce, resolved, reduction):
    assert oracle.resolve_reduction(size_average, reduce, reduction) == (resolved or reduction)


@pytest.mark.parametrize("size_average, reduce, resolved", LEGACY_TABLE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_legacy_arguments_select_the_documented_reduction(size_average, reduce, resolved, reduction):
    """nll_loss values by hand (exact rationals) for every row of the table, and each
    other loss's output shape (a per-element array only for 'none')."""
    effective = resolved or reduction
    logp = np.array([[-0.5, -1.5], [-2.0, -0.25], [-1.0, -1.0]])
    targets = np.array([0, 1, 1])
    weight = np.array([2.0, 0.5])
    terms = [Fraction(1), Fraction(1, 8), Fraction(1, 2)]  # -w_y logp[n, y]
    expected = {"none": terms, "sum": sum(terms), "mean": sum(terms) / 3}[effective]
    with working_precision(BITS):
        got = oracle.nll_loss(logp, targets, weight=weight, size_average=size_average, reduce=reduce,
                              reduction=reduction)
        if effective == "none":
            assert [frac_of(g) for g in got] == expected
        else:
            assert_close(got, mpf_of(expected))
        x = np.array([[0.25, 0.5], [0.75, 0.125]])
        calls = {
            "cross_entropy": lambda **kw: oracle.cross_entropy(x, np.array([0, 1]), **kw),
            "binary_cross_entropy": lambda **kw: oracle.binary_cross_entropy(x, 1 - x, **kw),
            "binary_cross_entropy_with_logits":
                lambda **kw: oracle.binary_cross_entropy_with_logits(x, 1 - x, **kw),
            "kl_div": lambda **kw: oracle.kl_div(-x, x, **kw),
        }
        for name, call in calls.items():
            legacy = call(size_average=size_average, reduce=reduce, reduction=reduction)
            if effective == "none":
                assert isinstance(legacy, np.ndarray) and legacy.shape == ((2,) if name == "cross_entropy" else (2, 2)), name
                assert_close(legacy, call(reduction="none"))
            else:
                assert isinstance(legacy, mpf), name
                assert_close(legacy, call(reduction=effective))


# ------------------------------------------------------------------------ invalid input


INVALID_CALLS = {
    "class above range": lambda: oracle.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
    "negative class": lambda: oracle.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])),
    "nll class above range": lambda: oracle.nll_loss(np.zeros((2, 3)), np.array([0, 5])),
    "ignore_index is not a wildcard": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([-100]),
                                                                   ignore_index=-1),
    "label_smoothing below 0": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([0]),
                                                            label_smoothing=-0.1),
    "label_smoothing above 1": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([0]),
                                                            label_smoothing=1.1),
    "BCE input below 0": lambda: oracle.binary_cross_entropy(np.array([-0.1]), np.array([0.0])),
    "BCE input above 1": lambda: oracle.binary_cross_entropy(np.array([1.5]), np.array([1.0])),
    "BCE input nan": lambda: oracle.binary_cross_entropy(np.array([np.nan]), np.array([1.0])),
    "CE weight too short": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([0]),
                                                        weight=np.ones(2)),
    "CE weight too long": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([[1.0, 0, 0]]),
                                                       weight=np.ones(4)),
    "nll weight wrong length": lambda: oracle.nll_loss(np.zeros((1, 3)), np.array([0]), weight=np.ones(5)),
    "BCE weight does not broadcast": lambda: oracle.binary_cross_entropy(np.full((2, 3), 0.5),
                                                                         np.ones((2, 3)), weight=np.ones(2)),
    "pos_weight does not broadcast": lambda: oracle.binary_cross_entropy_with_logits(
        np.zeros((2, 3)), np.ones((2, 3)), pos_weight=np.ones(2)),
    "target shape": lambda: oracle.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
    "probability target shape": lambda: oracle.cross_entropy(np.zeros((2, 3)), np.ones((2, 2))),
    "BCE target shape": lambda: oracle.binary_cross_entropy(np.full(3, 0.5), np.ones(2)),
    "unknown reduction": lambda: oracle.cross_entropy(np.zeros((1, 3)), np.array([0]), reduction="avg"),
    "batchmean is kl_div's only": lambda: oracle.nll_loss(np.zeros((1, 3)), np.array([0]),
                                                          reduction="batchmean"),
    "kl_div unknown reduction": lambda: oracle.kl_div(np.zeros(3), np.ones(3), reduction="max"),
    "0-d input to cross_entropy": lambda: oracle.cross_entropy(np.array(1.0), np.array(0)),
    "float targets to nll_loss": lambda: oracle.nll_loss(np.zeros((1, 3)), np.zeros((1, 3))),
}


@pytest.mark.parametrize("call", list(INVALID_CALLS.values()), ids=list(INVALID_CALLS))
def test_invalid_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
