"""Detection power: the suite catches seeded defects, by name, and passes correct code.

``tests/textbook_adapter.py`` is a NumPy implementation of the spec with five
documented defects: (a) log-softmax without the max shift, (b) BCE-with-logits
as the log of a sigmoid, (c) weighted means divided by the number of targets,
(d) a BCE-with-logits gradient that ignores ``pos_weight``, (e) a smooth L1
gradient with Huber's slope ``beta`` in its linear branch.
Each test runs ``pytest suites --adapter tests.textbook_adapter`` in a
subprocess on a small selection (Hypothesis profile ``dev``, a fixed seed) and
reads ``results.json``:

* every defect is flagged by name: a ``fail`` record of the loss and the case
  that show it, with a message that says what is wrong there (a non-finite
  value for large logits, the mean's observed value ``sum / count``);
* the cases next to each defect (small logits, unweighted means) pass, and the
  functions without a defect (sigmoid, softmax, kl_div, binary_cross_entropy)
  pass everything: the suite flags the defects, not the implementation;
* the exit code is non-zero exactly when something fails, and ``--adapter
  torch`` passes the functions where PyTorch follows the spec (a control).
"""

from __future__ import annotations

import math
import re
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from .test_harness import TESTS_FAILED, SuiteRun, run_suite

TEXTBOOK = "tests.textbook_adapter"
BOTH = ("float64", "float16")
LOG_MAX_FLOAT16 = math.log(65504.0)  # exp overflows float16 above this (~11.09)


def _dtype_args(*dtypes: str) -> list[str]:
    return [arg for d in dtypes for arg in ("--dtype", d)]


def _loss_args(*losses: str) -> list[str]:
    return [arg for loss in losses for arg in ("--loss", loss)]


def _edge(run: SuiteRun, loss: str, label: str, dtype: str) -> dict[str, Any]:
    return run.one(test="test_edge_cases", loss=loss, case_label=label, dtype=dtype)


def assert_flagged(record: dict[str, Any], *signs: str) -> str:
    """The record is a failure whose message contains one of ``signs``; returns the message."""
    __tracebackhide__ = True
    where = f"{record['test']}[{record['loss']}, {record['case_label']}, {record['dtype']}]"
    assert record["verdict"] == "fail", f"{where} not flagged: {record['verdict']}\n{record['message']}"
    message = record["message"]
    assert any(s in message for s in signs), f"{where} fails, but not with any of {signs}:\n{message}"
    assert record["failure"] and record["failure"]["repro"], f"{where}: the failure has no repro"
    return message


def assert_passes(record: dict[str, Any]) -> None:
    __tracebackhide__ = True
    where = f"{record['test']}[{record['loss']}, {record['case_label']}, {record['dtype']}]"
    assert record["verdict"] == "pass", f"{where} should pass: {record['verdict']}\n{record['message']}"


def _number_after(label: str, message: str) -> float:
    """The float printed after ``label`` in a failure message (``observed:`` ...)."""
    number = r"[-+]?(?:inf|nan|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    match = re.search(re.escape(label) + r"\s*(?:np\.float\d+\()?(" + number + ")", message)
    assert match, f"no {label!r} in:\n{message}"
    return float(match.group(1))


def _case_arguments(case_text: str) -> dict[str, Any]:
    """The keyword arguments of a record's case (``Case.describe()``: exact Python text)."""
    call = re.sub(r"^\[[^\]]*\]\s*", "", case_text)
    fn = call.split("(", 1)[0]
    namespace = {"np": np, "ml_dtypes": ml_dtypes, "float": float, fn: lambda **kwargs: kwargs}
    return eval(call, namespace)  # the text is the suite's own rendering of a case


# ------------------------------------------------------------------ the edge cases


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory) -> SuiteRun:
    """The fixed edge cases of the three defective families, in float64 and float16."""
    return run_suite(
        "--adapter", TEXTBOOK, "-k", "test_edge_cases",
        *_loss_args("cross_entropy", "nll_loss", "log_softmax", "binary_cross_entropy_with_logits"),
        *_dtype_args(*BOTH),
        tmp=tmp_path_factory.mktemp("teeth-edges"),
    )


def test_seeded_defects_fail_the_run(edge_run):
    assert edge_run.returncode == TESTS_FAILED, edge_run.tail()
    assert (edge_run.report_dir / "index.html").is_file()
    assert {r["adapter"] for r in edge_run.records} == {TEXTBOOK}
    assert {r["adapter_version"] for r in edge_run.records} == {"1.0"}
    errors = [r["nodeid"] for r in edge_run.records if r["verdict"] == "error"]
    assert not errors, f"harness errors, not verdicts: {errors}"


@pytest.mark.parametrize(
    ("loss", "label", "dtype"),
    [
        ("cross_entropy", "logits_1e8", "float64"),
        ("cross_entropy", "logits_at_dtype_max", "float64"),
        ("log_softmax", "logits_at_dtype_max", "float64"),
        ("cross_entropy", "logits_40_0", "float16"),
        ("log_softmax", "logits_40_0", "float16"),
        ("cross_entropy", "logits_1e8", "float16"),
    ],
)
def test_a_unshifted_log_softmax_is_flagged_on_large_logits(edge_run, loss, label, dtype):
    message = assert_flagged(_edge(edge_run, loss, label, dtype), "non-finite")
    observed = _number_after("observed:", message)
    assert math.isinf(observed) or math.isnan(observed), message


@pytest.mark.parametrize(
    ("loss", "label", "dtype"),
    [
        ("cross_entropy", "uniform_logits_give_log_C", "float64"),
        ("cross_entropy", "uniform_logits_give_log_C", "float16"),
        ("cross_entropy", "logits_40_0", "float64"),  # exp(40) does not overflow float64
        ("cross_entropy", "masked_class_neg_inf", "float64"),
        ("cross_entropy", "k_extra_dims", "float64"),
        ("cross_entropy", "probability_target_one_hot", "float16"),
        ("log_softmax", "masked_class", "float64"),
        ("log_softmax", "logits_40_0", "float64"),
    ],
)
def test_a_small_logits_still_pass(edge_run, loss, label, dtype):
    """The unshifted form is right where exp does not overflow: no false alarm there."""
    assert_passes(_edge(edge_run, loss, label, dtype))


@pytest.mark.parametrize("dtype", BOTH)
def test_b_log_of_sigmoid_is_flagged_at_logit_40(edge_run, dtype):
    record = _edge(edge_run, "binary_cross_entropy_with_logits", "logit_40_target_0", dtype)
    message = assert_flagged(record, "non-finite inf where the exact value is finite")
    assert "exact:    40.0000000000000000" in message, message


@pytest.mark.parametrize("label", ["logits_1e8", "logits_at_dtype_max"])
def test_b_log_of_sigmoid_is_flagged_on_saturated_logits(edge_run, label):
    record = _edge(edge_run, "binary_cross_entropy_with_logits", label, "float64")
    assert_flagged(record, "non-finite")


@pytest.mark.parametrize(
    ("label", "dtype"),
    [("logit_minus_40_target_0", "float64"), ("pos_weight_broadcast_over_classes", "float64"),
     ("pos_weight_broadcast_over_classes", "float16")],
)
def test_b_unsaturated_sigmoids_still_pass(edge_run, label, dtype):
    assert_passes(_edge(edge_run, "binary_cross_entropy_with_logits", label, dtype))


def test_c_unweighted_mean_is_flagged_for_nll_loss(edge_run):
    """weight [0.25, 1, 4], targets [0, 2], log-probs -1 and -0.25: the weighted
    sum is 1.25; the spec divides by 0.25 + 4, the defect by 2 (two targets)."""
    record = _edge(edge_run, "nll_loss", "weighted_mean_denominator", "float64")
    message = assert_flagged(record, "error beyond the bound")
    assert _number_after("observed:", message) == 1.25 / 2, message
    assert _number_after("correctly rounded to float64:", message) == 1.25 / 4.25, message
    assert_flagged(_edge(edge_run, "nll_loss", "weighted_mean_denominator", "float16"), "error beyond the bound")


@pytest.mark.parametrize("dtype", BOTH)
def test_c_unweighted_mean_is_flagged_for_cross_entropy(edge_run, dtype):
    record = _edge(edge_run, "cross_entropy", "weighted_mean_denominator", dtype)
    message = assert_flagged(record, "error beyond the bound")
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]])
    r = np.log(np.exp(x).sum(axis=1)) - x[[0, 1], [0, 2]]
    weighted_sum = 0.25 * r[0] + 4.0 * r[1]
    observed = _number_after("observed:", message)
    exact = _number_after("correctly rounded to " + dtype + ":", message)
    tol = 1e-12 if dtype == "float64" else 4e-3
    assert observed == pytest.approx(weighted_sum / 2, rel=tol), message
    assert exact == pytest.approx(weighted_sum / 4.25, rel=tol), message


def test_c_unweighted_mean_also_breaks_label_smoothing_with_weight(edge_run):
    record = _edge(edge_run, "cross_entropy", "label_smoothing_with_weight_mean", "float64")
    assert_flagged(record, "error beyond the bound")


@pytest.mark.parametrize(
    ("loss", "label"),
    [
        ("cross_entropy", "all_ignored_mean_is_nan"),
        ("cross_entropy", "in_range_ignore_index"),
        ("nll_loss", "all_ignored_mean_is_nan"),
        ("nll_loss", "ignored_row_with_nan_is_ignored"),
    ],
)
@pytest.mark.parametrize("dtype", BOTH)
def test_c_unweighted_means_still_pass(edge_run, loss, label, dtype):
    """Without ``weight`` the count *is* the spec's denominator: no false alarm."""
    assert_passes(_edge(edge_run, loss, label, dtype))


# ------------------------------------------------------------------ the gradient defect


@pytest.fixture(scope="module")
def gradient_run(tmp_path_factory) -> SuiteRun:
    """The fixed edge cases of BCE-with-logits, differentiated, in float64 and float16."""
    return run_suite(
        "--adapter", TEXTBOOK, "-k", "test_gradient_edge_cases",
        *_loss_args("binary_cross_entropy_with_logits"),
        *_dtype_args(*BOTH),
        tmp=tmp_path_factory.mktemp("teeth-gradients"),
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("dtype", BOTH)
def test_d_gradient_ignoring_pos_weight_is_flagged(gradient_run, dtype):
    """x [[1, -2, 3], [0.5, 0, -1]], y [[1, 0, 1], [0, 1, 0.25]], pos_weight [2, 0.5, 3]:
    the defect returns sigmoid(x) - y, the derivative is (1 - y + p y) sigmoid(x) - p y."""
    assert gradient_run.returncode == TESTS_FAILED, gradient_run.tail()
    record = gradient_run.one(
        test="test_gradient_edge_cases", loss="binary_cross_entropy_with_logits",
        case_label="pos_weight_broadcast_over_classes", dtype=dtype, wrt="input",
    )
    message = assert_flagged(record, "error beyond the bound")
    assert message.startswith("gradient d sum(binary_cross_entropy_with_logits"), message
    i, j = map(int, re.search(r"at index \((\d+), (\d+)\)", message).groups())
    x = [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]][i][j]
    y = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.25]][i][j]
    p = [2.0, 0.5, 3.0][j]
    assert p * y != y, f"the worst component ({i}, {j}) is one pos_weight does not change:\n{message}"
    tol = 1e-12 if dtype == "float64" else 4e-3
    assert _number_after("observed:", message) == pytest.approx(_sigmoid(x) - y, rel=tol, abs=tol), message
    exact = (1 - y + p * y) * _sigmoid(x) - p * y
    assert _number_after(f"correctly rounded to {dtype}:", message) == pytest.approx(exact, rel=tol, abs=tol), message


@pytest.mark.parametrize("label", ["logit_minus_40_target_0", "logit_40_target_0", "logits_1e8", "infinite_logits_matching_hard_targets"])
@pytest.mark.parametrize("dtype", BOTH)
def test_d_gradients_without_pos_weight_still_pass(gradient_run, label, dtype):
    """Without ``pos_weight`` the textbook gradient is right: no false alarm there."""
    assert_passes(gradient_run.one(test="test_gradient_edge_cases", loss="binary_cross_entropy_with_logits", case_label=label, dtype=dtype, wrt="input"))


def test_d_undefined_gradients_are_not_judged(gradient_run):
    """Opposing infinite logits make the loss infinite: no gradient to judge, a skip."""
    record = gradient_run.one(
        test="test_gradient_edge_cases", loss="binary_cross_entropy_with_logits",
        case_label="infinite_logits_opposing_hard_targets", dtype="float64", wrt="input",
    )
    assert record["verdict"] == "skip" and "undefined" in record["message"], record


# ------------------------------------------------------------------ the regression gradient defect


@pytest.fixture(scope="module")
def smooth_l1_gradient_run(tmp_path_factory) -> SuiteRun:
    """The fixed edge cases of smooth_l1_loss, differentiated, in float64 and float16."""
    return run_suite(
        "--adapter", TEXTBOOK, "-k", "test_gradient_edge_cases",
        *_loss_args("smooth_l1_loss"),
        *_dtype_args(*BOTH),
        tmp=tmp_path_factory.mktemp("teeth-smooth-l1-gradients"),
    )


def _smooth_l1_input_gradient(run: SuiteRun, label: str, dtype: str) -> dict[str, Any]:
    return run.one(test="test_gradient_edge_cases", loss="smooth_l1_loss", case_label=label, dtype=dtype, wrt="input")


@pytest.mark.parametrize("dtype", BOTH)
def test_e_smooth_l1_gradient_with_hubers_slope_is_flagged(smooth_l1_gradient_run, dtype):
    """x [0.5, -0.5], y 0, beta 0.5: |x - y| = beta is the linear branch (and the quadratic
    one's limit), gradient sign(x - y) = +-1; the defect returns beta sign(x - y) = +-0.5."""
    assert smooth_l1_gradient_run.returncode == TESTS_FAILED, smooth_l1_gradient_run.tail()
    message = assert_flagged(_smooth_l1_input_gradient(smooth_l1_gradient_run, "difference_at_beta", dtype), "error beyond the bound")
    assert message.startswith("gradient d sum(smooth_l1_loss(...))/d input"), message
    assert abs(_number_after("observed:", message)) == 0.5, message
    assert abs(_number_after(f"correctly rounded to {dtype}:", message)) == 1.0, message
    tiny = assert_flagged(_smooth_l1_input_gradient(smooth_l1_gradient_run, "tiny_beta", dtype), "error beyond the bound")
    assert _number_after("observed:", tiny) == 2.0 ** -10, tiny  # the linear element, beta = 2**-10


@pytest.mark.parametrize("label", ["beta_0_is_l1", "zero_difference_gives_0", "one_ulp_apart", "mean_of_mixed_signs", "unbatched_scalar"])
@pytest.mark.parametrize("dtype", BOTH)
def test_e_smooth_l1_gradients_where_the_defect_is_silent_pass(smooth_l1_gradient_run, label, dtype):
    """beta = 1 (Huber's slope is then 1), beta = 0 (L1) and the quadratic branch: no false alarm."""
    assert_passes(_smooth_l1_input_gradient(smooth_l1_gradient_run, label, dtype))


def test_e_gradients_the_textbook_does_not_compute_are_unsupported(smooth_l1_gradient_run):
    record = smooth_l1_gradient_run.one(
        test="test_gradient_edge_cases", loss="smooth_l1_loss", case_label="difference_at_beta", dtype="float64", wrt="target",
    )
    assert record["verdict"] == "unsupported", record


# ------------------------------------------------------------------ generated cases


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory) -> SuiteRun:
    """Hypothesis-generated cases only (no edge case to lean on), float16."""
    return run_suite(
        "--adapter", TEXTBOOK, "-k", "test_matches_oracle",
        *_loss_args("log_softmax", "cross_entropy", "binary_cross_entropy_with_logits"),
        *_dtype_args("float16"),
        tmp=tmp_path_factory.mktemp("teeth-generated"),
    )


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["log_softmax", "cross_entropy"])
def test_a_generated_cases_find_the_overflow(generated_run, loss):
    """Hypothesis finds (and shrinks to) logits beyond float16's exp overflow."""
    assert generated_run.returncode == TESTS_FAILED, generated_run.tail()
    record = generated_run.one(test="test_matches_oracle", loss=loss, dtype="float16")
    assert_flagged(record, "non-finite")
    logits = _case_arguments(record["failure"]["case"])["input"].astype(np.float64)
    largest = np.max(logits[np.isfinite(logits)])
    assert largest > LOG_MAX_FLOAT16, f"the failing case has no overflowing logit: {record['failure']['case']}"


@pytest.mark.slow
def test_b_generated_cases_find_the_log_of_sigmoid(generated_run):
    record = generated_run.one(test="test_matches_oracle", loss="binary_cross_entropy_with_logits", dtype="float16")
    assert_flagged(record, "non-finite", "error beyond the bound")
    case = _case_arguments(record["failure"]["case"])
    x, y = case["input"].astype(np.float64), case["target"].astype(np.float64)
    # The defect bites where sigmoid rounds near 1 (or 0) on the side the target weighs, or
    # at an infinite logit, where the unweighted side is 0 * log(0) = NaN (exact: its limit).
    assert (
        np.any(((1 - y) > 0) & (x > 2)) or np.any((y > 0) & (x < -2)) or np.any(np.isinf(x))
    ), record["failure"]["case"]


# ------------------------------------------------------------------ no false alarms


@pytest.mark.slow
def test_correct_functions_of_the_textbook_pass(tmp_path):
    """The textbook's defect-free functions pass every test: what fails above is the defects."""
    run = run_suite(
        "--adapter", TEXTBOOK,
        *_loss_args("sigmoid", "softmax", "kl_div", "binary_cross_entropy"),
        *_dtype_args(*BOTH),
        tmp=tmp_path,
    )
    bad = [f"{r['nodeid']}: {r['verdict']}\n{r['message']}" for r in run.records if r["verdict"] not in ("pass", "skip", "unsupported", "deviation")]
    assert not bad, "\n\n".join(bad)
    assert run.returncode == 0, run.tail()
    tested = {(r["loss"], r["test"]) for r in run.records if r["verdict"] == "pass"}
    for loss in ("sigmoid", "softmax", "kl_div", "binary_cross_entropy"):
        assert (loss, "test_matches_oracle") in tested and (loss, "test_edge_cases") in tested, loss
    for loss in ("sigmoid", "kl_div"):  # the textbook differentiates these (correctly)
        assert (loss, "test_gradient_matches_oracle") in tested, loss
        assert (loss, "test_gradient_edge_cases") in tested, loss
    # the textbook differentiates kl_div w.r.t. input only: its target gradient is unsupported
    unsupported = {(r["loss"], r["test"]) for r in run.records if r["verdict"] == "unsupported"
                   and not (r["loss"] == "kl_div" and r.get("wrt") == "target")}
    allowed = {(loss, "test_legacy_reduction_arguments") for loss in ("kl_div", "binary_cross_entropy")}
    allowed |= {(loss, t) for loss in ("softmax", "binary_cross_entropy") for t in ("test_gradient_matches_oracle", "test_gradient_edge_cases")}
    assert unsupported <= allowed, unsupported - allowed


@pytest.mark.slow
def test_torch_control_passes(tmp_path):
    """``--adapter torch`` on functions where PyTorch follows the spec: exit code 0.

    Cases matching a cited entry of adapters/expectations/torch.toml (e.g. a sum
    that overflows float64 while the exact mean is finite) are deviations, allowed."""
    pytest.importorskip("torch")
    run = run_suite(
        "--adapter", "torch",
        *_loss_args("nll_loss", "log_softmax", "softmax"),
        *_dtype_args("float64"),
        tmp=tmp_path,
    )
    bad = [f"{r['nodeid']}: {r['verdict']}\n{r['message']}" for r in run.records if r["verdict"] not in ("pass", "skip", "unsupported", "deviation")]
    assert not bad, "\n\n".join(bad)
    assert run.returncode == 0, run.tail()
    assert {r["loss"] for r in run.records if r["verdict"] == "pass"} == {"nll_loss", "log_softmax", "softmax"}


# ------------------------------------------------------------------ gradient conventions (issue 6)
# In process: an entry naming an oracle convention grades the framework exactly under it, so a
# gradient that is wrong in a way the convention does not describe still fails the suite.


class _TorchWithPerturbedGradient:
    """PyTorch, as the suite sees it (name "torch": torch.toml's entries apply), with a seeded
    defect in its gradients: ``perturb(case_args, kwargs, grad) -> grad``."""

    name = "torch"
    version = "perturbed"
    supports_grad = True

    def __init__(self, perturb):
        from adapters import load_adapter

        self._torch = load_adapter("torch")
        self._perturb = perturb

    def grad(self, fn_name, args, kwargs, wrt="input"):
        return self._perturb(args, kwargs, self._torch.grad(fn_name, args, kwargs, wrt=wrt))

    def repro(self, fn_name, args, kwargs):
        return ""


class _Recorder:
    """What the suite's gradient check records (suites/recording.py's ItemRecorder, reduced)."""

    def __init__(self):
        self.deviations, self.outcomes, self.unsupported = [], [], []

    def add_unsupported(self, text):
        self.unsupported.append(text)

    def add_deviation(self, expectation, outcome):
        self.deviations.append((expectation.id, outcome))

    def add(self, outcome):
        self.outcomes.append(outcome)


def _suite_check(adapter, case):
    """The suite's own gradient check and lookup (suites/test_conformance.py) for torch.toml."""
    from suites.expectations import builtin_expectations_file, load_expectations
    from suites.test_conformance import _check_gradient

    entries = load_expectations(builtin_expectations_file("torch"), default_adapters=("torch",))

    def lookup(case):
        return next((e for e in entries if e.tests and e.matches(adapter.name, "test_gradient_matches_oracle", case)), None)

    recorder = _Recorder()
    _check_gradient(adapter, case, recorder, lookup)
    return recorder


def _ctc_case(dtype="float32"):
    from suites.cases import Case

    # two normalized frames of three classes, target [1, 2]: several alignments, gamma in (0, 1)
    x = np.log(np.array([[[0.5, 0.3, 0.2]], [[0.2, 0.3, 0.5]], [[0.4, 0.4, 0.2]]])).astype(dtype)
    return Case("ctc_loss", {"log_probs": x, "targets": np.array([[1, 2]]), "input_lengths": np.array([3]),
                             "target_lengths": np.array([2])}, {"reduction": "sum"}, dtype, wrt="log_probs")


def test_ctc_gradient_convention_passes_torch_and_records_a_deviation():
    pytest.importorskip("torch")
    recorder = _suite_check(_TorchWithPerturbedGradient(lambda a, k, g: g), _ctc_case())
    assert [d[0] for d in recorder.deviations] == ["ctc-loss-gradient-assumes-log-softmax"]
    assert recorder.deviations[0][1].passed  # accurate under torch-ctc-gradient-exp-minus-occupation


@pytest.mark.parametrize("defect", ["gamma_scaled_by_1.001", "gamma_of_the_wrong_target"])
def test_ctc_gradient_with_a_wrong_gamma_fails_under_the_convention(defect):
    """torch's exp(x) - gamma with a wrong gamma: scaled by 1.001, or torch's own gamma for the
    target [2, 1] instead of [1, 2]. The entry applies (the spec's -gamma differs anyway), but
    the convention's exact exp(x) - gamma does not match: a failure naming both judgements."""
    pytest.importorskip("torch")
    from suites.checks import ConformanceFailure

    def perturb(args, kwargs, g):
        x = np.asarray(args["log_probs"], dtype=np.float64)
        if defect == "gamma_scaled_by_1.001":
            gamma = np.exp(x) - g.astype(np.float64)
            return (np.exp(x) - 1.001 * gamma).astype(g.dtype)
        from adapters import load_adapter

        swapped = dict(args, targets=np.asarray(args["targets"])[:, ::-1].copy())
        return load_adapter("torch").grad("ctc_loss", swapped, kwargs, wrt="log_probs")

    with pytest.raises(ConformanceFailure) as info:
        _suite_check(_TorchWithPerturbedGradient(perturb), _ctc_case())
    message = str(info.value)
    assert "[ctc-loss-gradient-assumes-log-softmax] applies" in message
    assert "does not conform to oracle convention 'torch-ctc-gradient-exp-minus-occupation'" in message


def test_cosine_epsilon_convention_still_catches_a_gradient_error():
    """In float64 PyTorch's EPSILON makes almost every cosine gradient differ from the documented
    one; the entry grades it under the epsilon cosine's exact gradient, so a relative error of
    1e-9 in one component (far below what the entry used to wave through) fails."""
    pytest.importorskip("torch")
    from suites.cases import Case
    from suites.checks import ConformanceFailure

    case = Case("cosine_embedding_loss", {"input1": np.array([[1.0, 2.0]]), "input2": np.array([[2.0, 4.5]]),
                                          "target": np.array([1.0])}, {"reduction": "sum"}, "float64", wrt="input1")
    honest = _suite_check(_TorchWithPerturbedGradient(lambda a, k, g: g), case)
    assert not honest.outcomes or all(o.passed for o in honest.outcomes)

    def perturb(args, kwargs, g):
        g = g.copy()
        g[0, 0] *= 1 + 1e-9
        return g

    tiny = Case("cosine_embedding_loss", {"input1": np.array([[1e-4, 2e-4]]), "input2": np.array([[2e-4, 4.5e-4]]),
                                          "target": np.array([1.0])}, {"reduction": "sum"}, "float64", wrt="input1")
    control = _suite_check(_TorchWithPerturbedGradient(lambda a, k, g: g), tiny)
    assert [d[0] for d in control.deviations] == ["cosine-embedding-epsilon-gradient"]  # eps visible, graded
    assert control.deviations[0][1].passed
    with pytest.raises(ConformanceFailure) as info:
        _suite_check(_TorchWithPerturbedGradient(perturb), tiny)
    assert "oracle convention 'torch-cosine-embedding-epsilon'" in str(info.value)
