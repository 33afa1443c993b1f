"""The gradient findings stay true: every expectations entry for the gradient tests
(``tests = ["test_gradient_*"]`` in ``adapters/expectations/<framework>.toml``) has a
minimal case here, the framework still gets that case wrong, and the entry is the one
that explains it (the suite's gradient lookup: entries naming the gradient tests).
"""

from __future__ import annotations

import numpy as np
import pytest

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

_BCEL = "binary_cross_entropy_with_logits"
_BCEL_HALF_OVERFLOW = Case(_BCEL, {"input": _a([-32768.0], "float16"), "target": _a([0.0], "float16")},
                           {"reduction": "sum", "weight": _a([2.0], "float16"), "pos_weight": _a([0.5], "float16")},
                           "float16", wrt="target")
# d/dpos_weight = exp(-80) + exp(-88) = 1.8054568e-35; exp(-88) is a float32 subnormal: flushed
_BCEL_SUBNORMAL_ADDEND = Case(_BCEL, {"input": _a([[80.0], [88.0]]), "target": _a([[1.0], [1.0]])},
                              {"reduction": "sum", "pos_weight": _a([1.0])}, "float32", wrt="pos_weight")

# issue 6, the binary and divergence losses' targets: d/dp (p log p - p x) at p = 0 is -inf
_KL_ZERO_TARGET = Case("kl_div", {"input": _a([0.0, 0.0]), "target": _a([1.0, 0.0])}, {"reduction": "sum"}, "float32",
                       wrt="target")
# d/ds e^s (s - x) at s = -inf is 0
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
        "bce-target-gradient-ignores-log-clamp": (
            "test_gradient_matches_oracle",
            # d/dy = -(max(log x, -100) - max(log(1 - x), -100)) = 100 at x = 0; -logit(0) = inf
            Case("binary_cross_entropy", {"input": _a([0.0]), "target": _a([0.5])}, {"reduction": "sum"}, "float32",
                 wrt="target"),
        ),
        "kl-div-target-gradient-nan-at-zero-target": ("test_gradient_matches_oracle", _KL_ZERO_TARGET),
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
    },
    "tensorflow": {
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
        "float64-log1p-inaccurate-near-minus-0-41-gradient": (
            "test_gradient_matches_oracle",
            # exact -(log p - log1p(-p)) = 0.37948962170490375; XLA's log1p(-0.40625): 0.3794896217049122
            Case("binary_cross_entropy", {"input": _a([0.40625], "float64"), "target": _a([0.0], "float64")},
                 {"reduction": "sum"}, "float64", wrt="target"),
        ),
    },
}


def _entries(framework: str) -> dict:
    path = builtin_expectations_file(framework)
    entries = load_expectations(path, default_adapters=(framework,)) if path else []
    return {e.id: e for e in entries if e.tests and any(t in e.tests for t in GRADIENT_TESTS)}


def _lookup(entries, adapter: str, test: str, case: Case):
    """The suite's gradient lookup (suites/test_conformance.py): entries naming the test."""
    return next((e for e in entries if e.tests and not e.convention and e.matches(adapter, test, case)), None)


@pytest.mark.parametrize("framework", sorted(MINIMAL_CASES))
def test_every_gradient_entry_has_a_minimal_case(framework):
    assert set(MINIMAL_CASES[framework]) == set(_entries(framework))


def _adapter(framework: str):
    pytest.importorskip({"torch": "torch", "torch-compile": "torch", "tensorflow": "tensorflow", "jax": "jax"}[framework])
    from adapters import load_adapter

    return load_adapter(framework)


@pytest.mark.parametrize(
    ("framework", "entry_id"),
    [(f, e) for f, cases in MINIMAL_CASES.items() for e in cases],
)
def test_gradient_entry_still_describes_the_framework(framework, entry_id):
    adapter = _adapter(framework)
    test, case = MINIMAL_CASES[framework][entry_id]
    outcome = check_gradient_case(adapter, case)
    assert not outcome.passed, f"{framework} now gets the minimal case of {entry_id} right: drop the entry"
    all_entries = load_expectations(builtin_expectations_file(framework), default_adapters=(framework,))
    found = _lookup(all_entries, adapter.name, test, case)
    assert found is not None and found.id == entry_id, f"{entry_id} does not explain its own minimal case: {found}"


#: More minimal cases of entries whose reason names a second mechanism or parameter:
#: (framework, entry id, test, case).
FURTHER_CASES: list[tuple[str, str, str, Case]] = [
    ("torch", "kl-div-target-gradient-nan-at-zero-target", "test_gradient_matches_oracle", _KL_LOG_TARGET_NEG_INF),
    ("jax", "kl-divergence-target-gradient-nan-at-zero-target", "test_gradient_matches_oracle", _KL_LOG_TARGET_NEG_INF),
    ("torch", "bce-target-gradient-ignores-log-clamp", "test_gradient_matches_oracle",
     # log(1.4e-45) = -103.28 is clamped: exact 100; -logit(x) = 103.28
     Case("binary_cross_entropy", {"input": _a([1.401298464324817e-45]), "target": _a([0.5])}, {"reduction": "sum"},
          "float32", wrt="target")),
    ("jax", "float64-log1p-inaccurate-near-minus-0-41-gradient", "test_gradient_matches_oracle",
     Case("binary_cross_entropy", {"input": _a([0.40625], "float64"), "target": _a([0.0], "float64")},
          {"reduction": "sum", "weight": _a([1.0], "float64")}, "float64", wrt="weight")),
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
    adapter = _adapter(framework)
    outcome = check_gradient_case(adapter, case)
    assert not outcome.passed, f"{framework} now gets this case of {entry_id} right: update the entry"
    all_entries = load_expectations(builtin_expectations_file(framework), default_adapters=(framework,))
    found = _lookup(all_entries, adapter.name, test, case)
    assert found is not None and found.id == entry_id, f"{entry_id} does not explain {case.describe()}: {found}"
