"""Where a conformance run's time goes: oracle vs adapter vs the rest, per test kind.

    python benchmarks/profile_run.py --adapter jax --hypothesis-profile gate
    python benchmarks/profile_run.py --adapter torch --loss cross_entropy --dtype float32

Runs ``pytest suites`` in this process, serially (the figures are per process; a
``-n 2`` run splits the same work over two), with any extra pytest arguments, and
prints a table: per test function (``test_matches_oracle``, ``test_properties``, ...)
its items, CPU and wall seconds, and within them the seconds spent

* (CPU seconds) in the oracle (``suites.checks`` and ``suites.gradients``' cached evaluations,
  cache misses only; hits are counted),
* in the adapter (``call_adapter``, ``call_adapter_grad``: the framework's call,
  its conversions, and for JAX its tracing and compilation),
* elsewhere (Hypothesis's generation and shrinking, the verdict, the recorder).

For JAX it also prints the compilation events ``jax.monitoring`` reports (number of
XLA compilations, seconds tracing, lowering and compiling, persistent-cache hits) and
the hits and misses of the adapter's executable cache (``adapters/_jax_executables.py``:
a hit is neither traced nor compiled, so it leaves no compilation event).
CPU seconds are the process's user+sys time, which a shared machine's load barely
inflates; the load average is printed with them.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Profile:
    """A pytest plugin accumulating time per test function and per component."""

    def __init__(self) -> None:
        self.items: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # count, wall, cpu
        self.parts: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.jax_events: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.current = "(collection)"
        self._depth = 0
        self.disk = None
        self.recompiles: dict[str, int] = defaultdict(int)

    # -- wrappers ----------------------------------------------------------------------

    def timed(self, part: str, function, *, cached=None):
        profile = self

        def wrapper(*args, **kwargs):
            if profile._depth:  # nested (an oracle inside an oracle): counted by the outer one
                return function(*args, **kwargs)
            misses = cached.cache_info().misses if cached is not None else None
            profile._depth += 1
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                profile._depth -= 1
                elapsed = time.process_time() - start
                profile.parts[(profile.current, part)] += elapsed
                if cached is not None:
                    hit = cached.cache_info().misses == misses
                    profile.counts[f"{part} {'hits' if hit else 'misses'}"] += 1

        return wrapper

    def install(self) -> None:
        import suites.checks as checks
        import suites.gradients as gradients
        import suites.properties as properties

        checks._evaluate_cached = self.timed("oracle", checks._evaluate_cached, cached=checks._evaluate_cached)
        gradients._evaluate_cached = self.timed(
            "oracle", gradients._evaluate_cached, cached=gradients._evaluate_cached
        )
        adapter_call = self.timed("adapter", checks.call_adapter)
        checks.call_adapter = adapter_call
        properties.call_adapter = adapter_call
        gradients.call_adapter_grad = self.timed("adapter", gradients.call_adapter_grad)
        try:
            import jax.monitoring
        except ImportError:
            return

        def listener(event: str, duration: float, **_: object) -> None:
            self.jax_events[event][0] += 1
            self.jax_events[event][1] += duration

        jax.monitoring.register_event_duration_secs_listener(listener)

    def install_torch_compile(self) -> None:
        """Count Dynamo's recompilations by reason (its ``recompiles`` log, captured here only)."""
        import logging

        import torch._logging

        torch._logging.set_logs(recompiles=True)
        profile = self

        class Reasons(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if getattr(record, "_lossconf_counted", False):  # propagated to a second logger
                    return
                record._lossconf_counted = True
                lines = [line.strip() for line in record.getMessage().splitlines()]
                failures = [line for line in lines if line.startswith("- ")] or lines[:1]
                # one row per kind of guard (the first that failed): numbers and frame ids vary
                profile.recompiles[re.sub(r"\b\d+\b|0x[0-9a-f]+", "N", failures[0])[:120]] += 1

        handler = Reasons()
        for name in ("torch._dynamo", "torch._dynamo.convert_frame", "torch._dynamo.guards"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
        # the artifact's own stderr handler stays; pytest captures it per test

    # -- pytest hooks --------------------------------------------------------------------

    import pytest as _pytest

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        name = getattr(item, "originalname", item.name)
        self.current = name
        wall, cpu = time.perf_counter(), _cpu()
        yield
        row = self.items[name]
        row[0] += 1
        row[1] += time.perf_counter() - wall
        row[2] += _cpu() - cpu

    def pytest_sessionfinish(self, session):
        from suites import oracle_cache

        self.disk = oracle_cache.current()  # before conftest's cleanup turns it off

    # -- report --------------------------------------------------------------------------

    def print(self, total_wall: float, total_cpu: float) -> None:
        print("\nCPU seconds (user+sys of this process) unless marked wall")
        print(f"{'test function':<34} {'items':>6} {'wall s':>8} {'cpu s':>8} {'oracle':>9} {'adapter':>9} {'other':>8}")
        sums = [0, 0.0, 0.0, 0.0, 0.0]
        for name, (count, wall, cpu) in sorted(self.items.items(), key=lambda kv: -kv[1][1]):
            oracle, adapter = self.parts[(name, "oracle")], self.parts[(name, "adapter")]
            print(f"{name:<34} {count:6d} {wall:8.1f} {cpu:8.1f} {oracle:9.1f} {adapter:9.1f} {cpu - oracle - adapter:8.1f}")
            for i, v in enumerate((count, wall, cpu, oracle, adapter)):
                sums[i] += v
        print(f"{'all items':<34} {sums[0]:6d} {sums[1]:8.1f} {sums[2]:8.1f} {sums[3]:9.1f} {sums[4]:9.1f} {sums[2] - sums[3] - sums[4]:8.1f}")
        print(f"{'whole process (import, collection)':<34} {'':6} {total_wall:8.1f} {total_cpu:8.1f}")
        print("oracle in-process cache: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))
        disk = self.disk
        if disk is not None:
            print(f"oracle on-disk cache ({disk.directory}): {disk.hits} hits, {disk.misses} misses")
        executables = sys.modules.get("adapters._jax_executables")
        if executables is not None and any(executables.TOTALS.values()):
            totals = executables.TOTALS
            print(
                f"jax executable cache (adapters/_jax_executables.py): {totals['hits']} hits (no tracing), "
                f"{totals['misses']} misses (traced, lowered, compiled, stored), {totals['rejected']} entries rejected"
            )
        if self.jax_events:
            print("\njax.monitoring events (count, wall seconds):")
            for event, (count, seconds) in sorted(self.jax_events.items(), key=lambda kv: -kv[1][1]):
                print(f"  {event:<64} {count:6d} {seconds:8.1f}")
        self.print_torch_compile()
        print(f"load average at end {os.getloadavg()}")

    def print_torch_compile(self) -> None:
        """Dynamo/Inductor's own counters, and the CPU of finished child processes (g++)."""
        if "adapters.torch_compile" not in sys.modules:
            return
        from torch._dynamo.utils import counters

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        print("\ntorch.compile (torch._dynamo.utils.counters):")
        print(f"  unique graphs {counters['stats']['unique_graphs']}")
        print(f"  Inductor FX graph cache: {counters['inductor']['fxgraph_cache_hit']} hits, "
              f"{counters['inductor']['fxgraph_cache_miss']} misses, "
              f"{counters['inductor']['fxgraph_cache_bypass']} bypassed")
        print(f"  AOTAutograd cache: {counters['aot_autograd']['autograd_cache_hit']} hits, "
              f"{counters['aot_autograd']['autograd_cache_miss']} misses, "
              f"{counters['aot_autograd']['autograd_cache_bypass']} bypassed")
        print(f"  finished child processes (g++, compile workers that exited): "
              f"{children.ru_utime + children.ru_stime:.1f} CPU s")
        if self.recompiles:
            print("  recompilations by guard (Dynamo's recompiles log):")
            for reason, count in sorted(self.recompiles.items(), key=lambda kv: -kv[1])[:15]:
                print(f"    {count:5d}  {reason}")


def main(argv: list[str] | None = None) -> int:
    import pytest

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--report-dir") for a in args):
        import tempfile

        args += ["--report-dir", tempfile.mkdtemp(prefix="lossconf-profile-")]
    profile = Profile()
    profile.install()
    if any("torch-compile" in a for a in args):
        profile.install_torch_compile()
    print(f"profile of: pytest suites {' '.join(args)}  (load average at start {os.getloadavg()})")
    wall, cpu = time.perf_counter(), _cpu()
    os.chdir(ROOT)
    code = pytest.main(["suites", "-q", "-p", "no:cacheprovider", "--no-header", *args], plugins=[profile])
    profile.print(time.perf_counter() - wall, _cpu() - cpu)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
