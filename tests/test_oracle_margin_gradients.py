"""Tests of ``oracle/gradients_margin.py``: the gradient error model of the margin, ranking and
embedding losses.

* Every ``<loss>_grad_condition`` covers the true first-order sensitivity of its gradient
  (``sum_z sum_k |z_k dg_i/dz_k|`` over the floating inputs, by high-precision central
  differences away from the kinks) and, for the gradients that do not cancel, is not vacuous.
  The +-1 labels are discrete: they are passed as integers, so nothing perturbs them.
* At a kink the bound admits the jump exactly where the case is within the input
  perturbation ``u K_IN S_z`` of it, in the case's dtype, and not beyond.
* PyTorch's side at each kink (the oracle's exact value there) is what torch's autograd
  returns (torch eager, float64).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import gradients_margin as gm
from suites.cases import Case
from suites.gradients import evaluate_gradient
from suites.registry import REGISTRY
from suites.verdict import K_IN

from .test_oracle_gradient_conditions import TIGHTNESS, _sensitivity
from .test_oracle_gradients import floats_array

smooth = st.floats(-6, 6, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
signs = st.sampled_from([1, -1])
REDUCTIONS = ["none", "mean", "sum"]


def test_kink_constant_is_the_verdicts_input_constant():
    assert gm.K_KINK == K_IN


def test_conditions_are_found_by_the_registry():
    for name in ("margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
                 "multi_margin_loss", "multilabel_margin_loss", "cosine_embedding_loss", "triplet_margin_loss",
                 "triplet_margin_with_distance_loss"):
        assert REGISTRY[name].grad_condition is getattr(gm, f"{name}_grad_condition")


def assert_covers(fn: str, args: dict, kwargs: dict, *, cancelling: bool = False) -> None:
    """``c_i`` at least the numerical sensitivity (sound) and, unless the gradient is a
    difference of larger summands, within ``TIGHTNESS (t + |g|)`` of it (tight)."""
    __tracebackhide__ = True
    spec = REGISTRY[fn]
    with mpmath.workprec(128):
        analytic = spec.grad_condition(*args.values(), **kwargs).condition
        g = np.asarray(spec.grad(*args.values(), **kwargs), dtype=object)
    true = _sensitivity(spec.grad, args, kwargs)
    assert analytic.shape == true.shape == g.shape
    with mpmath.workprec(128):
        for idx in np.ndindex(true.shape):
            a, t, gi = analytic[idx], true[idx], abs(g[idx])
            slack = mpf(10) ** -25 * (1 + t)
            assert a + slack >= t, f"{fn} at {idx}: analytic condition {a} < true sensitivity {t}"
            if not cancelling:
                assert a <= TIGHTNESS * (t + gi) + slack, f"{fn} at {idx}: condition {a} is loose: sensitivity {t}, |g| {gi}"


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), wrt=st.sampled_from(["input1", "input2"]))
def test_elementwise_conditions_cover(data, reduction, wrt):
    n = data.draw(st.integers(1, 4))
    x1, x2 = floats_array(data, smooth, (n,)), floats_array(data, smooth, (n,))
    y = _ints(data.draw(st.lists(signs, min_size=n, max_size=n)))
    # central differences straddling a hinge's kink average its sides: away from the kinks only
    # (margin_ranking: -y (x1 - x2) + 0.5 = 0; hinge_embedding with y = -1: 0.5 - x1 = 0)
    assume(np.all(np.abs(-y * (x1 - x2) + 0.5) > 1e-6) and np.all(np.abs(0.5 - x1) > 1e-6))
    assert_covers("margin_ranking_loss", {"input1": x1, "input2": x2, "target": y},
                  {"margin": 0.5, "reduction": reduction, "wrt": wrt})
    assert_covers("hinge_embedding_loss", {"input": x1, "target": y}, {"margin": 0.5, "reduction": reduction})
    assert_covers("soft_margin_loss", {"input": x1 * 4, "target": y}, {"reduction": reduction})


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_multilabel_soft_margin_condition_covers(data, reduction, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    x = floats_array(data, smooth, (n, c)) * 3
    y = floats_array(data, st.sampled_from([0.0, 1.0]) | st.floats(0, 1), (n, c))
    w = floats_array(data, st.floats(0.1, 3.0), (c,)) if weighted else None
    assert_covers("multilabel_soft_margin_loss", {"input": x, "target": y}, {"weight": w, "reduction": reduction})


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), p=st.sampled_from([1, 2]), weighted=st.booleans())
def test_multi_class_hinge_conditions_cover(data, reduction, p, weighted):
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x = floats_array(data, smooth, (n, c))
    y = _ints(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    w = floats_array(data, st.floats(0.1, 3.0), (c,)) if weighted else None
    assert_covers("multi_margin_loss", {"input": x, "target": y}, {"p": p, "margin": 0.7, "weight": w, "reduction": reduction})
    target = _ints([np.r_[np.random.default_rng(r).permutation(c)[: 1 + r % c], [-1] * c][:c] for r in range(n)])
    assert_covers("multilabel_margin_loss", {"input": x, "target": target}, {"reduction": reduction})


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), wrt=st.sampled_from(["input1", "input2"]))
def test_cosine_embedding_condition_covers(data, reduction, wrt):
    n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    a, b = floats_array(data, smooth, (n, d)), floats_array(data, smooth, (n, d))
    y = _ints(data.draw(st.lists(signs, min_size=n, max_size=n)))
    assert_covers("cosine_embedding_loss", {"input1": a, "input2": b, "target": y},
                  {"margin": -0.25, "reduction": reduction, "wrt": wrt}, cancelling=True)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS), swap=st.booleans(), p=st.sampled_from([1.0, 2.0, 3.0]))
def test_triplet_conditions_cover(data, reduction, swap, p):
    n, d = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    a, b, c = (floats_array(data, smooth, (n, d)) for _ in range(3))
    args = {"anchor": a, "positive": b, "negative": c}
    assert_covers("triplet_margin_loss", args, {"margin": 3.0, "p": p, "swap": swap, "reduction": reduction}, cancelling=True)
    for name in (None, "l1", "cosine"):
        assert_covers("triplet_margin_with_distance_loss", args,
                      {"distance_function": name, "margin": 3.0, "swap": swap, "reduction": reduction}, cancelling=True)


# ------------------------------------------------------------------ kinks admitted, and only there


def _bound_and_exact(case: Case) -> tuple[float, float]:
    ev = evaluate_gradient(case)
    return float(ev.bound.reshape(-1)[0]), float(ev.exact.reshape(-1)[0])


@pytest.mark.parametrize(
    ("x1", "dtype", "admitted"),
    [
        (1.0, "float32", True),  # z = 0: the kink itself
        (1.0 + 2.0**-22, "float32", True),  # |z| = 2.4e-7 <= u K_IN (|x1| + |x2| + |m|) = 4.8e-7
        (1.0 + 2.0**-22, "float64", False),  # the same z is far beyond float64's reach
        (1.0 + 2.0**-20, "float32", False),  # |z| = 9.5e-7: the wrong side fails
        (1.001, "float32", False),
    ],
)
def test_hinge_jump_is_admitted_within_the_input_perturbation(x1, dtype, admitted):
    case = Case("margin_ranking_loss", {"input1": np.array([x1], dtype), "input2": np.array([0.0], dtype),
                                        "target": np.array([1.0], dtype)}, {"margin": 1.0, "reduction": "sum"}, dtype)
    bound, exact = _bound_and_exact(case)
    jump = 1.0  # the other side's gradient is exact + 1 (inactive 0 vs active -1)
    assert (bound >= jump) is admitted, f"bound {bound}, exact {exact}"
    if not admitted:
        assert bound < jump / 1000


def test_multi_class_jump_reaches_both_components():
    """multi_margin at z = 0 exactly: the kernel adds nothing (z > 0 only); a backward pass
    that rounds z the other way adds w_y/C to g_i and subtracts it from g_y: both admitted."""
    case = Case("multi_margin_loss", {"input": np.array([[0.5, 1.5, 0.5]], "float32"), "target": np.array([1])},
                {"reduction": "sum"}, "float32")
    ev = evaluate_gradient(case)
    assert [float(v) for v in ev.exact.reshape(-1)] == [0.0, 0.0, 0.0]
    assert all(b >= 1 / 3 for b in ev.bound.reshape(-1))


def test_zero_vector_gradient_is_any_finite_value():
    case = Case("cosine_embedding_loss", {"input1": np.array([[0.0, 0.0]]), "input2": np.array([[1.0, 2.0]]),
                                          "target": np.array([1.0])}, {"reduction": "sum"}, "float64")
    ev = evaluate_gradient(case)
    assert np.all(np.isinf(ev.bound))


# ------------------------------------------------------------------ PyTorch's side at each kink

_TWD = "triplet_margin_with_distance_loss"

KINK_CASES = [
    # (fn, args, kwargs): each exactly at a kink (float64, exact arithmetic decides the side)
    ("margin_ranking_loss", {"input1": [1.0], "input2": [0.0], "target": [1.0]}, {"margin": 1.0}),
    ("hinge_embedding_loss", {"input": [1.0], "target": [-1.0]}, {"margin": 1.0}),
    ("multi_margin_loss", {"input": [[0.0, 1.0, 0.0]], "target": [1]}, {}),
    ("multi_margin_loss", {"input": [[0.0, 1.0, 0.0]], "target": [1]}, {"p": 2}),
    ("multilabel_margin_loss", {"input": [[1.0, 0.0]], "target": [[0, -1]]}, {}),
    ("cosine_embedding_loss", {"input1": [[1.0, 0.0]], "input2": [[0.0, 1.0]], "target": [-1.0]}, {"margin": 0.0}),
    ("triplet_margin_loss", {"anchor": [[0.0, 0.0]], "positive": [[0.0, 1.0]], "negative": [[2.0, 0.0]]},
     {"margin": 1.0, "eps": 0.0}),
    ("triplet_margin_loss", {"anchor": [[0.0]], "positive": [[2.0]], "negative": [[1.0]]},
     {"margin": 2.0, "p": 1.0, "eps": 0.0, "swap": True}),  # swap at a tie: half each
    ("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[5.0, 2.0]]},
     {"margin": 5.0, "eps": 0.0}),  # d(a, p) = 0: the norm's gradient is 0
    ("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 3.0]], "negative": [[5.0, 2.0]]},
     {"margin": 5.0, "p": 1.0, "eps": 0.0}),  # sign(0) = 0 in each L1 distance
    (_TWD, {"anchor": [[0.0, 0.0]], "positive": [[1.0, 1.0]], "negative": [[0.0, 1.0]]},
     {"distance_function": "cosine"}),  # a zero anchor: max(|a|, eps) is on its eps side
    (_TWD, {"anchor": [[0.0, 0.0]], "positive": [[1.0, 0.5]], "negative": [[2.0, 0.0]]},
     {"distance_function": "l1", "margin": 0.5}),  # z = 0.5 + 1.5 - 2 = 0
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), KINK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(KINK_CASES)])
def test_kink_convention_is_pytorchs(fn, args, kwargs):
    pytest.importorskip("torch")
    from adapters import load_adapter

    arrays = {k: (np.asarray(v, dtype=np.int64) if isinstance(v[0], int) or (isinstance(v[0], list) and isinstance(v[0][0], int))
                  else np.asarray(v, dtype=np.float64)) for k, v in args.items()}
    kwargs = {**kwargs, "reduction": "sum"}
    first = next(iter(arrays))
    torch_grad = load_adapter("torch").grad(fn, arrays, kwargs, wrt=first)
    with mpmath.workprec(120):
        exact = np.asarray(getattr(oracle, f"{fn}_grad")(*arrays.values(), **kwargs), dtype=object)
    expected = np.array([float(v) for v in exact.reshape(-1)]).reshape(exact.shape)
    # cosine_embedding_loss: torch's EPSILON = 1e-12 moves the value by 1e-12 relative
    np.testing.assert_allclose(torch_grad, expected, rtol=1e-11, atol=0)


# ------------------------------------------------------------------ the other parameters


def _reordered(fn, wrt: str):
    """``fn`` with ``wrt`` moved to the front, for the first-argument numerical check."""
    order = ("anchor", "positive", "negative")

    def call(first, *others, **kwargs):
        named = dict(zip([n for n in order if n != wrt], others))
        named[wrt] = first
        return fn(*(named[n] for n in order), **kwargs)

    return call


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(data=st.data(), wrt=st.sampled_from(["positive", "negative"]), swap=st.booleans(),
       p=st.sampled_from([1.0, 2.0, 3.0]), name=st.sampled_from([None, "l1", "cosine"]))
def test_triplet_gradients_of_positive_and_negative(data, wrt, swap, p, name):
    from .test_oracle_gradients import assert_gradients_agree

    n, d = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    arrays = {k: floats_array(data, smooth, (n, d)) for k in ("anchor", "positive", "negative")}
    others = [arrays[k] for k in ("anchor", "positive", "negative") if k != wrt]
    kwargs = {"margin": 3.0, "p": p, "swap": swap, "reduction": "sum"}
    assert_gradients_agree(
        _reordered(oracle.triplet_margin_loss, wrt),
        _reordered(lambda *a, **k: oracle.triplet_margin_loss_grad(*a, wrt=wrt, **k), wrt),
        arrays[wrt], *others, **kwargs,
    )
    assert_covers("triplet_margin_loss", arrays, {**kwargs, "wrt": wrt}, cancelling=True)
    kwargs = {"distance_function": name, "margin": 3.0, "swap": swap, "reduction": "mean"}
    assert_gradients_agree(
        _reordered(oracle.triplet_margin_with_distance_loss, wrt),
        _reordered(lambda *a, **k: oracle.triplet_margin_with_distance_loss_grad(*a, wrt=wrt, **k), wrt),
        arrays[wrt], *others, **kwargs,
    )
    assert_covers("triplet_margin_with_distance_loss", arrays, {**kwargs, "wrt": wrt}, cancelling=True)


@pytest.mark.parametrize("wrt", ["positive", "negative"])
def test_triplet_gradient_of_other_parameters_is_pytorchs(wrt):
    """The swap tie and an active hinge, w.r.t. positive and negative, against torch eager."""
    pytest.importorskip("torch")
    from adapters import load_adapter

    arrays = {"anchor": np.array([[0.0, 0.5]]), "positive": np.array([[2.0, 0.5]]), "negative": np.array([[1.0, 0.5]])}
    for kwargs in ({"margin": 2.0, "p": 1.0, "eps": 0.0, "swap": True, "reduction": "sum"},
                   {"margin": 3.0, "swap": False, "reduction": "mean"}):
        torch_grad = load_adapter("torch").grad("triplet_margin_loss", arrays, kwargs, wrt=wrt)
        with mpmath.workprec(120):
            exact = oracle.triplet_margin_loss_grad(*arrays.values(), wrt=wrt, **kwargs)
        np.testing.assert_allclose(torch_grad, np.array(exact.tolist(), dtype=float), rtol=1e-14, atol=1e-300)


def test_a_distance_that_eps_rounded_to_the_dtype_cancels_admits_any_direction():
    """``a - n + eps`` = 2.5e-15 exactly, but 0 with ``eps = 1e-6`` rounded to float32 (as
    PyTorch adds it): within the input perturbation of the norm's kink the direction of
    ``v`` is undetermined (PyTorch's gradient 0; exact 1), so the bound admits a jump of
    ``1 + |e_i|``; a distance far from 0 admits none."""
    from suites.cases import Case
    from suites.gradients import evaluate_gradient

    a, p = np.array([0.0], dtype=np.float32), np.array([0.0], dtype=np.float32)
    for n, near in ((np.array([9.999999974752427e-07], dtype=np.float32), True), (np.array([1.0], dtype=np.float32), False)):
        case = Case("triplet_margin_with_distance_loss", {"anchor": a, "positive": p, "negative": n},
                    {"reduction": "none"}, "float32", wrt="negative")
        evaluation = evaluate_gradient(case)
        assert abs(float(evaluation.rounded[0])) == 1.0
        if near:
            assert float(evaluation.bound[0]) >= 2.0  # PyTorch's 0 and the flipped -1 both pass
        else:
            assert float(evaluation.bound[0]) < 1e-5


def test_the_cosine_distance_gradient_is_exactly_zero_between_parallel_vectors():
    """``d(1 - cos(x, y))/dx`` vanishes where ``y`` is parallel to ``x`` (a triplet with
    ``swap`` and ``positive == negative`` meets it): exactly 0, decided at once, not a
    difference of rounded parts that Ziv's loop can never round (and the sign survives)."""
    from oracle.embedding import _cosine_distance_grad_a

    x = np.array([mpf(-0.75), mpf(2), mpf(5.25)], dtype=object)
    assert all(g == 0 for g in _cosine_distance_grad_a(x, 2 * x))
    g = _cosine_distance_grad_a(np.array([mpf(1), mpf(-1)], dtype=object), np.array([mpf(1), mpf(1)], dtype=object))
    assert all(abs(float(v) + 0.5) < 1e-15 for v in g)  # -(1 * 2 - 0) / (2^1.5 * 2^0.5)


def test_cosine_gradient_is_exactly_zero_where_its_parts_cancel():
    """d cos/da_1 = b_1/sqrt(n_a n_b) - cos a_1/n_a is exactly 0 for a = [0, .125, -.375],
    b = [.875, .125, -.375] (a_1 = b_1, a.b = |a|^2): the numerator b n_a - (a.b) a is formed in
    exact rationals, so the float64 rounding of 0 is decided (it was undecided at 16384 bits)."""
    case = Case("cosine_embedding_loss", {"input1": np.array([[0.0, 0.125, -0.375]]), "input2": np.array([[0.875, 0.125, -0.375]]),
                                          "target": np.array([1.0])}, {"reduction": "none"}, "float64", wrt="input1")
    rounded = evaluate_gradient(case).rounded
    assert rounded[0, 1] == 0 and rounded[0, 2] == 0 and rounded[0, 0] < -2.3


def test_a_shared_component_keeps_the_p2_second_derivative():
    """eps = 0 and an anchor and positive equal in one component: ``v_0 = 0`` but
    ``d^2 ||v|| / dv_0^2 = 1/d`` there (``|v_0 / d|^{p-2} = 1`` for p = 2, not 0), so a
    perturbation of ``a_0`` or ``p_0`` (size 2) still turns the gradient's direction."""
    args = {"anchor": np.array([[1.0, 1.0]]), "positive": np.array([[1.0, 2.0]]), "negative": np.array([[4.0, -3.0]])}
    assert_covers("triplet_margin_loss", args, {"margin": 30.0, "p": 2.0, "eps": 0.0, "reduction": "sum"}, cancelling=True)
