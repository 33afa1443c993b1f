"""The oracle's on-disk cache (suites/oracle_cache.py) and the run seed that lets every
adapter share its entries (suites/profiles.py): an entry gives back exactly what the
oracle computed, and a stale, corrupt or planted entry is a miss, never a verdict."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suites import checks, gradients, oracle_cache, profiles
from suites.cases import Case


@pytest.fixture
def cache(tmp_path):
    previous = oracle_cache.configure(tmp_path)
    yield oracle_cache.current()
    oracle_cache.restore(previous)


def _case() -> Case:
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((3, 5)).astype(np.float32)
    return Case("cross_entropy", {"input": logits, "target": np.array([0, 4, 2])}, {"label_smoothing": 0.25}, "float32")


def _evaluate(case: Case) -> checks.Evaluation:
    """The disk layer without the process's lru_cache (which would answer first)."""
    return checks._evaluate_cached.__wrapped__(checks._CaseKey(case))


def _same(a, b) -> bool:
    """Bit for bit: every mpf's (sign, mantissa, exponent, bits), the floats' bytes."""
    exact_a, exact_b = np.asarray(a.exact, dtype=object).ravel(), np.asarray(b.exact, dtype=object).ravel()
    return (
        [x._mpf_ for x in exact_a] == [x._mpf_ for x in exact_b]
        and a.rounded.tobytes() == b.rounded.tobytes()
        and a.bound.tobytes() == b.bound.tobytes()
    )


def _files(cache) -> list[Path]:
    return sorted(cache.directory.rglob("*.pkl"))


def test_round_trip_is_bit_exact(cache):
    case = _case()
    computed = _evaluate(case)
    assert (cache.misses, cache.hits, len(_files(cache))) == (1, 0, 1)
    stored = _evaluate(case)
    assert cache.hits == 1
    assert _same(computed, stored)
    assert [t._mpf_ for t in stored.terms.terms.ravel()] == [t._mpf_ for t in computed.terms.terms.ravel()]
    assert stored.terms.denominator == computed.terms.denominator
    assert not list(cache.directory.rglob(".tmp-*")), "atomic writes leave no temporary file"


def test_gradient_round_trip_is_bit_exact(cache):
    case = _case()
    computed = gradients._evaluate_cached.__wrapped__(checks._CaseKey(case))
    stored = gradients._evaluate_cached.__wrapped__(checks._CaseKey(case))
    assert cache.hits == 1 and _same(computed, stored)


def test_another_case_misses(cache):
    case = _case()
    _evaluate(case)
    other = Case(case.fn, dict(case.args, target=np.array([0, 4, 3])), case.kwargs, case.dtype)
    assert not _same(_evaluate(other), _evaluate(case))
    assert cache.misses == 2


@pytest.mark.parametrize("content", [b"", b"\x80\x04truncated", b"not a pickle at all"])
def test_corrupt_entry_is_recomputed(cache, content):
    case = _case()
    computed = _evaluate(case)
    (path,) = _files(cache)
    path.write_bytes(content)
    again = _evaluate(case)
    assert cache.hits == 0 and cache.misses == 2
    assert _same(computed, again)
    assert path.read_bytes() != content, "the corrupt file is replaced"


def test_entry_of_another_case_at_this_path_is_a_miss(cache):
    """Hash collision or tampering: the stored full key differs from this case's."""
    case = _case()
    computed = _evaluate(case)
    (path,) = _files(cache)
    identity, value = pickle.loads(path.read_bytes())
    wrong = value.__class__(value.exact, value.rounded + 1.0, value.bound, value.terms)
    path.write_bytes(pickle.dumps((identity[:-1] + b"X", wrong), protocol=4))
    assert _same(_evaluate(case), computed)
    assert cache.hits == 0


def test_planted_pickle_cannot_run_code(cache, tmp_path):
    case = _case()
    _evaluate(case)
    (path,) = _files(cache)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.write_bytes(pickle.dumps(Exploit(), protocol=4))
    _evaluate(case)
    assert not marker.exists()
    assert cache.hits == 0


def test_changed_oracle_source_misses(cache, monkeypatch):
    case = _case()
    _evaluate(case)
    monkeypatch.setattr(oracle_cache, "fingerprint", lambda: "another oracle")
    _evaluate(case)
    assert cache.hits == 0 and len(_files(cache)) == 2


def test_fingerprint_covers_the_oracle_sources():
    sources = {p for pattern in oracle_cache._SOURCES for p in oracle_cache._ROOT.glob(pattern)}
    assert oracle_cache._ROOT / "oracle" / "core.py" in sources
    assert oracle_cache._ROOT / "suites" / "verdict.py" in sources
    assert len(oracle_cache.fingerprint()) == 64


def test_off_outside_the_suite():
    """The project's own tests (this run) and plain imports get no cache unless asked."""
    assert oracle_cache.current() is None or os.environ.get("LOSSCONF_CACHE_DIR")


# ------------------------------------------------------------------ the run seed


def _drawn(key: str) -> list[int]:
    seen: list[int] = []

    @settings(max_examples=5, database=None, derandomize=False)
    @given(st.integers(0, 2**64))
    def draw(value):
        seen.append(value)

    profiles.separate_per_item(draw, key)
    draw()
    return seen


@pytest.mark.skipif(profiles.is_derandomized(), reason="a derandomized profile ignores the run seed")
def test_run_seed_gives_every_adapter_the_same_cases():
    previous = profiles.set_run_seed(12345)
    try:
        first, second = _drawn("test_x['cross_entropy', 'float32']"), _drawn("test_x['cross_entropy', 'float32']")
        other_item = _drawn("test_x['cross_entropy', 'float64']")
        profiles.set_run_seed(54321)
        other_run = _drawn("test_x['cross_entropy', 'float32']")
    finally:
        profiles.set_run_seed(previous)
    assert first == second
    assert first != other_item and first != other_run


def test_item_digest_is_hypothesis_function_digest():
    """separate_per_item hands Hypothesis the database key and derandomized seed it would
    compute itself: a Hypothesis release that changes its recipe must fail here, not
    silently change every derandomized case."""
    from hypothesis.internal.compat import int_from_bytes
    from hypothesis.internal.reflection import function_digest

    tests = []
    for key in ("test_x['mse_loss', 'float32']", "test_x['mse_loss', 'float64']"):

        @settings(max_examples=1, database=None)
        @given(st.integers())
        def draw(value):
            pass

        profiles.separate_per_item(draw, key)
        inner = draw.hypothesis.inner_test
        expected = function_digest(inner)
        assert profiles.item_digest(inner, key) == expected
        assert draw._hypothesis_internal_database_key == expected
        if profiles.is_derandomized():
            assert draw._hypothesis_internal_use_seed == int_from_bytes(expected)
        tests.append(expected)
    assert tests[0] != tests[1]


def test_item_seed_depends_on_run_and_key():
    assert profiles.item_seed(1, "a") == profiles.item_seed(1, "a")
    assert len({profiles.item_seed(1, "a"), profiles.item_seed(2, "a"), profiles.item_seed(1, "b")}) == 3


# ------------------------------------------------------------------ --lossconf-cache


def test_configure_caches_points_jax_at_dir_and_undoes_it(tmp_path, monkeypatch):
    from suites.caches import JAX_EXECUTABLES, JAX_SETTINGS, configure_caches

    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as in a test process before the adapter loads
    for name in (*JAX_SETTINGS, JAX_EXECUTABLES):
        monkeypatch.delenv(name, raising=False)
    before = oracle_cache.current()
    undo = configure_caches(tmp_path, ["torch", "jax"])
    try:
        assert oracle_cache.current().directory == tmp_path.resolve() / "oracle"
        assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path.resolve() / "jax")
        assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
        assert os.environ[JAX_EXECUTABLES] == str(tmp_path.resolve() / "jax-executables")
    finally:
        undo()
    assert oracle_cache.current() is before
    assert not any(name in os.environ for name in (*JAX_SETTINGS, JAX_EXECUTABLES))


def test_configure_caches_leaves_a_users_jax_cache_and_other_adapters_alone(tmp_path, monkeypatch):
    from suites.caches import JAX_EXECUTABLES, configure_caches

    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/the/users/own")
    monkeypatch.setenv(JAX_EXECUTABLES, "")  # the user's: off
    undo = configure_caches(tmp_path, ["jax"])
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/the/users/own" and os.environ[JAX_EXECUTABLES] == ""
    undo()
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.delenv(JAX_EXECUTABLES)
    configure_caches(tmp_path, ["torch"])()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ and JAX_EXECUTABLES not in os.environ
    undo = configure_caches(None, ["jax"])
    assert oracle_cache.current() is None and "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert JAX_EXECUTABLES not in os.environ
    undo()


def test_configure_caches_points_torch_compile_at_dir_unless_the_user_chose_one(tmp_path, monkeypatch):
    """torch.compile's FX graph and AOTAutograd caches go under DIR/torch-inductor when a
    torch-compile adapter runs (Inductor reads only the environment variable); a user's wins."""
    from suites.caches import TORCHINDUCTOR_CACHE_DIR, configure_caches

    monkeypatch.delenv(TORCHINDUCTOR_CACHE_DIR, raising=False)
    for adapters in (["torch"], ["jax"]):
        configure_caches(tmp_path, adapters)()
        assert TORCHINDUCTOR_CACHE_DIR not in os.environ
    for name in ("torch-compile", "torch-compile-dynamic"):
        undo = configure_caches(tmp_path, ["torch", name])
        assert os.environ[TORCHINDUCTOR_CACHE_DIR] == str(tmp_path.resolve() / "torch-inductor")
        undo()
        assert TORCHINDUCTOR_CACHE_DIR not in os.environ
    configure_caches(None, ["torch-compile"])()
    assert TORCHINDUCTOR_CACHE_DIR not in os.environ
    monkeypatch.setenv(TORCHINDUCTOR_CACHE_DIR, "/the/users/own")
    configure_caches(tmp_path, ["torch-compile"])()
    assert os.environ[TORCHINDUCTOR_CACHE_DIR] == "/the/users/own"
