"""Adapters: the bridge from the spec's calls to one implementation under test.

An adapter exposes the spec's functions, named and parametrized as in
``torch.nn.functional``, taking and returning NumPy arrays (float16, float32,
float64, ``ml_dtypes.bfloat16``; int64 class indices), output in the input's
dtype. A missing function, or one raising ``NotImplementedError``, means
*unsupported*. Optional: ``name``, ``version``, ``repro(fn_name, args, kwargs)``
and ``grad(fn_name, args, kwargs, wrt="input")``.

Built-in adapters are chosen by name, a user's own by import path::

    load_adapter("torch")                      # torch.nn.functional
    load_adapter("torch-nn", device="cuda")    # the torch.nn module classes
    load_adapter("mypkg.losses:impl")          # an external implementation

Importing this package imports no framework; a built-in adapter's framework
is imported when that adapter is loaded.
"""

from ._loading import BUILTIN_ADAPTERS, Adapter, load_adapter
from ._spec import SPEC_FUNCTIONS
from .errors import AdapterError, AdapterUnavailableError, UnknownAdapterError

__all__ = [
    "BUILTIN_ADAPTERS",
    "SPEC_FUNCTIONS",
    "Adapter",
    "AdapterError",
    "AdapterUnavailableError",
    "UnknownAdapterError",
    "load_adapter",
]
