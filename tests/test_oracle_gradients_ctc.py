"""Oracle tests of the gradient conventions of ``ctc_loss`` and PyTorch's epsilon cosine
(``oracle/gradients_ctc.py``, ``oracle.embedding.torch_cosine_embedding_loss_grad``).

* ``ctc-gradient-through-log-softmax`` is the derivative of ``CTC(log_softmax(x))``:
  against mpmath's numerical differentiation of the exact forward of that formula;
* ``torch-ctc-gradient-exp-minus-occupation`` is ``exp(x) + ctc_loss_grad`` (the spec's
  ``-gamma``), and equals the first on normalized rows;
* hand-computed minimal cases, and exact zeros where every path uses a class;
* PyTorch's epsilon cosine: its gradient against numerical differentiation of its forward,
  its second-order quantities against the plain cosine's at ``eps = 0``, and the
  difference from the documented cosine is real (beyond the float64 bound).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import working_precision
from oracle.conventions import convention_for
from oracle.ctc import ctc_loss_of_logits_terms
from oracle.embedding import _cosine_parts, torch_cosine_embedding_loss_terms
from oracle.gradients_ctc import (
    ctc_loss_exp_minus_occupation_grad,
    ctc_loss_exp_minus_occupation_grad_condition,
    ctc_loss_through_log_softmax_grad,
    ctc_loss_through_log_softmax_grad_condition,
)

from .test_oracle_ctc import draw_case, padded
from .test_oracle_gradients import assert_gradients_agree


def _of_logits(x, *args, **kwargs):
    return ctc_loss_of_logits_terms(x, *args, **kwargs).value


@settings(max_examples=15, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), zero_infinity=st.booleans())
def test_through_log_softmax_is_the_derivative_of_ctc_of_log_softmax(data, reduction, zero_infinity):
    x, il, seqs, blank = draw_case(data, max_t=4)
    if not zero_infinity:
        seqs = [q[: max(0, int(il[n]) // 2)] for n, q in enumerate(seqs)]  # possible alignments
    tl = np.array([len(q) for q in seqs])
    assert_gradients_agree(_of_logits, ctc_loss_through_log_softmax_grad, x, padded(seqs), il, tl,
                           blank=blank, reduction=reduction, zero_infinity=zero_infinity)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_exp_minus_occupation_is_exp_plus_the_spec_gradient(data, reduction):
    x, il, seqs, blank = draw_case(data, max_t=4)
    seqs = [q[: max(0, int(il[n]) // 2)] for n, q in enumerate(seqs)]
    tl = np.array([len(q) for q in seqs])
    with working_precision(200):
        got = ctc_loss_exp_minus_occupation_grad(x, padded(seqs), il, tl, blank=blank, reduction=reduction)
        spec = oracle.ctc_loss_grad(x, padded(seqs), il, tl, blank=blank, reduction=reduction)
        factor = [mpf(1) / (max(len(q), 1) * len(seqs)) if reduction == "mean" else mpf(1) for q in seqs]
        for t, n, c in np.ndindex(x.shape):
            want = spec[t, n, c] + (factor[n] * mpmath.exp(x[t, n, c]) if t < il[n] else 0)
            assert abs(got[t, n, c] - want) <= mpf(2) ** -180, (t, n, c, got[t, n, c], want)


def test_the_two_conventions_agree_on_normalized_rows():
    z = np.array([[[0.3, -1.2, 2.0]], [[1.0, 0.5, -0.5]], [[-2.0, 0.0, 1.5]]])
    with working_precision(200):
        rows = oracle.mp_array(z)
        lsm = np.empty(rows.shape, dtype=object)
        for t in range(3):
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in rows[t, 0]))
            lsm[t, 0] = [v - lse for v in rows[t, 0]]
        args = (np.array([[1, 2]]), np.array([3]), np.array([2]))
        a = ctc_loss_exp_minus_occupation_grad(lsm, *args, reduction="sum")
        b = ctc_loss_through_log_softmax_grad(z, *args, reduction="sum")
        assert all(abs(a[i] - b[i]) < mpf(2) ** -190 for i in np.ndindex(a.shape))


def test_hand_computed_minimal_cases():
    """One frame log[.5, .5], target [1], sum: PyTorch's (and TensorFlow's, optax's) [.5, -.5];
    the spec's [0, -1]. Two frames of log[.5, .5], target [1]: three paths (1 1, _ 1, 1 _),
    each of probability 1/4: gamma_t = [1/3, 2/3], softmax - gamma = [1/6, -1/6]; mean over
    the one target of length 1 is the same."""
    one = np.log(np.array([[[0.5, 0.5]]]))
    with working_precision(100):
        g = ctc_loss_through_log_softmax_grad(one, np.array([[1]]), np.array([1]), np.array([1]), reduction="sum")
        assert [float(v) for v in g.reshape(-1)] == [0.5, -0.5]
        assert [float(v) for v in oracle.ctc_loss_grad(one, np.array([[1]]), np.array([1]), np.array([1]), reduction="sum").reshape(-1)] == [0.0, -1.0]
        two = np.zeros((2, 1, 2))  # unnormalized: softmax is still [.5, .5]
        for reduction in ("sum", "mean"):
            g = ctc_loss_through_log_softmax_grad(two, np.array([[1]]), np.array([2]), np.array([1]), reduction=reduction)
            for t in range(2):
                assert abs(g[t, 0, 0] - mpf(1) / 6) < mpf(2) ** -90 and abs(g[t, 0, 1] + mpf(1) / 6) < mpf(2) ** -90
        # exp(0) = 1: PyTorch's formula on these unnormalized rows is [1 - 1/3, 1 - 2/3]
        g = ctc_loss_exp_minus_occupation_grad(two, np.array([[1]]), np.array([2]), np.array([1]), reduction="sum")
        assert abs(g[0, 0, 0] - mpf(2) / 3) < mpf(2) ** -90 and abs(g[0, 0, 1] - mpf(1) / 3) < mpf(2) ** -90


def test_a_class_every_path_uses_has_an_exact_zero_gradient():
    """Target [1, 1] over 3 frames has one alignment (1 _ 1): gamma is exactly 0/1, and with
    x = 0 at those classes exp(x) - gamma is exactly 0, not a rounding residue (which the
    correctly rounded float64 value would expose as ~2^-p)."""
    x = np.array([[[-1.0, 0.0]], [[0.0, -3.0]], [[-0.5, 0.0]]])
    with working_precision(80):
        g = ctc_loss_exp_minus_occupation_grad(x, np.array([[1, 1]]), np.array([3]), np.array([2]), reduction="sum")
    assert g[0, 0, 1] == 0 and g[1, 0, 0] == 0 and g[2, 0, 1] == 0
    masked = np.array([[[-np.inf, 0.25]], [[0.5, -np.inf]], [[-np.inf, -2.0]]])
    with working_precision(80):
        g = ctc_loss_through_log_softmax_grad(masked, np.array([[1, 1]]), np.array([3]), np.array([2]), reduction="sum")
    assert all(v == 0 for v in g.reshape(-1))  # softmax 1 where gamma is 1, 0 where masked


@pytest.mark.parametrize("condition", [ctc_loss_through_log_softmax_grad_condition, ctc_loss_exp_minus_occupation_grad_condition])
def test_conditions_are_finite_nonnegative_and_zero_beyond_the_input_length(condition):
    x = np.log(np.array([[[0.5, 0.3, 0.2]], [[0.1, 0.6, 0.3]], [[0.2, 0.2, 0.6]]]))
    with working_precision(64):
        gc = condition(x, np.array([[1]]), np.array([2]), np.array([1]), reduction="mean")
    for i in np.ndindex(x.shape):
        assert mpmath.isfinite(gc.condition[i]) and gc.condition[i] >= 0 and gc.scale[i] >= 0
    assert all(gc.condition[2, 0, c] == 0 for c in range(3))


def test_ctc_conventions_are_registered_with_their_gradients():
    for name, grad in [("ctc-gradient-through-log-softmax", ctc_loss_through_log_softmax_grad),
                       ("torch-ctc-gradient-exp-minus-occupation", ctc_loss_exp_minus_occupation_grad)]:
        c = convention_for(name)
        assert c.loss == "ctc_loss" and c.grad is grad and c.grad_condition is not None


# ------------------------------------------------------------------ PyTorch's epsilon cosine


def _torch_cosine(a, b, y, **kwargs):
    return torch_cosine_embedding_loss_terms(a, b, y, **kwargs).value


@settings(max_examples=20, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]), scale=st.sampled_from([1.0, 1e-4, 1e-6]))
def test_torch_cosine_gradient_is_the_derivative_of_its_formula(data, reduction, scale):
    n, d = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    vec = st.lists(st.floats(-2, 2), min_size=n * d, max_size=n * d)
    a = np.array(data.draw(vec)).reshape(n, d) * scale
    b = np.array(data.draw(vec)).reshape(n, d)
    y = np.array(data.draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n)))
    margin = data.draw(st.sampled_from([0.0, -0.5]))
    from oracle.embedding import torch_cosine_embedding_loss_grad

    with working_precision(64):
        cos = [_cosine_parts(oracle.mp_array(a[r]), oracle.mp_array(b[r]), mpf(1e-12))[0] for r in range(n)]
    if any(yr == -1 and abs(c - margin) < 1e-6 for yr, c in zip(y, cos)):
        return  # on the hinge's kink: a two-sided difference averages the sides

    def loss(a_, b_, y_, margin=0.0, reduction="mean"):
        return _torch_cosine(a_, b_, y_, margin=margin, reduction=reduction)

    def grad(a_, b_, y_, margin=0.0, reduction="mean"):
        return torch_cosine_embedding_loss_grad(a_, b_, y_, margin=margin, reduction=reduction)

    assert_gradients_agree(loss, grad, a, b, y, margin=margin, reduction=reduction)


@settings(max_examples=20, deadline=None)
@given(a=st.lists(st.floats(-3, 3), min_size=3, max_size=3), b=st.lists(st.floats(-3, 3), min_size=3, max_size=3))
def test_epsilon_second_order_reduces_to_the_plain_cosine_at_eps_zero(a, b):
    from oracle.gradients_margin import _cosine_epsilon_second_order, _cosine_second_order

    if not any(a) or not any(b):
        return
    with working_precision(120):
        x, y = oracle.mp_array(np.array(a)), oracle.mp_array(np.array(b))
        mine, plain = _cosine_epsilon_second_order(x, y, mpf(0)), _cosine_second_order(x, y, mpf(0))
        # Agreement to 100 of the 120 bits relative to the terms' scale: the epsilon form rounds
        # b_i / r - cos a_i / n_a, parts of size up to 1/||a|| (1/||b||), and their difference can
        # cancel to an exact 0 in the plain form (parallel a = [6e-8, 0, 0], b = [1.04, 0, 0]:
        # 1.3e-29 against 0, relative 2^-120 of the parts).
        scale = 1 + 1 / mpmath.sqrt(mpmath.fsum(t * t for t in x)) + 1 / mpmath.sqrt(mpmath.fsum(t * t for t in y))
        for u, v in zip(mine, plain):
            for p, q in zip(u, v):
                assert abs(p - q) <= mpf(2) ** -100 * (abs(q) + scale)


def test_torch_epsilon_cosine_gradient_differs_from_the_documented_one_beyond_the_bound():
    """The documented-formula difference is real: at parallel float64 vectors [1, 2], [2, 4] the
    documented cosine's gradient is exactly 0 (a maximum) and PyTorch's formula gives
    -4e-14, -8e-14: 87 and 160 times the float64 bound (4.6e-16, 5.0e-16) of the documented gradient."""
    from oracle.embedding import torch_cosine_embedding_loss_grad
    from suites.cases import Case
    from suites.gradients import evaluate_gradient

    args = (np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]]), np.array([1.0]))
    with working_precision(100):
        spec = oracle.cosine_embedding_loss_grad(*args, reduction="sum")
        torch_like = torch_cosine_embedding_loss_grad(*args, reduction="sum")
    assert all(v == 0 for v in spec.reshape(-1))
    case = Case("cosine_embedding_loss", dict(zip(("input1", "input2", "target"), args)), {"reduction": "sum"}, "float64", wrt="input1")
    bound = evaluate_gradient(case).bound
    assert abs(float(torch_like[0, 0]) + 4e-14) < 1e-16 and abs(float(torch_like[0, 1]) + 8e-14) < 1e-16
    assert all(abs(float(torch_like[0, i])) > 50 * bound[0, i] for i in range(2))
    under = evaluate_gradient(case, "torch-cosine-embedding-epsilon")
    assert [float(v) for v in under.rounded.reshape(-1)] == [float(v) for v in torch_like.reshape(-1)]


def test_a_tiny_probability_minus_its_tiny_occupation_is_not_rounded_to_zero():
    """Regression (found by the dev profile against torch, float64): x = -500 at a class a few
    paths use; exp(x) - gamma is 2.37e-218. Forming it as expm1(x) + sum of the other classes'
    occupations cancelled to an exact 0 at every precision, so Ziv's loop accepted 0."""
    x = np.zeros((4, 2, 3))
    x[3, 0, 1] = -500.0
    args = (np.array([1]), np.array([4, 0]), np.array([1, 0]))
    with working_precision(120):
        g = ctc_loss_exp_minus_occupation_grad(x, *args, reduction="none")
    assert abs(float(g[3, 0, 1]) - 2.3748588022470953e-218) < 1e-230
