"""Hypothesis profiles of the suite, and what makes a generated case reproducible.

Profiles (``--hypothesis-profile NAME`` or ``LOSSCONF_PROFILE=NAME``):

``lossconf`` (default)
    25 examples per test item, random: each run explores new cases; failures go to
    the example database and are replayed first by the next run.
``gate``
    For per-pull-request gating. Derandomized (the same cases on every run and every
    machine, so a gate never flakes), :data:`GATE_EXAMPLES` examples per value and
    first-parameter gradient item, fewer for properties, later parameters' gradients
    and the legacy reduction arguments (:data:`GATE_SECONDARY_EXAMPLES`), plus every
    fixed edge case (``test_edge_cases`` does not depend on the profile), no
    ``target`` phase. ``benchmarks/gate.py`` measures its time; the
    target is under 60 s per framework on a 2-core machine.
``ci``
    Derandomized with the default count (25): a slower, broader deterministic run.
``thorough``
    400 examples with ``hypothesis.target`` steering toward the largest normalized
    error (the ``target`` phase): a nightly run, with a cached example database.
``dev``
    8 examples, random: quick local iterations.

A derandomized profile needs no seed and uses no database (Hypothesis ignores it):
rerunning a test id regenerates its cases. A random profile reproduces a failure
from the example database (``--example-db DIR``, which CI can cache) or from
``--hypothesis-seed``.
"""

from __future__ import annotations

import hashlib
import inspect

from hypothesis import HealthCheck, Phase, settings
from hypothesis.internal import reflection

__all__ = [
    "DEFAULT_PROFILE", "GATE_EXAMPLES", "GATE_SECONDARY_EXAMPLES", "PROFILES", "gate_examples", "item_digest", "item_seed", "register_profiles", "separate_per_item", "set_run_seed",
]

DEFAULT_PROFILE = "lossconf"

#: Examples per generated test item in the gate profile: the loss value
#: (``test_matches_oracle``) and the gradient w.r.t. a loss's first parameter
#: (``input``, ``log_probs``, ``input1``, ``anchor``). Fewer would leave option
#: combinations (reduction x weight x ignore_index) unvisited in some dtype.
GATE_EXAMPLES = 5

#: The gate's examples for the checks that re-run code the 5-example items already reach
#: (:func:`gate_examples`), so that the whole loss set fits the gate's 60 s on 2 cores
#: (benchmarks/gate.py; README "CI"). The ``ci`` profile gives every item 25.
#:
#: * ``test_properties`` -- 3: a metamorphic relation between calls of the same kernels
#:   (sum = sum of ``none``, mean = sum / denominator, symmetries); its cases come from
#:   the same strategies as the value test's, and a broken reduction or symmetry breaks it
#:   on any case with more than one element.
#: * a gradient w.r.t. a later parameter (``target``, ``weight``, ``var``, ``input2``...)
#:   -- 3: its backward formula shares the forward's terms, whose values the first
#:   parameter's 5 examples and the fixed gradient edge cases already judge.
#: * ``test_legacy_reduction_arguments`` -- 2 (4 in every other profile): each item is one
#:   (``size_average``, ``reduce``) pair, and a wrong mapping (sum for mean, none for sum)
#:   shows on any case with two or more elements.
GATE_SECONDARY_EXAMPLES = {"test_properties": 3, "gradient_later_parameter": 3, "test_legacy_reduction_arguments": 2}

_COMMON = dict(
    deadline=None,  # oracle time varies with the case (Ziv escalation); a deadline would flake
    print_blob=True,  # failures print @reproduce_failure(...)
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.differing_executors,
    ],
)

# No profile has Hypothesis's ``explain`` phase (on by default): once a case fails it runs
# the test under ``sys.settrace`` for every later execution, target and shrink included,
# to report which lines a failure touched -- our failure messages say what is wrong
# already, and traced exact gradients made one default-run item take over 16 minutes.
_NO_TARGET = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
_WITH_TARGET = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

PROFILES: dict[str, dict] = {
    "lossconf": dict(max_examples=25, phases=_WITH_TARGET),
    "gate": dict(max_examples=GATE_EXAMPLES, derandomize=True, phases=_NO_TARGET),
    "ci": dict(max_examples=25, derandomize=True, phases=_WITH_TARGET),
    "dev": dict(max_examples=8, phases=_WITH_TARGET),
    "thorough": dict(max_examples=400, phases=_WITH_TARGET),
}


def register_profiles() -> None:
    """Register every profile of :data:`PROFILES` with Hypothesis (loading none)."""
    # Parent: Hypothesis's own "default" profile. Under a CI environment variable Hypothesis
    # loads its built-in "ci" profile (derandomize=True, no database) at import, and a
    # profile registered without a parent would inherit that: seeds would be ignored and
    # random profiles derandomized on CI only.
    base = settings.get_profile("default")
    for name, values in PROFILES.items():
        settings.register_profile(name, parent=base, **_COMMON, **values)


def gate_examples(check: str) -> int | None:
    """The examples of a ``check`` (a key of :data:`GATE_SECONDARY_EXAMPLES`) when the
    ``gate`` profile is loaded; None otherwise (the profile's own count applies)."""
    if settings.get_current_profile_name() != "gate":
        return None
    return GATE_SECONDARY_EXAMPLES[check]


def is_derandomized() -> bool:
    return bool(settings.default.derandomize)


_RUN_SEED: int | None = None


def set_run_seed(seed: int | None) -> int | None:
    """The run's seed for random profiles (conftest.py: ``--hypothesis-seed``, else drawn
    once by the controlling process and handed to pytest-xdist's workers); returns the
    previous one. None: each item draws from Hypothesis's global random, as before."""
    global _RUN_SEED
    previous, _RUN_SEED = _RUN_SEED, seed
    return previous


def item_seed(run_seed: int, key: str) -> int:
    """The seed of one item in a random profile: a hash of the run's seed and the item's key."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}\0{key}".encode()).digest()[:16], "big")


def separate_per_item(test, key: str) -> None:
    """Give the ``@given`` function ``test``, defined inside a parametrized test, its
    own identity ``key`` in Hypothesis: its own example-database entries and its own
    stream of cases -- under a derandomized profile from ``key`` alone, under a random
    one from ``key`` and the run's seed (:func:`set_run_seed`).

    The conformance tests define their ``@given`` function inside the pytest test, so
    every item would otherwise share one database key (a cached failure of one loss
    replayed against every other) and one derandomized seed. ``key`` leaves the
    adapter out, so every adapter sees the same cases, in every profile, and the
    oracle evaluates each case once for all of them (suites/oracle_cache.py); a random
    profile still explores new cases on every run, since the run's seed is new.
    Hypothesis's own stateful tests use the same digest attribute for the same purpose;
    ``_hypothesis_internal_use_seed`` is what ``@hypothesis.seed`` sets (it keeps the
    example database: failures are still replayed first).
    """
    inner = getattr(getattr(test, "hypothesis", None), "inner_test", None)
    if inner is not None:
        inner._hypothesis_internal_add_digest = key.encode()
        # What Hypothesis would compute twice per item (the database key; under a
        # derandomized profile also the seed), from a source digest made once per function.
        digest = item_digest(inner, key)
        test._hypothesis_internal_database_key = digest
        if is_derandomized() and hasattr(test, "_hypothesis_internal_use_seed"):
            test._hypothesis_internal_use_seed = int.from_bytes(digest, "big")
    if _RUN_SEED is not None and not is_derandomized() and hasattr(test, "_hypothesis_internal_use_seed"):
        test._hypothesis_internal_use_seed = item_seed(_RUN_SEED, key)


_SOURCE_DIGESTS: dict[tuple, object] = {}


def item_digest(inner, key: str) -> bytes:
    """``hypothesis.internal.reflection.function_digest(inner)`` once ``inner`` carries
    ``key`` as its added digest: SHA-384 of the function's cleaned source, its
    signature's repr, then ``key``. Hypothesis computes it from the source text for
    every item -- twice under a derandomized profile, as the database key and as the
    seed -- ~3 ms each (``inspect.getsource`` and a tokenizer pass; ~3% of a gate run's
    CPU); every item of one test function shares the source, so the hash state after
    source and signature is made once and copied. ``tests/test_oracle_cache.py`` checks
    the result equals Hypothesis's own, so that a Hypothesis release that changes the
    recipe fails a test instead of silently giving other cases."""
    signature = repr(reflection.get_signature(inner))
    cache_key = (inner.__code__, signature)
    state = _SOURCE_DIGESTS.get(cache_key)
    if state is None:
        state = hashlib.sha384()
        try:
            state.update(reflection._clean_source(inspect.getsource(inner)))
        except (OSError, TypeError):
            state.update(inner.__name__.encode())
        state.update(signature.encode())
        _SOURCE_DIGESTS[cache_key] = state
    hasher = state.copy()
    hasher.update(key.encode())
    return hasher.digest()
