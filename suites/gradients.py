r"""Gradient conformance: an adapter's backward pass against the oracle's exact derivative.

What is compared: ``g = d F / d z`` with ``F`` the sum of the spec function's
output (the loss for ``sum``/``mean``, the sum of the ``none`` output, the sum of
an activation) and ``z`` one of the loss's differentiable parameters
(``LossSpec.grad_wrt``: ``input`` first, then e.g. ``target``, ``weight``, ``var``;
the case's ``wrt``), computed by the framework's own autodiff (the adapter's optional
``grad(fn_name, args, kwargs, wrt=...)``; NotImplementedError for a parameter the
framework does not differentiate: unsupported), against the oracle's exact
``<loss>_grad`` (with ``wrt=`` for a parameter other than the first) correctly
rounded to the dtype.

The error model for a gradient component ``g_i`` is the forward one
(``suites/verdict.py``) applied to ``g`` instead of ``L``: what a mixed-stable
backward pass in dtype ``d`` could make, exact on slightly perturbed inputs plus
small absolute errors where the standard algorithm works at a larger scale:

.. math::
    |\hat g_i - g_i| \le u \big( K_{OUT} |g_i| + K_{IN} c_i + K_{ABS} s_i
                         + k_{red}(n) r_i \big) + K_{FLOOR} \cdot \mathrm{tiny}

from :class:`oracle.gradients.GradientCondition`:

* ``c_i = sum_z sum_k |z_k dg_i/dz_k| + m_i``: the *second* derivatives, since a
  relative perturbation ``u`` of every floating input ``z`` (logits, targets,
  weights) moves ``g_i`` by ``u`` times the Hessian row weighted by ``|z|``, plus
  ``m_i`` the magnitudes of the summands the formula of ``g_i`` adds (their
  rounding, e.g. ``p_y - 1`` at a softmax loss's target class). Exact, from the
  oracle's analytic second derivatives; for a loss without them, from a
  numerical Jacobian of its exact gradient (``numerical_grad_condition``).
* ``s_i``: the absolute working scale, as in the forward model (``p_j`` of a
  softmax is ``exp`` of a difference of quantities of size ``max|x|``; a
  sigmoid's backward pass forms ``1 - sigma``).
* ``k_red(n) r_i``: a sum of ``n`` addends the backward pass needs -- the weight
  sum of a weighted mean's denominator, softmax's row sum.

Kinks: where the gradient is continuous but not differentiable (Huber's ``|d| =
delta``) or jumps (a hinge), and the model's relative input perturbation ``K_IN u``
reaches the kink (``GradientCondition.kink_reach``), a backward pass exact on those
perturbed inputs may be on either side: the bound adds the other side's sensitivity
(``kink_condition``) or the jump (``kink_jump``) there, and only there.

The constants are the forward model's, for the same reasons: ``K_OUT = 8``
roundings at or after the last cancellation (the backward pass's products with
the incoming gradient, a weight, ``1/D``, the smoothing factors, the final
rounding), ``K_IN = 4`` for the first operations' relative perturbation of each
input, ``K_ABS = 4`` multiples of ``u s_i``, ``k_red`` for pairwise summation,
``K_FLOOR = 16`` subnormal quanta.

Special values: the gradient is *undefined* where the loss value ``F`` is not
finite (a masked target class, a NaN logit, a mean over zero weight); those
cases are not judged (:func:`evaluate_gradient` returns None). Where ``F`` is
finite every exact gradient component is finite, and a NaN or infinite observed
component is a failure.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, replace
from functools import lru_cache

import mpmath
import numpy as np
from mpmath import mpf

from oracle.core import FloatFormat, correctly_rounded, format_of, is_nan, working_precision
from oracle.gradients import ConditionUnavailable, GradientCondition, numerical_grad_condition

from . import oracle_cache
from .cases import Case
from .checks import (
    AdapterContractError,
    AdapterFailure,
    Outcome,
    Unsupported,
    _CaseKey,
    failure_message,
)
from .registry import spec_for
from .verdict import K_ABS, K_FLOOR, K_IN, K_OUT, judge, k_red

__all__ = [
    "GradientEvaluation",
    "GradientUndefined",
    "call_adapter_grad",
    "check_gradient_case",
    "differentiable",
    "evaluate_gradient",
    "gradient_bound",
    "gradient_case",
]


def differentiable(case: Case, name: str) -> bool:
    """Whether ``case`` passes ``name`` as a floating array (a parameter to differentiate by)."""
    value = case.args.get(name, case.kwargs.get(name))
    return isinstance(value, np.ndarray) and value.dtype != bool and not np.issubdtype(value.dtype, np.integer)


def gradient_case(case: Case, wrt: str) -> Case:
    """``case`` as a gradient case w.r.t. ``wrt`` (``Case.wrt``)."""
    return replace(case, wrt=wrt)


def _wrt(case: Case) -> str:
    return case.wrt or spec_for(case.fn).grad_wrt[0]


class GradientUndefined(Exception):
    """The case has no gradient to judge (the loss is not finite there)."""


@dataclass(frozen=True)
class GradientEvaluation:
    """The oracle's gradient for a case: exact, correctly rounded, allowed error."""

    exact: np.ndarray  # object ndarray of mpf, the differentiated parameter's shape
    rounded: np.ndarray  # float64, correctly rounded to the dtype
    bound: np.ndarray  # float64, allowed absolute error per component


def gradient_bound(grad: np.ndarray, gc: GradientCondition, fmt: FloatFormat) -> np.ndarray:
    """The allowed absolute error of each gradient component (module docstring)."""
    u = mpf(fmt.unit_roundoff)
    floor = mpf(K_FLOOR) * mpf(fmt.smallest_subnormal)
    reduction = k_red(gc.count) if gc.count > 1 else 0
    out = np.empty(grad.shape, dtype=np.float64)
    with working_precision(64):
        for idx in np.ndindex(grad.shape):
            g, c, s, r = grad[idx], gc.condition[idx], gc.scale[idx], gc.summation[idx]
            if any(is_nan(v) for v in (g, c, s, r)):
                out[idx] = math.nan
                continue
            jump = mpf(0)
            if gc.kink_reach is not None and gc.kink_reach[idx] <= K_IN * u:
                # the inputs' perturbation reaches a kink: either side is legitimate
                if gc.kink_condition is not None:
                    c = c + gc.kink_condition[idx]
                if gc.kink_jump is not None:
                    jump = gc.kink_jump[idx]
            out[idx] = float(u * (K_OUT * abs(g) + K_IN * c + K_ABS * s + reduction * r) + jump + floor)
    return out


def _finite_total(case: Case) -> bool:
    with working_precision(64):
        value = case.call(spec_for(case.fn).terms).value
        if isinstance(value, np.ndarray):
            value = mpmath.fsum(value.reshape(-1).tolist()) if value.size else mpf(0)
        return bool(mpmath.isfinite(value))


def evaluate_gradient(case: Case, convention: str | None = None) -> GradientEvaluation:
    """Exact gradient of the output's sum w.r.t. ``case.wrt`` (default the first
    parameter) and its bound.

    ``convention`` differentiates a framework's documented formula instead of the spec's
    (an :mod:`oracle.conventions` entry with a ``grad``), to grade that framework's
    autodiff under its own semantics. Raises :class:`GradientUndefined` where the
    output's sum is not finite, and :class:`Unsupported` for a loss without an oracle
    gradient or a case too large for the numerical condition.
    """
    return _evaluate_cached(_CaseKey(case, convention))


#: Losses without an analytic ``<loss>_grad_condition`` whose gradient may be bounded by
#: :func:`numerical_grad_condition`: smooth in every floating input, no discrete-valued
#: floating target. None: the regression losses and ctc_loss ship analytic conditions
#: (oracle/gradients_regression.py); a loss without one is skipped as unsupported.
_NUMERICAL_CONDITION_OK: dict[str, bool] = {}


@lru_cache(maxsize=128)
def _evaluate_cached(key: _CaseKey) -> GradientEvaluation:
    """In memory (this process), then on disk (every process and run: suites/oracle_cache.py)."""
    disk = oracle_cache.current()
    if disk is not None and (stored := disk.get("gradient", key.key)) is not None:
        return stored
    evaluation = _evaluate(key)
    if disk is not None:
        disk.put("gradient", key.key, evaluation)
    return evaluation


def _convention_gradient_functions(name: str, case: Case, wrt: str):
    """``(grad, grad_condition)`` of an oracle convention, for ``wrt`` as the spec's are called."""
    from functools import partial

    from oracle.conventions import convention_for

    convention = convention_for(name)
    if convention.loss != case.fn or convention.grad is None or convention.grad_condition is None:
        raise ValueError(f"oracle convention {name!r} has no gradient of {case.fn}")
    if wrt == spec_for(case.fn).grad_wrt[0]:
        return convention.grad, convention.grad_condition
    return partial(convention.grad, wrt=wrt), partial(convention.grad_condition, wrt=wrt)


def _evaluate(key: _CaseKey) -> GradientEvaluation:
    case = key.case
    spec = spec_for(case.fn)
    wrt = _wrt(case)
    if key.convention is not None:
        grad, grad_condition = _convention_gradient_functions(key.convention, case, wrt)
    else:
        grad, grad_condition = spec.gradient_functions(wrt)
    if grad is None:
        raise Unsupported(f"the oracle has no gradient of {case.fn} w.r.t. {wrt}")
    if not differentiable(case, wrt):
        raise Unsupported(f"{case.fn}: the case passes no floating array {wrt!r} to differentiate by")
    if grad_condition is None and not _NUMERICAL_CONDITION_OK.get(case.fn, False):
        # Before the exact gradient: without a bound there is nothing to judge it against.
        raise Unsupported(
            f"no gradient error model for {case.fn} yet: it needs oracle.gradients."
            f"{case.fn}_grad_condition (the numerical fallback perturbs discrete targets "
            f"such as +-1 labels and is loose at hinge kinks)"
        )
    if not _finite_total(case):
        raise GradientUndefined(f"the output's sum is not finite: its gradient is undefined ({case.describe()})")
    fmt = format_of(case.dtype)
    exact, rounded = correctly_rounded(lambda: case.call(grad), fmt.name)
    with working_precision(64):
        if grad_condition is not None:
            gc = case.call(grad_condition)
        else:
            try:
                gc = numerical_grad_condition(grad, case.args, case.kwargs)
            except ConditionUnavailable as exc:
                raise Unsupported(f"no gradient bound for {case.fn}: {exc}") from None
    exact = np.asarray(exact, dtype=object)
    return GradientEvaluation(exact, np.asarray(rounded), gradient_bound(exact, gc, fmt))


def call_adapter_grad(adapter, case: Case) -> np.ndarray:
    """The adapter's gradient of the output's sum w.r.t. ``case.wrt`` (default the first
    parameter), contract enforced: a NumPy array of that parameter's shape and dtype. No
    ``grad``, or NotImplementedError, is :class:`Unsupported`; any other exception an
    :class:`AdapterFailure`."""
    if not getattr(adapter, "supports_grad", False):
        raise Unsupported(f"adapter {adapter.name!r} computes no gradients (it has no grad function)")
    wrt = _wrt(case)
    try:
        result = adapter.grad(case.fn, case.args, case.kwargs, wrt=wrt)
    except NotImplementedError as exc:
        raise Unsupported(f"{adapter.name}.grad({case.fn}, wrt={wrt!r}): {exc or 'not implemented'}") from exc
    except Exception as exc:
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise AdapterFailure(f"{adapter.name}.grad({case.fn!r}) raised {tail}") from exc
    if not isinstance(result, (np.ndarray, np.generic)):
        raise AdapterContractError(
            f"{adapter.name}.grad({case.fn!r}) returned {type(result).__name__}; gradients must be "
            f"NumPy arrays of {wrt}'s shape and dtype"
        )
    result = np.asarray(result)
    x = np.asarray(case.args.get(wrt, case.kwargs.get(wrt)))
    if result.dtype != x.dtype:
        raise AdapterContractError(
            f"{adapter.name}.grad({case.fn!r}, wrt={wrt!r}) returned dtype {result.dtype}; the "
            f"gradient must keep {wrt}'s dtype {x.dtype}"
        )
    if result.shape != x.shape:
        raise AdapterContractError(
            f"{adapter.name}.grad({case.fn!r}, wrt={wrt!r}) returned shape {result.shape}; the "
            f"gradient has {wrt}'s shape {x.shape}"
        )
    return result


def _message(adapter, case: Case, problem: str, evaluation: GradientEvaluation, verdict, observed,
             convention: str | None = None) -> str:
    text = failure_message(adapter, case, problem, evaluation, verdict, observed)
    head, _, rest = text.partition("\n")
    wrt = _wrt(case)
    head = head.replace(f"{case.fn} [", f"gradient d sum({case.fn}(...))/d {wrt} [", 1)
    if convention is not None:
        head = head.replace("does not conform to the spec", f"does not conform to oracle convention {convention!r}", 1)
    note = (
        "  gradient: the adapter's grad(), i.e. the framework's autodiff of the output's sum "
        f"w.r.t. {wrt}; differentiate the repro's output the same way"
    )
    return "\n".join([head, rest, note])


def check_gradient_case(adapter, case: Case, *, convention: str | None = None) -> Outcome:
    """Judge ``adapter``'s gradient on ``case`` against the oracle's exact one (the exact
    derivative of a documented framework formula instead when ``convention`` names one).

    Raises :class:`Unsupported` and :class:`GradientUndefined` (nothing to judge)."""
    evaluation = evaluate_gradient(case, convention)
    try:
        observed = call_adapter_grad(adapter, case)
    except (AdapterFailure, AdapterContractError) as exc:
        return Outcome(case, False, None, None, _message(adapter, case, str(exc), evaluation, None, None, convention))
    fmt = format_of(case.dtype)
    verdict = judge(observed.astype(np.float64), evaluation.exact, evaluation.rounded, evaluation.bound, fmt)
    message = "" if verdict.passed else _message(adapter, case, "", evaluation, verdict, observed, convention)
    return Outcome(case, verdict.passed, verdict, observed, message)

