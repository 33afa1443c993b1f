"""The ``torch-compile-dynamic`` adapter: ``torch.compile(..., dynamic=True)``.

Everything is in :mod:`adapters.torch_compile`; this module is the built-in name's
factory (``BUILTIN_ADAPTERS`` maps a name to a module with ``create``).
"""

from __future__ import annotations

from .torch_compile import OPTION_TABLE, TorchCompileDynamic

__all__ = ["OPTION_TABLE", "create"]


def create(*, device: str = "cpu") -> TorchCompileDynamic:
    """The ``torch-compile-dynamic`` adapter (``dynamic=True``) on ``device``."""
    return TorchCompileDynamic(device=device)
