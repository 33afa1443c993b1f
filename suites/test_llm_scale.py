"""LLM-scale cross entropy: a 128k-class vocabulary and a few hundred tokens.

``cross_entropy`` of ``(256, 131072)`` logits -- a language model's output for 256
tokens over a Llama-3-sized vocabulary -- with padding tokens at ``ignore_index``
and ``reduction="mean"``, in float32, bfloat16 and float16, against the oracle:

* the value: the oracle's arb fast path (``oracle/fast.py``) evaluates the 33.5 million
  logits in balls (160 to 480 s per dtype for torch on this 2-core machine, under load);
* the gradient w.r.t. ``input``, all 33.5 million components: each correctly rounded
  from an arb ball (``oracle/fast_grad.py``, one row at a time, about 0.37 CPU s per
  token), bounded and judged in float64 NumPy (``suites/large_gradients.py``,
  ``suites/verdict_arrays.py``). The exact gradient is computed once per dtype and kept
  for the other adapters (about 0.7 GB each, the last three dtypes). Each item prints its
  CPU seconds and the process's peak RSS (``-s`` shows them; README, Performance).

The items run in the ``thorough`` profile only (``--hypothesis-profile thorough`` or
``LOSSCONF_PROFILE=thorough``) and are skipped with that reason otherwise.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import settings

from .cases import Case
from .checks import ConformanceFailure, Unsupported
from .gradients import gradient_case
from .large_gradients import check_large_gradient_case, evaluate_large_gradient
from .test_conformance import _check, _finish, expected_gradient_deviation  # noqa: F401 (a fixture)

pytestmark = pytest.mark.conformance

TOKENS = 256
VOCABULARY = 131072
PADDING = 16  # trailing tokens at ignore_index, as a padded batch has


def llm_case(dtype: str, seed: int = 0) -> Case:
    """Logits a trained model produces: mostly N(0, 3), a confident peak per token."""
    from .strategies import to_dtype

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, (TOKENS, VOCABULARY)).astype(np.float32)
    target = rng.integers(0, VOCABULARY, TOKENS)
    peaks = rng.integers(0, VOCABULARY, TOKENS)
    x[np.arange(TOKENS), peaks] += rng.uniform(10.0, 30.0, TOKENS).astype(np.float32)
    target[-PADDING:] = -100
    return Case("cross_entropy", {"input": to_dtype(x.astype(np.float64), dtype), "target": target}, {"reduction": "mean"}, dtype, "llm_scale")


def _thorough_only() -> None:
    if settings._current_profile != "thorough":
        pytest.skip("LLM-scale cases run in the thorough profile (--hypothesis-profile thorough)")


@pytest.mark.cases("llm")
def test_llm_scale_cross_entropy(adapter, loss, dtype, recorder, expected_deviation):
    _thorough_only()
    if adapter.function(loss) is None:
        pytest.skip(f"unsupported: adapter {adapter.name!r} has no {loss}")
    _check(adapter, llm_case(dtype), recorder, expected_deviation)
    _finish(recorder)


@pytest.mark.cases("llm")
def test_llm_scale_cross_entropy_gradient(adapter, loss, dtype, recorder, expected_gradient_deviation):  # noqa: F811
    """The adapter's autodiff gradient of the LLM case's loss w.r.t. its 33.5 million logits
    against the exact one, every component within its error-model bound."""
    _thorough_only()
    if adapter.function(loss) is None:
        pytest.skip(f"unsupported: adapter {adapter.name!r} has no {loss}")
    if not adapter.supports_grad:
        pytest.skip(f"unsupported: adapter {adapter.name!r} computes no gradients (it has no grad function)")
    case = gradient_case(llm_case(dtype), "input")
    reset_peak_rss()
    start = time.process_time()
    try:
        evaluation = evaluate_large_gradient(case)
        oracle_s = time.process_time() - start
        outcome = check_large_gradient_case(adapter, case, describe=f"suites.test_llm_scale.llm_case({dtype!r}, seed=0)")
    except Unsupported as exc:
        pytest.skip(f"unsupported: {exc}")
    check_s = time.process_time() - start - oracle_s
    verdict = outcome.verdict
    print(
        f"\nLLM gradient {adapter.name} {dtype}: oracle {oracle_s:.1f} CPU s (0 when cached; {evaluation.bits} bits, "
        f"{evaluation.fallbacks} components off the vectorized check), adapter + verdict {check_s:.1f} CPU s, "
        f"peak RSS {peak_rss_gb():.2f} GB"
        + (f"; max {verdict.max_ulp:.3g} ULP, worst {verdict.max_normalized:.3g} x bound, "
           f"{verdict.failing} of {verdict.elements} beyond" if verdict else "")
    )
    if not outcome.passed and (expectation := expected_gradient_deviation(case)) is not None:
        recorder.add_deviation(expectation, outcome)
        return
    recorder.add(outcome)
    if not outcome.passed:
        raise ConformanceFailure(outcome.message)


def reset_peak_rss() -> None:
    """Reset this process's peak resident set (Linux: ``/proc/self/clear_refs``), so that
    :func:`peak_rss_gb` measures from here; a no-op elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_gb() -> float:
    """The process's peak resident set since :func:`reset_peak_rss` (VmHWM), in GB; NaN
    where ``/proc`` is absent."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")
