"""Tests of the ``tensorflow`` adapter (``adapters/tensorflow_losses.py``).

What the conformance verdicts on TensorFlow rest on: arrays cross into TensorFlow
and back bit for bit (bfloat16 included), outputs keep the input's dtype and the
spec's shape, repro snippets are the very call, the option table is complete,
the composed idioms compute what they claim, and every entry of
``adapters/expectations/tensorflow.toml`` still describes TensorFlow: its minimal
case is re-run here against the oracle, so an entry goes stale visibly (this test
fails) when TensorFlow or Keras changes the behaviour.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from adapters import AdapterUnavailableError, load_adapter  # noqa: E402
from adapters._tf_convert import to_numpy, to_tf  # noqa: E402
from adapters.options import SPEC_OPTIONS, STATUSES  # noqa: E402
from suites.cases import Case  # noqa: E402
from suites.checks import check_case, evaluate_oracle  # noqa: E402
from suites.expectations import Expectation, load_expectations  # noqa: E402
from suites.registry import spec_for  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = {"float16": np.dtype(np.float16), "bfloat16": BF16, "float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
EXPECTATIONS = Path(__file__).resolve().parent.parent / "adapters" / "expectations" / "tensorflow.toml"
INF, NAN = math.inf, math.nan


@pytest.fixture(scope="module")
def tensorflow_adapter():
    """The adapter under test (not ``adapter``: conftest parametrizes tests using that name)."""
    return load_adapter("tensorflow")


@pytest.fixture(autouse=True)
def _quiet():
    # Keras warns (SyntaxWarning) about single-class categorical inputs; not our concern here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        yield


def a(values, dtype: str | np.dtype) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(DTYPES.get(dtype, dtype))


def i(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def same_bits(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Same dtype, shape and bits (any NaN matches any NaN)."""
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return False
    if actual.dtype.kind in "biu":
        return bool(np.array_equal(actual, expected))
    with np.errstate(invalid="ignore"):  # signaling NaNs among the bit patterns
        nan = np.isnan(actual.astype(np.float64))
        if not np.array_equal(nan, np.isnan(expected.astype(np.float64))):
            return False
    bits = np.dtype(f"u{actual.dtype.itemsize}")
    return not ((actual.view(bits) != expected.view(bits)) & ~nan).any()


# -- conversion ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_half_precision_value_round_trips_exactly(dtype):
    values = np.arange(1 << 16, dtype=np.uint16).view(DTYPES[dtype])
    tensor = to_tf(values)
    assert tensor.dtype.name == dtype
    assert same_bits(to_numpy(tensor), values)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_values_round_trip_exactly(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    bits = np.dtype(f"u{info.bits // 8}")
    random = rng.integers(0, np.iinfo(bits).max, size=4094, dtype=bits, endpoint=True).view(dtype)
    specials = np.array([0.0, -0.0, info.tiny, info.smallest_subnormal, -info.smallest_subnormal,
                         info.max, -info.max, INF, -INF, NAN], dtype=dtype)
    values = np.concatenate([random, specials]).reshape(2, -1, 3)
    assert same_bits(to_numpy(to_tf(values)), values)


def test_integers_and_zero_d_arrays_round_trip():
    assert same_bits(to_numpy(to_tf(i([-100, 0, 2**40]))), i([-100, 0, 2**40]))
    zero_d = to_numpy(to_tf(np.array(2.5, dtype=BF16)))
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == () and zero_d.dtype == BF16


# -- the adapter's contract -----------------------------------------------------------


def test_loads_with_name_version_and_rejects_a_missing_gpu():
    adapter = load_adapter("tensorflow")
    assert adapter.name == "tensorflow" and tf.__version__ in adapter.version
    if not tf.config.list_logical_devices("GPU"):
        with pytest.raises(AdapterUnavailableError, match="GPU"):
            load_adapter("tensorflow", device="cuda")


def _calls(dtype: str) -> list[tuple[str, dict, dict, tuple[int, ...]]]:
    """(function, args, kwargs, the spec's output shape) covering every program path."""
    x = a(np.arange(24).reshape(2, 3, 4) / 8 - 1, dtype)
    x2 = a([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], dtype)
    p = a([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]], dtype)
    w = a([0.5, 1.0, 2.0], dtype)
    probs = a([[0.25, 0.5], [0.125, 1.0]], dtype)
    y = a([[0.0, 1.0], [0.5, 1.0]], dtype)
    return [
        ("cross_entropy", {"input": x2, "target": i([0, 2])}, {"reduction": "none"}, (2,)),
        ("cross_entropy", {"input": x2, "target": i([0, -100])}, {"weight": w}, ()),
        ("cross_entropy", {"input": x2, "target": i([0, 1])}, {"weight": w, "label_smoothing": 0.25, "ignore_index": 1}, ()),
        ("cross_entropy", {"input": x2, "target": p}, {"reduction": "sum", "label_smoothing": 0.1}, ()),
        ("cross_entropy", {"input": x, "target": i([[0, 1, 2, 0], [1, 1, -100, 2]])}, {"reduction": "none"}, (2, 4)),
        ("cross_entropy", {"input": a([1.0, -1.0, 0.5], dtype), "target": i(1)}, {"reduction": "none"}, ()),
        ("nll_loss", {"input": x, "target": i([[0, 1, 2, 0], [1, 1, -100, 2]])}, {"weight": w}, ()),
        ("nll_loss", {"input": x2, "target": i([0, 2])}, {"reduction": "none"}, (2,)),
        ("binary_cross_entropy", {"input": probs, "target": y}, {"weight": a([2.0, 0.5], dtype), "reduction": "none"}, (2, 2)),
        ("binary_cross_entropy", {"input": probs, "target": y}, {}, ()),
        ("binary_cross_entropy_with_logits", {"input": x2[:, :2], "target": y}, {"reduction": "sum"}, ()),
        ("binary_cross_entropy_with_logits", {"input": x2[:, :2], "target": y},
         {"pos_weight": a([2.0, 3.0], dtype), "weight": a([1.0, 0.5], dtype)}, ()),
        ("binary_cross_entropy_with_logits", {"input": a(0.5, dtype), "target": a(1.0, dtype)}, {"reduction": "none"}, ()),
        ("kl_div", {"input": a(np.log([[0.25, 0.75], [0.5, 0.5]]), dtype), "target": probs}, {"reduction": "batchmean"}, ()),
        ("kl_div", {"input": a([-1.0, -0.5], dtype), "target": a([-2.0, -0.25], dtype)}, {"reduction": "none", "log_target": True}, (2,)),
        ("softmax", {"input": x}, {"dim": 1}, (2, 3, 4)),
        ("log_softmax", {"input": x}, {"dim": -1}, (2, 3, 4)),
        ("sigmoid", {"input": x2}, {}, (2, 3)),
    ]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_outputs_keep_the_dtype_and_the_spec_shape(tensorflow_adapter, dtype):
    adapter = tensorflow_adapter
    for fn, args, kwargs, shape in _calls(dtype):
        out = Case(fn, args, kwargs, dtype).call(adapter.function(fn))
        assert isinstance(out, np.ndarray), fn
        assert out.dtype == DTYPES[dtype], (fn, kwargs, out.dtype)
        assert out.shape == shape, (fn, kwargs, out.shape)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_repro_snippets_reproduce_the_output_bit_for_bit(tensorflow_adapter, dtype):
    adapter = tensorflow_adapter
    for fn, args, kwargs, _ in _calls(dtype):
        out = Case(fn, args, kwargs, dtype).call(adapter.function(fn))
        snippet = adapter.repro(fn, args, kwargs)
        namespace: dict = {}
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(snippet, "<repro>", "exec"), namespace)
        assert same_bits(to_numpy(namespace["out"]), out), snippet
        assert printed.getvalue().startswith(dtype), snippet


def test_repro_is_plain_tensorflow(tensorflow_adapter):
    adapter = tensorflow_adapter
    snippet = adapter.repro("cross_entropy", {"input": a([[1.0, 2.0]], BF16), "target": i([0])}, {"label_smoothing": 0.1})
    assert "lossconf" not in snippet and "adapters" not in snippet
    assert "tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1" in snippet
    assert "dtype='bfloat16'" in snippet


def test_option_table_covers_every_spec_option():
    from adapters.tensorflow_losses import OPTION_TABLE

    assert set(OPTION_TABLE) == set(SPEC_OPTIONS)
    for loss, options in SPEC_OPTIONS.items():
        assert set(OPTION_TABLE[loss]) == {"(function)", *options}, loss
        for option, (status, note) in OPTION_TABLE[loss].items():
            assert status in STATUSES and note, (loss, option)


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"])
@pytest.mark.parametrize(("size_average", "reduce"), [(True, None), (None, False), (False, True)])
def test_legacy_reduction_arguments_are_unsupported(tensorflow_adapter, fn, size_average, reduce):
    adapter = tensorflow_adapter
    x = a([[0.25, 0.5]], "float32")
    args = {"input": x, "target": i([1]) if fn in ("cross_entropy", "nll_loss") else x}
    with pytest.raises(NotImplementedError, match="size_average/reduce"):
        adapter.function(fn)(*args.values(), size_average=size_average, reduce=reduce)


def test_probability_targets_with_class_weights_are_unsupported(tensorflow_adapter):
    adapter = tensorflow_adapter
    with pytest.raises(NotImplementedError, match="probability targets"):
        adapter.function("cross_entropy")(a([[1.0, 2.0]], "float32"), a([[0.5, 0.5]], "float32"), weight=a([1.0, 2.0], "float32"))


def test_composed_weighted_mean_divides_by_the_selected_weights(tensorflow_adapter):
    adapter = tensorflow_adapter
    x = a([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5], [0.0, -1.0, 2.0]], "float64")
    target, weight = i([0, 2, -100]), a([0.25, 1.0, 4.0], "float64")
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[0, 2], logits=x[:2]).numpy()
    hand = (0.25 * losses[0] + 4.0 * losses[1]) / (0.25 + 4.0)
    ce = adapter.function("cross_entropy")(x, target, weight=weight)
    assert ce == pytest.approx(hand, rel=4e-16)
    nll = adapter.function("nll_loss")(x, target, weight=weight)
    assert nll == pytest.approx((0.25 * -1.0 + 4.0 * -0.5) / 4.25, rel=4e-16)
    # Keras's default "sum_over_batch_size" would divide by the 3 positions instead:
    keras_default = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100, dtype="float64")
    sample_weight = tf.gather(weight, [0, 2, 0])
    assert keras_default(target, x, sample_weight=sample_weight).numpy() == pytest.approx((0.25 * losses[0] + 4.0 * losses[1]) / 2)


def test_gradients_through_gradient_tape(tensorflow_adapter):
    adapter = tensorflow_adapter
    x = a([[1.0, 2.0, 3.0]], "float64")
    grad = adapter.grad("cross_entropy", {"input": x, "target": i([2])}, {})
    softmax = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(grad, softmax - [[0, 0, 1]], rtol=1e-14)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(adapter.grad("sigmoid", {"input": x}, {}), s * (1 - s), rtol=1e-14)
    assert adapter.grad("sigmoid", {"input": a([0.5], BF16)}, {}).dtype == BF16
    with pytest.raises(ValueError, match="not a floating"):
        adapter.grad("cross_entropy", {"input": x, "target": i([2])}, {}, wrt="target")


def test_keras_conventions_match_closed_forms():
    """The oracle conventions added for TensorFlow (oracle/conventions.py) on hand cases."""
    from oracle.conventions import convention_for

    bce = convention_for("keras-bce-clip-in-dtype").terms
    terms = bce(a([0.0, 1.0, 0.25], "float32"), a([1.0, 0.0, 0.0], "float32"), reduction="none").terms
    lo = float(np.float32(1e-7))  # the bounds as float32 holds them: 1 - 1e-7 is 1 - 2**-23
    expected = [-math.log(lo), -math.log(2.0**-23), -math.log(0.75)]
    np.testing.assert_allclose([float(t) for t in terms], expected, rtol=1e-15)
    half = bce(a([1.0, 1e-4], "float16"), a([0.0, 0.0], "float16"), reduction="none").terms
    assert half[0] == INF  # 1 - 1e-7 rounds to 1 in float16: the clip does not reach below 1
    one_minus = float(np.float16(1 - np.float16(1e-4)))  # 1 - p formed in float16
    assert float(half[1]) == pytest.approx(-math.log(one_minus), rel=1e-15)

    ce = convention_for("keras-ce-smoothing-sample-weight").terms
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]])
    lt = ce(x, i([0, 2]), weight=np.array([0.5, 1.0, 2.0]), label_smoothing=0.25)
    r = np.log(np.exp(x).sum(axis=1, keepdims=True)) - x  # -log softmax
    per_row = [(1 - 0.25) * r[n, y] + 0.25 / 3 * r[n].sum() for n, y in enumerate([0, 2])]
    hand = (0.5 * per_row[0] + 2.0 * per_row[1]) / (0.5 + 2.0)
    assert float(lt.value) == pytest.approx(hand, rel=1e-14)
    masked = ce(np.array([[-INF, 0.0]]), i([0]), label_smoothing=1.0, reduction="none").terms
    assert masked[0] == INF  # Keras's labels are 1/C everywhere: no 0 * inf


# -- every expectations entry still describes TensorFlow ------------------------------

# Entries of the gradient tests are re-checked in tests/test_gradient_findings.py.
ENTRIES = {
    e.id: e for e in load_expectations(EXPECTATIONS)
    if not any(t.startswith("test_gradient") for t in e.tests)
}


def _case(fn, args, kwargs, dtype, label="") -> Case:
    return Case(fn, args, kwargs, dtype, label)


def _observed(adapter, case: Case) -> np.ndarray:
    return np.asarray(case.call(adapter.function(case.fn)), dtype=np.float64)


def _exact(case: Case) -> np.ndarray:
    return np.asarray(evaluate_oracle(case).rounded, dtype=np.float64)


def _deviates(adapter, case: Case, observed, exact) -> None:
    """The case fails against the spec, TensorFlow returns ``observed`` and the oracle ``exact``."""
    __tracebackhide__ = True
    np.testing.assert_array_equal(_exact(case), exact)
    np.testing.assert_allclose(_observed(adapter, case), observed, rtol=1e-6, equal_nan=True)
    assert not check_case(adapter, case).passed


def _subnormal_results(adapter):
    case = _case("sigmoid", {"input": a([-88.0], "float32")}, {}, "float32")
    _deviates(adapter, case, [0.0], [6.054601485195952e-39])
    case64 = _case("sigmoid", {"input": a([-709.0], "float64")}, {}, "float64")
    _deviates(adapter, case64, [0.0], [1.216780750623423e-308])
    x = np.zeros((6, 8))
    x[5, 0] = 2.2250738585072014e-308
    mean = _case("nll_loss", {"input": a(x, "float64"), "target": i([0] * 6)}, {"reduction": "mean"}, "float64")
    _deviates(adapter, mean, -0.0, -3.7084564308453356e-309)
    summed = _case("nll_loss", {"input": a([[-1e-38, 0.0], [-1e-38, 0.0]], "float32"), "target": i([0, 0])}, {"reduction": "sum"}, "float32")
    _deviates(adapter, summed, 0.0, 1.9999998700912808e-38)  # a normal sum of subnormal terms
    return case


def _subnormal_weights(adapter):
    case = _case("binary_cross_entropy", {"input": a([0.5], "float32"), "target": a([0.5], "float32")}, {"weight": a([1e-40], "float32"), "reduction": "none"}, "float32")
    _deviates(adapter, case, [0.0], [6.931382723936275e-41])
    return case


def _subnormal_difference(adapter):
    case = _case("l1_loss", {"input": a([0.0], "float32"), "target": a([6.887662211849341e-39], "float32")},
                 {"weight": a([2.0], "float32"), "reduction": "none"}, "float32")
    _deviates(adapter, case, [0.0], [1.3775324423698682e-38])  # w |x - y| is normal, |x - y| is not
    bf16 = _case("l1_loss", {"input": a([0.0], "bfloat16"), "target": a([6.887662211849341e-39], "bfloat16")},
                 {"weight": a([2.0], "bfloat16"), "reduction": "none"}, "bfloat16")
    _deviates(adapter, bf16, [0.0], [1.3775324423698682e-38])
    return case


def _bce_logits_infinite(adapter):
    x, y = a([-INF, INF, INF, -INF], "float32"), a([0.0, 0.0, 1.0, 1.0], "float32")
    case = _case("binary_cross_entropy_with_logits", {"input": x, "target": y}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, [NAN, NAN, NAN, INF], [0.0, INF, 0.0, INF])
    weighted = _case("binary_cross_entropy_with_logits", {"input": x, "target": y}, {"reduction": "none", "pos_weight": a([1.0], "float32")}, "float32")
    _deviates(adapter, weighted, [NAN, INF, NAN, NAN], [0.0, INF, 0.0, INF])
    return case


def _pos_weight_cancels(adapter):
    case = _case(
        "binary_cross_entropy_with_logits", {"input": a([-10.0], "float32"), "target": a([1.0], "float32")},
        {"reduction": "none", "pos_weight": a([1e-4], "float32")}, "float32",
    )
    _deviates(adapter, case, [0.0010001704795286059], [0.0010000044712796807])
    case64 = _case(
        "binary_cross_entropy_with_logits", {"input": a([-1000.0], "float64"), "target": a([1.0], "float64")},
        {"reduction": "none", "pos_weight": a([1e-20], "float64")}, "float64",
    )
    _deviates(adapter, case64, [0.0], [9.999999999999999e-18])
    return case


def _ce_masked_probability(adapter):
    case = _case("cross_entropy", {"input": a([[1.0, -INF, 2.0]], "float32"), "target": a([[0.5, 0.0, 0.5]], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, [NAN], [0.8132616877555847])
    return case


def _ce_logit_spread(adapter):
    case = _case("cross_entropy", {"input": a([3.4028234663852886e38, -(2.0**103)], "float32"), "target": a([1.0, 0.0], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, NAN, 0.0)
    return case


def _reduction_overflow(adapter):
    x = a([[2.9052533657475455e37], [3.112298231222582e38], [-7.301671325877224e32]], "float32")
    case = _case("nll_loss", {"input": x, "target": i([0, 0, 0])}, {"reduction": "sum"}, "float32")
    _deviates(adapter, case, -INF, -3.4028161647178313e38)
    return case


def _softmax_pos_inf(adapter):
    case = _case("softmax", {"input": a([[INF, 0.0]], "float32")}, {"dim": 1}, "float32")
    _deviates(adapter, case, [[NAN, 0.0]], [[NAN, NAN]])
    return case


def _labels_cast(adapter):
    x = np.zeros((1, 300))
    x[0, 257] = 10.0
    case = _case("cross_entropy", {"input": a(x, BF16), "target": i([257])}, {"reduction": "none"}, "bfloat16")
    _deviates(adapter, case, [10.0], [0.01348876953125])
    return case


def _single_class(adapter):
    case = _case("cross_entropy", {"input": a([0.0], "float32"), "target": i(0)}, {"reduction": "none"}, "float32")
    with pytest.raises(IndexError):
        case.call(adapter.function("cross_entropy"))
    assert not check_case(adapter, case).passed
    assert _exact(case) == 0.0
    return case


def _mean_over_nothing(adapter):
    case = _case("cross_entropy", {"input": a([[1.0, 2.0], [3.0, 4.0]], "float32"), "target": i([-100, -100])}, {}, "float32")
    _deviates(adapter, case, 0.0, NAN)
    weighted = _case("cross_entropy", {"input": a([[1.0, 2.0], [3.0, 4.0]], "float32"), "target": i([0, 0])}, {"weight": a([0.0, 1.0], "float32")}, "float32")
    _deviates(adapter, weighted, 0.0, NAN)
    return case


def _unbatched_weighted_mean(adapter):
    case = _case("cross_entropy", {"input": a(np.zeros(5), "float32"), "target": i(2)}, {"weight": a([0.0, 0.0, 2.0, 0.0, 0.0], "float32")}, "float32")
    _deviates(adapter, case, 3.2188758248682006, 1.6094379425048828)
    batch_of_one = _case("cross_entropy", {"input": a(np.zeros((1, 5)), "float32"), "target": i([2])}, {"weight": a([0.0, 0.0, 2.0, 0.0, 0.0], "float32")}, "float32")
    assert check_case(adapter, batch_of_one).passed
    return case


def _masked_mean_overflow(adapter):
    x = np.zeros((6, 12))
    x[4, 11] = 1.4980776123852633e308
    case = _case("cross_entropy", {"input": a(x, "float64"), "target": i([0, 0, 0, 0, 0, -100])}, {"reduction": "mean"}, "float64")
    _deviates(adapter, case, INF, 2.996155224770527e307)
    return case


def _zero_sample_weight(adapter):
    case = _case("cross_entropy", {"input": a([[0.0, 0.0], [0.0, -INF]], "float32"), "target": i([0, -100])}, {"label_smoothing": 0.1, "reduction": "sum"}, "float32")
    _deviates(adapter, case, NAN, 0.6931471824645996)
    return case


def _smoothing_weights(adapter):
    case = _case(
        "cross_entropy", {"input": a([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], "float64"), "target": i([0, -100])},
        {"weight": a([0.5, 1.0, 2.0], "float64"), "label_smoothing": 0.25}, "float64",
    )
    _deviates(adapter, case, 2.1576059644443806, 2.376807952592507)
    return case


def _bce_half_one(adapter):
    case = _case("binary_cross_entropy", {"input": a([1.0, 1.0], "float16"), "target": a([0.0, 1.0], "float16")}, {"reduction": "none"}, "float16")
    _deviates(adapter, case, [INF, NAN], [100.0, 0.0])
    return case


def _bce_log_one_minus(adapter):
    case = _case("binary_cross_entropy", {"input": a([1e-4], "float32"), "target": a([0.0], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, [1.0002159251598641e-4], [1.0000499605666846e-4])
    return case


def _bce_clip(adapter):
    case = _case("binary_cross_entropy", {"input": a([0.0, 0.0, 1.0], "float32"), "target": a([1.0, 0.0, 0.0], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, [16.11809539794922, 1.1920928955078125e-07, 15.942384719848633], [100.0, 0.0, 100.0])
    return case


def _kl_ratio(adapter):
    case = _case("kl_div", {"input": a([-12.0], "float16"), "target": a([1.0], "float16")}, {"reduction": "none"}, "float16")
    _deviates(adapter, case, [INF], [12.0])
    return case


def _kl_clip(adapter):
    case = _case("kl_div", {"input": a([-1.0, -0.5], "float32"), "target": a([0.0, 1.0], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, case, [-1.5118095006982912e-06, 0.4999999701976776], [0.0, 0.5])
    above_one = _case("kl_div", {"input": a([1.0], "float32"), "target": a([1.0], "float32")}, {"reduction": "none"}, "float32")
    _deviates(adapter, above_one, [0.0], [-1.0])
    rounds_to_one = _case("kl_div", {"input": a([2.3296243084525498e-300], "float64"), "target": a([0.0], "float64")}, {"reduction": "none", "log_target": True}, "float64")
    _deviates(adapter, rounds_to_one, [0.0], [-2.3296243084525498e-300])
    assert _first_match("test_matches_oracle", rounds_to_one) is ENTRIES["keras-kl-clips-probabilities"]
    return case


def _kl_probabilities(adapter):
    case = _case("kl_div", {"input": a([-0.03125], "float64"), "target": a([0.0], "float64")}, {"reduction": "none", "log_target": True}, "float64")
    _deviates(adapter, case, [0.03124999999999987], [0.03125])
    return case


def _entropy_identity_ratio(adapter):
    case = _case("cross_entropy", {"input": a([[-6.0, 6.0]], "float16"), "target": a([[1.0, 0.0]], "float16")}, {"reduction": "none"}, "float16")
    assert check_case(adapter, case).passed  # cross entropy itself is right: 12
    kl = _case("kl_div", {"input": a([[-12.0, 0.0]], "float16"), "target": a([[1.0, 0.0]], "float16")}, {"reduction": "none"}, "float16")
    assert np.isinf(_observed(adapter, kl)[0, 0]) and _exact(kl)[0, 0] == 12.0
    return case


def _entropy_identity_clip(adapter):
    case = _case("cross_entropy", {"input": a([[0.0, 0.0]], "float64"), "target": a([[1.0, 0.0]], "float64")}, {"reduction": "none"}, "float64")
    assert check_case(adapter, case).passed
    kl = _case("kl_div", {"input": a([[-math.log(2), -math.log(2)]], "float64"), "target": a([[1.0, 0.0]], "float64")}, {"reduction": "none"}, "float64")
    assert _observed(adapter, kl)[0, 1] < 0 and _exact(kl)[0, 1] == 0.0
    return case


def _accepts(adapter, case: Case, observed) -> None:
    __tracebackhide__ = True
    with pytest.raises(ValueError):
        case.call(spec_for(case.fn).terms)  # the spec rejects it
    np.testing.assert_allclose(_observed(adapter, case), observed, rtol=1e-6, equal_nan=True)


def _bce_outside(adapter):
    cases = [
        _case("binary_cross_entropy", {"input": a([p], "float32"), "target": a([1.0], "float32")}, {}, "float32", label)
        for p, label in [(1.5, "probability_above_one"), (-0.25, "negative_probability"), (NAN, "nan_probability")]
    ]
    for case, observed in zip(cases, [1.1920928955078125e-07, 16.11809539794922, NAN]):
        _accepts(adapter, case, observed)
    return cases[0]


def _smoothing_outside(adapter):
    x = a([[1.0, 2.0]], "float64")
    above = _case("cross_entropy", {"input": x, "target": i([0])}, {"label_smoothing": 1.5}, "float64", "label_smoothing_above_one")
    _accepts(adapter, above, 0.5632616875182228)
    negative = _case("cross_entropy", {"input": x, "target": i([0])}, {"label_smoothing": -0.1}, "float64", "label_smoothing_negative")
    _accepts(adapter, negative, 1.3632616875182229)
    return above


def _weight_length(adapter):
    ce = _case("cross_entropy", {"input": a([[1.0, 2.0]], "float64"), "target": i([0])}, {"weight": a([1.0, 1.0, 1.0], "float64")}, "float64", "weight_wrong_length")
    _accepts(adapter, ce, 1.3132616875182228)
    nll = _case("nll_loss", {"input": a([[-1.0, -2.0]], "float64"), "target": i([0])}, {"weight": a([1.0], "float64")}, "float64", "weight_wrong_length")
    _accepts(adapter, nll, 1.0)
    return ce


#: entry id -> (the test whose failures it explains, a check of its minimal case returning it)
# -- regression losses (issue 4) --


def _regression_overflow(adapter):
    zero_weight = _case("huber_loss", {"input": a([0.0], "float32"), "target": a([1.7450378335257038e36], "float32")},
                        {"delta": 195.0, "weight": a([0.0], "float32"), "reduction": "none"}, "float32")
    _deviates(adapter, zero_weight, [NAN], [0.0])
    composed = _case("smooth_l1_loss", {"input": a(0.0, "float16"), "target": a(656.0, "float16")}, {"beta": 100.0, "reduction": "none"}, "float16")
    _deviates(adapter, composed, INF, 606.0)
    return zero_weight


def _huber_underflow(adapter):
    case = _case("smooth_l1_loss", {"input": a([2.0**-12], "float16"), "target": a([0.0], "float16")}, {"beta": 2.0**-10, "reduction": "none"}, "float16")
    _deviates(adapter, case, [0.0], [2.0**-15])
    return case


def _huber_delta(adapter):
    cases = [
        _case("huber_loss", {"input": a([1.0], "float64"), "target": a([0.0], "float64")}, {"delta": 0.0}, "float64", "delta_zero"),
        _case("huber_loss", {"input": a([1.0], "float64"), "target": a([0.0], "float64")}, {"delta": -1.0}, "float64", "delta_negative"),
        _case("smooth_l1_loss", {"input": a([1.0], "float64"), "target": a([0.0], "float64")}, {"beta": -0.5}, "float64", "beta_negative"),
    ]
    for case, observed in zip(cases, [0.0, -1.5, 1.25]):
        _accepts(adapter, case, observed)
    return cases[1]


def _regression_zero_weight_mean(adapter):
    case = _case("l1_loss", {"input": a([1.0, 2.0], "float32"), "target": a([0.0, 0.0], "float32")}, {"weight": a([0.0, 0.0], "float32")}, "float32")
    _deviates(adapter, case, 0.0, NAN)
    return case


def _regression_scalar_weighted_mean(adapter):
    case = _case("mse_loss", {"input": a(0.0, "float64"), "target": a(1.0, "float64")}, {"weight": a(2.0, "float64"), "reduction": "mean"}, "float64")
    _deviates(adapter, case, 2.0, 1.0)
    return case


def _regression_scalar_weighted_mean_property(adapter):
    from suites.properties import PROPERTIES, PropertyViolation

    case = _case("l1_loss", {"input": a(0.0, "float16"), "target": a(1.0, "float16")}, {"weight": a(2.0, "float16"), "reduction": "sum"}, "float16")
    with pytest.raises(PropertyViolation, match="mean == sum"):
        PROPERTIES["mean_is_sum_over_denominator"].check(adapter, case)
    return case


def _ctc_edge(label, dtype):
    from suites.registry import spec_for

    return spec_for("ctc_loss").edge_cases[label](dtype)


def _ctc_float64(adapter):
    case = _ctc_edge("empty_target_is_all_blank_path", "float64")
    with pytest.raises(tf.errors.InvalidArgumentError, match="double tensor"):
        case.call(adapter.function("ctc_loss"))
    assert not check_case(adapter, case).passed
    return case


def _ctc_zero_width(adapter):
    x = np.full((4, 3), np.log(1 / 3), np.float32)
    case = _case("ctc_loss", {"log_probs": x, "targets": np.zeros(0, np.int64), "input_lengths": np.array(4), "target_lengths": np.array(0)},
                 {"reduction": "none"}, "float32")
    assert _exact(case) == pytest.approx(4 * math.log(3), rel=1e-6)
    assert _observed(adapter, case) == pytest.approx(4 * math.log(3) - math.log(2), rel=1e-6)
    assert not check_case(adapter, case).passed
    padded = _case("ctc_loss", {"log_probs": x[:, None, :], "targets": np.array([[1]]), "input_lengths": np.array([4]),
                                "target_lengths": np.array([0])}, {"reduction": "none"}, "float32")
    assert _observed(adapter, padded) == pytest.approx([4 * math.log(3)], rel=1e-6)  # width 1: right
    return case


def _ctc_floor(adapter):
    x = np.array([[[-1000.0, 0.0, 0.0]]], np.float32)
    case = _case("ctc_loss", {"log_probs": x, "targets": np.array([[1]]), "input_lengths": np.array([1]), "target_lengths": np.array([0])},
                 {"reduction": "none"}, "float32")
    _deviates(adapter, case, [707.5868], [1000.0])
    assert not check_case(adapter, case, convention="ctc-of-logits").passed  # wrong under its own formula too
    return case


def _ctc_impossible(adapter):
    case = _ctc_edge("impossible_alignment_is_inf", "float32")
    _deviates(adapter, case, [707.9818725585938], [INF])
    return case


def _ctc_normalizes(adapter):
    case = _ctc_edge("empty_target_is_all_blank_path", "float32")
    _deviates(adapter, case, [3.7009048461914062], [3.75])
    return case


MINIMAL_CASES: dict[str, tuple[str, Callable]] = {
    "cpu-flushes-subnormal-results": ("test_matches_oracle", _subnormal_results),
    "cpu-reads-subnormal-weights-as-zero": ("test_matches_oracle", _subnormal_weights),
    "cpu-flushes-subnormal-difference": ("test_matches_oracle", _subnormal_difference),
    "sigmoid-cross-entropy-infinite-logit-nan": ("test_edge_cases", _bce_logits_infinite),
    "weighted-cross-entropy-pos-weight-factor-cancels": ("test_matches_oracle", _pos_weight_cancels),
    "softmax-cross-entropy-zero-target-on-masked-class-nan": ("test_edge_cases", _ce_masked_probability),
    "softmax-cross-entropy-overflowing-logit-spread-nan": ("test_matches_oracle", _ce_logit_spread),
    "reduction-intermediate-overflow": ("test_matches_oracle", _reduction_overflow),
    "softmax-positive-infinite-logit-zeros": ("test_edge_cases", _softmax_pos_inf),
    "keras-sparse-labels-cast-to-loss-dtype": ("test_matches_oracle", _labels_cast),
    "keras-single-class-axis-squeezed": ("test_properties", _single_class),
    "keras-mean-over-zero-weight-is-zero": ("test_edge_cases", _mean_over_nothing),
    "keras-unbatched-weighted-mean-not-divided": ("test_matches_oracle", _unbatched_weighted_mean),
    "keras-masked-mean-rescale-overflows": ("test_properties", _masked_mean_overflow),
    "keras-zero-sample-weight-does-not-mask-infinite-loss": ("test_properties", _zero_sample_weight),
    "keras-label-smoothing-weighted-by-sample": ("test_edge_cases", _smoothing_weights),
    "keras-bce-half-precision-clip-does-not-reach-one": ("test_edge_cases", _bce_half_one),
    "keras-bce-log-of-rounded-one-minus-p": ("test_matches_oracle", _bce_log_one_minus),
    "keras-bce-clips-probabilities": ("test_edge_cases", _bce_clip),
    "keras-kl-ratio-overflows-in-half-precision": ("test_matches_oracle", _kl_ratio),
    "keras-kl-clips-probabilities": ("test_edge_cases", _kl_clip),
    "keras-kl-takes-probabilities": ("test_matches_oracle", _kl_probabilities),
    "keras-kl-breaks-entropy-identity-ratio-overflow": ("test_properties", _entropy_identity_ratio),
    "keras-kl-breaks-entropy-identity-clip": ("test_properties", _entropy_identity_clip),
    "keras-bce-accepts-probabilities-outside-0-1": ("test_rejects_invalid_input", _bce_outside),
    "keras-accepts-label-smoothing-outside-0-1": ("test_rejects_invalid_input", _smoothing_outside),
    "class-weight-gather-accepts-wrong-length": ("test_rejects_invalid_input", _weight_length),
    "regression-elementwise-intermediate-overflow": ("test_matches_oracle", _regression_overflow),
    "keras-huber-squared-error-underflows-before-division-by-beta": ("test_edge_cases", _huber_underflow),
    "keras-huber-accepts-nonpositive-delta": ("test_rejects_invalid_input", _huber_delta),
    "keras-weighted-mean-over-zero-weight-is-zero": ("test_edge_cases", _regression_zero_weight_mean),
    "keras-unbatched-weighted-regression-mean-not-divided": ("test_matches_oracle", _regression_scalar_weighted_mean),
    "keras-unbatched-weighted-regression-mean-not-divided-property": ("test_properties", _regression_scalar_weighted_mean_property),
    "ctc-loss-float64-raises": ("test_edge_cases", _ctc_float64),
    "ctc-loss-zero-width-labels-count-the-empty-path-twice": ("test_matches_oracle", _ctc_zero_width),
    "ctc-loss-floors-frame-log-probabilities": ("test_matches_oracle", _ctc_floor),
    "ctc-loss-impossible-alignment-is-finite": ("test_edge_cases", _ctc_impossible),
    "ctc-loss-normalizes-logits": ("test_edge_cases", _ctc_normalizes),
}


def test_every_expectations_entry_has_a_minimal_case():
    from .test_margin_findings import MARGIN_ENTRY_IDS  # the margin losses' entries

    assert set(MINIMAL_CASES) | MARGIN_ENTRY_IDS["tensorflow"] == set(ENTRIES)


def _first_match(test: str, case: Case) -> Expectation | None:
    return next((e for e in ENTRIES.values() if e.matches("tensorflow", test, case)), None)


@pytest.mark.parametrize("entry_id", list(MINIMAL_CASES))
def test_expectations_entry_still_describes_tensorflow(tensorflow_adapter, entry_id):
    """TensorFlow still deviates on the entry's minimal case, the entry is the one that
    explains it, and under the entry's convention (if any) the output is accurate."""
    adapter = tensorflow_adapter
    test, check = MINIMAL_CASES[entry_id]
    case = check(adapter)
    entry = ENTRIES[entry_id]
    assert _first_match(test, case) is entry, f"{entry_id} does not explain its own minimal case"
    if entry.convention:
        assert check_case(adapter, case, convention=entry.convention).passed, (
            f"TensorFlow no longer computes oracle convention {entry.convention!r} on this case"
        )
