"""Time and memory of the LLM-scale gradient check, per dtype and adapter.

    python benchmarks/llm_gradient.py                                  # torch, tensorflow, jax x 3 dtypes
    python benchmarks/llm_gradient.py --adapters torch --dtypes bfloat16 --tokens 16

The case is ``suites/test_llm_scale.py``'s (``--tokens`` keeps the first N tokens, the
last 16 of them padding when N is 256). Per dtype: the exact gradient
(``suites.large_gradients.evaluate_large_gradient``: the arb fast path, the bound);
then per adapter: its autodiff gradient (``call_adapter_grad``) and the verdict
(``judge_arrays``). Each phase prints CPU seconds (user+sys of the whole process:
TensorFlow and XLA run several threads, so CPU may exceed wall), wall seconds, and the
peak resident set during the phase (VmHWM reset before it through /proc/self/clear_refs;
the phase's peak includes what earlier phases left in memory, e.g. the cached exact
gradient). The load average is printed: on a shared machine wall time is inflated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _phase(label: str, fn):
    from suites.test_llm_scale import peak_rss_gb, reset_peak_rss

    reset_peak_rss()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"  {label:<28} {cpu:8.1f} CPU s {wall:8.1f} wall s  peak RSS {peak_rss_gb():5.2f} GB", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", nargs="+", default=["torch", "tensorflow", "jax"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "float16"])
    parser.add_argument("--tokens", type=int, default=256, help="first N tokens of the case (default all 256)")
    args = parser.parse_args(argv)

    import numpy as np

    from adapters._loading import load_adapter
    from oracle.core import format_of
    from suites.gradients import call_adapter_grad, gradient_case
    from suites.large_gradients import evaluate_large_gradient
    from suites.test_llm_scale import llm_case
    from suites.verdict_arrays import judge_arrays

    adapters = [load_adapter(name) for name in args.adapters]
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}; "
          f"{os.cpu_count()} CPUs", flush=True)
    for dtype in args.dtypes:
        case = llm_case(dtype)
        if args.tokens != case.args["input"].shape[0]:
            n = args.tokens
            case = replace(case, args={"input": np.ascontiguousarray(case.args["input"][:n]),
                                       "target": case.args["target"][:n].copy()})
        case = gradient_case(case, "input")
        print(f"{dtype}: {case.args['input'].shape} logits", flush=True)
        evaluation = _phase("exact gradient (arb)", partial(evaluate_large_gradient, case))
        print(f"  ({evaluation.bits} bits; {evaluation.fallbacks} components off the vectorized check)")
        for adapter in adapters:
            try:
                observed = _phase(f"{adapter.name} gradient", partial(call_adapter_grad, adapter, case))
            except Exception as exc:  # an adapter failure is a result here, not the end of the run
                print(f"  {adapter.name}: FAIL, no gradient: {str(exc).splitlines()[0][:300]}", flush=True)
                continue
            verdict = _phase(f"{adapter.name} verdict", partial(
                judge_arrays, observed, evaluation.exact, evaluation.rounded, evaluation.bound, format_of(dtype)))
            print(f"  {adapter.name}: {'pass' if verdict.passed else 'FAIL'}; max {verdict.max_ulp:.3g} ULP, "
                  f"{verdict.max_relative:.3g} relative; worst {verdict.max_normalized:.3g} x bound at "
                  f"{verdict.worst_index}; {verdict.failing} of {verdict.elements} beyond", flush=True)
            observed = None  # the framework's gradient: freed before the next adapter's
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
