"""The arb fast path (oracle/fast.py) against the mpmath oracle: same floats, same bounds.

The fast path is an optimisation, so its only acceptable behaviour is the mpmath
oracle's: the correctly rounded values bit for bit (signed zeros included) and the
error model's bound to float64 accuracy -- or declining, which hands the case to
the mpmath oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flint")

from oracle.core import correctly_rounded, format_of
from oracle.fast import _Balls, _decide, fast_evaluation
from suites.cases import Case
from suites.registry import spec_for
from suites.verdict import error_bound

DTYPES = ["float64", "float32", "float16", "bfloat16"]


def _mpmath_oracle(case: Case):
    holder = {}

    def evaluate():
        holder["terms"] = case.call(spec_for(case.fn).terms)
        return holder["terms"].value

    _, rounded = correctly_rounded(evaluate, case.dtype)
    return rounded, error_bound(holder["terms"], format_of(case.dtype))


def _random_case(rng: np.random.Generator, fn: str, dtype: str) -> Case:
    np_dtype = format_of(dtype).numpy_dtype
    spread = rng.choice([1.0, 30.0, 300.0, 3e4])
    reduction = rng.choice(["none", "mean", "sum"])
    kwargs: dict = {"reduction": str(reduction)}
    if fn == "cross_entropy":
        n, c = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        x = rng.normal(0.0, spread, (n, c)).astype(np_dtype)
        if rng.random() < 0.2:  # a K-dimensional case
            x = rng.normal(0.0, spread, (n, c, 2)).astype(np_dtype)
        target = rng.integers(0, c, x.shape[:1] + x.shape[2:])
        if rng.random() < 0.3:
            target.reshape(-1)[0] = -100
        if rng.random() < 0.5:
            kwargs["weight"] = rng.uniform(0.0, 2.0, c).astype(np_dtype)
        return Case(fn, {"input": x, "target": target}, kwargs, dtype)
    shape = (int(rng.integers(1, 5)), 3)
    x = rng.normal(0.0, spread, shape).astype(np_dtype)
    y = rng.choice([0.0, 1.0, 0.5, 0.1, 0.9], shape).astype(np_dtype)
    if rng.random() < 0.4:
        kwargs["pos_weight"] = rng.uniform(0.0, 3.0, 3).astype(np_dtype)
    if rng.random() < 0.3:
        kwargs["weight"] = rng.uniform(0.0, 3.0, shape).astype(np_dtype)
    return Case(fn, {"input": x, "target": y}, kwargs, dtype)


@pytest.mark.parametrize("fn", ["cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_path_gives_the_mpmath_oracles_floats_and_bounds(fn, dtype):
    rng = np.random.default_rng(sum(map(ord, fn + dtype)))
    checked = 0
    for _ in range(40):
        case = _random_case(rng, fn, dtype)
        fast = fast_evaluation(case.fn, case.args, case.kwargs, case.dtype)
        if fast is None:
            continue  # out of scope (an overflowed input): the mpmath path is used
        rounded, bound = _mpmath_oracle(case)
        assert np.array_equal(fast.rounded, rounded), case.describe()
        assert np.array_equal(np.signbit(fast.rounded), np.signbit(rounded)), case.describe()
        np.testing.assert_allclose(error_bound(fast.terms, format_of(dtype)), bound, rtol=1e-9, err_msg=case.describe())
        checked += 1
    assert checked >= 25, f"only {checked} of 40 cases were in the fast path's scope"


def test_logits_1e8_apart_cancel_exactly():
    x = np.array([[1e8, 0.0], [1e8, 1e8 - 8]], dtype=np.float32)  # 1e8 - 8: the float32 below 1e8
    case = Case("cross_entropy", {"input": x, "target": np.array([1, 0])}, {"reduction": "none"}, "float32")
    fast = fast_evaluation(case.fn, case.args, case.kwargs, case.dtype)
    assert fast is not None
    assert fast.rounded.tolist() == _mpmath_oracle(case)[0].tolist() == [1e8, float(np.float32(np.log1p(np.exp(-8.0))))]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [
        ("cross_entropy", {"input": np.array([[0.0, -np.inf]]), "target": np.array([0])}, {}),  # masked class
        ("cross_entropy", {"input": np.array([[0.0, 1.0]]), "target": np.array([0])}, {"label_smoothing": 0.1}),
        ("cross_entropy", {"input": np.array([[0.0, 1.0]]), "target": np.array([[0.5, 0.5]])}, {}),  # probabilities
        ("cross_entropy", {"input": np.array([[0.0, 1.0]]), "target": np.array([-100])}, {}),  # mean over nothing
        ("cross_entropy", {"input": np.array([[0.0, 1.0]]), "target": np.array([2])}, {}),  # the spec rejects it
        ("binary_cross_entropy_with_logits", {"input": np.array([np.inf]), "target": np.array([1.0])}, {}),
        ("binary_cross_entropy", {"input": np.array([0.5]), "target": np.array([1.0])}, {}),  # no fast path
    ],
)
def test_special_values_and_invalid_input_are_left_to_the_mpmath_oracle(fn, args, kwargs):
    assert fast_evaluation(fn, args, kwargs, "float64") is None


def test_a_ball_across_a_rounding_boundary_is_undecided():
    import flint

    fmt = format_of("float32")
    midpoint = 1.0 + 2.0**-24  # halfway between 1 and the next float32
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 200
        straddling = flint.arb(midpoint, 2.0**-60)
        assert _decide(_Balls([straddling], (1,)), fmt) is None
        exact_tie = flint.arb(midpoint)  # a point: ties go to even, i.e. to 1
        rounded, _ = _decide(_Balls([exact_tie], (1,)), fmt)
        assert rounded.tolist() == [1.0]
        above = flint.arb(midpoint + 2.0**-40, 2.0**-60)
        assert _decide(_Balls([above], (1,)), fmt)[0].tolist() == [float(np.nextafter(np.float32(1), np.float32(2)))]
    finally:
        flint.ctx.prec = saved


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_unbatched_input_has_the_mpmath_oracles_types(reduction):
    """A ``(C)`` input gives a 0-d object array for ``none`` and an mpf when reduced."""
    from suites.checks import evaluate_oracle

    case = Case("cross_entropy", {"input": np.array([1.0, 2.0, 0.5]), "target": np.array(1)}, {"reduction": reduction}, "float64")
    fast = fast_evaluation(case.fn, case.args, case.kwargs, case.dtype)
    holder = {}

    def evaluate():
        holder["terms"] = case.call(spec_for(case.fn).terms)
        return holder["terms"].value

    exact, rounded = correctly_rounded(evaluate, case.dtype)
    assert type(fast.exact) is type(exact) and np.shape(fast.exact) == np.shape(exact)
    assert fast.terms.terms.shape == holder["terms"].terms.shape
    assert fast.rounded.shape == rounded.shape and fast.rounded.tolist() == rounded.tolist()
    assert evaluate_oracle(case).rounded.tolist() == rounded.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_candidate_check_decides_as_endpoint_rounding(dtype):
    """``_decide``'s vectorized candidate check against rounding both endpoints
    (``_decide_one``) ball by ball: values around the format's rounding boundaries,
    zeros, subnormals, the overflow threshold, points and wide balls."""
    import flint

    from oracle.fast import _decide_one

    fmt = format_of(dtype)
    rng = np.random.default_rng(7)
    np_dtype = fmt.numpy_dtype
    floats = np.concatenate([
        rng.normal(0.0, 10.0, 40),
        [0.0, fmt.smallest_subnormal, -fmt.smallest_subnormal, fmt.smallest_normal, fmt.max_finite, -fmt.max_finite],
    ]).astype(np_dtype).astype(np.float64)
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 256
        balls = []
        for v in floats.tolist():
            with np.errstate(over="ignore"):  # the next float above max_finite is inf
                up = float(np.nextafter(np.array(v, dtype=np_dtype), np.array(np.inf, dtype=np_dtype)))
            for point in (flint.arb(v), (flint.arb(v) + up) / 2):  # a float, a half-way point
                for radius in (0.0, 2.0**-200, 2.0**-(fmt.p + 4) * max(abs(v), fmt.smallest_subnormal)):
                    for shift in (0.0, 2.0**-120, -(2.0**-120)):
                        balls.append(flint.arb(point + shift, radius) if radius else point + shift)
        for ball in balls:
            expected = _decide_one(ball, fmt)
            decided = _decide(_Balls([ball], (1,)), fmt)
            if expected is None:
                assert decided is None, ball
            else:
                assert decided is not None, ball
                assert decided[0].tolist() == [expected[0]] and np.signbit(decided[0][0]) == np.signbit(expected[0]), ball
    finally:
        flint.ctx.prec = saved
