"""lossconf's reference oracle: exact (mpmath) evaluations of PyTorch's losses.

Each loss is a pure function named and parametrized like its
``torch.nn.functional`` counterpart, taking NumPy arrays and returning mpmath
numbers (an ``mpf``, or an object ndarray of ``mpf`` for ``reduction="none"``).
``<loss>_terms`` returns the decomposition the error model needs, and
``<loss>_grad`` the exact gradient of the output's sum w.r.t. ``input``, and
``oracle.gradients.<loss>_grad_condition`` what the gradient's error model needs.
Evaluate inside :func:`correctly_rounded` (or :func:`working_precision`) to pick
the precision; nothing here changes mpmath's global state.

The oracle imports no framework: it is independent of everything it judges.
"""

from .activations import (
    log_sigmoid,
    log_softmax,
    log_softmax_terms,
    sigmoid,
    sigmoid_terms,
    softmax,
    softmax_terms,
    softplus,
)
from .binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_terms,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_terms,
)
from .classification import (
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_terms,
    nll_loss,
    nll_loss_grad,
    nll_loss_terms,
)
from .core import (
    FORMATS,
    FloatFormat,
    OracleBudget,
    OracleUndecided,
    correctly_rounded,
    format_of,
    mp_array,
    oracle_budget,
    round_to_format,
    to_mpf,
    ulp,
    ulp_distance,
    working_precision,
)
from .divergence import entropy, kl_div, kl_div_grad, kl_div_terms
from .gradients import GradientCondition, log_softmax_grad, sigmoid_grad, softmax_grad
from .reduction import LossTerms, resolve_reduction

__all__ = [
    "FORMATS",
    "FloatFormat",
    "GradientCondition",
    "LossTerms",
    "OracleBudget",
    "OracleUndecided",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_terms",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_terms",
    "correctly_rounded",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_terms",
    "entropy",
    "format_of",
    "kl_div",
    "kl_div_grad",
    "kl_div_terms",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_grad",
    "log_softmax_terms",
    "mp_array",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_terms",
    "oracle_budget",
    "resolve_reduction",
    "round_to_format",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_terms",
    "softmax",
    "softmax_grad",
    "softmax_terms",
    "softplus",
    "to_mpf",
    "ulp",
    "ulp_distance",
    "working_precision",
]

# Margin, ranking and embedding losses (oracle/margin.py, oracle/embedding.py).
from . import embedding as _embedding
from . import margin as _margin
from .embedding import *  # noqa: F403
from .margin import *  # noqa: F403

__all__ += [*_margin.__all__, *_embedding.__all__]
