"""Tests of the ``onnxruntime`` adapter (``adapters/onnxruntime_losses.py``): contract and findings.

What must hold for its verdicts to mean anything: arrays reach ONNX Runtime and come back
bit for bit; outputs keep the input's dtype and the spec's shape; the dtypes and operators
the adapter declares unsupported really are (no bfloat16 kernel; no other ONNX loss
operator); a repro snippet is the very model that ran and gives the same bits; every spec
option has a declared status. And every entry of ``adapters/expectations/onnxruntime.toml``
still describes ONNX Runtime: its minimal case still differs from the oracle as written,
and the entry's condition matches that case.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import oracle
from adapters import AdapterUnavailableError, load_adapter, onnxruntime_losses
from adapters._onnx_models import IMPORTS, OPSET, NodeModel
from adapters._spec import SPEC_FUNCTIONS
from adapters.options import SPEC_OPTIONS, STATUSES
from oracle.core import format_of
from suites.cases import Case
from suites.checks import check_case, evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, load_expectations

from .bit_exact import assert_same_bits, cast

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)]
DTYPE_IDS = [d.name for d in FLOAT_DTYPES]
INF, NAN = math.inf, math.nan
ENTRIES = {e.id: e for e in load_expectations(EXPECTATIONS_DIR / "onnxruntime.toml")}
NATIVE = ("cross_entropy", "nll_loss", "softmax", "log_softmax", "sigmoid")


@pytest.fixture(scope="module")
def ort_adapter():
    # not named ``adapter``: conftest parametrizes tests using that name as conformance tests
    return load_adapter("onnxruntime")


# -- identification, dtypes, shapes -------------------------------------------------------


def test_identification_and_no_gradients(ort_adapter) -> None:
    assert (ort_adapter.name, ort_adapter.spec) == ("onnxruntime", "onnxruntime")
    assert ort_adapter.version == f"{ort.__version__} (onnx {onnx.__version__})"
    assert not ort_adapter.supports_grad  # inference-only package: no gradient tests
    with pytest.raises(AdapterUnavailableError, match="CPUExecutionProvider only"):
        load_adapter("onnxruntime", device="cuda")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_nll_none_is_the_negated_gathered_input_bit_for_bit(ort_adapter, dtype: np.dtype) -> None:
    """The input reaches ONNX Runtime and the loss comes back unrounded: ``-x[n, t_n]``
    exactly, for subnormals, -0, extremes and infinities (float16 through its Casts too)."""
    fmt = format_of(dtype)
    column = [0.0, -0.0, 1.0, -2.5, fmt.smallest_subnormal, -fmt.smallest_subnormal,
              fmt.smallest_normal, fmt.max_finite, -fmt.max_finite, INF, -INF]  # fmt: skip
    x = cast(np.stack([column, np.zeros(len(column))], axis=1), dtype)
    out = ort_adapter.function("nll_loss")(x, np.zeros(len(column), np.int64), reduction="none")
    assert_same_bits(out, -x[:, 0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "shape"),
    [
        ("cross_entropy", ([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], [0, 2]), {}, ()),
        ("cross_entropy", ([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], [0, 2]), {"reduction": "none"}, (2,)),
        ("cross_entropy", ([1.0, 2.0, 3.0], 1), {"reduction": "none"}, ()),
        ("cross_entropy", ([1.0, 2.0, 3.0], 1), {"reduction": "sum"}, ()),
        ("cross_entropy", (np.arange(24.0).reshape(2, 3, 2, 2) / 8, np.zeros((2, 2, 2), int)), {"reduction": "none"}, (2, 2, 2)),
        ("nll_loss", ([[-1.0, -2.0], [-0.5, -4.0]], [1, -100]), {"weight": [0.5, 2.0]}, ()),
        ("softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": 0}, (2, 2)),
        ("log_softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": -1}, (2, 2)),
        ("sigmoid", (2.0,), {}, ()),
        ("sigmoid", ([[2.0, -1.0, 0.5]],), {}, (1, 3)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_output_has_the_input_dtype_and_the_spec_shape(ort_adapter, dtype, fn, args, kwargs, shape) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    positional = [convert(a) for a in args]
    options = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    out = ort_adapter.function(fn)(*positional, **options)
    assert isinstance(out, np.ndarray) and not isinstance(out, np.generic)
    assert out.dtype == dtype and out.shape == shape, (out.dtype, out.shape)
    assert np.all(np.isfinite(out.astype(np.float64)))


def test_float64_is_computed_in_float64(ort_adapter) -> None:
    """A float32 computation would be ~1e-8 off; the oracle's float64 value is met to 4 ULP."""
    x = np.array([[0.0, 1e-9, 1.0 / 3.0], [2.0, -1.0, 0.1]])
    out = ort_adapter.function("cross_entropy")(x, np.array([1, 2]), reduction="none")
    exact = np.array([float(v) for v in oracle.cross_entropy(x, np.array([1, 2]), reduction="none")])
    assert out.dtype == np.float64
    assert np.all(np.abs(out - exact) <= 4 * np.spacing(exact)), (out, exact)


def _bare_session(op: str, elem_type: int, with_target: bool) -> None:
    inputs = [helper.make_tensor_value_info("x", elem_type, ["n", "c"])]
    names = ["x"]
    if with_target:
        inputs.append(helper.make_tensor_value_info("t", TensorProto.INT64, ["n"]))
        names.append("t")
    node = helper.make_node(op, names, ["y"])
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", elem_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("fn", NATIVE)
def test_bfloat16_is_unsupported_because_the_cpu_provider_cannot_run_it(ort_adapter, fn: str) -> None:
    """The adapter's claim, re-checked: ONNX Runtime cannot even build a bfloat16 session
    of the operator (a float32 one builds)."""
    op = onnxruntime_losses._OPERATORS[fn]
    with_target = fn in ("cross_entropy", "nll_loss")
    _bare_session(op, TensorProto.FLOAT, with_target)
    with pytest.raises(Exception, match=r"NOT_IMPLEMENTED|INVALID_GRAPH"):
        _bare_session(op, TensorProto.BFLOAT16, with_target)
    x = np.array([[1.0, 2.0]], BF16)
    args = (x, np.array([0])) if with_target else (x,)
    with pytest.raises(NotImplementedError, match="bfloat16"):
        ort_adapter.function(fn)(*args, **({"dim": 1} if "softmax" in fn else {}))


def test_float16_runs_in_float32_between_casts(tmp_path) -> None:
    """The module docstring's claim: the CPU provider has no float16 kernel for these
    operators, so ONNX Runtime surrounds them with Casts to float32."""
    kernels = {(k.op_name, t) for k in ort.capi._pybind_state.get_all_opkernel_def()
               if k.provider == "CPUExecutionProvider" and k.domain == ""
               for t in k.type_constraints.get("T", [])}  # fmt: skip
    for op in ("Sigmoid", "Softmax", "LogSoftmax"):
        assert (op, "tensor(float)") in kernels and (op, "tensor(float16)") not in kernels
    model = NodeModel("Sigmoid", (("input", "float16", 1),), ("float16", 1))
    namespace: dict[str, Any] = dict(onnxruntime_losses._NAMESPACE)
    exec(model.source(), namespace)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 4
    ort.InferenceSession(namespace["model"].SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node] == ["Cast", "Sigmoid", "Cast"]


def test_onnx_has_no_other_loss_operator() -> None:
    """The module docstring's claim: of every ONNX operator (all domains), only these two
    are losses; nothing else could be mapped natively."""
    names = {s.name for s in onnx.defs.get_all_schemas_with_history()}
    assert {n for n in names if "loss" in n.lower() or "entropy" in n.lower()} == {
        "SoftmaxCrossEntropyLoss",
        "NegativeLogLikelihoodLoss",
    }


def test_sessions_are_cached_per_operator_dtype_rank_and_attributes(ort_adapter) -> None:
    fresh = onnxruntime_losses.create(device="cpu")
    for n in (1, 3, 7):  # shapes of one rank share a session (symbolic dimensions)
        fresh.cross_entropy(np.zeros((n, 4), np.float32), np.zeros(n, np.int64))
    assert len(fresh._sessions) == 1
    fresh.cross_entropy(np.zeros((2, 4), np.float32), np.zeros(2, np.int64), reduction="sum")
    fresh.cross_entropy(np.zeros((2, 4)), np.zeros(2, np.int64))
    assert len(fresh._sessions) == 3


# -- unsupported options and functions ------------------------------------------------------


@pytest.mark.parametrize("fn", sorted(set(SPEC_FUNCTIONS) - set(NATIVE)))
def test_losses_onnx_lacks_are_unsupported(ort_adapter, fn: str) -> None:
    arrays = [np.ones((2, 3), np.float32) for _ in SPEC_FUNCTIONS[fn]]
    with pytest.raises(NotImplementedError, match="ONNX defines no operator"):
        ort_adapter.function(fn)(*arrays)


def test_options_the_operators_lack_are_unsupported(ort_adapter) -> None:
    x = np.array([[1.0, 2.0]], np.float32)
    ce = ort_adapter.function("cross_entropy")
    with pytest.raises(NotImplementedError, match="class-probability targets"):
        ce(x, np.array([[0.5, 0.5]], np.float32))
    with pytest.raises(NotImplementedError, match="label_smoothing"):
        ce(x, np.array([0]), label_smoothing=0.1)
    for size_average, reduce in [(True, None), (None, False)]:
        with pytest.raises(NotImplementedError, match="size_average/reduce"):
            ce(x, np.array([0]), size_average=size_average, reduce=reduce)
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        ce(x.astype(np.int32), np.array([0]))


def test_weighted_mean_and_ignore_index_are_the_spec_formula(ort_adapter) -> None:
    """mean = sum_n w_{y_n} r_{n,y_n} / sum_n w_{y_n} over the positions not ignored."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5], [0.2, -1.0, 2.0], [5.0, 0.0, 1.0]])
    t = np.array([0, 2, 1, 1])
    w = np.array([0.25, 1.0, 4.0])
    shifted = x - x.max(axis=1, keepdims=True)
    r = -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
    kept = t != 1
    by_hand = np.sum(w[t[kept]] * r[kept, t[kept]]) / np.sum(w[t[kept]])
    for fn, data in (("cross_entropy", x), ("nll_loss", -r)):
        out = ort_adapter.function(fn)(data, t, weight=w, ignore_index=1)
        np.testing.assert_allclose(out, by_hand, rtol=1e-14)
    assert np.isnan(ort_adapter.function("cross_entropy")(x, np.full(4, -100)))
    assert ort_adapter.function("cross_entropy")(x, np.full(4, -100), reduction="sum") == 0


# -- repro snippets and the option table ------------------------------------------------------

REPRO_CASES = [
    ("cross_entropy", {"input": [[1.0, -INF, 2.5], [0.1, 0.2, 0.3]], "target": [0, -100]}, {"weight": [0.5, 1.0, 2.0]}),
    ("cross_entropy", {"input": [1.0, -2.0, 0.5], "target": 2}, {"reduction": "none"}),
    ("cross_entropy", {"input": np.arange(12.0).reshape(1, 3, 4) / 7, "target": np.array([[0, 2, 1, 1]])}, {"reduction": "sum"}),
    ("nll_loss", {"input": [[-1.0, -2.0], [-0.3, -0.1]], "target": [1, 0]}, {"ignore_index": 0}),
    ("softmax", {"input": [[1.0, 2.0, 1e4]]}, {"dim": 0}),
    ("log_softmax", {"input": [[1.0, 2.0, 1e4]]}, {"dim": 1}),
    ("sigmoid", {"input": [-3.0, 0.5]}, {}),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("fn", "args", "kwargs"), REPRO_CASES, ids=[c[0] for c in REPRO_CASES])
def test_repro_snippet_is_the_model_that_ran_and_gives_its_bits(ort_adapter, dtype, fn, args, kwargs) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    args = {k: convert(v) for k, v in args.items()}
    kwargs = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    expected = ort_adapter.function(fn)(*args.values(), **kwargs)
    assert expected.dtype == dtype
    source = ort_adapter.repro(fn, args, kwargs)
    ran = onnxruntime_losses.plan(fn, ort_adapter.implementation._bind(fn, args, kwargs)).model
    assert source.startswith("\n".join(IMPORTS)) and ran.source() in source
    assert ran in ort_adapter.implementation._sessions  # the adapter ran this very model
    namespace: dict[str, Any] = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(source, "<repro>", "exec"), namespace)
    assert printed.getvalue().startswith(str(np.dtype(dtype)))
    assert_same_bits(np.asarray(namespace["out"]), expected)


def test_repro_of_an_unsupported_call_says_why(ort_adapter) -> None:
    text = ort_adapter.repro("cross_entropy", {"input": np.ones((1, 2), BF16), "target": np.array([0])}, {})
    assert text.startswith("# the onnxruntime adapter refuses this call") and "bfloat16" in text


def test_option_table_covers_every_spec_option() -> None:
    table = onnxruntime_losses.OPTION_TABLE
    assert list(table) == list(SPEC_OPTIONS)
    for loss, options in SPEC_OPTIONS.items():
        assert set(table[loss]) == {"(function)", *options}, loss
        for option, (status, note) in table[loss].items():
            assert status in STATUSES and note, (loss, option, status)
        native = table[loss]["(function)"][0] == "native"
        assert native == (loss in NATIVE), loss  # nothing composed out of primitive operators
        assert table[loss].get("size_average/reduce (legacy)", ("unsupported",))[0] == "unsupported"


# -- the sigmoid findings' condition is not narrower than the defect --------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_conforms_above_minus_2(ort_adapter, dtype: str) -> None:
    """``input_below_minus_2`` (the sigmoid entries' ``when``) covers every failure: on a grid
    of [-2, 30] ONNX Runtime's Sigmoid passes the error model."""
    grid = np.unique(np.concatenate([np.linspace(-2.0, 30.0, 129), -np.logspace(-6, np.log10(2.0), 24)]))
    x = grid.astype(dtype)
    outcome = check_case(ort_adapter, Case("sigmoid", {"input": x}, {}, dtype))
    assert outcome.passed, outcome.message


# -- every expected deviation still holds on its minimal case --------------------------------


@dataclass(frozen=True)
class Minimal:
    """An entry's minimal case, the test it stands for, and what ONNX Runtime returns on it."""

    entry: str
    test: str
    case: Case
    observed: list[float] | None  # None: checked by ``check`` instead
    check: Callable[[np.ndarray], bool] | None = None


def _case(fn, args, kwargs=None, dtype="float32", label="") -> Case:
    numpy_dtype = format_of(dtype).numpy_dtype
    converted = {
        k: np.asarray(v, dtype=np.int64) if np.asarray(v).dtype.kind in "iu" else cast(v, numpy_dtype)
        for k, v in args.items()
    }
    options = {k: cast(v, numpy_dtype) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    return Case(fn, converted, options, dtype, label)


MINIMAL_CASES = [
    Minimal("sigmoid-float32-mlas-logistic-absolute-accuracy", "test_matches_oracle",
            _case("sigmoid", {"input": [-17.0, -20.0, -4.0]}), [8.940696716308594e-08, 0.0, 0.0179862380027771]),
    Minimal("sigmoid-float32-mlas-logistic-absolute-accuracy", "test_edge_cases",
            _case("sigmoid", {"input": [40.0, -40.0]}, label="large_magnitudes"), [1.0, 0.0]),
    Minimal("sigmoid-float64-one-minus-cancellation", "test_matches_oracle",
            _case("sigmoid", {"input": [-40.0, -20.0, -3.0]}, dtype="float64"),
            [0.0, 2.06115369216775e-09, 0.047425873177566635]),
    Minimal("log-softmax-float64-positive-infinity-gives-minus-inf", "test_edge_cases",
            _case("log_softmax", {"input": [[INF, 0.0]]}, {"dim": 1}, "float64", "pos_inf_row_is_nan"), [NAN, -INF]),
    Minimal("weighted-class-loss-overflows-before-weighting", "test_matches_oracle",
            _case("cross_entropy", {"input": [[-54624.0, 10896.0]], "target": [0]},
                  {"weight": [0.5, 1.0], "reduction": "none"}, "float16"), [INF]),
    Minimal("weighted-class-loss-overflows-before-weighting", "test_matches_oracle",
            _case("cross_entropy", {"input": [[-54624.0, 10896.0]], "target": [0]},
                  {"weight": [0.0, 1.0], "reduction": "none"}, "float16"), [NAN]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("nll_loss", {"input": [[-3e38], [-1e38], [2e38]], "target": [0, 0, 0]}, {"reduction": "sum"}), [INF]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("nll_loss", {"input": [[-3e38], [-1e38], [2e38]], "target": [0, 0, 0]}, {"reduction": "mean"}), [INF]),
    Minimal("negative-class-index-wraps", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [-1]}, label="negative_target_not_ignore_index"), None,
            lambda out: float(out) == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)),
    Minimal("negative-class-index-wraps", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [-1]}, label="negative_target_not_ignore_index"), [2.0]),
    Minimal("class-weight-length-not-checked", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [0]}, {"weight": [1.0, 1.0, 1.0]}, label="weight_wrong_length"), None,
            lambda out: float(out) == pytest.approx(math.log1p(math.exp(1.0)), rel=1e-6)),
    Minimal("class-weight-length-not-checked", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [0]}, {"weight": [1.0]}, label="weight_wrong_length"), [1.0]),
    Minimal("target-extra-dims-smaller-than-input-accepted", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": np.zeros((1, 2, 3)), "target": [[0, 1]]}, label="target_extra_dims_mismatch"), None,
            lambda out: float(out) == pytest.approx(math.log(2.0), rel=1e-6)),
    Minimal("unknown-reduction-is-sum", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0], [3.0, 1.0]], "target": [0, 0]}, {"reduction": "avg"}, label="unknown_reduction"), None,
            lambda out: float(out) == pytest.approx(math.log1p(math.exp(1.0)) + math.log1p(math.exp(-2.0)), rel=1e-6)),
    Minimal("unknown-reduction-is-sum", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0], [-3.0, -1.0]], "target": [0, 0]}, {"reduction": "avg"}, label="unknown_reduction"), [4.0]),
]  # fmt: skip


def test_every_expectations_entry_has_a_minimal_case() -> None:
    assert {m.entry for m in MINIMAL_CASES} == set(ENTRIES)
    for entry in ENTRIES.values():
        assert entry.adapters == ("onnxruntime",), f"{entry.id} must name the onnxruntime adapter only"
        assert entry.citation.startswith("https://"), entry.id


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_documented_deviation_still_exists(ort_adapter, minimal: Minimal) -> None:
    """ONNX Runtime still returns the documented value, the oracle (the spec) disagrees, and
    the entry's condition selects the case, for this adapter and test only."""
    case, entry = minimal.case, ENTRIES[minimal.entry]
    observed = case.call(ort_adapter.function(case.fn))
    assert observed.dtype == format_of(case.dtype).numpy_dtype
    if minimal.observed is not None:
        expected = np.asarray(minimal.observed, dtype=np.float64).reshape(observed.shape)
        np.testing.assert_array_equal(observed.astype(np.float64), expected)
    else:
        assert minimal.check(observed), observed  # type: ignore[misc]
    if entry.kind == "accepts-invalid-input":
        with pytest.raises(ValueError):
            case.call(getattr(oracle, case.fn))  # the spec rejects what ONNX Runtime accepted
    else:
        outcome = check_case(ort_adapter, case)
        assert not outcome.passed, f"ONNX Runtime now conforms on {case.describe()}: retire [{entry.id}]"
        rounded = np.asarray(evaluate_oracle(case).rounded)
        assert not np.array_equal(observed.astype(np.float64), rounded, equal_nan=True)
    assert entry.matches("onnxruntime", minimal.test, case), f"[{entry.id}] no longer selects {case.describe()}"
    assert not entry.matches("torch", minimal.test, case)
