"""Benchmark of the ``gate`` profile: wall time of the whole loss set per framework.

    python benchmarks/gate.py                       # every built-in adapter, serial
    python benchmarks/gate.py --adapter torch -n 2  # one adapter, two xdist workers
    python benchmarks/gate.py --check               # exit 1 when one exceeds the target
    python benchmarks/gate.py --adapter jax -n 2 --warm
                                                    # jax with empty caches, then again with them warm

Each run gets its own empty ``--lossconf-cache`` (the oracle's results, JAX's compilation
cache and the jax adapter's compiled programs, suites/caches.py) unless ``--cache DIR`` names
one (``--cache off``: none); with ``--warm`` each adapter runs twice, the second time with the
first run's cache, as a CI job that keeps the directory between runs does. A
``LOSSCONF_JAX_EXECUTABLES`` in the environment is dropped: the run's cache decides.

The figures: wall seconds (monotonic clock), CPU seconds (user + sys of the run and its
workers, ``getrusage(RUSAGE_CHILDREN)``), and the 1-minute load average before and after.
On a shared machine the wall time is inflated by the other processes and the CPU time barely:
a quiet 2-core machine's wall time is then about CPU / 2 (two workers busy) plus the serial
part and the workers' uneven finish: the quiet runs README "CI" quotes took CPU / 2 + 2.4 s
(torch), + 3.0 s (tensorflow) and + 25 s (jax, warm, long items at the end).

Each adapter runs in its own ``python -m pytest suites --adapter A --hypothesis-profile
gate`` subprocess (everything a CI job pays: interpreter and framework start-up,
collection, the oracle, the report), timed with a monotonic clock. The figures
printed are what README "CI" quotes; since a shared machine's load inflates them,
the load average before and after each run is printed with them.

The target -- under 60 s per framework on a 2-core machine -- is the issue's
budget for a per-pull-request gate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 60.0

# JAX compiles every distinct shape under jax.jit; its persistent compilation cache
# (JAX_COMPILATION_CACHE_DIR, with JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 and
# JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0) makes a derandomized gate's second run
# reuse the first run's executables. Printed when set, since it changes the figures.
JAX_CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_")


def run_gate(adapter: str, workers: int, tmp: Path, cache: str) -> dict:
    report_dir = tmp / adapter
    cmd = [
        sys.executable, "-m", "pytest", "suites", "--adapter", adapter, "--hypothesis-profile", "gate",
        "-p", "no:cacheprovider", "-q", "--report-dir", str(report_dir), "--lossconf-cache", cache,
        "--assert=plain",  # as `make conformance`: no assert in suites/, no rewriting of the plugins' modules
    ]
    if workers > 1:
        cmd += ["-n", str(workers)]
    # the run's --lossconf-cache decides every cache, the jax adapter's executables included
    dropped = ("PYTEST_ADDOPTS", "LOSSCONF_PROFILE", "LOSSCONF_CACHE_DIR", "LOSSCONF_JAX_EXECUTABLES")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    load_before = os.getloadavg()[0]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the run and its workers: unlike wall time, barely inflated by
    # other processes on a shared machine, so the better figure to compare runs by.
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    load_after = os.getloadavg()[0]
    verdicts: Counter[str] = Counter()
    examples = 0
    results = report_dir / "results.json"
    if results.is_file():
        records = json.loads(results.read_text())["records"]
        verdicts.update(r["verdict"] for r in records)
        examples = sum(r.get("examples") or 0 for r in records)
    return {
        "adapter": adapter, "workers": workers, "wall_s": wall, "cpu_s": cpu, "exit": proc.returncode,
        "items": sum(verdicts.values()), "verdicts": dict(verdicts), "cases": examples,
        "load_before": load_before, "load_after": load_after,
        "tail": "\n".join((proc.stdout + proc.stderr).splitlines()[-5:]),
        "expectations": [
            line for line in proc.stdout.splitlines() if line.startswith(("expectations:", "XPASS"))
        ],
    }


def main(argv: list[str] | None = None) -> int:
    from adapters import BUILTIN_ADAPTERS
    from adapters._loading import OPT_IN_ADAPTERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", action="append", default=[], help="adapter (repeatable; default: every built-in but the opt-in torch-compile ones)")
    parser.add_argument("-n", "--workers", type=int, default=1, help="pytest-xdist workers (default 1: serial)")
    parser.add_argument("--target", type=float, default=TARGET_S, help="seconds allowed per framework")
    parser.add_argument("--check", action="store_true", help="exit 1 when an adapter exceeds the target")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--cache", metavar="DIR", help="--lossconf-cache for every run (default: a fresh empty one each; 'off')")
    parser.add_argument("--warm", action="store_true", help="run each adapter twice, the second time with the first's cache")
    args = parser.parse_args(argv)

    adapters = args.adapter or [a for a in BUILTIN_ADAPTERS if a not in OPT_IN_ADAPTERS]
    print(f"gate profile benchmark: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"target {args.target:.0f} s per framework; workers {args.workers}; load average at start {os.getloadavg()}")
    for key in sorted(k for k in os.environ if k.startswith(JAX_CACHE_ENV)):
        print(f"{key}={os.environ[key]}")
    print(f"{'adapter':<12} {'wall s':>7} {'cpu s':>7} {'items':>6} {'cases':>6}  verdicts  (exit; load 1-min before/after)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lossconf-gate-") as tmp:
        runs = [(adapter, attempt) for adapter in adapters for attempt in (("cold", "warm") if args.warm else ("",))]
        for adapter, attempt in runs:
            cache = args.cache or str(Path(tmp) / f"cache-{adapter}")
            row = run_gate(adapter, args.workers, Path(tmp) / f"run-{attempt}", cache)
            row["adapter"] = adapter_label = f"{adapter} {attempt}".strip()
            rows.append(row)
            verdicts = " ".join(f"{k}={v}" for k, v in sorted(row["verdicts"].items()))
            flag = "" if row["wall_s"] < args.target else "  OVER TARGET"
            print(
                f"{adapter_label:<12} {row['wall_s']:7.1f} {row['cpu_s']:7.1f} {row['items']:6d} {row['cases']:6d}  {verdicts}  "
                f"(exit {row['exit']}; load {row['load_before']:.2f}/{row['load_after']:.2f}){flag}",
                flush=True,
            )
            for line in row["expectations"]:
                print(f"  {line}")
            if row["items"] == 0:
                print("  no records:\n  " + row["tail"].replace("\n", "\n  "))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    over = [r["adapter"] for r in rows if r["wall_s"] >= args.target]
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
