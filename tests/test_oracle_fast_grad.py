"""The arb gradient fast path (oracle/fast_grad.py) against the mpmath oracle.

An optimisation may only reproduce the mpmath oracle: the correctly rounded gradient
bit for bit, the exact values to the float64 midpoint's accuracy, and the error model's
bound (``suites.large_gradients.gradient_bound_arrays`` on its float64 condition) to
float64 accuracy -- or decline. The fallbacks (arb comparisons, endpoint rounding,
doubled precision, the mpmath oracle) are forced with a low starting precision.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flint")

from oracle.core import format_of
from oracle.fast_grad import cross_entropy_grad_component, cross_entropy_grad_fast
from suites.cases import Case
from suites.gradients import GradientUndefined, evaluate_gradient, gradient_case
from suites.large_gradients import gradient_bound_arrays

DTYPES = ["float32", "bfloat16", "float16", "float64"]


def _random_case(rng: np.random.Generator, dtype: str) -> Case:
    np_dtype = format_of(dtype).numpy_dtype
    spread = rng.choice([1.0, 30.0, 300.0, 3e4])
    n, c = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    with np.errstate(over="ignore"):  # float16 overflows to -inf at 3e4 spread: declined
        x = rng.normal(0.0, spread, (n, c)).astype(np_dtype)
        if rng.random() < 0.2:  # a K-dimensional case
            x = rng.normal(0.0, spread, (n, c, 2)).astype(np_dtype)
    target = rng.integers(0, c, x.shape[:1] + x.shape[2:])
    if rng.random() < 0.3:
        target.reshape(-1)[0] = -100
    kwargs: dict = {"reduction": str(rng.choice(["none", "mean", "sum"]))}
    if rng.random() < 0.5:
        kwargs["weight"] = rng.uniform(0.0, 2.0, c).astype(np_dtype)
    if rng.random() < 0.4:
        kwargs["label_smoothing"] = float(rng.choice([0.1, 0.25, 1.0]))
    return gradient_case(Case("cross_entropy", {"input": x, "target": target}, kwargs, dtype), "input")


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.array([float(v) for v in values.reshape(-1)]).reshape(values.shape)


def _assert_matches_oracle(case: Case, **options) -> None:
    __tracebackhide__ = True
    try:
        oracle = evaluate_gradient(case)
    except GradientUndefined:
        assert cross_entropy_grad_fast(case.args["input"], case.args["target"], case.dtype, **case.kwargs) is None
        return
    fast = cross_entropy_grad_fast(case.args["input"], case.args["target"], case.dtype, **case.kwargs, **options)
    if not np.all(np.isfinite(case.args["input"].astype(np.float64))):
        assert fast is None  # -inf logits (masked classes, an overflowed cast): out of scope
        return
    assert fast is not None, case.describe()
    rounded = fast.rounded.astype(np.float64)
    exact = _as_float(oracle.exact)
    assert rounded.shape == oracle.rounded.shape
    np.testing.assert_array_equal(rounded, oracle.rounded, err_msg=case.describe())
    np.testing.assert_array_equal(np.signbit(rounded), np.signbit(oracle.rounded), err_msg="signed zeros")
    nonzero = exact != 0
    scale = np.maximum(np.abs(exact), 1e-300)
    assert np.all(np.abs(fast.exact - exact)[nonzero] <= 2.0**-50 * scale[nonzero]), case.describe()
    bound = gradient_bound_arrays(fast.exact, fast.condition, fast.scale, fast.summation, fast.count, format_of(case.dtype))
    np.testing.assert_allclose(bound, oracle.bound, rtol=1e-9, err_msg=case.describe())


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_cases_match_the_mpmath_oracle(dtype):
    rng = np.random.default_rng(list(map(ord, dtype)))
    for _ in range(12):
        _assert_matches_oracle(_random_case(rng, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_fallbacks_decide_what_the_vectorized_check_cannot(dtype):
    """At 8 bits every ball is too wide for the float64 check: the components go to arb
    comparisons and endpoint rounding, then doubled precision (16, 32, ... bits); with
    ``max_bits=16`` the rest go to the mpmath oracle. Both end where the oracle does."""
    rng = np.random.default_rng(5)
    case = gradient_case(Case("cross_entropy", {"input": rng.normal(0, 3, (3, 5)).astype(format_of(dtype).numpy_dtype),
                                                "target": np.array([0, 4, -100])},
                              {"reduction": "mean", "label_smoothing": 0.1}, dtype), "input")
    _assert_matches_oracle(case, start_bits=8)
    _assert_matches_oracle(case, start_bits=8, max_bits=16)
    fast = cross_entropy_grad_fast(case.args["input"], case.args["target"], dtype, start_bits=8, **case.kwargs)
    assert fast.fallbacks == 10 and fast.bits > 8  # the two non-ignored rows' 5 components each


def test_a_confident_row_keeps_the_target_gradient_tiny_and_negative():
    """Logits [0, 200], target 1: ``g_1 = p_1 - 1 = -e^-200 / (1 + e^-200)``, formed as
    ``-T/S`` without cancellation -- and so does the mpmath oracle (``SoftmaxRow.complement``;
    before, its ``p_1 - 1`` cancelled to an exact 0 at 146 bits: rounded 0.0 in float64)."""
    x, t = np.array([[0.0, 200.0]]), np.array([1])
    fast = cross_entropy_grad_fast(x, t, "float64", reduction="sum")
    assert fast.rounded.tolist() == [[1.3838965267367376e-87, -1.3838965267367376e-87]]
    case = gradient_case(Case("cross_entropy", {"input": x, "target": t}, {"reduction": "sum"}, "float64"), "input")
    assert evaluate_gradient(case).rounded.tolist() == fast.rounded.tolist()
    fast32 = cross_entropy_grad_fast(x.astype(np.float32), t, "float32", reduction="sum")
    assert fast32.rounded[0, 1] == 0 and np.signbit(fast32.rounded[0, 1])  # -1.4e-87 rounds to -0.0


def test_declines_outside_its_scope():
    x = np.zeros((2, 3), dtype=np.float32)
    assert cross_entropy_grad_fast(x, np.full((2, 3), 1 / 3, dtype=np.float32), "float32") is None  # probabilities
    assert cross_entropy_grad_fast(np.array([[np.inf, 0.0, 0.0]], dtype=np.float32), np.array([0]), "float32") is None
    assert cross_entropy_grad_fast(x, np.array([-100, -100]), "float32") is None  # a mean over nothing: NaN
    assert cross_entropy_grad_fast(x, np.array([0, 3]), "float32") is None  # a class out of range
    assert cross_entropy_grad_fast(x, np.array([0, 1]), "float32", weight=np.zeros(3, np.float32)) is None
    weight = np.array([1.0, -1.0, 0.5], np.float32)  # weights summing to 0 over the targets
    assert cross_entropy_grad_fast(x, np.array([0, 1]), "float32", weight=weight) is None


def test_one_component_for_messages():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (3, 4, 2)).astype(np.float32)
    t = np.array([[0, 1], [3, -100], [2, 2]])
    oracle = evaluate_gradient(gradient_case(Case("cross_entropy", {"input": x, "target": t}, {}, "float32"), "input"))
    for index in [(0, 0, 0), (1, 3, 0), (1, 2, 1), (2, 2, 1)]:
        value = cross_entropy_grad_component(x, t, index)
        assert abs(float(value - oracle.exact[index])) <= 1e-30 * max(abs(float(oracle.exact[index])), 1e-300) or value == oracle.exact[index]
