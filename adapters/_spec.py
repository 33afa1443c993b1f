"""The spec's function names and their array-taking leading parameters.

Framework-free, so the loader can check an external adapter without importing
any framework. Parameter names, order and defaults are
``torch.nn.functional``'s; ``_torch_base`` writes them out as method signatures.
"""

from __future__ import annotations

#: Each spec function and its leading parameters, passed positionally (to the
#: function, or to a module's ``forward``); the remaining parameters are options.
SPEC_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("input", "target"),
    "nll_loss": ("input", "target"),
    "binary_cross_entropy": ("input", "target"),
    "binary_cross_entropy_with_logits": ("input", "target"),
    "kl_div": ("input", "target"),
    "softmax": ("input",),
    "log_softmax": ("input",),
    "sigmoid": ("input",),
}

#: Margin, ranking and embedding losses (issue 5).
SPEC_FUNCTIONS.update({
    "margin_ranking_loss": ("input1", "input2", "target"),
    "hinge_embedding_loss": ("input", "target"),
    "soft_margin_loss": ("input", "target"),
    "multilabel_soft_margin_loss": ("input", "target"),
    "multi_margin_loss": ("input", "target"),
    "multilabel_margin_loss": ("input", "target"),
    "cosine_embedding_loss": ("input1", "input2", "target"),
    "triplet_margin_loss": ("anchor", "positive", "negative"),
    "triplet_margin_with_distance_loss": ("anchor", "positive", "negative"),
})
