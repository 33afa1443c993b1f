"""``lossconf run`` and ``lossconf baseline``: the suite of an installed lossconf, from any directory.

    lossconf run --adapter mypkg.losses --hypothesis-profile gate    # = pytest suites ... in the checkout
    lossconf baseline lossconf-report/results.json -o lossconf-baseline.toml

lossconf is installed from its checkout (``pip install -e path/to/lossconf``): the
suite's pytest plugin (``conftest.py``) and packages are imported from there, by
pytest's ``pythonpath`` setting, never from site-packages under their generic names
(``adapters``, ``reports``). ``run`` starts ``python -m pytest <checkout>/suites``
with the checkout as rootdir and ``pyproject.toml`` as its configuration, but in the
caller's directory: ``--report-dir``, ``--expectations`` and the other paths mean
what they say there. They are made absolute, because each failure's rerun command
starts with ``cd <checkout>``. Every other argument goes to pytest unchanged.

A copy of lossconf without its checkout (``pip install`` without ``-e``) has no
suite: ``LOSSCONF_CHECKOUT=DIR`` names one, or the command says how to get one.
Exit codes are pytest's (1: a conformance failure; 4: a usage error), except that
collecting no tests is an error (1), never a pass.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["checkout", "main", "pytest_command"]

USAGE_ERROR = 4
NO_TESTS_COLLECTED = 5

#: Options whose value is a path, as ``--opt VALUE`` or ``--opt=VALUE``.
PATH_OPTIONS = ("--report-dir", "--expectations", "--example-db", "--junitxml", "--junit-xml")


class CheckoutError(Exception):
    """No lossconf checkout to run the suite from."""


def checkout() -> Path:
    """The lossconf checkout: ``LOSSCONF_CHECKOUT``, else the one this package lies in."""
    configured = os.environ.get("LOSSCONF_CHECKOUT")
    root = Path(configured) if configured else Path(__file__).resolve().parent.parent
    if not (root / "suites" / "test_conformance.py").is_file() or not (root / "conftest.py").is_file():
        where = f"LOSSCONF_CHECKOUT={configured}" if configured else f"lossconf installed in {root}"
        raise CheckoutError(
            f"{where}: not a lossconf checkout (no suites/test_conformance.py), and the suite runs "
            "from one. Clone lossconf and install it editable, pip install -e ./lossconf, "
            "or set LOSSCONF_CHECKOUT to the checkout"
        )
    return root


def _absolute_paths(args: list[str]) -> list[str]:
    out: list[str] = []
    take_next = False
    for arg in args:
        if take_next:
            out.append(os.path.abspath(arg))
            take_next = False
            continue
        name, eq, value = arg.partition("=")
        if name in PATH_OPTIONS and eq:
            out.append(f"{name}={os.path.abspath(value)}")
        else:
            out.append(arg)
            take_next = arg in PATH_OPTIONS
    return out


def pytest_command(args: list[str], root: Path) -> list[str]:
    """The pytest command line ``lossconf run ARGS`` runs (from the caller's directory)."""
    return [
        sys.executable, "-m", "pytest", str(root / "suites"),
        "--rootdir", str(root), "-c", str(root / "pyproject.toml"),
        *_absolute_paths(args),
    ]


def _run(args: list[str]) -> int:
    root = checkout()
    # The gating summary's "to accept the failures as a baseline" line names this CLI.
    env = {**os.environ, "LOSSCONF_BASELINE_COMMAND": "python -m lossconf baseline"}
    code = subprocess.call(pytest_command(args, root), env=env)
    if code == NO_TESTS_COLLECTED:
        print("lossconf: error: pytest collected no tests (check --adapter, --loss, --dtype, -k)", file=sys.stderr)
        return 1
    return code


def _baseline(args: list[str]) -> int:
    root = str(checkout())
    if root not in sys.path:
        sys.path.insert(0, root)
    from suites.baseline import main as baseline_main

    return baseline_main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lossconf",
        description="Run lossconf's conformance suite (from its checkout) in this directory.",
        epilog="lossconf run --help-suite: the suite's own options (pytest --help).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "run", add_help=False,
        help="pytest suites ARGS: e.g. lossconf run --adapter mypkg.losses --hypothesis-profile gate",
    )
    sub.add_parser(
        "baseline", add_help=False,
        help="python -m suites.baseline ARGS: results.json -o lossconf-baseline.toml",
    )
    sub.add_parser("checkout", help="print the lossconf checkout the suite runs from")
    argv = list(sys.argv[1:] if argv is None else argv)
    known, rest = parser.parse_known_args(argv[:1])
    rest += argv[1:]
    try:
        if known.command == "run":
            return _run(["--help" if a == "--help-suite" else a for a in rest])
        if known.command == "baseline":
            return _baseline(rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        print(checkout())
        return 0
    except CheckoutError as exc:
        print(f"lossconf: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
