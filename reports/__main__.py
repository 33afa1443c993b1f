"""``python -m reports``: render a results file, or merge several, into an HTML report.

    python -m reports render results.json -o DIR
    python -m reports merge A.json B.json ... -o DIR
    python -m reports recover DIR      # a run killed before its end: report from DIR/.parts

Both write ``DIR/results.json`` and ``DIR/index.html`` and print the path of
``index.html``.  A missing or invalid input or an unwritable directory is
reported on one line of stderr with exit status 2 (argparse's own usage
errors share that status).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from reports.html import ReportDirError, write_report
from reports.results import load_results, merge_results

DEFAULT_OUTPUT = "lossconf-report"
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render lossconf results (results.json) as a self-contained HTML report.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render = commands.add_parser("render", help="write the report of one results file")
    render.add_argument("results", type=Path, help="a results.json written by a lossconf run")
    merge = commands.add_parser(
        "merge", help="merge results files (xdist workers, CI shards, frameworks) into one report"
    )
    merge.add_argument("results", type=Path, nargs="+", help="results.json files to merge")
    recover = commands.add_parser(
        "recover", help="write the report (marked incomplete) of a run that died before its end"
    )
    recover.add_argument("report_dir", type=Path, help="the dead run's --report-dir (it holds .parts/)")
    for sub in (render, merge):
        sub.add_argument(
            "-o",
            "--output",
            type=Path,
            default=Path(DEFAULT_OUTPUT),
            metavar="DIR",
            help=f"directory for results.json and index.html (default: {DEFAULT_OUTPUT})",
        )
    return parser


def _fail(message: str) -> int:
    print(f"python -m reports: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, or 2 on any error)."""
    args = _parser().parse_args(argv)
    if args.command == "recover":
        return _recover(args.report_dir)
    paths: list[Path] = args.results if args.command == "merge" else [args.results]
    try:
        docs = [load_results(path) for path in paths]
        if args.command == "merge":
            doc = merge_results(docs, sources=[str(path) for path in paths])
        else:
            doc = docs[0]
        index = write_report(doc, args.output)
    except ReportDirError as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"no such file: {exc.filename}")
    except IsADirectoryError as exc:
        return _fail(f"{exc.filename} is a directory, not a results file")
    except (OSError, ValueError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(index)
    return 0


def _recover(report_dir: Path) -> int:
    from reports.recovery import recover

    try:
        index = write_report(recover(report_dir), report_dir)
    except ReportDirError as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(str(exc))
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
