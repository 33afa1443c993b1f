"""The JAX code the ``jax`` adapter runs, written once as source text.

Each spec call becomes a small JAX function, ``loss_fn(input, target, ...)``, whose
body is the code a JAX user writes for it: an ``optax.losses`` or ``jax.nn``
call, plus, where optax has no such option, the usual idiom around it (a
``jnp.where`` mask for ``ignore_index``, ``jnp.mean`` for a reduction, ...).
The adapter compiles that very text and runs it under ``jax.jit``; a repro
snippet prints the same text. So a snippet reproduces the adapter's value bit
for bit by construction, and what a report shows is what ran.

Only the arrays are arguments of the jitted function; the static options
(reduction, ``ignore_index``, ``label_smoothing``, ``dim``) are literals in its
body, as they would be in user code. Nothing here imports JAX: a
:class:`Program` is plain text until :mod:`adapters.jax_losses` compiles it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Names the compiled source may use; the adapter binds them, a snippet imports them.
IMPORTS = ("import jax", "import jax.numpy as jnp", "import optax")

_REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Program:
    """``def loss_fn(*params): <body>; return out`` for one spec call's static options."""

    params: tuple[str, ...]  # the array arguments, in order
    body: tuple[str, ...]  # statements; the last ones bind ``out``

    def source(self, *, decorator: str = "") -> str:
        head = [decorator] if decorator else []
        lines = [*head, f"def loss_fn({', '.join(self.params)}):"]
        lines += [f"    {line}" for line in self.body]
        lines.append("    return out")
        return "\n".join(lines) + "\n"


def _check_reduction(reduction: object, allowed: tuple[str, ...] = _REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(
            f"reduction={reduction!r} is not valid: expected one of {', '.join(map(repr, allowed))}"
        )
    return str(reduction)


def _reduce(reduction: str) -> list[str]:
    """optax returns per-example losses; users reduce them with jnp."""
    return {
        "none": ["out = loss"],
        "sum": ["out = jnp.sum(loss)"],
        "mean": ["out = jnp.mean(loss)"],
    }[reduction]


def _classes_last(name: str, source: str, ndim: int) -> list[str]:
    """optax takes the class axis last; the spec has it second, (N, C, d1, ...)."""
    if ndim <= 1:
        return [f"{name} = {source}"]
    return [f"{name} = jnp.moveaxis({source}, 1, -1)"]


def _literal(value: float) -> str:
    return repr(float(value))


def cross_entropy(
    *,
    ndim: int,
    index_target: bool,
    weighted: bool,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> Program:
    """Class indices: ``softmax_cross_entropy_with_integer_labels``, or with
    smoothing ``softmax_cross_entropy`` of ``smooth_labels(one_hot)``; class
    probabilities: ``safe_softmax_cross_entropy`` (0 log 0 = 0, as the spec).

    Class weights scale each class's label mass (``labels * weight``), which
    is the spec's per-class weighting also under smoothing; without smoothing
    that is ``weight[labels] * loss``. Ignored positions are masked to 0 with
    ``jnp.where``, and ``mean`` divides by the kept positions' weights.
    """
    reduction = _check_reduction(reduction)
    params = ("input", "target", "weight") if weighted else ("input", "target")
    body = _classes_last("logits", "input", ndim)
    if not index_target:
        body += _classes_last("labels", "target", ndim)
        if label_smoothing:
            body.append(f"labels = optax.smooth_labels(labels, {_literal(label_smoothing)})")
        if weighted:
            body.append("labels = labels * weight")
        body.append("loss = optax.losses.safe_softmax_cross_entropy(logits, labels)")
        return Program(params, (*body, *_reduce(reduction)))

    body += [f"keep = target != {int(ignore_index)}", "labels = jnp.where(keep, target, 0)"]
    if label_smoothing:
        body += [
            "one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)",
            f"smoothed = optax.smooth_labels(one_hot, {_literal(label_smoothing)})",
        ]
        if weighted:
            body.append("smoothed = smoothed * weight")
        body.append("loss = optax.losses.softmax_cross_entropy(logits, smoothed)")
    else:
        body.append("loss = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)")
        if weighted:
            body.append("loss = weight[labels] * loss")
    return Program(params, tuple(_masked_reduction(body, weighted, reduction)))


def _masked_reduction(body: list[str], weighted: bool, reduction: str) -> list[str]:
    """Zero the ignored positions (``keep``) and reduce; the weighted mean divides by the
    selected classes' weights, as PyTorch's ``cross_entropy``/``nll_loss`` do."""
    body.append("loss = jnp.where(keep, loss, 0)")
    if reduction == "mean":
        if weighted:
            body.append("out = jnp.sum(loss) / jnp.sum(jnp.where(keep, weight[labels], 0))")
        else:
            body.append("out = jnp.mean(loss, where=keep)")
    else:
        body += _reduce(reduction)
    return body


def nll_loss(*, ndim: int, weighted: bool, ignore_index: int, reduction: str) -> Program:
    """optax has no NLL on log-probabilities: the gather users write, masked like CE."""
    reduction = _check_reduction(reduction)
    params = ("input", "target", "weight") if weighted else ("input", "target")
    body = _classes_last("log_probs", "input", ndim)
    body += [
        f"keep = target != {int(ignore_index)}",
        "labels = jnp.where(keep, target, 0)",
        "loss = -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]",
    ]
    if weighted:
        body.append("loss = weight[labels] * loss")
    return Program(params, tuple(_masked_reduction(body, weighted, reduction)))


def binary_cross_entropy(*, weighted: bool, reduction: str) -> Program:
    """optax has no BCE on probabilities: the spec's formula in jnp, each log
    clamped at -100 as ``torch.nn.BCELoss`` documents; ``log1p(-p)`` for log(1-p)."""
    reduction = _check_reduction(reduction)
    params = ("input", "target", "weight") if weighted else ("input", "target")
    body = [
        "log_p = jnp.maximum(jnp.log(input), -100.0)",
        "log_not_p = jnp.maximum(jnp.log1p(-input), -100.0)",
        "loss = -(target * log_p + (1 - target) * log_not_p)",
    ]
    if weighted:
        body.append("loss = weight * loss")
    return Program(params, (*body, *_reduce(reduction)))


def binary_cross_entropy_with_logits(*, weighted: bool, pos_weighted: bool, reduction: str) -> Program:
    """``optax.losses.sigmoid_binary_cross_entropy``; with ``pos_weight``, which
    optax lacks, its own formula with the positive term scaled."""
    reduction = _check_reduction(reduction)
    params = ["input", "target"]
    if weighted:
        params.append("weight")
    if pos_weighted:
        params.append("pos_weight")
        body = [
            "loss = -(pos_weight * target * jax.nn.log_sigmoid(input)"
            " + (1 - target) * jax.nn.log_sigmoid(-input))",
        ]
    else:
        body = ["loss = optax.losses.sigmoid_binary_cross_entropy(input, target)"]
    if weighted:
        body.append("loss = weight * loss")
    return Program(tuple(params), (*body, *_reduce(reduction)))


def kl_div(*, input_shape: tuple[int, ...], reduction: str, log_target: bool) -> Program:
    """``optax.losses.kl_divergence`` (``_with_log_targets``) summed over the axes a
    reduction needs: ``axis=()`` keeps the pointwise terms, ``axis=None`` sums them all;
    ``batchmean`` is that sum over ``input.shape[0]`` (1 for a 0-d input), as PyTorch
    divides, also when ``target`` broadcasts ``input`` to more dimensions."""
    reduction = _check_reduction(reduction, (*_REDUCTIONS, "batchmean"))
    function = "kl_divergence_with_log_targets" if log_target else "kl_divergence"
    if reduction in ("sum", "batchmean"):
        body = [f"out = optax.losses.{function}(input, target, axis=None)"]
        if reduction == "batchmean":
            body[0] += f" / {input_shape[0] if input_shape else 1}"
        return Program(("input", "target"), tuple(body))
    body = [f"loss = optax.losses.{function}(input, target, axis=())"]
    return Program(("input", "target"), (*body, *_reduce(reduction)))


def activation(fn_name: str, *, dim: int | None = None) -> Program:
    """``jax.nn.softmax`` / ``log_softmax`` (``axis=dim``) and ``jax.nn.sigmoid``."""
    if fn_name == "sigmoid":
        return Program(("input",), ("out = jax.nn.sigmoid(input)",))
    return Program(("input",), (f"out = jax.nn.{fn_name}(input, axis={int(dim)})",))  # type: ignore[arg-type]


# -- margin, ranking and embedding losses (issue 5) ------------------------------------
# optax has a binary hinge (``hinge_loss``: margin 1), ``sigmoid_binary_cross_entropy``,
# ``cosine_similarity``/``cosine_distance`` and ``triplet_margin_loss``; the rest is the
# jnp a JAX user writes.


def margin_ranking_loss(*, margin: float, reduction: str) -> Program:
    """``optax.losses.hinge_loss(x1 - x2, y) = max(0, 1 - (x1 - x2) y)`` is the spec at
    margin 1; any other margin is the same expression written in jnp."""
    reduction = _check_reduction(reduction)
    if margin == 1:
        body = ["loss = optax.losses.hinge_loss(input1 - input2, target)"]
    else:
        body = [f"loss = jnp.maximum(-target * (input1 - input2) + {_literal(margin)}, 0)"]
    return Program(("input1", "input2", "target"), (*body, *_reduce(reduction)))


def hinge_embedding_loss(*, margin: float, reduction: str) -> Program:
    reduction = _check_reduction(reduction)
    body = [f"loss = jnp.where(target == 1, input, jnp.maximum({_literal(margin)} - input, 0))"]
    return Program(("input", "target"), (*body, *_reduce(reduction)))


def soft_margin_loss(*, reduction: str) -> Program:
    reduction = _check_reduction(reduction)
    return Program(("input", "target"), ("loss = jax.nn.softplus(-target * input)", *_reduce(reduction)))


def multilabel_soft_margin_loss(*, weighted: bool, reduction: str) -> Program:
    """``optax.losses.sigmoid_binary_cross_entropy`` per class, weighted, averaged over classes."""
    reduction = _check_reduction(reduction)
    params = ("input", "target", "weight") if weighted else ("input", "target")
    body = ["terms = optax.losses.sigmoid_binary_cross_entropy(input, target)"]
    if weighted:
        body.append("terms = terms * weight")
    body.append("loss = jnp.mean(terms, axis=-1)")
    return Program(params, (*body, *_reduce(reduction)))


def multi_margin_loss(*, p: int, margin: float, weighted: bool, reduction: str) -> Program:
    """The spec's sum over the other classes in jnp (optax's ``multiclass_hinge_loss`` is the
    Crammer-Singer max over classes, another loss)."""
    reduction = _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p = 1 and p = 2 are supported, got p={p!r}")
    params = ("input", "target", "weight") if weighted else ("input", "target")
    body = [
        "picked = jnp.take_along_axis(input, target[..., None], axis=-1)",
        f"z = {_literal(margin)} - picked + input",
        "others = 1 - jax.nn.one_hot(target, input.shape[-1], dtype=input.dtype)",
        "h = jnp.maximum(z, 0)" + (" ** 2" if p == 2 else ""),
    ]
    if weighted:
        body.append("h = h * weight[target][..., None]")
    body.append("loss = jnp.sum(h * others, axis=-1) / input.shape[-1]")
    return Program(params, (*body, *_reduce(reduction)))


def multilabel_margin_loss(*, reduction: str) -> Program:
    """Pairwise hinges masked to listed targets (before the first -1) and non-targets."""
    reduction = _check_reduction(reduction)
    body = [
        "listed = jnp.cumprod(target >= 0, axis=-1).astype(input.dtype)",
        "labels = jnp.where(listed > 0, target, 0)",
        "is_target = jnp.max(jax.nn.one_hot(labels, input.shape[-1], dtype=input.dtype) * listed[..., None], axis=-2)",
        "picked = jnp.take_along_axis(input, labels, axis=-1)",
        "z = jnp.maximum(1 - picked[..., :, None] + input[..., None, :], 0)",
        "mask = listed[..., :, None] * (1 - is_target)[..., None, :]",
        "loss = jnp.sum(z * mask, axis=(-2, -1)) / input.shape[-1]",
    ]
    return Program(("input", "target"), (*body, *_reduce(reduction)))


def cosine_embedding_loss(*, margin: float, reduction: str) -> Program:
    """``optax.losses.cosine_similarity`` (its default ``epsilon=0``), then the two branches."""
    reduction = _check_reduction(reduction)
    body = [
        "cos = optax.losses.cosine_similarity(input1, input2)",
        f"loss = jnp.where(target == 1, 1 - cos, jnp.maximum(cos - {_literal(margin)}, 0))",
    ]
    return Program(("input1", "input2", "target"), (*body, *_reduce(reduction)))


def _norm(diff: str, p: float) -> str:
    order = "jnp.inf" if p == float("inf") else _literal(p)
    return f"jnp.linalg.norm({diff}, ord={order}, axis=-1)"


#: ``triplet_margin_with_distance_loss``'s named distances (oracle/embedding.py) in JAX.
JAX_DISTANCES = {
    None: lambda x, y: _norm(f"{x} - {y} + 1e-06", 2.0),
    "pairwise_distance": lambda x, y: _norm(f"{x} - {y} + 1e-06", 2.0),
    "l1": lambda x, y: _norm(f"{x} - {y} + 1e-06", 1.0),
    # torch's cosine_similarity divides by max(||x||, 1e-8); optax clips ||x||^2 at epsilon
    "cosine": lambda x, y: f"optax.losses.cosine_distance({x}, {y}, epsilon=1e-16)",
}


def _triplet(distance, margin: float, swap: bool, reduction: str) -> Program:
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    body = [f"d_ap = {distance('anchor', 'positive')}", f"d_an = {distance('anchor', 'negative')}"]
    if swap:
        body.append(f"d_an = jnp.minimum(d_an, {distance('positive', 'negative')})")
    body.append(f"loss = jnp.maximum({_literal(margin)} + d_ap - d_an, 0)")
    return Program(("anchor", "positive", "negative"), (*body, *_reduce(reduction)))


def triplet_margin_loss(*, margin: float, p: float, eps: float, swap: bool, reduction: str) -> Program:
    """``optax.losses.triplet_margin_loss(norm_degree=p, margin, eps)``; with ``swap``, which
    optax lacks, the distances in jnp (``||a - b + eps||_p``, as the spec)."""
    reduction = _check_reduction(reduction)
    if swap:
        return _triplet(lambda x, y: _norm(f"{x} - {y} + {_literal(eps)}", float(p)), margin, True, reduction)
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    body = [
        "loss = optax.losses.triplet_margin_loss(anchor, positive, negative, "
        f"norm_degree={_literal(p)}, margin={_literal(margin)}, eps={_literal(eps)})"
    ]
    return Program(("anchor", "positive", "negative"), (*body, *_reduce(reduction)))


def triplet_margin_with_distance_loss(*, distance_function: str | None, margin: float, swap: bool, reduction: str) -> Program:
    reduction = _check_reduction(reduction)
    if distance_function not in JAX_DISTANCES:
        raise ValueError(f"unknown distance_function {distance_function!r}")
    return _triplet(JAX_DISTANCES[distance_function], margin, swap, reduction)


# -- regression and distribution losses (issue 4) -------------------------------------


def _weighted(body: list[str], weighted: bool, reduction: str, *, mean_by_weight: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    params = ("input", "target", "weight") if weighted else ("input", "target")
    if weighted:
        body.append("loss = weight * loss")
        if reduction == "mean" and mean_by_weight:
            return params, (*body, "out = jnp.sum(loss) / jnp.sum(weight)")
    return params, (*body, *_reduce(reduction))


def mse_loss(*, weighted: bool, reduction: str) -> Program:
    """``optax.losses.squared_error`` (``(x - y)^2``; not ``l2_loss``, which halves it);
    with ``weight``, ``weight * loss`` and PyTorch's weighted mean ``sum(w t) / sum(w)``."""
    reduction = _check_reduction(reduction)
    body = ["loss = optax.losses.squared_error(input, target)"]
    return Program(*_weighted(body, weighted, reduction, mean_by_weight=True))


def huber_loss(*, weighted: bool, reduction: str, delta: float) -> Program:
    """``optax.losses.huber_loss(delta=...)`` (the same piecewise formula as PyTorch's);
    with ``weight``, ``weight * loss`` and the mean over all elements, as PyTorch."""
    reduction = _check_reduction(reduction)
    body = [f"loss = optax.losses.huber_loss(input, target, delta={_literal(delta)})"]
    return Program(*_weighted(body, weighted, reduction, mean_by_weight=False))


def smooth_l1_loss(*, reduction: str, beta: float) -> Program:
    """SmoothL1_beta = Huber_beta / beta (PyTorch's docs): ``optax.losses.huber_loss(delta=beta)
    / beta``; ``beta = 0`` would be L1, which optax lacks (the caller refuses it)."""
    reduction = _check_reduction(reduction)
    body = [f"loss = optax.losses.huber_loss(input, target, delta={_literal(beta)}) / {_literal(beta)}"]
    return Program(("input", "target"), (*body, *_reduce(reduction)))


def ctc_loss(*, unbatched: bool, blank: int, reduction: str, zero_infinity: bool) -> Program:
    """``optax.losses.ctc_loss`` on ``(N, T, C)`` logits with paddings built from the lengths
    (1.0 marks a padded frame or label), ``blank_id=blank``; targets arrive padded to
    ``(N, S)`` (the adapter pads concatenated ones on the host). ``mean`` divides each loss
    by its target length (at least 1), then averages, as the spec does; ``zero_infinity`` is
    ``jnp.where(jnp.isinf(loss), 0, loss)``."""
    reduction = _check_reduction(reduction)
    body = [
        "logits = log_probs[:, None, :] if log_probs.ndim == 2 else log_probs",
        "logits = jnp.moveaxis(logits, 0, 1)",
        "labels = targets.reshape(logits.shape[0], -1)",
        "il = input_lengths.reshape(-1)",
        "tl = target_lengths.reshape(-1)",
        "logit_paddings = (jnp.arange(logits.shape[1])[None, :] >= il[:, None]).astype(logits.dtype)",
        "label_paddings = (jnp.arange(labels.shape[1])[None, :] >= tl[:, None]).astype(logits.dtype)",
        f"loss = optax.losses.ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id={int(blank)})",
    ]
    if zero_infinity:
        body.append("loss = jnp.where(jnp.isinf(loss), 0, loss)")
    if reduction == "mean":
        body.append("out = jnp.mean(loss / jnp.maximum(tl, 1).astype(loss.dtype))")
    elif reduction == "none" and unbatched:
        body.append("out = loss[0]")
    else:
        body += _reduce(reduction)
    return Program(("log_probs", "targets", "input_lengths", "target_lengths"), tuple(body))
