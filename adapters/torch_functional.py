"""The ``torch`` adapter: the spec's calls through ``torch.nn.functional``.

This is the reference framework of the spec, so the adapter is as thin as an
adapter can be: each function is the same-named one in ``torch.nn.functional``
(``sigmoid`` is ``torch.sigmoid``), called in the case's dtype on the chosen
device. Conversion, gradients and repro snippets live in ``_torch_base``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._repro import call_source
from ._torch_base import TorchAdapter, _torch_option_table

#: Each spec function's torch callable and how a repro snippet spells it.
_FUNCTIONS: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "cross_entropy": (F.cross_entropy, "F.cross_entropy"),
    "nll_loss": (F.nll_loss, "F.nll_loss"),
    "binary_cross_entropy": (F.binary_cross_entropy, "F.binary_cross_entropy"),
    "binary_cross_entropy_with_logits": (
        F.binary_cross_entropy_with_logits,
        "F.binary_cross_entropy_with_logits",
    ),
    "kl_div": (F.kl_div, "F.kl_div"),
    "softmax": (F.softmax, "F.softmax"),
    "log_softmax": (F.log_softmax, "F.log_softmax"),
    "sigmoid": (torch.sigmoid, "torch.sigmoid"),
    # margin, ranking and embedding losses (issue 5)
    **{
        name: (getattr(F, name), f"F.{name}")
        for name in (
            "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
            "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
            "cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
        )
    },
}


class TorchFunctional(TorchAdapter):
    """The spec's functions, each a call of its ``torch.nn.functional`` namesake."""

    name = "torch"

    def _invoke(self, fn_name: str, positional: list[Any], options: dict[str, Any]) -> torch.Tensor:
        function, _ = _FUNCTIONS[fn_name]
        return function(*positional, **options)

    def _repro_imports(self, fn_name: str) -> list[str]:
        _, spelling = _FUNCTIONS[fn_name]
        return ["import torch.nn.functional as F"] if spelling.startswith("F.") else []

    def _call_lines(
        self, fn_name: str, positional: list[str], keywords: dict[str, str]
    ) -> list[str]:
        _, spelling = _FUNCTIONS[fn_name]
        return [f"out = {call_source(spelling, positional, keywords)}"]


#: Every option native (docs/options.md): ``torch.sigmoid`` for sigmoid, F.<loss> otherwise.
OPTION_TABLE = _torch_option_table("torch.nn.functional.{loss}")


def create(*, device: str = "cpu") -> TorchFunctional:
    """The ``torch`` adapter on ``device`` (AdapterUnavailableError if unusable here)."""
    return TorchFunctional(device=device)
