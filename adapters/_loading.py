"""Choosing the implementation under test: a built-in adapter, or a user's own.

``--adapter torch`` names a built-in adapter; anything else is read as the
import path of an external adapter, ``package.module`` or
``package.module:attr``, which is how a user gates their own implementation.
A built-in adapter module, and any external target that defines
``create(*, device)``, is a *factory*: the adapter is what ``create`` returns.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._repro import numpy_snippet
from ._spec import SPEC_FUNCTIONS
from .errors import AdapterError, AdapterUnavailableError, UnknownAdapterError

#: Built-in adapters: name -> import path of the module whose ``create`` builds it.
BUILTIN_ADAPTERS: dict[str, str] = {
    "torch": "adapters.torch_functional",
    "torch-nn": "adapters.torch_modules",
    "tensorflow": "adapters.tensorflow_losses",
    "jax": "adapters.jax_losses",
    "mlx": "adapters.mlx_losses",
    "torch-compile": "adapters.torch_compile",
    "torch-compile-dynamic": "adapters.torch_compile_dynamic",
    "paddle": "adapters.paddle_losses",
    "onnxruntime": "adapters.onnxruntime_losses",
}


#: Built-ins a run includes only when named with ``--adapter``: each new shape or option
#: value is a compilation (README "torch.compile": ~2 s CPU cold, ~5 s for a gradient), so
#: the default run would take CPU-hours more with them.
OPT_IN_ADAPTERS: frozenset[str] = frozenset({"torch-compile", "torch-compile-dynamic"})


@dataclass(frozen=True)
class _Framework:
    """What a built-in adapter needs installed, and how the user gets it."""

    import_name: str
    display_name: str
    extra: str


_REQUIREMENTS: dict[str, _Framework] = {
    "torch": _Framework("torch", "PyTorch", "torch"),
    "torch-nn": _Framework("torch", "PyTorch", "torch"),
    "tensorflow": _Framework("tensorflow", "TensorFlow", "tensorflow"),
    "jax": _Framework("optax", "JAX and optax", "jax"),
    "mlx": _Framework("mlx", "MLX", "mlx"),
    "torch-compile": _Framework("torch", "PyTorch", "torch-compile"),
    "torch-compile-dynamic": _Framework("torch", "PyTorch", "torch-compile"),
    "paddle": _Framework("paddle", "PaddlePaddle", "paddle"),
    "onnxruntime": _Framework("onnxruntime", "ONNX Runtime and onnx", "onnxruntime"),
}


@dataclass(frozen=True)
class _Access:
    """How a generic repro snippet reaches the implementation.

    ``setup`` are the lines that import it (and call its factory); ``prefix``
    is put before a function's name to call it. When ``prefix`` is None the
    snippet imports the function itself from ``module``.
    """

    module: str
    setup: tuple[str, ...]
    prefix: str | None


class Adapter:
    """An implementation under test, as the conformance suite sees it.

    Wraps whatever object implements the spec (a built-in adapter, a user's
    module or object) and gives the suite one interface: ``function(name)``
    (None when unsupported), ``repro``, ``grad``, and identification.
    """

    def __init__(
        self,
        implementation: object,
        *,
        spec: str,
        module: str,
        device: str,
        access: _Access,
    ) -> None:
        self.implementation = implementation
        self.spec = spec
        self.module = module
        self.device = device
        name = getattr(implementation, "name", None)
        self.name: str = name if isinstance(name, str) and name else spec
        version = getattr(implementation, "version", None)
        self.version: str | None = None if version is None else str(version)
        self._access = access

    def __repr__(self) -> str:
        return (
            f"Adapter(name={self.name!r}, version={self.version!r}, "
            f"spec={self.spec!r}, device={self.device!r})"
        )

    @property
    def builtin(self) -> bool:
        """Whether this is one of lossconf's own adapters."""
        return self.spec in BUILTIN_ADAPTERS

    def function(self, name: str) -> Callable[..., np.ndarray] | None:
        """The implementation's function ``name``, or None when it has none."""
        if name.startswith("_"):
            return None
        candidate = getattr(self.implementation, name, None)
        return candidate if callable(candidate) else None

    @property
    def examples_scale(self) -> float:
        """The fraction of the profile's generated examples this adapter is run with.

        An implementation may declare ``examples_scale`` in (0, 1] when each call is
        expensive (``torch-compile`` compiles every new shape); the suite then runs
        ``ceil(scale * max_examples)`` generated examples per item (at least 1). Fixed
        edge cases are never scaled. Default 1.
        """
        value = getattr(self.implementation, "examples_scale", 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise AdapterError(
                f"adapter {self.spec!r}: examples_scale must be a number in (0, 1], got {value!r}"
            )
        return float(value)

    @property
    def supports_grad(self) -> bool:
        """Whether the implementation computes gradients (it defines ``grad``)."""
        return callable(getattr(self.implementation, "grad", None))

    def grad(
        self,
        fn_name: str,
        args: Mapping[str, object],
        kwargs: Mapping[str, Any],
        wrt: str = "input",
    ) -> np.ndarray:
        """Gradient of the output's sum w.r.t. ``wrt``, by the framework's autodiff."""
        if not self.supports_grad:
            raise NotImplementedError(f"adapter {self.name!r} does not compute gradients")
        return self.implementation.grad(fn_name, args, kwargs, wrt=wrt)  # type: ignore[attr-defined]

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """A copy-pasteable snippet reproducing ``fn_name(*args.values(), **kwargs)``.

        The implementation's own ``repro`` when it has one (written in its
        framework's code); otherwise a NumPy snippet calling the adapter.
        """
        own = getattr(self.implementation, "repro", None)
        if callable(own):
            return own(fn_name, args, kwargs)
        access = self._access
        if access.prefix is None:
            setup: tuple[str, ...] = (f"from {access.module} import {fn_name}",)
            callee = fn_name
        else:
            setup, callee = access.setup, access.prefix + fn_name
        return numpy_snippet(setup, callee, args, kwargs)


def load_adapter(spec: str, *, device: str = "cpu") -> Adapter:
    """The adapter that ``spec`` names, running on ``device``.

    ``spec`` is a built-in name (see ``BUILTIN_ADAPTERS``) or an import path,
    ``package.module`` or ``package.module:attr`` (default: the module itself).

    Raises:
        UnknownAdapterError: ``spec`` is neither a built-in name nor importable.
        AdapterUnavailableError: a built-in adapter's framework is not installed,
            or ``device`` is not available (the suite skips with this reason).
        AdapterError: anything else that makes the adapter unusable.
    """
    if spec in BUILTIN_ADAPTERS:
        return _load_builtin(spec, device)
    return _load_external(spec, device)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _factory_access(module: str, target: str | None, device: str) -> _Access:
    if target is None:
        setup = (f"from {module} import create", f"impl = create(device={device!r})")
    else:
        head = target.split(".")[0]
        setup = (f"from {module} import {head}", f"impl = {target}.create(device={device!r})")
    return _Access(module, setup, "impl.")


def _require(name: str, framework: _Framework) -> None:
    """Raise AdapterUnavailableError unless ``framework`` imports."""
    try:
        importlib.import_module(framework.import_name)
    except Exception as error:
        missing = (getattr(error, "name", None) or "").split(".")[0] == framework.import_name
        if isinstance(error, ModuleNotFoundError) and missing:
            raise AdapterUnavailableError(
                f"adapter {name!r} needs {framework.display_name}: "
                f"pip install 'lossconf[{framework.extra}]'"
            ) from None
        raise AdapterUnavailableError(
            f"adapter {name!r} needs {framework.display_name}, which is installed but "
            f"failed to import ({_describe(error)}); reinstall it: "
            f"pip install --force-reinstall 'lossconf[{framework.extra}]'"
        ) from error


def _load_builtin(name: str, device: str) -> Adapter:
    framework = _REQUIREMENTS.get(name)
    if framework is not None:
        _require(name, framework)
    module_path = BUILTIN_ADAPTERS[name]
    try:
        module = importlib.import_module(module_path)
    except Exception as error:
        raise AdapterError(
            f"built-in adapter {name!r} ({module_path}) failed to import: {_describe(error)}"
        ) from error
    implementation = module.create(device=device)
    return Adapter(
        implementation,
        spec=name,
        module=module_path,
        device=device,
        access=_factory_access(module_path, None, device),
    )


def _unknown(spec: str, reason: str) -> UnknownAdapterError:
    close = difflib.get_close_matches(spec, list(BUILTIN_ADAPTERS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownAdapterError(
        f"unknown adapter {spec!r}{hint}: {reason}. Use a built-in adapter "
        f"({', '.join(BUILTIN_ADAPTERS)}) or the import path of your own implementation, "
        "package.module or package.module:attr, importable from sys.path"
    )


def _is_dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _load_external(spec: str, device: str) -> Adapter:
    module_path, colon, attribute = spec.partition(":")
    if not _is_dotted_name(module_path) or (colon and not _is_dotted_name(attribute)):
        raise _unknown(spec, "it is neither a built-in name nor an import path")
    try:
        module = importlib.import_module(module_path)
    except Exception as error:
        missing = getattr(error, "name", None) or ""
        absent = missing and (module_path == missing or module_path.startswith(missing + "."))
        if isinstance(error, ModuleNotFoundError) and absent:
            raise _unknown(
                spec, f"it is not a built-in name and there is no module {missing!r}"
            ) from None
        raise UnknownAdapterError(
            f"adapter {spec!r}: module {module_path!r} exists but failed to import: "
            f"{_describe(error)}"
        ) from error

    target: object = module
    for part in attribute.split(".") if attribute else ():
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UnknownAdapterError(
                f"adapter {spec!r}: module {module_path!r} has no attribute {attribute!r}; "
                f"name an object it defines after the colon, or drop ':{attribute}'"
            ) from None

    factory = getattr(target, "create", None)
    if callable(factory):
        implementation = factory(device=device)
        access = _factory_access(module_path, attribute or None, device)
    elif device != "cpu":
        raise AdapterError(
            f"adapter {spec!r} cannot run on device {device!r}: it defines no "
            "create(*, device) factory to pass the device to; use device 'cpu', "
            "or add create(*, device) returning the adapter"
        )
    else:
        implementation = target
        head = attribute.split(".")[0]
        access = (
            _Access(module_path, (f"from {module_path} import {head}",), f"{attribute}.")
            if attribute
            else _Access(module_path, (), None)
        )

    if not any(callable(getattr(implementation, fn, None)) for fn in SPEC_FUNCTIONS):
        raise UnknownAdapterError(
            f"adapter {spec!r} defines none of the spec's functions "
            f"({', '.join(SPEC_FUNCTIONS)}); point it at the module or object that does"
        )
    return Adapter(implementation, spec=spec, module=module_path, device=device, access=access)
