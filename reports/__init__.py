"""lossconf's results model and HTML report.

Test runs write one record per pytest item (:func:`append_record`); records
and run metadata form a results document (``results.json``), several of which
merge into one (:func:`merge_results`); :func:`write_report` writes the
document and its self-contained HTML report.  ``python -m reports`` renders
or merges from the command line.

Modules: ``results`` (records, documents, files, merging; the schema is
``results.schema.json``, described in docs/results-schema.md), ``summary``
(verdict counts, accuracy rows), ``failures`` (grouping by root cause),
``options`` (the option coverage matrix), ``deviations`` (expectations entries
met), ``plots`` (inline SVG), ``html`` (the page and its sections),
``formatting`` (numbers and times for people).
"""

from reports.html import ReportDirError, render_html, write_report
from reports.results import (
    SCHEMA_VERSION,
    append_record,
    load_results,
    merge_results,
    read_records,
)

__all__ = [
    "SCHEMA_VERSION",
    "ReportDirError",
    "append_record",
    "load_results",
    "merge_results",
    "read_records",
    "render_html",
    "write_report",
]
