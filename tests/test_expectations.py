"""Expectations files: validation errors name the file, the entry and the fix; matching is narrow."""

from __future__ import annotations

import numpy as np
import pytest

from adapters import BUILTIN_ADAPTERS
from suites.cases import Case
from suites.expectations import (
    ExpectationLookup,
    ExpectationsError,
    builtin_adapters_sharing,
    builtin_expectations_file,
    load_expectations,
)

VALID = """
[[expected]]
id = "x"
kind = "special-value"
losses = ["kl_div"]
when = ["zero_target"]
reason = "r"
citation = "https://example.org"
"""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[expected]\nid=1", "is not valid TOML"),
        ('[[expected]]\nid = "x"\nkind = "bug"\nreason = "r"', "missing required field(s) citation"),
        (VALID.replace('kind = "special-value"', 'kind = "oops"'), "kind 'oops' is not one of"),
        (VALID.replace('"zero_target"', '"no_such_feature"'), "unknown feature 'no_such_feature'"),
        (VALID + 'colour = "red"\n', "unknown field(s) colour"),
        (VALID + 'convention = "nope"\n', "unknown convention 'nope'"),
        (VALID + VALID, "duplicate id 'x'"),
        ('[other]\nx = 1\n', "expected only [[expected]] tables"),
    ],
)
def test_malformed_files_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError) as info:
        load_expectations(path)
    message = str(info.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ExpectationsError, match="does not exist"):
        load_expectations(tmp_path / "absent.toml")


def test_builtin_entries_apply_to_their_own_framework_only():
    path = builtin_expectations_file("torch")
    assert builtin_adapters_sharing(path, BUILTIN_ADAPTERS) == ("torch", "torch-nn")
    entries = load_expectations(path, default_adapters=("torch", "torch-nn"))
    case = Case("kl_div", {"input": np.array([-np.inf, 0.0]), "target": np.array([0.0, 1.0])}, {"reduction": "none"})
    matching = [e.id for e in entries if e.matches("torch", "test_edge_cases", case)]
    assert matching == ["kl-div-zero-target-at-neg-inf-nan"]
    assert not [e.id for e in entries if e.matches("jax", "test_edge_cases", case)]


def test_features_keep_entries_narrow(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(VALID)
    (entry,) = load_expectations(path)
    zero = Case("kl_div", {"input": np.array([-1.0]), "target": np.array([0.0])})
    positive = Case("kl_div", {"input": np.array([-1.0]), "target": np.array([0.5])})
    assert entry.matches("anything", "test_matches_oracle", zero)
    assert not entry.matches("anything", "test_matches_oracle", positive)
    assert not entry.matches("anything", "test_matches_oracle", Case("nll_loss", zero.args))


def test_lookup_filters_patterns_and_skips_explained_entries_for_xpass_evidence(tmp_path):
    """A lookup answers as the entries' own ``matches`` would; once an entry has explained a
    deviation in the process (the shared ``explained`` set, which recorders fill), conforming
    cases no longer collect XPASS evidence for it -- it is used, and used ranks first."""
    path = tmp_path / "e.toml"
    path.write_text(VALID + VALID.replace('id = "x"', 'id = "y"').replace('losses = ["kl_div"]', 'losses = ["kl_div"]\nadapters = ["other"]'))
    entries = load_expectations(path)
    zero = Case("kl_div", {"input": np.array([-1.0]), "target": np.array([0.0])})
    positive = Case("kl_div", {"input": np.array([-1.0]), "target": np.array([0.5])})
    explained: set[str] = set()
    lookup = ExpectationLookup(entries, "mine", "test_matches_oracle", explained)
    assert [e.id for e in lookup.entries] == ["x"]  # "y" is for adapter "other" only
    assert lookup(zero).id == "x" and lookup(positive) is None
    assert [e.id for e in lookup.conforming(zero)] == ["x"]
    from suites.recording import ItemRecorder

    ItemRecorder(None, explained=explained).add_deviation_text(lookup(zero), zero, "deviates")
    assert explained == {"x"}
    assert lookup.conforming(zero) == [] and lookup(zero).id == "x"  # still explains failures


def test_wrt_features_say_which_parameter_a_gradient_case_differentiates():
    """``wrt_<name>`` holds for a gradient case w.r.t. that parameter only, never for a forward
    case; a baseline of a gradient item carries it as its condition."""
    from suites.baseline import baseline_entries
    from suites.expectations import FEATURES

    forward = Case("mse_loss", {"input": np.zeros(2), "target": np.ones(2)})
    target = Case("mse_loss", {"input": np.zeros(2), "target": np.ones(2)}, wrt="target")
    assert FEATURES["wrt_target"](target) and not FEATURES["wrt_input"](target)
    assert not any(FEATURES[f"wrt_{n}"](forward) for n in ("input", "target", "weight", "var"))
    record = {"verdict": "fail", "adapter": "torch", "test": "test_gradient_matches_oracle", "loss": "mse_loss",
              "dtype": "float32", "wrt": "target", "message": "x"}
    (entry,) = baseline_entries([record])
    assert entry["when"] == ["wrt_target"]
    (forward_entry,) = baseline_entries([dict(record, wrt=None, test="test_matches_oracle")])
    assert forward_entry["when"] == []


def test_norm_out_of_range_feature_follows_the_triplet_exponent():
    """float32 triplet with p = 3: |1e13|^3 = 1e39 overflows the sum of cubes PyTorch forms
    (F.triplet_margin_loss gives NaN, exact 1) although the squares (1e26) do not."""
    from suites.expectations import FEATURES

    args = {"anchor": np.array([[1e13, 0.0]], np.float32), "positive": np.array([[0.0, 0.0]], np.float32),
            "negative": np.array([[2e13, 1.0]], np.float32)}
    cubes = Case("triplet_margin_loss", args, {"p": 3.0, "reduction": "none"}, "float32")
    squares = Case("triplet_margin_loss", args, {"p": 2.0, "reduction": "none"}, "float32")
    assert FEATURES["squared_norm_out_of_range"](cubes)
    assert not FEATURES["squared_norm_out_of_range"](squares)


def test_gaussian_quotient_overflow_is_an_elementwise_intermediate():
    """float16 gaussian_nll_loss: (x - y)^2 = 40000 fits but 40000 / var = 65574 (var 0.61) does
    not; PyTorch forms it in the dtype before the halving (-> inf, exact 32763)."""
    from suites.expectations import FEATURES

    def case(target):
        return Case("gaussian_nll_loss", {"input": np.array([[0.0, 0.0]], np.float16), "target": np.array([[target, 1.0]], np.float16),
                                          "var": np.array([0.61], np.float16)}, {}, "float16")

    assert FEATURES["elementwise_intermediate_exceeds_dtype_max"](case(200.0))
    assert not FEATURES["elementwise_intermediate_exceeds_dtype_max"](case(1.0))


def test_multi_margin_negative_margin_feature():
    """Only multi_margin_loss with margin < 0 (the default margin is 1): where the i = y hinge
    term max(0, margin)^p is 0 rather than margin^p."""
    from suites.expectations import FEATURES

    def case(fn="multi_margin_loss", **kwargs):
        return Case(fn, {"input": np.zeros((1, 3), np.float32), "target": np.array([0])}, kwargs, "float32")

    assert FEATURES["multi_margin_negative_margin"](case(margin=-0.5))
    assert not FEATURES["multi_margin_negative_margin"](case(margin=0.0))
    assert not FEATURES["multi_margin_negative_margin"](case())
    assert not FEATURES["multi_margin_negative_margin"](case("multilabel_margin_loss", margin=-0.5))


def test_binary_gradient_features():
    """The features of the binary losses' target/weight gradient entries select what their
    docstrings say: a clamped BCE log (x < e^-100 or x = 1), a BCE probability in [0.28, 0.53]
    whatever its target, a multilabel term -log sigma(z) with a live z above 3.5."""
    from suites.expectations import FEATURES

    def bce(x, y):
        return Case("binary_cross_entropy", {"input": np.array(x), "target": np.array(y)}, wrt="target")

    assert FEATURES["bce_log_clamped"](bce([0.0], [0.5])) and FEATURES["bce_log_clamped"](bce([1.0], [0.5]))
    assert FEATURES["bce_log_clamped"](bce([1e-45], [0.5])) and not FEATURES["bce_log_clamped"](bce([1e-40, 0.5], [0.5, 1.0]))
    assert FEATURES["bce_probability_near_0_41"](bce([0.40625], [1.0]))
    assert not FEATURES["bce_probability_near_0_41"](bce([0.6], [0.0]))
    assert FEATURES["wrt_target_or_weight"](bce([0.5], [0.5]))
    assert not FEATURES["wrt_target_or_weight"](Case("binary_cross_entropy", bce([0.5], [0.5]).args, wrt="input"))

    def mlsm(x, y):
        return Case("multilabel_soft_margin_loss", {"input": np.array([x]), "target": np.array([y])}, wrt="weight")

    small = FEATURES["multilabel_soft_margin_small_term"]
    assert small(mlsm([-5.0], [0.0])) and small(mlsm([5.0], [1.0]))
    assert not small(mlsm([5.0], [0.0])) and not small(mlsm([-5.0], [1.0])) and not small(mlsm([3.0], [1.0]))
    assert not small(mlsm([np.inf], [1.0]))


def _triplet(anchor, dtype="float64", **kw) -> Case:
    zeros = np.zeros((1, len(anchor)), dtype)
    return Case("triplet_margin_loss", {"anchor": np.array([anchor], dtype), "positive": zeros, "negative": zeros.copy()},
                {"reduction": "none", **kw}, dtype)


def test_pnorm_root_exponent_feature_needs_a_visible_rounding():
    """PyTorch's pow(S, fl(1/p)) is off by |delta ln S|: beyond K_IN (ceil(log2 D) + 2) u only for a
    large |ln S| (float64 p = 3: S = 1.4e48 is, S = 1e3 is not), never for p = 2 (sqrt) or in float16
    (accumulated in float32), and an overflowed S is squared_norm_out_of_range's."""
    from suites.expectations import FEATURES

    rounded = FEATURES["pnorm_root_exponent_rounded"]
    assert rounded(_triplet([0.0, 1.1226262545535542e16], p=3.0, swap=True))
    assert rounded(_triplet([0.0, 1e30], p=3.0))
    assert not rounded(_triplet([0.0, 10.0], p=3.0, swap=True))
    assert not rounded(_triplet([0.0, 1e30], p=2.0))
    assert not rounded(_triplet([0.0, 1e30], p=1.0))
    assert not rounded(_triplet([0.0, 1000.0], "float16", p=3.0))
    assert not rounded(_triplet([0.0, 1e200], p=3.0))


def test_weighted_mean_sum_feature():
    """l1_loss's weighted mean sum(w t) / sum(w): the feature fires where a sum overflows, only for
    a mean with a weight."""
    from suites.expectations import FEATURES

    def case(target, weight, reduction="mean"):
        return Case("l1_loss", {"input": np.zeros(2, np.float32), "target": np.array(target, np.float32)},
                    {"reduction": reduction, "weight": np.array(weight, np.float32)}, "float32", wrt="weight")

    fires = FEATURES["weighted_mean_sums_exceed_dtype_max"]
    assert fires(case([2e38, 3e38], [1.0, 1.0]))
    assert fires(case([2.0, 3.0], [3e38, 3e38]))
    assert not fires(case([2e38, 3e38], [1.0, 1.0], "sum"))
    assert not fires(case([1e38, 1e38], [1.0, 1.0]))


def test_cosine_backward_subnormal_feature():
    """float16 cosine: g cos / (2 R^2) subnormal for |a| = |b| = 15 (R = 225); not in float32, not
    for small vectors, and not where R^2 overflows (squared_norm_out_of_range's)."""
    from suites.expectations import FEATURES

    def case(a, b, dtype="float16"):
        return Case("cosine_embedding_loss", {"input1": np.array([a], dtype), "input2": np.array([b], dtype),
                                              "target": np.array([1.0], dtype)}, {"reduction": "sum"}, dtype, wrt="input1")

    fires = FEATURES["cosine_backward_intermediate_subnormal"]
    assert fires(case([15.0, 0.125], [0.0, 15.0]))
    assert not fires(case([15.0, 0.125], [0.0, 15.0], "float32"))
    assert not fires(case([1.0, 0.5], [0.5, 1.0]))
    assert not fires(case([32.0, 0.125], [0.0, 32.0]))  # R^2 = 1048576 > 65504


def test_poisson_overflow_features():
    """poisson_nll_loss: Stirling's y log y beyond float16's max (7360 log 7360 = 65535) is an
    elementwise intermediate (7000 log 7000 = 61975 is not); the log_input backward's exp(x)
    overflows for x > log(max), for the input's gradient only."""
    from suites.expectations import FEATURES

    def stirling(y, full=True):
        return Case("poisson_nll_loss", {"input": np.array(1.0, np.float16), "target": np.array(y, np.float16)},
                    {"reduction": "none", "log_input": False, "full": full}, "float16")

    elementwise = FEATURES["elementwise_intermediate_exceeds_dtype_max"]
    assert elementwise(stirling(7360.0))
    assert not elementwise(stirling(7000.0))
    assert not elementwise(stirling(7360.0, full=False))

    def exp_case(x, wrt="input", log_input=True):
        return Case("poisson_nll_loss", {"input": np.array([x], np.float32), "target": np.array([0.0], np.float32)},
                    {"log_input": log_input}, "float32", wrt=wrt)

    overflows = FEATURES["poisson_exp_overflows"]
    assert overflows(exp_case(89.0))
    assert not overflows(exp_case(88.0))
    assert not overflows(exp_case(89.0, wrt="target"))
    assert not overflows(exp_case(89.0, log_input=False))


def test_compiled_margin_features():
    """The features of torch-compile's margin entries select what their docstrings say: a
    soft-margin gradient whose sigmoid(yx) - 1 (in float32 for float16/bfloat16/float32) is
    more than K_OUT u of the dtype off -sigmoid(-yx), where that value is a normal number; a
    one-sample (1-d) multi-class margin input; a -1 in a multilabel target."""
    from suites.expectations import FEATURES

    def soft(x, dtype="float32", y=1.0):
        return Case("soft_margin_loss", {"input": np.array([x], dtype), "target": np.array([y], dtype)},
                    {"reduction": "sum"}, dtype, wrt="input")

    cancels = FEATURES["soft_margin_backward_cancels"]
    assert cancels(soft(40.0, "float64")) and cancels(soft(40.0)) and cancels(soft(10.0))
    assert not cancels(soft(-40.0)) and not cancels(soft(40.0, y=-1.0)) and not cancels(soft(0.5))
    assert not cancels(soft(40.0, "float16"))  # e^-40 is below float16's smallest normal: 0 is right

    def margin(fn, x, t):
        return Case(fn, {"input": np.array(x, np.float32), "target": np.array(t)}, {"reduction": "none"}, "float32")

    assert FEATURES["unbatched_class_margin"](margin("multi_margin_loss", [0.5, 1.0], 1))
    assert not FEATURES["unbatched_class_margin"](margin("multi_margin_loss", [[0.5, 1.0]], [1]))
    assert FEATURES["unbatched_class_margin"](margin("multilabel_margin_loss", [0.5, 1.0], [1, -1]))
    assert FEATURES["multilabel_target_has_sentinel"](margin("multilabel_margin_loss", [[0.5, 1.0]], [[1, -1]]))
    assert not FEATURES["multilabel_target_has_sentinel"](margin("multilabel_margin_loss", [[0.5, 1.0]], [[1, 0]]))


def test_kl_ratio_gradient_overflow_feature():
    """Keras's log(p / q) backward forms (-p / q) / q in the dtype: inf in float16 for p = 1 at
    input -6 (q = 0.00248), not at -5 (q = 0.0067), not in float32 or bfloat16 (q >= 1e-7 after
    the clip, so p / q^2 <= 1e14)."""
    from suites.expectations import FEATURES

    def case(x, p, dtype="float16"):
        return Case("kl_div", {"input": np.array(x, dtype), "target": np.array(p, dtype)}, {"reduction": "none"}, dtype,
                    wrt="input")

    fires = FEATURES["kl_ratio_gradient_overflows"]
    assert fires(case([-6.0], [1.0])) and fires(case([0.0, -20.0], [0.5, 1.0]))
    assert not fires(case([-5.0], [1.0])) and not fires(case([-6.0], [0.001]))
    assert not fires(case([-20.0], [1.0], "float32")) and not fires(case([-20.0], [1.0], "bfloat16"))


def test_nll_weight_gradient_sum_feature():
    """nll_loss's d/dweight sums a class's |l_n| (and, for the mean, the forward sum S = sum |w l|)
    in the dtype: fires where such a sum exceeds the max, only with a weight, only for nll_loss."""
    from suites.expectations import FEATURES

    def case(x, target, weight, reduction="none", dtype="float32", fn="nll_loss"):
        kwargs = {"reduction": reduction} | ({"weight": np.array(weight, dtype)} if weight is not None else {})
        return Case(fn, {"input": np.array(x, dtype), "target": np.array(target)}, kwargs, dtype, wrt="weight")

    fires = FEATURES["nll_weight_gradient_sum_overflows"]
    big = [[-3e38], [-1e38], [2e38]]
    assert fires(case(big, [0, 0, 0], [1.0])) and fires(case(big, [0, 0, 0], [1.0], "mean"))
    assert not fires(case([[-3e38, 0.0], [0.0, -1e38]], [0, 1], [1.0, 1.0]))  # different classes
    assert fires(case([[-2e38], [-2e38], [1e38]], [0, 0, 0], [1.0]))
    assert not fires(case([[-2e38], [-2e38], [1e38]], [0, -100, 0], [1.0]))  # the ignored position adds nothing
    assert not fires(case(big, [0, 0, 0], None)) and not fires(case(big, [0, 0, 0], [1.0], fn="cross_entropy"))
    assert fires(case([[-3e38], [-1e38]], [0, 0], [1.0], "sum"))
    assert not fires(case([[-1e38], [-1e38]], [0, 0], [1.0], "mean"))
