"""Every expected deviation of the margin, ranking and embedding losses still holds.

Each entry in ``adapters/expectations/{torch,tensorflow,jax}.toml`` that names one of
these losses has a minimal case here: the framework still returns the documented
value, the oracle (the spec) disagrees -- or rejects the input, for an
``accepts-invalid-input`` entry --, the entry is the *first* one of its file that
matches the case (so it is the one that explains it in a run), and under the entry's
convention, if any, the framework's output is accurate. An entry whose framework gets
fixed fails here and must be retired.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import oracle
from adapters import BUILTIN_ADAPTERS, load_adapter
from oracle.core import format_of
from suites.cases import Case
from suites.checks import check_case, evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, builtin_adapters_sharing, load_expectations
from suites.strategies import to_dtype

INF, NAN = math.inf, math.nan
MAX32 = 3.4028234663852886e38

_FRAMEWORK_MODULE = {"torch": "torch", "tensorflow": "tensorflow", "jax": "optax"}


def _entries(framework: str) -> list:
    path = EXPECTATIONS_DIR / f"{framework}.toml"
    return load_expectations(path, default_adapters=builtin_adapters_sharing(path, BUILTIN_ADAPTERS))


@dataclass(frozen=True)
class Minimal:
    framework: str
    entry: str
    test: str
    case: Case
    observed: list[float] | Callable[[np.ndarray], bool]


def _c(fn: str, args: dict, kwargs: dict | None = None, dtype: str = "float32", label: str = "") -> Case:
    converted = {
        k: np.asarray(v, dtype=np.int64) if np.asarray(v).dtype.kind in "iu" else to_dtype(np.asarray(v, dtype=np.float64), dtype)
        for k, v in args.items()
    }
    options = {k: to_dtype(np.asarray(v, dtype=np.float64), dtype) if isinstance(v, list) else v for k, v in (kwargs or {}).items()}
    return Case(fn, converted, options, dtype, label)


NONE = {"reduction": "none"}
SOFT_MARGIN_OVERFLOW = _c("soft_margin_loss", {"input": [-100.0], "target": [1.0]}, NONE)
SOFT_MARGIN_OVERFLOW_64 = _c("soft_margin_loss", {"input": [-710.0], "target": [1.0]}, NONE, "float64")
MLSM_INF = _c("multilabel_soft_margin_loss", {"input": [[INF, -INF]], "target": [[1.0, 0.0]]}, NONE)
MULTI_MARGIN_OVERFLOW = _c("multi_margin_loss", {"input": [[-MAX32, MAX32]], "target": [0]}, NONE)
COSINE_LARGE = _c("cosine_embedding_loss", {"input1": [[1e20, 2e20]], "input2": [[2e20, 1e20]], "target": [1.0]}, NONE)
COSINE_SMALL_16 = _c("cosine_embedding_loss", {"input1": [[1e-3, 2e-3]], "input2": [[2e-3, 1e-3]], "target": [1.0]}, NONE, "float16")
TRIPLET_LARGE = _c("triplet_margin_loss", {"anchor": [[1e20, 0.0]], "positive": [[0.0, 0.0]], "negative": [[0.0, 1.0]]}, NONE)
COSINE_ZERO = _c("cosine_embedding_loss", {"input1": [[0.0, 0.0]], "input2": [[1.0, 1.0]], "target": [1.0]}, NONE)
COSINE_ZERO_16 = _c("cosine_embedding_loss", {"input1": [[0.0, 0.0]], "input2": [[1.0, 1.0]], "target": [1.0]}, NONE, "float16")
TWD_COSINE_ZERO_16 = _c(
    "triplet_margin_with_distance_loss", {"anchor": [[0.0, 0.0]], "positive": [[1.0, 1.0]], "negative": [[0.0, 1.0]]},
    {"distance_function": "cosine", "reduction": "none"}, "float16",
)
HINGE_LABEL_0 = _c("hinge_embedding_loss", {"input": [0.5], "target": [0.0]}, label="target_label_0")
RANKING_LABEL_2 = _c("margin_ranking_loss", {"input1": [1.0], "input2": [0.0], "target": [2.0]}, label="target_label_2")
RANKING_BROADCAST = _c("margin_ranking_loss", {"input1": [1.0, 2.0], "input2": [0.0], "target": [1.0, 1.0]}, label="input_shape_mismatch")
TRIPLET_P3_LARGE_64 = _c("triplet_margin_loss", {"anchor": [[0.0, 1e30]], "positive": [[0.0, 0.0]], "negative": [[0.0, 0.0]]},
                         {"p": 3.0, "swap": True, "reduction": "none"}, "float64")
TRIPLET_BROADCAST = _c("triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[0.0]], "negative": [[2.0, 1.0]]}, label="shape_mismatch")
MULTI_MARGIN_WEIGHT = _c("multi_margin_loss", {"input": [[0.0, 1.0]], "target": [0]}, {"weight": [1.0, 1.0, 1.0]}, label="weight_wrong_length")
MULTILABEL_BELOW = _c("multilabel_margin_loss", {"input": [[0.1, 0.2]], "target": [[-2, 0]]}, label="target_below_minus_one")
MULTI_MARGIN_OUT = _c("multi_margin_loss", {"input": [[0.0, 1.0]], "target": [2]}, label="target_class_out_of_range")
COSINE_EPS_64 = _c("cosine_embedding_loss", {"input1": [[1.0, 2.0]], "input2": [[2.0, 4.0]], "target": [1.0]}, NONE, "float64")
TRIPLET_P1 = _c(
    "triplet_margin_loss", {"anchor": [[0.0, 0.0]], "positive": [[1.0, 0.5]], "negative": [[2.5, 0.0]]},
    {"p": 1.0, "eps": 0.0, "reduction": "none"},
)
MLSM_CLASS_SUM_OVERFLOW = _c("multilabel_soft_margin_loss", {"input": [[MAX32, MAX32]], "target": [[0.0, 0.0]]}, NONE)
RANKING_MEAN_OVERFLOW = _c("margin_ranking_loss", {"input1": [0.0] * 5, "input2": [8.507059e37] * 5, "target": [1.0] * 5})
# p = 2: z = 2**64 + 1, z*z = 2**128 overflows float32 before the weight w_y (0 or 1/4) and 1/C
SQUARED_HINGE_W0 = _c("multi_margin_loss", {"input": [[0.0, -1.8446744073709552e19]], "target": [1]},
                      {"p": 2, "weight": [1.0, 0.0], "reduction": "none"})
SQUARED_HINGE_QUARTER = _c("multi_margin_loss", {"input": [[0.0, -1.8446744073709552e19]], "target": [1]},
                           {"p": 2, "weight": [1.0, 0.25], "reduction": "none"})
SQUARED_HINGE_W0_16 = _c("multi_margin_loss", {"input": [[0.0, -300.0]], "target": [1]},
                         {"p": 2, "weight": [1.0, 0.0], "reduction": "none"}, "float16")  # z*z = 90601 > 65504
TRIPLET_EPS = _c(
    "triplet_margin_loss", {"anchor": [[1.0, 2.0]], "positive": [[1.0, 2.0]], "negative": [[3.0, 2.0]]},
    {"margin": 2.0, "reduction": "none"}, "float64",
)


def _near(value: float, rel: float = 1e-6) -> Callable[[np.ndarray], bool]:
    return lambda out: bool(np.allclose(np.asarray(out, dtype=np.float64), value, rtol=rel))


MINIMAL_CASES = [
    # -- torch (torch.nn.functional; torch-nn shares the kernels)
    Minimal("torch", "soft-margin-exp-overflow", "test_edge_cases", SOFT_MARGIN_OVERFLOW, [INF]),
    Minimal("torch", "soft-margin-exp-overflow", "test_edge_cases", SOFT_MARGIN_OVERFLOW_64, [INF]),
    Minimal("torch", "multilabel-soft-margin-infinite-logit-nan", "test_edge_cases", MLSM_INF, [NAN]),
    Minimal("torch", "hinge-argument-overflow", "test_edge_cases", MULTI_MARGIN_OVERFLOW, [INF]),
    Minimal("torch", "squared-norm-out-of-range", "test_edge_cases", COSINE_LARGE, [NAN]),
    Minimal("torch", "squared-norm-out-of-range", "test_edge_cases", TRIPLET_LARGE, [NAN]),
    Minimal("torch", "squared-norm-out-of-range", "test_edge_cases", COSINE_SMALL_16, [-INF]),
    Minimal("torch", "half-precision-epsilon-underflows-zero-vector-nan", "test_edge_cases", COSINE_ZERO_16, [NAN]),
    Minimal("torch", "half-precision-epsilon-underflows-zero-vector-nan", "test_edge_cases", TWD_COSINE_ZERO_16, [NAN]),
    Minimal("torch", "margin-losses-accept-labels-other-than-plus-minus-one", "test_rejects_invalid_input", HINGE_LABEL_0, [1.0]),
    Minimal("torch", "margin-losses-accept-labels-other-than-plus-minus-one", "test_rejects_invalid_input", RANKING_LABEL_2, [0.0]),
    Minimal("torch", "margin-losses-broadcast-mismatched-shapes", "test_rejects_invalid_input", RANKING_BROADCAST, [0.0]),
    Minimal("torch", "margin-losses-broadcast-mismatched-shapes", "test_rejects_invalid_input", TRIPLET_BROADCAST, _near(1.8218557)),
    Minimal("torch", "margin-reduction-intermediate-overflow", "test_matches_oracle", RANKING_MEAN_OVERFLOW, [INF]),
    Minimal("torch", "margin-reduction-intermediate-overflow", "test_matches_oracle", MLSM_CLASS_SUM_OVERFLOW, [INF]),
    Minimal("torch", "multi-margin-squared-hinge-overflow", "test_legacy_reduction_arguments", SQUARED_HINGE_W0, [NAN]),
    Minimal("torch", "multi-margin-squared-hinge-overflow", "test_matches_oracle", SQUARED_HINGE_QUARTER, [INF]),
    Minimal("torch", "cosine-embedding-epsilon", "test_edge_cases", COSINE_EPS_64, _near(1.2501111257279263e-13, 1e-3)),
    # exact 1e30 + 1; pow(S, fl(1/3)) with S = 1e90 (ln S = 207): 27 ULP low
    Minimal("torch", "pnorm-root-exponent-rounded", "test_matches_oracle", TRIPLET_P3_LARGE_64, [9.999999999999962e29]),
    # -- tensorflow (composed tf ops; Keras CosineSimilarity, BinaryCrossentropy)
    Minimal("tensorflow", "multilabel-soft-margin-infinite-logit-nan", "test_edge_cases", MLSM_INF, [NAN]),
    Minimal("tensorflow", "hinge-argument-overflow", "test_edge_cases", MULTI_MARGIN_OVERFLOW, [INF]),
    Minimal("tensorflow", "squared-norm-out-of-range", "test_edge_cases", COSINE_LARGE, [1.0]),
    Minimal("tensorflow", "squared-norm-out-of-range", "test_edge_cases", TRIPLET_LARGE, [NAN]),
    Minimal("tensorflow", "half-precision-epsilon-underflows-zero-vector-nan", "test_edge_cases", COSINE_ZERO_16, [NAN]),
    Minimal("tensorflow", "margin-class-sum-intermediate-overflow", "test_matches_oracle", MLSM_CLASS_SUM_OVERFLOW, [INF]),
    Minimal("tensorflow", "margin-class-sum-intermediate-overflow", "test_matches_oracle", RANKING_MEAN_OVERFLOW, [INF]),
    Minimal("tensorflow", "multi-margin-squared-hinge-overflow", "test_legacy_reduction_arguments", SQUARED_HINGE_W0, [NAN]),
    Minimal("tensorflow", "multi-margin-squared-hinge-overflow", "test_matches_oracle", SQUARED_HINGE_QUARTER, [INF]),
    Minimal("tensorflow", "multi-margin-squared-hinge-overflow", "test_edge_cases", SQUARED_HINGE_W0_16, [NAN]),
    Minimal("tensorflow", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", HINGE_LABEL_0, [0.5]),
    Minimal("tensorflow", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", RANKING_BROADCAST, [0.0]),
    Minimal("tensorflow", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", MULTI_MARGIN_WEIGHT, [1.0]),
    Minimal("tensorflow", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", MULTILABEL_BELOW, [0.0]),
    # -- jax (optax.losses and jnp, jitted)
    Minimal("jax", "multilabel-soft-margin-infinite-logit-nan", "test_edge_cases", MLSM_INF, [NAN]),
    Minimal("jax", "hinge-argument-overflow", "test_edge_cases", MULTI_MARGIN_OVERFLOW, [INF]),
    Minimal("jax", "cosine-similarity-zero-vector-nan", "test_edge_cases", COSINE_ZERO, [NAN]),
    Minimal("jax", "half-precision-epsilon-underflows-zero-vector-nan", "test_edge_cases", TWD_COSINE_ZERO_16, [NAN]),
    Minimal("jax", "squared-norm-out-of-range", "test_edge_cases", COSINE_LARGE, [1.0]),
    Minimal("jax", "squared-norm-out-of-range", "test_edge_cases", TRIPLET_LARGE, [NAN]),
    Minimal("jax", "triplet-norm-degree-without-abs", "test_edge_cases", TRIPLET_P1, [2.0]),
    Minimal("jax", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", HINGE_LABEL_0, [0.5]),
    Minimal("jax", "composed-margin-losses-accept-invalid-input", "test_rejects_invalid_input", MULTI_MARGIN_OUT, [NAN]),
    Minimal("jax", "margin-reduction-intermediate-overflow", "test_matches_oracle", RANKING_MEAN_OVERFLOW, [INF]),
    Minimal("jax", "margin-reduction-intermediate-overflow", "test_matches_oracle", MLSM_CLASS_SUM_OVERFLOW, [INF]),
    Minimal("jax", "multi-margin-squared-hinge-overflow", "test_legacy_reduction_arguments", SQUARED_HINGE_W0, [NAN]),
    Minimal("jax", "multi-margin-squared-hinge-overflow", "test_matches_oracle", SQUARED_HINGE_QUARTER, [INF]),
    Minimal("jax", "multi-margin-squared-hinge-overflow", "test_edge_cases", SQUARED_HINGE_W0_16, [NAN]),
    Minimal("jax", "triplet-eps-added-to-sum-of-powers", "test_edge_cases", TRIPLET_EPS, _near(0.00099975000001562, 1e-9)),
]

#: Entry ids of each framework's file that this module re-checks (the files' own tests
#: re-check the rest).
MARGIN_ENTRY_IDS: dict[str, set[str]] = {}
for _m in MINIMAL_CASES:
    MARGIN_ENTRY_IDS.setdefault(_m.framework, set()).add(_m.entry)

_MARGIN_LOSSES = {
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
    "multi_margin_loss", "multilabel_margin_loss", "cosine_embedding_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
}


@pytest.mark.parametrize("framework", ["torch", "tensorflow", "jax"])
def test_every_margin_entry_has_a_minimal_case(framework: str) -> None:
    # gradient-only entries are re-checked by tests/test_gradient_findings.py
    ours = {
        e.id for e in _entries(framework)
        if set(e.losses) and set(e.losses) <= _MARGIN_LOSSES
        and not (e.tests and all(t.startswith("test_gradient") for t in e.tests))
    }
    assert ours == MARGIN_ENTRY_IDS[framework]


@pytest.fixture(scope="module")
def adapters_by_framework():
    return {}


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.framework}-{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_margin_deviation_still_exists(adapters_by_framework, minimal: Minimal) -> None:
    if importlib.util.find_spec(_FRAMEWORK_MODULE[minimal.framework]) is None:
        pytest.skip(f"{minimal.framework} is not installed")
    if minimal.framework not in adapters_by_framework:
        adapters_by_framework[minimal.framework] = load_adapter(minimal.framework)
    adapter = adapters_by_framework[minimal.framework]
    case = minimal.case
    observed = np.asarray(case.call(adapter.function(case.fn)))
    assert observed.dtype == format_of(case.dtype).numpy_dtype
    if callable(minimal.observed):
        assert minimal.observed(observed), observed
    else:
        expected = np.asarray(minimal.observed, dtype=np.float64).reshape(observed.shape)
        np.testing.assert_array_equal(observed.astype(np.float64), expected)
    entries = _entries(minimal.framework)
    entry = next(e for e in entries if e.id == minimal.entry)
    if entry.kind == "accepts-invalid-input":
        with pytest.raises(ValueError):
            case.call(getattr(oracle, case.fn))  # the spec rejects what the framework accepted
    else:
        rounded = np.asarray(evaluate_oracle(case).rounded)
        obs = observed.astype(np.float64)
        differs = ~((obs == rounded) | (np.isnan(obs) & np.isnan(rounded)))
        assert differs.any(), f"{minimal.framework} now agrees with the spec on {case.describe()}: retire [{entry.id}]"
    first = next((e for e in entries if e.matches(adapter.name, minimal.test, case)), None)
    assert first is entry, f"[{entry.id}] is not the entry that explains {case.describe()} (first match: {first and first.id})"
    if entry.convention:
        assert check_case(adapter, case, convention=entry.convention).passed, (
            f"{minimal.framework} no longer computes convention {entry.convention!r} on {case.describe()}"
        )


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_cosine_epsilon_is_a_float32_constant():
    """PyTorch adds ``EPSILON = 1e-12`` to each squared norm as a float32 constant, also in
    float64: under the convention with that epsilon torch conforms; with the double ``1e-12``
    the exact value moves 2e5 times the allowed error away from what torch returns."""
    import mpmath

    from oracle.embedding import TORCH_COSINE_EMBEDDING_EPSILON

    case = _c("cosine_embedding_loss", {
        "input1": np.array([[0.125]]), "input2": np.array([[0.00038323946585021827]]), "target": np.array([1.0]),
    }, {"reduction": "none"}, dtype="float64")
    torch_adapter = load_adapter("torch")
    assert TORCH_COSINE_EMBEDDING_EPSILON == float(np.float32(1e-12)) != 1e-12
    assert check_case(torch_adapter, case, convention="torch-cosine-embedding-epsilon").passed
    with mpmath.workprec(200):  # the same formula with the double epsilon, by hand
        x1, x2, eps = mpmath.mpf(0.125), mpmath.mpf(0.00038323946585021827), mpmath.mpf(1e-12)
        with_double = 1 - x1 * x2 / mpmath.sqrt((x1 * x1 + eps) * (x2 * x2 + eps))
    observed = float(np.asarray(case.call(torch_adapter.function("cosine_embedding_loss")))[0])
    assert abs(observed - float(with_double)) > 1e-12 * 1e-2  # 1.4e-14 apart: not the double epsilon
