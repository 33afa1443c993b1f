"""Benchmark: how fast the oracle is, next to the ways it could have been built.

Prints, for ``cross_entropy`` (class-index targets, 32 classes) and
``binary_cross_entropy_with_logits`` at ``reduction="none"``, correctly rounded to
float64:

* ``oracle``      -- lossconf's oracle as the suite runs it (``suites.checks.evaluate_oracle``):
                     for these two losses in their common form that is the arb fast path
                     (``oracle/fast.py``: values in proven balls, the error model's
                     condition numbers in float64);
* ``oracle-mpmath`` -- the mpmath oracle alone (``oracle.<loss>_terms`` in
                     ``oracle.core.correctly_rounded``: exact terms, Ziv's loop at p and
                     p + 64 bits, midpoint re-evaluation, condition numbers in mpmath):
                     what every case outside the fast path's scope costs;
* ``mpmath-60``   -- a naive textbook loop in mpmath at a fixed 60 digits, rounded with
                     ``float()``: fast, but with *no* rounding guarantee;
* ``mpmath-ziv``  -- the same naive loop, made correctly rounded the cheapest honest way
                     (evaluate at 60 and 80 digits, accept when both round alike, else
                     double): the guarantee the oracle gives, without its condition numbers;
* ``arb``         -- python-flint's arb (ball arithmetic, C): the naive formula in balls,
                     accepted when every ball's endpoints round to one float64, else the
                     precision doubles: the same guarantee, proven by the balls.

and how the oracle's time grows with the number of elements. With ``--conformance-runs``
it also times whole conformance runs (default profile), wall and CPU seconds (user+sys
of pytest and its workers, which a shared machine's load barely inflates): one adapter
with ``-n 2`` and ``-n 1`` (the speed-up of ``-n 2``), and three with ``-n 2``, without
and with the oracle's on-disk cache (suites/oracle_cache.py; each run starts from an
empty one). Figures are elements
per second (an element is one logit). Run from the checkout::

    .venv/bin/python benchmarks/oracle_throughput.py                # 1e3 and 1e4 elements
    .venv/bin/python benchmarks/oracle_throughput.py --sizes 1e3 1e4 1e5 1e6 --only oracle
    .venv/bin/python benchmarks/oracle_throughput.py --sizes 1e3 --conformance-runs
    .venv/bin/python benchmarks/oracle_throughput.py --no-throughput --conformance-runs \
        --select='--loss nll_loss --dtype float32' --runs 'tensorflow'   # a labelled selection

Timings are wall-clock on whatever else the machine runs: note ``uptime``'s load
next to figures you quote. Nothing here asserts a speed; it measures.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oracle.core import correctly_rounded
from suites.cases import Case
from suites.checks import _evaluate_cached, evaluate_oracle
from suites.registry import spec_for

N_CLASSES = 32
METHODS = ("oracle", "oracle-mpmath", "mpmath-60", "mpmath-ziv", "arb")


# ------------------------------------------------------------------ the inputs


def ce_inputs(elements: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows = max(1, elements // N_CLASSES)
    x = rng.normal(0.0, 4.0, size=(rows, N_CLASSES))
    y = rng.integers(0, N_CLASSES, size=rows)
    return x, y


def bce_inputs(elements: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(0.0, 8.0, size=elements)
    y = rng.uniform(0.0, 1.0, size=elements)
    return x, y


# ------------------------------------------------------------------ the four methods


def run_oracle(fn: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    _evaluate_cached.cache_clear()  # measure an evaluation, not a cache hit
    case = Case(fn, {"input": x, "target": y}, {"reduction": "none"}, "float64")
    return evaluate_oracle(case).rounded


def run_oracle_mpmath(fn: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    case = Case(fn, {"input": x, "target": y}, {"reduction": "none"}, "float64")
    terms = spec_for(fn).terms
    return correctly_rounded(lambda: case.call(terms).value, "float64")[1]


def _mp_ce(x: np.ndarray, y: np.ndarray) -> list:
    out = []
    for row, k in zip(x.tolist(), y.tolist()):
        m = max(row)
        s = mpmath.fsum(mpmath.exp(mpmath.mpf(v) - m) for v in row)
        out.append(m + mpmath.log(s) - row[k])
    return out


def _mp_bce(x: np.ndarray, y: np.ndarray) -> list:
    out = []
    for xv, yv in zip(x.tolist(), y.tolist()):
        xm = mpmath.mpf(xv)
        out.append(max(xm, 0) - xm * yv + mpmath.log1p(mpmath.exp(-abs(xm))))
    return out


_MP = {"cross_entropy": _mp_ce, "binary_cross_entropy_with_logits": _mp_bce}


def run_mpmath_60(fn: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with mpmath.workdps(60):
        return np.array([float(v) for v in _MP[fn](x, y)])


def run_mpmath_ziv(fn: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    digits = 60
    while digits <= 2000:
        with mpmath.workdps(digits):
            low = np.array([float(v) for v in _MP[fn](x, y)])
        with mpmath.workdps(digits + 20):
            high = np.array([float(v) for v in _MP[fn](x, y)])
        if np.array_equal(low, high):
            return high
        digits *= 2
    raise RuntimeError("mpmath-ziv undecided")


def _arb_ce(x, y, arb):
    out = []
    for row, k in zip(x.tolist(), y.tolist()):
        m = max(row)
        s = arb(0)
        for v in row:
            s += (arb(v) - m).exp()
        out.append(s.log() + m - row[k])
    return out


def _arb_bce(x, y, arb):
    out = []
    for xv, yv in zip(x.tolist(), y.tolist()):
        xa = arb(xv)
        out.append(arb(max(xv, 0.0)) - xa * yv + (-abs(xa)).exp().log1p())
    return out


def run_arb(fn: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    import flint

    build = {"cross_entropy": _arb_ce, "binary_cross_entropy_with_logits": _arb_bce}[fn]
    saved = flint.ctx.prec
    bits = 53 + 40
    try:
        while bits <= 1 << 14:
            flint.ctx.prec = bits
            balls = build(x, y, flint.arb)
            lo = np.array([float(b.lower()) for b in balls])
            hi = np.array([float(b.upper()) for b in balls])
            # arb's float() of an endpoint rounds to nearest: equal endpoints => decided.
            if np.array_equal(lo, hi):
                return hi
            bits *= 2
    finally:
        flint.ctx.prec = saved
    raise RuntimeError("arb undecided")


RUNNERS: dict[str, Callable[[str, np.ndarray, np.ndarray], np.ndarray]] = {
    "oracle": run_oracle,
    "oracle-mpmath": run_oracle_mpmath,
    "mpmath-60": run_mpmath_60,
    "mpmath-ziv": run_mpmath_ziv,
    "arb": run_arb,
}


# ------------------------------------------------------------------ measuring


def timed(run: Callable[[], np.ndarray], min_seconds: float) -> tuple[float, np.ndarray]:
    """Best wall time of repeated runs (at least one, more while under ``min_seconds``)."""
    best, spent, result = math.inf, 0.0, None
    while spent < min_seconds or result is None:
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if elapsed > min_seconds:
            break
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4], help="element counts")
    parser.add_argument("--only", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--conformance-runs", action="store_true", help="also time whole conformance runs")
    parser.add_argument("--select", default="", metavar="ARGS",
                        help="pytest arguments narrowing the conformance runs, e.g. --select='--loss nll_loss'")
    parser.add_argument("--no-throughput", action="store_true", help="only the conformance runs")
    parser.add_argument("--runs", nargs="+", default=None, metavar="LABEL",
                        help="only the conformance runs whose label contains one of these (e.g. 'n 1' 'jax')")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="repeat small runs up to this long")
    args = parser.parse_args(argv)

    if args.no_throughput:
        args.sizes, args.only = [], []
    print("# oracle throughput, float64 correctly rounded, reduction='none'")
    print(f"# python {platform.python_version()}, mpmath {mpmath.__version__} backend {mpmath.libmp.BACKEND}, "
          f"numpy {np.__version__}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    header = f"{'loss':34} {'elements':>9} " + " ".join(f"{m:>14}" for m in args.only)
    print(header + "   (elements/s; x = speed relative to mpmath-ziv)")
    rng = np.random.default_rng(20261129)
    for method in args.only:  # warm up: imports (flint, mpmath's caches) are not throughput
        RUNNERS[method]("binary_cross_entropy_with_logits", *bce_inputs(4, rng))
    for fn, make in (("cross_entropy", ce_inputs), ("binary_cross_entropy_with_logits", bce_inputs)):
        for size in args.sizes:
            x, y = make(int(size), rng)
            elements = x.size
            rates, results = {}, {}
            for method in args.only:
                seconds, results[method] = timed(functools.partial(RUNNERS[method], fn, x, y), args.min_seconds)
                rates[method] = elements / seconds
            # The correctly rounded methods must agree bit for bit; say so if they don't.
            guaranteed = [m for m in ("oracle", "oracle-mpmath", "mpmath-ziv", "arb") if m in results]
            for m in guaranteed[1:]:
                if not np.array_equal(results[m], results[guaranteed[0]]):
                    print(f"!! {m} and {guaranteed[0]} disagree on {fn} at {elements} elements")
            base = rates.get("mpmath-ziv")
            cells = []
            for m in args.only:
                ratio = f" x{rates[m] / base:.2f}" if base else ""
                cells.append(f"{rates[m]:>8.0f}{ratio:>6}")
            print(f"{fn:34} {elements:>9} " + " ".join(f"{c:>14}" for c in cells), flush=True)
    if args.conformance_runs:
        import shlex

        conformance_runs(shlex.split(args.select), args.runs)
    return 0


THREE = ["--adapter", "torch", "--adapter", "tensorflow", "--adapter", "jax"]
#: (label, pytest arguments, oracle cache): "fresh" starts from an empty --lossconf-cache,
#: "off" runs without one (as before the cache existed).
CONFORMANCE_RUNS = [
    ("torch, -n 2", ["--adapter", "torch", "-n", "2"], "fresh"),
    ("torch, -n 1", ["--adapter", "torch", "-n", "1"], "fresh"),
    ("torch + tensorflow + jax, -n 2, no cache", [*THREE, "-n", "2"], "off"),
    ("torch + tensorflow + jax, -n 2, oracle cache", [*THREE, "-n", "2"], "fresh"),
]


def conformance_runs(selection: list[str] | None = None, only: list[str] | None = None) -> None:
    """Wall and CPU time of whole default-profile runs, each in a fresh process, report dir
    and cache; ``selection`` (pytest arguments such as ``--loss nll_loss``) narrows every run."""
    import resource
    import secrets
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    selection = selection or []
    print(f"\n# conformance runs (default profile){' on ' + ' '.join(selection) if selection else ''}")
    print(f"{'run':44} {'wall s':>8} {'cpu s':>8}  rc  pytest summary  (load 1-min before/after)")
    walls = {}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "LOSSCONF_PROFILE", "LOSSCONF_CACHE_DIR")}
    for label, extra, cache in CONFORMANCE_RUNS:
        if only and not any(o in label for o in only):
            continue
        with tempfile.TemporaryDirectory() as report:
            cache_arg = ["--lossconf-cache", "off" if cache == "off" else str(Path(report) / "cache")]
            # A drawn seed, printed, so that a run's failures can be regenerated
            # (--hypothesis-seed in the selection wins).
            seed = [] if "--hypothesis-seed" in " ".join(selection) else ["--hypothesis-seed", str(secrets.randbits(32))]
            command = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--assert=plain",
                       "--report-dir", report, *cache_arg, *extra, *seed, *selection]
            load = os.getloadavg()[0]
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
            walls[label] = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
            lines = done.stdout.strip().splitlines()
            summary = lines[-1] if lines else done.stderr[-200:]
            print(f"{label:44} {walls[label]:8.1f} {cpu:8.1f}  {done.returncode:2d}  {summary}  "
                  f"(load {load:.2f}/{os.getloadavg()[0]:.2f})", flush=True)
            # A random profile's failures are new findings or regressions: name them (the
            # report directory is temporary), with the line that says how to rerun the run.
            for line in [x for x in lines if x.startswith(("FAILED ", "ERROR "))][:20]:
                print(f"    {line[:300]}", flush=True)
            if seed:
                print(f"    rerun: {' '.join(seed)}", flush=True)
    if "torch, -n 1" in walls and "torch, -n 2" in walls:
        print(f"speed-up of -n 2 over -n 1 (torch): x{walls['torch, -n 1'] / walls['torch, -n 2']:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
