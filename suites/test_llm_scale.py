"""LLM-scale cross entropy: a 128k-class vocabulary and a few hundred tokens.

``cross_entropy`` of ``(256, 131072)`` logits -- a language model's output for 256
tokens over a Llama-3-sized vocabulary -- with padding tokens at ``ignore_index``
and ``reduction="mean"``, in float32, bfloat16 and float16, against the oracle.
The oracle's arb fast path (``oracle/fast.py``) evaluates the 33.5 million logits
in balls (160 to 480 s per dtype for torch on this 2-core machine, under load); the items run in the
``thorough`` profile only (``--hypothesis-profile thorough`` or
``LOSSCONF_PROFILE=thorough``) and are skipped with that reason otherwise.

Not covered yet: the gradient at this scale (the oracle decides one rounding per
logit, 33.5 million, which needs a vectorized decision step).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

from .cases import Case
from .test_conformance import _check, _finish

pytestmark = pytest.mark.conformance

TOKENS = 256
VOCABULARY = 131072
PADDING = 16  # trailing tokens at ignore_index, as a padded batch has


def llm_case(dtype: str, seed: int = 0) -> Case:
    """Logits a trained model produces: mostly N(0, 3), a confident peak per token."""
    from .strategies import to_dtype

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, (TOKENS, VOCABULARY)).astype(np.float32)
    target = rng.integers(0, VOCABULARY, TOKENS)
    peaks = rng.integers(0, VOCABULARY, TOKENS)
    x[np.arange(TOKENS), peaks] += rng.uniform(10.0, 30.0, TOKENS).astype(np.float32)
    target[-PADDING:] = -100
    return Case("cross_entropy", {"input": to_dtype(x.astype(np.float64), dtype), "target": target}, {"reduction": "mean"}, dtype, "llm_scale")


@pytest.mark.cases("llm")
def test_llm_scale_cross_entropy(adapter, loss, dtype, recorder, expected_deviation):
    if settings._current_profile != "thorough":
        pytest.skip("LLM-scale cases run in the thorough profile (--hypothesis-profile thorough)")
    if adapter.function(loss) is None:
        pytest.skip(f"unsupported: adapter {adapter.name!r} has no {loss}")
    _check(adapter, llm_case(dtype), recorder, expected_deviation)
    _finish(recorder)
