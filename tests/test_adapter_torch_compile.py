"""Tests of the ``torch-compile`` adapters (``adapters/torch_compile.py``): contract and findings.

What must hold for their verdicts to mean anything: the calls really run compiled code
(Inductor), never a silent eager fallback, also past Dynamo's default recompile limit;
Dynamo's settings are changed only around the adapter's calls; one compiled callable
per function and static arguments; a bad argument raises the framework's own error; a
repro snippet is the compiled call that ran and gives the same bits; every spec option
has a declared status. And every entry of ``adapters/expectations/torch-compile.toml``
still describes compiled PyTorch: its minimal case still gives the quoted value, the
oracle disagrees, and the entry's condition selects the case.

Each compilation costs a second or more of CPU, so the cases are few and tiny.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
import torch._dynamo
from torch._dynamo.utils import counters

import oracle
from adapters import AdapterError, load_adapter, torch_compile
from adapters._loading import Adapter, _Access
from adapters.options import SPEC_OPTIONS, STATUSES
from oracle.core import format_of
from suites.cases import Case
from suites.checks import evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, builtin_expectations_file, load_expectations

NAMES = ("torch-compile", "torch-compile-dynamic")
# Entries of the gradient tests are re-checked in tests/test_gradient_findings.py.
ENTRIES = {
    e.id: e
    for e in load_expectations(EXPECTATIONS_DIR / "torch-compile.toml", default_adapters=NAMES)
    if not any(t.startswith("test_gradient") for t in e.tests)
}
INF, NAN = math.inf, math.nan
DEFAULT_RECOMPILE_LIMIT = torch._dynamo.config.recompile_limit


@pytest.fixture(scope="module")
def compiled():
    # not named ``adapter``: conftest parametrizes tests using that name as conformance tests
    return load_adapter("torch-compile")


@pytest.fixture(scope="module")
def compiled_dynamic():
    return load_adapter("torch-compile-dynamic")


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]


# -- loading, compilation, settings ----------------------------------------------------


def test_both_names_load_with_their_mode() -> None:
    for name, dynamic in zip(NAMES, (False, True)):
        adapter = load_adapter(name)
        assert (adapter.name, adapter.version) == (name, torch.__version__)
        assert adapter.implementation.dynamic is dynamic
        assert f"dynamic={dynamic}" in repr(adapter.implementation)
        assert 0 < adapter.examples_scale < 1


def test_a_new_shape_is_compiled_not_run_eagerly_past_the_default_recompile_limit(compiled) -> None:
    """One more shape than Dynamo's default limit (8): every call is a new graph, none eager."""
    sigmoid = compiled.function("sigmoid")
    before = _graphs()
    for n in range(1, DEFAULT_RECOMPILE_LIMIT + 2):
        x = np.linspace(-3.0, 3.0, n, dtype=np.float32)
        np.testing.assert_allclose(sigmoid(x), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    assert _graphs() - before == DEFAULT_RECOMPILE_LIMIT + 1
    assert torch._dynamo.config.recompile_limit == DEFAULT_RECOMPILE_LIMIT  # patched per call only
    assert not torch._dynamo.config.fail_on_recompile_limit_hit


def test_dynamic_shapes_compile_once_for_many_sizes(compiled_dynamic) -> None:
    sigmoid = compiled_dynamic.function("sigmoid")
    sigmoid(np.zeros(3, np.float32))  # sizes 0 and 1 are specialized; 3 makes it symbolic
    before = _graphs()
    for n in (4, 5, 7):
        sigmoid(np.zeros(n, np.float32))
    assert _graphs() == before


def test_one_compiled_callable_per_function_and_static_arguments(compiled) -> None:
    implementation = compiled.implementation
    x, t = np.array([[1.0, 2.0]], np.float32), np.array([0])
    start = implementation.compiled_callables
    compiled.function("cross_entropy")(x, t, reduction="sum")
    compiled.function("cross_entropy")(np.tile(x, (2, 1)), np.tile(t, 2), reduction="sum")
    assert implementation.compiled_callables == start + 1
    compiled.function("cross_entropy")(x, t, reduction="none")
    compiled.function("cross_entropy")(x, t, reduction="sum", weight=np.array([1.0, 2.0], np.float32))
    assert implementation.compiled_callables == start + 3


def test_gradient_runs_through_the_compiled_backward(compiled) -> None:
    x, t = np.array([[0.0, math.log(3.0)]], np.float32), np.array([0])
    before = counters["aot_autograd"]["total"]
    gradient = compiled.grad("cross_entropy", {"input": x, "target": t}, {})
    assert counters["aot_autograd"]["total"] > before
    assert gradient.dtype == np.float32 and gradient.shape == x.shape
    np.testing.assert_allclose(gradient, [[-0.75, 0.75]], rtol=2e-7)  # softmax - onehot


def test_a_recompiled_call_is_a_cache_hit_with_the_same_bits() -> None:
    """What ``--lossconf-cache DIR`` (``DIR/torch-inductor``, suites/caches.py) relies on: a
    new process compiling the same call finds Inductor's FX graph and AOTAutograd entries on
    disk instead of running g++, and the loaded kernels give the bits the compiled ones gave.
    A second adapter instance is a new compiled callable (Dynamo traces it again); clearing
    Inductor's in-memory caches leaves only the on-disk ones to hit."""
    from torch._inductor.utils import clear_caches

    x = np.array([0.1, 0.7, -2.5, 3.25, 1e-3], np.float32)
    t = np.array([1.0, -0.5, 0.0, 3.0, 2e-3], np.float32)
    keys = [("inductor", "fxgraph_cache_hit"), ("inductor", "fxgraph_cache_miss"),
            ("aot_autograd", "autograd_cache_hit"), ("aot_autograd", "autograd_cache_miss")]
    results, deltas = [], []
    for _ in range(2):
        adapter = load_adapter("torch-compile")
        before = [counters[group][key] for group, key in keys]
        value = adapter.function("huber_loss")(x, t, reduction="sum", delta=0.75)
        gradient = adapter.grad("huber_loss", {"input": x, "target": t}, {"reduction": "sum", "delta": 0.75})
        results.append((value, gradient))
        deltas.append(dict(zip([key for _, key in keys], (counters[g][k] - b for (g, k), b in zip(keys, before)))))
        clear_caches()
    # the second round: the inference graph and the forward/backward pair, all from disk
    assert deltas[1]["fxgraph_cache_miss"] == deltas[1]["autograd_cache_miss"] == 0, deltas
    assert deltas[1]["autograd_cache_hit"] == 2 and deltas[1]["fxgraph_cache_hit"] >= 1, deltas
    for first, second in zip(*results):
        assert first.dtype == second.dtype == np.float32
        assert np.array_equal(first.view(np.uint32), second.view(np.uint32))


def test_a_bad_argument_raises_the_frameworks_own_error(compiled) -> None:
    x, t = np.array([[1.0, 2.0]], np.float32), np.array([0])
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        compiled.function("cross_entropy")(x, t, reduction="average")


def test_device_names_are_checked() -> None:
    with pytest.raises(AdapterError, match="not a PyTorch device"):
        load_adapter("torch-compile", device="gpu0")


def test_examples_scale_is_validated() -> None:
    class Impl:
        def sigmoid(self, input):
            return input

    for bad in (0, 1.5, True, "0.5"):
        impl = Impl()
        impl.examples_scale = bad
        adapter = Adapter(impl, spec="x", module="x", device="cpu", access=_Access("x", (), None))
        with pytest.raises(AdapterError, match="examples_scale"):
            _ = adapter.examples_scale
    impl = Impl()
    assert Adapter(impl, spec="x", module="x", device="cpu", access=_Access("x", (), None)).examples_scale == 1.0


def test_both_adapters_share_their_own_expectations_file() -> None:
    for name in NAMES:
        assert builtin_expectations_file(name) == EXPECTATIONS_DIR / "torch-compile.toml"
    assert builtin_expectations_file("torch-nn") == EXPECTATIONS_DIR / "torch.toml"


# -- repro snippets and the option table -------------------------------------------------

REPRO_CASES = [
    ("cross_entropy", {"input": [[1.0, 2.0, -1.0], [0.5, 0.25, 3.0]], "target": [2, 0]},
     {"weight": [1.0, 2.0, 0.5], "reduction": "sum", "label_smoothing": 0.125}),
    ("binary_cross_entropy_with_logits", {"input": [-3.0, 0.5], "target": [0.0, 1.0]},
     {"pos_weight": [2.0], "reduction": "none"}),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
@pytest.mark.parametrize(("fn", "args", "kwargs"), REPRO_CASES, ids=[c[0] for c in REPRO_CASES])
def test_repro_snippet_is_the_compiled_call_bit_for_bit(compiled, dtype, fn, args, kwargs) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else array.astype(dtype)

    args = {k: convert(v) for k, v in args.items()}
    kwargs = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    expected = compiled.function(fn)(*args.values(), **kwargs)
    source = compiled.repro(fn, args, kwargs)
    assert "torch.compile(lambda " in source and "dynamic=False" in source
    namespace: dict[str, Any] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, "<repro>", "exec"), namespace)
    reproduced = namespace["out"].numpy()
    assert reproduced.dtype == expected.dtype and reproduced.shape == expected.shape
    assert np.array_equal(reproduced.reshape(-1).view(np.uint8), expected.reshape(-1).view(np.uint8))


def test_option_table_covers_every_spec_option() -> None:
    table = torch_compile.OPTION_TABLE
    assert set(table) == set(SPEC_OPTIONS)
    for loss, options in SPEC_OPTIONS.items():
        assert set(table[loss]) == {"(function)", *options}, loss
        assert all(status in STATUSES for status, _ in table[loss].values())
        assert table[loss]["(function)"][1].startswith(f"torch.compile(torch.nn.functional.{loss})")
    for uncapturable in ("ctc_loss", "gaussian_nll_loss"):
        assert {status for status, _ in table[uncapturable].values()} == {"unsupported"}
    assert all(status == "native" for loss in set(table) - {"ctc_loss", "gaussian_nll_loss"}
               for status, _ in table[loss].values())


@pytest.mark.parametrize("dynamic", [False, True])
def test_gaussian_nll_loss_cannot_be_captured_so_it_is_unsupported(dynamic) -> None:
    """``F.gaussian_nll_loss`` branches on ``torch.any(var < 0)``: ``fullgraph=True`` cannot
    trace it (dynamic=False and True), so the adapters declare the function unsupported. When
    torch can compile it, this fails: then drop it from ``torch_compile._UNCAPTURABLE`` and the
    option table, and run the gaussian_nll_loss gate."""
    import torch.nn.functional as F

    fn = torch.compile(lambda x, y, v: F.gaussian_nll_loss(x, y, v), backend="inductor", dynamic=dynamic, fullgraph=True)
    with pytest.raises(Exception, match="data.dependent|Data-dependent|SymBool"):
        fn(torch.zeros(3), torch.ones(3), torch.ones(3))
    adapter = load_adapter("torch-compile-dynamic" if dynamic else "torch-compile")
    with pytest.raises(NotImplementedError, match="torch.any"):
        adapter.function("gaussian_nll_loss")(np.zeros(3, np.float32), np.ones(3, np.float32), np.ones(3, np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_ctc_loss_cannot_be_captured_so_it_is_unsupported(name) -> None:
    """``aten._ctc_loss`` has a data-dependent output shape: Dynamo cannot put it in a full
    graph (it raises "Dynamic shape operator"), so the adapter reports *unsupported* rather
    than a failure, or a false "rejects invalid input" (every call raised, so an invalid target
    was "rejected" as well). When torch can compile it (pytorch/pytorch#184573), this fails:
    then drop the option table's ctc_loss row and run the ctc_loss gate."""
    adapter = load_adapter(name)
    log_probs = np.log(np.full((3, 1, 3), 1 / 3, np.float32))
    with pytest.raises(NotImplementedError, match="data-dependent output shape"):
        adapter.function("ctc_loss")(log_probs, np.array([[1, 2]]), np.array([3]), np.array([2]))


# -- findings: every torch-compile.toml entry, re-checked ----------------------------------


@dataclass(frozen=True)
class Minimal:
    entry: str
    test: str
    case: Case
    observed: list[float]
    shape: tuple[int, ...] | None = None  # the observed shape, where it is the deviation


def _case(fn, args, kwargs=None, dtype="float32", label=None) -> Case:
    np_dtype = format_of(dtype).numpy_dtype

    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else np.asarray(value, np.float64).astype(np_dtype)

    options = {k: convert(v) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    return Case(fn, {k: convert(v) for k, v in args.items()}, options, dtype, label)


MINIMAL_CASES: list[Minimal] = [
    Minimal("bce-with-logits-infinite-logit-nan", "test_edge_cases",
            _case("binary_cross_entropy_with_logits", {"input": [-INF], "target": [0.0]}, {"reduction": "none"}), [NAN]),
    Minimal("kl-div-zero-target-at-neg-inf-nan", "test_edge_cases",
            _case("kl_div", {"input": [-INF, 0.0], "target": [0.0, 1.0]}, {"reduction": "none"}), [NAN, 0.0]),
    Minimal("cross-entropy-probability-target-masked-class-nan", "test_edge_cases",
            _case("cross_entropy", {"input": [[1.0, -INF, 2.0]], "target": [[0.5, 0.0, 0.5]]}, {"reduction": "none"}), [NAN]),
    Minimal("soft-margin-exp-overflow", "test_edge_cases",
            _case("soft_margin_loss", {"input": [-100.0], "target": [1.0]}, {"reduction": "none"}, "float16"), [INF]),
    Minimal("soft-margin-exp-overflow", "test_edge_cases",
            _case("soft_margin_loss", {"input": [-100.0], "target": [1.0]}, {"reduction": "none"}), [INF]),
    Minimal("multilabel-soft-margin-infinite-logit-nan", "test_edge_cases",
            _case("multilabel_soft_margin_loss", {"input": [[INF, -INF]], "target": [[1.0, 0.0]]}, {"reduction": "none"}), [NAN]),
    Minimal("cross-entropy-accepts-negative-label-smoothing", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [0]}, {"label_smoothing": -0.1},
                  label="label_smoothing_negative"), [float(np.float32("1.3132616"))]),
    Minimal("margin-losses-accept-labels-other-than-plus-minus-one", "test_rejects_invalid_input",
            _case("hinge_embedding_loss", {"input": [0.5], "target": [0.0]}, label="target_label_0"), [1.0]),
    Minimal("margin-losses-broadcast-mismatched-shapes", "test_rejects_invalid_input",
            _case("hinge_embedding_loss", {"input": [0.5, 1.0], "target": [1.0]}, label="target_shape_mismatch"), [0.75]),
    Minimal("squared-norm-out-of-range", "test_edge_cases",
            _case("triplet_margin_loss", {"anchor": [[1e20, 0.0]], "positive": [[0.0, 0.0]], "negative": [[0.0, 1.0]]},
                  {"reduction": "none"}), [NAN]),
    Minimal("hinge-argument-overflow", "test_edge_cases",
            _case("multi_margin_loss", {"input": [[-3.4028234663852886e38, 3.4028234663852886e38]], "target": [0]},
                  {"reduction": "none"}), [INF]),
    Minimal("hinge-argument-overflow", "test_edge_cases",
            _case("multi_margin_loss", {"input": [[-1.7976931348623157e308, 1.7976931348623157e308]], "target": [0]},
                  {"reduction": "none"}, "float64"), [INF]),
    Minimal("unbatched-class-margin-none-shape", "test_edge_cases",
            _case("multi_margin_loss", {"input": [0.5, 1.0, 2.0], "target": np.array(1)}, {"reduction": "none"},
                  label="unbatched_input"), [float(np.float32(5 / 6))], shape=(1,)),
    Minimal("multilabel-margin-padding-counted", "test_edge_cases",
            _case("multilabel_margin_loss", {"input": [[0.1, 0.2, 0.4, 0.8]], "target": [[3, 0, -1, 1]]},
                  {"reduction": "none"}, "float64", label="docs_example"), [2.05]),
    Minimal("margin-reduction-intermediate-overflow", "test_legacy_reduction_arguments",
            _case("multilabel_soft_margin_loss", {"input": [[3.4028234663852886e38] * 2], "target": [[0.0, 0.0]]},
                  {"reduction": "none"}), [INF]),
    Minimal("margin-reduction-intermediate-overflow", "test_matches_oracle",
            _case("multilabel_soft_margin_loss", {"input": [[3.3895313892515355e38] * 2], "target": [[0.0, 0.0]]},
                  {"reduction": "none"}, "bfloat16"), [INF]),
    Minimal("cosine-embedding-epsilon", "test_edge_cases",
            _case("cosine_embedding_loss", {"input1": [[1.0, 0.0], [1.0, 2.0]], "input2": [[0.0, 3.0], [2.0, 4.0]],
                                            "target": [1.0, 1.0]}, {"reduction": "none"}, "float64"),
            [1.0, 1.2501111257279263e-13]),
    # p = 2: z = 2**64 + 1, z*z = 2**128 overflows float32 before weight[y] = 0 multiplies it
    Minimal("multi-margin-squared-hinge-overflow", "test_legacy_reduction_arguments",
            _case("multi_margin_loss", {"input": [[0.0, -1.8446744073709552e19]], "target": [1]},
                  {"p": 2, "weight": [1.0, 0.0], "reduction": "none"}), [NAN]),
    Minimal("multi-margin-squared-hinge-overflow", "test_matches_oracle",
            _case("multi_margin_loss", {"input": [[0.0, -1.8446744073709552e19]], "target": [1]},
                  {"p": 2, "weight": [1.0, 0.0], "reduction": "none"}, "bfloat16"), [NAN]),
    Minimal("cross-entropy-probability-target-overflowing-logit-spread-nan", "test_matches_oracle",
            _case("cross_entropy", {"input": [3.4028234663852886e38, -(2.0**103)], "target": [1.0, 0.0]},
                  {"reduction": "none"}), [NAN]),
    Minimal("label-smoothing-intermediate-overflow", "test_matches_oracle",
            _case("cross_entropy", {"input": [[0.0, 1.4099964044844815e38, -5.828685348162604e37]], "target": [0]},
                  {"reduction": "none", "label_smoothing": 0.1}), [INF]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("mse_loss", {"input": [0.0], "target": [1.8446744073709552e19]}, {"weight": [0.0], "reduction": "none"}), [NAN]),
    Minimal("smooth-l1-accepts-negative-beta", "test_rejects_invalid_input",
            _case("smooth_l1_loss", {"input": [1.0], "target": [0.0]}, {"beta": -0.5}, "float64",
                  label="beta_negative"), [1.25]),
    Minimal("reduction-sum-overflow", "test_legacy_reduction_arguments",
            _case("smooth_l1_loss", {"input": [0.0, 3.1223867017594384e38], "target": [2.804368660378982e37, 0.0]},
                  {"beta": 0.5}), [INF]),
    Minimal("bce-accepts-probability-outside-0-1", "test_rejects_invalid_input",
            _case("binary_cross_entropy", {"input": [1.5], "target": [1.0]}, None, "float64",
                  label="probability_above_one"), [NAN]),
    Minimal("reduction-sum-overflow", "test_legacy_reduction_arguments",
            _case("nll_loss", {"input": [0.0] * 10 + [8.507059173023462e37, 0.0], "target": np.array(10)},
                  {"weight": [0.0] * 10 + [4.0, 0.0]}), [-INF]),
    Minimal("reduction-sum-overflow", "test_legacy_reduction_arguments",
            _case("binary_cross_entropy_with_logits", {"input": [8.5070586659632215e37] * 5, "target": [0.0] * 5}), [INF]),
    Minimal("kl-div-batchmean-survives-legacy-arguments", "test_legacy_reduction_arguments",
            _case("kl_div", {"input": [1.0, 0.0], "target": [1.0, 0.0]},
                  {"reduction": "batchmean", "size_average": False, "reduce": False}), [-0.5, 0.0]),
    Minimal("reduction-sum-overflow", "test_legacy_reduction_arguments",
            _case("poisson_nll_loss", {"input": [0.0] * 8 + [8.402763980480044e37, 2.5625471697493322e38],
                                       "target": [0.0] * 10}, {"log_input": False}), [INF]),
    Minimal("l1-loss-weight-dropped", "test_edge_cases",
            _case("l1_loss", {"input": [0.5, -3.0, 2.0, 0.25], "target": [0.0, 1.0, -2.0, 0.25]},
                  {"weight": [0.25, 1.0, 4.0, 0.0]}), [2.125]),
    Minimal("reduction-sum-overflow", "test_matches_oracle",
            _case("l1_loss", {"input": [3e38, 3e38], "target": [0.0, 0.0]}), [INF]),
]  # fmt: skip


def test_half_precision_is_computed_in_float32_where_eager_overflows(compiled) -> None:
    """Where compiled code is right and eager PyTorch is not (README "Findings"): Inductor
    computes float16 in float32, so ``exp(12)`` does not overflow, and the soft-margin entry's
    condition (``soft_margin_exp_overflows_upcast``) leaves this case out."""
    case = _case("soft_margin_loss", {"input": [-12.0], "target": [1.0]}, {"reduction": "none"}, "float16")
    observed = case.call(compiled.function(case.fn))
    assert observed.tolist() == [12.0]  # exact 12.000006, float16 12.0; eager PyTorch: inf
    assert not ENTRIES["soft-margin-exp-overflow"].matches("torch-compile", "test_edge_cases", case)


def test_every_expectations_entry_has_a_minimal_case() -> None:
    assert {m.entry for m in MINIMAL_CASES} == set(ENTRIES)
    for entry in ENTRIES.values():
        assert entry.adapters == NAMES, f"{entry.id} must name the two torch-compile adapters"


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_documented_deviation_still_exists(compiled, minimal: Minimal) -> None:
    """Compiled PyTorch still returns the documented value, the oracle (the spec)
    disagrees, and the entry's condition selects the case, for these adapters only."""
    case, entry = minimal.case, ENTRIES[minimal.entry]
    observed = case.call(compiled.function(case.fn))
    assert observed.dtype == format_of(case.dtype).numpy_dtype
    if minimal.shape is not None:
        assert observed.shape == minimal.shape
    expected = np.asarray(minimal.observed, dtype=np.float64).reshape(observed.shape)
    np.testing.assert_array_equal(observed.astype(np.float64), expected)
    if entry.kind == "accepts-invalid-input":
        with pytest.raises(ValueError):
            case.call(getattr(oracle, case.fn))  # the spec rejects what compiled torch accepted
    else:
        rounded = np.asarray(evaluate_oracle(case).rounded, dtype=np.float64)
        same = observed.shape == rounded.shape and bool(
            ((observed.astype(np.float64) == rounded) | (np.isnan(observed.astype(np.float64)) & np.isnan(rounded))).all()
        )
        assert not same, f"compiled PyTorch now agrees with the spec on {case.describe()}: retire [{entry.id}]"
    assert entry.matches("torch-compile", minimal.test, case), f"[{entry.id}] no longer selects {case.describe()}"
    assert not entry.matches("torch", minimal.test, case)


def test_the_default_run_leaves_the_compile_adapters_out() -> None:
    """They are opt-in (``--adapter torch-compile``): compiling every case costs CPU-hours."""
    import conftest

    class Config:
        def getoption(self, name):
            return []

    default = conftest.selected_adapters(Config())
    assert "torch" in default and not set(default) & set(NAMES)
