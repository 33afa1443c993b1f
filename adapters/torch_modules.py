"""The ``torch-nn`` adapter: the spec's calls through the ``torch.nn`` module classes.

Users mostly meet PyTorch's losses as modules (``nn.CrossEntropyLoss()``), whose
constructors take the options and still accept the deprecated
``size_average``/``reduce`` arguments, mapped to a ``reduction`` string when the
module is built. Building a fresh module per call with the case's options puts
that constructor path under test, beside the functional one of the ``torch``
adapter. ``weight``/``pos_weight`` become tensors on the device before
construction, as a user would pass them.
"""

from __future__ import annotations

from typing import Any

import torch

from ._repro import call_source
from ._torch_base import TorchAdapter, _torch_option_table

#: Each spec function's ``torch.nn`` class; every option is a constructor argument.
_MODULES: dict[str, str] = {
    "cross_entropy": "CrossEntropyLoss",
    "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "kl_div": "KLDivLoss",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "sigmoid": "Sigmoid",
    # margin, ranking and embedding losses (issue 5)
    "margin_ranking_loss": "MarginRankingLoss",
    "hinge_embedding_loss": "HingeEmbeddingLoss",
    "soft_margin_loss": "SoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "multi_margin_loss": "MultiMarginLoss",
    "multilabel_margin_loss": "MultiLabelMarginLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss",
    "triplet_margin_loss": "TripletMarginLoss",
    "triplet_margin_with_distance_loss": "TripletMarginWithDistanceLoss",
}


class TorchModules(TorchAdapter):
    """The spec's functions, each a freshly constructed ``torch.nn`` module applied once."""

    name = "torch-nn"

    def _invoke(self, fn_name: str, positional: list[Any], options: dict[str, Any]) -> torch.Tensor:
        module = getattr(torch.nn, _MODULES[fn_name])(**options)
        return module(*positional)

    def _call_lines(
        self, fn_name: str, positional: list[str], keywords: dict[str, str]
    ) -> list[str]:
        constructor = call_source(f"torch.nn.{_MODULES[fn_name]}", [], keywords)
        return [f"module = {constructor}", f"out = {call_source('module', positional, {})}"]


#: Every option native (docs/options.md), as a constructor argument of the module class.
OPTION_TABLE = {
    loss: {**options, "(function)": ("native", f"torch.nn.{_MODULES[loss]}")}
    for loss, options in _torch_option_table("").items()
}


def create(*, device: str = "cpu") -> TorchModules:
    """The ``torch-nn`` adapter on ``device`` (AdapterUnavailableError if unusable here)."""
    return TorchModules(device=device)
