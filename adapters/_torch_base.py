"""Shared machinery of the two PyTorch adapters (functional and ``torch.nn``).

Both expose the spec's functions with ``torch.nn.functional``'s exact names,
parameters and defaults; they differ only in *which* torch entry point a call
reaches. So this base class owns everything else once: binding a call to the
spec's signature, exact NumPy<->tensor conversion on the chosen device, the
forward pass under ``torch.no_grad()``, gradients through autograd, and repro
snippets. A subclass supplies the hooks ``_invoke`` (run one call in torch)
and ``_call_lines``/``_repro_imports`` (the same call as source text).

Arguments are passed through as given, in the case's dtype, so the framework's
own dtype handling and argument checks are what the suite observes. The one
exception: the legacy ``size_average``/``reduce`` arguments are passed only when
not None, their default, so that torch's deprecation warning appears exactly
when a case exercises them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from ._convert import to_numpy, to_tensor, torch_dtype
from ._repro import is_bfloat16, reshape_suffix, scalar_literal, values_literal
from ._spec import SPEC_FUNCTIONS as POSITIONAL
from ._spec_methods import SpecFunctions
from .errors import AdapterError, AdapterUnavailableError

#: Parameters that hold arrays: converted to tensors on the adapter's device.
ARRAY_PARAMETERS = frozenset({"input", "target", "weight", "pos_weight"})

#: Deprecated reduction arguments, passed on only when not None (their default).
LEGACY_REDUCTION_PARAMETERS = frozenset({"size_average", "reduce"})


#: ``triplet_margin_with_distance_loss``'s named distance functions (oracle/embedding.py,
#: DISTANCE_FUNCTIONS) as the torch source a user writes; the callable is built from it.
TORCH_DISTANCES: dict[str, str] = {
    "pairwise_distance": "torch.nn.functional.pairwise_distance",
    "l1": "lambda x, y: torch.nn.functional.pairwise_distance(x, y, p=1)",
    "cosine": "lambda x, y: 1.0 - torch.nn.functional.cosine_similarity(x, y, dim=-1)",
}


def torch_distance(name: object):
    """The callable for a named distance function; ``None`` stays None (torch's default)."""
    if name is None:
        return None
    if name not in TORCH_DISTANCES:
        raise ValueError(f"unknown distance_function {name!r}: expected one of {', '.join(TORCH_DISTANCES)} or None")
    return eval(TORCH_DISTANCES[str(name)], {"torch": torch})  # our own fixed source text above


def resolve_device(adapter_name: str, device: str | torch.device) -> torch.device:
    """The torch device named by ``device``, checked to be usable here.

    Raises AdapterUnavailableError (the suite skips) when the device exists in
    principle but not in this environment, e.g. ``"cuda"`` on a CPU-only build.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise AdapterError(
            f"adapter {adapter_name!r}: {device!r} is not a PyTorch device ({error}); "
            "use e.g. 'cpu' or 'cuda'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        raise AdapterUnavailableError(
            f"adapter {adapter_name!r} cannot run on device {str(device)!r}: CUDA is not "
            f"available to PyTorch {torch.__version__} ({build}, no usable GPU); "
            "use device 'cpu' or install a CUDA build of PyTorch on a machine with a GPU"
        )
    try:
        torch.empty(1, device=resolved)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AdapterUnavailableError(
            f"adapter {adapter_name!r} cannot allocate on device {str(device)!r}: {reason}"
        ) from None
    return resolved


def tensor_source(array: np.ndarray, device: torch.device) -> str:
    """A torch expression rebuilding ``array`` exactly (values, dtype, shape) on ``device``."""
    array = np.asarray(array)
    on_device = "" if device.type == "cpu" else f", device={str(device)!r}"
    values = values_literal(array)
    if is_bfloat16(array.dtype):
        expr = f"torch.tensor({values}, dtype=torch.float32{on_device}).to(torch.bfloat16)"
    else:
        expr = f"torch.tensor({values}, dtype={torch_dtype(array.dtype)}{on_device})"
    return expr + reshape_suffix(array.shape)


def _is_default(value: object, default: object) -> bool:
    return (
        default is not inspect.Parameter.empty and type(value) is type(default) and value == default
    )


def _plain(value: object) -> object:
    """NumPy scalars as Python scalars (exact), for torch's scalar parameters."""
    return value.item() if isinstance(value, np.generic) else value


class TorchAdapter(SpecFunctions):
    """Base of the torch adapters: the spec's functions over one torch device."""

    name: ClassVar[str]
    version: ClassVar[str] = str(torch.__version__)

    def __init__(self, *, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(self.name, device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={str(self.device)!r})"

    # -- gradients and repro snippets --------------------------------------------

    def grad(
        self,
        fn_name: str,
        args: Mapping[str, object],
        kwargs: Mapping[str, Any],
        wrt: str = "input",
    ) -> np.ndarray:
        """Gradient of ``fn_name(*args, **kwargs).sum()`` w.r.t. argument ``wrt``.

        Computed by torch's autograd in the case's dtype; returned in the dtype
        of that argument. One torch cannot differentiate by, or that autograd
        does not connect to the output (``.grad`` stays None), raises
        NotImplementedError -- unsupported, never a silent zero gradient.
        """
        arguments = self._bind(fn_name, args, kwargs)
        if arguments.get(wrt) is None:
            raise ValueError(f"{fn_name}: no array argument {wrt!r} to differentiate")
        positional, options = self._prepare(fn_name, arguments)
        names = POSITIONAL[fn_name]
        variable = positional[names.index(wrt)] if wrt in names else options[wrt]
        if not (isinstance(variable, torch.Tensor) and variable.is_floating_point()):
            raise ValueError(f"{fn_name}: argument {wrt!r} is not a floating array")
        variable.requires_grad_(True)
        with torch.enable_grad():
            try:
                self._invoke(fn_name, positional, options).sum().backward()
            except RuntimeError as error:
                # torch has no derivative for some arguments (e.g. every loss's
                # ``weight``): that gradient is unsupported, not a failure
                if "is not differentiable with respect to argument" in str(error):
                    raise NotImplementedError(str(error).splitlines()[0]) from error
                raise
        if variable.grad is None:
            raise NotImplementedError(
                f"{fn_name}: autograd does not connect {wrt!r} to the output (.grad is None): "
                "not differentiated"
            )
        return to_numpy(variable.grad)

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """A torch snippet reproducing the call, with every array written exactly.

        Options equal to torch's defaults are left out (the call is the same);
        the snippet ends by printing the output's exact values.
        """
        arguments = self._bind(fn_name, args, kwargs)
        defaults = {
            name: parameter.default
            for name, parameter in self._signature(fn_name).parameters.items()
        }
        names = POSITIONAL[fn_name]
        lines = ["import torch", *self._repro_imports(fn_name)]
        positional: list[str] = []
        keywords: dict[str, str] = {}
        for name, value in arguments.items():
            if self._is_array_argument(name, value):
                lines.append(f"{name} = {tensor_source(np.asarray(value), self.device)}")
                source = name
            elif name == "distance_function" and value is not None:
                source = TORCH_DISTANCES[str(value)]
            elif name in names or not _is_default(_plain(value), defaults[name]):
                source = scalar_literal(value)
            else:
                continue
            if name in names:
                positional.append(source)
            else:
                keywords[name] = source
        lines.extend(self._call_lines(fn_name, positional, keywords))
        lines.append("print(out.dtype, out.tolist())")
        return "\n".join(lines) + "\n"

    # -- the subclass hooks --------------------------------------------------------

    def _invoke(self, fn_name: str, positional: list[Any], options: dict[str, Any]) -> torch.Tensor:
        """Run one call in torch on already-converted arguments."""
        raise NotImplementedError

    def _repro_imports(self, fn_name: str) -> list[str]:
        """Import lines a repro snippet of ``fn_name`` needs after ``import torch``."""
        return []

    def _call_lines(
        self, fn_name: str, positional: list[str], keywords: dict[str, str]
    ) -> list[str]:
        """Source lines that make the same call and bind its result to ``out``."""
        raise NotImplementedError

    # -- internals -------------------------------------------------------------------

    def _forward(self, fn_name: str, arguments: dict[str, object]) -> np.ndarray:
        positional, options = self._prepare(fn_name, arguments)
        with torch.no_grad():
            return to_numpy(self._invoke(fn_name, positional, options))

    @staticmethod
    def _is_array_argument(name: str, value: object) -> bool:
        if value is None or name in LEGACY_REDUCTION_PARAMETERS:
            return False
        return name in ARRAY_PARAMETERS or isinstance(value, np.ndarray)

    def _prepare(
        self, fn_name: str, arguments: dict[str, object]
    ) -> tuple[list[Any], dict[str, Any]]:
        """Tensors on the device for arrays, Python scalars for the rest, split positional/options."""
        converted: dict[str, Any] = {}
        for name, value in arguments.items():
            if name in LEGACY_REDUCTION_PARAMETERS and value is None:
                continue
            if self._is_array_argument(name, value):
                converted[name] = to_tensor(np.asarray(value), self.device)
            elif name == "distance_function":
                converted[name] = torch_distance(value)
            else:
                converted[name] = _plain(value)
        positional = [converted.pop(name) for name in POSITIONAL[fn_name]]
        return positional, converted


def _torch_option_table(api: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Every spec option is native in PyTorch: ``api`` names the entry point used."""
    from .options import SPEC_OPTIONS

    table: dict[str, dict[str, tuple[str, str]]] = {}
    for loss, options in SPEC_OPTIONS.items():
        entry = api.format(loss=loss)
        table[loss] = {"(function)": ("native", entry)}
        table[loss].update({option: ("native", "") for option in options})
    return table
