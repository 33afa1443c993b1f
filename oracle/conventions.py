r"""Documented framework formulas that differ from the spec, evaluated exactly.

When a framework documents a formula other than PyTorch's (Keras clips
probabilities at ``epsilon = 1e-7``; ...), that difference is a *semantic
deviation*, not an accuracy failure. To still grade the framework's accuracy
under its own semantics, the oracle evaluates the framework's documented formula
too. Each convention here is a ``*_terms`` function with the same signature as
the spec loss it replaces (returning :class:`~oracle.reduction.LossTerms`), and
an expectations entry names it (``convention = "keras-bce-clip"``): a case that
fails against the spec is then judged against the convention instead.

A convention may also carry the exact gradient of its formula (``grad``, with the
error model's ``grad_condition``, both called like the spec's ``<loss>_grad`` and
``<loss>_grad_condition``): an entry of the gradient tests that names it grades the
framework's autodiff against that derivative (``ctc-gradient-through-log-softmax``:
TensorFlow's and optax's CTC take logits). A convention without ``grad`` applies to the
loss value only.

Every convention's docstring cites where the framework documents it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath import mpf

from .binary import _elementwise_inputs, _mean_denominator, _target_times
from .core import is_nan, mp_array
from .reduction import LossTerms, check_reduction, resolve_reduction

__all__ = ["CONVENTIONS", "Convention", "convention_for"]

KERAS_EPSILON = mpf(1e-7)  # keras.config.epsilon() default: the float64 value of 1e-7


@dataclass(frozen=True)
class Convention:
    name: str
    loss: str  # the spec function it stands in for
    terms: Callable[..., LossTerms]
    citation: str
    grad: Callable[..., np.ndarray] | None = None  # the exact gradient of the formula (``wrt=``)
    grad_condition: Callable[..., object] | None = None  # its GradientCondition (oracle.gradients)


def _clip(v: mpf, lo: mpf, hi: mpf) -> mpf:
    return min(max(v, lo), hi)


def keras_binary_cross_entropy_terms(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean",
    *, epsilon: mpf = KERAS_EPSILON,
) -> LossTerms:
    r"""Keras ``binary_crossentropy`` on probabilities (``from_logits=False``):

    .. math:: t = -w [y \log(\mathrm{clip}(x, \epsilon, 1-\epsilon)) + (1-y) \log(1 - \mathrm{clip}(x, \epsilon, 1-\epsilon))]

    with ``epsilon = keras.config.epsilon() = 1e-7`` (the spec clamps each log at
    -100 instead). The clip bounds are ``1e-7`` and ``1 - 1e-7`` as exact reals
    of the float64 constant; Keras forms them in the dtype, a difference far
    below the error bound. Source: ``keras/src/backend/tensorflow/nn.py``
    (``binary_crossentropy``: ``output = clip(output, epsilon, 1 - epsilon)``).
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    x, y, w = _elementwise_inputs(input, target, weight)
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        if is_nan(xi):
            terms[idx] = cond[idx] = mpmath.nan
            continue
        clipped = _clip(xi, epsilon, 1 - epsilon)
        log_x, log_1mx = mpmath.log(clipped), mpmath.log1p(-clipped)
        first, second = _target_times(yi, log_x), _target_times(1 - yi, log_1mx)
        terms[idx] = -(wi * (first + second))
        inside = epsilon < xi < 1 - epsilon
        sensitivity = abs(wi * (yi - (1 - yi) * clipped / (1 - clipped))) if inside else mpf(0)
        cond[idx] = sensitivity + abs(yi * wi * (log_x - log_1mx)) + abs(wi * first) + abs(wi * second)
    return LossTerms(terms, cond, np.full(x.shape, mpf(0), dtype=object), reduction, _mean_denominator(reduction, x.size))


def keras_kl_divergence_terms(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False,
    *, epsilon: mpf = KERAS_EPSILON,
) -> LossTerms:
    r"""Keras ``kl_divergence(y_true, y_pred)`` expressed in the spec's arguments
    (``input = log q``, ``target = p``): both are clipped to ``[epsilon, 1]`` before
    ``p log(p / q)``, so zero targets contribute ``epsilon log(epsilon / q)`` and
    tiny ``q`` are raised to ``epsilon``. Source: ``keras/src/losses/losses.py``
    (``kl_divergence``: ``y_true = clip(y_true, epsilon, 1)``, same for ``y_pred``).
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction, ("none", "mean", "sum", "batchmean"))
    x, p = np.broadcast_arrays(mp_array(np.asarray(input)), mp_array(np.asarray(target)))
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        pi = mpmath.exp(p[idx]) if log_target else p[idx]
        q = mpmath.exp(x[idx])
        pc, qc = _clip(pi, epsilon, mpf(1)), _clip(q, epsilon, mpf(1))
        t = pc * (mpmath.log(pc) - mpmath.log(qc))
        terms[idx] = t
        cond[idx] = abs(pc * mpmath.log(pc)) + 2 * abs(pc * mpmath.log(qc)) + abs(pc) + abs(t)
    if reduction == "mean":
        denominator = mpf(x.size)
    elif reduction == "batchmean":
        shape = np.shape(input)  # the spec's batch size: input.size(0), before broadcasting
        denominator = mpf(shape[0] if shape else 1)
    else:
        denominator = None
    return LossTerms(
        terms, cond, np.full(x.shape, mpf(0), dtype=object),
        "mean" if reduction == "batchmean" else reduction, denominator,
    )


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in [
        Convention(
            "keras-bce-clip", "binary_cross_entropy", keras_binary_cross_entropy_terms,
            "https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class",
        ),
        Convention(
            "keras-kl-clip", "kl_div", keras_kl_divergence_terms,
            "https://keras.io/api/losses/probabilistic_losses/#kldivergence-class",
        ),
    ]
}


def convention_for(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise KeyError(f"no oracle convention named {name!r}: known {', '.join(CONVENTIONS)}") from None


# --------------------------------------------------------------------------------------
# Keras as TensorFlow evaluates it in the case's dtype (the tensorflow adapter).


def _in_dtype(value: mpf | float, dtype) -> mpf:
    """``value`` rounded to ``dtype`` (to nearest), as TensorFlow converts a Python float
    constant or rounds an operation's exact result."""
    from .core import format_of, round_to_format

    return mpf(round_to_format(mpf(value), format_of(dtype)))


def keras_binary_cross_entropy_in_dtype_terms(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean",
) -> LossTerms:
    r"""Keras ``binary_crossentropy`` on probabilities as its TensorFlow backend computes
    it in the input's dtype ``d``:

    .. math:: x_c = \mathrm{clip}(x, \mathrm{fl}_d(\epsilon), \mathrm{fl}_d(1 - \epsilon)), \quad
              t = -w [y \log x_c + (1-y) \log \mathrm{fl}_d(1 - x_c)]

    with ``epsilon = keras.config.epsilon() = 1e-7``. Source:
    ``keras/src/backend/tensorflow/nn.py`` (``binary_crossentropy``:
    ``output = tf.clip_by_value(output, epsilon, 1.0 - epsilon)``, then
    ``target * tf.math.log(output) + (1 - target) * tf.math.log(1 - output)``).
    Two things differ from ``keras-bce-clip`` (exact bounds, exact ``log(1 - x)``), and
    both change values far beyond the error bound:

    * the clip bounds are Python floats converted to ``d``: ``1 - 1e-7`` is
      ``1 - 2**-23`` in float32 (so ``-log(1 - x_c)`` at ``x = 1`` is 15.94, not
      16.12), and exactly 1 in float16 and bfloat16 (the upper clip does nothing:
      ``x = 1, y = 0`` gives ``inf``); the lower bound is ``1.19e-7`` in float16;
    * ``1 - x_c`` is formed in ``d`` before the log (``log``, not ``log1p``), so its
      rounding, up to ``u`` absolute in the log, is part of Keras's formula; for a
      small ``x_c`` with ``y < 1`` it dwarfs the term (``x = 1e-4, y = 0`` in float32:
      relative error ~6e-4).

    ``0 log 0 = 0`` as in the spec (so ``x = 1, y = 1`` gives 0 here; where ``d``
    rounds the upper bound to 1, Keras's ``0 * log(0)`` is NaN: a separate entry).
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    dtype = np.asarray(input).dtype
    lo, hi = _in_dtype(1e-7, dtype), _in_dtype(1.0 - 1e-7, dtype)
    x, y, w = _elementwise_inputs(input, target, weight)
    terms = np.empty(x.shape, dtype=object)
    cond = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, yi = x[idx], y[idx]
        wi = w[idx] if w is not None else mpf(1)
        if is_nan(xi):
            terms[idx] = cond[idx] = mpmath.nan
            continue
        clipped = _clip(xi, lo, hi)
        one_minus = _in_dtype(mpmath.fsub(1, clipped, exact=True), dtype)
        log_x = mpmath.log(clipped)
        log_1mx = mpmath.log(one_minus) if one_minus > 0 else -mpmath.inf
        first, second = _target_times(yi, log_x), _target_times(1 - yi, log_1mx)
        terms[idx] = -(wi * (first + second))
        inside = lo < xi < hi
        sensitivity = abs(wi * (yi - (1 - yi) * clipped / one_minus)) if inside else mpf(0)
        target_sensitivity = abs(yi * wi * (log_x - log_1mx)) if yi != 0 else mpf(0)
        cond[idx] = sensitivity + target_sensitivity + abs(wi * first) + abs(wi * second)
    return LossTerms(terms, cond, np.full(x.shape, mpf(0), dtype=object), reduction, _mean_denominator(reduction, x.size))


def _keras_smoothed_term(row, y: int, eps: mpf, n_classes: int) -> mpf:
    r"""``sum_c q_c r_c`` with Keras's smoothed labels ``q = (1 - eps) onehot(y) + eps / C``,
    formed without rounding where it can be (as ``oracle.classification`` does). A zero
    label mass contributes nothing (``q_y = 1 - eps = 0`` at ``eps = 1``: Keras's labels
    are ``1/C`` everywhere, and a masked target class gives ``inf``, not ``0 * inf``)."""
    from .core import exact_add
    from .reduction import exact_sum

    one_minus = mpmath.fsub(1, eps, exact=True)
    t = mpmath.fmul(one_minus, row.neg_log_prob(y), exact=True) if one_minus else mpf(0)
    if not eps:
        return t
    scaled = mpmath.fmul(eps, exact_sum([row.neg_log_prob(c) for c in range(n_classes)]), exact=True)
    if n_classes & (n_classes - 1) == 0:
        scaled = mpmath.ldexp(scaled, -(n_classes.bit_length() - 1))
    else:
        scaled = scaled / n_classes
    return exact_add(t, scaled)


def keras_cross_entropy_smoothing_sample_weight_terms(
    input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
    reduction: str = "mean", label_smoothing: float = 0.0,
) -> LossTerms:
    r"""Label-smoothed cross entropy with class weights the Keras way: the class weight
    is a *sample* weight (``sample_weight = weight[target]``) multiplying the whole
    smoothed loss of the position, reduced with ``reduction="mean_with_sample_weight"``:

    .. math:: t_n = w_{y_n} \left[ (1-\varepsilon) r_{n,y_n} + \frac{\varepsilon}{C} \sum_c r_{n,c} \right],
              \qquad \text{mean} = \sum_n t_n \Big/ \sum_{n \text{ not ignored}} w_{y_n}

    where the spec (PyTorch) weighs each class of the smoothing sum by its own weight:
    ``(1-eps) w_y r_y + eps/C sum_c w_c r_c``. Ignored positions contribute 0; the
    mean's denominator is the spec's. As Keras smooths the labels before the cross
    entropy, ``eps = 1`` leaves no ``0 * r_y`` term (the spec's ``0 * inf = NaN`` for a
    masked target class is ``inf`` here). Keras has no class weights for
    ``CategoricalCrossentropy``: ``sample_weight`` "acts as a coefficient for the
    loss" of each sample (``keras/src/losses/loss.py``, ``reduce_weighted_values``),
    and ``label_smoothing`` mixes ``y * (1 - eps) + eps / C`` into the targets
    (``keras/src/losses/losses.py``, ``categorical_crossentropy``).
    """
    from .classification import (
        SoftmaxRow,
        _as_array,
        _check_common,
        _class_weights,
        _finite_dot_abs,
        _index_row_grad,
        _index_targets,
        _layout,
    )

    reduction = resolve_reduction(size_average, reduce, reduction)
    _check_common(reduction, label_smoothing)
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError("keras-ce-smoothing-sample-weight applies to class-index targets")
    layout = _layout(input)
    n_classes = layout.rows.shape[1]
    w = _class_weights(weight, n_classes)
    eps = mpf(label_smoothing)
    targets = _index_targets(target, layout, n_classes, ignore_index)
    terms, cond, scale = [], [], []
    denominator = mpf(0)
    for row_values, y in zip(layout.rows, targets):
        if y == ignore_index:
            terms.append(mpf(0)), cond.append(mpf(0)), scale.append(mpf(0))
            continue
        row = SoftmaxRow(list(row_values))
        same = [w[y]] * n_classes  # the sample weight applies to every class's term
        denominator += w[y]
        t = mpmath.fmul(w[y], _keras_smoothed_term(row, y, eps, n_classes), exact=True)
        grad = _index_row_grad(row, y, same, w[y] * n_classes, eps)
        terms.append(t)
        cond.append(_finite_dot_abs(row.x, grad) + abs(t))
        scale.append(abs(w[y]) * row.working_scale)
    shape = layout.out_shape
    return LossTerms(
        terms=_as_array(terms, shape),
        condition=_as_array(cond, shape),
        scale=_as_array(scale, shape),
        reduction=reduction,
        denominator=denominator if reduction == "mean" else None,
    )


CONVENTIONS.update({
    c.name: c
    for c in [
        Convention(
            "keras-bce-clip-in-dtype", "binary_cross_entropy", keras_binary_cross_entropy_in_dtype_terms,
            "https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py",
        ),
        Convention(
            "keras-ce-smoothing-sample-weight", "cross_entropy",
            keras_cross_entropy_smoothing_sample_weight_terms,
            "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py",
        ),
    ]
})


# --------------------------------------------------------------------------------------
# Margin and embedding losses (issue 5): formulas of oracle/embedding.py.

from .embedding import (  # noqa: E402
    optax_triplet_margin_loss_terms,
    paddle_cosine_embedding_loss_grad,
    paddle_cosine_embedding_loss_terms,
    torch_cosine_embedding_loss_grad,
    torch_cosine_embedding_loss_terms,
)
from .gradients_margin import (  # noqa: E402
    paddle_cosine_embedding_loss_grad_condition,
    torch_cosine_embedding_loss_grad_condition,
)

CONVENTIONS.update({
    c.name: c
    for c in [
        Convention(
            "torch-cosine-embedding-epsilon", "cosine_embedding_loss", torch_cosine_embedding_loss_terms,
            "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Loss.cpp",
            grad=torch_cosine_embedding_loss_grad,
            grad_condition=torch_cosine_embedding_loss_grad_condition,
        ),
        Convention(
            "paddle-cosine-embedding-epsilon", "cosine_embedding_loss", paddle_cosine_embedding_loss_terms,
            "https://github.com/PaddlePaddle/Paddle/blob/develop/python/paddle/nn/functional/loss.py",
            grad=paddle_cosine_embedding_loss_grad,
            grad_condition=paddle_cosine_embedding_loss_grad_condition,
        ),
        Convention(
            "optax-triplet-eps-in-sum", "triplet_margin_loss", optax_triplet_margin_loss_terms,
            "https://github.com/google-deepmind/optax/blob/main/optax/losses/_self_supervised.py",
        ),
    ]
})

# CTC of logits (issue 4): tf.nn.ctc_loss and optax.losses.ctc_loss apply log_softmax first.
from .ctc import ctc_loss_of_logits_terms  # noqa: E402

CONVENTIONS["ctc-of-logits"] = Convention(
    "ctc-of-logits", "ctc_loss", ctc_loss_of_logits_terms,
    "https://www.tensorflow.org/api_docs/python/tf/nn/ctc_loss",
)

# Paddle's warp-ctc (issue 7): log_softmax with each probability floored at the dtype's smallest normal.
from .ctc import warp_ctc_floored_softmax_terms  # noqa: E402

CONVENTIONS["warp-ctc-floored-softmax"] = Convention(
    "warp-ctc-floored-softmax", "ctc_loss", warp_ctc_floored_softmax_terms,
    "https://github.com/baidu-research/warp-ctc/blob/master/include/detail/cpu_ctc.h",
)

# CTC gradients (issue 6): oracle/gradients_ctc.py. TensorFlow, optax and Paddle's warp-ctc
# differentiate CTC(log_softmax(x)); PyTorch's backward returns exp(log_probs) - gamma.
from .ctc import ctc_loss_terms  # noqa: E402
from .gradients_ctc import (  # noqa: E402
    ctc_loss_exp_minus_occupation_grad,
    ctc_loss_exp_minus_occupation_grad_condition,
    ctc_loss_through_log_softmax_grad,
    ctc_loss_through_log_softmax_grad_condition,
)

CONVENTIONS["ctc-gradient-through-log-softmax"] = Convention(
    "ctc-gradient-through-log-softmax", "ctc_loss", ctc_loss_of_logits_terms,
    "https://www.tensorflow.org/api_docs/python/tf/nn/ctc_loss",
    grad=ctc_loss_through_log_softmax_grad,
    grad_condition=ctc_loss_through_log_softmax_grad_condition,
)
CONVENTIONS["torch-ctc-gradient-exp-minus-occupation"] = Convention(
    "torch-ctc-gradient-exp-minus-occupation", "ctc_loss", ctc_loss_terms,
    "https://github.com/pytorch/pytorch/issues/52241",
    grad=ctc_loss_exp_minus_occupation_grad,
    grad_condition=ctc_loss_exp_minus_occupation_grad_condition,
)

# MLX (issue 7): mlx.nn.losses.triplet_loss adds eps to the sum of |a - b|^p, any p; with the
# exact gradient of that distance, so mx.grad is graded under MLX's own formula.
from .embedding import mlx_triplet_loss_grad, mlx_triplet_loss_terms  # noqa: E402
from .gradients_margin import mlx_triplet_loss_grad_condition  # noqa: E402

CONVENTIONS["mlx-triplet-eps-in-sum"] = Convention(
    "mlx-triplet-eps-in-sum", "triplet_margin_loss", mlx_triplet_loss_terms,
    "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary_functions/mlx.nn.losses.triplet_loss.html",
    grad=mlx_triplet_loss_grad,
    grad_condition=mlx_triplet_loss_grad_condition,
)
