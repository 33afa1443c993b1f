"""Cross-check of the gradients w.r.t. target and weight of ``binary_cross_entropy``,
``multilabel_soft_margin_loss`` and ``kl_div`` (``oracle/gradients_binary.py``,
``oracle/gradients_divergence.py``) against python-flint's arb balls.

The references are the derivatives written naively from the formulas (the clamped logs
decided rigorously by ``clamped_log``; broadcast axes summed explicitly), evaluated
as arb balls until both ends of every ball round to the same value of the format
(``tests/test_oracle_arb.check``). The oracle's correctly rounded gradients must equal them
in float64, float32, float16 and bfloat16. The multilabel target gradient
``w (softplus(-x) - softplus(x)) / (C D)`` is taken in its exact form ``-w x / (C D)``: a
difference of two balls never shrinks to a point, and the exact value can be a rounding
midpoint (float32 ``w = 3.2821534``, ``x = 2.5``, ``C = 3``: ``-2.73512780666351318359375``,
found by Hypothesis), which only an exact ball decides. Only finite gradients are compared (a ball is
finite); the special values are hand-checked in ``tests/test_oracle_gradients_binary.py``
and ``tests/test_oracle_gradients_divergence.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle

flint = pytest.importorskip("flint")

from .test_oracle_arb import NAMES, A, arb_precision, arb_sum, cast, check, clamped_log  # noqa: E402

arb = flint.arb


def _objects(values: list, shape) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


def _sum_to(grad: np.ndarray, shape) -> np.ndarray:
    """Sum an object array of arbs over the leading axes and the size-1 axes of ``shape``."""
    extra = grad.ndim - len(shape)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        picks = [i for i in np.ndindex(*grad.shape)
                 if all(shape[k] == 1 or i[extra + k] == idx[k] for k in range(len(shape)))]
        out[idx] = arb_sum(grad[i] for i in picks)
    return out


def _softplus(v):
    return (1 + (-v).exp()).log() + v if v > 0 else (1 + v.exp()).log()


def arb_bce_grad(x, y, weight, reduction, wrt):
    """``-w (Lx - L1)`` (target) or ``-(y Lx + (1 - y) L1)`` (weight), ``L`` the clamped logs."""
    d = arb(x.size) if reduction == "mean" else arb(1)
    w = np.broadcast_to(weight, x.shape) if weight is not None else None
    values = []
    for idx, xv in np.ndenumerate(x):
        lx, l1 = clamped_log(A(xv)), clamped_log(1 - A(xv))
        yv = A(y[idx])
        if wrt == "target":
            # at x = 1/2 the two logs are equal: exactly 0, which a ball's difference cannot show
            diff = arb(0) if float(xv) == 0.5 else lx - l1
            values.append(-(A(w[idx]) if w is not None else arb(1)) * diff / d)
        else:
            values.append(-(yv * lx + (1 - yv) * l1) / d)
    grad = _objects(values, x.shape)
    return grad if wrt == "target" else _sum_to(grad, np.shape(weight))


def arb_mlsm_grad(x, y, weight, reduction, wrt):
    """target: ``w_c (softplus(-x) - softplus(x)) / (C D) = -w_c x / (C D)`` (module docstring);
    weight: ``sum_n (y softplus(-x) + (1 - y) softplus(x)) / (C D)``."""
    rows = x.reshape(-1, x.shape[-1])
    ys = y.reshape(rows.shape)
    n, c = rows.shape
    d = arb(c) * (arb(n) if reduction == "mean" else arb(1))
    values = []
    for (i, k), xv in np.ndenumerate(rows):
        a, b = _softplus(-A(xv)), _softplus(A(xv))
        wk = A(weight.reshape(-1)[k]) if weight is not None else arb(1)
        yv = A(ys[i, k])
        values.append(-wk * A(xv) / d if wrt == "target" else (yv * a + (1 - yv) * b) / d)
    grad = _objects(values, rows.shape)
    if wrt == "target":
        return grad.reshape(x.shape)
    return _sum_to(grad, (1, c)).reshape(np.shape(weight))


def arb_kl_grad(x, t, reduction, log_target):
    """``log p + 1 - x`` or ``e^s (s - x + 1)``, over the reduction's denominator, summed over
    the axes the target was broadcast along."""
    xb, tb = np.broadcast_arrays(x, t)
    d = {"mean": arb(xb.size), "batchmean": arb(x.shape[0] if x.ndim else 1)}.get(reduction, arb(1))
    values = []
    for idx, xv in np.ndenumerate(xb):
        tv = A(tb[idx])
        values.append((tv.exp() * (tv - A(xv) + 1) if log_target else tv.log() + 1 - A(xv)) / d)
    return _sum_to(_objects(values, xb.shape), np.shape(t))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data())
def test_binary_cross_entropy_target_and_weight(name, data):
    shape = data.draw(st.sampled_from([(3,), (2, 3)]))
    size = int(np.prod(shape))
    probabilities = st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0, 1) | st.floats(1e-45, 1e-35) | st.floats(0.999, 1.0)
    x = cast(np.array(data.draw(st.lists(probabilities, min_size=size, max_size=size))).reshape(shape), name)
    y = cast(np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0, 1), min_size=size,
                                         max_size=size))).reshape(shape), name)
    weight = cast(data.draw(st.lists(st.floats(0, 4), min_size=shape[-1], max_size=shape[-1])), name)
    reduction = data.draw(st.sampled_from(["none", "mean", "sum"]))
    for wrt in ("target", "weight"):
        check(
            lambda wrt=wrt: oracle.binary_cross_entropy_grad(x, y, weight=weight, reduction=reduction, wrt=wrt),
            lambda wrt=wrt: arb_bce_grad(x, y, weight, reduction, wrt),
            name,
            f"d binary_cross_entropy({x!r}, {y!r}, weight={weight!r}, reduction={reduction!r}) / d {wrt}",
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data())
def test_multilabel_soft_margin_target_and_weight(name, data):
    shape = data.draw(st.sampled_from([(3,), (2, 3)]))
    size = int(np.prod(shape))
    x = cast(np.array(data.draw(st.lists(st.floats(-60, 60) | st.floats(-1e4, 1e4), min_size=size,
                                         max_size=size))).reshape(shape), name)
    y = cast(np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0, 1), min_size=size,
                                         max_size=size))).reshape(shape), name)
    weight = cast(data.draw(st.lists(st.floats(0, 4), min_size=3, max_size=3)), name)
    reduction = data.draw(st.sampled_from(["none", "mean", "sum"]))
    for wrt in ("target", "weight"):
        check(
            lambda wrt=wrt: oracle.multilabel_soft_margin_loss_grad(x, y, weight=weight, reduction=reduction, wrt=wrt),
            lambda wrt=wrt: arb_mlsm_grad(x, y, weight, reduction, wrt),
            name,
            f"d multilabel_soft_margin_loss({x!r}, {y!r}, weight={weight!r}, reduction={reduction!r}) / d {wrt}",
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, report_multiple_bugs=False)
@given(data=st.data())
def test_kl_div_target(name, data):
    x_shape, t_shape = data.draw(st.sampled_from([((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (2, 1))]))
    log_target = data.draw(st.booleans())
    x = cast(np.array(data.draw(st.lists(st.floats(-1e3, 0) | st.floats(-20, 5), min_size=int(np.prod(x_shape)),
                                         max_size=int(np.prod(x_shape))))).reshape(x_shape), name)
    values = st.floats(-50, 0) if log_target else st.floats(1e-30, 1) | st.floats(1e-3, 1)
    t = cast(np.array(data.draw(st.lists(values, min_size=int(np.prod(t_shape)),
                                         max_size=int(np.prod(t_shape))))).reshape(t_shape), name)
    if not log_target:
        t = np.where(t.astype(np.float64) > 0, t, cast(1.0, name))  # p = 0 rounds from a tiny p: -inf, no ball
    reduction = data.draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))
    kw = dict(reduction=reduction, log_target=log_target)
    check(
        lambda: oracle.kl_div_grad(x, t, **kw, wrt="target"),
        lambda: arb_kl_grad(x, t, reduction, log_target),
        name,
        f"d kl_div({x!r}, {t!r}, {kw}) / d target",
    )


def test_the_references_agree_with_hand_values():
    """The references themselves: BCE's clamp gives 100 at x = 0; the multilabel target
    gradient is ``-w x / C`` and agrees with the ball ``softplus(-x) - softplus(x)``; ``log p + 1
    - x`` at ``p = q = 1`` is 1."""
    with arb_precision(200):
        g = arb_bce_grad(np.array([0.0]), np.array([0.5]), None, "sum", "target")
        assert float(g[0].mid()) == 100.0
        m = arb_mlsm_grad(np.array([[3.0]]), np.array([[1.0]]), None, "sum", "target")
        assert float(m[0, 0].mid()) == -3.0 and (_softplus(-arb(3)) - _softplus(arb(3))).overlaps(m[0, 0])
        k = arb_kl_grad(np.array([0.0]), np.array([1.0]), "sum", False)
        assert float(k[0].mid()) == 1.0 and math.isfinite(float(k[0].rad()))
