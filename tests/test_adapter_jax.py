"""Tests of the ``jax`` adapter (``adapters/jax_losses.py``): its contract and its findings.

What must hold for its conformance verdicts to mean anything: arrays cross into
JAX and back bit for bit (bfloat16 included); outputs keep the input's dtype and
the spec's shape; float64 is really computed in float64 while JAX's 64-bit mode
stays off outside the call; a repro snippet is the program that ran and gives
the same bits; every spec option has a declared status; the composed idioms
compute the spec's formula. And every entry of ``adapters/expectations/jax.toml``
still describes JAX: its minimal case still differs from the oracle as written,
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

pytest.importorskip("optax")

import jax
import jax.numpy as jnp

import oracle
from adapters import AdapterError, AdapterUnavailableError, jax_losses, load_adapter
from adapters.options import SPEC_OPTIONS, STATUSES
from oracle.core import format_of
from suites.cases import Case
from suites.checks import evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, load_expectations
from suites.registry import spec_for

from .bit_exact import assert_same_bits, cast

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
DTYPE_IDS = [d.name for d in FLOAT_DTYPES]
INF = math.inf
# Entries of the gradient tests are re-checked in tests/test_gradient_findings.py.
ENTRIES = {
    e.id: e for e in load_expectations(EXPECTATIONS_DIR / "jax.toml")
    if not any(t.startswith("test_gradient") for t in e.tests)
}


@pytest.fixture(scope="module")
def jax_adapter():
    # not named ``adapter``: conftest parametrizes tests using that name as conformance tests
    return load_adapter("jax")


def x64_is_off() -> bool:
    return not jax.config.jax_enable_x64 and not jax.enable_x64.value


# -- conversion, dtypes, shapes ------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_arrays_cross_into_jax_and_back_bit_for_bit(jax_adapter, dtype: np.dtype) -> None:
    """Every bit pattern of the dtype but NaN payloads: subnormals, -0, +-inf, extremes."""
    fmt = format_of(dtype)
    values = [0.0, -0.0, 1.0, -2.5, fmt.smallest_subnormal, -fmt.smallest_subnormal,
              fmt.smallest_normal, fmt.max_finite, -fmt.max_finite, INF, -INF]  # fmt: skip
    array = cast(values, dtype)
    impl = jax_adapter.implementation
    with jax.enable_x64(dtype == np.float64):
        (device,) = impl._device_arrays({"input": jax_losses._host_array("input", array)})
        assert device.dtype == dtype
        back = np.array(device)
    assert_same_bits(back, array)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_nll_none_is_the_negated_gathered_input_exactly(jax_adapter, dtype: np.dtype) -> None:
    x = cast([[-0.5, -3.25, -1e4], [-7.0, -0.0, -1.5]], dtype)
    out = jax_adapter.function("nll_loss")(x, np.array([2, 0]), reduction="none")
    assert_same_bits(out, -x[[0, 1], [2, 0]])


# float16 and float64 here; the repro test below checks every function's dtype in all four
@pytest.mark.parametrize("dtype", [np.dtype(np.float16), np.dtype(np.float64)], ids=["float16", "float64"])
@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "shape"),
    [
        ("cross_entropy", ([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], [0, 2]), {}, ()),
        ("cross_entropy", ([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], [0, 2]), {"reduction": "none"}, (2,)),
        ("cross_entropy", ([1.0, 2.0, 3.0], 1), {"reduction": "none"}, ()),
        ("cross_entropy", (np.arange(24.0).reshape(2, 3, 2, 2) / 8, np.zeros((2, 2, 2), int)), {"reduction": "none"}, (2, 2, 2)),
        ("cross_entropy", (np.arange(24.0).reshape(2, 3, 2, 2) / 8, np.full((2, 3, 2, 2), 1 / 3)), {"reduction": "sum"}, ()),
        ("nll_loss", ([[-1.0, -2.0], [-0.5, -4.0]], [1, -100]), {}, ()),
        ("binary_cross_entropy", ([0.25, 0.5, 1.0], [1.0, 0.0, 1.0]), {"reduction": "none"}, (3,)),
        ("binary_cross_entropy_with_logits", ([[0.5, -1.0]], [[1.0, 0.0]]), {"pos_weight": [2.0, 1.0]}, ()),
        ("kl_div", ([[-1.0, -0.5], [-2.0, -0.125]], [[0.5, 0.5], [0.25, 0.75]]), {"reduction": "batchmean"}, ()),
        ("kl_div", ([[-1.0, -0.5]], [[-0.7, -0.7]]), {"reduction": "none", "log_target": True}, (1, 2)),
        ("softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": 0}, (2, 2)),
        ("log_softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": -1}, (2, 2)),
        ("sigmoid", (2.0,), {}, ()),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_output_has_the_input_dtype_and_the_spec_shape(jax_adapter, dtype, fn, args, kwargs, shape) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    positional = [convert(a) for a in args]
    options = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    out = jax_adapter.function(fn)(*positional, **options)
    assert isinstance(out, np.ndarray) and not isinstance(out, np.generic)
    assert out.dtype == dtype and out.shape == shape, (out.dtype, out.shape)
    assert np.all(np.isfinite(out.astype(np.float64)))


def test_float64_is_computed_in_float64_and_x64_is_scoped(jax_adapter) -> None:
    """A float32 computation would be ~1e-8 off; the oracle's float64 value is met to 4 ULP."""
    assert x64_is_off()
    x = np.array([[0.0, 1e-9, 1.0 / 3.0], [2.0, -1.0, 0.1]])
    out = jax_adapter.function("cross_entropy")(x, np.array([1, 2]), reduction="none")
    assert out.dtype == np.float64
    exact = np.array([float(v) for v in oracle.cross_entropy(x, np.array([1, 2]), reduction="none")])
    assert np.all(np.abs(out - exact) <= 4 * np.spacing(exact)), (out, exact)
    assert x64_is_off(), "the adapter left JAX's 64-bit mode on"
    assert jnp.asarray(np.float64(1.0)).dtype == np.float32


def test_jit_cache_keeps_the_modes_apart(jax_adapter) -> None:
    """The same program traced for float64 (64-bit mode) and float32 (default mode)."""
    fresh = jax_losses.create(device="cpu")
    x32 = np.array([[0.1, 0.7, -2.0]], np.float32)
    before = fresh.cross_entropy(x32, np.array([1]), label_smoothing=0.2)
    jax_adapter.function("cross_entropy")(x32.astype(np.float64), np.array([1]), label_smoothing=0.2)
    after = jax_adapter.function("cross_entropy")(x32, np.array([1]), label_smoothing=0.2)
    assert_same_bits(after, before)
    assert x64_is_off()


def test_device_names_are_checked() -> None:
    assert jax_losses.create(device="cpu:0").device.platform == "cpu"
    with pytest.raises(AdapterError, match="not a JAX device"):
        jax_losses.create(device="nonsense")
    with pytest.raises(AdapterUnavailableError, match="cpu:7"):
        jax_losses.create(device="cpu:7")


# -- repro snippets, option table, composed idioms -----------------------------------------

REPRO_CASES = [
    ("cross_entropy", {"input": [[1.0, -INF, 2.5], [0.1, 0.2, 0.3]], "target": [0, -100]}, {"label_smoothing": 0.3, "weight": [0.5, 1.0, 2.0]}),
    ("cross_entropy", {"input": np.arange(12.0).reshape(1, 3, 4) / 7, "target": np.full((1, 3, 4), 0.25)}, {"reduction": "none"}),
    ("nll_loss", {"input": [[-1.0, -2.0], [-0.3, -0.1]], "target": [1, 0]}, {"ignore_index": 0}),
    ("binary_cross_entropy", {"input": [0.1, 0.0, 0.75], "target": [1.0, 0.5, 0.0]}, {"reduction": "sum"}),
    ("binary_cross_entropy_with_logits", {"input": [[3.0, -0.5]], "target": [[1.0, 0.25]]}, {"pos_weight": [1.5, 3.0], "weight": [0.5, 2.0]}),
    ("kl_div", {"input": [[-1.0, -0.5]], "target": [[0.25, 0.75]]}, {"reduction": "mean"}),
    ("log_softmax", {"input": [[1.0, 2.0, 1e4]]}, {"dim": 1}),
    ("sigmoid", {"input": [-3.0, 0.5]}, {}),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("fn", "args", "kwargs"), REPRO_CASES, ids=[c[0] for c in REPRO_CASES])
def test_repro_snippet_reproduces_the_output_bit_for_bit(jax_adapter, dtype, fn, args, kwargs) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    args = {k: convert(v) for k, v in args.items()}
    kwargs = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    expected = jax_adapter.function(fn)(*args.values(), **kwargs)
    assert expected.dtype == dtype
    source = jax_adapter.repro(fn, args, kwargs)
    assert source.startswith("import jax\n") and "@jax.jit" in source
    assert ('jax_enable_x64", True' in source) == (dtype == np.float64)
    namespace: dict[str, Any] = {}
    saved = jax.config.jax_enable_x64
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(source, "<repro>", "exec"), namespace)
        reproduced = np.array(namespace["out"])
    finally:
        jax.config.update("jax_enable_x64", saved)
    assert printed.getvalue().startswith(str(np.dtype(dtype)))
    assert_same_bits(reproduced, expected)


def test_option_table_covers_every_spec_option() -> None:
    table = jax_losses.OPTION_TABLE
    assert set(table) == set(SPEC_OPTIONS)
    for loss, options in SPEC_OPTIONS.items():
        assert set(table[loss]) == {"(function)", *options}, loss
        for option, (status, note) in table[loss].items():
            assert status in STATUSES, (loss, option, status)
            assert note, (loss, option)
        assert table[loss].get("size_average/reduce (legacy)", ("unsupported",))[0] == "unsupported"


def _neg_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def test_composed_weighted_mean_is_the_spec_formula(jax_adapter) -> None:
    """mean = sum_n w_{y_n} r_{n,y_n} / sum_n w_{y_n} over the rows not ignored."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5], [0.2, -1.0, 2.0], [5.0, 0.0, 1.0]])
    t = np.array([0, 2, -100, 1])
    w = np.array([0.25, 1.0, 4.0])
    r = _neg_log_softmax(x)
    kept = t != -100
    rows, classes = np.arange(4)[kept], t[kept]
    by_hand = np.sum(w[classes] * r[rows, classes]) / np.sum(w[classes])
    for fn, data in (("cross_entropy", x), ("nll_loss", -r)):
        out = jax_adapter.function(fn)(data, t, weight=w)
        np.testing.assert_allclose(out, by_hand, rtol=1e-14)


def test_composed_smoothing_with_weights_is_the_spec_formula(jax_adapter) -> None:
    """t_n = (1-eps) w_y r_y + eps/C sum_c w_c r_c (PyTorch's), mean over sum w_y."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]])
    t, w, eps = np.array([0, 2]), np.array([0.5, 1.0, 2.0]), 0.25
    r = _neg_log_softmax(x)
    terms = (1 - eps) * w[t] * r[[0, 1], t] + eps / 3 * (r * w).sum(axis=1)
    out = jax_adapter.function("cross_entropy")(x, t, weight=w, label_smoothing=eps, reduction="none")
    np.testing.assert_allclose(out, terms, rtol=1e-14)
    mean = jax_adapter.function("cross_entropy")(x, t, weight=w, label_smoothing=eps)
    np.testing.assert_allclose(mean, terms.sum() / w[t].sum(), rtol=1e-14)


def test_all_ignored_mean_is_nan_and_sum_is_zero(jax_adapter) -> None:
    x, t = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([-100, -100])
    assert np.isnan(jax_adapter.function("cross_entropy")(x, t))
    assert jax_adapter.function("cross_entropy")(x, t, reduction="sum") == 0
    assert np.isnan(jax_adapter.function("nll_loss")(x, t, weight=np.ones(2, np.float32)))


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        ("cross_entropy", ([[1.0, 2.0]], [0])),
        ("nll_loss", ([[-1.0, -2.0]], [0])),
        ("binary_cross_entropy", ([0.5], [1.0])),
        ("binary_cross_entropy_with_logits", ([0.5], [1.0])),
        ("kl_div", ([-1.0], [0.5])),
    ],
)
@pytest.mark.parametrize(("size_average", "reduce"), [(True, None), (None, False), (False, True)])
def test_legacy_reduction_arguments_are_unsupported(jax_adapter, fn, args, size_average, reduce) -> None:
    positional = [np.asarray(a, dtype=np.int64 if isinstance(a[0], int) else np.float32) for a in args]
    with pytest.raises(NotImplementedError, match="size_average/reduce"):
        jax_adapter.function(fn)(*positional, size_average=size_average, reduce=reduce)
    assert jax_adapter.function(fn)(*positional, size_average=None, reduce=None).shape == ()


def test_what_the_spec_rejects_statically_raises(jax_adapter) -> None:
    x = np.array([[1.0, 2.0]], np.float32)
    with pytest.raises(ValueError, match="reduction"):
        jax_adapter.function("cross_entropy")(x, np.array([0]), reduction="avg")
    with pytest.raises(ValueError, match="out of bounds"):
        jax_adapter.function("softmax")(x, dim=2)
    with pytest.raises(TypeError, match="incompatible shapes"):
        jax_adapter.function("binary_cross_entropy")(np.array([0.5, 0.5]), np.array([1.0, 0.0, 1.0]))


def test_grad_matches_the_oracle_and_keeps_the_dtype(jax_adapter) -> None:
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]])
    t = np.array([0, 2])
    kwargs = {"weight": np.array([0.5, 1.0, 2.0]), "label_smoothing": 0.1}
    got = jax_adapter.grad("cross_entropy", {"input": x, "target": t}, kwargs)
    exact = oracle.cross_entropy_grad(x, t, **kwargs).astype(np.float64)
    np.testing.assert_allclose(got, exact, rtol=1e-13, atol=1e-16)
    x16 = x.astype(BF16)
    assert jax_adapter.grad("log_softmax", {"input": x16}, {"dim": 1}).dtype == BF16
    with pytest.raises(ValueError, match="not a floating array"):
        jax_adapter.grad("cross_entropy", {"input": x, "target": t}, {}, wrt="target")
    assert x64_is_off()


# -- the executable cache (adapters/_jax_executables.py) ----------------------------------

#: Programs of several kinds (class indices and weights, a clamp, optax's KL with log targets,
#: a norm, CTC's scan), as value calls and as gradients with respect to their first argument.
#: Float lists become the dtype under test; integer arrays stay class indices / lengths.
CACHED_PROGRAMS = [
    ("cross_entropy", {"input": [[1.0, -2.5, 0.25], [3.0, 4.0, -0.5]], "target": np.array([0, 2])},
     {"weight": [0.5, 1.0, 2.0], "ignore_index": 1, "label_smoothing": 0.1, "reduction": "mean"}),
    ("binary_cross_entropy", {"input": [0.1, 0.999, 1e-3], "target": [0.0, 1.0, 0.5]}, {"reduction": "sum"}),
    ("kl_div", {"input": [[-1.0, -0.5]], "target": [[-0.7, -0.7]]}, {"reduction": "none", "log_target": True}),
    ("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[0.5, 2.5]], "negative": [[3.0, -1.0]]},
     {"p": 1.5, "reduction": "mean"}),
    ("ctc_loss", {"log_probs": np.log(np.full((3, 1, 3), 1.0 / 3.0)).tolist(), "targets": np.array([[1, 2]]),
                  "input_lengths": np.array([3]), "target_lengths": np.array([2])}, {"reduction": "mean"}),
]


def _run_all(impl, dtype) -> list[np.ndarray]:
    """Each program's value (through the spec method) and gradient, in ``dtype``."""
    out = []
    for fn, arguments, options in CACHED_PROGRAMS:
        arrays = {k: cast(v, dtype) if isinstance(v, list) else v for k, v in arguments.items()}
        kwargs = {k: cast(v, dtype) if isinstance(v, list) else v for k, v in options.items()}
        out.append(getattr(impl, fn)(**arrays, **kwargs))
        out.append(impl.grad(fn, arrays, kwargs, wrt=next(iter(arrays))))
    return out


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_executable_cache_gives_the_bits_of_jit(tmp_path, monkeypatch, dtype) -> None:
    """Stored (a miss: lowered and compiled ahead of time) and loaded from disk in a fresh
    adapter (a hit: no tracing), every value and gradient has the bits ``jax.jit`` gives."""
    from adapters import _jax_executables as executables

    monkeypatch.delenv(executables.ENV, raising=False)
    expected = _run_all(jax_losses.create(device="cpu"), dtype)
    monkeypatch.setenv(executables.ENV, str(tmp_path))
    storing = jax_losses.create(device="cpu")
    stored = _run_all(storing, dtype)
    assert (storing._executables.misses, storing._executables.hits) == (2 * len(CACHED_PROGRAMS), 0)
    loading = jax_losses.create(device="cpu")
    loaded = _run_all(loading, dtype)
    assert (loading._executables.misses, loading._executables.hits) == (0, 2 * len(CACHED_PROGRAMS))
    assert not loading._compiled, "a hit traced a program"
    for want, miss, hit in zip(expected, stored, loaded):
        assert_same_bits(miss, want)
        assert_same_bits(hit, want)
    assert x64_is_off()


def test_executable_cache_recompiles_a_corrupt_or_foreign_entry(tmp_path, monkeypatch) -> None:
    import pickle

    from adapters import _jax_executables as executables

    monkeypatch.setenv(executables.ENV, str(tmp_path))
    x, t = np.array([[1.0, 2.0, 0.5]], np.float32), np.array([2])
    want = jax_losses.create(device="cpu").cross_entropy(x, t)
    (entry,) = tmp_path.glob("*/*.pickle")
    data = pickle.loads(entry.read_bytes())
    entry.write_bytes(pickle.dumps({**data, "key": data["key"].replace("jax ", "jax 0.0.1-other ", 1)}))
    foreign = jax_losses.create(device="cpu")
    assert_same_bits(foreign.cross_entropy(x, t), want)
    assert (foreign._executables.rejected, foreign._executables.misses) == (1, 1)
    assert pickle.loads(entry.read_bytes())["key"] == data["key"], "the foreign entry was not replaced"
    for damage in (entry.read_bytes()[:100], b"not a pickle", pickle.dumps({**data, "executable": b"garbage"})):
        entry.write_bytes(damage)
        damaged = jax_losses.create(device="cpu")
        assert_same_bits(damaged.cross_entropy(x, t), want)
        assert (damaged._executables.rejected, damaged._executables.misses) == (1, 1)
    reloaded = jax_losses.create(device="cpu")
    assert_same_bits(reloaded.cross_entropy(x, t), want)
    assert reloaded._executables.hits == 1


def test_executable_key_separates_what_changes_the_program() -> None:
    from adapters import _jax_executables as executables

    device = jax.devices("cpu")[0]
    a = np.zeros((2, 3), np.float32)
    key = executables.describe("src", [a], x64=False, device=device)
    others = [
        executables.describe("src2", [a], x64=False, device=device),
        executables.describe("src", [a.astype(np.float16)], x64=False, device=device),
        executables.describe("src", [a.reshape(3, 2)], x64=False, device=device),
        executables.describe("src", [a], x64=True, device=device),
        executables.describe("src", [a, a], x64=False, device=device),
    ]
    assert len({key, *others}) == 6
    assert jax.__version__ in key and executables._host() in key
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
        assert executables.describe("src", [a], x64=False, device=device) != key
    with jax.numpy_dtype_promotion("strict"):
        assert executables.describe("src", [a], x64=False, device=device) != key
    with pytest.MonkeyPatch.context() as patch, jax.disable_jit():
        patch.setenv(executables.ENV, "/somewhere")
        assert executables.cache_directory() is None, "jax.disable_jit must not run compiled programs"
    from suites.caches import JAX_EXECUTABLES

    assert executables.ENV == JAX_EXECUTABLES, "suites/caches.py sets the variable the adapter reads"


# -- every expected deviation still holds on its minimal case --------------------------------


@dataclass(frozen=True)
class Minimal:
    """An entry's minimal case, the test it stands for, and what JAX returns on it."""

    entry: str
    test: str
    case: Case
    observed: list[float] | None  # None: checked by ``check`` instead
    check: Callable[[np.ndarray], bool] | None = None
    matched: Case | None = None  # the case the entry selects, when a property derives ``case``
    dtype: str | None = None  # the dtype JAX returns, when that is the deviation


def _case(fn, args, kwargs=None, dtype="float32", label="") -> Case:
    converted = {
        k: np.asarray(v, dtype=np.int64) if np.asarray(v).dtype.kind in "iu" else cast(v, format_of(dtype).numpy_dtype)
        for k, v in args.items()
    }
    options = {k: cast(v, format_of(dtype).numpy_dtype) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    return Case(fn, converted, options, dtype, label)


NAN = math.nan
MINIMAL_CASES = [
    Minimal("sigmoid-bce-infinite-logit-nan", "test_edge_cases",
            _case("binary_cross_entropy_with_logits", {"input": [INF, -INF], "target": [1.0, 0.0]}, {"reduction": "none"}), [NAN, NAN]),
    Minimal("sigmoid-bce-infinite-logit-nan", "test_matches_oracle",
            _case("binary_cross_entropy_with_logits", {"input": [INF], "target": [1.0]}, {"reduction": "none", "pos_weight": [2.0]}), [NAN]),
    Minimal("kl-divergence-zero-target-at-neg-inf-nan", "test_edge_cases",
            _case("kl_div", {"input": [-INF, 0.0], "target": [0.0, 1.0]}, {"reduction": "none"}), [NAN, 0.0]),
    Minimal("kl-divergence-zero-target-at-neg-inf-nan", "test_edge_cases",
            _case("kl_div", {"input": [-1.0, 0.0], "target": [-INF, 0.0]}, {"reduction": "none", "log_target": True}), [NAN, 0.0]),
    Minimal("class-index-out-of-range-nan", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [2]}, label="target_class_out_of_range"), [NAN]),
    Minimal("class-index-out-of-range-nan", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [2]}, label="target_class_out_of_range"), [NAN]),
    Minimal("negative-class-index-wraps", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [-1]}, label="negative_target_not_ignore_index"), None,
            lambda out: float(out) == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)),
    Minimal("negative-class-index-wraps", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [-1]}, label="negative_target_not_ignore_index"), [2.0]),
    Minimal("smooth-labels-accepts-alpha-outside-unit-interval", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [0]}, {"label_smoothing": 1.5}, label="label_smoothing_above_one"), None,
            lambda out: float(out) == pytest.approx(0.56326, rel=1e-4)),
    Minimal("smooth-labels-accepts-alpha-outside-unit-interval", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [0]}, {"label_smoothing": -0.1}, label="label_smoothing_negative"), None,
            lambda out: float(out) == pytest.approx(1.36326, rel=1e-4)),
    Minimal("class-weight-length-not-checked", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [0]}, {"weight": [1.0, 1.0, 1.0]}, label="weight_wrong_length"), None,
            lambda out: float(out) == pytest.approx(math.log1p(math.exp(1.0)), rel=1e-6)),
    Minimal("class-weight-length-not-checked", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [0]}, {"weight": [1.0]}, label="weight_wrong_length"), [1.0]),
    Minimal("bce-probability-outside-unit-interval-nan", "test_rejects_invalid_input",
            _case("binary_cross_entropy", {"input": [1.5], "target": [1.0]}, label="probability_above_one"), [NAN]),
    Minimal("bce-probability-outside-unit-interval-nan", "test_rejects_invalid_input",
            _case("binary_cross_entropy", {"input": [-0.25], "target": [1.0]}, label="negative_probability"), [NAN]),
    Minimal("bce-probability-outside-unit-interval-nan", "test_rejects_invalid_input",
            _case("binary_cross_entropy", {"input": [NAN], "target": [1.0]}, label="nan_probability"), [NAN]),
    Minimal("xla-cpu-denormals-are-zero", "test_edge_cases",
            _case("binary_cross_entropy", {"input": [1e-40], "target": [1.0]}, {"reduction": "none"}), [100.0]),
    Minimal("xla-cpu-denormals-are-zero", "test_edge_cases",
            _case("binary_cross_entropy", {"input": [9.183549615799121e-41], "target": [1.0]}, {"reduction": "none"}, "bfloat16"), [100.0]),
    Minimal("xla-cpu-flush-to-zero", "test_matches_oracle", _case("sigmoid", {"input": [-88.0]}), [0.0]),
    Minimal("xla-cpu-flush-to-zero", "test_matches_oracle",
            _case("softmax", {"input": [[0.0, -88.0]]}, {"dim": 1}), [1.0, 0.0]),
    Minimal("xla-cpu-flush-to-zero", "test_matches_oracle", _case("sigmoid", {"input": [-708.5]}, dtype="float64"), [0.0]),
    Minimal("xla-cpu-flush-to-zero", "test_matches_oracle",
            _case("nll_loss", {"input": [[0.5]], "target": [0]}, {"weight": [1.1754943508222875e-38]}, "bfloat16"), [0.0]),
    Minimal("sigmoid-exp-overflow-underflows-to-zero", "test_matches_oracle",
            _case("sigmoid", {"input": [-11.5, -10.0]}, dtype="float16"), None,
            lambda out: out[0] == 0 and out[1] == np.float16(4.536e-05)),
    Minimal("cross-entropy-overflowing-logit-spread", "test_matches_oracle",
            _case("cross_entropy", {"input": [[0.0, 35424.0, -30096.0]], "target": [0]},
                  {"label_smoothing": 0.1, "reduction": "none"}, "float16"), [INF]),
    Minimal("cross-entropy-overflowing-logit-spread", "test_matches_oracle",
            _case("cross_entropy", {"input": [[3.4028234663852886e38, -(2.0**103)]], "target": [[0.75, 0.25]]},
                  {"reduction": "none"}), [INF]),
    Minimal("zero-class-weight-on-masked-class-is-zero", "test_matches_oracle",
            _case("cross_entropy", {"input": [[-INF, 0.0]], "target": [[1.0, 0.0]]},
                  {"weight": [0.0, 1.0], "reduction": "none"}), [0.0]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("nll_loss", {"input": [[-3e38], [-1e38], [2e38]], "target": [0, 0, 0]}, {"reduction": "sum"}), [INF]),
    Minimal("reduction-intermediate-overflow", "test_properties",
            _case("nll_loss", {"input": [[-3e38], [-1e38], [2e38]], "target": [0, 0, 0]}, {"reduction": "sum"}, "bfloat16"), [INF]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("nll_loss", {"input": [[32768.0]], "target": [0]}, {"weight": [2.0]}, "float16"), [-INF]),
    Minimal("smoothed-mean-over-zero-weight-is-inf", "test_matches_oracle",
            _case("cross_entropy", {"input": np.zeros((2, 3)), "target": [0, 0]},
                  {"weight": [0.0, 0.0, 1.0], "label_smoothing": 0.1}, "float64"), [INF]),
    Minimal("float64-log1p-inaccurate-near-minus-0-41", "test_matches_oracle",
            _case("binary_cross_entropy", {"input": [0.4141892], "target": [0.0]}, {"reduction": "none"}, "float64"),
            [0.5347584084320454]),
    Minimal("float64-log1p-inaccurate-in-bce-of-sigmoid-property", "test_properties",
            _case("binary_cross_entropy", {"input": [0.40733340004593027], "target": [0.0]}, {"reduction": "none"}, "float64"),
            [0.523123264139831],
            matched=_case("binary_cross_entropy_with_logits", {"input": [-0.375], "target": [0.0]}, {"reduction": "none"}, "float64")),
    # regression losses (issue 4)
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("huber_loss", {"input": [54336.0], "target": [-11184.0]}, {"delta": 0.5, "reduction": "none"}, "float16"), [INF]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("smooth_l1_loss", {"input": [0.0], "target": [32768.0]}, {"beta": 2.0, "reduction": "none"}, "float16"), [INF]),
    Minimal("huber-squared-error-underflows-before-division-by-beta", "test_edge_cases",
            _case("smooth_l1_loss", {"input": [2.0**-12], "target": [0.0]}, {"beta": 2.0**-10, "reduction": "none"}, "float16"), [0.0]),
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("huber_loss", {"input": [1.0], "target": [0.0]}, {"delta": -1.0}, "float64", "delta_negative"), [-1.5]),
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("huber_loss", {"input": [1.0], "target": [0.0]}, {"delta": 0.0}, "float64", "delta_zero"), [0.0]),
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("smooth_l1_loss", {"input": [1.0], "target": [0.0]}, {"beta": -0.5}, "float64", "beta_negative"), [1.25]),
    # ctc_loss (issue 4): the registry's own edge cases
    Minimal("ctc-loss-half-precision-returns-float32", "test_edge_cases",
            spec_for("ctc_loss").edge_cases["empty_target_is_all_blank_path"]("float16"),
            None, lambda out: out.dtype == np.float32, dtype="float32"),
    Minimal("ctc-loss-impossible-alignment-is-log-epsilon", "test_edge_cases",
            spec_for("ctc_loss").edge_cases["impossible_alignment_is_inf"]("float32"), [100000.375]),
    Minimal("ctc-loss-normalizes-logits", "test_edge_cases",
            spec_for("ctc_loss").edge_cases["empty_target_is_all_blank_path"]("float32"),
            [3.7009048461914062]),
]  # fmt: skip


def test_every_expectation_has_a_minimal_case() -> None:
    from .test_margin_findings import MARGIN_ENTRY_IDS  # the margin losses' entries

    assert {m.entry for m in MINIMAL_CASES} | MARGIN_ENTRY_IDS["jax"] == set(ENTRIES)
    for entry in ENTRIES.values():
        assert entry.adapters == ("jax",), f"{entry.id} must name the jax adapter only"


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_documented_deviation_still_exists(jax_adapter, minimal: Minimal) -> None:
    """JAX still returns the documented value, the oracle (the spec) disagrees, and the
    entry's condition selects the case, for this adapter and test only."""
    case, entry = minimal.case, ENTRIES[minimal.entry]
    observed = case.call(jax_adapter.function(case.fn))
    assert observed.dtype == (np.dtype(minimal.dtype) if minimal.dtype else format_of(case.dtype).numpy_dtype)
    if minimal.observed is not None:
        expected = np.asarray(minimal.observed, dtype=np.float64).reshape(observed.shape)
        np.testing.assert_array_equal(observed.astype(np.float64), expected)
    else:
        assert minimal.check(observed), observed  # type: ignore[misc]
    if entry.kind == "accepts-invalid-input":
        with pytest.raises(ValueError):
            case.call(getattr(oracle, case.fn))  # the spec rejects what JAX accepted
    else:
        rounded = np.asarray(evaluate_oracle(case).rounded)
        differs = ~((observed.astype(np.float64) == rounded) | (np.isnan(observed.astype(np.float64)) & np.isnan(rounded)))
        assert differs.any() or minimal.dtype, f"JAX now agrees with the spec on {case.describe()}: retire [{entry.id}]"
    selected = minimal.matched or case
    assert entry.matches("jax", minimal.test, selected), f"[{entry.id}] no longer selects {selected.describe()}"
    assert not entry.matches("torch", minimal.test, selected)


def test_executable_cache_survives_an_entry_that_loads_but_cannot_run(tmp_path, monkeypatch) -> None:
    """XLA's CPU runtime can load an executable whose fused kernel it then cannot find
    (``NOT_FOUND: Function subtract_multiply_fusion not found``: a weighted mse_loss gradient,
    found by the gate re-measurement). Such an entry from disk is dropped and the program runs
    as plain ``jax.jit`` (same bits); and a miss is stored only if it reloads and runs
    identically, so a failing reload is never written."""
    import jax

    from adapters import _jax_executables as executables

    monkeypatch.setenv(executables.ENV, str(tmp_path))
    x, t = np.array([[1.0, 2.0, 0.5]], np.float32), np.array([2])
    want = jax_losses.create(device="cpu").cross_entropy(x, t)
    (entry,) = tmp_path.glob("*/*.pickle")

    def broken(*_args):
        raise jax.errors.JaxRuntimeError("NOT_FOUND: Function subtract_multiply_fusion not found (type id: 1)")

    adapter = jax_losses.create(device="cpu")
    monkeypatch.setattr(adapter._executables, "_load", lambda path, key: broken)
    assert_same_bits(adapter.cross_entropy(x, t), want)
    assert adapter._executables.rejected == 1 and not entry.exists(), "the unrunnable entry was kept"

    monkeypatch.undo()
    monkeypatch.setenv(executables.ENV, str(tmp_path))
    monkeypatch.setattr(executables, "_reloads_identically", lambda *a, **k: False)
    storing = jax_losses.create(device="cpu")
    assert_same_bits(storing.cross_entropy(x, t), want)
    assert not list(tmp_path.glob("*/*.pickle")), "an executable that does not reload identically was stored"


def test_executable_cache_survives_a_miss_that_cannot_run(tmp_path, monkeypatch) -> None:
    """Issue 11 (jax log_softmax d/dinput bfloat16, ``NOT_FOUND: Function add_convert_fusion
    not found``): on a miss, ``jitted().lower().compile()`` may return JAX's persistent cache's
    deserialized executable (an entry the plain ``jax.jit`` call path wrote in an earlier run),
    which cannot run; and dispatch is asynchronous, so the error surfaced outside the
    handlers, when the result was converted. Reproduced with a copy of a warm DIR/jax and the
    case's (1, 214) bfloat16 input, dim=-2. Simulated here: the run check's result raises
    only on conversion, and the compiled executable raises when run. Expected: not stored,
    compiled afresh with JAX's cache off, jit's bits."""
    import jax

    from adapters import _jax_executables as executables

    x, t = np.array([[1.0, 2.0, 0.5]], np.float32), np.array([2])
    monkeypatch.delenv(executables.ENV, raising=False)
    want = jax_losses.create(device="cpu").cross_entropy(x, t)
    monkeypatch.setenv(executables.ENV, str(tmp_path))

    class Unconvertible:
        def __array__(self, *args, **kwargs):
            raise jax.errors.JaxRuntimeError("NOT_FOUND: Function add_convert_fusion not found (type id: 1)")

    def broken(*_args):
        raise jax.errors.JaxRuntimeError("NOT_FOUND: Function add_convert_fusion not found (type id: 1)")

    from jax.experimental import serialize_executable

    monkeypatch.setattr(serialize_executable, "deserialize_and_load", lambda *a, **k: lambda *v: Unconvertible())
    adapter = jax_losses.create(device="cpu")
    assert_same_bits(adapter.cross_entropy(x, t), want)  # the check's late error: not stored, not raised
    assert not list(tmp_path.glob("*/*.pickle")), "an executable whose reload cannot run was stored"

    monkeypatch.undo()
    monkeypatch.setenv(executables.ENV, str(tmp_path))
    adapter = jax_losses.create(device="cpu")
    real_get = adapter._executables.get
    monkeypatch.setattr(adapter._executables, "get", lambda key, compile_, directory, values=(): (
        real_get(key, compile_, directory, values), broken)[1])
    assert_same_bits(adapter.cross_entropy(x, t), want)  # the miss's executable cannot run: compiled afresh
    assert adapter._executables.rejected == 1
    assert x64_is_off()
