"""Tests of the margin, ranking and embedding losses of the oracle (oracle/margin.py,
oracle/embedding.py), in the three styles of the oracle's other tests:

* closed forms: the docs' formulas typed out again in exact rational arithmetic
  (``fractions.Fraction``) on dyadic inputs -- the hinge losses and the p = 1
  triplet distance are rational --, and values known by hand (log 2, the docs'
  multilabel_margin_loss example, cosines of parallel and orthogonal vectors);
* an independent evaluation with python-flint ``arb`` balls of the naive formulas
  (softplus as ``log(1 + exp(z))``, the cosine, the p-norm distances), which must give
  the same correctly rounded floats in all four formats (``tests/test_oracle_arb.py``);
* analytic (sub)gradients against ``mpmath.diff`` away from the kinks, and at the
  kinks the side PyTorch's backward takes, as each docstring states.

Expected values are never taken from a framework.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import working_precision

from .test_oracle_gradients import assert_gradients_agree, floats_array

BITS = 300
REL = mpf(2) ** -250
REDUCTIONS = ["none", "mean", "sum"]


def frac(x) -> Fraction:
    return Fraction(float(x))


def assert_equal_fraction(got, expected) -> None:
    """``got`` (mpf or object array from the oracle at 300 bits) equals the exact rationals."""
    __tracebackhide__ = True
    got_a = np.asarray(got, dtype=object)
    exp_a = np.asarray(expected, dtype=object)
    assert got_a.shape == exp_a.shape, (got_a.shape, exp_a.shape)
    for idx in np.ndindex(exp_a.shape):
        e = exp_a[idx]
        with working_precision(BITS + 64):
            g = got_a[idx]
            target = mpf(e.numerator) / e.denominator
            assert abs(g - target) <= REL * abs(target), f"at {idx}: got {mpmath.nstr(g, 30)}, expected {e}"


def reduce_fraction(terms: list[Fraction], shape, reduction: str):
    if reduction == "none":
        out = np.empty(len(terms), dtype=object)
        for i, t in enumerate(terms):
            out[i] = t
        return out.reshape(shape)
    total = sum(terms, Fraction(0))
    return total if reduction == "sum" else total / len(terms)


grid = st.integers(-64, 64).map(lambda k: k / 8)  # dyadic: every hinge position is exact
signs = st.sampled_from([1.0, -1.0])
margins = st.sampled_from([0.0, 0.5, 1.0, -0.5, 2.0, 0.375])


def grid_array(data, shape) -> np.ndarray:
    return floats_array(data, grid, shape)


# ------------------------------------------------------------------ closed forms (Fraction)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), margin=margins)
def test_margin_ranking_loss_closed_form(data, reduction, margin):
    n = data.draw(st.integers(1, 6))
    x1, x2 = grid_array(data, (n,)), grid_array(data, (n,))
    y = floats_array(data, signs, (n,))
    terms = [max(Fraction(0), -frac(y[i]) * (frac(x1[i]) - frac(x2[i])) + frac(margin)) for i in range(n)]
    with working_precision(BITS):
        got = oracle.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction)
    assert_equal_fraction(got, reduce_fraction(terms, (n,), reduction))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), margin=margins)
def test_hinge_embedding_loss_closed_form(data, reduction, margin):
    n = data.draw(st.integers(1, 6))
    x, y = grid_array(data, (n,)), floats_array(data, signs, (n,))
    terms = [frac(x[i]) if y[i] == 1 else max(Fraction(0), frac(margin) - frac(x[i])) for i in range(n)]
    with working_precision(BITS):
        got = oracle.hinge_embedding_loss(x, y, margin=margin, reduction=reduction)
    assert_equal_fraction(got, reduce_fraction(terms, (n,), reduction))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), margin=margins, p=st.sampled_from([1, 2]), weighted=st.booleans())
def test_multi_margin_loss_closed_form(data, reduction, margin, p, weighted):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    x = grid_array(data, (n, c))
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    w = grid_array(data, (c,)) if weighted else None
    terms = []
    for r in range(n):
        wy = frac(w[y[r]]) if weighted else Fraction(1)
        s = sum(
            (wy * max(Fraction(0), frac(margin) - frac(x[r, y[r]]) + frac(x[r, i])) ** p for i in range(c) if i != y[r]),
            Fraction(0),
        )
        terms.append(s / c)
    with working_precision(BITS):
        got = oracle.multi_margin_loss(x, y, p=p, margin=margin, weight=w, reduction=reduction)
    assert_equal_fraction(got, reduce_fraction(terms, (n,), reduction))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS))
def test_multilabel_margin_loss_closed_form(data, reduction):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    x = grid_array(data, (n, c))
    target = np.array(
        data.draw(st.lists(st.lists(st.integers(-1, c - 1), min_size=c, max_size=c), min_size=n, max_size=n)),
        dtype=np.int64,
    )
    terms = []
    for r in range(n):
        listed = []
        for v in target[r]:
            if v == -1:
                break
            listed.append(int(v))
        s = Fraction(0)
        for j in listed:  # each listed entry counts, duplicates included (PyTorch's kernel)
            for i in range(c):
                if i not in listed:
                    s += max(Fraction(0), 1 - (frac(x[r, j]) - frac(x[r, i])))
        terms.append(s / c)
    with working_precision(BITS):
        got = oracle.multilabel_margin_loss(x, target, reduction=reduction)
    assert_equal_fraction(got, reduce_fraction(terms, (n,), reduction))


@settings(max_examples=25, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), swap=st.booleans())
def test_triplet_margin_loss_p1_closed_form(data, reduction, swap):
    n, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    a, p, ng = (grid_array(data, (n, d)) for _ in range(3))
    eps = data.draw(st.sampled_from([0.0, 0.125]))

    def dist(u, v):
        return sum((abs(frac(s) - frac(t) + frac(eps)) for s, t in zip(u, v)), Fraction(0))

    terms = []
    for r in range(n):
        d_an = dist(a[r], ng[r])
        if swap:
            d_an = min(d_an, dist(p[r], ng[r]))
        terms.append(max(Fraction(0), 1 + dist(a[r], p[r]) - d_an))
    with working_precision(BITS):
        got = oracle.triplet_margin_loss(a, p, ng, p=1, eps=eps, swap=swap, reduction=reduction)
    assert_equal_fraction(got, reduce_fraction(terms, (n,), reduction))


def test_known_values():
    with working_precision(BITS):
        log2 = mpmath.log(2)
        assert abs(oracle.soft_margin_loss(np.array([0.0]), np.array([1.0]), reduction="sum") - log2) < REL
        # the docs' MultiLabelMarginLoss example: 0.85
        got = oracle.multilabel_margin_loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]]), reduction="none")[0]
        x = [mpf(0.1), mpf(0.2), mpf(0.4), mpf(0.8)]
        exact = (4 - 2 * x[3] - 2 * x[0] + 2 * (x[1] + x[2])) / 4  # (1-(x3-x1)) + (1-(x3-x2)) + (1-(x0-x1)) + (1-(x0-x2))
        assert abs(got - exact) < REL and abs(got - mpf("0.85")) < mpf(1e-15)
        # the padding after the -1 is ignored, whatever its order or values
        a = oracle.multilabel_margin_loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, -1, 0, 1]]), reduction="none")
        b = oracle.multilabel_margin_loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, -1, 1, -1]]), reduction="none")
        assert a[0] == b[0]
        # cosines: parallel 1, orthogonal 0, a zero vector 0 (PyTorch's value)
        parallel = oracle.cosine_embedding_loss(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]]), np.array([1.0]), reduction="none")
        orthogonal = oracle.cosine_embedding_loss(np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]]), np.array([-1.0]), reduction="none")
        zero = oracle.cosine_embedding_loss(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]]), np.array([1.0]), reduction="none")
        assert parallel[0] == 0 and orthogonal[0] == 0 and zero[0] == 1
        # PyTorch's EPSILON convention differs from the docs' cosine by ~1e-12 / |x|^2
        torch_form = oracle.torch_cosine_embedding_loss_terms(
            np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]]), np.array([1.0]), reduction="none"
        ).terms[0]
        assert mpf(1e-13) < torch_form < mpf(2e-13)
        # identical triplet: d(a, p) = d(a, n) = eps sqrt(D), so the loss is the margin
        same = oracle.triplet_margin_loss(np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]), reduction="none")
        assert same[0] == 1
        # pairwise_distance adds eps to each difference: identical vectors are eps sqrt(D) apart
        d, _ = oracle.pairwise_distance(oracle.mp_array(np.array([1.0, 2.0])), oracle.mp_array(np.array([1.0, 2.0])))
        assert abs(d - mpf(1e-6) * mpmath.sqrt(2)) < REL


def test_soft_margin_large_argument_is_linear():
    """softplus(z) = z + log1p(exp(-z)): exact far beyond where exp(z) overflows a float."""
    with working_precision(BITS):
        got = oracle.soft_margin_loss(np.array([-1000.0]), np.array([1.0]), reduction="sum")
        assert abs(got - (1000 + mpmath.log1p(mpmath.exp(-1000)))) < REL * 1000


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [
        ("margin_ranking_loss", (np.array([1.0]), np.array([0.0]), np.array([0.0])), {}),
        ("hinge_embedding_loss", (np.array([1.0]), np.array([2.0])), {}),
        ("soft_margin_loss", (np.array([1.0]), np.array([0.5])), {}),
        ("cosine_embedding_loss", (np.array([[1.0]]), np.array([[1.0]]), np.array([0.0])), {}),
        ("multi_margin_loss", (np.array([[1.0, 2.0]]), np.array([2])), {}),
        ("multi_margin_loss", (np.array([[1.0, 2.0]]), np.array([0])), {"p": 3}),
        ("multilabel_margin_loss", (np.array([[1.0, 2.0]]), np.array([[-2, 0]])), {}),
        ("multilabel_margin_loss", (np.array([[1.0, 2.0]]), np.array([[0, -1, 1]])), {}),
        ("multilabel_margin_loss", (np.array([[1.0, 2.0]]), np.array([[0, 5]])), {}),  # out of range after no -1
        ("multilabel_soft_margin_loss", (np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]])), {"weight": np.ones(3)}),
        ("triplet_margin_loss", (np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2))), {"margin": 0.0}),
        ("triplet_margin_with_distance_loss", (np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2))), {"distance_function": "hamming"}),
        ("margin_ranking_loss", (np.array([1.0]), np.array([0.0]), np.array([1.0])), {"reduction": "avg"}),
    ],
)
def test_invalid_input_is_a_one_line_error(fn, args, kwargs):
    with pytest.raises(ValueError) as info:
        getattr(oracle, fn)(*args, **kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ arb cross-check

flint = pytest.importorskip("flint")
from .test_oracle_arb import NAMES, A, arb_sum, cast, check, in_format, reduce_terms  # noqa: E402

arb = flint.arb
moderate = st.floats(-60, 60, allow_nan=False)


def arb_hinge(z):
    if z > 0:
        return z
    if z < 0 or z.is_zero():
        return arb(0)
    from .test_oracle_arb import Undecided

    raise Undecided


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS))
def test_soft_margin_loss_against_arb(name, data, reduction):
    n = data.draw(st.integers(1, 5))
    x = cast(data.draw(st.lists(in_format(moderate | st.floats(-800, 800), name), min_size=n, max_size=n)), name)
    y = cast(data.draw(st.lists(signs, min_size=n, max_size=n)), name)

    def naive():
        terms = [(1 + (-A(y[i]) * A(x[i])).exp()).log() for i in range(n)]
        return reduce_terms(terms, (n,), reduction, arb(n))

    check(lambda: oracle.soft_margin_loss(x, y, reduction=reduction), naive, name, f"soft_margin {x} {y}")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_multilabel_soft_margin_loss_against_arb(name, data, reduction, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    x = cast(np.array(data.draw(st.lists(in_format(moderate, name), min_size=n * c, max_size=n * c))).reshape(n, c), name)
    y = cast(np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * c, max_size=n * c))).reshape(n, c), name)
    w = cast(data.draw(st.lists(in_format(st.floats(0, 4), name), min_size=c, max_size=c)), name) if weighted else None

    def naive():
        terms = []
        for r in range(n):
            row = []
            for k in range(c):
                s = 1 / (1 + (-A(x[r, k])).exp())
                t = -(A(y[r, k]) * s.log() + (1 - A(y[r, k])) * (1 - s).log())
                row.append(t * (A(w[k]) if weighted else 1))
            terms.append(arb_sum(row) / c)
        return reduce_terms(terms, (n,), reduction, arb(n))

    check(lambda: oracle.multilabel_soft_margin_loss(x, y, weight=w, reduction=reduction), naive, name, "multilabel_soft_margin")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), margin=st.sampled_from([0.0, 0.5, -0.25]))
def test_cosine_embedding_loss_against_arb(name, data, reduction, margin):
    n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    a = cast(np.array(data.draw(st.lists(in_format(st.floats(-8, 8), name), min_size=n * d, max_size=n * d))).reshape(n, d), name)
    b = cast(np.array(data.draw(st.lists(in_format(st.floats(-8, 8), name), min_size=n * d, max_size=n * d))).reshape(n, d), name)
    y = cast(data.draw(st.lists(signs, min_size=n, max_size=n)), name)

    def naive():
        terms = []
        for r in range(n):
            dot = arb_sum(A(u) * A(v) for u, v in zip(a[r], b[r]))
            na, nb = arb_sum(A(u) ** 2 for u in a[r]), arb_sum(A(v) ** 2 for v in b[r])
            cos = arb(0) if na.is_zero() or nb.is_zero() else dot / (na * nb).sqrt()
            terms.append(1 - cos if y[r] == 1 else arb_hinge(cos - A(margin)))
        return reduce_terms(terms, (n,), reduction, arb(n))

    check(lambda: oracle.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction), naive, name, "cosine_embedding")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), swap=st.booleans(), p=st.sampled_from([2.0, 3.0]),
       eps=st.sampled_from([1e-6, 0.0, 0.25]))
def test_triplet_margin_loss_against_arb(name, data, reduction, swap, p, eps):
    n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    a, pos, ng = (
        cast(np.array(data.draw(st.lists(in_format(st.floats(-8, 8), name), min_size=n * d, max_size=n * d))).reshape(n, d), name)
        for _ in range(3)
    )

    def dist(u, v):
        return arb_sum(abs(A(s) - A(t) + A(eps)) ** int(p) for s, t in zip(u, v)).root(int(p))

    def naive():
        terms = []
        for r in range(n):
            d_an = dist(a[r], ng[r])
            if swap:
                d_pn = dist(pos[r], ng[r])
                tie = (d_an - d_pn).is_zero() or _same_magnitudes(a[r], pos[r], ng[r], eps)
                d_an = d_an if d_an < d_pn else d_pn if d_pn < d_an else d_an if tie else _undecided()
            terms.append(arb_hinge(1 + dist(a[r], pos[r]) - d_an))
        return reduce_terms(terms, (n,), reduction, arb(n))

    check(lambda: oracle.triplet_margin_loss(a, pos, ng, p=p, eps=eps, swap=swap, reduction=reduction), naive, name, "triplet")


def _same_magnitudes(a_row, pos_row, neg_row, eps) -> bool:
    """``d(a, n) == d(p, n)`` exactly: the same multiset of ``|s - t + eps|`` (exact
    rationals), which two balls around equal distances cannot show."""
    from fractions import Fraction

    def magnitudes(u):
        return sorted(abs(Fraction(float(s)) - Fraction(float(t)) + Fraction(eps)) for s, t in zip(u, neg_row))

    return magnitudes(a_row) == magnitudes(pos_row)


def _undecided():
    from .test_oracle_arb import Undecided

    raise Undecided


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(data=st.data(), distance=st.sampled_from(["cosine", "l1"]))
def test_triplet_with_named_distance_against_arb(name, data, distance):
    d = data.draw(st.integers(1, 4))
    a, pos, ng = (cast(np.array(data.draw(st.lists(in_format(st.floats(-8, 8), name), min_size=d, max_size=d))).reshape(1, d), name) for _ in range(3))
    e8 = A(1e-8)

    def dist(u, v):
        if distance == "l1":
            return arb_sum(abs(A(s) - A(t) + A(1e-6)) for s, t in zip(u, v))
        nu, nv = arb_sum(A(s) ** 2 for s in u).sqrt(), arb_sum(A(t) ** 2 for t in v).sqrt()
        nu = nu if nu > e8 else e8 if nu < e8 else _undecided()
        nv = nv if nv > e8 else e8 if nv < e8 else _undecided()
        return 1 - arb_sum(A(s) * A(t) for s, t in zip(u, v)) / (nu * nv)

    def naive():
        return reduce_terms([arb_hinge(1 + dist(a[0], pos[0]) - dist(a[0], ng[0]))], (1,), "none", arb(1))

    check(
        lambda: oracle.triplet_margin_with_distance_loss(a, pos, ng, distance_function=distance, reduction="none"),
        naive, name, f"triplet with {distance}",
    )


# ------------------------------------------------------------------ gradients


smooth = st.floats(-6, 6, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS))
def test_margin_ranking_and_hinge_gradients(data, reduction):
    n = data.draw(st.integers(1, 4))
    x1, x2 = floats_array(data, smooth, (n,)), floats_array(data, smooth, (n,))
    y = floats_array(data, signs, (n,))
    assert_gradients_agree(oracle.margin_ranking_loss, oracle.margin_ranking_loss_grad, x1, x2, y, margin=0.5, reduction=reduction)
    assert_gradients_agree(oracle.hinge_embedding_loss, oracle.hinge_embedding_loss_grad, x1, y, margin=0.5, reduction=reduction)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_soft_margin_gradients(data, reduction, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    x = floats_array(data, smooth, (n, c))
    y = floats_array(data, signs, (n, c))
    assert_gradients_agree(oracle.soft_margin_loss, oracle.soft_margin_loss_grad, x, y, reduction=reduction)
    y01 = (y + 1) / 2
    w = floats_array(data, st.floats(0.1, 3.0), (c,)) if weighted else None
    assert_gradients_agree(oracle.multilabel_soft_margin_loss, oracle.multilabel_soft_margin_loss_grad, x, y01, weight=w, reduction=reduction)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), p=st.sampled_from([1, 2]), weighted=st.booleans())
def test_multi_margin_gradients(data, reduction, p, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x = floats_array(data, smooth, (n, c))
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    w = floats_array(data, st.floats(0.1, 3.0), (c,)) if weighted else None
    assert_gradients_agree(oracle.multi_margin_loss, oracle.multi_margin_loss_grad, x, y, p=p, margin=0.7, weight=w, reduction=reduction)
    target = np.array([np.r_[np.random.default_rng(r).permutation(c)[: 1 + r % c], [-1] * c][:c] for r in range(n)], dtype=np.int64)
    # A numerical derivative is two-sided: at a hinge's kink (1 - (x_y - x_j) == 0, e.g. x = [0.75,
    # -0.25]) it averages the sides, where the analytic one takes PyTorch's; compare elsewhere.
    for row, labels in zip(x, target):
        listed = [int(k) for k in labels[: list(labels).index(-1)] if k >= 0] if -1 in labels else [int(k) for k in labels]
        others = [j for j in range(c) if j not in listed]
        assume(all(1 - (row[k] - row[j]) != 0 for k in listed for j in others))
    assert_gradients_agree(oracle.multilabel_margin_loss, oracle.multilabel_margin_loss_grad, x, target, reduction=reduction)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), swap=st.booleans(), p=st.sampled_from([1.0, 2.0, 3.0]))
def test_embedding_gradients(data, reduction, swap, p):
    n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    a, b, c = (floats_array(data, smooth, (n, d)) for _ in range(3))
    y = floats_array(data, signs, (n,))
    assert_gradients_agree(oracle.cosine_embedding_loss, oracle.cosine_embedding_loss_grad, a, b, y, margin=-0.25, reduction=reduction)
    assert_gradients_agree(oracle.triplet_margin_loss, oracle.triplet_margin_loss_grad, a, b, c, margin=3.0, p=p, swap=swap, reduction=reduction)
    for name in (None, "l1", "cosine"):
        assert_gradients_agree(
            oracle.triplet_margin_with_distance_loss, oracle.triplet_margin_with_distance_loss_grad, a, b, c,
            distance_function=name, margin=3.0, swap=swap, reduction=reduction,
        )


def test_gradients_at_the_kinks_take_pytorchs_side():
    """``clamp_min`` passes the gradient at z = 0 (margin_ranking, hinge_embedding, cosine,
    triplet); the multi-class kernels skip z = 0 (multi_margin, multilabel_margin)."""
    with working_precision(BITS):
        g = oracle.margin_ranking_loss_grad(np.array([1.0]), np.array([0.0]), np.array([1.0]), margin=1.0, reduction="sum")
        assert g[0] == -1
        g = oracle.hinge_embedding_loss_grad(np.array([1.0]), np.array([-1.0]), margin=1.0, reduction="sum")
        assert g[0] == -1
        g = oracle.multi_margin_loss_grad(np.array([[0.0, 1.0, 0.0]]), np.array([1]), reduction="sum")
        assert all(v == 0 for v in g.reshape(-1))
        g = oracle.multilabel_margin_loss_grad(np.array([[1.0, 0.0]]), np.array([[0, -1]]), reduction="sum")
        assert all(v == 0 for v in g.reshape(-1))
        # triplet on the hinge with p = 1, eps = 0: d(a,p) = 1.5, d(a,n) = 2.5, margin 1
        g = oracle.triplet_margin_loss_grad(
            np.array([[0.0, 0.0]]), np.array([[1.0, 0.5]]), np.array([[2.5, 0.0]]), p=1, eps=0.0, reduction="sum"
        )
        assert [float(v) for v in g.reshape(-1)] == [-1.0 + 1.0, -1.0]
        # swap at a tie: torch.minimum's backward gives each side half
        g = oracle.triplet_margin_loss_grad(
            np.array([[0.0]]), np.array([[2.0]]), np.array([[1.0]]), p=1, eps=0.0, swap=True, margin=2.0, reduction="sum"
        )
        assert float(g[0, 0]) == -1.0 + 0.5  # d(a,p) = 2; d(a,n) = d(p,n) = 1, half of -1
        # cosine of a zero vector: no gradient
        g = oracle.cosine_embedding_loss_grad(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]]), np.array([1.0]), reduction="sum")
        assert all(v == 0 for v in g.reshape(-1))



def test_a_distance_longer_than_the_working_precision_stays_exact():
    """|a - p| = 2.4479053301574307 + 4.7e-61 (one component) cancels exactly against
    |a - n| = 4.7e-61 in the hinge: the loss's sum is exactly the half-way point between two
    float64s (ties to even: 8.605051455861922). A rounded |.| or root dropped the tail, the
    sum looked just below the midpoint and the oracle said 8.60505145586192 (found by the
    arb cross-check)."""
    from oracle.core import correctly_rounded

    a = np.array([[-4.725363681648375e-61], [0.0], [0.0]])
    p = np.array([[2.4479053301574307], [0.0], [5.0]])
    n = np.array([[0.0], [0.0], [1.8428538742955096]])
    _, rounded = correctly_rounded(lambda: oracle.triplet_margin_loss(a, p, n, eps=0.0, reduction="sum"), "float64")
    assert float(rounded) == 8.605051455861922


def test_cosine_one_minus_cos_of_nearly_parallel_vectors_is_not_zero():
    """Regression (a CI run's Hypothesis case): 1 - cos of nearly parallel vectors, where cos
    rounds to 1 at every working precision, is not 0: exact 1 - 1/sqrt(1 + t^2) = t^2/2 - ...
    for a = [0, 1], b = [t, 1] (t = 1.2767163382042754e-103), computed here independently."""
    t = mpmath.mpf(1.2767163382042754e-103)
    with mpmath.workdps(60):
        expected = t**2 / (mpmath.sqrt(1 + t**2) * (mpmath.sqrt(1 + t**2) + 1))
    got = oracle.cosine_embedding_loss(np.array([[0.0, 1.0]]), np.array([[float(t), 1.0]]), np.array([1.0]), reduction="none")
    assert float(got[0]) == float(expected) and float(expected) == 8.150023041188669e-207
    parallel = oracle.cosine_embedding_loss(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]]), np.array([1.0]), reduction="none")
    assert parallel[0] == 0
