"""The PyTorch findings on the regression and distribution losses (issue 4), and forward
findings of other losses without a test of their own, re-checked.

Each entry of ``adapters/expectations/torch.toml`` written for these losses has a minimal
case here: PyTorch must still return the value the entry's ``reason`` quotes, the oracle
(the spec) must still disagree, and the entry's condition must still select the case --
so an entry cannot outlive the behaviour it excuses, nor excuse a case it does not name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("torch")

from adapters import load_adapter
from oracle.core import format_of
from suites.cases import Case
from suites.checks import evaluate_oracle
from suites.expectations import EXPECTATIONS_DIR, load_expectations

ENTRIES = {e.id: e for e in load_expectations(EXPECTATIONS_DIR / "torch.toml", default_adapters=("torch", "torch-nn"))}
REGRESSION = ("l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss")
INF, NAN = math.inf, math.nan


@dataclass(frozen=True)
class Minimal:
    entry: str
    test: str
    case: Case
    observed: list[float]


def _case(fn, args, kwargs, dtype) -> Case:
    np_dtype = format_of(dtype).numpy_dtype
    return Case(fn, {k: np.asarray(v, dtype=np.float64).astype(np_dtype) for k, v in args.items()},
                {k: np.asarray(v, dtype=np.float64).astype(np_dtype) if isinstance(v, list) else v for k, v in kwargs.items()},
                dtype)


MINIMAL_CASES = [
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("huber_loss", {"input": [0.0] * 4, "target": [0.0, 0.0, 0.0, 2.0**1023]}, {"delta": 2.0}, "float64"), [INF]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("huber_loss", {"input": [0.0], "target": [1.7450378335257038e36]},
                  {"delta": 195.0, "weight": [0.0], "reduction": "none"}, "float32"), [NAN]),
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("mse_loss", {"input": [2.0**64, 0.0], "target": [0.0, 0.0]}, {"weight": [0.0, 1.0]}, "float32"), [NAN]),
    # Stirling's y log y = 7360 * 8.904 = 65535 > 65504 in float16; the loss is 58178
    Minimal("regression-elementwise-intermediate-overflow", "test_matches_oracle",
            _case("poisson_nll_loss", {"input": 1.0, "target": 7360.0},
                  {"reduction": "none", "log_input": False, "full": True, "eps": 6.103515625e-05}, "float16"), [INF]),
    Minimal("smooth-l1-squared-difference-underflows-before-division-by-beta", "test_edge_cases",
            _case("smooth_l1_loss", {"input": [2.0**-12], "target": [0.0]}, {"beta": 2.0**-10, "reduction": "none"}, "float16"), [0.0]),
    Minimal("poisson-nll-default-eps-rounds-to-zero-in-float16", "test_edge_cases",
            _case("poisson_nll_loss", {"input": [0.0], "target": [1.0]}, {"log_input": False, "reduction": "none"}, "float16"), [INF]),
]  # fmt: skip


#: Forward findings of other losses found since (their entries have no test of their own).
MINIMAL_CASES += [
    Minimal("bce-with-logits-pos-weight-factor-cancels", "test_matches_oracle",
            _case("binary_cross_entropy_with_logits", {"input": [-81.0], "target": [1.0]},
                  {"pos_weight": [0.001], "reduction": "sum"}, "float32"), [0.08099895715713501]),
    Minimal("bce-with-logits-pos-weight-factor-cancels", "test_matches_oracle",
            _case("binary_cross_entropy_with_logits", {"input": [-1000.0], "target": [1.0]},
                  {"pos_weight": [1e-20], "reduction": "sum"}, "float64"), [0.0]),
    # x - max = -2**103 - 3.4e38 overflows to -inf: 0 * -inf = NaN, exact 0
    Minimal("cross-entropy-probability-target-overflowing-logit-spread-nan", "test_matches_oracle",
            _case("cross_entropy", {"input": [3.4028234663852886e38, -2.0**103], "target": [1.0, 0.0]},
                  {"reduction": "none"}, "float32"), [NAN]),
    # a nonzero target on the overflowing class: 0.5 * inf = inf, exact 0.5 * 4e38 = 2e38
    Minimal("cross-entropy-probability-target-overflowing-logit-spread-nan", "test_matches_oracle",
            _case("cross_entropy", {"input": [[3e38, -1e38]], "target": [[0.5, 0.5]]}, {"reduction": "sum"}, "float32"),
            [INF]),
]  # fmt: skip


def test_every_regression_entry_has_a_minimal_case():
    # gradient entries (tests = test_gradient_*) are re-checked by tests/test_gradient_findings.py
    ours = {
        e.id for e in ENTRIES.values()
        if set(e.losses) <= set(REGRESSION) and not any(t.startswith("test_gradient") for t in e.tests)
    }
    assert {m.entry for m in MINIMAL_CASES if m.case.fn in REGRESSION} | {"ctc-loss-accepts-blank-and-out-of-range-targets"} == ours


@pytest.mark.parametrize("label", ["target_is_blank", "target_class_out_of_range"])
def test_torch_ctc_loss_still_accepts_invalid_targets(torch_adapter, label):
    """The spec rejects these targets; PyTorch returns a number (for an out-of-range class,
    whatever the kernel read: only the acceptance is checked)."""
    import oracle
    from suites.registry import spec_for

    case = spec_for("ctc_loss").invalid_cases[label]("float64")
    entry = ENTRIES["ctc-loss-accepts-blank-and-out-of-range-targets"]
    with pytest.raises(ValueError):
        case.call(oracle.ctc_loss)
    observed = np.asarray(case.call(torch_adapter.function("ctc_loss")))
    assert observed.shape == ()
    assert entry.matches(torch_adapter.name, "test_rejects_invalid_input", case)


@pytest.fixture(scope="module", params=["torch", "torch-nn"])
def torch_adapter(request):
    return load_adapter(request.param)


@pytest.mark.parametrize("minimal", MINIMAL_CASES, ids=[f"{m.entry}-{m.case.fn}-{m.case.dtype}" for m in MINIMAL_CASES])
def test_torch_finding_still_holds(torch_adapter, minimal: Minimal):
    adapter = torch_adapter
    case, entry = minimal.case, ENTRIES[minimal.entry]
    if adapter.name == "torch-nn" and case.kwargs.get("weight") is not None:
        pytest.skip("torch.nn's loss modules take no weight")
    observed = np.asarray(case.call(adapter.function(case.fn)), dtype=np.float64)
    np.testing.assert_array_equal(observed, np.asarray(minimal.observed).reshape(observed.shape))
    rounded = np.asarray(evaluate_oracle(case).rounded)
    assert np.all(np.isfinite(rounded)), "the spec's value is finite on every minimal case"
    assert entry.matches(adapter.name, minimal.test, case), f"[{entry.id}] no longer selects {case.describe()}"
    assert not entry.matches("jax", minimal.test, case)
