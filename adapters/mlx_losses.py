"""The ``mlx`` adapter: the spec's calls through ``mlx.nn.losses`` and MLX's activations.

Each spec function is the call an MLX user writes: the ``mlx.nn.losses``
function where MLX has the loss (``cross_entropy``, ``nll_loss``,
``binary_cross_entropy`` with ``with_logits``, ``kl_div_loss``, ``l1_loss``,
``mse_loss``, ``huber_loss``, ``smooth_l1_loss``, ``gaussian_nll_loss``,
``margin_ranking_loss``, ``triplet_loss``; ``cosine_similarity_loss`` for the
cosine), ``mx.softmax`` / ``nn.log_softmax`` / ``mx.sigmoid`` for the
activations. ``OPTION_TABLE`` says, per option, which is native, which the
usual idiom around it (*composed*), and which unsupported (``NotImplementedError``).

Choices, each what an MLX user would write or what MLX's documented formula allows:

* **Class axis.** MLX's ``cross_entropy``/``nll_loss`` take ``axis=``: an
  ``(N, C, d1..dK)`` input is passed with ``axis=1`` (0 for an unbatched ``(C,)``).
* **Class weights and ignore_index.** MLX's ``weights`` multiply each
  position's loss (shape of the loss, not of the classes): the spec's class
  weights are ``weights=mx.take(weight, target)``; ignored positions are masked
  with ``mx.where`` (the mlx-examples idiom, ``loss * mask`` / ``mask.sum()``,
  but ``where`` so that an ignored row's NaN or inf does not leak). The weighted
  mean divides by the selected weights' sum, the unweighted one by the count of
  kept positions. Class weights with label smoothing or with probability targets
  are unsupported: MLX's per-position ``weights`` cannot weigh classes.
* **kl_div.** ``nn.losses.kl_div_loss(inputs, targets)`` documents
  ``sum(exp(targets) * (targets - inputs), axis)``: *log-space targets*, i.e.
  the spec's ``log_target=True``. Called on ``x[..., None]`` with ``axis=-1``
  (a sum over one element is that element) it gives the spec's pointwise terms,
  then MLX's own reduction; ``batchmean`` is the ``sum`` over ``input.shape[0]``.
  ``log_target=False`` is unsupported (MLX has no probability-target form).
* **triplet losses.** ``triplet_margin_loss`` is ``nn.losses.triplet_loss(axis=-1, p=, margin=,
  eps=)``, whose documented distance ``(sum |a - b|^p + eps)^(1/p)`` adds eps to the sum of
  powers (the spec: to each difference; graded under MLX's formula, expectations); it has no
  ``swap`` (unsupported). ``triplet_margin_with_distance_loss`` takes a distance *function*,
  which ``triplet_loss`` cannot: it is composed as an MLX user writes it,
  ``mx.maximum(margin + d(a, p) - d(a, n), 0)`` with :data:`MLX_DISTANCES` (``mx.linalg.norm``
  of ``a - b + 1e-06``; ``1 - cosine_similarity_loss``) and ``mx.minimum`` for ``swap``.
* **hinge_loss** is the SVM hinge ``max(0, 1 - y x)``, not torch's
  ``hinge_embedding_loss``; ``cosine_similarity_loss`` is the cosine itself
  (not ``1 - cos``): the adapter composes ``cosine_embedding_loss`` from it.
  ``log_cosh_loss`` has no spec function. None of them is passed off as another loss.
* **Dtypes.** float32, float16, bfloat16, and float64 (CPU only in MLX; arrays
  are created with ``dtype=mx.float64``, since ``mx.array`` of a float64 NumPy
  array silently makes float32). MLX computes in the inputs' dtype; results come
  back unconverted, so a dtype change is visible.
* **Lazy evaluation.** MLX builds a graph and computes on ``mx.eval``; the
  adapter evaluates every result inside the call, on the chosen device's default
  stream (``with mx.stream(device)``, a scoped setting), under a per-adapter lock.
* Legacy ``size_average``/``reduce``: MLX has nothing like them;
  ``NotImplementedError`` when either is not None.

Every call is written once, as source lines (``out = ...`` from arrays named as
the spec's parameters): the adapter runs exactly those lines, ``grad`` runs them
under ``mx.grad``, and ``repro`` prints them after exact array literals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ._mlx_convert import array_source, to_mx, to_numpy
from ._repro import is_floating, scalar_literal
from ._spec_methods import SpecFunctions
from .errors import AdapterError, AdapterUnavailableError

#: Parameters that hold arrays: a program reads them by these names.
ARRAY_PARAMETERS = (
    "input", "target", "weight", "pos_weight", "var",
    "input1", "input2", "anchor", "positive", "negative",
)

_REDUCTIONS = ("none", "mean", "sum")

_NL = "nn.losses"


def resolve_device(device: str) -> mx.Device:
    """The MLX device ``device`` names (``cpu``, ``gpu``; ``mps``/``metal`` mean ``gpu``)."""
    name = str(device).strip().lower().partition(":")[0]
    kinds = {"cpu": mx.cpu, "gpu": mx.gpu, "mps": mx.gpu, "metal": mx.gpu, "cuda": mx.gpu}
    if name not in kinds:
        raise AdapterError(f"adapter 'mlx': {device!r} is not an MLX device; use cpu or gpu")
    found = mx.Device(kinds[name])
    if not mx.is_available(found):
        raise AdapterUnavailableError(
            f"adapter 'mlx' cannot run on device {device!r}: this MLX build "
            f"({mx.__version__}) has no GPU backend; use device 'cpu'"
        )
    return found


class MlxCrash(RuntimeError):
    """A call that MLX is known to crash the process on (a segfault, not an exception).

    The adapter raises this instead of making the call, so that the suite records a
    failure of that case (adapters/expectations/mlx.toml names each one with its
    minimal case; tests/test_adapter_mlx.py re-runs the minimal case in a child
    process, so the guard goes when MLX fixes the crash).
    """


def _legacy(fn_name: str, a: Mapping[str, Any]) -> None:
    if a.get("size_average") is not None or a.get("reduce") is not None:
        raise NotImplementedError(
            f"{fn_name}: the legacy size_average/reduce arguments have no MLX equivalent; use reduction="
        )


def _reduction(fn_name: str, reduction: object, allowed: tuple[str, ...] = _REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(
            f"{fn_name}: reduction={reduction!r} is not valid: expected one of {', '.join(map(repr, allowed))}"
        )
    return str(reduction)


def _kw(value: object) -> str:
    return scalar_literal(value)


def _class_axis(x: np.ndarray) -> int:
    return 1 if x.ndim >= 2 else 0


def _reduce_lines(losses: str, reduction: str, denominator: str | None = None) -> list[str]:
    """Explicit reduction of composed losses: ``mean`` is ``mx.mean`` unless a denominator is given."""
    if reduction == "none":
        return [f"out = {losses}"]
    if reduction == "sum":
        return [f"out = mx.sum({losses})"]
    return [f"out = mx.sum({losses}) / {denominator}" if denominator else f"out = mx.mean({losses})"]


# -- the programs, one per spec function ----------------------------------------------


def _cross_entropy(a: dict[str, Any]) -> list[str]:
    _legacy("cross_entropy", a)
    x, target, weight = np.asarray(a["input"]), np.asarray(a["target"]), a["weight"]
    reduction = _reduction("cross_entropy", a["reduction"])
    smoothing = float(a["label_smoothing"])
    axis = _class_axis(x)
    smooth_kw = f", label_smoothing={_kw(smoothing)}" if smoothing else ""
    if not np.issubdtype(target.dtype, np.integer):
        if weight is not None:
            raise NotImplementedError(
                "cross_entropy: class weights with probability targets; MLX's weights= weighs positions, not classes"
            )
        return [f"out = {_NL}.cross_entropy(input, target, axis={axis}{smooth_kw}, reduction={_kw(reduction)})"]
    if weight is not None and smoothing:
        raise NotImplementedError(
            "cross_entropy: class weights with label smoothing; MLX's weights= weighs positions, "
            "so the smoothing term cannot be weighted per class"
        )
    return _class_index_loss("cross_entropy", a, target, axis, reduction, smooth_kw)


def _class_index_loss(
    fn_name: str, a: Mapping[str, Any], target: np.ndarray, axis: int, reduction: str, extra: str = ""
) -> list[str]:
    """``nn.losses.<fn_name>`` on class indices, with class weights and ignore_index composed."""
    ignore = int(a["ignore_index"])
    weighted = a["weight"] is not None
    masked = bool((target == ignore).any())
    if not weighted and not masked:
        return [f"out = {_NL}.{fn_name}(input, target, axis={axis}{extra}, reduction={_kw(reduction)})"]
    lines = []
    index = "target"
    if masked:
        lines += [f"keep = target != {ignore}", "index = mx.where(keep, target, 0)"]
        index = "index"
    weights = ""
    if weighted:
        lines.append(f"w = mx.take(weight, {index})")
        if masked:
            lines.append("w = mx.where(keep, w, 0)")
        weights = ", weights=w"
    call = f"{_NL}.{fn_name}(input, {index}{weights}, axis={axis}{extra}, reduction='none')"
    if masked:
        lines.append(f"losses = mx.where(keep, {call}, 0)")
    else:
        lines.append(f"losses = {call}")
    denominator = "mx.sum(w)" if weighted else "mx.sum(keep).astype(losses.dtype)"
    return lines + _reduce_lines("losses", reduction, denominator)


def _nll_loss(a: dict[str, Any]) -> list[str]:
    _legacy("nll_loss", a)
    x, target = np.asarray(a["input"]), np.asarray(a["target"])
    reduction = _reduction("nll_loss", a["reduction"])
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"nll_loss: target must hold class indices (an integer array), got dtype {target.dtype}")
    if a["weight"] is not None:
        # nll_loss has no weights=: the same composition, by hand
        return _class_index_loss_weighted_nll(a, target, _class_axis(x), reduction)
    return _class_index_loss("nll_loss", a, target, _class_axis(x), reduction)


def _class_index_loss_weighted_nll(a: Mapping[str, Any], target: np.ndarray, axis: int, reduction: str) -> list[str]:
    ignore = int(a["ignore_index"])
    lines = [f"keep = target != {ignore}", "index = mx.where(keep, target, 0)",
             "w = mx.where(keep, mx.take(weight, index), 0)",
             f"losses = mx.where(keep, w * {_NL}.nll_loss(input, index, axis={axis}, reduction='none'), 0)"]
    return lines + _reduce_lines("losses", reduction, "mx.sum(w)")


def _binary_cross_entropy(a: dict[str, Any], *, with_logits: bool = False) -> list[str]:
    fn = "binary_cross_entropy_with_logits" if with_logits else "binary_cross_entropy"
    _legacy(fn, a)
    if a.get("pos_weight") is not None:
        raise NotImplementedError(f"{fn}: pos_weight; nn.losses.binary_cross_entropy has no positive-class weight")
    reduction = _reduction(fn, a["reduction"])
    lines = []
    weights = ""
    if a["weight"] is not None:
        lines.append("w = mx.broadcast_to(weight, input.shape)")
        weights = ", weights=w"
    lines.append(
        f"out = {_NL}.binary_cross_entropy(input, target{weights}, with_logits={with_logits}, reduction={_kw(reduction)})"
    )
    return lines


def _kl_div(a: dict[str, Any]) -> list[str]:
    _legacy("kl_div", a)
    reduction = _reduction("kl_div", a["reduction"], (*_REDUCTIONS, "batchmean"))
    if not a["log_target"]:
        raise NotImplementedError(
            "kl_div with log_target=False: nn.losses.kl_div_loss takes log-probability targets only"
        )
    call = f"{_NL}.kl_div_loss(input[..., None], target[..., None], axis=-1"
    if reduction == "batchmean":
        x = np.asarray(a["input"])
        size = x.shape[0] if x.ndim else 1
        return [f"out = {call}, reduction='sum') / {size}"]
    return [f"out = {call}, reduction={_kw(reduction)})"]


def _activation(fn_name: str) -> Callable[[dict[str, Any]], list[str]]:
    def program(a: dict[str, Any]) -> list[str]:
        if fn_name == "sigmoid":
            return ["out = mx.sigmoid(input)"]
        callee = "mx.softmax" if fn_name == "softmax" else "nn.log_softmax"
        x, dim = np.asarray(a["input"]), int(a["dim"])
        if fn_name == "log_softmax" and x.ndim >= 2 and -x.ndim <= dim < x.ndim and x.shape[dim] == 1:
            raise MlxCrash(
                "nn.log_softmax over an axis of size 1 of a rank >= 2 array kills the process "
                f"with SIGSEGV (MLX {mx.__version__}, CPU; input shape {x.shape}, axis {dim}): not called"
            )
        return [f"out = {callee}(input, axis={dim})"]

    return program


def _elementwise(fn_name: str, mlx_name: str, weighted_mean_by_weight: bool, **options: str) -> Callable:
    """A native elementwise regression loss; ``weight`` composed as ``loss * weight``."""

    def program(a: dict[str, Any]) -> list[str]:
        _legacy(fn_name, a)
        reduction = _reduction(fn_name, a["reduction"])
        extra = "".join(f", {k}={_kw(a[v])}" for k, v in options.items())
        if a.get("weight") is None:
            return [f"out = {_NL}.{mlx_name}(input, target{extra}, reduction={_kw(reduction)})"]
        lines = [f"losses = {_NL}.{mlx_name}(input, target{extra}, reduction='none') * weight"]
        return lines + _reduce_lines("losses", reduction, "mx.sum(weight)" if weighted_mean_by_weight else None)

    return program


def _smooth_l1_loss(a: dict[str, Any]) -> list[str]:
    _legacy("smooth_l1_loss", a)
    reduction = _reduction("smooth_l1_loss", a["reduction"])
    return [f"out = {_NL}.smooth_l1_loss(input, target, beta={_kw(float(a['beta']))}, reduction={_kw(reduction)})"]


def _gaussian_nll_loss(a: dict[str, Any]) -> list[str]:
    reduction = _reduction("gaussian_nll_loss", a["reduction"])
    x, var = np.asarray(a["input"]), a["var"]
    if isinstance(var, np.ndarray):
        # MLX wants var of input's shape; the spec's other shapes are broadcast to it
        if var.shape == x.shape:
            lines = ["v = var"]
        elif x.ndim and var.shape == x.shape[:-1]:
            lines = ["v = mx.broadcast_to(var[..., None], input.shape)"]
        elif var.ndim == x.ndim and sum(b for a, b in zip(x.shape, var.shape) if a != b) == 1:
            lines = ["v = mx.broadcast_to(var, input.shape)"]  # one dimension of size 1
        else:
            raise ValueError(
                f"gaussian_nll_loss: var of shape {var.shape} fits neither input's shape {x.shape}, "
                "nor it without its last dimension, nor it with one dimension of size 1"
            )
    else:
        lines = [f"v = mx.full(input.shape, {_kw(float(var))}, dtype=input.dtype)"]
    lines.append(
        f"out = {_NL}.gaussian_nll_loss(input, target, v, full={bool(a['full'])}, "
        f"eps={_kw(float(a['eps']))}, reduction={_kw(reduction)})"
    )
    return lines


def _margin_ranking_loss(a: dict[str, Any]) -> list[str]:
    _legacy("margin_ranking_loss", a)
    reduction = _reduction("margin_ranking_loss", a["reduction"])
    return [
        f"out = {_NL}.margin_ranking_loss(input1, input2, target, margin={_kw(float(a['margin']))}, "
        f"reduction={_kw(reduction)})"
    ]


def _cosine_embedding_loss(a: dict[str, Any]) -> list[str]:
    _legacy("cosine_embedding_loss", a)
    reduction = _reduction("cosine_embedding_loss", a["reduction"])
    margin = _kw(float(a["margin"]))
    lines = [
        f"cos = {_NL}.cosine_similarity_loss(input1, input2, axis=-1)",
        f"losses = mx.where(target == 1, 1 - cos, mx.where(target == -1, mx.maximum(cos - {margin}, 0), 0))",
    ]
    return lines + _reduce_lines("losses", reduction)


def _multilabel_soft_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("multilabel_soft_margin_loss", a)
    reduction = _reduction("multilabel_soft_margin_loss", a["reduction"])
    weighted = " * weight" if a["weight"] is not None else ""
    lines = [
        f"terms = {_NL}.binary_cross_entropy(input, target, with_logits=True, reduction='none'){weighted}",
        "losses = mx.mean(terms, axis=-1)",
    ]
    return lines + _reduce_lines("losses", reduction)


def _triplet_margin_loss(a: dict[str, Any]) -> list[str]:
    _legacy("triplet_margin_loss", a)
    reduction = _reduction("triplet_margin_loss", a["reduction"])
    if a["swap"]:
        raise NotImplementedError("triplet_margin_loss with swap=True: nn.losses.triplet_loss has no swap")
    p = a["p"]
    p_source = _kw(int(p)) if float(p).is_integer() else _kw(float(p))
    return [
        f"out = {_NL}.triplet_loss(anchor, positive, negative, axis=-1, p={p_source}, "
        f"margin={_kw(float(a['margin']))}, eps={_kw(float(a['eps']))}, reduction={_kw(reduction)})"
    ]


#: ``triplet_margin_with_distance_loss``'s named distances (oracle/embedding.py) in MLX: the
#: spec's pairwise distance ``||x - y + eps||`` through ``mx.linalg.norm``; the cosine distance
#: as one minus ``cosine_similarity_loss`` (which divides by ``max(|x| |y|, 1e-8)``).
MLX_DISTANCES: dict[str | None, Callable[[str, str], str]] = {
    None: lambda x, y: f"mx.linalg.norm({x} - {y} + 1e-06, axis=-1)",
    "pairwise_distance": lambda x, y: f"mx.linalg.norm({x} - {y} + 1e-06, axis=-1)",
    "l1": lambda x, y: f"mx.linalg.norm({x} - {y} + 1e-06, ord=1, axis=-1)",
    "cosine": lambda x, y: f"1 - {_NL}.cosine_similarity_loss({x}, {y}, axis=-1)",
}


def _triplet_margin_with_distance_loss(a: dict[str, Any]) -> list[str]:
    """``max(margin + d(a, p) - d(a, n), 0)`` with a named distance, the way an MLX user writes
    it (MLX's ``triplet_loss`` takes a norm degree, not a distance function); ``swap``:
    ``mx.minimum(d(a, n), d(p, n))``. Nothing is validated that MLX would not validate."""
    reduction = _reduction("triplet_margin_with_distance_loss", a["reduction"])
    name = a["distance_function"]
    if name not in MLX_DISTANCES:
        raise ValueError(
            f"triplet_margin_with_distance_loss: unknown distance_function {name!r}; "
            f"the mlx adapter names {', '.join(repr(k) for k in MLX_DISTANCES)}"
        )
    distance = MLX_DISTANCES[name]
    lines = [f"d_ap = {distance('anchor', 'positive')}", f"d_an = {distance('anchor', 'negative')}"]
    if a["swap"]:
        lines.append(f"d_an = mx.minimum(d_an, {distance('positive', 'negative')})")
    lines.append(f"losses = mx.maximum({_kw(float(a['margin']))} + d_ap - d_an, 0)")
    return lines + _reduce_lines("losses", reduction)


def _unsupported(reason: str) -> Callable[[dict[str, Any]], list[str]]:
    def program(a: dict[str, Any]) -> list[str]:
        raise NotImplementedError(reason)

    return program


_PROGRAMS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "cross_entropy": _cross_entropy,
    "nll_loss": _nll_loss,
    "binary_cross_entropy": _binary_cross_entropy,
    "binary_cross_entropy_with_logits": lambda a: _binary_cross_entropy(a, with_logits=True),
    "kl_div": _kl_div,
    "softmax": _activation("softmax"),
    "log_softmax": _activation("log_softmax"),
    "sigmoid": _activation("sigmoid"),
    "l1_loss": _elementwise("l1_loss", "l1_loss", True),
    "mse_loss": _elementwise("mse_loss", "mse_loss", True),
    "huber_loss": _elementwise("huber_loss", "huber_loss", False, delta="delta"),
    "smooth_l1_loss": _smooth_l1_loss,
    "gaussian_nll_loss": _gaussian_nll_loss,
    "margin_ranking_loss": _margin_ranking_loss,
    "cosine_embedding_loss": _cosine_embedding_loss,
    "multilabel_soft_margin_loss": _multilabel_soft_margin_loss,
    "triplet_margin_loss": _triplet_margin_loss,
    "poisson_nll_loss": _unsupported("poisson_nll_loss: mlx.nn.losses has no Poisson negative log-likelihood"),
    "ctc_loss": _unsupported("ctc_loss: mlx.nn.losses has no CTC loss"),
    "hinge_embedding_loss": _unsupported(
        "hinge_embedding_loss: mlx.nn.losses.hinge_loss is the SVM hinge max(0, 1 - y x), another loss"
    ),
    "soft_margin_loss": _unsupported("soft_margin_loss: mlx.nn.losses has no soft-margin loss"),
    "multi_margin_loss": _unsupported("multi_margin_loss: mlx.nn.losses has no multi-class margin loss"),
    "multilabel_margin_loss": _unsupported("multilabel_margin_loss: mlx.nn.losses has no multi-label margin loss"),
    "triplet_margin_with_distance_loss": _triplet_margin_with_distance_loss,
}


@lru_cache(maxsize=512)
def _compiled(text: str):
    return compile(text, "<lossconf mlx adapter>", "exec")


class _Program:
    """Source lines computing ``out`` from arrays named as the spec's parameters."""

    def __init__(self, lines: list[str], arrays: dict[str, np.ndarray]) -> None:
        self.lines = lines
        self.text = "\n".join(lines) + "\n"
        self.arrays = arrays

    def run(self, values: Mapping[str, mx.array]) -> mx.array:
        namespace: dict[str, Any] = {"mx": mx, "nn": nn, **values}
        exec(_compiled(self.text), namespace)
        return namespace["out"]


def _arrays(arguments: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name in ARRAY_PARAMETERS:
        value = arguments.get(name)
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)
            if not (is_floating(array.dtype) or array.dtype.kind in "iub"):
                raise TypeError(f"{name}: expected a floating or integer array, got dtype {array.dtype}")
            arrays[name] = array
    return arrays


class MlxLosses(SpecFunctions):
    """The spec's functions through ``mlx.nn.losses``, evaluated eagerly on one MLX device."""

    name: ClassVar[str] = "mlx"
    version: ClassVar[str] = mx.__version__

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={str(self.device)!r})"

    def plan(self, fn_name: str, arguments: Mapping[str, Any]) -> _Program:
        """The program for this call: its source lines and the arrays it reads."""
        arguments = {k: v for k, v in arguments.items() if k != "self"}
        if fn_name not in _PROGRAMS:
            raise ValueError(f"{fn_name!r} is not a spec function")
        lines = _PROGRAMS[fn_name](arguments)
        return _Program(lines, _arrays(arguments))

    def _forward(self, fn_name: str, arguments: dict[str, object]) -> np.ndarray:
        program = self.plan(fn_name, arguments)
        with self._lock, mx.stream(self.device):
            out = program.run({k: to_mx(v) for k, v in program.arrays.items()})
            mx.eval(out)
            return to_numpy(out)

    def grad(
        self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any], wrt: str = "input"
    ) -> np.ndarray:
        """Gradient of ``fn_name(*args, **kwargs).sum()`` w.r.t. ``wrt``, by ``mx.grad``.

        The same program as the value, in the case's dtype; returned in ``wrt``'s dtype.
        """
        program = self.plan(fn_name, self._bind(fn_name, args, kwargs))
        if wrt not in program.arrays:
            raise ValueError(f"{fn_name}: no array argument {wrt!r} to differentiate")
        if not is_floating(program.arrays[wrt].dtype):
            raise ValueError(f"{fn_name}: argument {wrt!r} is not a floating array")
        with self._lock, mx.stream(self.device):
            values = {k: to_mx(v) for k, v in program.arrays.items()}

            def total(x: mx.array) -> mx.array:
                return mx.sum(program.run({**values, wrt: x}))

            gradient = mx.grad(total)(values[wrt])
            mx.eval(gradient)
            return to_numpy(gradient)

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """The MLX lines that ran, after exact array literals; prints the output."""
        try:
            program = self.plan(fn_name, self._bind(fn_name, args, kwargs))
        except (NotImplementedError, ValueError, TypeError, MlxCrash) as error:
            return f"# the mlx adapter refuses this call before running MLX: {error}\n"
        lines = ["import mlx.core as mx", "import mlx.nn as nn", "import numpy as np", ""]
        lines += [f"{name} = {array_source(array)}" for name, array in program.arrays.items()]
        lines += ["", *program.lines, "print(out.dtype, out.tolist())"]
        return "\n".join(lines) + "\n"


# -- the option table ---------------------------------------------------------------

from .options import SPEC_OPTIONS  # noqa: E402  (the option names, for unsupported losses)

_NATIVE_REDUCTIONS = {
    "reduction='none'": ("native", "reduction='none'"),
    "reduction='mean'": ("native", "reduction='mean' (mx.mean)"),
    "reduction='sum'": ("native", "reduction='sum'"),
}
_COMPOSED_REDUCTIONS = {
    "reduction='none'": ("composed", "the elementwise losses"),
    "reduction='mean'": ("composed", "mx.mean(losses)"),
    "reduction='sum'": ("composed", "mx.sum(losses)"),
}
_LEGACY = ("unsupported", "MLX has no size_average/reduce: NotImplementedError")
_CLASS_INDEX_REDUCTIONS = {
    **_NATIVE_REDUCTIONS,
    "reduction='mean'": ("native", "reduction='mean'; with weight or ignore_index: mx.sum(losses) / mx.sum(w or keep)"),
}


def _all_unsupported(loss: str, reason: str) -> dict[str, tuple[str, str]]:
    return {o: ("unsupported", reason) for o in ("(function)", *SPEC_OPTIONS[loss])}


#: How each spec option reaches MLX (docs/options.md; format in adapters/options.py).
OPTION_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "cross_entropy": {
        "(function)": ("native", _NL + ".cross_entropy(logits, targets, axis=1)"),
        "class-index target": ("native", "integer targets"),
        "probability target": ("native", "targets of the logits' shape"),
        "(N, C, d1..dK) input": ("native", "axis=1"),
        "weight": ("composed", "weights=mx.take(weight, target) (per position); not with probabilities or smoothing"),
        "ignore_index": ("composed", "mx.where(target != ignore_index, loss, 0), index made safe the same way"),
        "label_smoothing": ("native", "label_smoothing="),
        **_CLASS_INDEX_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "nll_loss": {
        "(function)": ("native", _NL + ".nll_loss(inputs, targets, axis=1)"),
        "class-index target": ("native", "integer targets"),
        "(N, C, d1..dK) input": ("native", "axis=1"),
        "weight": ("composed", "mx.take(weight, target) * loss (nll_loss has no weights=)"),
        "ignore_index": ("composed", "mx.where(target != ignore_index, loss, 0)"),
        **_CLASS_INDEX_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy": {
        "(function)": ("native", _NL + ".binary_cross_entropy(inputs, targets, with_logits=False)"),
        "weight": ("native", "weights=mx.broadcast_to(weight, input.shape)"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy_with_logits": {
        "(function)": ("native", _NL + ".binary_cross_entropy(inputs, targets) (with_logits=True)"),
        "weight": ("native", "weights=mx.broadcast_to(weight, input.shape)"),
        "pos_weight": ("unsupported", "MLX has no positive-class weight: NotImplementedError"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "kl_div": {
        "(function)": ("native", _NL + ".kl_div_loss(inputs, targets): log-space targets only"),
        "log_target": ("native", "always: sum(exp(targets) * (targets - inputs)); log_target=False unsupported"),
        "reduction='none'": ("native", "on x[..., None] with axis=-1: the pointwise terms"),
        "reduction='mean'": ("native", "reduction='mean' of the pointwise terms"),
        "reduction='sum'": ("native", "reduction='sum'"),
        "reduction='batchmean'": ("composed", "reduction='sum' / input.shape[0]"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "softmax": {"(function)": ("native", "mx.softmax"), "dim": ("native", "axis=dim")},
    "log_softmax": {"(function)": ("native", "nn.log_softmax"), "dim": ("native", "axis=dim")},
    "sigmoid": {"(function)": ("native", "mx.sigmoid")},
    "l1_loss": {
        "(function)": ("native", _NL + ".l1_loss"),
        "weight": ("composed", "l1_loss(reduction='none') * weight; mean mx.sum(losses) / mx.sum(weight), as PyTorch"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "mse_loss": {
        "(function)": ("native", _NL + ".mse_loss"),
        "weight": ("composed", "mse_loss(reduction='none') * weight; mean mx.sum(losses) / mx.sum(weight), as PyTorch"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "huber_loss": {
        "(function)": ("native", _NL + ".huber_loss(inputs, targets, delta=delta)"),
        "delta": ("native", "delta="),
        "weight": ("composed", "huber_loss(reduction='none') * weight; mean over all elements, as PyTorch"),
        **_NATIVE_REDUCTIONS,
    },
    "smooth_l1_loss": {
        "(function)": ("native", _NL + ".smooth_l1_loss(predictions, targets, beta=beta)"),
        "beta": ("native", "beta="),
        "beta=0": ("native", "beta=0 (the |d| - 0.5 beta branch everywhere)"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "gaussian_nll_loss": {
        "(function)": ("native", _NL + ".gaussian_nll_loss(inputs, targets, vars, full=, eps=)"),
        "var of input's shape": ("native", "vars=var"),
        "var one dimension short": ("composed", "mx.broadcast_to(var[..., None], input.shape) (MLX wants input's shape)"),
        "var with a dimension 1": ("composed", "mx.broadcast_to(var, input.shape)"),
        "var as a float": ("composed", "mx.full(input.shape, var, dtype=input.dtype)"),
        "full": ("native", "full="),
        "eps": ("native", "eps= (mx.maximum(vars, eps))"),
        **_NATIVE_REDUCTIONS,
    },
    "poisson_nll_loss": _all_unsupported("poisson_nll_loss", "mlx.nn.losses has no Poisson NLL: NotImplementedError"),
    "ctc_loss": _all_unsupported("ctc_loss", "mlx.nn.losses has no CTC loss: NotImplementedError"),
    "margin_ranking_loss": {
        "(function)": ("native", _NL + ".margin_ranking_loss(inputs1, inputs2, targets, margin=)"),
        "margin": ("native", "margin="),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "hinge_embedding_loss": _all_unsupported(
        "hinge_embedding_loss", "nn.losses.hinge_loss is the SVM hinge max(0, 1 - y x), another loss: NotImplementedError"
    ),
    "soft_margin_loss": _all_unsupported("soft_margin_loss", "mlx.nn.losses has none: NotImplementedError"),
    "multilabel_soft_margin_loss": {
        "(function)": ("composed", "mx.mean(nn.losses.binary_cross_entropy(input, target, reduction='none'), axis=-1)"),
        "(C) input": ("composed", "the same on a rank-1 input"),
        "weight": ("composed", "terms * weight before the class mean"),
        **_COMPOSED_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multi_margin_loss": _all_unsupported("multi_margin_loss", "mlx.nn.losses has none: NotImplementedError"),
    "multilabel_margin_loss": _all_unsupported("multilabel_margin_loss", "mlx.nn.losses has none: NotImplementedError"),
    "cosine_embedding_loss": {
        "(function)": ("composed", _NL + ".cosine_similarity_loss(x1, x2, axis=-1) (the cosine), mx.where branches"),
        "(D) input": ("composed", "axis=-1"),
        "margin": ("composed", "mx.maximum(cos - margin, 0)"),
        "zero vector": ("native", "the cosine divides by max(|x1| |x2|, 1e-8): 0"),
        **_COMPOSED_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_loss": {
        "(function)": ("native", _NL + ".triplet_loss(anchors, positives, negatives, axis=-1, p=, margin=, eps=)"),
        "(D) input": ("native", "axis=-1"),
        "margin": ("native", "margin="),
        "p": ("native", "p="),
        "eps": ("native", "eps= (added to the sum of powers, see expectations)"),
        "swap": ("unsupported", "triplet_loss has no swap: NotImplementedError"),
        **_NATIVE_REDUCTIONS,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_with_distance_loss": {
        "(function)": ("composed", "mx.maximum(margin + d(a, p) - d(a, n), 0) with a named distance"),
        "(D) input": ("composed", "axis=-1"),
        "distance_function=None": ("composed", "mx.linalg.norm(a - b + 1e-06, axis=-1)"),
        "distance_function='l1'": ("composed", "mx.linalg.norm(a - b + 1e-06, ord=1, axis=-1)"),
        "distance_function='cosine'": ("composed", "1 - nn.losses.cosine_similarity_loss(a, b, axis=-1)"),
        "margin": ("composed", "a literal"),
        "swap": ("composed", "mx.minimum(d_an, d_pn)"),
        **_COMPOSED_REDUCTIONS,
    },
}


def create(*, device: str = "cpu") -> MlxLosses:
    """The ``mlx`` adapter on ``device`` (AdapterUnavailableError if MLX has no such device)."""
    return MlxLosses(device=device)
