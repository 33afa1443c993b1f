"""The ``tensorflow`` adapter: the spec's calls through TensorFlow's own losses.

Each spec function is answered by the API a TensorFlow user reaches for:
``tf.keras.losses`` (Keras 3, TensorFlow's Keras) for the losses, with their
``from_logits``, ``label_smoothing``, ``ignore_class``, ``reduction`` and
``sample_weight``; ``tf.nn`` for what Keras lacks (``pos_weight``:
``tf.nn.weighted_cross_entropy_with_logits``) and for ``softmax``,
``log_softmax``; ``tf.math.sigmoid``. Where TensorFlow has no form of a spec
option, the adapter writes the idiom its users write and ``OPTION_TABLE`` marks
it *composed*; where it has none at all, ``NotImplementedError`` (unsupported).

Choices, each what a TensorFlow user would write:

* **Computation dtype.** A Keras loss computes in its ``dtype`` argument,
  ``keras.config.floatx()`` (float32) by default, whatever its inputs: float64
  logits would be rounded to float32. The adapter passes ``dtype=`` the case's
  dtype, so every dtype is computed in that dtype, and never changes the global
  ``floatx`` or dtype policy. Keras casts ``y_true`` to that dtype too, class
  indices included (see ``adapters/expectations/tensorflow.toml``).
* **Layout.** TensorFlow is channels-last: an ``(N, C, d1..dK)`` input is
  ``tf.transpose``-d to ``(N, d1..dK, C)``, the class axis last.
* **Elementwise terms.** ``BinaryCrossentropy`` averages and ``KLDivergence``
  sums over the last axis before reducing; the spec's terms are elementwise, so
  those two are called on ``x[..., None]``, a unit last axis (a mean or sum over
  one element is that element, exactly).
* **The mean.** The spec's ``mean`` is Keras's default ``"sum_over_batch_size"``
  (the sum over the number of loss values; with ``ignore_class``, over the
  non-ignored ones) -- except with class weights, which Keras takes as
  ``sample_weight = tf.gather(weight, target)``: ``"sum_over_batch_size"``
  would divide by the number of positions, not by the sum of the weights as the
  spec does, so the adapter uses Keras's ``"mean_with_sample_weight"``, which
  divides by the sum of the sample weights (added for exactly this in
  keras-team/keras#20410, after keras-team/keras#19740).
* **Label smoothing with class indices.** ``SparseCategoricalCrossentropy`` has
  none: ``CategoricalCrossentropy(label_smoothing=...)`` on ``tf.one_hot``
  targets, with ignored positions masked by ``sample_weight`` (and the mean
  ``"mean_with_sample_weight"``).
* **nll_loss** has no TensorFlow loss (Keras losses take probabilities or logits,
  not log-probabilities): ``-tf.gather(log_probs, target, batch_dims=...)`` and
  explicit reductions.
* Legacy ``size_average``/``reduce``: TensorFlow has nothing like them;
  ``NotImplementedError`` when either is not None.
* **Eager execution.** Every call runs eagerly (no ``tf.function``): the values
  are those of the ops themselves, not of a graph that Grappler may rewrite,
  and no retracing per shape. A repro snippet runs the same lines, eagerly.

Every call is written once, as source lines (``out = ...`` from the tensors
``input``, ``target``, ``weight``, ``pos_weight``); the adapter runs exactly
those lines, ``grad`` runs them under ``tf.GradientTape``, and ``repro``
prints them after the exact tensor literals -- so a repro is the call itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import tensorflow as tf

from ._repro import scalar_literal
from ._spec_methods import SpecFunctions
from ._tf_convert import tensor_source, tf_dtype, to_numpy, to_tf
from .errors import AdapterError, AdapterUnavailableError

#: Parameters that hold arrays: the tensors a program reads by these names.
ARRAY_PARAMETERS = (
    "input", "target", "weight", "pos_weight",
    "input1", "input2", "anchor", "positive", "negative",  # margin and embedding losses
    "log_probs", "targets", "input_lengths", "target_lengths",  # ctc_loss
)

_KERAS = "tf.keras.losses"


def _keras_version() -> str | None:
    version = getattr(tf.keras, "__version__", None)
    if version is None:
        try:
            import keras

            version = keras.__version__
        except ImportError:  # pragma: no cover - TensorFlow's Keras is keras
            return None
    return str(version)


def _device_name(device: str) -> str:
    """The TensorFlow device for the suite's ``--device`` (torch spellings accepted)."""
    text = str(device).strip()
    lowered = text.lower()
    if lowered == "cpu":
        return "/CPU:0"
    if lowered in ("cuda", "gpu"):
        return "/GPU:0"
    if lowered.startswith("cuda:"):
        return f"/GPU:{lowered.split(':', 1)[1]}"
    return text


def _resolve_device(device: str) -> str:
    name = _device_name(device)
    try:
        spec = tf.DeviceSpec.from_string(name)
    except (ValueError, TypeError) as error:
        raise AdapterError(
            f"adapter 'tensorflow': {device!r} is not a TensorFlow device ({error}); "
            "use e.g. 'cpu' or 'gpu'"
        ) from None
    kind = (spec.device_type or "").upper()
    if kind and kind != "CPU":
        visible = tf.config.list_logical_devices(kind)
        index = spec.device_index or 0
        if index >= len(visible):
            raise AdapterUnavailableError(
                f"adapter 'tensorflow' cannot run on device {device!r}: TensorFlow "
                f"{tf.__version__} sees {len(visible)} {kind} device(s); use device 'cpu'"
            )
    return name


class _Program:
    """Source lines computing ``out`` from tensors named as the spec's parameters."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.text = "\n".join(lines) + "\n"

    def run(self, tensors: Mapping[str, tf.Tensor]) -> tf.Tensor:
        namespace: dict[str, Any] = {"tf": tf, "np": np, **tensors}
        exec(_compiled(self.text), namespace)
        return namespace["out"]


@lru_cache(maxsize=512)
def _compiled(text: str):
    return compile(text, "<lossconf tensorflow adapter>", "exec")


def _legacy(fn_name: str, size_average: object, reduce: object) -> None:
    if size_average is not None or reduce is not None:
        raise NotImplementedError(
            f"{fn_name}: the legacy size_average/reduce arguments have no TensorFlow "
            "equivalent; use reduction="
        )


def _keras_reduction(reduction: object, *, by_weight: bool = False) -> object:
    """The Keras reduction for the spec's; an unknown value goes to Keras to reject."""
    if reduction == "mean":
        return "mean_with_sample_weight" if by_weight else "sum_over_batch_size"
    return reduction


def _explicit_reduction(fn_name: str, reduction: object, allowed=("none", "mean", "sum")) -> str:
    """For composed losses, which have no framework check of their own."""
    if reduction not in allowed:
        raise ValueError(
            f"{fn_name}: reduction={reduction!r} is not valid: expected one of "
            f"{', '.join(map(repr, allowed))}"
        )
    return str(reduction)


def _channels_last(lines: list[str], name: str, array: np.ndarray, into: str) -> str:
    """Move the class axis (1) of an ``(N, C, d1..dK)`` tensor last; returns the name to use."""
    if array.ndim <= 2:
        return name
    perm = [0, *range(2, array.ndim), 1]
    lines.append(f"{into} = tf.transpose({name}, perm={perm})")
    return into


def _n_classes(x: np.ndarray) -> int:
    return int(x.shape[1] if x.ndim > 1 else x.shape[0])


def _call(callee: str, *args: str, **kwargs: object) -> str:
    parts = [*args, *(f"{k}={v}" for k, v in kwargs.items())]
    return f"{callee}({', '.join(parts)})"


def _kw(value: object) -> str:
    return scalar_literal(value)


# -- the programs, one per spec function ----------------------------------------------


def _cross_entropy(a: dict[str, Any]) -> list[str]:
    _legacy("cross_entropy", a["size_average"], a["reduce"])
    x, target, weight = np.asarray(a["input"]), np.asarray(a["target"]), a["weight"]
    ignore, smoothing, reduction = a["ignore_index"], a["label_smoothing"], a["reduction"]
    dtype = tf_dtype(x.dtype).name
    lines: list[str] = []
    logits = _channels_last(lines, "input", x, "logits")
    smoothing_kw = {"label_smoothing": _kw(smoothing)} if smoothing else {}

    if not np.issubdtype(target.dtype, np.integer):
        if weight is not None:
            raise NotImplementedError(
                "cross_entropy: class weights with probability targets; Keras's "
                "CategoricalCrossentropy has no per-class weight (sample_weight weighs positions)"
            )
        probs = _channels_last(lines, "target", target, "probs")
        loss = _call(
            f"{_KERAS}.CategoricalCrossentropy", from_logits="True", **smoothing_kw,
            reduction=_kw(_keras_reduction(reduction)), dtype=_kw(dtype),
        )
        lines += [f"loss_fn = {loss}", f"out = loss_fn({probs}, {logits})"]
        return lines

    if not smoothing:
        sample = {}
        if weight is not None:
            lines.append(
                f"sample_weight = tf.gather(weight, tf.where(tf.not_equal(target, {ignore}), "
                "target, tf.zeros_like(target)))"
            )
            sample = {"sample_weight": "sample_weight"}
        loss = _call(
            f"{_KERAS}.SparseCategoricalCrossentropy", from_logits="True",
            ignore_class=_kw(int(ignore)),
            reduction=_kw(_keras_reduction(reduction, by_weight=weight is not None)),
            dtype=_kw(dtype),
        )
        lines += [f"loss_fn = {loss}", _call("out = loss_fn", "target", logits, **sample)]
        return lines

    # Label smoothing with class indices: one-hot targets; ignored positions get
    # sample weight 0, and the mean divides by the sample weights' sum.
    lines.append(f"valid = tf.not_equal(target, {int(ignore)})")
    if weight is None:
        lines.append(f"sample_weight = tf.cast(valid, tf.{dtype})")
    else:
        lines.append(
            "sample_weight = tf.where(valid, tf.gather(weight, tf.where(valid, target, "
            "tf.zeros_like(target))), tf.zeros_like(weight[0]))"
        )
    loss = _call(
        f"{_KERAS}.CategoricalCrossentropy", from_logits="True", **smoothing_kw,
        reduction=_kw(_keras_reduction(reduction, by_weight=True)), dtype=_kw(dtype),
    )
    lines += [
        f"loss_fn = {loss}",
        f"out = loss_fn(tf.one_hot(target, {_n_classes(x)}, dtype=tf.{dtype}), {logits}, "
        "sample_weight=sample_weight)",
    ]
    return lines


def _nll_loss(a: dict[str, Any]) -> list[str]:
    _legacy("nll_loss", a["size_average"], a["reduce"])
    x, target, weight = np.asarray(a["input"]), np.asarray(a["target"]), a["weight"]
    reduction = _explicit_reduction("nll_loss", a["reduction"])
    lines: list[str] = []
    log_probs = _channels_last(lines, "input", x, "log_probs")
    lines += [
        f"valid = tf.not_equal(target, {int(a['ignore_index'])})",
        "index = tf.where(valid, target, tf.zeros_like(target))",
        f"picked = tf.gather({log_probs}, index, batch_dims={target.ndim})",
    ]
    if weight is None:
        lines.append("losses = tf.where(valid, -picked, tf.zeros_like(picked))")
        denominator = "tf.reduce_sum(tf.cast(valid, picked.dtype))"
    else:
        lines += [
            "w = tf.where(valid, tf.gather(weight, index), tf.zeros_like(picked))",
            "losses = tf.where(valid, -(w * picked), tf.zeros_like(picked))",
        ]
        denominator = "tf.reduce_sum(w)"
    lines.append({
        "none": "out = losses",
        "sum": "out = tf.reduce_sum(losses)",
        "mean": f"out = tf.reduce_sum(losses) / {denominator}",
    }[reduction])  # fmt: skip
    return lines


def _binary_cross_entropy(a: dict[str, Any]) -> list[str]:
    _legacy("binary_cross_entropy", a["size_average"], a["reduce"])
    dtype = tf_dtype(np.asarray(a["input"]).dtype).name
    return _keras_binary(a, dtype, from_logits=False)


def _keras_binary(a: dict[str, Any], dtype: str, *, from_logits: bool) -> list[str]:
    lines: list[str] = []
    sample = {}
    if a["weight"] is not None:
        lines.append("sample_weight = tf.broadcast_to(weight, tf.shape(input))")
        sample = {"sample_weight": "sample_weight"}
    logits = {"from_logits": "True"} if from_logits else {}
    loss = _call(
        f"{_KERAS}.BinaryCrossentropy", **logits,
        reduction=_kw(_keras_reduction(a["reduction"])), dtype=_kw(dtype),
    )
    lines += [f"loss_fn = {loss}", _call("out = loss_fn", "target[..., None]", "input[..., None]", **sample)]
    return lines


def _binary_cross_entropy_with_logits(a: dict[str, Any]) -> list[str]:
    _legacy("binary_cross_entropy_with_logits", a["size_average"], a["reduce"])
    dtype = tf_dtype(np.asarray(a["input"]).dtype).name
    if a["pos_weight"] is None:
        return _keras_binary(a, dtype, from_logits=True)
    reduction = _explicit_reduction("binary_cross_entropy_with_logits", a["reduction"])
    lines = [
        "losses = tf.nn.weighted_cross_entropy_with_logits(labels=target, logits=input, "
        "pos_weight=pos_weight)"
    ]
    if a["weight"] is not None:
        lines.append("losses = losses * weight")
    lines.append({
        "none": "out = losses",
        "sum": "out = tf.reduce_sum(losses)",
        "mean": "out = tf.reduce_mean(losses)",
    }[reduction])  # fmt: skip
    return lines


def _kl_div(a: dict[str, Any]) -> list[str]:
    _legacy("kl_div", a["size_average"], a["reduce"])
    x = np.asarray(a["input"])
    dtype = tf_dtype(x.dtype).name
    lines = [
        "y_pred = tf.math.exp(input)",
        "y_true = tf.math.exp(target)" if a["log_target"] else "y_true = target",
    ]
    if a["reduction"] == "batchmean":
        # Keras's own mean: the sum over each sample, averaged over the batch.
        rows = int(x.shape[0]) if x.ndim else 1
        lines += [
            f"loss_fn = {_call(f'{_KERAS}.KLDivergence', dtype=_kw(dtype))}",
            f"out = loss_fn(tf.reshape(y_true, ({rows}, -1)), tf.reshape(y_pred, ({rows}, -1)))",
        ]
        return lines
    loss = _call(f"{_KERAS}.KLDivergence", reduction=_kw(_keras_reduction(a["reduction"])), dtype=_kw(dtype))
    lines += [f"loss_fn = {loss}", "out = loss_fn(y_true[..., None], y_pred[..., None])"]
    return lines


def _softmax(a: dict[str, Any]) -> list[str]:
    return [f"out = tf.nn.softmax(input, axis={int(a['dim'])})"]


def _log_softmax(a: dict[str, Any]) -> list[str]:
    return [f"out = tf.nn.log_softmax(input, axis={int(a['dim'])})"]


def _sigmoid(a: dict[str, Any]) -> list[str]:
    return ["out = tf.math.sigmoid(input)"]


# -- regression and distribution losses (issue 4) -------------------------------------


def _keras_elementwise(fn_name: str, a: dict[str, Any], loss: str, *, by_weight: bool, scale: str = "") -> list[str]:
    """A Keras regression loss on a unit last axis (Keras averages over the last axis; the
    spec's terms are elementwise), with ``weight`` as ``sample_weight`` and the spec's
    mean denominator: ``sum(w)`` (``mean_with_sample_weight``) or N (``sum_over_batch_size``)."""
    lines: list[str] = []
    sample = {}
    if a.get("weight") is not None:
        lines.append("sample_weight = tf.broadcast_to(weight, tf.shape(input))")
        sample = {"sample_weight": "sample_weight"}
    dtype = tf_dtype(np.asarray(a["input"]).dtype).name
    call = loss.format(
        reduction=_kw(_keras_reduction(a["reduction"], by_weight=by_weight and bool(sample))),
        dtype=_kw(dtype),
    )
    lines += [f"loss_fn = {_KERAS}.{call}", _call("out = loss_fn", "target[..., None]", "input[..., None]", **sample) + scale]
    return lines


def _l1_loss(a: dict[str, Any]) -> list[str]:
    _legacy("l1_loss", a["size_average"], a["reduce"])
    return _keras_elementwise("l1_loss", a, "MeanAbsoluteError(reduction={reduction}, dtype={dtype})", by_weight=True)


def _mse_loss(a: dict[str, Any]) -> list[str]:
    _legacy("mse_loss", a["size_average"], a["reduce"])
    return _keras_elementwise("mse_loss", a, "MeanSquaredError(reduction={reduction}, dtype={dtype})", by_weight=True)


def _huber_loss(a: dict[str, Any]) -> list[str]:
    delta = _kw(a["delta"])
    return _keras_elementwise("huber_loss", a, f"Huber(delta={delta}, reduction={{reduction}}, dtype={{dtype}})", by_weight=False)


def _smooth_l1_loss(a: dict[str, Any]) -> list[str]:
    """SmoothL1_beta = Huber_beta / beta (the docs' identity); beta = 0 is L1."""
    _legacy("smooth_l1_loss", a["size_average"], a["reduce"])
    beta = a["beta"]
    if beta == 0:
        return _keras_elementwise("smooth_l1_loss", a, "MeanAbsoluteError(reduction={reduction}, dtype={dtype})", by_weight=False)
    return _keras_elementwise(
        "smooth_l1_loss", a, f"Huber(delta={_kw(beta)}, reduction={{reduction}}, dtype={{dtype}})",
        by_weight=False, scale=f" / {_kw(beta)}",
    )


_KERAS_EPSILON = 1e-7  # keras.config.epsilon(), the constant in keras.losses.poisson


def _poisson_nll_loss(a: dict[str, Any]) -> list[str]:
    """``tf.nn.log_poisson_loss`` for log-rates (its ``compute_full_loss`` is the Stirling
    term); Keras's ``Poisson`` for rates, whose epsilon is fixed at 1e-7."""
    _legacy("poisson_nll_loss", a["size_average"], a["reduce"])
    if a["log_input"]:
        reduction = _explicit_reduction("poisson_nll_loss", a["reduction"])
        lines = [
            "losses = tf.nn.log_poisson_loss(targets=target, log_input=input, "
            f"compute_full_loss={bool(a['full'])})"
        ]
        lines.append({
            "none": "out = losses",
            "sum": "out = tf.reduce_sum(losses)",
            "mean": "out = tf.reduce_mean(losses)",
        }[reduction])  # fmt: skip
        return lines
    if a["full"]:
        raise NotImplementedError("poisson_nll_loss: Keras's Poisson (rates) has no Stirling term (full=True)")
    if a["eps"] != _KERAS_EPSILON:
        raise NotImplementedError(
            f"poisson_nll_loss: Keras's Poisson adds keras.config.epsilon() = {_KERAS_EPSILON}, "
            f"not eps={a['eps']!r}"
        )
    return _keras_elementwise("poisson_nll_loss", a, "Poisson(reduction={reduction}, dtype={dtype})", by_weight=False)


def _gaussian_nll_loss(a: dict[str, Any]) -> list[str]:
    raise NotImplementedError("gaussian_nll_loss: TensorFlow and Keras have no Gaussian negative log-likelihood loss")


def _ctc_loss(a: dict[str, Any]) -> list[str]:
    """``tf.nn.ctc_loss`` on dense (padded) labels, time-major, ``blank_index=blank``;
    concatenated targets are padded first (``tf.RaggedTensor.from_row_lengths``), an
    unbatched ``(T, C)`` input gets a batch axis. ``mean`` divides each loss by its target
    length (at least 1) before the batch mean, as the spec does."""
    reduction = _explicit_reduction("ctc_loss", a["reduction"])
    x, targets = np.asarray(a["log_probs"]), np.asarray(a["targets"])
    lines: list[str] = []
    if x.ndim == 2:
        lines += [
            "logits = log_probs[:, None, :]",
            "labels = tf.reshape(targets, (1, -1))",
            "label_length = tf.reshape(target_lengths, (1,))",
            "logit_length = tf.reshape(input_lengths, (1,))",
        ]
    else:
        lines.append("logits = log_probs")
        if targets.ndim == 1:
            lines.append("labels = tf.RaggedTensor.from_row_lengths(targets, target_lengths).to_tensor()")
        else:
            lines.append("labels = targets")
        lines += ["label_length = target_lengths", "logit_length = input_lengths"]
    lines.append(
        "losses = tf.nn.ctc_loss(labels=labels, logits=logits, label_length=label_length, "
        f"logit_length=logit_length, logits_time_major=True, blank_index={int(a['blank'])})"
    )
    if a["zero_infinity"]:
        lines.append("losses = tf.where(tf.math.is_inf(losses), tf.zeros_like(losses), losses)")
    lines.append({
        "none": "out = losses" if x.ndim == 3 else "out = losses[0]",
        "sum": "out = tf.reduce_sum(losses)",
        "mean": "out = tf.reduce_mean(losses / tf.cast(tf.maximum(label_length, 1), losses.dtype))",
    }[reduction])  # fmt: skip
    return lines


_PROGRAMS = {
    "cross_entropy": _cross_entropy,
    "nll_loss": _nll_loss,
    "binary_cross_entropy": _binary_cross_entropy,
    "binary_cross_entropy_with_logits": _binary_cross_entropy_with_logits,
    "kl_div": _kl_div,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "sigmoid": _sigmoid,
    "l1_loss": _l1_loss,
    "mse_loss": _mse_loss,
    "huber_loss": _huber_loss,
    "smooth_l1_loss": _smooth_l1_loss,
    "poisson_nll_loss": _poisson_nll_loss,
    "gaussian_nll_loss": _gaussian_nll_loss,
    "ctc_loss": _ctc_loss,
}


# -- margin, ranking and embedding losses (issue 5) ------------------------------------
# TensorFlow has none of these as losses except the cosine similarity
# (``tf.keras.losses.CosineSimilarity``, which returns ``-cos``); the rest are the
# few tf ops a TensorFlow user writes, each reduced explicitly.


def _explicit_reduce(fn_name: str, reduction: object) -> str:
    reduction = _explicit_reduction(fn_name, reduction)
    return {
        "none": "out = losses",
        "sum": "out = tf.reduce_sum(losses)",
        "mean": "out = tf.reduce_mean(losses)",
    }[reduction]


def _margin_ranking_loss(a: dict[str, Any]) -> list[str]:
    _legacy("margin_ranking_loss", a["size_average"], a["reduce"])
    if float(a["margin"]) == 1 and a["reduction"] in ("none", "mean", "sum"):
        # Keras's Hinge is max(0, 1 - y * x) averaged over the last axis: on a unit last
        # axis, the spec's term at margin 1 with x = x1 - x2
        dtype = tf_dtype(np.asarray(a["input1"]).dtype).name
        loss = _call(f"{_KERAS}.Hinge", reduction=_kw(_keras_reduction(a["reduction"])), dtype=_kw(dtype))
        return [f"loss_fn = {loss}", "out = loss_fn(target[..., None], (input1 - input2)[..., None])"]
    return [
        f"losses = tf.maximum(-target * (input1 - input2) + {_kw(float(a['margin']))}, 0.0)",
        _explicit_reduce("margin_ranking_loss", a["reduction"]),
    ]


def _hinge_embedding_loss(a: dict[str, Any]) -> list[str]:
    _legacy("hinge_embedding_loss", a["size_average"], a["reduce"])
    return [
        f"losses = tf.where(target == 1, input, tf.maximum({_kw(float(a['margin']))} - input, 0.0))",
        _explicit_reduce("hinge_embedding_loss", a["reduction"]),
    ]


def _soft_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("soft_margin_loss", a["size_average"], a["reduce"])
    return ["losses = tf.math.softplus(-target * input)", _explicit_reduce("soft_margin_loss", a["reduction"])]


def _multilabel_soft_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multilabel_soft_margin_loss", a["size_average"], a["reduce"])
    dtype = tf_dtype(np.asarray(a["input"]).dtype).name
    if a["weight"] is None:
        # Keras's BinaryCrossentropy averages over the last (class) axis: the spec's 1/C sum
        loss = _call(
            f"{_KERAS}.BinaryCrossentropy", from_logits="True",
            reduction=_kw(_keras_reduction(a["reduction"])), dtype=_kw(dtype),
        )
        return [f"loss_fn = {loss}", "out = loss_fn(target, input)"]
    return [
        "terms = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=input) * weight",
        "losses = tf.reduce_mean(terms, axis=-1)",
        _explicit_reduce("multilabel_soft_margin_loss", a["reduction"]),
    ]


def _multi_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multi_margin_loss", a["size_average"], a["reduce"])
    p = a["p"]
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p = 1 and p = 2 are supported, got p={p!r}")
    x = np.asarray(a["input"])
    lines = [
        f"picked = tf.gather(input, target, batch_dims={np.ndim(a['target'])})",
        f"z = {_kw(float(a['margin']))} - picked[..., None] + input",
        f"others = 1.0 - tf.one_hot(target, {x.shape[-1]}, dtype=input.dtype)",
        "h = tf.maximum(z, 0.0)" + (" ** 2" if p == 2 else ""),
    ]
    if a["weight"] is not None:
        lines.append("h = h * tf.gather(weight, target)[..., None]")
    lines += [
        f"losses = tf.reduce_sum(h * others, axis=-1) / {x.shape[-1]}",
        _explicit_reduce("multi_margin_loss", a["reduction"]),
    ]
    return lines


def _multilabel_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multilabel_margin_loss", a["size_average"], a["reduce"])
    c = int(np.asarray(a["input"]).shape[-1])
    return [
        "listed = tf.math.cumprod(tf.cast(target >= 0, input.dtype), axis=-1)",
        "labels = tf.where(listed > 0, target, tf.zeros_like(target))",
        f"is_target = tf.reduce_max(tf.one_hot(labels, {c}, dtype=input.dtype) * listed[..., None], axis=-2)",
        f"picked = tf.gather(input, labels, batch_dims={np.ndim(a['target']) - 1})",
        "z = tf.maximum(1.0 - picked[..., :, None] + input[..., None, :], 0.0)",
        "mask = listed[..., :, None] * (1.0 - is_target)[..., None, :]",
        f"losses = tf.reduce_sum(z * mask, axis=[-2, -1]) / {c}",
        _explicit_reduce("multilabel_margin_loss", a["reduction"]),
    ]


def _cosine_embedding_loss(a: dict[str, Any]) -> list[str]:
    _legacy("cosine_embedding_loss", a["size_average"], a["reduce"])
    dtype = tf_dtype(np.asarray(a["input1"]).dtype).name
    similarity = _call(f"{_KERAS}.CosineSimilarity", axis="-1", reduction="'none'", dtype=_kw(dtype))
    return [
        f"cos = -{similarity}(input2, input1)",
        f"losses = tf.where(target == 1, 1.0 - cos, tf.maximum(cos - {_kw(float(a['margin']))}, 0.0))",
        _explicit_reduce("cosine_embedding_loss", a["reduction"]),
    ]


def _tf_norm(diff: str, p: object) -> str:
    order = "np.inf" if p == float("inf") else _kw(float(p))  # type: ignore[arg-type]
    return f"tf.norm({diff}, ord={order}, axis=-1)"


def _triplet_lines(distance, margin: float, swap: bool, fn_name: str, reduction: object) -> list[str]:
    if not margin > 0:
        raise ValueError(f"{fn_name}: margin must be greater than 0, got {margin}")
    lines = [f"d_ap = {distance('anchor', 'positive')}", f"d_an = {distance('anchor', 'negative')}"]
    if swap:
        lines.append(f"d_an = tf.minimum(d_an, {distance('positive', 'negative')})")
    lines += [f"losses = tf.maximum({_kw(margin)} + d_ap - d_an, 0.0)", _explicit_reduce(fn_name, reduction)]
    return lines


def _triplet_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("triplet_margin_loss", a["size_average"], a["reduce"])
    eps, p = float(a["eps"]), a["p"]
    return _triplet_lines(
        lambda x, y: _tf_norm(f"{x} - {y} + {_kw(eps)}", p), float(a["margin"]), bool(a["swap"]),
        "triplet_margin_loss", a["reduction"],
    )


#: ``triplet_margin_with_distance_loss``'s named distances (oracle/embedding.py) in TensorFlow.
TF_DISTANCES = {
    None: lambda x, y: _tf_norm(f"{x} - {y} + 1e-06", 2),
    "pairwise_distance": lambda x, y: _tf_norm(f"{x} - {y} + 1e-06", 2),
    "l1": lambda x, y: _tf_norm(f"{x} - {y} + 1e-06", 1),
    # torch's cosine_similarity divides by max(||x||, 1e-8): l2_normalize's epsilon is on ||x||^2
    "cosine": lambda x, y: (
        f"1.0 - tf.reduce_sum(tf.math.l2_normalize({x}, axis=-1, epsilon=1e-16) * "
        f"tf.math.l2_normalize({y}, axis=-1, epsilon=1e-16), axis=-1)"
    ),
}


def _triplet_margin_with_distance_loss(a: dict[str, Any]) -> list[str]:
    name = a["distance_function"]
    if name not in TF_DISTANCES:
        raise ValueError(f"unknown distance_function {name!r}")
    return _triplet_lines(
        TF_DISTANCES[name], float(a["margin"]), bool(a["swap"]), "triplet_margin_with_distance_loss", a["reduction"]
    )


_PROGRAMS.update({
    "margin_ranking_loss": _margin_ranking_loss,
    "hinge_embedding_loss": _hinge_embedding_loss,
    "soft_margin_loss": _soft_margin_loss,
    "multilabel_soft_margin_loss": _multilabel_soft_margin_loss,
    "multi_margin_loss": _multi_margin_loss,
    "multilabel_margin_loss": _multilabel_margin_loss,
    "cosine_embedding_loss": _cosine_embedding_loss,
    "triplet_margin_loss": _triplet_margin_loss,
    "triplet_margin_with_distance_loss": _triplet_margin_with_distance_loss,
})


class TensorFlowLosses(SpecFunctions):
    """The spec's functions, answered by TensorFlow's losses (module docstring)."""

    name = "tensorflow"
    version = f"{tf.__version__} (keras {_keras_version()})"

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = _resolve_device(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"

    # -- the spec's methods come from SpecFunctions (adapters/_spec_methods.py) ------

    # -- gradients and repro snippets --------------------------------------------

    def grad(
        self,
        fn_name: str,
        args: Mapping[str, object],
        kwargs: Mapping[str, Any],
        wrt: str = "input",
    ) -> np.ndarray:
        """Gradient of ``fn_name(*args, **kwargs)``'s sum w.r.t. argument ``wrt``.

        ``tf.GradientTape`` over the same eager program the forward pass runs, in
        the case's dtype. An argument the tape does not connect to the output
        (``tape.gradient`` returns None: e.g. one the program turns into a constant)
        raises NotImplementedError -- unsupported, never a silent zero gradient.
        """
        arguments = self._bind(fn_name, args, kwargs)
        program = self._program(fn_name, arguments)  # NotImplementedError for what the adapter lacks
        value = arguments.get(wrt)
        if value is None:
            raise ValueError(f"{fn_name}: no array argument {wrt!r} to differentiate")
        if wrt not in ARRAY_PARAMETERS:
            raise NotImplementedError(f"{fn_name}: the tensorflow adapter does not pass {wrt!r} as a tensor")
        if not tf_dtype(np.asarray(value).dtype).is_floating:
            raise ValueError(f"{fn_name}: argument {wrt!r} is not a floating array")
        with tf.device(self.device):
            tensors = self._tensors(arguments)
            variable = tensors[wrt]
            with tf.GradientTape() as tape:
                tape.watch(variable)
                total = tf.reduce_sum(program.run(tensors))
            gradient = tape.gradient(total, variable)
            if gradient is None:
                raise NotImplementedError(
                    f"{fn_name}: TensorFlow's graph does not connect {wrt!r} to the output "
                    "(tape.gradient is None): not differentiated"
                )
            return to_numpy(tf.convert_to_tensor(gradient))

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """TensorFlow source reproducing the call bit for bit: the exact tensors, then
        the very lines the adapter runs, then a print of the output's exact values."""
        arguments = self._bind(fn_name, args, kwargs)
        try:
            program = self._program(fn_name, arguments)
        except NotImplementedError as error:
            return f"# unsupported by the tensorflow adapter: {error}\n"
        except ValueError as error:  # a composed loss's own argument check: no TensorFlow call
            return f"# rejected by the tensorflow adapter before calling TensorFlow: {error}\n"
        lines = ["import numpy as np", "import tensorflow as tf"]
        body = [
            f"{name} = {tensor_source(np.asarray(arguments[name]))}"
            for name in ARRAY_PARAMETERS
            if arguments.get(name) is not None
        ]
        body += program.lines
        if self.device != "/CPU:0":
            lines.append(f"with tf.device({self.device!r}):")
            body = ["    " + line for line in body]
        lines += body
        lines.append("print(out.dtype.name, tf.cast(out, tf.float64).numpy().tolist())")
        return "\n".join(lines) + "\n"

    # -- internals -------------------------------------------------------------------

    def _forward(self, fn_name: str, local: dict[str, object]) -> np.ndarray:
        arguments = {k: v for k, v in local.items() if k != "self"}
        program = self._program(fn_name, arguments)
        with tf.device(self.device):
            return to_numpy(program.run(self._tensors(arguments)))

    @staticmethod
    def _program(fn_name: str, arguments: dict[str, object]) -> _Program:
        return _Program(_PROGRAMS[fn_name](arguments))

    @staticmethod
    def _tensors(arguments: Mapping[str, object]) -> dict[str, tf.Tensor]:
        return {
            name: to_tf(np.asarray(arguments[name]))
            for name in ARRAY_PARAMETERS
            if arguments.get(name) is not None
        }


from .options import SPEC_OPTIONS  # noqa: E402  (the option names, for unsupported losses)

_LEGACY = ("unsupported", "TensorFlow has no size_average/reduce: NotImplementedError")

#: How each spec option is provided (adapters/options.py; docs/options.md).
OPTION_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "cross_entropy": {
        "(function)": ("native", f"{_KERAS}.SparseCategoricalCrossentropy / CategoricalCrossentropy(from_logits=True)"),
        "class-index target": ("native", "SparseCategoricalCrossentropy(from_logits=True)"),
        "probability target": ("native", "CategoricalCrossentropy(from_logits=True)"),
        "(N, C, d1..dK) input": ("composed", "tf.transpose to channels-last (class axis last)"),
        "weight": (
            "composed",
            "sample_weight = tf.gather(weight, target), reduction='mean_with_sample_weight'; "
            "with probability targets unsupported",
        ),
        "ignore_index": (
            "native",
            "SparseCategoricalCrossentropy(ignore_class=ignore_index); with label smoothing, "
            "composed: sample_weight 0 at ignored positions",
        ),
        "label_smoothing": (
            "composed",
            "CategoricalCrossentropy(label_smoothing=...) on tf.one_hot(target) "
            "(native for probability targets)",
        ),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": (
            "native",
            "reduction='sum_over_batch_size'; 'mean_with_sample_weight' with weight or label smoothing",
        ),
        "reduction='sum'": ("native", "reduction='sum'"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "nll_loss": {
        "(function)": ("composed", "-tf.gather(log_probs, target, batch_dims=target.ndim)"),
        "class-index target": ("composed", "tf.gather(..., batch_dims=...)"),
        "(N, C, d1..dK) input": ("composed", "tf.transpose to channels-last"),
        "weight": ("composed", "tf.gather(weight, target) times the picked log-probability"),
        "ignore_index": ("composed", "tf.where(target != ignore_index, ..., 0)"),
        "reduction='none'": ("composed", "the per-position losses"),
        "reduction='mean'": ("composed", "tf.reduce_sum(losses) / tf.reduce_sum(selected weights)"),
        "reduction='sum'": ("composed", "tf.reduce_sum(losses)"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy": {
        "(function)": (
            "native",
            f"{_KERAS}.BinaryCrossentropy() on x[..., None] (Keras averages over the last axis; "
            "a unit axis keeps the elementwise terms)",
        ),
        "weight": ("composed", "sample_weight = tf.broadcast_to(weight, tf.shape(input))"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": ("native", "reduction='sum_over_batch_size'"),
        "reduction='sum'": ("native", "reduction='sum'"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy_with_logits": {
        "(function)": (
            "native",
            f"{_KERAS}.BinaryCrossentropy(from_logits=True) on x[..., None]; "
            "tf.nn.weighted_cross_entropy_with_logits with pos_weight",
        ),
        "weight": ("composed", "sample_weight = tf.broadcast_to(weight, ...); losses * weight with pos_weight"),
        "pos_weight": ("native", "tf.nn.weighted_cross_entropy_with_logits(pos_weight=...)"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": (
            "native",
            "reduction='sum_over_batch_size'; with pos_weight composed: tf.reduce_mean",
        ),
        "reduction='sum'": ("native", "reduction='sum'; with pos_weight composed: tf.reduce_sum"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "kl_div": {
        "(function)": (
            "native",
            f"{_KERAS}.KLDivergence()(target, tf.exp(input)) on a unit last axis",
        ),
        "log_target": ("composed", "y_true = tf.exp(target)"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": ("native", "reduction='sum_over_batch_size'"),
        "reduction='sum'": ("native", "reduction='sum'"),
        "reduction='batchmean'": (
            "native",
            "KLDivergence() on tf.reshape(., (N, -1)): Keras's default, the sum over each "
            "sample averaged over the batch",
        ),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "softmax": {"(function)": ("native", "tf.nn.softmax"), "dim": ("native", "axis=dim")},
    "log_softmax": {"(function)": ("native", "tf.nn.log_softmax"), "dim": ("native", "axis=dim")},
    "sigmoid": {"(function)": ("native", "tf.math.sigmoid")},
    # regression and distribution losses (issue 4)
    **{
        loss: {
            "(function)": ("native", f"{_KERAS}.{keras}() on x[..., None] (Keras averages over the last axis)"),
            "weight": ("composed", "sample_weight = weight, reduction='mean_with_sample_weight' (mean = sum(w t) / sum(w))"),
            "reduction='none'": ("native", "reduction='none'"),
            "reduction='mean'": ("native", "reduction='sum_over_batch_size'"),
            "reduction='sum'": ("native", "reduction='sum'"),
            "size_average/reduce (legacy)": _LEGACY,
        }
        for loss, keras in (("l1_loss", "MeanAbsoluteError"), ("mse_loss", "MeanSquaredError"))
    },
    "huber_loss": {
        "(function)": ("native", f"{_KERAS}.Huber(delta=delta) on x[..., None]"),
        "delta": ("native", "Huber(delta=...)"),
        "weight": ("composed", "sample_weight = weight, reduction='sum_over_batch_size' (mean = sum(w t) / N, as PyTorch)"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": ("native", "reduction='sum_over_batch_size'"),
        "reduction='sum'": ("native", "reduction='sum'"),
    },
    "smooth_l1_loss": {
        "(function)": ("composed", f"{_KERAS}.Huber(delta=beta)(...) / beta: SmoothL1 = Huber / beta"),
        "beta": ("composed", "Huber(delta=beta) / beta"),
        "beta=0": ("composed", f"{_KERAS}.MeanAbsoluteError()"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": ("native", "reduction='sum_over_batch_size'"),
        "reduction='sum'": ("native", "reduction='sum'"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "poisson_nll_loss": {
        "(function)": ("native", "tf.nn.log_poisson_loss (log-rates); tf.keras.losses.Poisson (rates)"),
        "log_input=True": ("native", "tf.nn.log_poisson_loss(targets, log_input)"),
        "log_input=False": ("native", f"{_KERAS}.Poisson() on x[..., None]: only with eps=1e-7 (Keras's fixed epsilon), else unsupported"),
        "full": ("native", "log_poisson_loss(compute_full_loss=True); with log_input=False unsupported"),
        "eps": ("unsupported", "Keras's Poisson has epsilon 1e-7 fixed (keras.config.epsilon()); log_poisson_loss has none (log-rates need none)"),
        "reduction='none'": ("native", "per-element losses"),
        "reduction='mean'": ("composed", "tf.reduce_mean (log-rates); Keras 'sum_over_batch_size' (rates)"),
        "reduction='sum'": ("composed", "tf.reduce_sum (log-rates); Keras 'sum' (rates)"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "ctc_loss": {
        "(function)": ("native", "tf.nn.ctc_loss(labels, logits, label_length, logit_length, logits_time_major=True, blank_index=blank)"),
        "padded (N, S) targets": ("native", "dense labels with label_length"),
        "concatenated targets": ("composed", "tf.RaggedTensor.from_row_lengths(targets, target_lengths).to_tensor()"),
        "unbatched (T, C)": ("composed", "a batch axis of 1, removed from the output"),
        "blank": ("native", "blank_index=blank"),
        "zero_infinity": ("composed", "tf.where(tf.math.is_inf(loss), 0, loss)"),
        "reduction='none'": ("native", "per-sequence losses"),
        "reduction='mean'": ("composed", "tf.reduce_mean(loss / max(label_length, 1))"),
        "reduction='sum'": ("composed", "tf.reduce_sum(loss)"),
    },
    "gaussian_nll_loss": {
        option: ("unsupported", "TensorFlow/Keras have no Gaussian NLL loss: NotImplementedError")
        for option in ("(function)", *SPEC_OPTIONS["gaussian_nll_loss"])
    },
}


#: Margin, ranking and embedding losses (issue 5): composed from tf ops (TensorFlow has
#: none of them, except the cosine similarity).
_COMPOSED_REDUCTIONS = {
    "reduction='none'": ("composed", "the per-sample losses"),
    "reduction='mean'": ("composed", "tf.reduce_mean(losses)"),
    "reduction='sum'": ("composed", "tf.reduce_sum(losses)"),
    "size_average/reduce (legacy)": _LEGACY,
}
OPTION_TABLE.update({
    "margin_ranking_loss": {
        "(function)": (
            "native",
            f"{_KERAS}.Hinge()(target[..., None], (input1 - input2)[..., None]) at margin=1; "
            "tf.maximum(-target * (input1 - input2) + margin, 0.0) otherwise",
        ),
        "margin": ("composed", "tf.maximum(-target * (input1 - input2) + margin, 0.0)"),
        **_COMPOSED_REDUCTIONS,
    },
    "hinge_embedding_loss": {
        "(function)": ("composed", "tf.where(target == 1, input, tf.maximum(margin - input, 0.0))"),
        "margin": ("composed", "a literal in the expression"),
        **_COMPOSED_REDUCTIONS,
    },
    "soft_margin_loss": {
        "(function)": ("composed", "tf.math.softplus(-target * input)"),
        **_COMPOSED_REDUCTIONS,
    },
    "multilabel_soft_margin_loss": {
        "(function)": ("native", f"{_KERAS}.BinaryCrossentropy(from_logits=True) (mean over the class axis)"),
        "(C) input": ("native", "a rank-1 y_true/y_pred: one value"),
        "weight": ("composed", "tf.nn.sigmoid_cross_entropy_with_logits(...) * weight, tf.reduce_mean(axis=-1)"),
        "reduction='none'": ("native", "reduction='none'; with weight composed"),
        "reduction='mean'": ("native", "reduction='sum_over_batch_size'; with weight composed"),
        "reduction='sum'": ("native", "reduction='sum'; with weight composed"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multi_margin_loss": {
        "(function)": (
            "composed",
            "tf.maximum(margin - x_y + x, 0) ** p summed over the other classes / C "
            "(Keras's CategoricalHinge takes the max over classes: another loss)",
        ),
        "(C) input": ("composed", "the same ops on a rank-1 input"),
        "p=1": ("composed", "tf.maximum(z, 0)"),
        "p=2": ("composed", "tf.maximum(z, 0) ** 2"),
        "margin": ("composed", "a literal in z"),
        "weight": ("composed", "h * tf.gather(weight, target)"),
        **_COMPOSED_REDUCTIONS,
    },
    "multilabel_margin_loss": {
        "(function)": ("composed", "pairwise tf.maximum(1 - x_j + x_i, 0) masked to listed j, non-target i, / C"),
        "(C) input": ("composed", "the same ops on a rank-1 input"),
        "-1 terminated target": ("composed", "tf.math.cumprod(target >= 0) marks the entries before the first -1"),
        **_COMPOSED_REDUCTIONS,
    },
    "cosine_embedding_loss": {
        "(function)": (
            "native",
            f"cos = -{_KERAS}.CosineSimilarity(axis=-1, reduction='none'); the two branches with tf.where",
        ),
        "(D) input": ("native", "axis=-1"),
        "margin": ("composed", "tf.maximum(cos - margin, 0.0)"),
        "zero vector": ("native", "l2_normalize divides by sqrt(max(|x|^2, 1e-12)): cos = 0"),
        **_COMPOSED_REDUCTIONS,
    },
    "triplet_margin_loss": {
        "(function)": ("composed", "tf.norm(a - b + eps, ord=p, axis=-1) distances, tf.maximum(margin + d_ap - d_an, 0)"),
        "(D) input": ("composed", "axis=-1"),
        "margin": ("composed", "a literal"),
        "p": ("composed", "tf.norm(ord=p)"),
        "eps": ("composed", "added to the difference, as torch.nn.PairwiseDistance"),
        "swap": ("composed", "tf.minimum(d_an, d_pn)"),
        **_COMPOSED_REDUCTIONS,
    },
    "triplet_margin_with_distance_loss": {
        "(function)": ("composed", "as triplet_margin_loss with a named distance"),
        "(D) input": ("composed", "axis=-1"),
        "distance_function=None": ("composed", "tf.norm(a - b + 1e-06, axis=-1)"),
        "distance_function='l1'": ("composed", "tf.norm(a - b + 1e-06, ord=1, axis=-1)"),
        "distance_function='cosine'": (
            "composed",
            "1 - sum(tf.math.l2_normalize(a, epsilon=1e-16) * tf.math.l2_normalize(b, epsilon=1e-16))",
        ),
        "margin": ("composed", "a literal"),
        "swap": ("composed", "tf.minimum(d_an, d_pn)"),
        **{k: v for k, v in _COMPOSED_REDUCTIONS.items() if k.startswith("reduction")},
    },
})


def create(*, device: str = "cpu") -> TensorFlowLosses:
    """The ``tensorflow`` adapter on ``device`` (AdapterUnavailableError if unusable here)."""
    return TensorFlowLosses(device=device)
