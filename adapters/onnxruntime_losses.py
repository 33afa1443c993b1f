"""The ``onnxruntime`` adapter: ONNX's own loss and activation operators, run by ONNX Runtime.

Each spec call is a one-node ONNX model (``adapters/_onnx_models.py``) built with
``onnx.helper`` and run by ``onnxruntime`` on its ``CPUExecutionProvider``:

* ``cross_entropy`` (class indices) -> ``SoftmaxCrossEntropyLoss(scores, labels[, weights])``
* ``nll_loss`` -> ``NegativeLogLikelihoodLoss(input, target[, weight])``
* ``softmax`` / ``log_softmax`` -> ``Softmax`` / ``LogSoftmax`` with ``axis=dim``
* ``sigmoid`` -> ``Sigmoid``

``reduction`` and ``ignore_index`` are the operators' attributes (``ignore_index`` is
always set, to the spec's value, default -100), ``weight`` their optional third input.
These are all of ONNX's loss-shaped operators: ``onnx.defs.get_all_schemas()`` (onnx
1.23, every domain) has no other loss, and nothing here composes a loss out of
primitive operators -- that would test our composition, not ONNX's. Every other spec
function, probability targets and ``label_smoothing`` (which neither operator takes)
and the legacy ``size_average``/``reduce`` raise ``NotImplementedError``: unsupported.
The spec's unbatched ``(C)`` input (the operators want ``(N, C, ...)``) runs as
``(1, C)`` with the target as ``(1,)``, the way an ONNX user feeds one sample.

Dtypes. ``SoftmaxCrossEntropyLoss`` and ``NegativeLogLikelihoodLoss`` have no kernels
of their own in ONNX Runtime: they are ONNX *functions*, which the runtime inlines
into ONNX's own decomposition (``LogSoftmax``/``GatherElements``/``Where``/``ReduceSum``
...). The CPU provider registers float32 and float64 kernels for these operators and
no float16 ones: float16 models run through ONNX Runtime's ``InsertCastTransformer``,
which computes the float16 nodes in float32 between ``Cast`` nodes (the output is
float16). bfloat16 has no CPU kernels at all (session creation fails with
NOT_IMPLEMENTED / INVALID_GRAPH), so bfloat16 is unsupported (NotImplementedError).

No gradients: the ``onnxruntime`` package is inference-only (``onnxruntime-training``
is another package), so the adapter defines no ``grad`` and the suite runs no gradient
tests for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from ._onnx_models import IMPORTS, NodeModel
from ._repro import BFLOAT16, numpy_array_expr
from ._spec_methods import SpecFunctions
from .errors import AdapterUnavailableError

LEGACY_REDUCTION_PARAMETERS = ("size_average", "reduce")

#: The dtypes ONNX Runtime's CPU provider runs these operators in (module docstring).
SUPPORTED_DTYPES = ("float16", "float32", "float64")

#: Sessions kept per adapter, keyed by operator, dtypes, ranks and attributes (each
#: distinct ignore_index is its own session); the oldest is dropped beyond this.
_MAX_SESSIONS = 128

_OPERATORS = {
    "cross_entropy": "SoftmaxCrossEntropyLoss",
    "nll_loss": "NegativeLogLikelihoodLoss",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "sigmoid": "Sigmoid",
}

_NAMESPACE = {"np": np, "onnx": onnx, "ort": ort, "TensorProto": TensorProto, "helper": helper}


def _float_dtype(fn_name: str, name: str, value: object) -> str:
    """The dtype name of a floating argument; NotImplementedError for bfloat16."""
    dtype = np.asarray(value).dtype
    if dtype == BFLOAT16:
        raise NotImplementedError(
            f"{fn_name}: bfloat16 is unsupported: ONNX Runtime's CPUExecutionProvider has no "
            f"bfloat16 kernel for {_OPERATORS[fn_name]} (session creation fails)"
        )
    if dtype.name not in SUPPORTED_DTYPES:
        raise TypeError(f"{fn_name}: {name} must be float16, float32 or float64, got {dtype}")
    return dtype.name


class _Plan:
    """What one call runs: the model, its feeds, and how the output maps back."""

    def __init__(self, model: NodeModel, feeds: dict[str, np.ndarray], unbatched: bool) -> None:
        self.model, self.feeds, self.unbatched = model, feeds, unbatched

    def finish(self, output: np.ndarray) -> np.ndarray:
        """The spec's output: the unbatched call's ``(1,)`` per-sample loss back to 0-d."""
        output = np.asarray(output)
        return output.reshape(()) if self.unbatched and output.ndim == 1 else output


def _class_index_plan(fn_name: str, arguments: Mapping[str, Any]) -> _Plan:
    x, target = np.asarray(arguments["input"]), np.asarray(arguments["target"])
    if target.dtype.kind not in "iu":
        raise NotImplementedError(
            f"{fn_name}: class-probability targets are unsupported: {_OPERATORS[fn_name]} "
            "takes class indices only"
        )
    if fn_name == "cross_entropy" and float(arguments["label_smoothing"]) != 0.0:
        raise NotImplementedError(
            "cross_entropy: label_smoothing is unsupported: SoftmaxCrossEntropyLoss has no such attribute"
        )
    dtype = _float_dtype(fn_name, "input", x)
    unbatched = x.ndim == 1
    if unbatched:
        x, target = x[np.newaxis], target.reshape(1)
    feeds = {"input": x, "target": target.astype(np.int64)}
    if arguments["weight"] is not None:
        feeds["weight"] = np.asarray(arguments["weight"])
        _float_dtype(fn_name, "weight", feeds["weight"])
    reduction = str(arguments["reduction"])
    model = NodeModel(
        op=_OPERATORS[fn_name],
        inputs=tuple((name, a.dtype.name, a.ndim) for name, a in feeds.items()),
        output=(dtype, target.ndim if reduction == "none" else 0),
        attributes=(("ignore_index", int(arguments["ignore_index"])), ("reduction", reduction)),
    )
    return _Plan(model, feeds, unbatched)


def _activation_plan(fn_name: str, arguments: Mapping[str, Any]) -> _Plan:
    x = np.asarray(arguments["input"])
    dtype = _float_dtype(fn_name, "input", x)
    attributes: tuple[tuple[str, int | str], ...] = ()
    if fn_name != "sigmoid":
        attributes = (("axis", int(arguments["dim"])),)
    model = NodeModel(_OPERATORS[fn_name], (("input", dtype, x.ndim),), (dtype, x.ndim), attributes)
    return _Plan(model, {"input": x}, unbatched=False)


def plan(fn_name: str, arguments: Mapping[str, Any]) -> _Plan:
    """The one-node model for this call, or NotImplementedError when ONNX has none."""
    if fn_name not in _OPERATORS:
        raise NotImplementedError(
            f"{fn_name}: ONNX defines no operator for it (lossconf does not compose losses "
            "out of primitive ONNX operators)"
        )
    for legacy in LEGACY_REDUCTION_PARAMETERS:
        if arguments.get(legacy) is not None:
            raise NotImplementedError(
                f"{legacy}={arguments[legacy]!r}: ONNX's loss operators have no legacy "
                "size_average/reduce (use reduction)"
            )
    if fn_name in ("cross_entropy", "nll_loss"):
        return _class_index_plan(fn_name, arguments)
    return _activation_plan(fn_name, arguments)


class OnnxRuntimeLosses(SpecFunctions):
    """The spec's functions as one-node ONNX models run by ONNX Runtime's CPU provider."""

    name: ClassVar[str] = "onnxruntime"
    version: ClassVar[str] = f"{ort.__version__} (onnx {onnx.__version__})"

    def __init__(self, *, device: str = "cpu") -> None:
        if device != "cpu":
            raise AdapterUnavailableError(
                f"adapter 'onnxruntime' runs on the CPUExecutionProvider only, not on device {device!r}"
            )
        self.device = device
        self._sessions: dict[NodeModel, ort.InferenceSession] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"

    def _forward(self, fn_name: str, arguments: dict[str, object]) -> np.ndarray:
        call = plan(fn_name, arguments)
        (output,) = self.session(call.model).run(None, call.feeds)
        return call.finish(output)

    def session(self, model: NodeModel) -> ort.InferenceSession:
        """The session for ``model``, built from its source text once and then reused."""
        if model not in self._sessions:
            if len(self._sessions) >= _MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            namespace: dict[str, Any] = dict(_NAMESPACE)
            exec(compile(model.source(), "<lossconf onnx model>", "exec"), namespace)
            self._sessions[model] = namespace["session"]
        return self._sessions[model]

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """A script that builds the very model that ran, feeds the case's arrays, prints the output."""
        try:
            call = plan(fn_name, self._bind(fn_name, args, kwargs))
        except (NotImplementedError, ValueError, TypeError) as error:
            return f"# the onnxruntime adapter refuses this call before running ONNX Runtime: {error}\n"
        lines = [*IMPORTS, "", call.model.source()]
        lines += [f"{name} = {numpy_array_expr(array)}" for name, array in call.feeds.items()]
        feeds = ", ".join(f"{name!r}: {name}" for name in call.feeds)
        lines.append(f"(out,) = session.run(None, {{{feeds}}})")
        if call.unbatched:
            lines.append("out = out.reshape(()) if out.ndim == 1 else out  # the spec's (C) input ran as (1, C)")
        lines.append("print(out.dtype, out.tolist())")
        return "\n".join(lines) + "\n"


from .options import SPEC_OPTIONS  # noqa: E402  (the option names, for unsupported losses)

_NO_OPERATOR = "ONNX has no operator for this loss: NotImplementedError"
_LEGACY = ("unsupported", "the ONNX operators take reduction only: NotImplementedError")


def _class_index_options(op: str, input_name: str) -> dict[str, tuple[str, str]]:
    return {
        "class-index target": ("native", f"{op}({input_name}, labels)"),
        "(N, C, d1..dK) input": ("native", "the operator takes (N, C, D1, ..., Dk)"),
        "weight": ("native", "the optional third input (weights)"),
        "ignore_index": ("native", "ignore_index attribute (always set, default -100)"),
        "reduction='none'": ("native", "reduction='none'"),
        "reduction='mean'": ("native", "reduction='mean'"),
        "reduction='sum'": ("native", "reduction='sum'"),
        "size_average/reduce (legacy)": _LEGACY,
    }


#: How each spec option reaches ONNX Runtime (docs/options.md; format in adapters/options.py).
OPTION_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    loss: {o: ("unsupported", _NO_OPERATOR) for o in ("(function)", *options)}
    for loss, options in SPEC_OPTIONS.items()
    if loss not in _OPERATORS
}
OPTION_TABLE.update({
    "cross_entropy": {
        "(function)": ("native", "SoftmaxCrossEntropyLoss (opset 13; a (C) input runs as (1, C))"),
        **_class_index_options("SoftmaxCrossEntropyLoss", "scores"),
        "probability target": ("unsupported", "SoftmaxCrossEntropyLoss takes class indices only"),
        "label_smoothing": ("unsupported", "SoftmaxCrossEntropyLoss has no label smoothing"),
    },
    "nll_loss": {
        "(function)": ("native", "NegativeLogLikelihoodLoss (opset 22; a (C) input runs as (1, C))"),
        **_class_index_options("NegativeLogLikelihoodLoss", "input"),
    },
    "softmax": {"(function)": ("native", "Softmax (opset 13)"), "dim": ("native", "axis=dim")},
    "log_softmax": {"(function)": ("native", "LogSoftmax (opset 13)"), "dim": ("native", "axis=dim")},
    "sigmoid": {"(function)": ("native", "Sigmoid (opset 13)")},
})
OPTION_TABLE = {loss: OPTION_TABLE[loss] for loss in SPEC_OPTIONS}


def create(*, device: str = "cpu") -> OnnxRuntimeLosses:
    """The ``onnxruntime`` adapter (CPUExecutionProvider; AdapterUnavailableError for another device)."""
    return OnnxRuntimeLosses(device=device)
