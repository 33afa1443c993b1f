"""Tests of the ``mlx`` adapter (``adapters/mlx_losses.py``): its contract and its findings.

What must hold for its conformance verdicts to mean anything: arrays cross into
MLX and back bit for bit (bfloat16, which NumPy cannot read from MLX, and
float64, which ``mx.array`` silently makes float32, included); outputs keep the
input's dtype and the spec's shape; a repro snippet is the code that ran and
gives the same bits; every spec option has a declared status; the composed
idioms compute the spec's formula. And every entry of
``adapters/expectations/mlx.toml`` still describes MLX: its minimal case still
differs from the oracle as written (the segfault: still kills a child process),
and the entry's condition selects that case.
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("mlx.core")

import mlx.core as mx

import oracle
from adapters import AdapterError, load_adapter, mlx_losses
from adapters._mlx_convert import to_mx, to_numpy
from adapters.options import SPEC_OPTIONS, STATUSES
from oracle.core import format_of
from suites.cases import Case
from suites.checks import evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, load_expectations

from .bit_exact import assert_same_bits, cast

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
DTYPE_IDS = [d.name for d in FLOAT_DTYPES]
INF = math.inf
NAN = math.nan
ENTRIES = {e.id: e for e in load_expectations(EXPECTATIONS_DIR / "mlx.toml")}


@pytest.fixture(scope="module")
def mlx_adapter():
    # not named ``adapter``: conftest parametrizes tests using that name as conformance tests
    return load_adapter("mlx")


# -- conversion, dtypes, shapes ------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_arrays_cross_into_mlx_and_back_bit_for_bit(dtype: np.dtype) -> None:
    """Every kind of value but NaN payloads: subnormals, -0, +-inf, extremes, 1/3."""
    fmt = format_of(dtype)
    values = [0.0, -0.0, 1.0, -2.5, 1 / 3, fmt.smallest_subnormal, -fmt.smallest_subnormal,
              fmt.smallest_normal, fmt.max_finite, -fmt.max_finite, INF, -INF]  # fmt: skip
    array = cast(values, dtype).reshape(3, 4)
    device = to_mx(array)
    assert str(device.dtype).endswith(dtype.name)
    assert_same_bits(to_numpy(device), array)
    assert_same_bits(to_numpy(to_mx(array[0, 0])), array[0, 0])  # 0-d stays 0-d


def test_float64_is_not_silently_float32() -> None:
    """``mx.array`` of a float64 NumPy array is float32 (the trap ``to_mx`` avoids)."""
    x = np.array([1 / 3])
    assert mx.array(x).dtype == mx.float32
    assert to_mx(x).dtype == mx.float64 and to_numpy(to_mx(x))[0] == 1 / 3


def test_nll_none_is_the_negated_gathered_input_exactly(mlx_adapter) -> None:
    for dtype in FLOAT_DTYPES:
        x = cast([[-0.5, -3.25, -1e4], [-7.0, -0.0, -1.5]], dtype)
        out = mlx_adapter.function("nll_loss")(x, np.array([2, 0]), reduction="none")
        assert_same_bits(out, -x[[0, 1], [2, 0]])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "shape"),
    [
        ("cross_entropy", ([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], [0, 2]), {}, ()),
        ("cross_entropy", ([1.0, 2.0, 3.0], 1), {"reduction": "none"}, ()),
        ("cross_entropy", (np.arange(24.0).reshape(2, 3, 2, 2) / 8, np.zeros((2, 2, 2), int)), {"reduction": "none"}, (2, 2, 2)),
        ("cross_entropy", (np.arange(24.0).reshape(2, 3, 2, 2) / 8, np.full((2, 3, 2, 2), 1 / 4)), {"reduction": "sum"}, ()),
        ("nll_loss", ([[-1.0, -2.0], [-0.5, -4.0]], [1, -100]), {}, ()),
        ("binary_cross_entropy", ([0.25, 0.5, 1.0], [1.0, 0.0, 1.0]), {"reduction": "none"}, (3,)),
        ("binary_cross_entropy_with_logits", ([[0.5, -1.0]], [[1.0, 0.0]]), {"weight": [2.0, 1.0]}, ()),
        ("kl_div", ([[-1.0, -0.5], [-2.0, -0.125]], [[-0.7, -0.7], [-0.5, -1.0]]), {"reduction": "batchmean", "log_target": True}, ()),
        ("kl_div", ([[-1.0, -0.5]], [[-0.7, -0.7]]), {"reduction": "none", "log_target": True}, (1, 2)),
        ("softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": 0}, (2, 2)),
        ("log_softmax", ([[1.0, 2.0], [0.0, 0.0]],), {"dim": -1}, (2, 2)),
        ("sigmoid", (2.0,), {}, ()),
        ("huber_loss", ([1.0, 3.0], [0.0, 0.0]), {"reduction": "none", "delta": 2.0}, (2,)),
        ("gaussian_nll_loss", ([[1.0, 2.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [0.5, 2.0]), {}, ()),
        ("triplet_margin_loss", ([[0.0, 1.0]], [[1.0, 1.0]], [[2.0, 2.0]]), {"reduction": "none"}, (1,)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_output_has_the_input_dtype_and_the_spec_shape(mlx_adapter, dtype, fn, args, kwargs, shape) -> None:
    def convert(value):
        array = np.asarray(value)
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    positional = [convert(a) for a in args]
    options = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    out = mlx_adapter.function(fn)(*positional, **options)
    assert isinstance(out, np.ndarray) and not isinstance(out, np.generic)
    assert out.dtype == dtype and out.shape == shape, (out.dtype, out.shape)
    assert np.all(np.isfinite(out.astype(np.float64)))


def test_device_names_are_checked() -> None:
    assert mlx_losses.create(device="cpu").device == mx.Device(mx.cpu)
    with pytest.raises(AdapterError, match="not an MLX device"):
        mlx_losses.create(device="nonsense")


def test_log_softmax_crash_is_refused_not_made(mlx_adapter) -> None:
    """The call MLX segfaults on raises MlxCrash instead; its neighbours still run."""
    with pytest.raises(mlx_losses.MlxCrash, match="SIGSEGV"):
        mlx_adapter.function("log_softmax")(np.zeros((2, 1), np.float32), dim=1)
    assert mlx_adapter.function("log_softmax")(np.zeros((1,), np.float32), dim=0).tolist() == [0.0]
    assert mlx_adapter.function("log_softmax")(np.zeros((1, 2), np.float32), dim=1).shape == (1, 2)
    assert "refuses" in mlx_adapter.repro("log_softmax", {"input": np.zeros((1, 1), np.float32)}, {"dim": 0})


# -- repro snippets, option table, composed idioms -----------------------------------------

REPRO_CASES = [
    ("cross_entropy", {"input": [[1.0, -INF, 2.5], [0.1, 0.2, 0.3]], "target": [0, -100]}, {"weight": [0.5, 1.0, 2.0]}),
    ("cross_entropy", {"input": [[1.0, 0.5, 2.5], [0.1, 0.2, 0.3]], "target": [0, -100]}, {"label_smoothing": 0.3}),
    ("cross_entropy", {"input": np.arange(12.0).reshape(1, 3, 4) / 7, "target": np.full((1, 3, 4), 0.25)}, {"reduction": "none"}),
    ("nll_loss", {"input": [[-1.0, -2.0], [-0.3, -0.1]], "target": [1, 0]}, {"ignore_index": 0, "weight": [2.0, 0.5]}),
    ("binary_cross_entropy", {"input": [0.1, 0.0, 0.75], "target": [1.0, 0.5, 0.0]}, {"reduction": "sum"}),
    ("binary_cross_entropy_with_logits", {"input": [[3.0, -0.5]], "target": [[1.0, 0.25]]}, {"weight": [0.5, 2.0]}),
    ("kl_div", {"input": [[-1.0, -0.5]], "target": [[-0.25, -0.75]]}, {"reduction": "mean", "log_target": True}),
    ("log_softmax", {"input": [[1.0, 2.0, 1e4]]}, {"dim": 1}),
    ("sigmoid", {"input": [-3.0, 0.5]}, {}),
    ("mse_loss", {"input": [1.0, 2.0], "target": [0.5, -1.0]}, {"weight": [1.0, 3.0]}),
    ("gaussian_nll_loss", {"input": [[1.0, 2.0]], "target": [[0.0, 0.5]], "var": 0.75}, {"full": True}),
    ("cosine_embedding_loss", {"input1": [[1.0, 2.0], [0.0, 1.0]], "input2": [[2.0, 1.0], [1.0, 1.0]], "target": [1.0, -1.0]}, {"margin": 0.25}),
    ("multilabel_soft_margin_loss", {"input": [[1.0, -2.0, 0.5]], "target": [[1.0, 0.0, 1.0]]}, {"weight": [1.0, 2.0, 0.5]}),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("fn", "args", "kwargs"), REPRO_CASES, ids=[c[0] for c in REPRO_CASES])
def test_repro_snippet_reproduces_the_output_bit_for_bit(mlx_adapter, dtype, fn, args, kwargs) -> None:
    def convert(value):
        array = np.asarray(value)
        if not array.ndim and not isinstance(value, list) and fn == "gaussian_nll_loss":
            return value  # var as a Python float
        return array.astype(np.int64) if array.dtype.kind in "iu" else cast(array, dtype)

    args = {k: convert(v) for k, v in args.items()}
    kwargs = {k: convert(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    expected = mlx_adapter.function(fn)(*args.values(), **kwargs)
    assert expected.dtype == dtype
    source = mlx_adapter.repro(fn, args, kwargs)
    assert source.startswith("import mlx.core as mx\n")
    namespace: dict[str, Any] = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(source, "<repro>", "exec"), namespace)
    assert printed.getvalue().startswith(f"mlx.core.{dtype.name}")
    assert_same_bits(to_numpy(namespace["out"]), expected)


def test_option_table_covers_every_spec_option() -> None:
    table = mlx_losses.OPTION_TABLE
    assert set(table) == set(SPEC_OPTIONS)
    for loss, options in SPEC_OPTIONS.items():
        assert set(table[loss]) == {"(function)", *options}, loss
        for option, (status, note) in table[loss].items():
            assert status in STATUSES, (loss, option, status)
            assert note, (loss, option)
        assert table[loss].get("size_average/reduce (legacy)", ("unsupported",))[0] == "unsupported"


UNSUPPORTED = sorted(loss for loss, table in mlx_losses.OPTION_TABLE.items() if table["(function)"][0] == "unsupported")


@pytest.mark.parametrize("loss", UNSUPPORTED)
def test_unsupported_functions_raise_not_implemented(mlx_adapter, loss) -> None:
    """A loss whose (function) row is unsupported raises NotImplementedError, whatever its inputs."""
    from adapters._spec import SPEC_FUNCTIONS

    dummy = {name: np.zeros((2, 3), np.float32) for name in SPEC_FUNCTIONS[loss]}
    with pytest.raises(NotImplementedError):
        getattr(mlx_adapter.implementation, loss)(*dummy.values())


def _neg_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def test_composed_weighted_mean_is_the_spec_formula(mlx_adapter) -> None:
    """mean = sum_n w_{y_n} r_{n,y_n} / sum_n w_{y_n} over the rows not ignored (float32: MLX's
    float64 exp is float32-accurate, see the expectations)."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5], [0.2, -1.0, 2.0], [5.0, 0.0, 1.0]])
    t = np.array([0, 2, -100, 1])
    w = np.array([0.25, 1.0, 4.0])
    r = _neg_log_softmax(x)
    kept = t != -100
    rows, classes = np.arange(4)[kept], t[kept]
    by_hand = np.sum(w[classes] * r[rows, classes]) / np.sum(w[classes])
    out = mlx_adapter.function("cross_entropy")(x.astype(np.float32), t, weight=w.astype(np.float32))
    np.testing.assert_allclose(out, by_hand, rtol=2e-6)
    out = mlx_adapter.function("nll_loss")(-r, t, weight=w)  # no exp: float64 exact
    np.testing.assert_allclose(out, by_hand, rtol=1e-15)
    unweighted = np.mean(r[rows, classes])
    np.testing.assert_allclose(mlx_adapter.function("nll_loss")(-r, t), unweighted, rtol=1e-15)


def test_all_ignored_mean_is_nan_and_sum_is_zero(mlx_adapter) -> None:
    x, t = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([-100, -100])
    assert np.isnan(mlx_adapter.function("cross_entropy")(x, t))
    assert mlx_adapter.function("cross_entropy")(x, t, reduction="sum") == 0
    assert np.isnan(mlx_adapter.function("nll_loss")(x, t, weight=np.ones(2, np.float32)))


def test_class_weights_it_cannot_express_are_unsupported(mlx_adapter) -> None:
    x = np.array([[1.0, 2.0]], np.float32)
    w = np.ones(2, np.float32)
    with pytest.raises(NotImplementedError, match="label smoothing"):
        mlx_adapter.function("cross_entropy")(x, np.array([0]), weight=w, label_smoothing=0.1)
    with pytest.raises(NotImplementedError, match="probability targets"):
        mlx_adapter.function("cross_entropy")(x, np.array([[0.5, 0.5]], np.float32), weight=w)
    with pytest.raises(NotImplementedError, match="log_target"):
        mlx_adapter.function("kl_div")(x, x)
    with pytest.raises(NotImplementedError, match="pos_weight"):
        mlx_adapter.function("binary_cross_entropy_with_logits")(x, x, pos_weight=w)
    with pytest.raises(NotImplementedError, match="swap"):
        mlx_adapter.function("triplet_margin_loss")(x, x, x, swap=True)


@pytest.mark.parametrize(("size_average", "reduce"), [(True, None), (None, False)])
def test_legacy_reduction_arguments_are_unsupported(mlx_adapter, size_average, reduce) -> None:
    x = np.array([[-1.0, -2.0]], np.float32)
    with pytest.raises(NotImplementedError, match="size_average/reduce"):
        mlx_adapter.function("nll_loss")(x, np.array([0]), size_average=size_average, reduce=reduce)
    assert mlx_adapter.function("nll_loss")(x, np.array([0]), size_average=None, reduce=None).shape == ()


def test_what_the_spec_rejects_statically_raises(mlx_adapter) -> None:
    x = np.array([[1.0, 2.0]], np.float32)
    with pytest.raises(ValueError, match="reduction"):
        mlx_adapter.function("cross_entropy")(x, np.array([0]), reduction="avg")
    with pytest.raises(ValueError, match="var of shape"):
        mlx_adapter.function("gaussian_nll_loss")(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        mlx_adapter.function("binary_cross_entropy")(np.array([0.5, 0.5]), np.array([1.0, 0.0, 1.0]))


def test_grad_matches_the_oracle_and_keeps_the_dtype(mlx_adapter) -> None:
    """mx.grad through the composed weighted, masked nll_loss and mse_loss: no exp, so float64
    is exact here."""
    x = np.array([[-1.0, -2.0, -3.0], [-3.0, -4.0, -0.5], [-1.0, -1.0, -1.0]])
    t = np.array([0, 2, -100])
    kwargs = {"weight": np.array([0.5, 1.0, 2.0])}
    got = mlx_adapter.grad("nll_loss", {"input": x, "target": t}, kwargs)
    exact = oracle.nll_loss_grad(x, t, **kwargs).astype(np.float64)
    np.testing.assert_array_equal(got, exact)
    y = np.array([0.5, -1.0, 2.0])
    got = mlx_adapter.grad("mse_loss", {"input": y, "target": np.zeros(3)}, {})
    np.testing.assert_allclose(got, 2 * y / 3, rtol=1e-15)
    assert mlx_adapter.grad("log_softmax", {"input": x.astype(BF16)}, {"dim": 1}).dtype == BF16
    with pytest.raises(ValueError, match="not a floating array"):
        mlx_adapter.grad("nll_loss", {"input": x, "target": t}, {}, wrt="target")


# -- every expected deviation still holds on its minimal case --------------------------------


@dataclass(frozen=True)
class Minimal:
    """An entry's minimal case, the test it stands for, and what MLX returns on it."""

    entry: str
    test: str
    case: Case
    observed: list[float] | None  # None: checked by ``check`` instead
    check: Callable[[Any], bool] | None = None
    raises: type[BaseException] | None = None  # the adapter raises this instead of returning


def _case(fn, args, kwargs=None, dtype="float32", label="") -> Case:
    numpy_dtype = format_of(dtype).numpy_dtype
    converted = {
        k: np.asarray(v, dtype=np.int64) if np.asarray(v).dtype.kind in "iu" else cast(v, numpy_dtype)
        for k, v in args.items()
    }
    options = {k: cast(v, numpy_dtype) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    return Case(fn, converted, options, dtype, label)


def _returns(out) -> bool:  # an accepted invalid input: any value, not an error
    return isinstance(out, np.ndarray)


MINIMAL_CASES = [
    Minimal("log-softmax-size-one-axis-segfault", "test_matches_oracle",
            _case("log_softmax", {"input": [[0.0], [2.0]]}, {"dim": 1}), None, raises=mlx_losses.MlxCrash),
    Minimal("log-softmax-size-one-axis-segfault-in-properties", "test_properties",
            _case("cross_entropy", {"input": [[0.0]], "target": [0]}), [0.0]),
    Minimal("probability-target-zero-mass-on-infinite-logit-nan", "test_edge_cases",
            _case("cross_entropy", {"input": [[1.0, -INF, 2.0]], "target": [[0.5, 0.0, 0.5]]}, {"reduction": "none"}), [NAN]),
    Minimal("bce-log-of-rounded-one-minus-p", "test_matches_oracle",
            _case("binary_cross_entropy", {"input": [1e-4], "target": [0.0]}, {"reduction": "none"}), None,
            lambda out: float(out[0]) == pytest.approx(1.0002159e-4, rel=1e-7)),
    Minimal("kl-div-log-target-neg-inf-nan", "test_edge_cases",
            _case("kl_div", {"input": [-1.0, 0.0], "target": [-INF, 0.0]}, {"reduction": "none", "log_target": True}), [NAN, 0.0]),
    Minimal("bce-with-logits-infinite-logit-nan", "test_edge_cases",
            _case("binary_cross_entropy_with_logits", {"input": [INF, -INF], "target": [1.0, 0.0]}, {"reduction": "none"}), [NAN, NAN]),
    Minimal("bce-with-logits-infinite-logit-nan", "test_edge_cases",
            _case("binary_cross_entropy_with_logits", {"input": [INF, -INF], "target": [0.0, 1.0]}, {"reduction": "none"}), [NAN, INF]),
    Minimal("bce-with-logits-infinite-logit-nan", "test_edge_cases",
            _case("multilabel_soft_margin_loss", {"input": [[INF, -INF]], "target": [[1.0, 0.0]]}, {"reduction": "none"}), [NAN]),
    Minimal("label-smoothing-one-rejected", "test_edge_cases",
            _case("cross_entropy", {"input": [[1.0, 2.0, 3.0]], "target": [0]}, {"label_smoothing": 1.0}), None, raises=ValueError),
    Minimal("squared-norm-out-of-range", "test_edge_cases",
            _case("cosine_embedding_loss", {"input1": [[1e20, 2e20]], "input2": [[2e20, 1e20]], "target": [1.0]}, {"reduction": "none"}), [NAN]),
    Minimal("squared-norm-out-of-range", "test_edge_cases",
            _case("triplet_margin_loss", {"anchor": [[1e20, 0.0]], "positive": [[0.0, 0.0]], "negative": [[0.0, 1.0]]}, {"reduction": "none"}), [NAN]),
    Minimal("triplet-eps-added-to-sum-of-powers", "test_edge_cases",
            _case("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[3.0, 2.0]]}, {"margin": 2.0, "reduction": "none"}),
            None, lambda out: float(out[0]) == pytest.approx(0.00099981, rel=1e-4)),
    Minimal("class-index-out-of-range-unchecked", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [2]}, label="target_class_out_of_range"), None, _returns),
    Minimal("class-index-out-of-range-unchecked", "test_rejects_invalid_input",
            _case("cross_entropy", {"input": [[1.0, 2.0]], "target": [2]}, label="target_class_out_of_range"), None, _returns),
    Minimal("class-index-out-of-range-unchecked", "test_rejects_invalid_input",
            _case("nll_loss", {"input": [[-1.0, -2.0]], "target": [-1]}, label="negative_target_not_ignore_index"), [2.0]),
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
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("huber_loss", {"input": [1.0], "target": [0.0]}, {"delta": -1.0}, label="delta_negative"), [-1.5]),
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("huber_loss", {"input": [1.0], "target": [0.0]}, {"delta": 0.0}, label="delta_zero"), [0.0]),
    Minimal("huber-accepts-nonpositive-delta", "test_rejects_invalid_input",
            _case("smooth_l1_loss", {"input": [1.0], "target": [0.0]}, {"beta": -0.5}, label="beta_negative"), [1.25]),
    Minimal("gaussian-nll-clamps-negative-variance", "test_rejects_invalid_input",
            _case("gaussian_nll_loss", {"input": [[1.0, 0.0]], "target": [[0.0, 0.0]], "var": [[1.0, -0.5]]}, label="negative_variance"), None,
            lambda out: float(out) == pytest.approx(-3.2038777, rel=1e-6)),
    Minimal("gaussian-nll-clamps-negative-variance", "test_rejects_invalid_input",
            _case("gaussian_nll_loss", {"input": [1.0, 0.0], "target": [0.0, 0.0]}, {"var": -1.0}, label="negative_float_variance"), None,
            lambda out: float(out) == pytest.approx(249993.1, rel=1e-6)),
    Minimal("margin-losses-accept-invalid-input", "test_rejects_invalid_input",
            _case("margin_ranking_loss", {"input1": [1.0], "input2": [0.0], "target": [0.0]}, label="target_label_0"), [0.0]),
    Minimal("margin-losses-accept-invalid-input", "test_rejects_invalid_input",
            _case("cosine_embedding_loss", {"input1": [[1.0, 0.0]], "input2": [[0.0, 1.0]], "target": [0.0]}, label="target_label_0"), [0.0]),
    Minimal("margin-losses-accept-invalid-input", "test_rejects_invalid_input",
            _case("triplet_margin_loss", {"anchor": [[1.0]], "positive": [[0.0]], "negative": [[2.0]]}, {"margin": -1.0}, label="margin_negative"), [0.0]),
    Minimal("margin-losses-accept-invalid-input", "test_rejects_invalid_input",
            _case("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[0.0]], "negative": [[2.0, 1.0]]}, label="shape_mismatch"), None,
            lambda out: float(out) == pytest.approx(1.8218544, rel=1e-6)),
    Minimal("float64-exp-has-float32-accuracy", "test_matches_oracle",
            _case("sigmoid", {"input": [1.0]}, dtype="float64"), [0.7310585726593212]),
    Minimal("float64-exp-has-float32-accuracy", "test_matches_oracle",
            _case("sigmoid", {"input": [-100.0]}, dtype="float64"), [0.0]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("nll_loss", {"input": [[-3e38], [-1e38], [2e38]], "target": [0, 0, 0]}, {"reduction": "sum"}), [INF]),
    Minimal("reduction-intermediate-overflow", "test_matches_oracle",
            _case("l1_loss", {"input": [0.0, 0.0, 0.0], "target": [0.0, 14992.0, 50528.0]}, dtype="float16"), [INF]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("mse_loss", {"input": [2e19, 0.0], "target": [0.0, 0.0]}), [INF]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("huber_loss", {"input": [3e38], "target": [-1e38]}, {"delta": 0.5, "reduction": "none"}), [INF]),
    Minimal("margin-reduction-intermediate-overflow", "test_matches_oracle",
            _case("margin_ranking_loss", {"input1": [0.0] * 5, "input2": [8.507059e37] * 5, "target": [1.0] * 5}), [INF]),
    Minimal("margin-reduction-intermediate-overflow", "test_matches_oracle",
            _case("multilabel_soft_margin_loss", {"input": [[3.4028235e38, 3.4028235e38]], "target": [[0.0, 0.0]]}, {"reduction": "none"}), [INF]),
    Minimal("cosine-similarity-eps-on-norm-product", "test_matches_oracle",
            _case("cosine_embedding_loss", {"input1": [[1e-5, 0.0]], "input2": [[1e-5, 0.0]], "target": [1.0]}, {"reduction": "none"}), None,
            lambda out: float(out[0]) == pytest.approx(0.99, rel=1e-6)),
    Minimal("cosine-similarity-eps-on-norm-product", "test_matches_oracle",
            _case("cosine_embedding_loss", {"input1": [[0.125, 0.0, 0.0]], "input2": [[5.780736161890133e-291, 0.0, 0.0]], "target": [1.0]},
                  {"reduction": "none"}, "float64"), [1.0]),
    Minimal("cosine-similarity-eps-on-norm-product", "test_matches_oracle",
            _case("triplet_margin_with_distance_loss", {"anchor": [[1e-5, 0.0]], "positive": [[1e-5, 0.0]], "negative": [[0.0, 1.0]]},
                  {"distance_function": "cosine", "reduction": "none"}), None, lambda out: float(out[0]) == pytest.approx(0.99, rel=1e-6)),
    Minimal("half-precision-epsilon-underflows-zero-vector-nan", "test_matches_oracle",
            _case("triplet_margin_with_distance_loss", {"anchor": [[0.0, 0.0]], "positive": [[1.0, 1.0]], "negative": [[0.0, 1.0]]},
                  {"distance_function": "cosine", "reduction": "none"}, "float16"), [NAN]),
    Minimal("squared-norm-out-of-range", "test_matches_oracle",
            _case("triplet_margin_with_distance_loss", {"anchor": [[1e20, 0.0]], "positive": [[0.0, 0.0]], "negative": [[0.0, 1.0]]}, {"reduction": "none"}), [NAN]),
    Minimal("margin-losses-accept-invalid-input", "test_rejects_invalid_input",
            _case("triplet_margin_with_distance_loss", {"anchor": [[1.0]], "positive": [[0.0]], "negative": [[2.0]]}, {"margin": 0.0}, label="margin_zero"), None, _returns),
    Minimal("half-precision-epsilon-underflows-zero-vector-nan", "test_matches_oracle",
            _case("cosine_embedding_loss", {"input1": [0.0], "input2": [0.0], "target": 1.0}, {"reduction": "none"}, "float16"), [NAN]),
    Minimal("gaussian-nll-quotient-overflow", "test_matches_oracle",
            _case("gaussian_nll_loss", {"input": [0.0], "target": [2.0], "var": [0.0]}, {"eps": 6.103515625e-05, "reduction": "none"}, "float16"), [INF]),
    Minimal("smooth-l1-squared-error-underflows-before-division-by-beta", "test_edge_cases",
            _case("smooth_l1_loss", {"input": [2.0**-12], "target": [0.0]}, {"beta": 2.0**-10, "reduction": "none"}, "float16"), [0.0]),
    Minimal("exp-flushes-subnormal-results", "test_matches_oracle",
            _case("softmax", {"input": [[0.0, -88.0]]}, {"dim": 1}), [1.0, 0.0]),
    Minimal("exp-flushes-subnormal-results", "test_matches_oracle", _case("sigmoid", {"input": [-92.0]}), [0.0]),
    Minimal("float16-sigmoid-exp-overflow", "test_matches_oracle",
            _case("sigmoid", {"input": [-12.0, -11.0]}, dtype="float16"), [0.0, 1.6689300537109375e-05]),
    Minimal("half-precision-softmax-accumulates-in-the-dtype", "test_matches_oracle",
            _case("softmax", {"input": np.zeros((1, 1000))}, {"dim": 1}, "bfloat16"), [0.00390625] * 1000),
    Minimal("half-precision-softmax-accumulates-in-the-dtype", "test_matches_oracle",
            _case("softmax", {"input": np.zeros((1, 4096))}, {"dim": 1}, "float16"), [0.00048828125] * 4096),
]  # fmt: skip

#: Gradient entries: (entry, case, the gradient MLX returns).
GRADIENT_CASES = [
    ("clamped-log-gradient-nan", replace(_case("binary_cross_entropy", {"input": [0.0], "target": [0.0]}, {"reduction": "none"}), wrt="input"), [NAN]),
    ("clamped-log-gradient-nan", replace(_case("binary_cross_entropy", {"input": [1.0], "target": [1.0]}, {"reduction": "none"}), wrt="input"), [NAN]),
    ("exp-flushes-subnormal-gradients",
     _case("kl_div", {"input": [0.0], "target": [-92.0]}, {"reduction": "sum", "log_target": True}), [-0.0]),
    ("logaddexp-gradient-cancels-for-negative-logits",
     replace(_case("binary_cross_entropy_with_logits", {"input": [-10.0, -40.0], "target": [0.0, 0.0]}, {"reduction": "sum"}),
             wrt="input"),
     [4.5418739318847656e-05, 0.0]),
    ("float16-sigmoid-exp-overflow-gradient", _case("sigmoid", {"input": [-12.0]}, dtype="float16"), [0.0]),
    ("regression-weight-gradient-at-overflowed-term",
     Case("mse_loss", {"input": cast([0.0, 2e19], np.float32), "target": cast([0.0, 0.0], np.float32)},
          {"weight": cast([1.0, 0.0], np.float32), "reduction": "mean"}, "float32", wrt="weight"), [NAN, NAN]),
    ("huber-gradient-branch-cotangents-cancel",
     replace(_case("huber_loss", {"input": [1.0], "target": [1.75]}, {"delta": 513.0, "reduction": "sum"}, "float16"),
             wrt="input"), [-1.0]),
    ("huber-gradient-branch-cotangents-cancel",
     replace(_case("huber_loss", {"input": [0.0], "target": [2.246572806168501e-308]}, {"delta": 2.0, "reduction": "sum"},
                   "float64"), wrt="input"), [0.0]),
    ("square-gradient-difference-overflow",
     Case("mse_loss", {"input": cast([0.0, 0.0, 15376.0, 0.0], np.float16), "target": cast([0.0, 0.0, -50144.0, 0.0], np.float16)},
          {"weight": cast([0.0] * 4, np.float16), "reduction": "none"}, "float16", wrt="target"), [0.0, 0.0, NAN, 0.0]),
    ("square-gradient-difference-overflow",
     Case("gaussian_nll_loss", {"input": cast([[0.0] * 3, [0.0] * 3, [0.0, 0.0, 62048.0]], np.float16),
                                "target": cast([[0.0] * 3, [0.0] * 3, [0.0, 0.0, -3472.0]], np.float16),
                                "var": cast([[0.0] * 3, [0.0] * 3, [0.0, 0.0, 1.0]], np.float16)},
          {"reduction": "mean", "eps": 6.103515625e-05}, "float16", wrt="input"), [0.0] * 8 + [INF]),
    ("smooth-l1-where-gradient-nan",
     _case("smooth_l1_loss", {"input": [0.0, 1.0, -2.0], "target": [0.0, 0.0, 0.0]}, {"beta": 0.0, "reduction": "sum"}),
     [NAN, NAN, NAN]),
    ("smooth-l1-gradient-nan-at-overflowed-difference",
     _case("smooth_l1_loss", {"input": [3e38, 1.0], "target": [-3e38, 1.0]}, {"beta": 1.0, "reduction": "sum"}), [NAN, 0.0]),
    ("gaussian-nll-var-clamp-gradient",
     replace(_case("gaussian_nll_loss", {"input": [0.0], "target": [0.0], "var": [0.0]}, {"eps": 1e-3, "reduction": "sum"}),
             wrt="var"), [0.0]),
    ("cosine-embedding-zero-vector-gradient-nan",
     replace(_case("cosine_embedding_loss", {"input1": [[0.0, 0.0]], "input2": [[1.0, 2.0]], "target": [1.0]}, {"reduction": "sum"}),
             wrt="input1"), [NAN, NAN]),
    ("cosine-embedding-squared-norm-gradient",
     replace(_case("cosine_embedding_loss", {"input1": [[3e20, 1.0]], "input2": [[1.0, 1.0]], "target": [1.0]}, {"reduction": "sum"}),
             wrt="input1"), [0.0, 0.0]),
    ("bce-with-logits-weight-gradient-nan-at-infinite-logit",
     Case("binary_cross_entropy_with_logits", {"input": cast([INF, -INF], np.float32), "target": cast([1.0, 0.0], np.float32)},
          {"weight": cast([2.0, 3.0], np.float32), "reduction": "sum"}, "float32", wrt="weight"), [NAN, NAN]),
    ("cosine-similarity-zero-vector-nan-gradient",
     _case("cosine_embedding_loss", {"input1": [[0.0, 0.0]], "input2": [[1.0, 1.0]], "target": [-1.0]},
           {"margin": -0.5, "reduction": "sum"}), [NAN, NAN]),
    ("squared-norm-out-of-range-gradient",
     _case("cosine_embedding_loss", {"input1": [[1e20, 2e20]], "input2": [[2e20, 1e20]], "target": [1.0]},
           {"reduction": "sum"}), [NAN, NAN]),
    ("cross-entropy-probability-target-gradient-assumes-normalized-target",
     replace(_case("cross_entropy", {"input": [[1.0, 2.0, 3.0]], "target": [[0.0, 0.0, 1.0]]}, {"reduction": "sum"}),
             wrt="target"), [2.0, 1.0, -0.0]),
    ("ignored-position-nonfinite-term-nan-weight-gradient",
     replace(_case("nll_loss", {"input": [[-np.inf, 0.0], [0.0, 0.0]], "target": [-100, 0]},
                   {"weight": [1.0, 1.0], "reduction": "sum"}), wrt="weight"), [NAN, 0.0]),
    # d/dw -log(1 - p) = 1.00005e-4 and 6.4e-31; mx.log(1 - p) rounds 1 - p first
    ("bce-weight-gradient-log-of-rounded-one-minus-p",
     replace(_case("binary_cross_entropy", {"input": [1e-4], "target": [0.0]}, {"reduction": "sum", "weight": [1.0]}), wrt="weight"),
     [0.00010002159251598641]),
    ("bce-weight-gradient-log-of-rounded-one-minus-p",
     replace(_case("binary_cross_entropy", {"input": [6.394885340930961e-31], "target": [0.0]}, {"reduction": "sum", "weight": [1.0]}),
             wrt="weight"),
     [0.0]),
    # d/da of a n / max(|a| |n|, 1e-8) = n / 1e-8, where the spec's cosine of parallel vectors has 0
    ("cosine-similarity-eps-on-norm-product-gradient",
     replace(_case("triplet_margin_with_distance_loss", {"anchor": [[0.125]], "positive": [[0.125]], "negative": [[2.220446049250313e-16]]},
                   {"distance_function": "cosine", "reduction": "sum"}, "float64"), wrt="anchor"), [2.220446049250313e-08]),
    # mx.linalg.norm's v / |v| at v = a - n + eps = 0 (eps rounded to float32 cancels a - n); float16 v^2 underflows
    ("norm-gradient-nan-at-zero-difference",
     replace(_case("triplet_margin_with_distance_loss", {"anchor": [[0.0]], "positive": [[5.0]], "negative": [[9.999999974752427e-07]]}, {"reduction": "sum"}),
             wrt="negative"), [NAN]),
    ("norm-gradient-nan-at-zero-difference",
     replace(_case("triplet_margin_with_distance_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[3.0, 2.0]]}, {"reduction": "sum"}, "float16"),
             wrt="anchor"), [NAN, NAN]),
    ("cosine-similarity-zero-vector-nan-gradient",
     replace(_case("triplet_margin_with_distance_loss", {"anchor": [[0.0, 0.0]], "positive": [[1.0, 1.0]], "negative": [[0.0, 1.0]]},
                   {"distance_function": "cosine", "reduction": "sum"}), wrt="anchor"), [NAN, NAN]),
    # eps = 0, a = p: d/dS S^(1/2) = inf at S = 0, times dS/da = 0
    ("triplet-power-sum-gradient-nan-at-zero-distance",
     replace(_case("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[3.0, 2.0]]},
                   {"margin": 3.0, "eps": 0.0, "reduction": "sum"}), wrt="anchor"), [NAN, NAN]),
    ("triplet-power-sum-gradient-nan-at-zero-distance",
     replace(_case("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[3.0, 2.0]]},
                   {"eps": 0.0, "p": 3.0, "reduction": "sum"}, "float64"), wrt="positive"), [NAN, NAN]),
    # bfloat16 mx.power(S, 1/3) with 1/3 -> 0.333984375: d(a, p) = 1.038e8 for 1.0014e8 tips the hinge
    ("triplet-root-exponent-rounded-to-the-dtype-gradient",
     replace(_case("triplet_margin_loss", {"anchor": [100139008.0], "positive": [0.0], "negative": [-1.125]},
                   {"p": 3.0, "reduction": "sum"}, "bfloat16"), wrt="negative"), [1.1640625]),
    # MLX's sqrt(S + eps) at a = p: 0 + 0.125 / sqrt(0.015625 + 1e-6); the spec's ||a - p + eps||: 2
    ("triplet-eps-added-to-sum-of-powers-gradient",
     replace(_case("triplet_margin_loss", {"anchor": [[0.0]], "positive": [[0.0]], "negative": [[0.125]]}, {"reduction": "sum"}),
             wrt="anchor"), [0.9999679923057556]),
    ("triplet-eps-added-to-sum-of-powers-gradient",
     replace(_case("triplet_margin_loss", {"anchor": [[0.0]], "positive": [[0.0]], "negative": [[0.125]]}, {"reduction": "sum"}),
             wrt="positive"), [-0.0]),
    # d/ds e^s (s - x) at s = -inf is 0; exp(s) (s - x) + exp(s) = 0 * -inf
    ("kl-div-log-target-gradient-nan-at-zero-target",
     replace(_case("kl_div", {"input": [-1.0, 0.0], "target": [-INF, 0.0]}, {"reduction": "sum", "log_target": True}), wrt="target"),
     [NAN, 1.0]),
]


def test_every_expectation_has_a_minimal_case() -> None:
    assert {m.entry for m in MINIMAL_CASES} | {g[0] for g in GRADIENT_CASES} == set(ENTRIES)
    for entry in ENTRIES.values():
        assert entry.adapters == ("mlx",), f"{entry.id} must name the mlx adapter only"


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_documented_deviation_still_exists(mlx_adapter, minimal: Minimal) -> None:
    """MLX still returns (or raises) the documented thing, the oracle (the spec) disagrees,
    and the entry's condition selects the case, for this adapter and test only."""
    case, entry = minimal.case, ENTRIES[minimal.entry]
    function = mlx_adapter.function(case.fn)
    if minimal.raises is not None:
        with pytest.raises(minimal.raises):
            case.call(function)
    elif minimal.entry.endswith("-in-properties"):
        observed = case.call(function)  # cross_entropy itself is fine; the property's log_softmax is not
        np.testing.assert_array_equal(observed.astype(np.float64), np.asarray(minimal.observed).reshape(observed.shape))
        with pytest.raises(mlx_losses.MlxCrash):
            mlx_adapter.function("log_softmax")(case.args["input"], dim=1)
    else:
        observed = case.call(function)
        assert observed.dtype == format_of(case.dtype).numpy_dtype
        if minimal.observed is not None:
            expected = np.asarray(minimal.observed, dtype=np.float64).reshape(observed.shape)
            np.testing.assert_array_equal(observed.astype(np.float64), expected)
        else:
            assert minimal.check(observed), observed  # type: ignore[misc]
        if entry.kind == "accepts-invalid-input":
            with pytest.raises(ValueError):
                case.call(getattr(oracle, case.fn))  # the spec rejects what MLX accepted
        else:
            rounded = np.asarray(evaluate_oracle(case).rounded)
            o = observed.astype(np.float64)
            differs = ~((o == rounded) | (np.isnan(o) & np.isnan(rounded)))
            assert differs.any(), f"MLX now agrees with the spec on {case.describe()}: retire [{entry.id}]"
    assert entry.matches("mlx", minimal.test, case), f"[{entry.id}] no longer selects {case.describe()}"
    assert not entry.matches("torch", minimal.test, case)


def test_log_softmax_over_an_axis_of_size_one_still_crashes_mlx() -> None:
    """The guard's reason: MLX itself, in a child process, dies of SIGSEGV (or SIGABRT) on the minimal case.
    When this fails, MLX has fixed it: drop MlxCrash's guard and the entry."""
    code = (
        "import mlx.core as mx, mlx.nn as nn\n"
        "out = nn.log_softmax(mx.array([[0.0], [2.0]]), axis=1); mx.eval(out); print(out.tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # SIGSEGV as a rule; now and then SIGABRT, when malloc notices first that the call has
    # corrupted the heap ("malloc(): corrupted top size"; seen once in a full test run)
    assert result.returncode in (-11, -6), (result.returncode, result.stdout, result.stderr[-500:])


@pytest.mark.parametrize(("entry_id", "case", "gradient"), GRADIENT_CASES, ids=[f"{g[0]}-{i}" for i, g in enumerate(GRADIENT_CASES)])
def test_documented_gradient_deviation_still_exists(mlx_adapter, entry_id, case, gradient) -> None:
    """mx.grad still returns the documented gradient, the exact derivative differs, and the
    entry selects the case for the gradient tests only."""
    from suites.gradients import evaluate_gradient

    from suites.registry import spec_for

    got = mlx_adapter.grad(case.fn, case.args, case.kwargs, wrt=case.wrt or spec_for(case.fn).grad_wrt[0])
    np.testing.assert_array_equal(got.astype(np.float64), np.asarray(gradient, dtype=np.float64).reshape(got.shape))
    exact = evaluate_gradient(case).rounded
    assert not np.array_equal(got.astype(np.float64), exact, equal_nan=True), f"MLX now agrees: retire [{entry_id}]"
    entry = ENTRIES[entry_id]
    assert entry.matches("mlx", "test_gradient_matches_oracle", case)
    assert not entry.matches("mlx", "test_matches_oracle", case)


CONVENTION_GRADIENT_CASES = [(e, c, g) for e, c, g in GRADIENT_CASES if ENTRIES[e].convention]


@pytest.mark.parametrize(("entry_id", "case", "gradient"), CONVENTION_GRADIENT_CASES,
                         ids=[f"{g[0]}-{i}" for i, g in enumerate(CONVENTION_GRADIENT_CASES)])
def test_gradient_convention_grades_the_minimal_case_as_accurate(mlx_adapter, entry_id, case, gradient) -> None:
    """An entry with a convention is a deviation only where mx.grad is accurate under MLX's own
    formula: its minimal case must pass that grading (and fail the spec's)."""
    from suites.gradients import check_gradient_case

    convention = ENTRIES[entry_id].convention
    assert not check_gradient_case(mlx_adapter, case).passed
    outcome = check_gradient_case(mlx_adapter, case, convention=convention)
    assert outcome.passed, outcome.message
