"""pytest plugin for the harness's subprocess runs (``tests/test_harness.run_suite``):
Hypothesis without the checkout's own literals.

Hypothesis (6.131 and later) mines literal constants from every *local* module it sees
loaded -- here the whole checkout: oracle, suites, adapters -- and mixes them into the
values it draws. A seeded run of the suite then draws different cases whenever any
unrelated code in the checkout gains or loses a literal (adding a loss module was
enough to make the teeth test's float16 ``log_softmax`` search shrink to another of the
textbook adapter's defects instead of its overflow). The detection-power tests must not
depend on that, so their subprocess runs with the local constants empty: the cases then
depend on the seed and the strategies only.

Private Hypothesis API (``providers._get_local_constants``), patched only inside that
subprocess; if it disappears, the plugin does nothing and says so.
"""

from __future__ import annotations

import warnings


def pytest_configure(config) -> None:
    try:
        from hypothesis.internal.conjecture import providers

        empty = providers.Constants()
        providers._get_local_constants = lambda: empty
    except (ImportError, AttributeError) as error:  # pragma: no cover - a future Hypothesis
        warnings.warn(f"tests.hermetic_hypothesis: cannot disable local constants ({error})", stacklevel=1)
