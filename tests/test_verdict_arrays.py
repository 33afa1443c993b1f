"""The vectorized verdict (suites/verdict_arrays.py) against the per-element judge, and
the LLM-scale gradient check (suites/large_gradients.py) with adapters right and wrong.

Agreement: on random outputs -- within the bound, beyond it, NaN, infinities, exact
special values, zero and NaN bounds -- ``judge_arrays`` gives ``judge``'s verdict: pass or
fail, the number failing, the worst element, its reason, and the figures (to float64
accuracy: ``judge`` forms the error at 64 bits from an mpf exact value). Teeth: an output
off by a little more than one component's bound fails, on that component.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from mpmath import mpf

from oracle.core import FORMATS, format_of, ulp
from suites.cases import MAX_WRITTEN_ELEMENTS, Case
from suites.gradients import gradient_case
from suites.verdict import judge
from suites.verdict_arrays import judge_arrays, ulp_array


def _synthetic(rng: np.random.Generator, dtype: str, n: int):
    """``(observed, exact, rounded, bound)``: exact values of every magnitude and a few
    special ones; observed near them (in and beyond the bound) or special."""
    fmt = format_of(dtype)
    np_dtype = fmt.numpy_dtype
    exact = rng.normal(0, 1, n) * np.exp2(rng.integers(-30, 30, n).astype(float))
    exact[rng.random(n) < 0.05] = 0.0
    specials = rng.random(n) < 0.05
    exact[specials] = rng.choice([np.inf, -np.inf, np.nan], int(specials.sum()))
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = exact.astype(np_dtype).astype(np.float64)
        bound = np.abs(exact) * fmt.unit_roundoff * rng.uniform(1, 16, n) + 16 * fmt.smallest_subnormal
        bound[rng.random(n) < 0.03] = 0.0
        bound[rng.random(n) < 0.02] = np.nan
        noise = rng.normal(0, 1, n) * np.where(np.isfinite(bound), bound, 0) * rng.choice([0.3, 1.2], n)
        observed = np.where(np.isfinite(exact), exact + noise, exact).astype(np_dtype)
        odd = rng.random(n) < 0.03
        observed[odd] = rng.choice([np.nan, np.inf, -np.inf], int(odd.sum())).astype(np_dtype)
    return observed, exact, rounded, bound


def _assert_same(per_element, arrays) -> None:
    __tracebackhide__ = True
    assert arrays.passed == per_element.passed
    assert arrays.failing == per_element.failing and arrays.elements == per_element.elements
    assert arrays.worst_index == per_element.worst_index
    assert arrays.reason == per_element.reason
    for field in ("max_normalized", "max_ulp", "max_relative", "observed", "rounded", "bound"):
        a, b = getattr(arrays, field), getattr(per_element, field)
        assert (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-12 * abs(b), (field, a, b)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("seed", range(4))
def test_judge_arrays_agrees_with_judge(dtype, seed):
    rng = np.random.default_rng(seed)
    observed, exact, rounded, bound = _synthetic(rng, dtype, 300)
    shape = (3, 100) if seed % 2 else (300,)
    observed, exact, rounded, bound = (a.reshape(shape) for a in (observed, exact, rounded, bound))
    fmt = format_of(dtype)
    exact_mpf = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        exact_mpf[idx] = mpf(float(exact[idx]))
    per_element = judge(observed.astype(np.float64), exact_mpf, rounded, bound, fmt)
    _assert_same(per_element, judge_arrays(observed, exact, rounded, bound, fmt))
    _assert_same(per_element, judge_arrays(observed, exact, rounded, bound, fmt, chunk=7))  # chunks agree


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_judge_arrays_agrees_when_everything_passes(dtype):
    rng = np.random.default_rng(11)
    fmt = format_of(dtype)
    exact = rng.normal(0, 1, 200) * np.exp2(rng.integers(-12, 12, 200).astype(float))
    rounded = exact.astype(fmt.numpy_dtype)
    bound = np.abs(exact) * fmt.unit_roundoff * 8 + 16 * fmt.smallest_subnormal
    exact_mpf = np.array([mpf(float(v)) for v in exact], dtype=object)
    per_element = judge(rounded.astype(np.float64), exact_mpf, rounded.astype(np.float64), bound, fmt)
    arrays = judge_arrays(rounded, exact, rounded, bound, fmt)
    assert per_element.passed and arrays.passed and arrays.max_ulp <= 0.5
    _assert_same(per_element, arrays)


def test_ulp_array_is_oracle_ulp():
    values = [0.0, 1.0, -1.0, 0.75, 2.0**-130, 2.0**-149, 65504.0, 1e5, 3e38, np.inf, -np.inf, 2.0**-14, 6e-8, 1.5, 1e-45]
    for name, fmt in FORMATS.items():
        got = ulp_array(np.array(values), fmt)
        assert got.tolist() == [ulp(v, fmt) for v in values], name


# ------------------------------------------------------------------ the LLM-scale check, small


def _case(dtype: str) -> Case:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3, (6, 4096)).astype(np.float32)
    x[np.arange(6), rng.integers(0, 4096, 6)] += 20
    target = rng.integers(0, 4096, 6)
    target[-1] = -100
    from suites.strategies import to_dtype

    return gradient_case(Case("cross_entropy", {"input": to_dtype(x.astype(np.float64), dtype), "target": target},
                              {"reduction": "mean"}, dtype, "llm_scale"), "input")


def _adapter(gradient):
    """A minimal adapter: its gradient is ``gradient(x64, target)`` in float64, cast to the dtype."""
    def grad(fn, args, kwargs, wrt="input"):
        x = np.asarray(args["input"])
        return gradient(x.astype(np.float64), np.asarray(args["target"])).astype(x.dtype)

    return SimpleNamespace(name="numpy-test", version=None, supports_grad=True, grad=grad, function=lambda fn: grad)


def _softmax_grad(x, t, denominator=None):
    """The textbook gradient of the mean: (softmax - onehot) / (number of kept rows)."""
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    kept = t != -100
    p[np.flatnonzero(kept), t[kept]] -= 1
    p[~kept] = 0
    return p / (denominator if denominator is not None else kept.sum())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_large_gradient_check_passes_a_right_gradient_and_fails_a_wrong_one(dtype):
    pytest.importorskip("flint")
    from suites.large_gradients import check_large_gradient_case, evaluate_large_gradient

    case = _case(dtype)
    right = check_large_gradient_case(_adapter(_softmax_grad), case, describe="tests._case")
    assert right.passed, right.message
    assert right.verdict.elements == 6 * 4096 and right.verdict.failing == 0
    # The mean's denominator off by one row (5 kept, divided by 6): every kept component
    # is 1/6 too small, far beyond the bound.
    wrong = check_large_gradient_case(_adapter(lambda x, t: _softmax_grad(x, t, 6)), case, describe="tests._case")
    assert not wrong.passed and wrong.verdict.failing > 0
    assert "failing:" in wrong.message and "tests._case" in wrong.message
    # One component moved by three times its bound (the error model's tolerance, no more):
    evaluation = evaluate_large_gradient(case)
    index = np.unravel_index(int(np.argmax(np.abs(evaluation.exact))), evaluation.exact.shape)

    def nudged(x, t):
        g = evaluation.rounded.astype(np.float64).copy()
        g[index] += 3 * evaluation.bound[index]
        return g

    one = check_large_gradient_case(_adapter(nudged), case, describe="tests._case")
    assert not one.passed and one.verdict.failing == 1 and one.verdict.worst_index == tuple(int(i) for i in index)

    def with_nan(x, t):
        g = evaluation.rounded.astype(np.float64).copy()
        g[0, 5] = np.nan
        return g

    nan = check_large_gradient_case(_adapter(with_nan), case, describe="tests._case")
    assert not nan.passed and nan.verdict.failing == 1 and "non-finite nan" in nan.verdict.reason


def test_a_large_case_is_recorded_by_its_summary():
    """A results record names an LLM-scale case by label and shapes: its literal would be
    gigabytes, and its expectation features may call the mpmath oracle."""
    from suites.checks import Outcome
    from suites.recording import _case_dict

    x = np.zeros((2, MAX_WRITTEN_ELEMENTS), dtype=np.float32)
    case = Case("cross_entropy", {"input": x, "target": np.array([0, 1])}, {"reduction": "mean"}, "float32", "llm_scale")
    adapter = SimpleNamespace(repro=lambda *a: pytest.fail("a repro of a large case was written"))
    record = _case_dict(Outcome(case, False, None, x, "short message"), adapter, features=True)
    assert record["case"].startswith("[llm_scale] cross_entropy(input: float32 (2, 65536), target: int64 (2,), reduction='mean')")
    assert record["repro"] == "" and record["features"] == [] and record["observed"] == ""
    small = Case("cross_entropy", {"input": x[:, :4], "target": np.array([0, 1])}, {}, "float32")
    assert _case_dict(Outcome(small, True, None, None, ""), None)["case"] == small.describe()


def test_a_large_case_is_never_written_out(tmp_path):
    """Neither a failure message nor the in-flight record (written before every adapter
    call) writes an LLM-scale case's values or asks for its repro: both name its shapes."""
    from suites.checks import failure_message
    from suites.isolation import FlightRecorder

    x = np.zeros((2, MAX_WRITTEN_ELEMENTS), dtype=np.float32)
    case = Case("cross_entropy", {"input": x, "target": np.array([0, 1])}, {}, "float32", "llm_scale")
    adapter = SimpleNamespace(name="fake", version="0", repro=lambda *a: pytest.fail("a repro of a large case was written"))
    message = failure_message(adapter, case, "a problem", None, None, x)
    assert len(message) < 1000 and "input: float32 (2, 65536)" in message, message
    flight = FlightRecorder(tmp_path, "gw0")
    flight.start_item(SimpleNamespace(nodeid="t::x", originalname="x", name="x"))
    flight.note_case(case, adapter)
    written = flight.path.read_text()
    assert len(written) < 1000 and "too many to write out" in written, written
    small = Case("cross_entropy", {"input": x[:, :4], "target": np.array([0, 1])}, {}, "float32")
    assert small.describe().startswith("cross_entropy(input=np.array(") and not small.too_large_to_write()
