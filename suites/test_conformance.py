"""The generic conformance tests, parametrized by adapter x loss x dtype (conftest.py).

* ``test_matches_oracle``: Hypothesis-generated cases against the exact oracle,
  steered by ``hypothesis.target`` toward the largest normalized error.
* ``test_edge_cases``: the registry's fixed edge cases (special values, all
  targets ignored, extreme logits), one item each.
* ``test_rejects_invalid_input``: inputs the spec rejects must raise.
* ``test_legacy_reduction_arguments``: ``size_average``/``reduce`` map to
  ``reduction`` as PyTorch documents.
* ``test_properties``: metamorphic properties (``suites/properties.py``).
* ``test_gradient_matches_oracle`` / ``test_gradient_edge_cases``: the adapter's
  autodiff gradient of the output's sum against the exact one (``suites/gradients.py``).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import currently_in_test_context, given, reject, settings, target

from .cases import Case
from .checks import (
    ConformanceFailure,
    OracleUndecided,
    Outcome,
    Unsupported,
    check_case,
    failure_message,
)
from .gradients import GradientUndefined, check_gradient_case, differentiable, gradient_case
from .profiles import gate_examples, separate_per_item
from .properties import PROPERTIES, PropertyViolation
from .registry import spec_for

pytestmark = pytest.mark.conformance

_TARGET_CAP = 1e300  # hypothesis.target needs a finite score


def _require(adapter, fn: str) -> None:
    if adapter.function(fn) is None:
        pytest.skip(f"unsupported: adapter {adapter.name!r} has no {fn}")


def _item_key(recorder) -> str:
    """The item's identity without its adapter: every adapter gets the same cases."""
    params = recorder.node.callspec.params
    return recorder.node.originalname + repr(sorted((k, str(v)) for k, v in params.items() if k != "adapter"))


def _scaled(adapter, test, check: str | None = None):
    """``test`` (a ``@given`` function) with the adapter's share of the profile's examples.

    ``check`` names a secondary check whose examples the ``gate`` profile reduces
    (suites/profiles.py ``GATE_SECONDARY_EXAMPLES``). An adapter whose calls are
    expensive declares ``examples_scale`` (adapters/_loading.py, ``Adapter.examples_scale``);
    1 leaves the profile alone.
    """
    examples = (check and gate_examples(check)) or settings.default.max_examples
    scale = adapter.examples_scale
    if scale == 1.0 and examples == settings.default.max_examples:
        return test
    return settings(max_examples=max(1, math.ceil(examples * scale)))(test)


def _finish(recorder) -> None:
    if recorder.undecided:
        # Never a pass: the item fails, and its record's verdict is "undecided".
        raise OracleUndecided(
            f"the oracle could not decide {recorder.undecided} case(s) within its budget "
            f"(--oracle-budget, --oracle-max-bits):\n{recorder.undecided_text}"
        )
    if recorder.examples == 0 and recorder.unsupported:
        pytest.skip(f"unsupported: {recorder.unsupported_reason}")


def _check(adapter, case: Case, recorder, expected_deviation) -> None:
    recorder.note_case(case, adapter)
    try:
        outcome = check_case(adapter, case)
    except Unsupported as exc:
        recorder.add_unsupported(str(exc))
        return
    except OracleUndecided as exc:
        recorder.add_undecided(case, str(exc))
        return
    if not outcome.passed and (expectation := expected_deviation(case)) is not None:
        if expectation.convention:
            under = check_case(adapter, case, convention=expectation.convention)
            if not under.passed:
                raise ConformanceFailure(
                    f"{outcome.message}\n\nThe expected deviation [{expectation.id}] applies, but "
                    f"the output is wrong under {adapter.name}'s own documented formula too "
                    f"(oracle convention {expectation.convention!r}):\n{under.message}"
                )
            outcome = under
        recorder.add_deviation(expectation, outcome)
        return
    recorder.add(outcome)
    if outcome.passed:
        recorder.add_conforming_matches(expected_deviation.conforming(case))
    if currently_in_test_context():
        target(min(outcome.normalized, _TARGET_CAP), label="error in units of the bound")
    if not outcome.passed:
        raise ConformanceFailure(outcome.message)


def test_matches_oracle(adapter, loss, dtype, recorder, expected_deviation):
    _require(adapter, loss)
    spec = spec_for(loss)

    @given(case=spec.cases(dtype))
    def conforms(case):
        _check(adapter, case, recorder, expected_deviation)

    conforms = _scaled(adapter, conforms)
    separate_per_item(conforms, _item_key(recorder))
    conforms()
    _finish(recorder)


@pytest.mark.cases("edge")
def test_edge_cases(adapter, loss, label, dtype, recorder, expected_deviation):
    _require(adapter, loss)
    case = spec_for(loss).edge_cases[label](dtype)
    _check(adapter, case, recorder, expected_deviation)
    _finish(recorder)


@pytest.mark.cases("invalid")
def test_rejects_invalid_input(adapter, loss, label, dtype, recorder, expected_deviation):
    _require(adapter, loss)
    case = spec_for(loss).invalid_cases[label](dtype)
    recorder.note_case(case, adapter)
    try:
        result = case.call(adapter.function(loss))
    except NotImplementedError as exc:
        pytest.skip(f"unsupported: {exc}")
    except Exception:
        recorder.examples += 1  # rejected, as the spec requires
        recorder.add_conforming_matches(expected_deviation.conforming(case))
        return
    problem = f"accepted invalid input ({label}) and returned {result!r} instead of raising an error"
    text = failure_message(adapter, case, problem, None, None, result)
    accepted = Outcome(case, False, None, result, text)
    if (expectation := expected_deviation(case)) is not None:
        recorder.add_deviation(expectation, accepted)
        return
    recorder.add_failure_text(case, text, observed=result)
    raise ConformanceFailure(text)


@pytest.mark.cases("reducing")
@pytest.mark.parametrize("reduce", [None, True, False], ids=lambda v: f"reduce={v}")
@pytest.mark.parametrize("size_average", [None, True, False], ids=lambda v: f"size_average={v}")
def test_legacy_reduction_arguments(adapter, loss, dtype, size_average, reduce, recorder, expected_deviation):
    """The deprecated pair overrides ``reduction`` exactly as PyTorch documents it;
    the oracle applies the documented rule (``oracle.reduction.resolve_reduction``)."""
    _require(adapter, loss)
    spec = spec_for(loss)

    @settings(max_examples=gate_examples("test_legacy_reduction_arguments") or 4)
    @given(case=spec.cases(dtype))
    def conforms(case):
        kwargs = dict(case.kwargs, size_average=size_average, reduce=reduce)
        _check(adapter, Case(case.fn, case.args, kwargs, case.dtype), recorder, expected_deviation)

    separate_per_item(conforms, _item_key(recorder))
    conforms()
    _finish(recorder)


class _CountingAdapter:
    """``adapter``, counting the calls a property check makes through it: a check that
    returns before calling it (nothing to compare on that case) observed nothing, and is
    no passing example -- nor is an adapter that supports none of the property's losses."""

    def __init__(self, adapter) -> None:
        self._adapter = adapter
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self._adapter, name)

    def function(self, name: str):
        function = self._adapter.function(name)
        if function is None:
            return None

        def counted(*args, **kwargs):
            self.calls += 1
            return function(*args, **kwargs)

        return counted


@pytest.mark.cases("property")
def test_properties(adapter, loss, prop, dtype, recorder, expected_deviation):
    definition = PROPERTIES[prop]
    for fn in definition.needs(loss):
        _require(adapter, fn)

    @given(case=definition.cases(loss, dtype))
    def holds(case):
        recorder.note_case(case, adapter)
        observed = _CountingAdapter(adapter)
        try:
            definition.check(observed, case)
        except Unsupported as exc:
            recorder.add_unsupported(str(exc))
            return
        except OracleUndecided as exc:
            recorder.add_undecided(case, str(exc))
            return
        except PropertyViolation as exc:
            text = f"property {prop!r} violated by {adapter.name} ({loss}, {dtype}):\n{exc}"
            expectation = expected_deviation(case)
            if expectation is None and exc.call is not None:
                expectation = expected_deviation(exc.call)  # the derived call that raised
            if expectation is not None:
                recorder.add_deviation_text(expectation, case, text)
                return
            recorder.add_failure_text(case, text)
            raise ConformanceFailure(text) from None
        if not observed.calls:
            return  # the property had nothing to compare on this case: no example
        recorder.examples += 1
        recorder.add_conforming_matches(expected_deviation.conforming(case))

    holds = _scaled(adapter, holds, "test_properties")
    separate_per_item(holds, _item_key(recorder))
    holds()
    _finish(recorder)


# ------------------------------------------------------------------ gradients


@pytest.fixture
def expected_gradient_deviation(request, adapter):
    """Like ``expected_deviation``, but only entries whose ``tests`` name this gradient test:
    a documented difference of the forward value does not explain a gradient."""
    entries = request.config._lossconf_expectations
    test = request.node.originalname

    def lookup(case):
        return next((e for e in entries if e.tests and e.matches(adapter.name, test, case)), None)

    return lookup


def _require_grad(adapter, loss: str) -> None:
    _require(adapter, loss)
    if spec_for(loss).grad is None:
        pytest.skip(f"unsupported: the oracle has no gradient of {loss}")
    if not adapter.supports_grad:
        pytest.skip(f"unsupported: adapter {adapter.name!r} computes no gradients (it has no grad function)")


def _check_gradient(adapter, case: Case, recorder, expected_deviation) -> bool:
    """Judge one gradient; False when the case has no gradient to judge (undefined)."""
    try:
        outcome = check_gradient_case(adapter, case)
    except GradientUndefined:
        return False
    except Unsupported as exc:
        recorder.add_unsupported(str(exc))
        return True
    if not outcome.passed and (expectation := expected_deviation(case)) is not None:
        if expectation.convention:
            # graded exactly under the framework's formula: a deviation only if accurate there
            under = check_gradient_case(adapter, case, convention=expectation.convention)
            if not under.passed:
                raise ConformanceFailure(
                    f"{outcome.message}\n\nThe expected deviation [{expectation.id}] applies, but "
                    f"the gradient is wrong under {adapter.name}'s own formula too "
                    f"(oracle convention {expectation.convention!r}):\n{under.message}"
                )
            outcome = under
        recorder.add_deviation(expectation, outcome)
        return True
    recorder.add(outcome)
    if currently_in_test_context():
        target(min(outcome.normalized, _TARGET_CAP), label="gradient error in units of the bound")
    if not outcome.passed:
        raise ConformanceFailure(outcome.message)
    return True


@pytest.mark.cases("gradient")
def test_gradient_matches_oracle(adapter, loss, wrt, dtype, recorder, expected_gradient_deviation):
    """The framework's autodiff of the output's sum w.r.t. ``wrt`` against the exact
    gradient (``suites/gradients.py``); cases whose loss is not finite have no gradient
    and are replaced by others, and so are cases without ``wrt`` as a floating array (an
    optional ``weight`` left out, a float ``var``)."""
    _require_grad(adapter, loss)
    spec = spec_for(loss)

    @given(case=spec.cases(dtype))
    def conforms(case):
        if not differentiable(case, wrt):
            reject()
        if not _check_gradient(adapter, gradient_case(case, wrt), recorder, expected_gradient_deviation):
            reject()

    later = wrt != spec.grad_wrt[0]
    conforms = _scaled(adapter, conforms, "gradient_later_parameter" if later else None)
    separate_per_item(conforms, _item_key(recorder))
    conforms()
    _finish(recorder)


@pytest.mark.cases("gradient-edge")
def test_gradient_edge_cases(adapter, loss, label, wrt, dtype, recorder, expected_gradient_deviation):
    """The registry's fixed edge cases, differentiated w.r.t. each parameter they pass:
    saturated logits, 1e8 and the dtype's max, masked classes, all targets ignored with
    ``sum``, zero weights."""
    _require_grad(adapter, loss)
    case = gradient_case(spec_for(loss).edge_cases[label](dtype), wrt)
    if not _check_gradient(adapter, case, recorder, expected_gradient_deviation):
        pytest.skip(f"not applicable: the output's sum is not finite, so its gradient is undefined ({label})")
    _finish(recorder)
