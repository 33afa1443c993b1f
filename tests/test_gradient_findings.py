"""The gradient findings stay true: every expectations entry for the gradient tests
(``tests = ["test_gradient_*"]`` in ``adapters/expectations/<framework>.toml``) has a
minimal case here, the framework still gets that case wrong, and the entry is the one
that explains it (the suite's gradient lookup: entries naming the gradient tests). An
entry that names an oracle ``convention`` grades the framework exactly under it: its
minimal case must pass there (and a perturbed gradient must not: tests/test_teeth.py).
"""

from __future__ import annotations

import contextlib
import warnings

import ml_dtypes
import numpy as np
import pytest

# Paddle's native core segfaults when it is loaded after TensorFlow's (paddle 3.3.1 with this
# TensorFlow: `import tensorflow; import paddle` dies in paddle/base/core.py); the other order
# works, so Paddle is loaded here, before any test loads TensorFlow.
with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle  # noqa: F401

from suites.cases import Case
from suites.expectations import builtin_expectations_file, load_expectations
from suites.gradients import check_gradient_case

GRADIENT_TESTS = ("test_gradient_matches_oracle", "test_gradient_edge_cases")


def _a(values, dtype="float32") -> np.ndarray:
    return np.array(values, dtype=dtype)


# one frame, classes [blank, 1], target "1": the only path; d(-lp[0, 0, 1]) = [[[0, -1]]], while
# the frameworks differentiate w.r.t. logits through a (real or assumed) log_softmax: [[[0.5, -0.5]]]
_CTC_ONE_PATH = Case(
    "ctc_loss",
    {"log_probs": np.log(_a([[[0.5, 0.5]]])), "targets": np.array([[1]]), "input_lengths": np.array([1]),
     "target_lengths": np.array([1])},
    {"reduction": "sum"}, "float32", wrt="log_probs",
)

# four frames, target [1, 1, 1] needs five (the repeats' blanks): no alignment, loss +inf,
# zeroed by zero_infinity with gradient 0; TensorFlow's and optax's finite log-zero keep it
_CTC_X = [[[-0.5, -1.5, -2.0]], [[-1.0, -0.75, -2.5]], [[-2.0, -1.0, -0.5]], [[-0.25, -2.0, -3.0]]]
_CTC_IMPOSSIBLE_ZEROED = Case(
    "ctc_loss",
    {"log_probs": _a(_CTC_X), "targets": np.array([[1, 1, 1]]), "input_lengths": np.array([4]),
     "target_lengths": np.array([3])},
    {"reduction": "none", "zero_infinity": True}, "float32", wrt="log_probs",
)

_BCEL = "binary_cross_entropy_with_logits"
_BCEL_HALF_OVERFLOW = Case(_BCEL, {"input": _a([-32768.0], "float16"), "target": _a([0.0], "float16")},
                           {"reduction": "sum", "weight": _a([2.0], "float16"), "pos_weight": _a([0.5], "float16")},
                           "float16", wrt="target")
# d/dpos_weight = exp(-80) + exp(-88) = 1.8054568e-35; exp(-88) is a float32 subnormal: flushed
_BCEL_SUBNORMAL_ADDEND = Case(_BCEL, {"input": _a([[80.0], [88.0]]), "target": _a([[1.0], [1.0]])},
                              {"reduction": "sum", "pos_weight": _a([1.0])}, "float32", wrt="pos_weight")

# a masked class (logit -inf) with target 0: d/dweight_c is 0 (0 log 0 = 0); 0 * -log_softmax = NaN
_CE_MASKED_CLASS_WEIGHT = Case("cross_entropy", {"input": _a([[1.0, -np.inf, 2.0]]), "target": _a([[0.5, 0.0, 0.5]])},
                               {"weight": _a([1.0, 2.0, 0.5]), "reduction": "sum"}, "float32", wrt="weight")
# d/dtarget = w_c (lse - x_c) = [log 2, 2e38, log 2]; x - max = -4e38 overflows to -inf in float32: inf
_CE_SPREAD_TARGET = Case("cross_entropy", {"input": _a([[3e38, -1e38, 3e38]]), "target": _a([[0.5, 0.0, 0.5]])},
                         {"weight": _a([1.0, 0.5, 1.0]), "reduction": "sum"}, "float32", wrt="target")
# d/dweight_1 = 0.5 (lse - x_1) = 2e38; x - max = -4e38 overflows to -inf in float32: 0.5 * inf = inf
_CE_SPREAD_WEIGHT = Case("cross_entropy", {"input": _a([[3e38, -1e38]]), "target": _a([[0.5, 0.5]])},
                         {"weight": _a([1.0, 1.0]), "reduction": "sum"}, "float32", wrt="weight")
# issue 6, the binary and divergence losses' targets: d/dp (p log p - p x) at p = 0 is -inf
_KL_ZERO_TARGET = Case("kl_div", {"input": _a([0.0, 0.0]), "target": _a([1.0, 0.0])}, {"reduction": "sum"}, "float32",
                       wrt="target")
# d/ds e^s (s - x) at s = -inf is 0
# The composed weighted mean sum(w t) / sum(w) (torch, Paddle): exact (t_i W - S) / W^2 =
# [-2.5e37, 2.5e37]; S = 5e38 overflows float32, so -S / W^2 = -inf.
_L1_WEIGHTED_MEAN_SUM_OVERFLOW = Case("l1_loss", {"input": _a([0.0, 0.0]), "target": _a([2e38, 3e38])},
                                      {"reduction": "mean", "weight": _a([1.0, 1.0])}, "float32", wrt="weight")
_KL_LOG_TARGET_NEG_INF = Case("kl_div", {"input": _a([-1.0, 0.0]), "target": _a([-np.inf, 0.0])},
                              {"reduction": "sum", "log_target": True}, "float32", wrt="target")

#: framework -> entry id -> (test, minimal case)
MINIMAL_CASES: dict[str, dict[str, tuple[str, Case]]] = {
    "torch": {
        "pnorm-gradient-nan-where-the-norm-underflows": (
            "test_gradient_matches_oracle",
            # exact 0 (the distances' gradients cancel); float16 |eps|^3 underflows: 0/0 = NaN
            Case("triplet_margin_loss", {"anchor": _a([0.0], "float16"), "positive": _a([0.0], "float16"),
                                         "negative": _a([0.0], "float16")}, {"p": 3.0, "reduction": "sum"}, "float16",
                 wrt="anchor"),
        ),
        "bce-backward-divides-by-clamped-x-one-minus-x": (
            "test_gradient_edge_cases",
            # d/dx -log(1 - x) at x = 0 is 1; PyTorch: (x - y) / max(x (1 - x), 1e-12) = 0
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "sigmoid-gradient-underflows-to-zero-before-subnormal-range": (
            "test_gradient_matches_oracle",
            # exact sigma(-89) sigma(89) = 2.227e-39, a float32 subnormal; PyTorch: 0
            Case("sigmoid", {"input": _a([-89.0])}, {}, "float32"),
        ),
        "cross-entropy-ignored-row-nan-gradient": (
            "test_gradient_matches_oracle",
            # the ignored row's gradient is 0; log_softmax's backward gives 0 - NaN * 0 = NaN
            Case("cross_entropy", {"input": _a([[0.0, 0.0], [-np.inf, -np.inf]]), "target": np.array([0, -100])},
                 {"reduction": "sum"}, "float32"),
        ),
        "soft-margin-backward-exp-overflow-nan": (
            "test_gradient_matches_oracle",
            # exact -sigma(100) = -1 to float32; PyTorch: -z / (1 + z) with z = exp(100) = inf: NaN
            Case("soft_margin_loss", {"input": _a([-100.0]), "target": _a([1.0])}, {"reduction": "sum"}, "float32"),
        ),
        "squared-norm-out-of-range-gradient": (
            "test_gradient_matches_oracle",
            # exact [-0.7071, -1.7071]: in float32 |a - p|^2 = 3.4e38 overflows: d(a, p)'s gradient is lost
            Case("triplet_margin_loss", {"anchor": _a([[0.0, 0.0]]), "positive": _a([[0.0, 1.8446744e19]]),
                                         "negative": _a([[0.0, 0.0]])}, {"reduction": "sum"}, "float32"),
        ),
        "cosine-embedding-epsilon-gradient": (
            "test_gradient_edge_cases",
            # parallel vectors: the exact gradient is 0; with EPSILON = 1e-12 it is -4e-14, -8e-14
            Case("cosine_embedding_loss", {"input1": _a([[1.0, 2.0]], "float64"), "input2": _a([[2.0, 4.0]], "float64"),
                                           "target": _a([1.0], "float64")}, {"reduction": "sum"}, "float64"),
        ),
        "half-precision-epsilon-underflows-zero-vector-nan-gradient": (
            "test_gradient_edge_cases",
            # no derivative at a zero vector: any finite value passes; float16 torch: 0/0 = NaN
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 0.0]], "float16"), "input2": _a([[1.0, 1.0]], "float16"),
                                           "target": _a([-1.0], "float16")}, {"margin": -0.5, "reduction": "sum"}, "float16"),
        ),
        # issue 6, gradients w.r.t. other parameters (Case.wrt)
        "gradient-doubled-difference-overflow": (
            "test_gradient_matches_oracle",
            # d/dx 0.5 (x - y)^2 = x - y = -32768; pow's backward forms 2 (x - y) = -65536 -> -inf first
            Case("mse_loss", {"input": _a([0.0], "float16"), "target": _a([32768.0], "float16")},
                 {"reduction": "sum", "weight": _a([0.5], "float16")}, "float16", wrt="input"),
        ),
        "poisson-nll-full-zero-target-nan-gradient": (
            "test_gradient_matches_oracle",
            # d/dy (e^x - y x) = -x = -1; the masked Stirling term's log(0) gives 0 * inf = NaN
            Case("poisson_nll_loss", {"input": _a([1.0], "float64"), "target": _a([0.0], "float64")},
                 {"full": True, "reduction": "sum"}, "float64", wrt="target"),
        ),
        "ctc-loss-gradient-assumes-log-softmax": ("test_gradient_matches_oracle", _CTC_ONE_PATH),
        "poisson-nll-default-eps-rounds-to-zero-in-float16-gradient": (
            "test_gradient_edge_cases",
            # d/dy = -log(x + eps) = 18.42 at x = 0; eps = 1e-8 is 0 in float16: -log(0) = inf
            Case("poisson_nll_loss", {"input": _a([0.0], "float16"), "target": _a([1.0], "float16")},
                 {"log_input": False, "reduction": "sum"}, "float16", wrt="target"),
        ),
        # cross_entropy w.r.t. probability targets and class weights
        "cross-entropy-probability-target-masked-class-nan-weight-gradient": (
            "test_gradient_edge_cases", _CE_MASKED_CLASS_WEIGHT,
        ),
        "cross-entropy-probability-target-overflowing-logit-spread-target-gradient": (
            "test_gradient_matches_oracle", _CE_SPREAD_TARGET,
        ),
        "cross-entropy-probability-target-overflowing-logit-spread-weight-gradient": (
            "test_gradient_matches_oracle", _CE_SPREAD_WEIGHT,
        ),
        "bce-target-gradient-ignores-log-clamp": (
            "test_gradient_matches_oracle",
            # d/dy = -(max(log x, -100) - max(log(1 - x), -100)) = 100 at x = 0; -logit(0) = inf
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.5])}, {"reduction": "sum"}, "float32",
                 wrt="target"),
        ),
        "kl-div-target-gradient-nan-at-zero-target": ("test_gradient_matches_oracle", _KL_ZERO_TARGET),
        "weighted-mean-sum-overflow-weight-gradient": ("test_gradient_matches_oracle", _L1_WEIGHTED_MEAN_SUM_OVERFLOW),
        "cosine-embedding-backward-intermediate-subnormal": (
            "test_gradient_matches_oracle",
            # exact cos a_0 / |a|^2 = 0.0005555; float16 backward: cos / (2 R^2) = 1.8e-7 subnormal -> 0.00040245
            Case("cosine_embedding_loss", {"input1": _a([[15.0, 0.125]], "float16"), "input2": _a([[0.0, 15.0]], "float16"),
                                           "target": _a([1.0], "float16")}, {"reduction": "sum"}, "float16", wrt="input1"),
        ),
        "poisson-nll-exp-overflow-gradient": (
            "test_gradient_matches_oracle",
            # exact exp(89) / 4 = 1.1224e38; the backward's exp(89) is inf in float32 before the 1/4
            Case("poisson_nll_loss", {"input": _a([[85.0, 85.0], [85.0, 89.0]]), "target": _a([[0.0, 0.0], [0.0, 0.0]])},
                 {"reduction": "mean"}, "float32", wrt="input"),
        ),
        "pnorm-root-exponent-rounded": (
            "test_gradient_matches_oracle",
            # exact (v/d)^2 = 1 (one component dominates); pow(S, fl(1/3)) with ln S = 110.9 puts d
            # 2.05e-15 low: v |v| / d^2 = 1.0000000000000044 (1.11x the bound)
            Case("triplet_margin_loss", {"anchor": _a([[0.0, 1.1226262545535542e16]], "float64"),
                                         "positive": _a([[0.0, 0.0]], "float64"), "negative": _a([[0.0, 0.0]], "float64")},
                 {"p": 3.0, "swap": True, "reduction": "none"}, "float64", wrt="anchor"),
        ),
    },
    "torch-compile": {
        "bce-backward-divides-by-clamped-x-one-minus-x": (
            "test_gradient_edge_cases",
            # the same formula in the compiled backward: 0 / max(0, 1e-12) = 0; exact 1
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "bce-target-gradient-ignores-log-clamp": (
            "test_gradient_matches_oracle",
            # exact 100 (log 0 clamped at -100); the compiled -logit(0) = inf
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.5])}, {"reduction": "sum"}, "float32",
                 wrt="target"),
        ),
        "kl-div-target-gradient-nan-at-zero-target": ("test_gradient_matches_oracle", _KL_ZERO_TARGET),
        "cross-entropy-probability-target-masked-class-nan-weight-gradient": (
            "test_gradient_edge_cases",
            # d/dweight_1 = -(log_softmax_1 * target_1) = -(-inf * 0) = NaN compiled as eager; exact 0
            Case("cross_entropy", {"input": _a([[1.0, -np.inf, 2.0]], "float64"), "target": _a([[0.5, 0.0, 0.5]], "float64")},
                 {"weight": _a([1.0, 2.0, 0.5], "float64"), "reduction": "sum"}, "float64", wrt="weight"),
        ),
        "poisson-nll-full-zero-target-nan-gradient": (
            "test_gradient_matches_oracle",
            # d/dy (e^x - y x) = -x = -1; the masked Stirling term's log(0) gives 0 * inf = NaN
            Case("poisson_nll_loss", {"input": _a([1.0], "float64"), "target": _a([0.0], "float64")},
                 {"full": True, "reduction": "sum"}, "float64", wrt="target"),
        ),
        "l1-loss-weight-dropped-gradient": (
            "test_gradient_matches_oracle",
            # the compiled graph drops weight: d/dx = sign(x - y) = [1, -1]; exact w sign = [0.25, -4]
            Case("l1_loss", {"input": _a([1.0, -1.0]), "target": _a([0.0, 0.0])},
                 {"reduction": "sum", "weight": _a([0.25, 4.0])}, "float32", wrt="input"),
        ),
        "multilabel-margin-padding-counted-gradient": (
            "test_gradient_edge_cases",
            # the docs' example: class 0's two active hinges (classes 1, 2) give d/dx_0 = -2/4 = -0.5;
            # the -1 slot and the slot after it are gathered as class 0 too: 3 copies, -1.5
            Case("multilabel_margin_loss", {"input": _a([[0.1, 0.2, 0.4, 0.8]], "float64"),
                                            "target": np.array([[3, 0, -1, 1]])},
                 {"reduction": "sum"}, "float64", wrt="input"),
        ),
        "cosine-embedding-epsilon-gradient": (
            "test_gradient_matches_oracle",
            # parallel vectors: cos = 1 is a maximum, exact [0, 0]; EPSILON's gradient [-4e-14, -8e-14]
            Case("cosine_embedding_loss", {"input1": _a([[1.0, 2.0]], "float64"), "input2": _a([[2.0, 4.0]], "float64"),
                                           "target": _a([1.0], "float64")}, {"reduction": "sum"}, "float64", wrt="input1"),
        ),
        "squared-norm-out-of-range-gradient": (
            "test_gradient_edge_cases",
            # |x1|^2 = 5e40 overflows float32: inf / inf = nan, exact [-2.4e-21, 1.2e-21]
            Case("cosine_embedding_loss", {"input1": _a([[1e20, 2e20]]), "input2": _a([[2e20, 1e20]]), "target": _a([1.0])},
                 {"reduction": "sum"}, "float32", wrt="input1"),
        ),
        "cosine-embedding-zero-vector-gradient-overflows-float16": (
            "test_gradient_edge_cases",
            # the epsilon formula's -b / sqrt(1e-12 * 9) ~ -3.3e5 in float32, then float16: -inf; exact 0
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 0.0, 0.0]], "float16"),
                                           "input2": _a([[1.0, 2.0, 2.0]], "float16"), "target": _a([1.0], "float16")},
                 {"reduction": "sum"}, "float16", wrt="input1"),
        ),
        "soft-margin-backward-sigmoid-cancellation": (
            "test_gradient_edge_cases",
            # d/dx log1p(exp(-x)) = -sigmoid(-x) = -4.2483542552915889e-18 at x = 40; the compiled
            # backward's sigmoid(40) - 1 is 1 - 1 = 0 in float64
            Case("soft_margin_loss", {"input": _a([40.0], "float64"), "target": _a([1.0], "float64")},
                 {"reduction": "sum"}, "float64", wrt="input"),
        ),
    },
    "tensorflow": {
        "keras-sparse-labels-cast-to-loss-dtype-gradient": (
            "test_gradient_matches_oracle",
            # Keras rounds the label 257 to bfloat16 (256): the -1 lands on class 256
            Case("cross_entropy", {"input": np.where(np.arange(300) == 257, 10.0, 0.0)[None, :].astype(ml_dtypes.bfloat16),
                                   "target": np.array([257])}, {"reduction": "sum"}, "bfloat16"),
        ),
        "nll-weight-gradient-sum-overflows": (
            "test_gradient_matches_oracle",
            # d/dweight = 3e38 + 1e38 - 2e38 = 2e38; the class's segment sum overflows at 3e38 + 1e38: inf
            Case("nll_loss", {"input": _a([[-3e38], [-1e38], [2e38]]), "target": np.array([0, 0, 0])},
                 {"weight": _a([1.0]), "reduction": "none"}, "float32", wrt="weight"),
        ),
        "keras-unbatched-weighted-mean-not-divided-gradient": (
            "test_gradient_matches_oracle",
            # the mean of one position is its loss whatever its weight: d/dweight = 0; Keras: w_y l, so log 6
            Case("cross_entropy", {"input": np.zeros(6), "target": np.array(3)},
                 {"weight": np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])}, "float64", wrt="weight"),
        ),
        "softmax-cross-entropy-overflowing-logit-spread-target-gradient": (
            "test_gradient_matches_oracle",
            # d/dtarget_1 = 0.5 (lse - x_1) = 2e38; x - max = -4e38 overflows to -inf in float32: inf
            Case("cross_entropy", {"input": _a([[3e38, -1e38, 3e38]]), "target": _a([[0.5, 0.0, 0.5]])},
                 {"label_smoothing": 0.5, "reduction": "sum"}, "float32", wrt="target"),
        ),
        "cpu-denormals-are-zero-moves-a-hinge-onto-its-kink": (
            "test_gradient_matches_oracle",
            # exact 0 (inactive hinge); the subnormal read as 0 puts it on the kink: 1
            Case("margin_ranking_loss", {"input1": _a([-1.1086919306906877e-39]), "input2": _a([0.0]),
                                         "target": _a([-1.0])}, {"reduction": "sum"}, "float32", wrt="input1"),
        ),
        "keras-bce-half-precision-clip-does-not-reach-one-gradient": (
            "test_gradient_matches_oracle",
            # 1 - 1e-7 is 1 in float16: p = 1 unclipped, d log(1 - p)/dp = inf; exact 0
            Case("binary_cross_entropy", {"input": _a([1.0], "float16"), "target": _a([0.0], "float16")},
                 {"reduction": "sum"}, "float16", wrt="input"),
        ),
        "cpu-flushes-subnormal-gradients": (
            "test_gradient_matches_oracle",
            # exact sigma(-88) sigma(88) = 6.05e-39, a float32 subnormal; flushed to 0
            Case("sigmoid", {"input": _a([-88.0])}, {}, "float32"),
        ),
        "weighted-cross-entropy-gradient-at-zero-logit": (
            "test_gradient_matches_oracle",
            # exact sigma(0) = 0.5; abs and max at their kink give 1
            Case("binary_cross_entropy_with_logits", {"input": _a([0.0]), "target": _a([0.0])},
                 {"reduction": "sum", "pos_weight": _a([1.0])}, "float32"),
        ),
        "keras-bce-gradient-zero-where-clipped": (
            "test_gradient_edge_cases",
            # exact d/dx -log(1 - x) at 0 = 1; the clip's derivative is 0
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "keras-bce-half-precision-reciprocal-overflows-gradient": (
            "test_gradient_matches_oracle",
            # float16 1/p = 1/1.0014e-5 overflows; times the zero target: NaN; exact 1/(1 - p) = 1.00001
            Case("binary_cross_entropy", {"input": _a([1.0014e-5], "float16"), "target": _a([0.0], "float16")},
                 {"reduction": "sum"}, "float16", wrt="input"),
        ),
        "keras-label-smoothing-weighted-by-sample-gradient": (
            "test_gradient_edge_cases",
            # Keras weighs the whole smoothed loss by w[y]: -0.74330 at [0, 0], exact -0.71329
            Case("cross_entropy", {"input": _a([[1.0, 2.0, 3.0], [3.0, 4.0, 0.5]], "float64"),
                                   "target": np.array([0, -100], dtype=np.int64)},
                 {"weight": _a([0.5, 1.0, 2.0], "float64"), "label_smoothing": 0.25}, "float64"),
        ),
        "keras-single-class-axis-squeezed-gradient": (
            "test_gradient_matches_oracle",
            # one class, 0-d target: the forward call raises, so there is no gradient
            Case("cross_entropy", {"input": _a([0.0]), "target": np.array(0, dtype=np.int64)},
                 {"reduction": "none"}, "float32"),
        ),
        "keras-kl-ratio-gradient-overflows-in-half-precision": (
            "test_gradient_matches_oracle",
            # exact -1 (d/dx of p (log p - x)); RealDiv's backward forms (-p / q) / q = -162600 in float16: -inf
            Case("kl_div", {"input": _a([-6.0], "float16"), "target": _a([1.0], "float16")}, {"reduction": "none"},
                 "float16", wrt="input"),
        ),
        "keras-kl-gradient-of-clipped-target": (
            "test_gradient_matches_oracle",
            # exact [-1, 0]; the zero target is clipped to 1e-7
            Case("kl_div", {"input": _a([0.0, 0.0]), "target": _a([1.0, 0.0])}, {"reduction": "none"}, "float32", wrt="input"),
        ),
        "norm-gradient-nan-at-zero-difference": (
            "test_gradient_edge_cases",
            # exact 1: d(a, p) = 0 adds 0 (PyTorch's mask), d(a, n) = 1 subtracts -1; tf.norm: 0/0
            Case("triplet_margin_loss", {"anchor": _a([[0.0]]), "positive": _a([[0.0]]), "negative": _a([[1.0]])},
                 {"reduction": "sum", "eps": 0.0}, "float32"),
        ),
        "half-precision-epsilon-underflows-zero-vector-nan-gradient": (
            "test_gradient_edge_cases",
            # no derivative at a zero vector: any finite value passes; float16 TensorFlow: NaN
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 0.0]], "float16"), "input2": _a([[1.0, 1.0]], "float16"),
                                           "target": _a([-1.0], "float16")}, {"margin": -0.5, "reduction": "sum"}, "float16"),
        ),
        "squared-norm-out-of-range-gradient": (
            "test_gradient_matches_oracle",
            # exact [-2.4e-21, 1.2e-21]; |a|^2 = 5e40 overflows float32: the gradient is 0
            Case("cosine_embedding_loss", {"input1": _a([[1e20, 2e20]]), "input2": _a([[2e20, 1e20]]),
                                           "target": _a([1.0])}, {"reduction": "sum"}, "float32"),
        ),
        "ctc-loss-float64-raises-gradient": (
            "test_gradient_matches_oracle",
            # target [1] over four frames of zeros; TensorFlow raises in float64
            Case("ctc_loss", {"log_probs": np.zeros((4, 1, 3)), "targets": np.array([[1]]),
                              "input_lengths": np.array([4]), "target_lengths": np.array([1])},
                 {"reduction": "sum"}, "float64", wrt="log_probs"),
        ),
        "ctc-loss-impossible-alignment-is-finite-gradient": ("test_gradient_edge_cases", _CTC_IMPOSSIBLE_ZEROED),
        "ctc-loss-floors-frame-log-probabilities-gradient": (
            "test_gradient_matches_oracle",
            # the all-blank path through a -1000 blank: exact [-1, 0, 0]; log_0 = -706.9 outweighs it: [0, -0.5, 0.5]
            Case("ctc_loss", {"log_probs": _a([[[-1000.0, 0.0, 0.0]]]), "targets": np.array([[1]]),
                              "input_lengths": np.array([1]), "target_lengths": np.array([0])},
                 {"reduction": "sum"}, "float32", wrt="log_probs"),
        ),
        "ctc-loss-gradient-is-w.r.t.-logits": ("test_gradient_matches_oracle", _CTC_ONE_PATH),
        "keras-unbatched-weighted-regression-mean-not-divided-gradient": (
            "test_gradient_matches_oracle",
            # the mean of one term does not depend on its weight: exact 0; Keras's w * t gives t = 1
            Case("mse_loss", {"input": _a(0.0), "target": _a(1.0)}, {"reduction": "mean", "weight": _a(1.0)},
                 "float32", wrt="weight"),
        ),
        "cpu-flushes-subnormal-difference-gradient": (
            "test_gradient_matches_oracle",
            # x - y = -1.4e-45 (subnormal) is flushed to -0: sign gives 0, exact -1
            Case("l1_loss", {"input": _a(0.0), "target": _a(1.401298464324817e-45)}, {"reduction": "none"},
                 "float32", wrt="input"),
        ),
        "log-poisson-full-zero-target-nan-gradient": (
            "test_gradient_edge_cases",
            # d/dy (e^x - y x) = -x = -0.5; the unselected Stirling branch's log(0) gives 0 * inf
            Case("poisson_nll_loss", {"input": _a([0.5]), "target": _a([0.0])}, {"full": True, "reduction": "none"},
                 "float32", wrt="target"),
        ),
        "keras-weighted-square-gradient-overflow": (
            "test_gradient_matches_oracle",
            # exact w 2 (x - y) = -2**126; 2 (x - y) = -2**128 overflows before the weight
            Case("mse_loss", {"input": _a([0.0]), "target": _a([2.0 ** 127])}, {"reduction": "sum", "weight": _a([0.25])},
                 "float32", wrt="input"),
        ),
        "keras-huber-unselected-square-gradient-nan": (
            "test_gradient_matches_oracle",
            # linear branch: exact sign(x - y) = -1; the unselected square's 2 (x - y) overflows: 0 * inf
            Case("smooth_l1_loss", {"input": _a([0.0]), "target": _a([2.0 ** 127])}, {"reduction": "none", "beta": 0.5},
                 "float32", wrt="input"),
        ),
        "bce-with-logits-weight-gradient-nan-at-infinite-logit": (
            "test_gradient_matches_oracle",
            # loss 0 at matching hard targets, so d/dw = 0; the elementwise loss is NaN
            Case(_BCEL, {"input": _a([np.inf, -np.inf]), "target": _a([1.0, 0.0])},
                 {"reduction": "sum", "weight": _a([2.0, 3.0])}, "float32", wrt="weight"),
        ),
        "weighted-cross-entropy-pos-weight-gradient-nan-at-minus-inf": (
            "test_gradient_matches_oracle",
            # d/dq = z L = 0 * inf; exact 0
            Case(_BCEL, {"input": _a([-np.inf]), "target": _a([0.0])},
                 {"reduction": "sum", "pos_weight": _a([2.0])}, "float32", wrt="pos_weight"),
        ),
        "weighted-cross-entropy-target-gradient-nan-at-minus-inf": (
            "test_gradient_matches_oracle",
            # d/dz = -x + (q - 1) L = inf - inf; exact q softplus(inf) = +inf
            Case(_BCEL, {"input": _a([-np.inf]), "target": _a([0.0])},
                 {"reduction": "sum", "pos_weight": _a([0.5])}, "float32", wrt="target"),
        ),
        "weighted-cross-entropy-input-gradient-factor-cancels": (
            "test_gradient_matches_oracle",
            # (1 - z) - l sigma(-x) with l = 1 + (q - 1) z rounded in float16: -0.002441, exact -0.0025005
            Case(_BCEL, {"input": _a([-40.0], "float16"), "target": _a([0.25], "float16")},
                 {"reduction": "sum", "pos_weight": _a([0.01], "float16")}, "float16", wrt="input"),
        ),
        "weighted-cross-entropy-weighted-gradient-overflow": (
            "test_gradient_matches_oracle",
            # w x = 65536 overflows float16: NaN; exact w (q softplus(-x) - softplus(x)) = 32768
            _BCEL_HALF_OVERFLOW,
        ),
        "cpu-flushes-subnormal-gradient-addends": ("test_gradient_matches_oracle", _BCEL_SUBNORMAL_ADDEND),
        "keras-bce-target-and-weight-gradients-of-clipped-probability": (
            "test_gradient_matches_oracle",
            # exact d/dy = 100 (log 0 clamped at -100); Keras clips p to 1e-7: -log(1e-7) = 16.118
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.5])}, {"reduction": "sum"}, "float32",
                 wrt="target"),
        ),
        "keras-bce-half-precision-clip-does-not-reach-one-target-and-weight-gradients": (
            "test_gradient_matches_oracle",
            # exact d/dy = -(0 - (-100)) = -100; 1 - 1e-7 is 1 in float16: -(0 - log 0) = -inf
            Case("binary_cross_entropy", {"input": _a([1.0], "float16"), "target": _a([0.0], "float16")},
                 {"reduction": "sum"}, "float16", wrt="target"),
        ),
        "keras-kl-target-gradient-of-clipped-probabilities": ("test_gradient_matches_oracle", _KL_ZERO_TARGET),
    },
    "jax": {
        "cross-entropy-probability-target-masked-class-nan-weight-gradient": (
            "test_gradient_edge_cases", _CE_MASKED_CLASS_WEIGHT,
        ),
        "cross-entropy-overflowing-logit-spread-gradient": ("test_gradient_matches_oracle", _CE_SPREAD_TARGET),
        "ignored-position-nonfinite-term-nan-weight-gradient": (
            "test_gradient_matches_oracle",
            # the ignored row is never read: d/dweight = [-0, 0]; where's masked product: 0 * inf = NaN
            Case("nll_loss", {"input": _a([[-np.inf, 0.0], [0.0, 0.0]]), "target": np.array([-100, 0])},
                 {"weight": _a([1.0, 1.0]), "reduction": "sum"}, "float32", wrt="weight"),
        ),
        "xla-cpu-denormals-are-zero-moves-a-hinge-onto-its-kink": (
            "test_gradient_matches_oracle",
            # exact 0 (inactive hinge); the subnormal read as 0 puts it on the kink: 1/2
            Case("margin_ranking_loss", {"input1": _a([-1.1086919306906877e-39]), "input2": _a([0.0]),
                                         "target": _a([-1.0])}, {"reduction": "sum"}, "float32", wrt="input1"),
        ),
        "triplet-norm-degree-without-abs-gradient": (
            "test_gradient_edge_cases",
            # exact [[1, 1]]; optax's signed sum: [[-1, -1]]
            Case("triplet_margin_loss", {"anchor": _a([[0.0, 0.0]], "float64"), "positive": _a([[1.0, 0.5]], "float64"),
                                         "negative": _a([[2.5, 0.0]], "float64")},
                 {"p": 1.0, "eps": 0.0, "reduction": "sum"}, "float64", wrt="positive"),
        ),
        "xla-cpu-flushes-subnormal-gradients": (
            "test_gradient_matches_oracle",
            # exact sigma(-88) = 6.05e-39, a float32 subnormal; flushed to 0
            Case("binary_cross_entropy_with_logits", {"input": _a([-88.0]), "target": _a([0.0])},
                 {"reduction": "sum"}, "float32"),
        ),
        "clamped-log-gradient-nan": (
            "test_gradient_edge_cases",
            # exact 1; 0 * d log(p)/dp = 0 * inf = NaN through jnp.maximum
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "cosine-similarity-zero-vector-nan-gradient": (
            "test_gradient_edge_cases",
            # no derivative at a zero vector: any finite value passes; optax: 0/0 = NaN
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 0.0]]), "input2": _a([[1.0, 1.0]]), "target": _a([-1.0])},
                 {"margin": -0.5, "reduction": "sum"}, "float32"),
        ),
        "squared-norm-out-of-range-gradient": (
            "test_gradient_edge_cases",
            # exact [-2.4e-21, 1.2e-21]; |a|^2 = 5e40 overflows float32
            Case("cosine_embedding_loss", {"input1": _a([[1e20, 2e20]]), "input2": _a([[2e20, 1e20]]),
                                           "target": _a([1.0])}, {"reduction": "sum"}, "float32"),
        ),
        "norm-gradient-nan-at-zero-difference": (
            "test_gradient_edge_cases",
            # exact 0 (a = p = n); float16: |eps|^2 underflows, the norm's gradient is 0/0
            Case("triplet_margin_with_distance_loss", {"anchor": _a([[1.0, 2.0]], "float16"),
                                                       "positive": _a([[1.0, 2.0]], "float16"),
                                                       "negative": _a([[1.0, 2.0]], "float16")}, {"reduction": "sum"}, "float16"),
        ),
        "half-precision-epsilon-underflows-zero-vector-nan-gradient": (
            "test_gradient_edge_cases",
            # the cosine distance's gradient at a zero anchor is -b / (1e-8 |b|); optax in float16: NaN
            Case("triplet_margin_with_distance_loss", {"anchor": _a([[0.0, 0.0]], "float16"),
                                                       "positive": _a([[1.0, 1.0]], "float16"),
                                                       "negative": _a([[0.0, 1.0]], "float16")},
                 {"distance_function": "cosine", "reduction": "sum"}, "float16"),
        ),
        "multi-margin-squared-hinge-gradient-overflow": (
            "test_gradient_matches_oracle",
            # exact [-32769, 32769] (float16: -+32768); 2 z = 65538 overflows float16 before / C
            Case("multi_margin_loss", {"input": _a([[-32768.0, 0.0]], "float16"), "target": np.array([0])},
                 {"p": 2, "reduction": "sum"}, "float16"),
        ),
        "pnorm-gradient-nan-at-zero-component": (
            "test_gradient_matches_oracle",
            # exact [0, 0] (equal distances); jnp.power's gradient at the zero component is NaN
            Case("triplet_margin_loss", {"anchor": _a([[0.0, -0.125]]), "positive": _a([[0.0, 0.0]]),
                                         "negative": _a([[0.0, 0.0]])}, {"p": 3.0, "eps": 0.0, "reduction": "sum"}, "float32"),
        ),
        "triplet-eps-added-to-sum-of-powers-gradient": (
            "test_gradient_matches_oracle",
            # exact 2 (d(a, p) = eps has direction +1); optax: 0 + 0.125 / sqrt(0.125^2 + 1e-6)
            Case("triplet_margin_loss", {"anchor": _a([[0.0]]), "positive": _a([[0.0]]), "negative": _a([[0.125]])},
                 {"reduction": "sum"}, "float32"),
        ),
        "ctc-loss-impossible-alignment-is-log-epsilon-gradient": ("test_gradient_edge_cases", _CTC_IMPOSSIBLE_ZEROED),
        "xla-cpu-flushes-subnormal-ctc-gradients": (
            "test_gradient_matches_oracle",
            # softmax of 200.11 against 936.27 is exp(-736.16) = 1.95e-320, a float64 subnormal: 0
            Case("ctc_loss", {"log_probs": np.array([[0.0] * 6] * 6 + [[0.0] * 4 + [936.2731015208512, 200.1144436348643]]
                                                    + [[0.0] * 6] * 2),
                              "targets": np.array([], dtype=np.int64), "input_lengths": np.array(7),
                              "target_lengths": np.array(0)}, {"reduction": "none"}, "float64", wrt="log_probs"),
        ),
        "ctc-loss-gradient-is-w.r.t.-logits": ("test_gradient_matches_oracle", _CTC_ONE_PATH),
        "optax-huber-gradient-cancels-against-delta": (
            "test_gradient_matches_oracle",
            # exact x - y = -0.0010000000475; optax's backward forms delta + (|e| - delta): -0.00099999
            Case("huber_loss", {"input": _a([0.0]), "target": _a([0.001])}, {"reduction": "sum", "delta": 1.0},
                 "float32", wrt="input"),
        ),
        "sigmoid-bce-weight-gradient-nan-at-infinite-logit": (
            "test_gradient_matches_oracle",
            # loss 0 at matching hard targets, so d/dw = 0; optax's elementwise loss is NaN
            Case(_BCEL, {"input": _a([np.inf, -np.inf]), "target": _a([1.0, 0.0])},
                 {"reduction": "sum", "weight": _a([2.0, 3.0])}, "float32", wrt="weight"),
        ),
        "sigmoid-bce-pos-weight-gradient-nan-at-minus-inf": (
            "test_gradient_matches_oracle",
            # d/dq = -y log_sigmoid(x) = 0 * inf; exact 0
            Case(_BCEL, {"input": _a([-np.inf]), "target": _a([0.0])},
                 {"reduction": "sum", "pos_weight": _a([2.0])}, "float32", wrt="pos_weight"),
        ),
        "sigmoid-bce-weighted-gradient-overflow": (
            "test_gradient_matches_oracle",
            # w log_sigmoid(x)-sized products overflow float16: inf; exact 32768
            _BCEL_HALF_OVERFLOW,
        ),
        "xla-cpu-flushes-subnormal-gradient-addends": ("test_gradient_matches_oracle", _BCEL_SUBNORMAL_ADDEND),
        "kl-divergence-target-gradient-nan-at-zero-target": ("test_gradient_matches_oracle", _KL_ZERO_TARGET),
        "weighted-square-gradient-overflow": (
            "test_gradient_matches_oracle",
            # 2 (x - y) = -2**128 overflows float32 before the weight scales it: -inf, exact -2**126
            Case("mse_loss", {"input": _a([0.0]), "target": _a([2.0**127])}, {"weight": _a([0.25]), "reduction": "sum"},
                 "float32", wrt="input"),
        ),
        "float64-log1p-inaccurate-near-minus-0-41-gradient": (
            "test_gradient_matches_oracle",
            # exact -(log p - log1p(-p)) = 0.37948962170490375; XLA's log1p(-0.40625): 0.3794896217049122
            Case("binary_cross_entropy", {"input": _a([0.40625], "float64"), "target": _a([0.0], "float64")},
                 {"reduction": "sum"}, "float64", wrt="target"),
        ),
    },
    "paddle": {
        "weighted-mean-sum-overflow-weight-gradient": ("test_gradient_matches_oracle", _L1_WEIGHTED_MEAN_SUM_OVERFLOW),
        "nll-loss-reduced-ignored-position-corrupts-heap": (
            "test_gradient_matches_oracle",
            # refused: the forward kernel writes past its one-element output (heap corruption)
            Case("nll_loss", {"input": _a(np.full((8, 3), -1.0)), "target": np.array([0] + [-100] * 7)},
                 {"reduction": "sum"}, "float32"),
        ),
        "label-smoothing-smooths-the-last-axis": (
            "test_gradient_matches_oracle",
            # smoothing over the last axis (d1 = 1): the labels sum to 1.6, not 1
            Case("cross_entropy", {"input": _a([[[0.0], [0.0]]]), "target": _a([[[1.0], [0.0]]])},
                 {"label_smoothing": 0.1, "reduction": "sum"}, "float32"),
        ),
        "soft-label-class-weights-on-spatial-input": (
            "test_gradient_matches_oracle",
            # raises: matmul(label, weight) over the label's last axis (1) against C = 2
            Case("cross_entropy", {"input": _a([[[0.0], [0.0]]]), "target": _a([[[1.0], [0.0]]])},
                 {"weight": _a([1.0, 1.0]), "reduction": "sum"}, "float32"),
        ),
        "multilabel-margin-loss-row-without-listed-class-raises": (
            "test_gradient_edge_cases",
            # exact 0 gradient (no listed class); Paddle raises "p_index is nullptr"
            Case("multilabel_margin_loss", {"input": _a([[0.1, 0.2], [1.0, -1.0]], "float64"), "target": np.array([[-1, 0], [-1, 1]])},
                 {"reduction": "sum"}, "float64"),
        ),
        "bce-with-logits-gradient-off-by-one-at-zero-logit": (
            "test_gradient_matches_oracle",
            # sigma(0) - y = 0.5; Paddle's kernel: (0 > 0) - 0 - e^0 / 2 = -0.5
            Case(_BCEL, {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "bce-backward-divides-by-clamped-x-one-minus-x": (
            "test_gradient_edge_cases",
            # d/dx -log(1 - x) at x = 0 is 1; Paddle: (x - y) / max(x (1 - x), 1e-12) = 0
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "label-smoothing-labels-formed-in-float32-gradient": (
            "test_gradient_edge_cases",
            # q_0 = float32(1/3): -0.24330277009706036, exact -0.24330276016295288
            Case("cross_entropy", {"input": _a([[1.0, 2.0, 3.0]], "float64"), "target": np.array([0])},
                 {"label_smoothing": 1.0}, "float64", wrt="input"),
        ),
        "softmax-clips-shifted-logits-at-minus-64-gradient": (
            "test_gradient_edge_cases",
            # the masked class keeps e^-64 / Z: 1.17e-28, exact 0
            Case("cross_entropy", {"input": _a([[1.0, -np.inf, 2.0]], "float64"), "target": _a([[0.5, 0.0, 0.5]], "float64")},
                 {"reduction": "sum"}, "float64", wrt="input"),
        ),
        "sigmoid-bce-infinite-logit-nan-gradient": (
            "test_gradient_edge_cases",
            # d/dweight is the loss term, NaN at x = -inf; exact 0
            Case(_BCEL, {"input": _a([-np.inf]), "target": _a([0.0])}, {"weight": _a([0.0]), "reduction": "sum"}, "float32",
                 wrt="weight"),
        ),
        "sigmoid-gradient-underflows": (
            "test_gradient_matches_oracle",
            # exact sigma(-710) sigma(710) = 4.476e-309, a float64 subnormal; Paddle: 0
            Case("sigmoid", {"input": _a([-710.0], "float64")}, {}, "float64"),
        ),
        "bce-with-logits-pos-weight-gradient-cancels": (
            "test_gradient_matches_oracle",
            # l (sigma(-5) - 1) + 1 with l = 1: 0.0066928267, exact 0.006692851
            Case(_BCEL, {"input": _a([-5.0]), "target": _a([0.0])}, {"pos_weight": _a([1.0]), "reduction": "sum"},
                 "float32", wrt="input"),
        ),
        "huber-delta-rounded-to-float32-gradient": (
            "test_gradient_matches_oracle",
            # -delta32 = -1.4864145517349243, exact -1.4864145899726964
            Case("huber_loss", {"input": _a(0.0, "float64"), "target": _a(2.0, "float64")},
                 {"delta": 1.4864145899726964, "reduction": "none"}, "float64", wrt="input"),
        ),
        "regression-elementwise-intermediate-overflow-gradient": (
            "test_gradient_matches_oracle",
            # d^2 overflows float32: (inf - inf) / sum(w) for the weight the mean does not depend on
            Case("mse_loss", {"input": _a([0.0, 0.0]), "target": _a([0.0, 1.8446744073709552e19])},
                 {"weight": _a([0.0, 1.0]), "reduction": "mean"}, "float32", wrt="weight"),
        ),
        "soft-margin-exp-overflow-gradient": (
            "test_gradient_matches_oracle",
            # exp(89) overflows float32: inf / inf
            Case("soft_margin_loss", {"input": _a(-89.0), "target": _a(1.0)}, {"reduction": "sum"}, "float32", wrt="input"),
        ),
        "cosine-embedding-epsilon-gradient": (
            "test_gradient_matches_oracle",
            # parallel vectors: cos = 1 is a maximum, exact gradient 0; Paddle's eps: -5.12e-9
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 0.125]], "float64"), "input2": _a([[0.0, 0.125]], "float64"),
                                           "target": _a([1.0], "float64")}, {"reduction": "sum"}, "float64", wrt="input1"),
        ),
        "pnorm-exponent-in-float32-gradient": (
            "test_gradient_matches_oracle",
            # float32 porder: 2.000000947413797, exact 2
            Case("triplet_margin_loss", {"anchor": _a([0.0], "float64"), "positive": _a([0.0], "float64"),
                                         "negative": _a([0.125], "float64")}, {"p": 3.0, "reduction": "sum"}, "float64",
                 wrt="anchor"),
        ),
        "pnorm-gradient-nan-at-zero-distance": (
            "test_gradient_matches_oracle",
            # d(p, n) = 0 with eps = 0: 0/0 in p_norm's backward; exact [-1, 0]
            Case("triplet_margin_loss", {"anchor": _a([[1.0, 0.0]], "float64"), "positive": _a([[0.0, 0.0]], "float64"),
                                         "negative": _a([[0.0, 0.0]], "float64")}, {"eps": 0.0, "swap": True, "reduction": "sum"},
                 "float64", wrt="positive"),
        ),
        "poisson-full-zero-target-nan-gradient": (
            "test_gradient_matches_oracle",
            # the where's untaken Stirling branch: log(0) * 0; exact -log(1e-8) = 18.42
            Case("poisson_nll_loss", {"input": _a([0.0], "float64"), "target": _a([0.0], "float64")},
                 {"log_input": False, "full": True, "reduction": "none"}, "float64", wrt="target"),
        ),
        "squared-norm-out-of-range-gradient": (
            "test_gradient_matches_oracle",
            # |a - p|^2 overflows float32: the norm's direction is lost; exact -2
            Case("triplet_margin_loss", {"anchor": _a([0.0]), "positive": _a([1.8446744073709552e19]), "negative": _a([0.0])},
                 {"reduction": "sum"}, "float32", wrt="anchor"),
        ),
        "weighted-cross-entropy-input-gradient-factor-cancels": (
            "test_gradient_edge_cases",
            # l = 1 + (0.01 - 1) 0.25 rounded, then l (sigma(x) - 1) + 0.75 cancels: 2e-14 relative
            Case(_BCEL, {"input": _a([-40.0], "float64"), "target": _a([0.25], "float64")},
                 {"pos_weight": _a([0.01], "float64"), "reduction": "sum"}, "float64", wrt="input"),
        ),
        "ctc-loss-all-empty-targets-kill-the-process-gradient": (
            "test_gradient_edge_cases",
            # the all-blank path: -1 at the blank of each frame; warp-ctc would die with SIGFPE
            Case("ctc_loss", {"log_probs": _a(_CTC_X), "targets": np.array([[1]]), "input_lengths": np.array([4]),
                              "target_lengths": np.array([0])}, {"reduction": "none"}, "float32", wrt="log_probs"),
        ),
        "ctc-loss-empty-input-and-target-corrupts-heap-gradient": (
            "test_gradient_matches_oracle",
            # the second sequence has no frames and no target (gradient 0); warp-ctc corrupts the heap
            Case("ctc_loss", {"log_probs": np.zeros((7, 2, 6), np.float32), "targets": np.array([1]),
                              "input_lengths": np.array([1, 0]), "target_lengths": np.array([1, 0])},
                 {"reduction": "none"}, "float32", wrt="log_probs"),
        ),
        "ctc-loss-mean-divides-by-zero-target-length-gradient": (
            "test_gradient_matches_oracle",
            # an empty target's loss divided by its length 0: -inf where the spec clamps it to 1
            Case("ctc_loss", {"log_probs": np.zeros((9, 3, 2), np.float32), "targets": np.array([1]),
                              "input_lengths": np.array([9, 0, 9]), "target_lengths": np.array([0, 1, 0])},
                 {"reduction": "mean", "zero_infinity": True}, "float32", wrt="log_probs"),
        ),
        "ctc-loss-gradient-floors-probabilities-at-smallest-normal": (
            "test_gradient_matches_oracle",
            # softmax of [0, 0, 200]: e^-200 rounds to 0 in float32; warp-ctc: FLT_MIN, and 1 at the target
            Case("ctc_loss", {"log_probs": _a([[[0.0, 0.0, 200.0]]]), "targets": np.array([[2]]),
                              "input_lengths": np.array([1]), "target_lengths": np.array([1])},
                 {"reduction": "sum"}, "float32", wrt="log_probs"),
        ),
        "ctc-loss-gradient-is-w.r.t.-logits": ("test_gradient_matches_oracle", _CTC_ONE_PATH),
        "bce-weight-gradient-log-of-rounded-one-minus-p": (
            "test_gradient_matches_oracle",
            # d/dw -log(1 - x) = x = 8.4e-31; log of the rounded 1 - x = 1: 0
            Case("binary_cross_entropy", {"input": _a([8.437668357546999e-31]), "target": _a([0.0])},
                 {"reduction": "sum", "weight": _a([1.0])}, "float32", wrt="weight"),
        ),
        "multilabel-soft-margin-target-gradient-nan-at-infinite-logit": (
            "test_gradient_edge_cases",
            # d/dy = -w x / C = [-inf, inf]; Paddle's log_sigmoid(-inf) is NaN
            Case("multilabel_soft_margin_loss", {"input": _a([[np.inf, -np.inf]], "float64"), "target": _a([[1.0, 0.0]], "float64")},
                 {"reduction": "sum"}, "float64", wrt="target"),
        ),
        "log-sigmoid-of-rounded-one-plus-exp-weight-gradient": (
            "test_gradient_matches_oracle",
            # d/dw = log(1 + e^-5): 0.006715348489117967, exact 0.006715348489118068
            Case("multilabel_soft_margin_loss", {"input": _a([[-5.0]], "float64"), "target": _a([[0.0]], "float64")},
                 {"reduction": "sum", "weight": _a([0.0], "float64")}, "float64", wrt="weight"),
        ),
        "cosine-embedding-subnormal-cosine-gradient": (
            "test_gradient_matches_oracle",
            # cos = 9.8e-45 / 6.5e-4 is subnormal in float32; d/db_0 = -cos b_0 / n_b: 350 ULP
            Case("cosine_embedding_loss", {"input1": _a([[0.0, 1.0]]), "input2": _a([[0.00065171456662938, 9.80908925027372e-45]]),
                                           "target": _a([1.0])}, {"reduction": "none"}, "float32", wrt="input2"),
        ),
        "softmax-clips-shifted-logits-at-minus-64-weight-gradient": (
            "test_gradient_matches_oracle",
            # d/dweight_0 is -log softmax_0 = 65 capped by the -64 clip: 64
            Case("cross_entropy", {"input": _a([[0.0, 65.0]]), "target": np.array([0])},
                 {"weight": _a([1.0, 1.0]), "reduction": "sum"}, "float32", wrt="weight"),
        ),
        "soft-label-class-weights-scale-the-sample-gradient": (
            "test_gradient_matches_oracle",
            # [0.14082, 0.42245], exact [0.32832, 0.23495]
            Case("cross_entropy", {"input": _a([[0.0, 1.0]], "float64"), "target": _a([[0.25, 0.75]], "float64")},
                 {"weight": _a([1.0, 2.0], "float64"), "reduction": "sum"}, "float64", wrt="weight"),
        ),
        "label-smoothing-class-weights-scale-the-sample-gradient": (
            "test_gradient_matches_oracle",
            # [1.09194, 0.12133], exact [1.18194, 0.03133]
            Case("cross_entropy", {"input": _a([[0.0, 1.0]], "float64"), "target": np.array([0])},
                 {"weight": _a([1.0, 2.0], "float64"), "reduction": "sum", "label_smoothing": 0.2}, "float64", wrt="weight"),
        ),
        "cosine-similarity-clamps-the-norm-product": (
            "test_gradient_edge_cases",
            # zero anchor: Paddle's d cos(a, p)/da = p / eps = 1e8; the spec's p / (eps |p|)
            Case("triplet_margin_with_distance_loss", {"anchor": _a([[0.0, 0.0]], "float64"), "positive": _a([[1.0, 1.0]], "float64"),
                                                       "negative": _a([[0.0, 1.0]], "float64")},
                 {"distance_function": "cosine", "reduction": "none"}, "float64", wrt="anchor"),
        ),
        "hinge-argument-overflow-gradient": (
            "test_gradient_edge_cases",
            # margin - x_0 + x_1 = inf: clip's backward is 0 there; exact [[-0.5, 0.5]]
            Case("multi_margin_loss", {"input": _a([[-3.4028234663852886e38, 3.4028234663852886e38]]), "target": np.array([0])},
                 {"reduction": "none"}, "float32", wrt="input"),
        ),
        "multilabel-soft-margin-input-gradient-nan-at-infinite-logit": (
            "test_gradient_edge_cases",
            # exact (sigma(x) - y) / C = 0 at agreeing infinite logits; log_sigmoid(-inf) is NaN
            Case("multilabel_soft_margin_loss", {"input": _a([[np.inf, -np.inf]], "float64"), "target": _a([[1.0, 0.0]], "float64")},
                 {"reduction": "none"}, "float64", wrt="input"),
        ),
        "vectorized-exp-clamps-its-argument-gradient": (
            "test_gradient_matches_oracle",
            # exp(-710) on a 4-element float64 tensor: Eigen's pexp clamps at -709.784 -> 5.5555e-309
            Case("soft_margin_loss", {"input": _a([0.0, 0.0, 0.0, 710.0], "float64"), "target": _a([1.0, 1.0, 1.0, 1.0], "float64")},
                 {"reduction": "none"}, "float64", wrt="input"),
        ),
        "bce-with-logits-pos-weight-factor-cancels-weight-gradient": (
            "test_gradient_matches_oracle",
            # d/dw = l |x| with l = 1 + (0.001 - 1) rounded in float32: 0.08099896, exact 0.081000004
            Case(_BCEL, {"input": _a([-81.0]), "target": _a([1.0])},
                 {"weight": _a([1.0]), "pos_weight": _a([0.001]), "reduction": "sum"}, "float32", wrt="weight"),
        ),
    },
}


def _entries(framework: str) -> dict:
    path = builtin_expectations_file(framework)
    entries = load_expectations(path, default_adapters=(framework,)) if path else []
    return {e.id: e for e in entries if e.tests and any(t in e.tests for t in GRADIENT_TESTS)}


def _lookup(entries, adapter: str, test: str, case: Case):
    """The suite's gradient lookup (suites/test_conformance.py): entries naming the test."""
    return next((e for e in entries if e.tests and e.matches(adapter, test, case)), None)


@pytest.mark.parametrize("framework", sorted(MINIMAL_CASES))
def test_every_gradient_entry_has_a_minimal_case(framework):
    assert set(MINIMAL_CASES[framework]) == set(_entries(framework))


#: Frameworks checked in a child process: Paddle loaded into a process that already holds
#: TensorFlow, JAX and PyTorch (this module's other parameters) dies with SIGSEGV.
_SEPARATE_PROCESS = ("paddle",)

_CHILD = """
import json, sys
from adapters import load_adapter
from suites.expectations import builtin_expectations_file, load_expectations
from suites.gradients import check_gradient_case
from tests.test_gradient_findings import FURTHER_CASES, MINIMAL_CASES, _lookup
framework, entry_id, convention, further = sys.argv[1], sys.argv[2], sys.argv[3] or None, sys.argv[4]
adapter = load_adapter(framework)
test, case = FURTHER_CASES[int(further)][2:] if further else MINIMAL_CASES[framework][entry_id]
outcome = check_gradient_case(adapter, case, convention=convention)
entries = load_expectations(builtin_expectations_file(framework), default_adapters=(framework,))
found = _lookup(entries, adapter.name, test, case)
print(json.dumps({"passed": outcome.passed, "message": outcome.message, "found": found.id if found else None}))
"""


def _in_subprocess(framework: str, entry_id: str, convention: str | None, further: int | None = None) -> dict:
    """The check of one minimal case (``further``: an index into FURTHER_CASES) in a child process."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec(framework) is None:  # never imported here (see _SEPARATE_PROCESS)
        pytest.skip(f"{framework} is not installed")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _CHILD, framework, entry_id, convention or "", "" if further is None else str(further)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the {framework} check died ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _adapter(framework: str):
    pytest.importorskip({"torch": "torch", "torch-compile": "torch", "tensorflow": "tensorflow", "jax": "jax",
                         "paddle": "paddle"}[framework])
    from adapters import load_adapter

    return load_adapter(framework)


@pytest.mark.parametrize(
    ("framework", "entry_id"),
    [(f, e) for f, cases in MINIMAL_CASES.items() for e in cases],
)
def test_gradient_entry_still_describes_the_framework(framework, entry_id):
    if framework in _SEPARATE_PROCESS:
        result = _in_subprocess(framework, entry_id, None)
        assert not result["passed"], f"{framework} now gets the minimal case of {entry_id} right: drop the entry"
        assert result["found"] == entry_id, f"{entry_id} does not explain its own minimal case: {result['found']}"
        return
    adapter = _adapter(framework)
    test, case = MINIMAL_CASES[framework][entry_id]
    outcome = check_gradient_case(adapter, case)
    assert not outcome.passed, f"{framework} now gets the minimal case of {entry_id} right: drop the entry"
    all_entries = load_expectations(builtin_expectations_file(framework), default_adapters=(framework,))
    found = _lookup(all_entries, adapter.name, test, case)
    assert found is not None and found.id == entry_id, f"{entry_id} does not explain its own minimal case: {found}"


@pytest.mark.parametrize(
    ("framework", "entry_id"),
    [(f, e) for f, cases in MINIMAL_CASES.items() for e in cases],
)
def test_convention_entries_grade_their_minimal_case_exactly(framework, entry_id):
    """An entry with an oracle convention is not a blanket excuse: on its minimal case the
    framework fails the spec (above) and is accurate under the convention's exact gradient."""
    entry = _entries(framework)[entry_id]
    if not entry.convention:
        pytest.skip(f"{entry_id} names no convention")
    if framework in _SEPARATE_PROCESS:
        result = _in_subprocess(framework, entry_id, entry.convention)
        assert result["passed"], f"{framework} is not accurate under {entry.convention!r} on {entry_id}'s case:\n{result['message']}"
        return
    adapter = _adapter(framework)
    _test, case = MINIMAL_CASES[framework][entry_id]
    under = check_gradient_case(adapter, case, convention=entry.convention)
    assert under.passed, f"{framework} is not accurate under {entry.convention!r} on {entry_id}'s case:\n{under.message}"


#: More minimal cases of entries whose reason names a second mechanism or parameter:
#: (framework, entry id, test, case).
# The composed weighted mean sum(w t) / sum(w) (torch's F.l1_loss/mse_loss, Paddle's composition):
# d/dweight needs S = sum w t and W = sum w in the dtype. The same cases re-check both frameworks' entry.
_WEIGHTED_MEAN_SUM_OVERFLOW = (
    # exact [-2.025e37, 2.025e37]; S = 1.44e38 + 2.25e38 overflows float32: -inf
    Case("mse_loss", {"input": _a([0.0, 0.0]), "target": _a([1.2e19, 1.5e19])},
         {"reduction": "mean", "weight": _a([1.0, 1.0])}, "float32", wrt="weight"),
    # exact [0, 0] (equal terms); W = 6e38 overflows float32: 2/inf - inf/inf = NaN
    Case("l1_loss", {"input": _a([0.0, 1.0]), "target": _a([2.0, 3.0])},
         {"reduction": "mean", "weight": _a([3e38, 3e38])}, "float32", wrt="weight"),
    # the suite's float64 case (torch's default run; Paddle's, reduced): S = max + 2**970 rounds to inf
    Case("l1_loss", {"input": _a([0.0, 0.0, 0.0], "float64"),
                     "target": _a([0.0, 9.9792015476736e291, 1.7976931348623157e308], "float64")},
         {"reduction": "mean", "weight": _a([0.0, 1.0, 1.0], "float64")}, "float64", wrt="weight"),
)  # fmt: skip

FURTHER_CASES: list[tuple[str, str, str, Case]] = [
    ("paddle", "soft-label-class-weights-scale-the-sample-gradient", "test_gradient_matches_oracle",
     # d/dinput: (sum_i w_i q_i)(softmax - q) against sum_i w_i q_i (softmax - e_i)
     Case("cross_entropy", {"input": _a([[1.0, 2.0, 3.0]]), "target": _a([[0.5, 0.0, 0.5]])},
          {"weight": _a([1.0, 2.0, 3.0]), "reduction": "none"}, "float32", wrt="input")),
    ("jax", "weighted-square-gradient-overflow", "test_gradient_matches_oracle",
     # the selected 0.5 d**2 forms d**2 = 98596 > 65504 before halving: inf, exact 49280
     Case("huber_loss", {"input": _a([-8.9921875], "float16"), "target": _a([305.0], "float16")},
          {"delta": 314.25, "weight": _a([0.0], "float16"), "reduction": "sum"}, "float16", wrt="weight")),
    ("torch", "gradient-doubled-difference-overflow", "test_gradient_matches_oracle",
     # d/dvar = 0.5 (1/var - d^2/var^2) at var clamped to 0.001: -44512; d^2/var^2 = 90000 in float16: -inf
     Case("gaussian_nll_loss", {"input": _a([0.3], "float16"), "target": _a([0.0], "float16"), "var": _a([0.0], "float16")},
          {"eps": 0.001, "reduction": "sum"}, "float16", wrt="var")),
    ("torch", "kl-div-target-gradient-nan-at-zero-target", "test_gradient_matches_oracle", _KL_LOG_TARGET_NEG_INF),
    ("torch", "cross-entropy-probability-target-overflowing-logit-spread-weight-gradient", "test_gradient_matches_oracle",
     # the default-profile run's bfloat16 item: exact [0, 2.0005e38]; x - max overflows bfloat16's (float32's) range
     Case("cross_entropy", {"input": _a([[3e38, -1e38]]).astype(ml_dtypes.bfloat16),
                            "target": _a([[0.5, 0.5]]).astype(ml_dtypes.bfloat16)},
          {"weight": _a([1.0, 1.0]).astype(ml_dtypes.bfloat16), "reduction": "sum"}, "bfloat16", wrt="weight")),
    ("torch", "cross-entropy-probability-target-overflowing-logit-spread-weight-gradient", "test_gradient_matches_oracle",
     # float16: log_softmax_1 = -8e4 is beyond 65504: -inf; exact d/dweight_1 = 0.5 * 8e4 = 4e4
     Case("cross_entropy", {"input": _a([[6e4, -2e4]], "float16"), "target": _a([[0.5, 0.5]], "float16")},
          {"weight": _a([1.0, 1.0], "float16"), "reduction": "none"}, "float16", wrt="weight")),
    ("torch", "cosine-embedding-backward-intermediate-subnormal", "test_gradient_matches_oracle",
     # the suite's case (mean over 5 rows): d/da[3, 7] -0.00023842, exact -0.00022597
     Case("cosine_embedding_loss", {
         "input1": _a([[1.625, -5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-0.125, -3.5, 0.0, 3.5, 0.0, -2.0, 0.0, 0.0],
                       [-3.625, 0.0, 0.0, 0.5, 0.0, 0.125, -2.625, 0.0], [0.0, 0.0, -0.25, 0.0, -4.125, 0.0, 3.25, -4.75],
                       [2.125, -1.75, 2.875, -0.75, 0.0, 0.0, -1.0, -3.375]], "float16"),
         "input2": _a([[-3.0, 4.5, 0.0, 0.0, -2.75, 0.0, 0.0, 0.0], [0.0, -2.75, -3.625, 0.0, 0.0, 0.0, 0.0, 3.75],
                       [-3.75, -0.625, 0.0, -1.5, -1.375, 0.0, 0.0, 1.625], [4.5, -4.0, -2.625, 4.125, 0.0, 0.0, 0.0, 0.0],
                       [-0.75, 0.0, -3.875, -1.125, 0.0, -1.5, -2.375, 0.0]], "float16"),
         "target": _a([-1.0, -1.0, 1.0, 1.0, -1.0], "float16")}, {"reduction": "mean", "margin": -0.5}, "float16", wrt="input1")),
    ("torch", "poisson-nll-exp-overflow-gradient", "test_gradient_matches_oracle",
     # exact exp(12) / 5 = 32551; exp(12) = 162755 is inf in float16
     Case("poisson_nll_loss", {"input": _a([8.0, 8.0, 8.0, 8.0, 12.0], "float16"), "target": _a([0.0] * 5, "float16")},
          {"reduction": "mean"}, "float16", wrt="input")),
    *[(framework, "weighted-mean-sum-overflow-weight-gradient", "test_gradient_matches_oracle", case)
      for framework in ("torch", "paddle") for case in _WEIGHTED_MEAN_SUM_OVERFLOW],
    ("jax", "kl-divergence-target-gradient-nan-at-zero-target", "test_gradient_matches_oracle", _KL_LOG_TARGET_NEG_INF),
    ("torch", "bce-target-gradient-ignores-log-clamp", "test_gradient_matches_oracle",
     # log(1.4e-45) = -103.28 is clamped: exact 100; -logit(x) = 103.28
     Case("binary_cross_entropy", {"input": _a([1.401298464324817e-45]), "target": _a([0.5])}, {"reduction": "sum"},
          "float32", wrt="target")),
    ("jax", "float64-log1p-inaccurate-near-minus-0-41-gradient", "test_gradient_matches_oracle",
     Case("binary_cross_entropy", {"input": _a([0.40625], "float64"), "target": _a([0.0], "float64")},
          {"reduction": "sum", "weight": _a([1.0], "float64")}, "float64", wrt="weight")),
    ("tensorflow", "ctc-loss-floors-frame-log-probabilities-gradient", "test_gradient_matches_oracle",
     # the default run's case (float16): ten frames of zeros but a 1000 on class 1 of frame 3, empty target
     Case("ctc_loss", {"log_probs": np.where((np.arange(60) == 19).reshape(10, 1, 6), 1000.0, 0.0).astype(np.float16),
                       "targets": np.array([[1]]), "input_lengths": np.array([10]), "target_lengths": np.array([0])},
          {"reduction": "none"}, "float16", wrt="log_probs")),
    ("tensorflow", "nll-weight-gradient-sum-overflows", "test_gradient_matches_oracle",
     # the weighted mean does not depend on its one weight: exact 0; S = 3e38 + 1e38 - 2e38 overflows: -inf
     Case("nll_loss", {"input": _a([[-3e38], [-1e38], [2e38]]), "target": np.array([0, 0, 0])},
          {"weight": _a([1.0]), "reduction": "mean"}, "float32", wrt="weight")),
    ("tensorflow", "keras-bce-target-and-weight-gradients-of-clipped-probability", "test_gradient_matches_oracle",
     # d/dw = -log(1 - 0) = 0; Keras: -log(1 - 1e-7) = 1.19e-7 (1 - 1e-7 in float32)
     Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.0])}, {"reduction": "sum", "weight": _a([1.0])},
          "float32", wrt="weight")),
    ("tensorflow", "keras-bce-half-precision-clip-does-not-reach-one-target-and-weight-gradients",
     "test_gradient_matches_oracle",
     # d/dw = -(1 - y) max(log(1 - 1), -100) = 100; Keras: -log(0) = inf
     Case("binary_cross_entropy", {"input": _a([1.0], "float16"), "target": _a([0.0], "float16")},
          {"reduction": "sum", "weight": _a([1.0], "float16")}, "float16", wrt="weight")),
]


@pytest.mark.parametrize(("framework", "entry_id", "test", "case"), FURTHER_CASES,
                         ids=[f"{f}-{e}-{c.wrt}" for f, e, _, c in FURTHER_CASES])
def test_gradient_entry_explains_its_further_cases(framework, entry_id, test, case):
    if framework in _SEPARATE_PROCESS:
        index = next(i for i, further in enumerate(FURTHER_CASES) if further[3] is case)
        result = _in_subprocess(framework, entry_id, None, index)
        assert not result["passed"], f"{framework} now gets this case of {entry_id} right: update the entry"
        assert result["found"] == entry_id, f"{entry_id} does not explain {case.describe()}: {result['found']}"
        return
    adapter = _adapter(framework)
    outcome = check_gradient_case(adapter, case)
    assert not outcome.passed, f"{framework} now gets this case of {entry_id} right: update the entry"
    all_entries = load_expectations(builtin_expectations_file(framework), default_adapters=(framework,))
    found = _lookup(all_entries, adapter.name, test, case)
    assert found is not None and found.id == entry_id, f"{entry_id} does not explain {case.describe()}: {found}"


def test_tensorflow_ctc_floor_gradient_is_wrong_under_its_own_formula():
    """ctc-loss-floors-frame-log-probabilities-gradient is a bug, not the logits convention: on its
    minimal case TensorFlow's gradient fails softmax(x) - gamma (the convention) as well as the spec."""
    adapter = _adapter("tensorflow")
    _test, case = MINIMAL_CASES["tensorflow"]["ctc-loss-floors-frame-log-probabilities-gradient"]
    under = check_gradient_case(adapter, case, convention="ctc-gradient-through-log-softmax")
    assert not under.passed
    np.testing.assert_allclose(under.observed.reshape(-1), [0.0, -0.5, 0.5], atol=1e-6)
