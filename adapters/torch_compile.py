"""The ``torch-compile`` adapters: ``torch.nn.functional``'s calls compiled by ``torch.compile``.

The same calls as the ``torch`` adapter, each wrapped in ``torch.compile`` with the
Inductor backend (C++/OpenMP code generation on CPU): Dynamo traces the call, AOTAutograd
derives and compiles the backward, and Inductor lowers both through its own
decompositions of the aten ops (``log_softmax``, the fused reductions, BCE...) into new
kernels. That is a different implementation of each loss than eager PyTorch's kernels,
and the one a ``torch.compile``'d training step runs.

Two built-in names, one class:

``torch-compile``
    ``dynamic=False``: every distinct shape (and every distinct static argument) is its
    own specialized graph and kernel, as a user gets with fixed batch shapes.
``torch-compile-dynamic``
    ``dynamic=True``: shapes are symbolic from the first compilation, so one graph serves
    many shapes (except Dynamo's 0/1 size specialization); the kernels index and reduce
    with run-time sizes, a different code path from the static one.

They are two adapters rather than an option of one so that a single run reports both
side by side, each with its own verdicts (the adapter contract's factory takes only a
device).

Cost. A compilation costs seconds of CPU (measured figures: README "torch.compile"), and
the conformance run generates many shapes. So the adapter keeps one compiled callable per
(function, which arguments are tensors, the non-tensor arguments' values); Dynamo keeps
one specialized graph per shape inside it. Every callable gets its own code object, so
Dynamo's per-code-object recompile limit counts that callable's shapes only, and the limit
is raised (``_RECOMPILE_LIMIT``) with ``fail_on_recompile_limit_hit``: Dynamo never
silently falls back to running the call eagerly, which would test eager PyTorch under this
adapter's name. ``fullgraph=True`` makes a graph break an error for the same reason. These
Dynamo settings are applied with ``torch._dynamo.config.patch`` around each call only,
never globally. Inductor's FX graph cache (on by default, in ``TORCHINDUCTOR_CACHE_DIR``,
default ``/tmp/torchinductor_<user>``) makes a repeated run's compilations cache hits.

Errors. An exception raised inside the traced call (a bad argument) reaches the caller
wrapped in Dynamo's own exception types; the adapter re-raises the original exception
when Dynamo kept it (``NotImplementedError`` for a dtype without a kernel then still means
*unsupported*), else Dynamo's. An operator whose output shape depends on its input values
(FakeTensor's ``DynamicOutputShapeException``: ``aten._ctc_loss``, so every
``F.ctc_loss`` call) cannot be captured in one graph: with ``fullgraph=True`` Dynamo raises
("Dynamic shape operator"), and without it the call would run eagerly, which is not this
adapter's implementation. So that is *unsupported* (``NotImplementedError`` naming the
operator), not a verdict on the loss: the function's row of the option table says so.
Likewise ``F.gaussian_nll_loss``, whose Python checks ``torch.any(var < 0)`` before the
loss: a branch on a tensor's value, which ``fullgraph=True`` cannot trace (Dynamo raises
``GuardOnDataDependentSymNode``; with ``dynamic=True`` some shapes a ``TypeError`` on a
``SymBool``); without ``fullgraph`` the check would run eagerly and the loss in a second
graph. The adapter declares it unsupported up front (``_UNCAPTURABLE``); the tests re-check
that ``torch.compile(fullgraph=True)`` still fails on it.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Callable
from typing import Any

import torch
import torch._dynamo

from ._repro import call_source
from ._torch_base import TORCH_DISTANCES, TorchAdapter, _torch_option_table, torch_distance
from .errors import AdapterUnavailableError
from .torch_functional import _FUNCTIONS

#: Dynamo's per-code-object recompile limit inside the adapter (default 8). Each compiled
#: callable of the adapter compiles once per distinct input shape (dtype, and grad mode);
#: a run feeds one callable a few hundred shapes at most, so this is never reached in
#: practice, and reaching it raises (``fail_on_recompile_limit_hit``) instead of running
#: the call eagerly.
_RECOMPILE_LIMIT = 100_000

#: The distance functions of ``triplet_margin_with_distance_loss``, built once so that
#: the same name is the same object (a compiled callable's cache key and Dynamo's guard).
_DISTANCES: dict[str, Callable[..., torch.Tensor]] = {
    name: torch_distance(name) for name in TORCH_DISTANCES
}


#: Functions ``torch.compile(fullgraph=True)`` cannot capture in one graph, and why
#: (module docstring, "Errors"); re-checked by tests/test_adapter_torch_compile.py.
_UNCAPTURABLE: dict[str, str] = {
    "gaussian_nll_loss": (
        "F.gaussian_nll_loss branches on torch.any(var < 0) in Python, which "
        "torch.compile(fullgraph=True) cannot trace (GuardOnDataDependentSymNode)"
    ),
}


def _dynamo_settings():
    return torch._dynamo.config.patch(
        recompile_limit=_RECOMPILE_LIMIT,
        accumulated_recompile_limit=_RECOMPILE_LIMIT,
        fail_on_recompile_limit_hit=True,
    )


def _require_cpp_compiler(adapter_name: str) -> None:
    """Inductor's CPU backend compiles C++: without a compiler the adapter cannot run here."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AdapterUnavailableError(
            f"adapter {adapter_name!r} needs a C++ compiler for Inductor's CPU kernels "
            f"({reason}): install g++ (apt-get install g++) or set CXX"
        ) from None


#: What an argument check of the traced call raises (eager PyTorch raises the same); any
#: other exception Dynamo wrapped is Dynamo's own failure and is re-raised as Dynamo's.
_ARGUMENT_ERRORS = (ValueError, TypeError, IndexError, RuntimeError, NotImplementedError)


def _dynamic_output_shape(error: BaseException) -> BaseException | None:
    """The ``DynamicOutputShapeException`` in ``error``'s chain (Dynamo wraps it), if any."""
    from torch._subclasses.fake_tensor import DynamicOutputShapeException

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DynamicOutputShapeException):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _original_error(error: Exception) -> BaseException:
    """The user-level exception Dynamo wrapped, else ``error``.

    Dynamo re-raises an error of the traced call as its own ``TorchRuntimeError`` (``from
    None``, keeping the chain in ``__context__``) or ``Unsupported`` (``from`` the error):
    follow ``__cause__``, then ``__context__``, through Dynamo's exception types.
    """
    seen: BaseException | None = error
    while isinstance(seen, torch._dynamo.exc.TorchDynamoException):
        seen = seen.__cause__ or seen.__context__
    return seen if isinstance(seen, _ARGUMENT_ERRORS) else error


def _key(value: object) -> object:
    """A hashable cache key for a non-tensor argument (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(v) for v in value))
    if callable(value):
        return ("callable", id(value))
    return (type(value).__name__, value)


class TorchCompile(TorchAdapter):
    """The spec's functions, each ``torch.compile(F.<loss>)`` (Inductor) over the case's shapes."""

    name = "torch-compile"
    dynamic = False
    #: A fifth of the profile's generated examples (README "torch.compile": each new shape
    #: or option value is a compilation of ~1-3 s CPU; the default profile's 25 would be hours).
    examples_scale = 0.2

    def __init__(self, *, device: str | torch.device = "cpu") -> None:
        super().__init__(device=device)
        if self.device.type == "cpu":
            _require_cpp_compiler(self.name)
        self._compiled: dict[tuple, Callable[..., torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={str(self.device)!r}, dynamic={self.dynamic})"

    @property
    def compiled_callables(self) -> int:
        """How many compiled callables the adapter holds (one per function and static arguments)."""
        return len(self._compiled)

    def _prepare(self, fn_name, arguments):
        positional, options = super()._prepare(fn_name, arguments)
        if options.get("distance_function") is not None:
            options["distance_function"] = _DISTANCES[str(arguments["distance_function"])]
        return positional, options

    def _invoke(self, fn_name: str, positional: list[Any], options: dict[str, Any]) -> torch.Tensor:
        if fn_name in _UNCAPTURABLE:
            raise NotImplementedError(f"{fn_name}: {_UNCAPTURABLE[fn_name]}")
        slots = [i for i, v in enumerate(positional) if isinstance(v, torch.Tensor)]
        names = sorted(k for k, v in options.items() if isinstance(v, torch.Tensor))
        static_positional = [None if i in slots else v for i, v in enumerate(positional)]
        static_options = {k: v for k, v in options.items() if k not in names}
        key = (
            fn_name,
            tuple(slots),
            tuple(names),
            tuple(_key(v) for v in static_positional),
            tuple(sorted((k, _key(v)) for k, v in static_options.items())),
        )
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(fn_name, slots, names, static_positional, static_options)
            self._compiled[key] = compiled
        tensors = [positional[i] for i in slots] + [options[k] for k in names]
        with _dynamo_settings():
            try:
                return compiled(*tensors)
            except torch._dynamo.exc.TorchDynamoException as error:
                if (dynamic := _dynamic_output_shape(error)) is not None:
                    raise NotImplementedError(
                        f"{fn_name}: torch.compile(fullgraph=True) cannot capture {dynamic} (an "
                        "operator with a data-dependent output shape; without fullgraph it would "
                        "run eagerly)"
                    ) from error
                original = _original_error(error)
                if original is error:
                    raise
                raise original from error

    def _compile(self, fn_name, slots, names, static_positional, static_options):
        function, _ = _FUNCTIONS[fn_name]

        def call(*tensors):
            arguments = list(static_positional)
            for i, tensor in zip(slots, tensors):
                arguments[i] = tensor
            keywords = dict(static_options)
            keywords.update(zip(names, tensors[len(slots):]))
            return function(*arguments, **keywords)

        # A code object of its own: Dynamo's cache (and recompile limit) is per code object.
        call.__code__ = call.__code__.replace(co_name=f"lossconf_{fn_name}")
        functools.update_wrapper(call, function, assigned=("__doc__",))
        return torch.compile(call, backend="inductor", dynamic=self.dynamic, fullgraph=True)

    # -- repro snippets ---------------------------------------------------------------

    def _repro_imports(self, fn_name: str) -> list[str]:
        _, spelling = _FUNCTIONS[fn_name]
        return ["import torch.nn.functional as F"] if spelling.startswith("F.") else []

    def _call_lines(
        self, fn_name: str, positional: list[str], keywords: dict[str, str]
    ) -> list[str]:
        """``torch.compile`` of a lambda over the array arguments, the rest as constants."""
        _, spelling = _FUNCTIONS[fn_name]
        parameters = [s for s in positional if s.isidentifier() and not keyword.iskeyword(s)]
        parameters += [k for k, s in keywords.items() if s == k]
        body = call_source(spelling, positional, keywords)
        return [
            f"fn = torch.compile(lambda {', '.join(parameters)}: {body}, "
            f"backend='inductor', dynamic={self.dynamic}, fullgraph=True)",
            f"out = fn({', '.join(parameters)})",
        ]


class TorchCompileDynamic(TorchCompile):
    """As :class:`TorchCompile`, with symbolic shapes (``dynamic=True``)."""

    name = "torch-compile-dynamic"
    dynamic = True


#: Every option native: the same ``torch.nn.functional`` calls, compiled (docs/options.md);
#: except ``ctc_loss`` and ``gaussian_nll_loss``, which Dynamo cannot capture in one graph
#: (module docstring, "Errors").
OPTION_TABLE = _torch_option_table("torch.compile(torch.nn.functional.{loss})")
_CTC_REASON = (
    "torch.compile(torch.nn.functional.ctc_loss): aten._ctc_loss has a data-dependent output "
    "shape, so with fullgraph=True Dynamo raises (Dynamic shape operator; pytorch/pytorch#183396): "
    "NotImplementedError"
)
OPTION_TABLE["ctc_loss"] = {option: ("unsupported", _CTC_REASON) for option in OPTION_TABLE["ctc_loss"]}
_GAUSSIAN_REASON = f"torch.compile(torch.nn.functional.gaussian_nll_loss): {_UNCAPTURABLE['gaussian_nll_loss']}: NotImplementedError"
OPTION_TABLE["gaussian_nll_loss"] = {
    option: ("unsupported", _GAUSSIAN_REASON) for option in OPTION_TABLE["gaussian_nll_loss"]
}


def create(*, device: str = "cpu") -> TorchCompile:
    """The ``torch-compile`` adapter (``dynamic=False``) on ``device``."""
    return TorchCompile(device=device)
