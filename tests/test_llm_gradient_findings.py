"""The LLM-scale gradient findings stay true (``suites/test_llm_scale.py``'s gradient test).

Each expectations entry naming ``test_llm_scale_cross_entropy_gradient`` has a minimal case
here, small enough for a unit test (4096 classes, one row); the framework still gets it
wrong, and the entry is the one that explains it. The TensorFlow entry for the same test
(``keras-sparse-labels-cast-to-loss-dtype-gradient``) names the generic gradient tests too,
and its minimal case lives in ``tests/test_gradient_findings.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flint")

from suites.cases import Case
from suites.expectations import builtin_expectations_file, load_expectations
from suites.gradients import check_gradient_case, gradient_case
from suites.large_gradients import check_large_gradient_case

TEST = "test_llm_scale_cross_entropy_gradient"


def _confident_row(n_classes: int) -> Case:
    """One token, a logit of 17 over zeros: ``e^-17 = 4.1e-8`` is below half an ULP of 1."""
    x = np.zeros((1, n_classes), dtype=np.float32)
    x[0, 0] = 17.0
    return gradient_case(
        Case("cross_entropy", {"input": x, "target": np.array([0])}, {"reduction": "sum"}, "float32", "llm_scale"),
        "input",
    )


@pytest.mark.parametrize("framework", ["torch", "torch-nn"])
def test_torch_cpu_log_softmax_loses_small_addends(framework):
    torch = pytest.importorskip("torch")
    from adapters import load_adapter

    adapter = load_adapter(framework)
    case = _confident_row(4096)
    outcome = check_large_gradient_case(adapter, case, describe="_confident_row(4096)")
    assert not outcome.passed, f"{framework} now gets the confident row right: drop the entry"
    assert outcome.verdict.failing == 4096 and outcome.verdict.worst_index == (0, 0)
    assert outcome.observed[0, 0] == np.float32(-1.5902519e-04)
    # the generic (mpmath) gradient check agrees: the finding is not an artefact of the fast path
    assert not check_gradient_case(adapter, case).passed
    # the cause: log_softmax's row sum, while logsumexp is right
    x = torch.tensor(case.args["input"])
    assert torch.log_softmax(x, 1)[0, 1].item() == pytest.approx(-17.000158, abs=2e-6)
    assert torch.logsumexp(x, 1).item() == pytest.approx(17.000169516, abs=2e-6)
    entries = load_expectations(builtin_expectations_file("torch"), default_adapters=("torch",))
    found = next((e for e in entries if e.tests and not e.convention and e.matches(adapter.name, TEST, case)), None)
    assert found is not None and found.id == "cpu-log-softmax-loses-small-addends-of-a-long-row"


def test_every_llm_gradient_entry_has_a_minimal_case():
    ids = set()
    for framework in ("torch", "tensorflow", "jax"):
        path = builtin_expectations_file(framework)
        ids |= {e.id for e in load_expectations(path, default_adapters=(framework,)) if TEST in e.tests}
    assert ids == {"cpu-log-softmax-loses-small-addends-of-a-long-row", "keras-sparse-labels-cast-to-loss-dtype-gradient"}
