"""Tests of the results model (reports.results), the HTML report and `python -m reports`."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reports import (
    SCHEMA_VERSION,
    ReportDirError,
    append_record,
    load_results,
    merge_results,
    read_records,
    render_html,
    write_report,
)
from reports.formatting import format_duration, format_number
from reports.results import (
    TruncatedRecordWarning,
    decode_float,
    encode_float,
    new_document,
    new_run_info,
    summarize,
    write_json_atomic,
)

CHECKOUT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>alert(1)</script> and </script><img src=x onerror=\"alert(2)\"> & 'q'"


def make_record(**fields: Any) -> dict[str, Any]:
    """A passing torch float32 cross_entropy record, with ``fields`` overriding."""
    record: dict[str, Any] = {
        "nodeid": "suites/test_losses.py::test_matches_oracle[cross_entropy-torch-float32]",
        "test": "test_matches_oracle",
        "adapter": "torch",
        "adapter_version": "2.13.0",
        "loss": "cross_entropy",
        "dtype": "float32",
        "verdict": "pass",
        "examples": 10,
        "max_ulp": 0.5,
        "max_normalized": 0.25,
        "max_relative": 3e-8,
        "worst": None,
        "failure": None,
        "message": "",
        "options": {"reduction=mean": 4},
        "samples": [[1.0, 0.25, 0.5]],
        "duration_s": 0.5,
        "worker": "gw0",
    }
    record.update(fields)
    return record


def make_case(**fields: Any) -> dict[str, Any]:
    case = {
        "observed": "0.0",
        "exact": "4.248354255291589e-18",
        "ulp": 2.5e7,
        "normalized": 3.5,
        "case": "input = array([[40.0, 0.0]], dtype=float32)\ntarget = array([0])",
        "repro": "import torch\nF.cross_entropy(torch.tensor([[40.0, 0.0]]), torch.tensor([0]))",
        "message": "",
    }
    case.update(fields)
    return case


def make_doc(records: list[dict[str, Any]], **run: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "started": "2025-01-01T10:00:00+00:00",
        "finished": "2025-01-01T10:05:00+00:00",
        "duration_s": 300.0,
        "complete": True,
        "adapters": {"torch": {"version": "2.13.0", "module": "adapters.torch"}},
        "platform": "Linux-x86_64",
        "python": "CPython 3.11.7",
        "device": "cpu",
        "lossconf_commit": "abc123",
        "argv": ["pytest", "--adapter", "torch"],
    }
    fields.update(run)
    return new_document(new_run_info(**fields), records)


def _reject_constant(token: str) -> None:
    raise AssertionError(f"non-standard JSON token {token} written")


# --------------------------------------------------------------------------- floats and files


def test_encode_decode_float_round_trip() -> None:
    assert encode_float(math.inf) == "inf"
    assert encode_float(-math.inf) == "-inf"
    assert encode_float(math.nan) == "nan"
    assert encode_float(0.5) == 0.5
    assert encode_float(None) is None
    assert decode_float("inf") == math.inf
    assert decode_float("-inf") == -math.inf
    assert math.isnan(decode_float("nan"))
    assert decode_float(3) == 3.0
    assert decode_float(None) is None
    with pytest.raises(ValueError, match="not an encoded float"):
        decode_float("fast")


def test_append_and_read_records_round_trip_non_finite_floats(tmp_path: Path) -> None:
    path = tmp_path / "gw0.jsonl"
    worst = make_case(ulp=math.inf, normalized=math.nan)
    append_record(
        path,
        make_record(
            max_ulp=math.inf,
            max_normalized=math.nan,
            max_relative=-math.inf,
            worst=worst,
            samples=[[math.inf, 0.5, math.nan]],
            message="nan",
        ),
    )
    append_record(path, make_record(nodeid="second", max_ulp=1.5))

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    raw = json.loads(lines[0], parse_constant=_reject_constant)
    assert raw["max_ulp"] == "inf"
    assert raw["max_normalized"] == "nan"
    assert raw["max_relative"] == "-inf"
    assert raw["worst"]["ulp"] == "inf"
    assert raw["samples"] == [["inf", 0.5, "nan"]]

    first, second = read_records(path)
    assert first["max_ulp"] == math.inf
    assert math.isnan(first["max_normalized"])
    assert first["max_relative"] == -math.inf
    assert first["worst"]["ulp"] == math.inf
    assert math.isnan(first["worst"]["normalized"])
    assert first["samples"][0][0] == math.inf and math.isnan(first["samples"][0][2])
    assert first["message"] == "nan"  # a text field is never decoded as a number
    assert second["nodeid"] == "second"
    assert second["max_ulp"] == 1.5


def test_read_records_skips_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "gw1.jsonl"
    append_record(path, make_record(nodeid="a"))
    append_record(path, make_record(nodeid="b", verdict="fail"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"nodeid": "c", "verdict": "pa')  # a worker killed mid-write
    with pytest.warns(TruncatedRecordWarning, match=r"gw1\.jsonl:3: skipped a truncated last line"):
        records = read_records(path)
    assert [r["nodeid"] for r in records] == ["a", "b"]
    assert [r["verdict"] for r in records] == ["pass", "fail"]


def test_write_json_atomic_replaces_whole_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"old": 1})
    write_json_atomic(target, {"value": math.inf, "list": (1, 2)})
    assert json.loads(target.read_text(), parse_constant=_reject_constant) == {
        "value": "inf",
        "list": [1, 2],
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_write_json_atomic_keeps_old_file_when_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"generation": 1})

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(target, {"generation": 2})
    assert json.loads(target.read_text()) == {"generation": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_load_results_round_trips_a_document(tmp_path: Path) -> None:
    doc = make_doc([make_record(max_ulp=math.inf)])
    write_json_atomic(tmp_path / "results.json", doc)
    loaded = load_results(tmp_path / "results.json")
    assert loaded["schema_version"] == SCHEMA_VERSION == 1
    assert loaded["run"]["adapters"] == {"torch": {"version": "2.13.0", "module": "adapters.torch"}}
    assert loaded["run"]["complete"] is True
    assert loaded["records"][0]["max_ulp"] == math.inf
    assert loaded["records"][0]["nodeid"] == doc["records"][0]["nodeid"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"tests": []}', "it has no schema_version"),
        ('{"schema_version": 2, "run": {}, "records": []}', "schema_version is 2"),
        ("[1, 2]", "its top level is an array"),
        ('{"schema_version": 1, "run": {}, "records": {}}', "'records' is missing or not a list"),
        ("{not json", "invalid JSON"),
    ],
)
def test_load_results_rejects_other_files(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="is not a lossconf results file") as info:
        load_results(path)
    assert str(info.value).startswith(str(path))
    assert why in str(info.value)


# --------------------------------------------------------------------------- merge and summary


def test_merge_adds_counts_unions_adapters_and_ands_complete() -> None:
    torch_doc = make_doc(
        [make_record(), make_record(verdict="fail", max_ulp=12.0)],
        started="2025-01-01T10:00:00+00:00",
        finished="2025-01-01T10:05:00+00:00",
        duration_s=300.0,
        complete=True,
    )
    jax_doc = make_doc(
        [
            make_record(adapter="jax", adapter_version="0.4.30"),
            make_record(adapter="jax", verdict="unsupported", max_ulp=None),
        ],
        adapters={"jax": {"version": "0.4.30", "module": "adapters.jax"}},
        started="2025-01-01T09:00:00+00:00",
        finished="2025-01-01T09:30:00+00:00",
        duration_s=1800.0,
        complete=False,
        device="gpu",
    )
    merged = merge_results([torch_doc, jax_doc], sources=["torch.json", "jax.json"])

    assert len(merged["records"]) == 4
    assert merged["run"]["adapters"] == {
        "torch": {"version": "2.13.0", "module": "adapters.torch"},
        "jax": {"version": "0.4.30", "module": "adapters.jax"},
    }
    assert merged["run"]["complete"] is False
    assert merged["run"]["started"] == "2025-01-01T09:00:00+00:00"
    assert merged["run"]["finished"] == "2025-01-01T10:05:00+00:00"
    assert merged["run"]["duration_s"] == 2100.0
    assert merged["run"]["device"] == "cpu; gpu"
    assert merged["run"]["sources"] == ["torch.json", "jax.json"]
    assert len(merged["run"]["parts"]) == 2

    summary = summarize(merged["records"])
    assert summary["overall"]["counts"]["pass"] == 2
    assert summary["overall"]["counts"]["fail"] == 1
    assert summary["overall"]["counts"]["unsupported"] == 1
    assert summary["totals"]["cross_entropy"]["torch"]["max_ulp"] == 12.0

    both_complete = merge_results([torch_doc, torch_doc])
    assert both_complete["run"]["complete"] is True
    assert summarize(both_complete["records"])["overall"]["counts"]["pass"] == 2


def test_merge_of_a_merge_keeps_sources_and_version_conflicts() -> None:
    a = make_doc([make_record()])
    b = make_doc(
        [make_record()], adapters={"torch": {"version": "2.14.0", "module": "adapters.torch"}}
    )
    c = make_doc([make_record(adapter="jax")], adapters={"jax": {"version": "0.5", "module": "m"}})
    inner = merge_results([a, b], sources=["a.json", "b.json"])
    outer = merge_results([inner, c], sources=["ab.json", "c.json"])
    assert outer["run"]["sources"] == ["a.json", "b.json", "c.json"]
    assert outer["run"]["adapters"]["torch"]["version"] == "2.13.0, 2.14.0"
    assert len(outer["run"]["parts"]) == 3
    assert len(outer["records"]) == 3


def test_summarize_counts_and_maxima_for_hand_built_records() -> None:
    records = [
        make_record(max_ulp=0.5, max_normalized=0.1, examples=10),
        make_record(
            verdict="fail",
            max_ulp=3.2e7,
            max_normalized=4.0,
            examples=7,
            worst=make_case(),
            nodeid="worst-one",
        ),
        make_record(test="test_properties", max_ulp=None, max_normalized=None, examples=5),
        make_record(
            dtype="float16", verdict="deviation", max_ulp=2.0, max_normalized=0.5, examples=3
        ),
        make_record(
            adapter="jax",
            verdict="unsupported",
            max_ulp=None,
            max_normalized=None,
            max_relative=None,
            examples=0,
        ),
        make_record(
            loss="nll_loss",
            dtype=None,
            test="test_rejects_invalid_input",
            verdict="error",
            max_ulp=None,
            max_normalized=None,
            max_relative=None,
            examples=1,
        ),
        make_record(loss="nll_loss", dtype="bfloat16", max_ulp=math.nan, max_normalized=0.2),
    ]
    summary = summarize(records)

    assert summary["losses"] == ["cross_entropy", "nll_loss"]
    assert summary["adapters"] == ["jax", "torch"]
    assert summary["columns"] == [
        ("jax", "float32"),
        ("torch", "float32"),
        ("torch", "float16"),
        ("torch", "bfloat16"),
        ("torch", "any"),
    ]
    cell = summary["cells"]["cross_entropy"]["torch"]["float32"]
    assert cell["records"] == 3
    assert cell["counts"] == {
        "pass": 2,
        "fail": 1,
        "deviation": 0,
        "error": 0,
        "undecided": 0,
        "unsupported": 0,
        "skip": 0,
    }
    assert cell["examples"] == 22
    assert cell["max_ulp"] == 3.2e7
    assert cell["max_normalized"] == 4.0
    assert cell["worst_verdict"] == "fail"
    assert cell["worst_nodeid"] == "worst-one"
    assert cell["worst"]["exact"] == "4.248354255291589e-18"

    assert summary["cells"]["cross_entropy"]["torch"]["float16"]["worst_verdict"] == "deviation"
    jax = summary["cells"]["cross_entropy"]["jax"]["float32"]
    assert jax["worst_verdict"] == "unsupported"
    assert jax["max_ulp"] is None
    assert summary["cells"]["nll_loss"]["torch"]["any"]["counts"]["error"] == 1
    assert math.isnan(summary["cells"]["nll_loss"]["torch"]["bfloat16"]["max_ulp"])

    totals = summary["totals"]["cross_entropy"]["torch"]
    assert totals["records"] == 4
    assert totals["counts"]["pass"] == 2 and totals["counts"]["deviation"] == 1
    assert totals["examples"] == 25
    assert summary["overall"]["records"] == 7
    assert summary["overall"]["worst_verdict"] == "fail"


def test_new_run_info_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError, match="unknown run fields: complet"):
        new_run_info(complet=True)
    run = new_run_info(device="cuda:0", lossconf_commit=None)
    assert run["device"] == "cuda:0"
    assert run["complete"] is False
    assert run["finished"] is None


# --------------------------------------------------------------------------- HTML


class _TagCollector(HTMLParser):
    """Collects the page's tags and attributes, and the text of its <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _hostile_doc() -> dict[str, Any]:
    failing = make_record(
        verdict="fail",
        message=HOSTILE,
        nodeid=f"test[{HOSTILE}]",
        failure=make_case(case=HOSTILE, repro=HOSTILE, observed=HOSTILE, message=HOSTILE),
        worst=make_case(case=HOSTILE),
    )
    return make_doc(
        [
            failing,
            make_record(verdict="unsupported", message=HOSTILE, adapter="jax"),
            make_record(
                verdict="deviation", message=HOSTILE, dtype="float16",
                deviations=[
                    {"id": HOSTILE, "kind": HOSTILE, "reason": HOSTILE, "citation": HOSTILE, "count": 1},
                    {"id": "cited", "kind": "bug", "reason": HOSTILE, "citation": f"https://example.org/?q={HOSTILE}", "count": 1},
                ],
                deviation_example=make_case(case=HOSTILE, observed=HOSTILE),
            ),
            make_record(adapter=HOSTILE, samples=[[1.0, 0.5, 0.5]], options={HOSTILE: 1}),
        ],
        adapters={"torch": {"version": HOSTILE, "module": HOSTILE}},
        argv=[HOSTILE],
        platform=HOSTILE,
    )


def test_html_escapes_every_value() -> None:
    html = render_html(_hostile_doc())
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;/script&gt;&lt;img src=x" in html
    # exactly one <script> element: the report's own, with no data in it
    assert html.count("<script") == 1
    assert html.count("</script>") == 1
    parser = _TagCollector()
    parser.feed(html)
    assert [tag for tag, _ in parser.tags].count("script") == 1
    assert [tag for tag, _ in parser.tags].count("img") == 0
    assert "alert" not in parser.scripts[0]
    assert all("onerror" not in attrs for _, attrs in parser.tags)


def test_html_is_self_contained() -> None:
    """Nothing loads from elsewhere: no src, no <link>, no CSS url() or @import. Citation
    links (<a href>, followed only when clicked) are the only addresses in the page."""
    html = render_html(_hostile_doc())
    parser = _TagCollector()
    parser.feed(html)
    tags = [tag for tag, _ in parser.tags]
    assert "link" not in tags and "iframe" not in tags and "img" not in tags and "object" not in tags
    assert all("src" not in attrs and "srcset" not in attrs for _, attrs in parser.tags)
    assert tags.count("style") == 1
    assert "url(" not in html and "@import" not in html
    hrefs = [attrs["href"] for tag, attrs in parser.tags if "href" in attrs]
    assert all(tag == "a" for tag, attrs in parser.tags if "href" in attrs)
    external = [h for h in hrefs if not h.startswith("#")]
    assert external and all(h.startswith("https://example.org/") for h in external), external
    assert "http://" not in html.replace("https://example.org/", "")


def test_html_shows_run_summary_and_failure_details() -> None:
    doc = make_doc(
        [
            make_record(max_ulp=0.5),
            make_record(
                verdict="fail",
                max_ulp=3.2e7,
                max_normalized=3.5,
                failure=make_case(),
                worst=make_case(),
                message="exceeds the bound",
            ),
            make_record(dtype="float64", verdict="skip", message="no float64 on this device"),
        ],
        complete=False,
    )
    html = render_html(doc)
    assert "INCOMPLETE" in html
    assert "<td>2.13.0</td>" in html  # adapter version in the header
    assert 'class="cell v-fail"' in html  # worst verdict colours the float32 cell
    assert "3.2e+07&nbsp;ulp" in html
    assert '<a href="#failure-0">' in html
    assert 'id="failure-0"' in html
    assert "4.248354255291589e-18" in html  # the exact value
    assert 'data-copy="failure-0-repro"' in html
    assert "F.cross_entropy(torch.tensor([[40.0, 0.0]]), torch.tensor([0]))" in html
    assert "no float64 on this device" in html
    assert "INCOMPLETE" not in render_html(make_doc([make_record()], complete=True))


def test_number_formatting() -> None:
    assert format_number(0.5) == "0.5"
    assert format_number(3.2e7) == "3.2e+07"
    assert format_number(math.inf) == "inf"
    assert format_number(math.nan) == "nan"
    assert format_number(12.0) == "12"
    assert format_number(1234.4) == "1234"
    assert format_number(4.2e-18) == "4.2e-18"
    assert format_number(None) == "—"
    assert format_duration(0.25) == "250 ms"
    assert format_duration(125) == "2 min 05 s"


def test_write_report_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "new" / "report"
    index = write_report(make_doc([make_record(max_ulp=math.inf)]), out)
    assert index == out / "index.html"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.json"]
    assert load_results(out / "results.json")["records"][0]["max_ulp"] == math.inf
    assert index.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_write_report_to_unwritable_dir_raises_report_dir_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ReportDirError, match="cannot write the report to") as info:
        write_report(make_doc([make_record()]), blocker / "report")
    assert "\n" not in str(info.value)
    assert str(info.value) == (
        f"cannot write the report to {blocker / 'report'}: Not a directory; "
        "choose a directory you can write to"
    )
    with pytest.raises(ReportDirError, match="it exists and is not a directory"):
        write_report(make_doc([make_record()]), blocker)


# --------------------------------------------------------------------------- CLI


def _cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_render(tmp_path: Path) -> None:
    write_json_atomic(
        tmp_path / "results.json", make_doc([make_record(), make_record(verdict="fail")])
    )
    out = tmp_path / "out"
    result = _cli("render", tmp_path / "results.json", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "index.html")
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.json"]
    assert len(load_results(out / "results.json")["records"]) == 2
    assert 'id="failure-0"' in (out / "index.html").read_text(encoding="utf-8")


def test_cli_merge(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", make_doc([make_record()]))
    write_json_atomic(
        tmp_path / "b.json",
        make_doc(
            [make_record(adapter="jax"), make_record(adapter="jax", verdict="fail")],
            adapters={"jax": {"version": "0.4.30", "module": "adapters.jax"}},
            complete=False,
        ),
    )
    out = tmp_path / "merged"
    result = _cli("merge", tmp_path / "a.json", tmp_path / "b.json", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "index.html")
    merged = load_results(out / "results.json")
    assert len(merged["records"]) == 3
    assert sorted(merged["run"]["adapters"]) == ["jax", "torch"]
    assert merged["run"]["complete"] is False
    assert merged["run"]["sources"] == [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert "INCOMPLETE" in (out / "index.html").read_text(encoding="utf-8")


def test_cli_rejects_a_file_that_is_not_results(tmp_path: Path) -> None:
    other = tmp_path / "package.json"
    other.write_text('{"name": "something-else", "version": "1.0"}')
    result = _cli("render", other, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{other} is not a lossconf results file: it has no schema_version" in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_missing_file_and_unwritable_dir_exit_2(tmp_path: Path) -> None:
    missing = _cli("render", tmp_path / "nope.json", "-o", tmp_path / "out")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"python -m reports: error: no such file: {tmp_path / 'nope.json'}"
    ]

    write_json_atomic(tmp_path / "results.json", make_doc([make_record()]))
    (tmp_path / "blocker").write_text("")
    unwritable = _cli("render", tmp_path / "results.json", "-o", tmp_path / "blocker" / "out")
    assert unwritable.returncode == 2
    lines = unwritable.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot write the report to" in lines[0]


def _edge_record(adapter: str, observed: str, verdict: str, label: str = "x_inf") -> dict:
    return {
        "nodeid": f"suites/test_conformance.py::test_edge_cases[{adapter}-bce-{label}-float32]",
        "test": "test_edge_cases", "adapter": adapter, "loss": "bce", "dtype": "float32",
        "case_label": label, "verdict": verdict,
        "worst": {"observed": observed, "exact": "0.0", "case": "bce(input=[inf])"},
    }


def test_semantic_differences_lists_edge_cases_where_adapters_disagree():
    from reports.summary import semantic_differences

    rows = semantic_differences(
        [
            _edge_record("torch", "nan", "deviation"),
            _edge_record("jax", "0.0", "pass"),
            _edge_record("torch", "1.0", "pass", label="same"),
            _edge_record("jax", "1.0", "pass", label="same"),
            _edge_record("torch", "2.0", "pass", label="alone"),
        ]
    )
    assert [(r["loss"], r["label"], r["dtype"], r["exact"]) for r in rows] == [("bce", "x_inf", "float32", "0.0")]
    assert rows[0]["adapters"] == [
        {"name": "jax", "observed": "0.0", "verdict": "pass"},
        {"name": "torch", "observed": "nan", "verdict": "deviation"},
    ]
    html = render_html(new_document(new_run_info(), [_edge_record("torch", "<b>nan</b>", "deviation"), _edge_record("jax", "0.0", "pass")]))
    assert 'id="differences"' in html and "&lt;b&gt;nan&lt;/b&gt;" in html


# --------------------------------------------------------------------------- report sections


def _failing(adapter: str, dtype: str, why: str, case: str, **fields: Any) -> dict[str, Any]:
    message = f"cross_entropy [{adapter}, {dtype}] does not conform to the spec\n  observed: nan\n  why:      {why}\n"
    return make_record(
        adapter=adapter, dtype=dtype, verdict="fail", message=message,
        nodeid=f"suites/test_conformance.py::test_matches_oracle[{adapter}-cross_entropy-{dtype}]",
        failure=make_case(observed="nan", case=case, message=message, **fields),
    )


def test_failures_are_grouped_by_adapter_loss_and_why_with_the_shortest_case() -> None:
    from reports.failures import failure_groups

    nan = "non-finite nan where the exact value is finite"
    records = [
        _failing("torch", "float32", nan, "cross_entropy(input=np.array([[-inf, 0.0, 1.0]]))", features=["infinite_input", "reduction_none"]),
        _failing("torch", "float64", nan, "cross_entropy(input=np.array([-inf]))", features=["infinite_input"]),
        _failing("torch", "float16", "error beyond the bound of the error model", "cross_entropy(input=np.array([1e4]))"),
        _failing("jax", "float32", nan, "cross_entropy(input=np.array([-inf]))"),
        make_record(),  # a pass: no group
    ]
    groups = failure_groups(records)
    assert [(g["adapter"], g["cause"], g["count"]) for g in groups] == [
        ("jax", nan, 1),
        ("torch", nan, 2),
        ("torch", "error beyond the bound of the error model", 1),
    ]
    nan_torch = groups[1]
    assert nan_torch["dtypes"] == ["float64", "float32"]
    assert nan_torch["detail"]["case"] == "cross_entropy(input=np.array([-inf]))"  # the shortest
    assert nan_torch["features"] == ["infinite_input"]  # shared by both
    assert [o["dtype"] for o in nan_torch["others"]] == ["float32"]
    assert len({g["anchor"] for g in groups}) == 3


def test_root_cause_without_a_why_line_masks_values() -> None:
    from reports.failures import root_cause

    a = make_record(verdict="fail", message="cross_entropy accepted label_smoothing=-0.1 (spec: [0, 1])")
    b = make_record(verdict="fail", message="cross_entropy accepted label_smoothing=1.5 (spec: [0, 1])")
    assert root_cause(a) == root_cause(b)
    assert "1.5" not in root_cause(b)
    assert root_cause(make_record(verdict="error", message="")) == "error without a message"


def test_html_failure_group_links_every_failing_cell_and_shows_features() -> None:
    nan = "non-finite nan where the exact value is finite"
    html = render_html(
        make_doc(
            [
                _failing("torch", "float32", nan, "cross_entropy(input=np.array([-inf]))", features=["infinite_input"]),
                _failing("torch", "float64", nan, "cross_entropy(input=np.array([[-inf, 1.0]]))", features=["infinite_input"]),
            ]
        )
    )
    assert html.count('<a href="#failure-0">') == 2  # float32 and float64 cells
    assert 'id="failure-1"' not in html  # one group, not one block per item
    assert "1 more with the same cause" in html
    assert '<span class="chip">infinite_input</span>' in html


def test_spec_option_of_maps_case_labels() -> None:
    from reports.options import spec_option_of

    assert spec_option_of("reduction=sum") == "reduction='sum'"
    assert spec_option_of("reduction=batchmean", "kl_div") == "reduction='batchmean'"
    assert spec_option_of("size_average=True") == spec_option_of("reduce=None") == "size_average/reduce (legacy)"
    assert spec_option_of("ignore_index=-1") == "ignore_index"
    assert spec_option_of("dim=0", "softmax") == "dim"
    assert spec_option_of("label_smoothing") == "label_smoothing"
    assert spec_option_of("label_smoothing=0") is None
    assert spec_option_of("log_target=True", "kl_div") == "log_target"
    assert spec_option_of("log_target=False", "kl_div") is None
    assert spec_option_of("K=2 extra dims", "cross_entropy") == "(N, C, d1..dK) input"
    assert spec_option_of("K=1 extra dims", "sigmoid") is None  # a shape, not an option of sigmoid
    assert spec_option_of("weight") == "weight"
    assert spec_option_of("something_new=3") == "something_new"


def test_option_matrix_puts_declared_status_beside_example_counts() -> None:
    from reports.options import UNDECLARED, option_matrix

    table = {
        "cross_entropy": {
            "(function)": ["native", "keras.losses.SparseCategoricalCrossentropy"],
            "weight": ["composed", "sample_weight = weight[target]"],
            "label_smoothing": ["unsupported", ""],
        },
        "nll_loss": {"(function)": ["native", ""], "class-index target": ["native", ""]},
    }
    records = [
        make_record(adapter="tf", examples=10, options={"weight": 4, "reduction=sum": 3, "label_smoothing=0": 10}),
        make_record(adapter="mine", examples=5, options={"weight": 5}),
        make_record(adapter="tf", loss="nll_loss", examples=7, options={}),
    ]
    blocks = {b["loss"]: b for b in option_matrix(records, {"tf": {"options": table}, "mine": {"options": None}})}
    ce = blocks["cross_entropy"]
    assert ce["adapters"] == ["mine", "tf"]
    rows = {row["option"]: row["cells"] for row in ce["rows"]}
    assert ce["rows"][0]["option"] == "(function)"
    assert rows["(function)"][1] == {"status": "native", "note": "keras.losses.SparseCategoricalCrossentropy", "examples": 10}
    assert rows["weight"][1]["status"] == "composed" and rows["weight"][1]["examples"] == 4
    assert rows["weight"][0] == {"status": UNDECLARED, "note": "", "examples": 5}
    assert rows["label_smoothing"][1] == {"status": "unsupported", "note": "", "examples": 0}
    assert rows["reduction='sum'"][1] == {"status": "unsupported", "note": "", "examples": 3}  # ran, though undeclared in the table
    nll = {row["option"]: row["cells"] for row in blocks["nll_loss"]["rows"]}
    assert nll["class-index target"][0]["examples"] == 7  # every NLL example has class indices


def test_deviation_rows_group_entries_and_link_only_http_citations() -> None:
    from reports.deviations import deviation_rows, safe_link

    entry = {"id": "bce-nan", "kind": "bug", "reason": "NaN at -inf", "citation": "https://github.com/x/y/issues/1", "count": 3}
    records = [
        make_record(verdict="deviation", deviations=[entry], deviation_example=make_case(observed="nan")),
        make_record(verdict="deviation", dtype="float64", deviations=[{**entry, "count": 2}]),
        make_record(verdict="deviation", adapter="tf", deviations=[{"id": "clip", "kind": "semantic", "reason": "r", "citation": "javascript:alert(1)", "count": 1}]),
    ]
    rows = deviation_rows(records)
    assert [(r["adapter"], r["id"], r["cases"], r["items"]) for r in rows] == [("tf", "clip", 1, 1), ("torch", "bce-nan", 5, 2)]
    assert rows[1]["dtypes"] == ["float64", "float32"]
    assert rows[1]["example"]["observed"] == "nan"
    assert rows[0]["link"] is None and rows[1]["link"] == "https://github.com/x/y/issues/1"
    assert safe_link(" HTTPS://a.b/c ") == "HTTPS://a.b/c"
    assert safe_link("data:text/html,x") is None
    html = render_html(make_doc(records))
    assert '<a href="https://github.com/x/y/issues/1"' in html
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown as text


def test_plots_escape_names_and_place_non_finite_errors() -> None:
    from reports.plots import distribution_plots, magnitude_plots

    records = [
        make_record(adapter=HOSTILE, samples=[[1.0, 0.5, 0.25], [1e8, math.inf, math.inf], [0.0, 0.0, 0.0]]),
        make_record(adapter="jax", dtype="float64", loss="nll_loss", samples=[[2.0, 0.1, 3.0]]),
    ]
    magnitude = magnitude_plots(records)
    assert [p["loss"] for p in magnitude] == ["cross_entropy"]  # nll_loss is no softmax/sigmoid loss
    svg = magnitude[0]["svg"]
    assert svg.count("<circle") == 3
    assert "<script" not in svg and "&lt;script&gt;" in svg
    distribution = distribution_plots(records)
    assert [(p["dtype"], p["samples"]) for p in distribution] == [("float64", 1), ("float32", 3)]
    assert "inf/nan" in distribution[1]["svg"]
    html = render_html(make_doc(records))
    assert html.count("<svg") == 3
    assert "<script>alert(1)" not in html


def test_sections_leave_out_empty_ones_and_keep_failures() -> None:
    from reports.html import SECTIONS

    ids = [s.id for s in SECTIONS]
    assert ids[:2] == ["summary", "failures"]
    html = render_html(make_doc([make_record(samples=[])]))
    assert 'id="deviations"' not in html and 'id="plots"' not in html
    assert 'id="failures"' in html and "No failures." in html
    assert 'href="#failures"' in html


def test_merge_keeps_adapter_option_tables() -> None:
    table = {"cross_entropy": {"(function)": ["native", "f"]}}
    a = make_doc([make_record()], adapters={"torch": {"version": "2.13", "module": "m", "options": None}})
    b = make_doc([make_record()], adapters={"torch": {"version": "2.13", "module": "m", "options": table}})
    merged = merge_results([a, b])
    assert merged["run"]["adapters"]["torch"]["options"] == table
    assert merge_results([b, a])["run"]["adapters"]["torch"]["options"] == table


def test_written_results_trim_passing_repro_and_keep_failures_whole(tmp_path: Path) -> None:
    doc = make_doc(
        [
            make_record(worst=make_case(repro="import torch  # passing")),
            make_record(verdict="fail", worst=make_case(repro="W"), failure=make_case(repro="F")),
        ]
    )
    write_report(doc, tmp_path)
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert "# passing" not in text
    loaded = load_results(tmp_path / "results.json")
    passing, failing = loaded["records"]
    assert passing["worst"]["repro"] == "" and passing["worst"]["case"]
    assert failing["failure"]["repro"] == "F" and failing["worst"]["repro"] == "W"
    assert sum(1 for line in text.splitlines() if line.startswith('{"nodeid"')) == 2


def test_accuracy_table_truncates_long_worst_cases_but_failures_show_them_whole() -> None:
    from reports.html import ACCURACY_CASE_CHARS

    long_case = "cross_entropy(input=np.array([" + ", ".join(["1.5"] * 3000) + "]))"
    passing = make_record(worst=make_case(case=long_case), max_normalized=0.5)
    html = render_html(make_doc([passing]))
    assert long_case not in html and "the full case is in results.json" in html
    assert long_case[:ACCURACY_CASE_CHARS - 100] in html
    failing = make_record(verdict="fail", failure=make_case(case=long_case), worst=make_case(case=long_case))
    assert long_case in render_html(make_doc([failing]))


def test_write_report_keeps_the_results_when_rendering_fails(tmp_path: Path, monkeypatch) -> None:
    import reports.html

    def broken(doc):
        raise RuntimeError("a template bug")

    monkeypatch.setattr(reports.html, "_render", broken)
    with pytest.raises(RuntimeError, match="a template bug"):
        write_report(make_doc([make_record(verdict="fail", failure=make_case())]), tmp_path)
    assert load_results(tmp_path / "results.json")["records"][0]["verdict"] == "fail"
    assert not (tmp_path / "index.html").exists()


# --------------------------------------------------------------------------- reliability additions


def _accepted_invalid(adapter: str, verdict: str, citation: str = "") -> dict[str, Any]:
    return make_record(
        test="test_rejects_invalid_input", adapter=adapter, verdict=verdict, case_label="label_smoothing_negative",
        failure=make_case(observed="array(1.31326169)", case="[label_smoothing_negative] cross_entropy(...)") if verdict == "fail" else None,
        deviation_example=make_case(observed="array(nan)") if verdict == "deviation" else None,
        deviations=[{"id": "accepts-it", "kind": "bug", "reason": "r", "citation": citation, "count": 1}] if verdict == "deviation" else [],
    )


def test_accepts_invalid_input_section_lists_fail_and_documented_rows() -> None:
    records = [
        _accepted_invalid("torch", "fail"),
        _accepted_invalid("jax", "deviation", citation="javascript:alert(1)"),
        _accepted_invalid("tensorflow", "deviation", citation="https://example.org/doc"),
        make_record(test="test_rejects_invalid_input", adapter="torch-nn", verdict="pass"),
        make_record(verdict="fail", failure=make_case()),  # an accuracy failure is not listed there
    ]
    from reports.invalid_input import invalid_input_rows

    rows = invalid_input_rows(records)
    assert [(r["adapter"], r["verdict"], r["returned"]) for r in rows] == [
        ("jax", "deviation", "array(nan)"), ("tensorflow", "deviation", "array(nan)"), ("torch", "fail", "array(1.31326169)"),
    ]
    html = render_html(make_doc(records))
    start = html.index('id="invalid-input"')
    section = html[start:html.index("</section>", start)]
    assert section.count("<tr data-row>") == 3
    assert 'href="https://example.org/doc"' in section
    assert "javascript:" not in section  # only https citations become links
    assert 'href="javascript:' not in html  # (the deviations table shows it as text, unlinked)


def test_no_invalid_input_section_when_everything_was_rejected() -> None:
    html = render_html(make_doc([make_record(test="test_rejects_invalid_input", verdict="pass")]))
    assert 'id="invalid-input"' not in html


def test_undecided_is_its_own_verdict_and_never_counted_as_pass() -> None:
    doc = make_doc([make_record(verdict="undecided", message="rounding undecided at 64 bits", failure=None)])
    cell = summarize(doc["records"])["cells"]["cross_entropy"]["torch"]["float32"]
    assert cell["counts"]["undecided"] == 1 and cell["counts"]["pass"] == 0
    assert cell["worst_verdict"] == "undecided"
    html = render_html(doc)
    assert 'class="failure v-undecided"' in html and "rounding undecided at 64 bits" in html


def test_appended_records_redact_this_machines_paths(tmp_path: Path) -> None:
    from reports.redact import _CHECKOUT

    leaky = f"failed in {sys.prefix}/lib/x.so, {Path.home()}/.cache/y and {_CHECKOUT}/build/z"
    append_record(tmp_path / "p.jsonl", make_record(verdict="error", message=leaky, failure=make_case(message=leaky)))
    text = (tmp_path / "p.jsonl").read_text()
    for path in (sys.prefix, str(_CHECKOUT)):
        assert f"{path}/" not in text
    [record] = read_records(tmp_path / "p.jsonl")
    assert record["message"] == "failed in <python>/lib/x.so, ~/.cache/y and <lossconf>/build/z"
    assert record["failure"]["message"] == record["message"]


def test_plots_take_the_extremes_of_float64() -> None:
    """Magnitudes up to float64's max and enormous errors: positions come from log10 values,
    so no power of ten is ever formed (10.0**309 overflows)."""
    from reports.plots import magnitude_plots

    biggest = 1.7976931348623157e308
    records = [make_record(dtype="float64", samples=[[biggest, 1e300, 1e300], [5e-324, 2e-5, 1.0], [1.0, 0.5, 0.5]])]
    svg = magnitude_plots(records)[0]["svg"]
    assert svg.count("<circle") == 3
    exponents = [int(e) for e in re.findall(r">1e(-?\d+)<", svg)]
    assert max(exponents) >= 200 and min(exponents) <= -200  # both axes span what was plotted
    assert '="nan' not in svg and "NaN" not in svg  # every coordinate is a number


def test_gradient_records_get_their_own_line_and_accuracy_rows() -> None:
    """Gradient tests (``test_gradient_*``) count in their cell and, separately, in the
    cell's ``gradient`` tallies; accuracy rows say which quantity they grade."""
    from reports.summary import accuracy_rows

    records = [
        make_record(max_ulp=0.5),
        make_record(test="test_gradient_matches_oracle", verdict="fail", max_ulp=9.0, max_normalized=2.0),
        make_record(test="test_gradient_edge_cases", verdict="deviation", max_ulp=1.0, max_normalized=0.5),
    ]
    cell = summarize(records)["cells"]["cross_entropy"]["torch"]["float32"]
    assert cell["records"] == 3 and cell["max_ulp"] == 9.0
    gradient = cell["gradient"]
    assert gradient["records"] == 2
    assert gradient["counts"]["fail"] == 1 and gradient["counts"]["deviation"] == 1
    assert gradient["max_ulp"] == 9.0 and gradient["worst_verdict"] == "fail"
    assert summarize([make_record()])["cells"]["cross_entropy"]["torch"]["float32"]["gradient"] is None
    quantities = {(r["test"], r["quantity"]) for r in accuracy_rows(records)}
    assert quantities == {
        ("test_matches_oracle", "value"),
        ("test_gradient_matches_oracle", "gradient"),
        ("test_gradient_edge_cases", "gradient"),
    }
    html = render_html(make_doc(records))
    assert 'class="gradient"' in html and "∇" in html
    assert "<td>gradient</td><td>test_gradient_matches_oracle</td>" in html


def test_gradient_records_name_the_parameter_they_differentiate() -> None:
    """A gradient record's ``wrt`` (issue 6: gradients w.r.t. target, weight, var...) gets its
    own accuracy row, and the summary cell's gradient line lists the parameters."""
    from reports.summary import accuracy_rows

    records = [
        make_record(test="test_gradient_matches_oracle", loss="mse_loss", wrt="input", max_ulp=0.5, max_normalized=0.1),
        make_record(test="test_gradient_matches_oracle", loss="mse_loss", wrt="target", verdict="fail", max_ulp=7.0, max_normalized=3.0),
    ]
    rows = {(r["test"], r["quantity"]): r for r in accuracy_rows(records)}
    assert set(rows) == {
        ("test_gradient_matches_oracle", "gradient w.r.t. input"),
        ("test_gradient_matches_oracle", "gradient w.r.t. target"),
    }
    assert rows[("test_gradient_matches_oracle", "gradient w.r.t. target")]["max_ulp"] == 7.0
    cell = summarize(records)["cells"]["mse_loss"]["torch"]["float32"]
    assert cell["gradient"]["wrt"] == ["input", "target"]
    html = render_html(make_doc(records))
    assert "gradient tests (w.r.t. input, target)" in html
    assert "<td>gradient w.r.t. target</td><td>test_gradient_matches_oracle</td>" in html
