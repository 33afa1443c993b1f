"""The results model: records, results documents, their files, merging and summaries.

A *record* is the outcome of one pytest item (one generic test for one loss ×
adapter × dtype); a *results document* is the run's metadata plus its records::

    {"schema_version": 1, "run": {...}, "records": [record, ...]}

Records are written one JSON line at a time while the tests run
(:func:`append_record`), so a crashed or killed worker loses at most the line
it was writing, and :func:`read_records` reads such a file back.  Documents are
written whole and atomically (:func:`write_json_atomic`).

JSON has no inf or NaN, and an accuracy table must be able to say "inf ULP".
On disk every non-finite float is the string ``"inf"``, ``"-inf"`` or ``"nan"``
(:func:`encode_float`); in memory the numeric fields of a record hold real
floats (:func:`decode_float`).  Only the fields known to be numeric are
decoded, so a message that happens to read "nan" stays a string.

Nothing here imports a framework, NumPy or Jinja2: a results file can be read,
merged and summarized anywhere Python runs.  The summaries live in
``reports.summary`` and are re-exported here (``summarize`` and friends).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reports.redact import redact_record
from reports.summary import (
    DTYPES,
    NO_DTYPE,
    VERDICT_SEVERITY,
    VERDICTS,
    accuracy_rows,
    dtype_key,
    option_coverage,
    summarize,
    worst_verdict,
)

__all__ = [
    "CASE_FIELDS",
    "DTYPES",
    "NO_DTYPE",
    "SCHEMA_VERSION",
    "VERDICTS",
    "VERDICT_SEVERITY",
    "TruncatedRecordWarning",
    "accuracy_rows",
    "append_record",
    "decode_float",
    "dtype_key",
    "encode_float",
    "load_results",
    "merge_results",
    "new_document",
    "new_run_info",
    "normalize_record",
    "normalize_run",
    "option_coverage",
    "read_records",
    "summarize",
    "to_json_safe",
    "trim_record",
    "validate_document",
    "worst_verdict",
    "write_json_atomic",
    "write_text_atomic",
]

SCHEMA_VERSION = 1

RECORD_NUMERIC_FIELDS: tuple[str, ...] = ("max_ulp", "max_normalized", "max_relative", "duration_s")
CASE_NUMERIC_FIELDS: tuple[str, ...] = ("ulp", "normalized")
CASE_FIELDS: tuple[str, ...] = (
    "observed",
    "exact",
    "ulp",
    "normalized",
    "case",
    "repro",
    "message",
)
MAX_SAMPLES = 200
"""At most this many ``[max_abs_input, normalized_error, ulp_error]`` samples per record."""


def _record_defaults() -> dict[str, Any]:
    """A record with every field present and empty: what a missing field means."""
    return {
        "nodeid": "",
        "test": "",
        "adapter": "",
        "adapter_version": None,
        "loss": "",
        "dtype": None,
        "verdict": "error",
        "examples": 0,
        "max_ulp": None,
        "max_normalized": None,
        "max_relative": None,
        "worst": None,
        "failure": None,
        "message": "",
        "options": {},
        "samples": [],
        "duration_s": 0.0,
        "worker": None,
        "adapter_module": None,
        "case_label": None,
        "unsupported_examples": 0,
        "deviation_example": None,
        "deviations": [],
    }


class TruncatedRecordWarning(UserWarning):
    """A line of a ``.jsonl`` records file could not be read and was skipped."""


# --------------------------------------------------------------------------- floats


def encode_float(value: Any) -> float | str | None:
    """A float as JSON can hold it: non-finite values become ``"inf"``, ``"-inf"``, ``"nan"``.

    ``None`` stays ``None``; NumPy scalars become plain Python floats.
    """
    if value is None:
        return None
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def decode_float(value: Any) -> float | None:
    """Inverse of :func:`encode_float`: ``"inf"``/``"-inf"``/``"nan"`` (or a number) to a float.

    Raises ``ValueError`` for any other string, so a corrupt field is not
    silently read as a number.
    """
    if value is None:
        return None
    if isinstance(value, str):
        token = value.strip().lower()
        if token in ("inf", "+inf", "infinity", "-inf", "-infinity", "nan"):
            return float(token)
        raise ValueError(f"not an encoded float: {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"not an encoded float: {value!r}")
    return float(value)


def to_json_safe(obj: Any) -> Any:
    """A deep copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Every non-finite float anywhere becomes its string token; tuples become
    lists; NumPy scalars (or anything with ``.item()``) become Python scalars;
    other unknown objects become their ``str`` — a results file must never be
    lost because a producer put an odd type in a message.
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return encode_float(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return to_json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def _dumps(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(to_json_safe(obj), allow_nan=False, ensure_ascii=False, indent=indent)


def _decode_case(case: Any) -> dict[str, Any] | None:
    if case is None:
        return None
    if not isinstance(case, Mapping):
        return {
            "observed": "",
            "exact": "",
            "ulp": None,
            "normalized": None,
            "case": str(case),
            "repro": "",
            "message": "",
        }
    out = {field: None for field in CASE_FIELDS}
    out.update(case)
    for field in CASE_NUMERIC_FIELDS:
        out[field] = _lenient_float(out[field])
    for field in ("observed", "exact", "case", "repro", "message"):
        out[field] = "" if out[field] is None else str(out[field])
    if "features" in out:
        features = out["features"]
        out["features"] = [str(f) for f in features] if isinstance(features, list) else []
    return out


def _lenient_float(value: Any) -> float | None:
    try:
        return decode_float(value)
    except (TypeError, ValueError):
        return float("nan")


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, tuples as lists, scalars shared: they
    are immutable). ``copy.deepcopy``'s memo made it most of a report's writing time
    (a record is normalized when read, put in a document and validated: 3 x 2705 per gate run)."""
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v) for v in value]
    return value


def normalize_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A record with every schema field present and its numeric fields as floats.

    Missing fields take their empty defaults; fields this version does not
    know are kept, so a newer producer's extras survive a merge.  Unreadable
    numbers become NaN rather than stopping the report.
    """
    record = _record_defaults()
    record.update(_copy_json(dict(raw)))
    for field in RECORD_NUMERIC_FIELDS:
        record[field] = _lenient_float(record[field])
    if record["duration_s"] is None:
        record["duration_s"] = 0.0
    try:
        record["examples"] = int(record["examples"] or 0)
    except (TypeError, ValueError):
        record["examples"] = 0
    record["message"] = "" if record["message"] is None else str(record["message"])
    record["worst"] = _decode_case(record["worst"])
    record["failure"] = _decode_case(record["failure"])
    record["deviation_example"] = _decode_case(record["deviation_example"])
    record["deviations"] = [d for d in record["deviations"] or [] if isinstance(d, Mapping)]
    record["options"] = dict(record["options"] or {})
    record["samples"] = [
        [_lenient_float(v) for v in sample]
        for sample in (record["samples"] or [])[:MAX_SAMPLES]
        if isinstance(sample, (list, tuple))
    ]
    return record


# --------------------------------------------------------------------------- files


def append_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append ``record`` to the ``.jsonl`` file at ``path`` as one line.

    The line goes out in one unbuffered ``write`` on an ``O_APPEND`` descriptor, so on a
    local filesystem concurrent writers (xdist workers sharing a file) do not
    interleave; and it is in the kernel before this returns, so a later crash of the
    process (an adapter's segfault, a SIGKILL) cannot lose it. No ``fsync``: that guards
    against the machine losing power, not the process dying, and it cost ~4 ms per item
    (~11 s of a 2705-item gate run; benchmarks/gate.py). Absolute paths of this machine
    in its text are replaced by placeholders first (:mod:`reports.redact`).
    """
    line = (_dumps(redact_record(record)) + "\n").encode("utf-8")
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``.jsonl`` file written by :func:`append_record`, normalized.

    A line that is not a JSON object — typically the last line of a worker
    killed mid-write — is skipped with a :class:`TruncatedRecordWarning`
    naming the file and line; reading never fails on content.
    """
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                truncated = not line.endswith("\n")
                what = "truncated last line" if truncated else "unreadable line"
                warnings.warn(
                    f"{os.fspath(path)}:{lineno}: skipped a {what} ({exc.msg})",
                    TruncatedRecordWarning,
                    stacklevel=2,
                )
                continue
            if not isinstance(raw, dict):
                warnings.warn(
                    f"{os.fspath(path)}:{lineno}: skipped a line that is not a record",
                    TruncatedRecordWarning,
                    stacklevel=2,
                )
                continue
            records.append(normalize_record(raw))
    return records


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The text goes to a temporary file in the same directory (same filesystem,
    so the rename is atomic), is fsynced, then ``os.replace``\\ s the target.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return target


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON (non-finite floats encoded) atomically; see :func:`write_text_atomic`.

    A results document (a dict with ``records``) is laid out one record per
    line, its other fields indented: about a third smaller than indenting
    everything, and still readable with ``grep`` and ``jq``.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("records"), list):
        head = {k: v for k, v in obj.items() if k != "records"}
        lines = ",\n".join(_dumps(r) for r in obj["records"])
        text = _dumps(head, indent=1)[:-2] + ',\n "records": [\n' + lines + "\n]}"
        if not head:
            text = '{"records": [\n' + lines + "\n]}"
        return write_text_atomic(path, text + "\n")
    return write_text_atomic(path, _dumps(obj, indent=1) + "\n")


PASSING_TRIM: tuple[str, ...] = ("repro",)
"""Fields of a non-failing record's ``worst`` case dropped when a document is written: the
report never shows them, and the repro (rebuilt from ``case`` by the adapter) is the largest
field of a passing record. Failing records (``failure``) are written whole."""


def trim_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as written to ``results.json``: ``PASSING_TRIM`` fields removed from the
    worst case of a record whose verdict is not fail or error; anything else unchanged."""
    out = dict(record)
    worst = out.get("worst")
    if out.get("verdict") not in ("fail", "error") and isinstance(worst, Mapping):
        out["worst"] = {k: v for k, v in worst.items() if k not in PASSING_TRIM}
    return out


# --------------------------------------------------------------------------- documents


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    """The checkout's commit, or None where git or the repository is not there."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def _run_defaults() -> dict[str, Any]:
    """A run block with every field present and empty: what a missing field means."""
    return {
        "started": None,
        "finished": None,
        "duration_s": None,
        "complete": False,
        "adapters": {},
        "platform": "",
        "python": "",
        "device": "",
        "lossconf_commit": None,
        "profile": None,
        "seed": None,
        "argv": [],
        "sources": [],
        "parts": [],
    }


def new_run_info(**fields: Any) -> dict[str, Any]:
    """A ``run`` block: the given fields over defaults describing this process.

    Defaults: started now (UTC), not finished, ``complete=False`` (a run is
    complete only once its producer says so at session finish), this
    machine's platform and Python, device ``"cpu"``, the checkout's git
    commit, ``sys.argv``.  An unknown field name is a ``TypeError``: a typo
    would otherwise vanish from every report.
    """
    unknown = sorted(set(fields) - set(_run_defaults()))
    if unknown:
        raise TypeError(f"new_run_info() got unknown run fields: {', '.join(unknown)}")
    run = _run_defaults()
    run.update(
        started=_now_iso(),
        platform=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        device="cpu",
        argv=list(sys.argv),
    )
    run.update(fields)
    if "lossconf_commit" not in fields:
        run["lossconf_commit"] = _git_commit()
    return run


def new_document(run: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A results document from a run block and records (records normalized)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": dict(run),
        "records": [normalize_record(r) for r in records],
    }


def _not_results(source: str, why: str) -> ValueError:
    return ValueError(f"{source} is not a lossconf results file: {why}")


def validate_document(doc: Any, source: str = "document") -> dict[str, Any]:
    """Check a parsed results document and return it normalized.

    Raises ``ValueError("<source> is not a lossconf results file: <why>")``
    when ``doc`` lacks the shape of a results document or has a schema
    version this code does not know.
    """
    if not isinstance(doc, dict):
        kind = {list: "an array", str: "a string"}.get(type(doc), "a scalar")
        raise _not_results(source, f"its top level is {kind}, not an object")
    if "schema_version" not in doc:
        raise _not_results(source, "it has no schema_version")
    version = doc["schema_version"]
    if version != SCHEMA_VERSION:
        raise _not_results(
            source, f"schema_version is {version!r}; this lossconf reads version {SCHEMA_VERSION}"
        )
    run, records = doc.get("run"), doc.get("records")
    if not isinstance(run, dict):
        raise _not_results(source, "'run' is missing or not an object")
    if not isinstance(records, list):
        raise _not_results(source, "'records' is missing or not a list")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise _not_results(source, f"record {i} is not an object")
    return {
        "schema_version": SCHEMA_VERSION,
        "run": normalize_run(run),
        "records": [normalize_record(r) for r in records],
    }


def normalize_run(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A run block with every field present (missing ones empty), parts included."""
    run = {**_run_defaults(), **copy.deepcopy(dict(raw))}
    run["duration_s"] = _lenient_float(run["duration_s"])
    run["complete"] = bool(run["complete"])
    run["adapters"] = {str(k): dict(v or {}) for k, v in dict(run["adapters"] or {}).items()}
    run["argv"] = [str(a) for a in run["argv"] or []]
    run["sources"] = [str(s) for s in run["sources"] or []]
    run["parts"] = [normalize_run(p) for p in run["parts"] or [] if isinstance(p, Mapping)]
    return run


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a results document (``results.json``).

    ``FileNotFoundError``/``OSError`` pass through; content that is not a
    results document raises ``ValueError("<path> is not a lossconf results
    file: <why>")``.
    """
    source = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_results(source, "it is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _not_results(source, f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    return validate_document(doc, source)


# --------------------------------------------------------------------------- merging


def _parse_time(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _extreme_time(stamps: Iterable[Any], pick: Any) -> str | None:
    """The earliest/latest (``pick`` = min/max) parseable ISO 8601 stamp, as written."""
    parsed = [(t, s) for s in stamps if (t := _parse_time(s)) is not None]
    return pick(parsed, key=lambda pair: pair[0])[1] if parsed else None


def _distinct_joined(values: Iterable[Any], sep: str = "; ") -> str | None:
    """The distinct non-empty values in first-seen order, joined by ``sep`` (None if none)."""
    seen: list[str] = []
    for value in values:
        if value not in (None, "") and str(value) not in seen:
            seen.append(str(value))
    return sep.join(seen) if seen else None


def merge_results(
    docs: Sequence[Mapping[str, Any]], sources: Sequence[str] | None = None
) -> dict[str, Any]:
    """One document holding the records of several runs (xdist workers, CI shards, frameworks).

    * records: concatenated in input order (nothing deduplicated: two shards
      that ran the same item both count);
    * ``run.adapters``: the union; an adapter seen with several versions lists
      them all, joined by ", ";
    * ``run.complete``: true only if every part is complete;
    * ``run.started``/``finished``: the earliest start and the latest finish
      (``finished`` is None if no part finished);
    * ``run.duration_s``: the **sum** of the parts' durations — the total time
      spent testing, whether the parts ran one after another or in parallel
      (for a parallel sharded run it exceeds the wall time; finished − started
      gives that);
    * ``platform``/``python``/``device``/``lossconf_commit``/``profile``/``seed``:
      the distinct values joined by "; ";
    * ``run.sources``: each part's own sources if it was itself a merge, else
      its label from ``sources`` (the file it came from);
    * ``run.parts``: each part's run block (flattened through nested merges),
      so the report can still say what each part ran on; ``argv`` is empty.
    """
    if not docs:
        raise ValueError("merge_results() needs at least one results document")
    if sources is not None and len(sources) != len(docs):
        raise ValueError("merge_results(): give one source label per document")
    parts: list[dict[str, Any]] = []
    merged_sources: list[str] = []
    records: list[dict[str, Any]] = []
    adapters: dict[str, dict[str, Any]] = {}
    for i, doc in enumerate(docs):
        run = doc["run"]
        nested = run.get("parts") or []
        parts.extend(
            [normalize_run(p) for p in nested] if nested else [normalize_run(_without_parts(run))]
        )
        own = list(run.get("sources") or [])
        merged_sources.extend(own or ([sources[i]] if sources is not None else []))
        records.extend(normalize_record(r) for r in doc["records"])
        for name, info in (run.get("adapters") or {}).items():
            _merge_adapter(adapters, name, info or {})
    runs = [doc["run"] for doc in docs]
    durations = [d for r in runs if (d := _lenient_float(r.get("duration_s"))) is not None]
    merged_run = {
        "started": _extreme_time((r.get("started") for r in runs), min),
        "finished": _extreme_time((r.get("finished") for r in runs), max),
        "duration_s": math.fsum(durations) if durations else None,
        "complete": all(bool(r.get("complete")) for r in runs),
        "adapters": adapters,
        "platform": _distinct_joined(r.get("platform") for r in runs) or "",
        "python": _distinct_joined(r.get("python") for r in runs) or "",
        "device": _distinct_joined(r.get("device") for r in runs) or "",
        "lossconf_commit": _distinct_joined(r.get("lossconf_commit") for r in runs),
        "profile": _distinct_joined(r.get("profile") for r in runs),
        "seed": _distinct_joined(r.get("seed") for r in runs),
        "argv": [],
        "sources": merged_sources,
        "parts": parts,
    }
    return {"schema_version": SCHEMA_VERSION, "run": merged_run, "records": records}


def _without_parts(run: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "parts"}


def _merge_adapter(adapters: dict[str, dict[str, Any]], name: str, info: Mapping[str, Any]) -> None:
    if name not in adapters:
        adapters[name] = {**copy.deepcopy(dict(info)), "version": info.get("version"), "module": info.get("module", "")}
        return
    known = adapters[name]
    versions = (known["version"] or "").split(", ")
    known["version"] = _distinct_joined([*versions, info.get("version")], sep=", ")
    known["module"] = known["module"] or info.get("module", "")
    for field, value in info.items():  # e.g. the option table: the first part that has one
        if known.get(field) is None and value is not None:
            known[field] = copy.deepcopy(value)
