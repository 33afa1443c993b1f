"""The ``paddle`` adapter: the spec's calls through ``paddle.nn.functional``.

PaddlePaddle's functional API mirrors ``torch.nn.functional`` closely, so almost
every spec function is one call to Paddle's function of the same name (``label``
for ``target``, ``epsilon`` for ``eps``, ``axis`` for ``dim``, ``soft_label=True``
for probability targets, ``multi_label_*`` for ``multilabel_*``). Where Paddle has
no form of an option the adapter writes the idiom a Paddle user writes, marked
*composed* in ``OPTION_TABLE``; where it has none at all, ``NotImplementedError``
(unsupported). Where Paddle documents a different formula, the call is still the
one a Paddle user writes, and ``adapters/expectations/paddle.toml`` records the
difference with a minimal case and a citation.

Choices, each what a Paddle user would write:

* **Huber vs smooth L1.** Paddle's ``F.smooth_l1_loss(delta=...)`` is the *Huber*
  loss by default (``is_huber=True``: ``0.5 d^2`` below delta, ``delta (|d| - 0.5
  delta)`` above) and the spec's smooth L1 (Huber / delta) with ``is_huber=False``.
  So spec ``huber_loss(delta)`` is ``smooth_l1_loss(delta=delta)`` and spec
  ``smooth_l1_loss(beta)`` is ``smooth_l1_loss(delta=beta, is_huber=False)``;
  ``beta = 0`` is L1, which Paddle's docs say ``delta`` ignores ("ignored for
  negative/zero values"), so it goes to ``F.l1_loss`` (composed).
* **CTC.** ``F.ctc_loss`` wraps warp-ctc, which applies its own softmax to each
  frame ("It can be aliased as softmax with CTC"); on the spec's log-probabilities
  (normalized rows) that softmax is the identity up to rounding. Labels must be
  padded ``(N, S)`` int32 and the lengths int64; concatenated targets are split and
  padded on the host. A batch whose targets are all empty makes warp-ctc divide by
  zero and kills the process (SIGFPE), so the adapter refuses that call with a
  ``RuntimeError`` instead of running it (see the expectations file).
* **Crashes.** Likewise ``nll_loss`` with ``reduction='mean'``/``'sum'`` and an ignored
  position past the first writes past its one-element output and corrupts the heap
  (glibc aborts the process, often in a later call): refused with a ``RuntimeError``.
  A refused call is a failure of that case, recorded in the expectations file as a
  bug with its minimal case; the suite keeps running. The refusals (``KernelRefusal``)
  hold only where Paddle has the kernel for the case's dtype: in float16/bfloat16 Paddle
  raises "not registered" before the kernel runs, so those calls are unsupported.
* **Layout.** Paddle takes the class axis as ``axis=`` (cross entropy) or already
  at 1 (``nll_loss``): no transposes.
* **Dtypes.** Every loss kernel of Paddle's CPU build is registered for float32 and
  float64 only; a float16 or bfloat16 call reaches Paddle, which raises
  ``NotFound ... kernel ... is not registered``: the adapter turns that into
  ``NotImplementedError`` (unsupported), naming the kernel and the dtypes Paddle
  lists. Class indices go in as int64 (int32 for CTC labels, as Paddle requires).
* Legacy ``size_average``/``reduce``: Paddle has none; NotImplementedError.
* **Global state.** Paddle is imported when the adapter is created, its import
  warnings silenced in a local ``warnings.catch_warnings``; the adapter never calls
  ``paddle.set_device`` or changes a flag: tensors are created on the adapter's
  place and Paddle runs each kernel where its inputs live.

Every call is written once, as source lines computing ``out`` from tensors named as
the spec's parameters; the adapter runs exactly those lines (eager, dygraph mode),
``grad`` runs them with ``stop_gradient=False`` and ``paddle.grad``, and ``repro``
prints them after the exact tensor literals -- so a repro is the call itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from ._paddle_convert import paddle_dtype_name, paddle_module, tensor_source, to_numpy, to_paddle
from ._repro import is_floating, scalar_literal
from ._spec_methods import SpecFunctions
from .errors import AdapterError, AdapterUnavailableError

#: Parameters that hold arrays: the tensors a program reads by these names.
ARRAY_PARAMETERS = (
    "input", "target", "weight", "pos_weight", "var",
    "input1", "input2", "anchor", "positive", "negative",
    "log_probs", "targets", "input_lengths", "target_lengths",
)

#: Paddle's "kernel not registered" error: kernel name, dtype, the dtypes it has.
_UNREGISTERED = re.compile(
    r"kernel with key \((?P<place>\w+), [^,]+, (?P<dtype>\w+)\) of kernel `(?P<kernel>\w+)` is not "
    r"registered.*?Paddle support following DataTypes: (?P<supported>[\w, ]+)\."
)


#: One key of Paddle's kernel registry (``core._get_registered_phi_kernels``): backend, dtype.
_KERNEL_KEY = re.compile(r"\((?P<backend>\w+), [^,]+, (?P<dtype>\w+)\)")


#: The same refusal from Paddle's Python-side dtype check (cosine_embedding_loss, ...).
_PYTHON_DTYPE_CHECK = re.compile(r"data type of input Variable must be (?P<supported>'float32' or 'float64')")


class KernelRefusal(RuntimeError):
    """A call the adapter does not run because Paddle's ``kernel`` would kill the process
    on it (heap corruption, SIGFPE). It applies only where Paddle has that kernel for the
    case's dtype and place: where it has not, Paddle raises "not registered" before the
    kernel runs, so the call is *unsupported* there, as every other call in that dtype
    (``PaddleLosses._checked_program``)."""

    def __init__(self, kernel: str, message: str) -> None:
        super().__init__(message)
        self.kernel = kernel


def _kw(value: object) -> str:
    return scalar_literal(value)


def _legacy(fn_name: str, a: Mapping[str, object]) -> None:
    if a.get("size_average") is not None or a.get("reduce") is not None:
        raise NotImplementedError(
            f"{fn_name}: the legacy size_average/reduce arguments have no Paddle equivalent; use reduction="
        )


def _reduce(fn_name: str, reduction: object, *, mean: str = "paddle.mean(losses)") -> str:
    """The line reducing a composed loss's ``losses`` (composed losses check ``reduction`` here)."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn_name}: reduction={reduction!r} is not valid: expected 'none', 'mean' or 'sum'")
    return {"none": "out = losses", "sum": "out = paddle.sum(losses)", "mean": f"out = {mean}"}[str(reduction)]


def _call(callee: str, *args: str, **kwargs: object) -> str:
    return f"{callee}({', '.join([*args, *(f'{k}={v}' for k, v in kwargs.items())])})"


# -- the programs, one per spec function ----------------------------------------------


def _cross_entropy(a: dict[str, Any]) -> list[str]:
    _legacy("cross_entropy", a)
    x, target = np.asarray(a["input"]), np.asarray(a["target"])
    index = np.issubdtype(target.dtype, np.integer)
    options: dict[str, object] = {}
    if a["weight"] is not None:
        options["weight"] = "weight"
    if index:
        options["ignore_index"] = _kw(int(a["ignore_index"]))
    options["reduction"] = _kw(a["reduction"])
    if not index:
        options["soft_label"] = "True"
    options["axis"] = "1" if x.ndim >= 2 else "0"
    if a["label_smoothing"]:
        options["label_smoothing"] = _kw(float(a["label_smoothing"]))
    smoothing = bool(a["label_smoothing"])
    if index and smoothing and (target == int(a["ignore_index"])).any():
        raise NotImplementedError(
            "cross_entropy: Paddle's label_smoothing one-hot encodes every class index before "
            "ignore_index is applied (a negative ignore_index raises 'Illegal index value', one "
            "in [0, C) is counted as that class): ignored positions with label smoothing are unsupported"
        )
    line = _call("out = F.cross_entropy", "input", "target", **options)
    if (smoothing or not index) and a["reduction"] == "none":
        # soft labels (label smoothing turns class indices into soft labels too): Paddle
        # keeps the class axis, of size 1
        return [line, f"out = paddle.squeeze(out, axis={1 if x.ndim >= 2 else 0})"]
    return [line]


def _nll_loss(a: dict[str, Any]) -> list[str]:
    _legacy("nll_loss", a)
    x = np.asarray(a["input"])
    _refuse_reduced_nll_with_ignored_positions(a)
    options: dict[str, object] = {"weight": "weight"} if a["weight"] is not None else {}
    options.update(ignore_index=_kw(int(a["ignore_index"])), reduction=_kw(a["reduction"]))
    if x.ndim == 1:  # Paddle wants a batch axis: the unbatched (C) input gets one
        line = _call("out = F.nll_loss", "input[None]", "target[None]", **options)
        return [line, "out = out[0]"] if a["reduction"] == "none" else [line]
    return [_call("out = F.nll_loss", "input", "target", **options)]


def _refuse_reduced_nll_with_ignored_positions(a: Mapping[str, object]) -> None:
    """RuntimeError (not run) for the ``nll_loss`` calls whose kernel writes out of bounds.

    Paddle's CPU ``nll_loss`` kernel (``paddle/phi/kernels/cpu/nll_loss_kernel.cc``) sets
    ``out[i] = 0`` for every position ``i`` whose target is ``ignore_index`` -- also with
    ``reduction='mean'``/``'sum'``, where ``out`` holds one element. An ignored position at
    flat index ``i >= 1`` writes past the output's buffer; the corrupted heap aborts the
    process (glibc "corrupted size vs. prev_size", "free(): invalid next size"), often
    later, in an unrelated call. Index 0 is the output itself and is overwritten by the
    result, so it is safe, as is ``reduction='none'`` (an output per position)."""
    if a["reduction"] not in ("mean", "sum"):
        return
    ignored = np.flatnonzero(np.asarray(a["target"]).reshape(-1) == int(a["ignore_index"]))
    if ignored.size and ignored.max() >= 1:
        raise KernelRefusal(
            "nll_loss",
            f"nll_loss: reduction={a['reduction']!r} with a target equal to ignore_index at flat "
            f"position {int(ignored.max())} >= 1; Paddle's nll_loss kernel writes a 0 for it into its "
            "one-element output, past the buffer, corrupting the heap (glibc aborts the process), "
            "so the adapter does not call it"
        )


def _binary_cross_entropy(a: dict[str, Any]) -> list[str]:
    _legacy("binary_cross_entropy", a)
    weight = {"weight": "weight"} if a["weight"] is not None else {}
    return [_call("out = F.binary_cross_entropy", "input", "target", **weight, reduction=_kw(a["reduction"]))]


def _binary_cross_entropy_with_logits(a: dict[str, Any]) -> list[str]:
    _legacy("binary_cross_entropy_with_logits", a)
    options: dict[str, object] = {"weight": "weight"} if a["weight"] is not None else {}
    options["reduction"] = _kw(a["reduction"])
    if a["pos_weight"] is not None:
        options["pos_weight"] = "pos_weight"
    return [_call("out = F.binary_cross_entropy_with_logits", "input", "target", **options)]


def _kl_div(a: dict[str, Any]) -> list[str]:
    _legacy("kl_div", a)
    return [_call("out = F.kl_div", "input", "target", reduction=_kw(a["reduction"]), log_target=_kw(bool(a["log_target"])))]


def _softmax(a: dict[str, Any]) -> list[str]:
    return [f"out = F.softmax(input, axis={int(a['dim'])})"]


def _log_softmax(a: dict[str, Any]) -> list[str]:
    return [f"out = F.log_softmax(input, axis={int(a['dim'])})"]


def _sigmoid(a: dict[str, Any]) -> list[str]:
    return ["out = F.sigmoid(input)"]


# -- regression and distribution losses ----------------------------------------------


def _weighted_elementwise(fn_name: str, call: str, a: dict[str, Any], *, mean_by_weight: bool) -> list[str]:
    """``call`` (a Paddle loss on ``input, target``); a ``weight`` multiplies its
    elementwise terms, and the spec's weighted mean divides by ``sum(w)`` (l1, mse) or by
    the number of elements (huber)."""
    if a.get("weight") is None:
        return [f"out = {call.format(reduction=_kw(a['reduction']))}"]
    mean = "paddle.sum(losses) / paddle.sum(w)" if mean_by_weight else "paddle.mean(losses)"
    return [
        "w = paddle.broadcast_to(weight, input.shape)",
        f"losses = {call.format(reduction=_kw('none'))} * w",
        _reduce(fn_name, a["reduction"], mean=mean),
    ]


def _l1_loss(a: dict[str, Any]) -> list[str]:
    _legacy("l1_loss", a)
    return _weighted_elementwise("l1_loss", "F.l1_loss(input, target, reduction={reduction})", a, mean_by_weight=True)


def _mse_loss(a: dict[str, Any]) -> list[str]:
    _legacy("mse_loss", a)
    return _weighted_elementwise("mse_loss", "F.mse_loss(input, target, reduction={reduction})", a, mean_by_weight=True)


def _huber_loss(a: dict[str, Any]) -> list[str]:
    call = f"F.smooth_l1_loss(input, target, reduction={{reduction}}, delta={_kw(float(a['delta']))})"
    return _weighted_elementwise("huber_loss", call, a, mean_by_weight=False)


def _smooth_l1_loss(a: dict[str, Any]) -> list[str]:
    _legacy("smooth_l1_loss", a)
    beta = float(a["beta"])
    if beta == 0:
        return [f"out = F.l1_loss(input, target, reduction={_kw(a['reduction'])})"]
    return [f"out = F.smooth_l1_loss(input, target, reduction={_kw(a['reduction'])}, delta={_kw(beta)}, is_huber=False)"]


def _poisson_nll_loss(a: dict[str, Any]) -> list[str]:
    _legacy("poisson_nll_loss", a)
    return [_call(
        "out = F.poisson_nll_loss", "input", "target", log_input=_kw(bool(a["log_input"])),
        full=_kw(bool(a["full"])), epsilon=_kw(float(a["eps"])), reduction=_kw(a["reduction"]),
    )]  # fmt: skip


def _gaussian_nll_loss(a: dict[str, Any]) -> list[str]:
    var = a["var"]
    lines: list[str] = []
    if not isinstance(var, np.ndarray):  # a float variance: the tensor a Paddle user makes of it
        lines.append(f"var = paddle.full_like(input, {_kw(float(var))})")
    elif var.ndim == np.ndim(a["input"]) and var.shape != np.shape(a["input"]):
        # Paddle accepts a variance of input's shape or one dimension short, and rejects
        # one with a dimension 1 ("variance is of incorrect shape"): a user broadcasts it
        lines.append("var = paddle.broadcast_to(var, input.shape)")
    lines.append(_call(
        "out = F.gaussian_nll_loss", "input", "target", "var", full=_kw(bool(a["full"])),
        epsilon=_kw(float(a["eps"])), reduction=_kw(a["reduction"]),
    ))  # fmt: skip
    return lines


def _ctc_loss(a: dict[str, Any]) -> list[str]:
    """``F.ctc_loss`` on padded ``(N, S)`` int32 labels and int64 lengths."""
    x = np.asarray(a["log_probs"])
    lengths = np.asarray(a["target_lengths"]).reshape(-1)
    if lengths.size and not lengths.any():
        # warp-ctc divides by the total label length: an all-empty batch is SIGFPE
        raise KernelRefusal(
            "warpctc",
            "ctc_loss: every target is empty; paddle's warp-ctc kernel kills the process with "
            "SIGFPE (integer division by zero) on this input, so the adapter does not call it"
        )
    _refuse_out_of_bounds_ctc(a)
    if ((np.asarray(a["input_lengths"]).reshape(-1) == 0) & (lengths == 0)).any():
        raise KernelRefusal(
            "warpctc",
            "ctc_loss: a sequence with input length 0 and target length 0; paddle's warp-ctc "
            "corrupts the heap on it (glibc aborts the process), so the adapter does not call it"
        )
    lines = ["logits = log_probs[:, None, :]" if x.ndim == 2 else "logits = log_probs"]
    lines += [
        "labels = paddle.to_tensor(padded_targets, dtype='int32')",
        "label_lengths = paddle.reshape(target_lengths, [-1]).astype('int64')",
        "logit_lengths = paddle.reshape(input_lengths, [-1]).astype('int64')",
        _call(
            "losses = F.ctc_loss", "logits", "labels", "logit_lengths", "label_lengths", blank=int(a["blank"]),
            reduction=_kw(a["reduction"]), zero_infinity=_kw(bool(a["zero_infinity"])),
        ),
    ]  # fmt: skip
    lines.append("out = losses[0]" if x.ndim == 2 and a["reduction"] == "none" else "out = losses")
    return lines


def _refuse_out_of_bounds_ctc(a: Mapping[str, object]) -> None:
    """NotImplementedError (not run) for CTC inputs warp-ctc would index out of bounds.

    warp-ctc checks neither the class indices against C nor the input lengths against
    T; with a length above T it writes past its buffers, and the corrupted heap aborts
    the process later, in an unrelated call. The suite must survive, so these calls are
    not run; as Paddle would not raise either, they are reported *unsupported*, never as
    a rejection (README, the paddle adapter's section, lists them)."""
    x = np.asarray(a["log_probs"])
    classes, frames = x.shape[-1], x.shape[0]
    labels = padded_targets(a)
    lengths = np.asarray(a["target_lengths"]).reshape(-1)
    used = np.concatenate([row[: max(0, int(n))] for row, n in zip(labels, lengths)]) if lengths.size else labels[:0, 0]
    if (np.asarray(a["input_lengths"]) > frames).any():
        raise NotImplementedError(
            "ctc_loss: an input length above T; Paddle's warp-ctc does not check it and writes out of "
            "bounds (heap corruption), so the adapter does not run it"
        )
    if used.size and (used.min() < 0 or used.max() >= classes):
        raise NotImplementedError(
            "ctc_loss: a target class outside [0, C); Paddle's warp-ctc does not check it and reads out "
            "of bounds, so the adapter does not run it"
        )


def padded_targets(arguments: Mapping[str, object]) -> np.ndarray:
    """CTC targets as ``(N, S)`` int64, ``S >= 1``: concatenated ones split by
    ``target_lengths`` and zero-padded on the host, as a Paddle user does (the padding
    is masked by the lengths); an unbatched ``(S)`` target is one row."""
    targets = np.asarray(arguments["targets"])
    lengths = np.asarray(arguments["target_lengths"]).reshape(-1)
    if np.ndim(arguments["log_probs"]) == 2:
        rows = [targets.reshape(-1)[: int(lengths[0])]]
    elif targets.ndim == 1:
        if lengths.sum() != targets.size or (lengths < 0).any():
            raise ValueError(f"concatenated targets hold {targets.size} labels, target_lengths sum to {lengths.sum()}")
        rows = np.split(targets, np.cumsum(lengths)[:-1])
    else:
        rows = list(targets.reshape(lengths.size, -1))
    width = max(1, max((r.size for r in rows), default=0))
    return np.array([np.pad(r, (0, width - r.size)) for r in rows], dtype=np.int64).reshape(len(rows), width)


# -- margin, ranking and embedding losses ---------------------------------------------


def _zero_d(lines: list[str], x: object, reduction: object) -> list[str]:
    """Paddle returns shape (1,) for a 0-d input with reduction='none': back to 0-d."""
    return [*lines, "out = out.reshape([])"] if np.ndim(x) == 0 and reduction == "none" else lines


def _margin_ranking_loss(a: dict[str, Any]) -> list[str]:
    _legacy("margin_ranking_loss", a)
    line = _call("out = F.margin_ranking_loss", "input1", "input2", "target", margin=_kw(float(a["margin"])), reduction=_kw(a["reduction"]))
    return _zero_d([line], a["input1"], a["reduction"])


def _hinge_embedding_loss(a: dict[str, Any]) -> list[str]:
    _legacy("hinge_embedding_loss", a)
    line = _call("out = F.hinge_embedding_loss", "input", "target", margin=_kw(float(a["margin"])), reduction=_kw(a["reduction"]))
    return _zero_d([line], a["input"], a["reduction"])


def _unbatched(line: str, names: tuple[str, ...], x: object, reduction: object) -> list[str]:
    """Paddle wants a batch axis: an unbatched ``(C)``/``(D)`` input gets one (``[None]``
    on every array argument), removed again from a 'none' output."""
    if np.ndim(x) != 1:
        return [line]
    for name in names:
        line = line.replace(f"({name}, ", f"({name}[None], ").replace(f", {name}, ", f", {name}[None], ")
    return [line, "out = out[0]"] if reduction == "none" else [line]


def _soft_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("soft_margin_loss", a)
    return [_call("out = F.soft_margin_loss", "input", "target", reduction=_kw(a["reduction"]))]


def _multilabel_soft_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multilabel_soft_margin_loss", a)
    weight = {"weight": "weight"} if a["weight"] is not None else {}
    return [_call("out = F.multi_label_soft_margin_loss", "input", "target", **weight, reduction=_kw(a["reduction"]))]


def _multi_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multi_margin_loss", a)
    weight = {"weight": "weight"} if a["weight"] is not None else {}
    line = _call(
        "out = F.multi_margin_loss", "input", "target", p=_kw(a["p"]), margin=_kw(float(a["margin"])),
        **weight, reduction=_kw(a["reduction"]),
    )  # fmt: skip
    return _unbatched(line, ("input", "target"), a["input"], a["reduction"])


def _multilabel_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multilabel_margin_loss", a)
    line = _call("out = F.multi_label_margin_loss", "input", "target", reduction=_kw(a["reduction"]))
    return _unbatched(line, ("input", "target"), a["input"], a["reduction"])


def _cosine_embedding_loss(a: dict[str, Any]) -> list[str]:
    _legacy("cosine_embedding_loss", a)
    line = _call("out = F.cosine_embedding_loss", "input1", "input2", "target", margin=_kw(float(a["margin"])), reduction=_kw(a["reduction"]))
    return _unbatched(line, ("input1", "input2", "target"), a["input1"], a["reduction"])


def _triplet_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("triplet_margin_loss", a)
    return [_call(
        "out = F.triplet_margin_loss", "anchor", "positive", "negative", margin=_kw(float(a["margin"])),
        p=_kw(float(a["p"])), epsilon=_kw(float(a["eps"])), swap=_kw(bool(a["swap"])), reduction=_kw(a["reduction"]),
    )]  # fmt: skip


#: ``triplet_margin_with_distance_loss``'s named distances (oracle/embedding.py) in Paddle.
PADDLE_DISTANCES: dict[object, str | None] = {
    None: None,
    "pairwise_distance": "F.pairwise_distance",
    "l1": "lambda x, y: F.pairwise_distance(x, y, p=1)",
    "cosine": "lambda x, y: 1.0 - F.cosine_similarity(x, y, axis=-1)",
}


def _triplet_margin_with_distance_loss(a: dict[str, Any]) -> list[str]:
    name = a["distance_function"]
    if name not in PADDLE_DISTANCES:
        raise ValueError(f"unknown distance_function {name!r}: expected one of {', '.join(map(str, PADDLE_DISTANCES))}")
    distance = PADDLE_DISTANCES[name]
    options = {"distance_function": distance} if distance else {}
    return [_call(
        "out = F.triplet_margin_with_distance_loss", "anchor", "positive", "negative", **options,
        margin=_kw(float(a["margin"])), swap=_kw(bool(a["swap"])), reduction=_kw(a["reduction"]),
    )]  # fmt: skip


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
    "margin_ranking_loss": _margin_ranking_loss,
    "hinge_embedding_loss": _hinge_embedding_loss,
    "soft_margin_loss": _soft_margin_loss,
    "multilabel_soft_margin_loss": _multilabel_soft_margin_loss,
    "multi_margin_loss": _multi_margin_loss,
    "multilabel_margin_loss": _multilabel_margin_loss,
    "cosine_embedding_loss": _cosine_embedding_loss,
    "triplet_margin_loss": _triplet_margin_loss,
    "triplet_margin_with_distance_loss": _triplet_margin_with_distance_loss,
}


@lru_cache(maxsize=512)
def _compiled(text: str):
    return compile(text, "<lossconf paddle adapter>", "exec")


def _unsupported_dtype(error: BaseException) -> NotImplementedError | None:
    """NotImplementedError for Paddle's 'kernel not registered for this dtype', else None."""
    text = " ".join(str(error).split())
    match = _UNREGISTERED.search(text)
    if match is None:
        checked = _PYTHON_DTYPE_CHECK.search(text)
        if checked is None:
            return None
        return NotImplementedError(f"paddle's Python API accepts {checked['supported']} only")
    return NotImplementedError(
        f"paddle's {match['place']} kernel `{match['kernel']}` is not registered for {match['dtype']} "
        f"(it has: {match['supported']})"
    )


def _raise_unsupported_dtype(error: BaseException) -> None:
    """Raise :func:`_unsupported_dtype`'s NotImplementedError for ``error`` if it is one."""
    unsupported = _unsupported_dtype(error)
    if unsupported is not None:
        raise unsupported from error


def _resolve_place(paddle, device: str):
    """The Paddle place for the suite's ``--device`` (torch spellings accepted)."""
    name, _, index = str(device).strip().lower().partition(":")
    if name == "cpu" and not index:
        return paddle.CPUPlace()
    if name in ("cuda", "gpu") and (not index or index.isdigit()):
        count = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
        if int(index or 0) >= count:
            raise AdapterUnavailableError(
                f"adapter 'paddle' cannot run on device {device!r}: Paddle {paddle.__version__} sees "
                f"{count} CUDA device(s){'' if paddle.is_compiled_with_cuda() else ' (a CPU-only build)'}; use device 'cpu'"
            )
        return paddle.CUDAPlace(int(index or 0))
    raise AdapterError(f"adapter 'paddle': {device!r} is not a Paddle device; use 'cpu' or 'gpu' (or 'cuda'), optionally ':N'")


class PaddleLosses(SpecFunctions):
    """The spec's functions, answered by ``paddle.nn.functional`` (module docstring)."""

    name = "paddle"

    def __init__(self, *, device: str = "cpu") -> None:
        self._paddle = paddle_module()
        self.version = str(self._paddle.__version__)
        self.place = _resolve_place(self._paddle, device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(place={str(self.place)!r})"

    # -- the spec's methods come from SpecFunctions (adapters/_spec_methods.py) ------

    def grad(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any], wrt: str = "input") -> np.ndarray:
        """Gradient of ``fn_name(*args, **kwargs)``'s sum w.r.t. argument ``wrt``.

        ``paddle.grad`` over the same eager program the forward pass runs, in the
        case's dtype. Where ``paddle.grad`` returns None (``allow_unused``): zeros for the
        loss's first parameter (an output that does not depend on it), and
        NotImplementedError -- unsupported, never a silent zero gradient -- for any
        other: Paddle's kernels take e.g. BCE-with-logits' ``target`` and ``pos_weight``, the
        labels of ``bce_loss`` and ``kldiv_loss``, soft labels and ``nll_loss``'s weight as
        constants, although the loss depends on them.
        """
        arguments = self._bind(fn_name, args, kwargs)
        value = arguments.get(wrt)
        if not isinstance(value, np.ndarray) or wrt not in ARRAY_PARAMETERS:
            raise ValueError(f"{fn_name}: no array argument {wrt!r} to differentiate")
        if not is_floating(value.dtype):
            raise ValueError(f"{fn_name}: argument {wrt!r} is not a floating array")
        program = self._checked_program(fn_name, arguments)
        paddle = self._paddle
        tensors = self._tensors(fn_name, arguments)
        variable = tensors[wrt]
        variable.stop_gradient = False
        try:
            total = paddle.sum(self._run(program, tensors))
            (gradient,) = paddle.grad([total], [variable], allow_unused=True)
        except (RuntimeError, ValueError) as error:
            _raise_unsupported_dtype(error)
            raise
        if gradient is None:
            if wrt != next(iter(arguments)):
                # the output depends on it (the spec declares it), but Paddle's graph has no
                # backward path to it: its kernel takes it as a constant (a label, pos_weight)
                raise NotImplementedError(
                    f"{fn_name}: paddle.grad gives no gradient w.r.t. {wrt!r}: Paddle's loss treats "
                    "that argument as a constant (no backward path to it)"
                )
            gradient = paddle.zeros_like(variable)
        return to_numpy(gradient)

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """Paddle source reproducing the call bit for bit: the exact tensors, then the
        very lines the adapter runs, then a print of the output's exact values."""
        try:
            arguments = self._bind(fn_name, args, kwargs)
        except (TypeError, ValueError) as error:  # never raise from a repro: say why there is none
            return f"# no paddle repro for this call: {error}\n"
        try:
            program = self._checked_program(fn_name, arguments)
        except NotImplementedError as error:
            return f"# unsupported by the paddle adapter: {error}\n"
        except (ValueError, RuntimeError) as error:
            return f"# refused by the paddle adapter before calling Paddle: {error}\n"
        lines = ["import numpy as np", "import paddle", "import paddle.nn.functional as F"]
        lines += [f"{name} = {tensor_source(array)}" for name, array in self._arrays(fn_name, arguments).items()]
        if fn_name == "ctc_loss":
            lines.append(f"padded_targets = {padded_targets(arguments).tolist()!r}")
        lines += program
        lines.append("print(out.dtype, out.cast('float64').numpy().tolist())")
        return "\n".join(lines) + "\n"

    # -- internals -------------------------------------------------------------------

    def _forward(self, fn_name: str, local: dict[str, object]) -> np.ndarray:
        arguments = {k: v for k, v in local.items() if k != "self"}
        program = self._checked_program(fn_name, arguments)
        tensors = self._tensors(fn_name, arguments)
        try:
            with self._paddle.no_grad():
                return to_numpy(self._run(program, tensors))
        except (RuntimeError, ValueError) as error:
            _raise_unsupported_dtype(error)
            raise

    def _run(self, program: list[str], tensors: Mapping[str, object]):
        namespace: dict[str, Any] = {"paddle": self._paddle, "F": self._paddle.nn.functional, "np": np, **tensors}
        exec(_compiled("\n".join(program) + "\n"), namespace)
        return namespace["out"]

    @staticmethod
    def _program(fn_name: str, arguments: dict[str, object]) -> list[str]:
        return _PROGRAMS[fn_name](arguments)

    def _checked_program(self, fn_name: str, arguments: dict[str, object]) -> list[str]:
        """:meth:`_program`, where a :class:`KernelRefusal` whose kernel Paddle lacks for the
        case's dtype on this place becomes that dtype's NotImplementedError (unsupported):
        Paddle itself would raise "not registered" there before the kernel could crash
        (float16 ``F.ctc_loss`` on an all-empty batch: ``NotFound``, not SIGFPE)."""
        try:
            return self._program(fn_name, arguments)
        except KernelRefusal as refusal:
            unsupported = self._unregistered(refusal.kernel, arguments)
            if unsupported is not None:
                raise unsupported from refusal
            raise

    def _unregistered(self, kernel: str, arguments: Mapping[str, object]) -> NotImplementedError | None:
        """NotImplementedError when Paddle registers ``kernel`` for this place's backend but
        not for the dtype of the case's floating arrays; None when it has it (or when
        Paddle's kernel registry cannot be read: the refusal then stands)."""
        floating = [v.dtype for v in arguments.values() if isinstance(v, np.ndarray) and is_floating(v.dtype)]
        if not floating:
            return None
        dtype = paddle_dtype_name(floating[0])
        try:
            keys = self._paddle.base.core._get_registered_phi_kernels("function").get(kernel)
        except (AttributeError, RuntimeError, TypeError):
            return None
        backend = "GPU" if type(self.place).__name__ == "CUDAPlace" else "CPU"
        registered = [m.group(2) for m in map(_KERNEL_KEY.match, keys or ()) if m and m.group(1) == backend]
        if not registered or dtype in registered:
            return None
        return NotImplementedError(
            f"paddle's {backend} kernel `{kernel}` is not registered for {dtype} (it has: {', '.join(registered)})"
        )

    @staticmethod
    def _arrays(fn_name: str, arguments: Mapping[str, object]) -> dict[str, np.ndarray]:
        lengths = ("input_lengths", "target_lengths") if fn_name == "ctc_loss" else ()
        arrays = {
            name: np.asarray(arguments[name])
            for name in ARRAY_PARAMETERS
            if isinstance(arguments.get(name), np.ndarray) or (name in lengths and arguments.get(name) is not None)
        }
        for array in arrays.values():
            paddle_dtype_name(array.dtype)  # TypeError for a dtype Paddle cannot hold exactly
        if fn_name == "ctc_loss":
            del arrays["targets"]  # passed as padded_targets
        return arrays

    def _tensors(self, fn_name: str, arguments: Mapping[str, object]) -> dict[str, object]:
        tensors: dict[str, object] = {
            name: to_paddle(array, self.place) for name, array in self._arrays(fn_name, arguments).items()
        }
        if fn_name == "ctc_loss":
            tensors["padded_targets"] = padded_targets(arguments)
        return tensors


# -- option table ---------------------------------------------------------------------

_F = "paddle.nn.functional."
_LEGACY = ("unsupported", "Paddle has no size_average/reduce: NotImplementedError")
_REDUCTIONS = {
    "reduction='none'": ("native", "reduction='none'"),
    "reduction='mean'": ("native", "reduction='mean'"),
    "reduction='sum'": ("native", "reduction='sum'"),
}

#: How each spec option reaches Paddle (adapters/options.py; docs/options.md).
OPTION_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "cross_entropy": {
        "(function)": ("native", _F + "cross_entropy(input, label, axis=1)"),
        "class-index target": ("native", "label = class indices (int64)"),
        "probability target": ("native", "soft_label=True (reduction='none' output squeezed: Paddle keeps a class axis of 1)"),
        "(N, C, d1..dK) input": ("native", "axis=1"),
        "weight": ("native", "weight= (with soft labels Paddle's own formula: see expectations)"),
        "ignore_index": ("native", "ignore_index="),
        "label_smoothing": (
            "native",
            "label_smoothing= (Paddle one-hot encodes the indices: with a position equal to "
            "ignore_index unsupported; with weight Paddle's soft-label weighting, see expectations)",
        ),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "nll_loss": {
        "(function)": ("native", _F + "nll_loss(input, label)"),
        "class-index target": ("native", "label = class indices (int64)"),
        "(N, C, d1..dK) input": ("native", "the class axis at 1, as the spec"),
        "weight": ("native", "weight="),
        "ignore_index": ("native", "ignore_index="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy": {
        "(function)": ("native", _F + "binary_cross_entropy(input, label)"),
        "weight": ("native", "weight="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy_with_logits": {
        "(function)": ("native", _F + "binary_cross_entropy_with_logits(logit, label)"),
        "weight": ("native", "weight="),
        "pos_weight": ("native", "pos_weight="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "kl_div": {
        "(function)": ("native", _F + "kl_div(input, label)"),
        "log_target": ("native", "log_target="),
        **_REDUCTIONS,
        "reduction='batchmean'": ("native", "reduction='batchmean'"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "softmax": {"(function)": ("native", _F + "softmax"), "dim": ("native", "axis=dim")},
    "log_softmax": {"(function)": ("native", _F + "log_softmax"), "dim": ("native", "axis=dim")},
    "sigmoid": {"(function)": ("native", _F + "sigmoid")},
    **{
        loss: {
            "(function)": ("native", f"{_F}{loss}(input, label)"),
            "weight": ("composed", f"{loss}(reduction='none') * broadcast weight; mean paddle.sum(losses) / paddle.sum(w)"),
            **_REDUCTIONS,
            "size_average/reduce (legacy)": _LEGACY,
        }
        for loss in ("l1_loss", "mse_loss")
    },
    "huber_loss": {
        "(function)": ("native", _F + "smooth_l1_loss(input, label, delta=delta) (is_huber=True, its default, is Huber)"),
        "delta": ("native", "delta="),
        "weight": ("composed", "smooth_l1_loss(reduction='none') * broadcast weight; mean over all elements, as PyTorch"),
        **_REDUCTIONS,
    },
    "smooth_l1_loss": {
        "(function)": ("native", _F + "smooth_l1_loss(input, label, delta=beta, is_huber=False) (Huber / delta)"),
        "beta": ("native", "delta=beta, is_huber=False"),
        "beta=0": ("composed", _F + "l1_loss (Paddle's docs: delta is ignored for zero/negative values)"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "poisson_nll_loss": {
        "(function)": ("native", _F + "poisson_nll_loss(input, label)"),
        "log_input=True": ("native", "log_input=True"),
        "log_input=False": ("native", "log_input=False"),
        "full": ("native", "full="),
        "eps": ("native", "epsilon=eps"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "gaussian_nll_loss": {
        "(function)": ("native", _F + "gaussian_nll_loss(input, label, variance)"),
        "var of input's shape": ("native", "variance="),
        "var one dimension short": ("native", "variance= (Paddle unsqueezes it)"),
        "var with a dimension 1": ("composed", "paddle.broadcast_to(var, input.shape): Paddle rejects it"),
        "var as a float": ("composed", "paddle.full_like(input, var)"),
        "full": ("native", "full="),
        "eps": ("native", "epsilon=eps"),
        **_REDUCTIONS,
    },
    "ctc_loss": {
        "(function)": (
            "native",
            _F + "ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=) (warp-ctc, softmax inside; "
            "an input length above T or a class outside [0, C) not run: warp-ctc goes out of bounds)",
        ),
        "padded (N, S) targets": ("native", "labels as int32 (N, S), lengths int64"),
        "concatenated targets": ("composed", "split by target_lengths and zero-padded on the host"),
        "unbatched (T, C)": ("composed", "a batch axis of 1 (log_probs[:, None, :]), removed from 'none' output"),
        "blank": ("native", "blank="),
        "zero_infinity": ("native", "zero_infinity="),
        **_REDUCTIONS,
    },
    "margin_ranking_loss": {
        "(function)": ("native", _F + "margin_ranking_loss(input, other, label)"),
        "margin": ("native", "margin= (a 0-d 'none' output reshaped from Paddle's (1,) to ())"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "hinge_embedding_loss": {
        "(function)": ("native", _F + "hinge_embedding_loss(input, label)"),
        "margin": ("native", "margin="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "soft_margin_loss": {
        "(function)": ("native", _F + "soft_margin_loss(input, label)"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multilabel_soft_margin_loss": {
        "(function)": ("native", _F + "multi_label_soft_margin_loss(input, label)"),
        "(C) input": ("native", "a rank-1 input"),
        "weight": ("native", "weight="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multi_margin_loss": {
        "(function)": ("native", _F + "multi_margin_loss(input, label)"),
        "(C) input": ("composed", "input[None] (Paddle wants a batch axis), out[0]"),
        "p=1": ("native", "p=1"),
        "p=2": ("native", "p=2"),
        "margin": ("native", "margin="),
        "weight": ("native", "weight="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multilabel_margin_loss": {
        "(function)": ("native", _F + "multi_label_margin_loss(input, label)"),
        "(C) input": ("composed", "input[None] (Paddle wants a batch axis), out[0]"),
        "-1 terminated target": ("native", "label lists classes up to a -1"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "cosine_embedding_loss": {
        "(function)": ("native", _F + "cosine_embedding_loss(input1, input2, label)"),
        "(D) input": ("composed", "input[None] (Paddle wants a batch axis), out[0]"),
        "margin": ("native", "margin="),
        "zero vector": ("native", "Paddle's own epsilon: see expectations"),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_loss": {
        "(function)": ("native", _F + "triplet_margin_loss(input, positive, negative)"),
        "(D) input": ("native", "a rank-1 input"),
        "margin": ("native", "margin="),
        "p": ("native", "p="),
        "eps": ("native", "epsilon=eps"),
        "swap": ("native", "swap="),
        **_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_with_distance_loss": {
        "(function)": ("native", _F + "triplet_margin_with_distance_loss(input, positive, negative)"),
        "(D) input": ("native", "a rank-1 input"),
        "distance_function=None": ("native", "distance_function=None (Paddle's default, pairwise_distance)"),
        "distance_function='l1'": ("composed", "lambda x, y: F.pairwise_distance(x, y, p=1)"),
        "distance_function='cosine'": ("composed", "lambda x, y: 1.0 - F.cosine_similarity(x, y, axis=-1)"),
        "margin": ("native", "margin="),
        "swap": ("native", "swap="),
        **_REDUCTIONS,
    },
}


def create(*, device: str = "cpu") -> PaddleLosses:
    """The ``paddle`` adapter on ``device`` (AdapterUnavailableError if unusable here)."""
    return PaddleLosses(device=device)
