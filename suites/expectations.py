"""Expected deviations: documented, cited differences an adapter is allowed to have.

An expectations file is TOML, one ``[[expected]]`` table per entry::

    [[expected]]
    id = "bce-with-logits-infinite-logit-nan"   # unique, stable
    kind = "special-value"        # "semantic" | "special-value" | "bug" | "accepts-invalid-input"
                                  # | "baseline" (written by python -m suites.baseline)
    losses = ["binary_cross_entropy_with_logits"]
    tests = ["test_matches_oracle", "test_edge_cases"]   # optional: default every test
    dtypes = ["float32"]          # optional: default every dtype
    labels = ["..."]              # optional: edge/invalid case labels
    when = ["infinite_input"]     # optional: case features that must all hold
    adapters = ["torch", "torch-nn"]  # optional: default the built-in adapters sharing this
                                      # file (torch.toml: torch, torch-nn); for a file given
                                      # with --expectations, every adapter
    convention = "keras-bce-clip" # optional: judge matching cases against the framework's own
                                  # documented formula (oracle/conventions.py) instead
    reason = "what differs and why"
    citation = "https://..."      # where the framework documents or tracks it (may be
                                  # empty for kind "baseline": failures accepted as they were)

An entry applies to the gradient tests (``test_gradient_*``) only when its ``tests``
names them: a documented difference of the forward value does not explain a
gradient. A gradient entry's ``convention`` must name an oracle convention with a
gradient (``oracle.conventions.Convention.grad``): the failing gradient is then re-judged
against the exact derivative of the framework's formula, as below. The features
``wrt_input``, ``wrt_target``, ``wrt_var``, ... say which parameter's gradient an entry is
about.

A failing case that matches an entry is recorded as a *deviation* (the report's
deviation table), not a failure. With ``convention``, the case is re-judged
against the framework's documented formula evaluated exactly by the oracle: it
is a deviation only if the output is accurate under that formula, and a failure
(showing both judgements) otherwise. ``when`` names are the case features in
:data:`FEATURES`: predicates on the case's inputs, so an entry describes the
condition of a difference, not a list of example values.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import tomllib

from oracle.core import format_of

from .cases import Case

__all__ = ["FEATURES", "Expectation", "ExpectationLookup", "ExpectationsError", "builtin_expectations_file", "load_expectations"]

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "adapters" / "expectations"


def builtin_adapters_sharing(path: Path, names) -> tuple[str, ...]:
    """The built-in adapter names whose expectations file is ``path``."""
    return tuple(n for n in names if builtin_expectations_file(n) == path)


def builtin_expectations_file(adapter_name: str) -> Path | None:
    """``adapters/expectations/<prefix>.toml`` for a built-in adapter, the longest
    hyphen-separated prefix of its name that has a file: ``torch`` and ``torch-nn`` share
    ``torch.toml``, ``torch-compile`` and ``torch-compile-dynamic`` share
    ``torch-compile.toml`` (compiled code is a different implementation: eager PyTorch's
    entries are not assumed to hold for it). Entries may narrow themselves with ``adapters``."""
    parts = adapter_name.split("-")
    for end in range(len(parts), 0, -1):
        path = EXPECTATIONS_DIR / f"{'-'.join(parts[:end])}.toml"
        if path.is_file():
            return path
    return None

KINDS = ("semantic", "special-value", "bug", "accepts-invalid-input", "baseline")
_FIELDS = {"id", "kind", "losses", "tests", "dtypes", "labels", "when", "adapters", "reason", "citation", "convention"}


class ExpectationsError(ValueError):
    """A malformed expectations file; the message names the file, the entry and the fix."""


def _floats(case: Case) -> list[np.ndarray]:
    return [
        np.asarray(v, dtype=np.float64)
        for v in list(case.args.values()) + list(case.kwargs.values())
        if isinstance(v, np.ndarray) and not np.issubdtype(v.dtype, np.integer)
    ]


def _input(case: Case) -> np.ndarray:
    return np.asarray(case.args["input"] if "input" in case.args else case.args["log_probs"], dtype=np.float64)


def _logit_spread_overflows(case: Case) -> bool:
    """Some softmax row's max - min over finite logits exceeds the dtype's max: ``x - max``
    overflows to ``-inf`` in the dtype although the exact difference is finite."""
    x = _input(case)
    if x.ndim == 0:
        return False
    rows = np.moveaxis(x, 1 if x.ndim > 1 else 0, -1).reshape(-1, x.shape[1 if x.ndim > 1 else 0])
    limit = format_of(case.dtype).max_finite
    for row in rows:
        finite = row[np.isfinite(row)]
        if finite.size and finite.max() - finite.min() > limit:
            return True
    return False


def _zero_target(case: Case) -> bool:
    """A target probability of exactly 0 (``-inf`` for ``kl_div`` with ``log_target``)."""
    target = np.asarray(case.args.get("target", 1.0), dtype=np.float64)
    zero = -np.inf if case.kwargs.get("log_target") else 0.0
    return bool(np.any(target == zero))


def _intermediate_exceeds_max(case: Case) -> bool:
    """An intermediate a standard algorithm forms in the dtype exceeds the dtype's max
    while the exact result may not: the sum of the terms a reduction adds, or (label
    smoothing) a row's sum over classes of ``w_c * -log p_c``; or a logit spread."""
    from oracle.core import mp_array, working_precision

    from .registry import spec_for

    limit = format_of(case.dtype).max_finite
    if _logit_spread_overflows(case) if case.fn in ("cross_entropy", "log_softmax", "softmax") else False:
        return True
    with working_precision(64):
        try:
            terms = case.call(spec_for(case.fn).terms).terms
        except ValueError:  # an input the spec rejects has no intermediates to speak of
            return False
        magnitudes = [abs(t) for t in terms.reshape(-1) if t == t]
        if sum(magnitudes) > limit:
            return True
        if case.fn == "binary_cross_entropy_with_logits" and _bce_logits_summand_overflows(case, limit):
            return True
        if case.fn == "cross_entropy" and case.kwargs.get("label_smoothing"):
            import oracle

            x = case.args["input"]
            lsm = oracle.log_softmax(x, 1 if x.ndim > 1 else 0)
            weight = case.kwargs.get("weight")
            w = mp_array(weight) if weight is not None else None
            rows = np.moveaxis(lsm, 1 if x.ndim > 1 else 0, -1).reshape(-1, lsm.shape[1 if x.ndim > 1 else 0])
            # The smoothing term is summed over classes and rows before it is scaled by eps/C.
            total = sum(abs(v * (w[c] if w is not None else 1)) for row in rows for c, v in enumerate(row) if v == v)
            if total > limit:
                return True
    return False


def _bce_logits_summand_overflows(case: Case, limit: float) -> bool:
    """The max-shifted form ``(1-y) x + (1 + (p-1) y) (log1p(e^-|x|) + max(-x, 0))`` adds
    summands larger than the dtype's max although their sum (the loss) may be representable."""
    x = _input(case)
    y = np.asarray(case.args["target"], dtype=np.float64)
    p = case.kwargs.get("pos_weight")
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), x.shape) if p is not None else np.ones_like(x)
    with np.errstate(invalid="ignore", over="ignore"):
        first = np.abs((1 - y) * x)
        second = np.abs((1 + (p - 1) * y) * np.maximum(-x, 0))
    finite = np.isfinite(x) & np.isfinite(y)
    return bool(np.any(first[finite] > limit) or np.any(second[finite] > limit))


FEATURES: dict[str, Callable[[Case], bool]] = {
    "infinite_input": lambda c: any(np.isinf(a).any() for a in _floats(c)),
    "probability_target": lambda c: c.fn == "cross_entropy" and not np.issubdtype(np.asarray(c.args["target"]).dtype, np.integer),
    "logit_spread_overflows": _logit_spread_overflows,
    "input_beyond_exp_range": lambda c: bool(
        np.any(np.abs(_input(c)[np.isfinite(_input(c))]) > math.log(format_of(c.dtype).max_finite))
    ),
    "zero_target": _zero_target,
    "intermediate_exceeds_dtype_max": _intermediate_exceeds_max,
    "batchmean_with_legacy_args": lambda c: c.kwargs.get("reduction") == "batchmean"
    and (c.kwargs.get("size_average") is not None or c.kwargs.get("reduce") is not None),
}


# Features of the jax adapter's deviations: XLA:CPU's subnormal flushing, and
# optax's treatment of zero label mass.


def _subnormal(values: np.ndarray, dtype: str) -> bool:
    tiny = format_of(dtype).smallest_normal
    with np.errstate(invalid="ignore"):
        return bool(np.any((values != 0) & (np.abs(values) < tiny)))


def _subnormal_input(case: Case) -> bool:
    """Some floating input is subnormal in the case's dtype (nonzero, below the smallest
    normal): hardware in denormals-are-zero mode reads it as 0."""
    return any(_subnormal(a, case.dtype) for a in _floats(case))


def _subnormal_result(case: Case) -> bool:
    """Some element of the exact result, correctly rounded to the dtype, is subnormal:
    hardware in flush-to-zero mode returns 0 there."""
    from .checks import evaluate_oracle

    try:
        rounded = np.asarray(evaluate_oracle(case).rounded, dtype=np.float64)
    except Exception:  # an input the spec rejects has no exact result
        return False
    return _subnormal(rounded, case.dtype)


def _subnormal_result_or_term(case: Case) -> bool:
    """The exact result, correctly rounded to the dtype, or one of the per-element terms
    a reduction adds (the spec's decomposition) is subnormal: hardware in flush-to-zero
    mode returns 0 for it (a weighted mean divides such terms by tiny weights)."""
    from .checks import evaluate_oracle

    try:
        evaluation = evaluate_oracle(case)
    except Exception:  # an input the spec rejects has no exact result
        return False
    terms = np.array([float(t) for t in np.asarray(evaluation.terms.terms, dtype=object).reshape(-1)])
    rounded = np.asarray(evaluation.rounded, dtype=np.float64)
    return _subnormal(rounded, case.dtype) or _subnormal(terms, case.dtype)


def _zero_weight_on_masked_class(case: Case) -> bool:
    """``cross_entropy``/``nll_loss``: a class whose weight is 0 has a ``-inf`` logit in
    some row, so the spec's ``w_c * (-log p_c)`` is ``0 * inf``."""
    weight = case.kwargs.get("weight")
    if weight is None or case.fn not in ("cross_entropy", "nll_loss"):
        return False
    x = _input(case)
    w = np.asarray(weight, dtype=np.float64)
    axis = 1 if x.ndim > 1 else 0
    if x.ndim == 0 or w.shape != (x.shape[axis],):
        return False
    masked = np.moveaxis(np.isneginf(x), axis, -1).reshape(-1, w.size).any(axis=0)
    return bool(np.any(masked & (w == 0)))


def _nonzero_sum_over_zero_denominator(case: Case) -> bool:
    """A ``mean`` over a zero denominator (every position ignored, or every selected
    class weight 0) of terms that do not sum to 0 (label smoothing's part): the spec's
    mean is NaN (PyTorch divides its NLL part 0/0 first), one sum / denominator is +-inf."""
    from oracle.core import working_precision
    from oracle.reduction import exact_sum

    from .registry import spec_for

    try:
        with working_precision(64):
            terms = case.call(spec_for(case.fn).terms)
            return terms.reduction == "mean" and terms.denominator == 0 and exact_sum(terms.terms) != 0
    except Exception:  # an input the spec rejects has no terms
        return False


def _log1p_argument_near_minus_0_41(case: Case) -> bool:
    """``binary_cross_entropy``'s ``log(1 - p)`` is computed as ``log1p(-p)``: some
    probability p with a target below 1 lies in [0.28, 0.53], where XLA:CPU's float64
    log1p is up to 129 ULP off (jax-ml/jax#39707). For ``binary_cross_entropy_with_logits``
    p is ``sigmoid(input)``: the property BCEWithLogits(x) = BCE(sigmoid(x)) computes that."""
    if case.fn == "binary_cross_entropy":
        p = _input(case)
    elif case.fn == "binary_cross_entropy_with_logits":
        with np.errstate(over="ignore"):
            p = 1 / (1 + np.exp(-_input(case)))
    else:
        return False
    y = np.asarray(case.args["target"], dtype=np.float64)
    p, y = np.broadcast_arrays(p, y)
    return bool(np.any((p >= 0.28) & (p <= 0.53) & (y < 1)))


def _probability_product_below_1e_12(case: Case) -> bool:
    """Some probability ``x`` has ``x (1 - x) < 1e-12``: PyTorch's BCE backward divides
    by ``max(x (1 - x), 1e-12)``, so its gradient differs from the derivative there."""
    x = _input(case)
    with np.errstate(invalid="ignore"):
        return bool(np.any(x * (1.0 - x) < 1e-12))


def _bce_log_derivative_overflows(case: Case) -> bool:
    """Some probability ``x`` makes ``d log(x)/dx = 1/x`` or ``d log(1-x)/dx`` infinite in the
    dtype: ``x = 0``, ``x = 1``, or ``x`` below ``1/max``. Autodiff through ``max(log x, -100)``
    then multiplies that infinity by the clamp's zero: NaN."""
    x = _input(case)
    limit = format_of(case.dtype).max_finite
    with np.errstate(divide="ignore"):
        return bool(np.any((x == 0) | (x == 1) | (np.abs(1.0 / x) > limit) | (np.abs(1.0 / (1.0 - x)) > limit)))


def _pos_weight_with_zero_logit(case: Case) -> bool:
    """``pos_weight`` is given and some logit is exactly 0 (where ``|x|`` and ``max(-x, 0)``
    have their kinks)."""
    return case.kwargs.get("pos_weight") is not None and bool(np.any(_input(case) == 0))


def _weighted_logit_overflows(case: Case) -> bool:
    """``binary_cross_entropy_with_logits``'s gradient w.r.t. ``target`` or ``pos_weight``
    where for some finite logit ``|w| |x| max(1, |p|, |p - 1|)`` exceeds the dtype's largest
    finite value: the size of the products a backward pass through the max-shifted form
    ``w ((1 - y) x + (1 + (p - 1) y) L)`` (``L ~ max(-x, 0)``) forms, although the exact
    gradient (``w (p softplus(-x) - softplus(x))``, ``w y softplus(-x)``) may be far smaller."""
    if case.fn != "binary_cross_entropy_with_logits" or case.wrt not in ("target", "pos_weight"):
        return False
    x = _input(case)
    ones = np.ones_like(x)
    try:
        w = np.broadcast_to(np.abs(np.asarray(case.kwargs.get("weight", ones), dtype=np.float64)), x.shape)
        p = np.broadcast_to(np.asarray(case.kwargs.get("pos_weight", ones), dtype=np.float64), x.shape)
    except ValueError:  # shapes the spec rejects
        return False
    factor = np.maximum(np.maximum(1.0, np.abs(p)), np.abs(p - 1.0))
    with np.errstate(over="ignore", invalid="ignore"):
        size = w * np.abs(x) * factor
    finite = np.isfinite(x)
    return bool(np.any(finite & (size > format_of(case.dtype).max_finite)))


def _subnormal_gradient_addend(case: Case) -> bool:
    """``binary_cross_entropy_with_logits``'s gradient w.r.t. a broadcast ``pos_weight`` or
    ``weight``: some per-element addend of a component (the gradient w.r.t. that parameter
    expanded to the input's shape, before the sum over the broadcast axes) is a nonzero
    subnormal, which flush-to-zero drops from a normal sum."""
    if case.fn != "binary_cross_entropy_with_logits" or case.wrt not in ("weight", "pos_weight"):
        return False
    import mpmath

    import oracle

    x = _input(case)
    kwargs = dict(case.kwargs)
    try:
        kwargs[case.wrt] = np.broadcast_to(np.asarray(kwargs[case.wrt]), x.shape).copy()
        with mpmath.workprec(64):
            addends = oracle.binary_cross_entropy_with_logits_grad(
                case.args["input"], case.args["target"], **kwargs, wrt=case.wrt
            )
    except Exception:  # an invalid case: no gradient
        return False
    tiny = format_of(case.dtype).smallest_normal
    return any(mpmath.isfinite(v) and v != 0 and abs(v) < tiny for v in addends.reshape(-1))


def _subnormal_gradient(case: Case) -> bool:
    """Some component of the exact gradient (suites/gradients.py) is nonzero and below the
    dtype's smallest normal: hardware in flush-to-zero mode returns 0 there."""
    from .gradients import evaluate_gradient

    try:
        exact = evaluate_gradient(case).exact
    except Exception:  # no gradient to judge (undefined, unsupported), or an invalid case
        return False
    tiny = format_of(case.dtype).smallest_normal
    return any(v != 0 and abs(v) < tiny for v in exact.reshape(-1))


def _ctc_subnormal_gradient_through_log_softmax(case: Case) -> bool:
    """``ctc_loss``: some component of the gradient through ``log_softmax`` (the convention
    ``ctc-gradient-through-log-softmax``, ``softmax(x) - gamma``) is nonzero and below the
    dtype's smallest normal: hardware in flush-to-zero mode returns 0 there."""
    if case.fn != "ctc_loss":
        return False
    from .gradients import evaluate_gradient

    try:
        exact = evaluate_gradient(case, "ctc-gradient-through-log-softmax").exact
    except Exception:  # no gradient to judge (undefined, unsupported), or an invalid case
        return False
    tiny = format_of(case.dtype).smallest_normal
    return any(v != 0 and abs(v) < tiny for v in exact.reshape(-1))


def _ctc_softmax_below_smallest_normal(case: Case) -> bool:
    """``ctc_loss``: some used frame's softmax probability (of its ``log_softmax``) is below the
    dtype's smallest normal (subnormal or zero when rounded): where a kernel that floors
    probabilities at it (warp-ctc) differs."""
    return case.fn == "ctc_loss" and _ctc_log_softmax_below(case, math.log(format_of(case.dtype).smallest_normal))


def _ctc_log_softmax_below(case: Case, floor: float) -> bool:
    """Some used frame of a ``ctc_loss`` case (its first ``input_lengths`` time steps) has a
    normalized log-probability (``log_softmax`` over the classes, in float64) below ``floor``."""
    x = np.asarray(case.args["log_probs"], dtype=np.float64)
    x = x[:, None, :] if x.ndim == 2 else x
    lengths = np.asarray(case.args["input_lengths"]).reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        for n, steps in enumerate(lengths):
            rows = x[: int(steps), n, :]
            if rows.size:
                top = np.max(rows, axis=1, keepdims=True)
                lsm = rows - top - np.log(np.sum(np.exp(rows - top), axis=1, keepdims=True))
                if np.any(lsm < floor):
                    return True
    return False


def _ignored_row_with_undefined_softmax(case: Case) -> bool:
    """A class-index position whose target is ``ignore_index`` has a softmax row that is
    undefined (a NaN or ``+inf`` logit, or every logit ``-inf``)."""
    target = np.asarray(case.args.get("target"))
    if case.fn != "cross_entropy" or not np.issubdtype(target.dtype, np.integer):
        return False
    x = _input(case)
    rows = _class_axis_last(x).reshape(-1, x.shape[1] if x.ndim > 1 else x.shape[0])
    ignored = target.reshape(-1) == case.kwargs.get("ignore_index", -100)
    with np.errstate(invalid="ignore"):
        undefined = np.any(np.isnan(rows) | (rows == np.inf), axis=-1) | np.all(rows == -np.inf, axis=-1)
    return bool(np.any(ignored & undefined))


def _zero_target_on_masked_class(case: Case) -> bool:
    """A probability-target ``cross_entropy`` position puts target 0 on a class whose
    log-softmax is ``-inf`` in the dtype: its logit is ``-inf`` (a masked class), or its gap
    to the row's largest finite logit exceeds the dtype's max (``x - max`` overflows). The
    spec's ``0 log 0 = 0`` makes that class's term identically 0; ``target * log_softmax``
    in the dtype is ``0 * -inf = NaN``."""
    target = np.asarray(case.args.get("target"))
    if case.fn != "cross_entropy" or np.issubdtype(target.dtype, np.integer):
        return False
    x = _input(case)
    if x.ndim == 0 or target.shape != x.shape:
        return False
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    rows = _class_axis_last(x).reshape(-1, n_classes)
    zero = _class_axis_last(np.asarray(target, dtype=np.float64)).reshape(-1, n_classes) == 0
    limit = format_of(case.dtype).max_finite
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.where(np.isfinite(rows), rows, -np.inf)
        top = finite.max(axis=-1, keepdims=True)
        masked = np.isneginf(rows) | (np.isfinite(top) & np.isfinite(rows) & (top - rows > limit))
    return bool(np.any(zero & masked))


FEATURES.update({
    "zero_target_on_masked_class": _zero_target_on_masked_class,
    "ignored_row_with_undefined_softmax": _ignored_row_with_undefined_softmax,
    "bce_log_derivative_overflows": _bce_log_derivative_overflows,
    "pos_weight_with_zero_logit": _pos_weight_with_zero_logit,
    "weighted_logit_overflows": _weighted_logit_overflows,
    "subnormal_gradient_addend": _subnormal_gradient_addend,
    "subnormal_gradient": _subnormal_gradient,
    "ctc_subnormal_gradient_through_log_softmax": _ctc_subnormal_gradient_through_log_softmax,
    "ctc_softmax_below_smallest_normal": _ctc_softmax_below_smallest_normal,
    "probability_product_below_1e_12": _probability_product_below_1e_12,
    "subnormal_input": _subnormal_input,
    "subnormal_result": _subnormal_result,
    "subnormal_result_or_term": _subnormal_result_or_term,
    "zero_weight_on_masked_class": _zero_weight_on_masked_class,
    "nonzero_sum_over_zero_denominator": _nonzero_sum_over_zero_denominator,
    "log1p_argument_near_minus_0_41": _log1p_argument_near_minus_0_41,
})


# Features of the tensorflow adapter's deviations: Keras's probability clipping, its
# sample-weight reductions, its label handling, and TensorFlow's special values.

_KERAS_EPSILON = 1e-7  # keras.config.epsilon()


def _in_dtype(value: float, dtype: str) -> float:
    """``value`` rounded to ``dtype``, as TensorFlow converts a Python float constant."""
    from mpmath import mpf

    from oracle.core import round_to_format

    return round_to_format(mpf(value), format_of(dtype))


def _keras_clip_bounds(dtype: str) -> tuple[float, float]:
    """Keras's ``clip(x, epsilon, 1 - epsilon)`` bounds as TensorFlow forms them in ``dtype``."""
    return _in_dtype(_KERAS_EPSILON, dtype), _in_dtype(1.0 - _KERAS_EPSILON, dtype)


def _class_axis_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if x.ndim > 1 else x


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    """softmax over the class axis (1, or 0 for a 1-d input), class axis last, in float64."""
    rows = _class_axis_last(x)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = rows - np.max(rows, axis=-1, keepdims=True)
        e = np.exp(shifted)
        return e / np.sum(e, axis=-1, keepdims=True)


def _kl_distributions(case: Case) -> tuple[np.ndarray, np.ndarray] | None:
    """``(p, q)`` in float64 for the KL divergence a case computes with Keras:
    ``kl_div(input=log q, target=p)``, or the ``H(P, Q) = H(P) + KL(P || softmax(x))``
    relation of a probability-target ``cross_entropy`` case."""
    x = _input(case)
    target = np.asarray(case.args.get("target", np.nan), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if case.fn == "kl_div":
            p = np.exp(target) if case.kwargs.get("log_target") else target
            q = np.exp(x)
            return np.broadcast_arrays(p, q)
        if FEATURES["probability_target"](case) and x.ndim:
            return _class_axis_last(target), _softmax_rows(x)
    return None


def _keras_clips_probability(case: Case) -> bool:
    """Keras clips a probability this case holds: a ``binary_cross_entropy`` input outside
    ``[eps, 1 - eps]``; for ``kl_div`` a target ``p`` or ``q = exp(input)`` outside
    ``[eps, 1]``; for a probability-target ``cross_entropy`` (KL against its softmax) a
    target or a softmax probability below ``eps``. ``eps = 1e-7`` in the dtype."""
    lo, hi = _keras_clip_bounds(case.dtype)
    if case.fn == "binary_cross_entropy":
        x = _input(case)
        return bool(np.any((x < lo) | (x > hi)))
    if case.fn == "kl_div":
        # In log space, so that exp rounding to 1 cannot hide a q or p above 1.
        x = _input(case)
        target = np.asarray(case.args["target"], dtype=np.float64)
        log_lo = math.log(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_p = target if case.kwargs.get("log_target") else np.log(target)
            return bool(np.any((log_p < log_lo) | (log_p > 0)) or np.any((x < log_lo) | (x > 0)))
    pair = _kl_distributions(case)
    if pair is None:
        return False
    p, q = pair
    with np.errstate(invalid="ignore"):
        return bool(np.any((p < lo) | (p > 1) | (q < lo) | (q > 1)))


def _kl_ratio_overflows(case: Case) -> bool:
    """Keras's ``p / q`` of the (clipped) KL distributions exceeds the dtype's max: the
    ratio is formed in the dtype before its log (float16: ``q < p / 65504``)."""
    pair = _kl_distributions(case)
    if pair is None:
        return False
    lo, _ = _keras_clip_bounds(case.dtype)
    p, q = (np.clip(v, lo, 1.0) for v in pair)
    with np.errstate(invalid="ignore", divide="ignore"):
        return bool(np.any(p / q > format_of(case.dtype).max_finite))


def _kl_ratio_gradient_overflows(case: Case) -> bool:
    """The backward pass of Keras's ``log(p / q)`` overflows: TensorFlow's RealDiv gradient
    w.r.t. the divisor forms ``(-p / q) / q`` in the dtype before it multiplies the upstream
    gradient, which is inf for ``p / q^2`` beyond the dtype's max (float16: ``q < 0.0039``
    for ``p = 1``) although ``d/dx = -p`` is small. ``p, q`` are the clipped KL distributions."""
    pair = _kl_distributions(case)
    if pair is None:
        return False
    fmt = format_of(case.dtype)
    lo, _ = _keras_clip_bounds(case.dtype)
    p, q = (np.clip(v, lo, 1.0) for v in pair)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = (-p / q).astype(fmt.numpy_dtype).astype(np.float64)
        formed = (ratio / q).astype(fmt.numpy_dtype).astype(np.float64)
    return bool(np.any(np.isinf(formed) & np.isfinite(p) & np.isfinite(q)))


def _nll_weight_gradient_sum_overflows(case: Case) -> bool:
    """``nll_loss`` with class weights: a sum the weight's gradient forms in the dtype exceeds
    its max. The gradient of ``tf.gather(weight, target)`` adds the incoming gradients of every
    position of a class: ``sum |l_n|`` over the class's positions (``l_n = -x[n, t_n]``); for
    ``mean`` those divided by ``W = sum w_n``, plus ``S / W^2`` per position, and the forward sum
    ``S = sum |w_n l_n|`` that ``S / W`` differentiates. Partial sums are taken in magnitude (the
    order is the kernel's), so the exact gradient may still be representable."""
    if case.fn != "nll_loss" or case.kwargs.get("weight") is None:
        return False
    x = _class_axis_last(_input(case))
    target = np.asarray(case.args["target"])
    weight = np.asarray(case.kwargs["weight"], dtype=np.float64)
    valid = target != case.kwargs.get("ignore_index", -100)
    index = np.where(valid, target, 0)
    picked = np.take_along_axis(x, index[..., None], axis=-1)[..., 0]
    keep = valid & np.isfinite(picked)
    terms, classes = np.abs(picked[keep]), index[keep]
    limit = format_of(case.dtype).max_finite
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        per_class = {c: math.fsum(terms[classes == c]) for c in np.unique(classes)}
        if case.kwargs.get("reduction", "mean") != "mean":
            return any(v > limit for v in per_class.values())
        w = weight[classes]
        total = math.fsum(np.abs(w * terms))
        denominator = math.fsum(w)
        if total > limit:
            return True
        if denominator == 0:
            return False
        return any(v / abs(denominator) + np.sum(classes == c) * total / denominator**2 > limit
                   for c, v in per_class.items())


def _one_minus_probability_inexact(case: Case) -> bool:
    """``binary_cross_entropy``: some element with target ``y < 1`` whose ``1 - x`` is not
    representable in the dtype (``0 < x < 1/2`` mostly), so ``log(1 - x)`` evaluated after
    forming ``1 - x`` in the dtype (instead of ``log1p(-x)``) inherits its rounding."""
    if case.fn != "binary_cross_entropy":
        return False
    from mpmath import fsub, mpf

    from oracle.core import round_to_format

    fmt = format_of(case.dtype)
    try:
        x, y = np.broadcast_arrays(_input(case), np.asarray(case.args["target"], dtype=np.float64))
    except ValueError:  # shapes the spec rejects
        return False
    for xi, yi in zip(x.reshape(-1), y.reshape(-1)):
        if yi < 1 and 0 < xi < 1:
            # exact=True: at mpmath's default 53 bits, 1 - 1e-31 would round to 1 here too
            exact = fsub(1, mpf(float(xi)), exact=True)
            if round_to_format(exact, fmt) != exact:
                return True
    return False


def _probability_is_one(case: Case) -> bool:
    """``binary_cross_entropy``: some input probability is exactly 1."""
    return case.fn == "binary_cross_entropy" and bool(np.any(_input(case) == 1.0))


def _index_target(case: Case) -> np.ndarray | None:
    target = case.args.get("target")
    if case.fn not in ("cross_entropy", "nll_loss") or target is None:
        return None
    target = np.asarray(target)
    return target if np.issubdtype(target.dtype, np.integer) else None


def _mean_denominator_zero(case: Case) -> bool:
    """``reduction='mean'`` over a zero denominator (every target ignored, or the selected
    class weights summing to 0): the spec's mean is 0/0 = NaN."""
    from oracle.core import working_precision
    from oracle.reduction import resolve_reduction

    from .registry import spec_for

    reduction = resolve_reduction(case.kwargs.get("size_average"), case.kwargs.get("reduce"), case.kwargs.get("reduction", "mean"))
    if reduction != "mean" or case.fn not in ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"):
        return False
    try:
        with working_precision(64):
            denominator = case.call(spec_for(case.fn).terms).denominator
    except Exception:  # an input the spec rejects has no denominator
        return False
    return denominator is not None and denominator == 0


def _ignored_position_with_nonfinite_logit(case: Case) -> bool:
    """A class-index target position equal to ``ignore_index`` whose logit row holds an
    infinite or NaN value (the spec ignores that row whatever its logits)."""
    target = _index_target(case)
    if target is None:
        return False
    rows = _class_axis_last(_input(case)).reshape(-1, _input(case).shape[1 if _input(case).ndim > 1 else 0])
    ignored = target.reshape(-1) == case.kwargs.get("ignore_index", -100)
    return bool(np.any(ignored & ~np.all(np.isfinite(rows), axis=-1)))


def _class_index_not_representable(case: Case) -> bool:
    """A class index (other than ``ignore_index``) that the case's floating dtype cannot hold
    exactly (bfloat16: odd indices above 256; float16: above 2048)."""
    target = _index_target(case)
    if target is None:
        return False
    ignore = case.kwargs.get("ignore_index", -100)
    return any(v != ignore and _in_dtype(float(v), case.dtype) != v for v in target.reshape(-1).tolist())


def _single_class_index_target_rank_not_1(case: Case) -> bool:
    """``cross_entropy`` with one class and a class-index target that is not 1-d: input
    ``(1,)`` with a 0-d target, or ``(N, 1, d1..dK)``."""
    target = _index_target(case)
    x = _input(case)
    return (
        case.fn == "cross_entropy" and target is not None and x.ndim >= 1
        and x.shape[1 if x.ndim > 1 else 0] == 1 and target.ndim != 1
    )


def _pos_weight_factor_inexact(case: Case) -> bool:
    """``binary_cross_entropy_with_logits`` with ``pos_weight``: for some element with a
    nonzero target the factor ``1 + (p - 1) * y``, formed in the dtype op by op as
    ``tf.nn.weighted_cross_entropy_with_logits`` documents it, is not its exact value
    (it cancels for ``p`` far below 1: ``p = 1e-20, y = 1`` gives ``1 + (-1) = 0``)."""
    if case.fn != "binary_cross_entropy_with_logits" or case.kwargs.get("pos_weight") is None:
        return False
    import mpmath

    from oracle.core import round_to_format

    fmt = format_of(case.dtype)
    try:
        _, y, p = np.broadcast_arrays(
            _input(case), np.asarray(case.args["target"], dtype=np.float64),
            np.asarray(case.kwargs["pos_weight"], dtype=np.float64),
        )
    except ValueError:  # shapes the spec rejects
        return False

    def rounded(v):
        return mpmath.mpf(round_to_format(v, fmt))

    for pi, yi in zip(p.reshape(-1), y.reshape(-1)):
        if yi == 0 or not (np.isfinite(pi) and np.isfinite(yi)):
            continue
        p_minus_1 = mpmath.fsub(float(pi), 1, exact=True)
        exact = mpmath.fadd(1, mpmath.fmul(p_minus_1, float(yi), exact=True), exact=True)
        formed = rounded(mpmath.fadd(1, rounded(mpmath.fmul(rounded(p_minus_1), float(yi), exact=True)), exact=True))
        if formed != exact:
            return True
    return False


def _subnormal_result_any_reduction(case: Case) -> bool:
    """The exact result under reduction ``none``, ``sum`` or ``mean`` (or the case's own, for
    a function without reductions) has a subnormal element: a term a reduction reads, or a
    reduced value. Properties compare several reductions of one case."""
    from .checks import evaluate_oracle

    variants = [case]
    if "reduction" in case.kwargs:
        variants += [
            Case(case.fn, case.args, dict(case.kwargs, reduction=r), case.dtype)
            for r in ("none", "sum", "mean") if r != case.kwargs["reduction"]
        ]
    for variant in variants:
        try:
            rounded = np.asarray(evaluate_oracle(variant).rounded, dtype=np.float64)
        except Exception:  # an input the spec rejects has no exact result
            continue
        if _subnormal(rounded, case.dtype):
            return True
    return False


def _unbatched_weighted_mean(case: Case) -> bool:
    """``cross_entropy`` of one position (a ``(C)`` input, 0-d target) with class weights and
    ``reduction='mean'``: the mean is that position's weighted loss over its weight."""
    return (
        case.fn == "cross_entropy" and _input(case).ndim == 1
        and case.kwargs.get("weight") is not None and case.kwargs.get("reduction", "mean") == "mean"
    )


def _masked_mean_rescale_overflows(case: Case) -> bool:
    """``cross_entropy`` mean with some targets ignored, where a term scaled by
    ``positions / non-ignored positions`` exceeds the dtype's max: Keras's
    ``sum_over_batch_size`` masks by weighting each kept term with that ratio before
    dividing by the number of positions."""
    from oracle.core import working_precision

    from .registry import spec_for

    target = _index_target(case)
    if case.fn != "cross_entropy" or target is None or case.kwargs.get("reduction", "mean") != "mean":
        return False
    kept = int(np.sum(target != case.kwargs.get("ignore_index", -100)))
    if kept == 0 or kept == target.size:
        return False
    try:
        with working_precision(64):
            terms = case.call(spec_for(case.fn).terms).terms
    except Exception:  # an input the spec rejects
        return False
    largest = max((abs(t) for t in terms.reshape(-1) if t == t), default=0)
    return bool(largest * target.size / kept > format_of(case.dtype).max_finite)


FEATURES.update({
    "pos_inf_input": lambda c: any(np.isposinf(a).any() for a in _floats(c)),
    "reduction_none": lambda c: c.kwargs.get("reduction") == "none",
    "label_smoothing": lambda c: c.fn == "cross_entropy" and bool(c.kwargs.get("label_smoothing")),
    "class_weight": lambda c: c.kwargs.get("weight") is not None,
    "mean_denominator_zero": _mean_denominator_zero,
    "ignored_position_with_nonfinite_logit": _ignored_position_with_nonfinite_logit,
    "class_index_not_representable": _class_index_not_representable,
    "single_class_index_target_rank_not_1": _single_class_index_target_rank_not_1,
    "probability_is_one": _probability_is_one,
    "one_minus_probability_inexact": _one_minus_probability_inexact,
    "keras_clips_probability": _keras_clips_probability,
    "kl_ratio_overflows": _kl_ratio_overflows,
    "kl_ratio_gradient_overflows": _kl_ratio_gradient_overflows,
    "nll_weight_gradient_sum_overflows": _nll_weight_gradient_sum_overflows,
    "masked_mean_rescale_overflows": _masked_mean_rescale_overflows,
    "pos_weight_factor_inexact": _pos_weight_factor_inexact,
    "subnormal_result_any_reduction": _subnormal_result_any_reduction,
    "unbatched_weighted_mean": _unbatched_weighted_mean,
    "subnormal_weight": lambda c: any(
        _subnormal(np.asarray(c.kwargs[k], dtype=np.float64), c.dtype)
        for k in ("weight", "pos_weight") if c.kwargs.get(k) is not None
    ),
})


# ---------------------------------------------------------------- margin and embedding losses (issue 5)

_VECTOR_ARGS = ("input1", "input2", "anchor", "positive", "negative")


def _soft_margin_exp_overflows(case: Case) -> bool:
    """``soft_margin_loss`` with a finite ``-y x`` beyond ``log(max)``: the naive
    ``log1p(exp(-y x))`` overflows to inf in the dtype although the loss is about ``-y x``."""
    if case.fn != "soft_margin_loss":
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        z = -np.asarray(case.args["target"], dtype=np.float64) * _input(case)
    finite = np.isfinite(z)
    return bool(np.any(z[finite] > math.log(format_of(case.dtype).max_finite)))


def _soft_margin_exp_overflows_upcast(case: Case) -> bool:
    """As ``soft_margin_exp_overflows``, for code that computes float16 and bfloat16 in
    float32 and rounds at the end (Inductor's generated kernels): ``exp(-y x)`` overflows
    beyond ``log(max)`` of float32 (float64: of float64), not of the case's dtype."""
    if case.fn != "soft_margin_loss":
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        z = -np.asarray(case.args["target"], dtype=np.float64) * _input(case)
    finite = np.isfinite(z)
    compute = "float64" if case.dtype == "float64" else "float32"
    return bool(np.any(z[finite] > math.log(format_of(compute).max_finite)))


def _inputs_span_exceeds_max(case: Case) -> bool:
    """The finite floating inputs (and the margin) span more than the dtype's max: a hinge
    argument ``margin - x_y + x_i`` (or ``x1 - x2``) formed in the dtype can overflow."""
    values = np.concatenate([a.reshape(-1) for a in _floats(case)] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if not values.size:
        return False
    margin = abs(float(case.kwargs.get("margin", 1.0 if case.fn == "multi_margin_loss" else 0.0)))
    return float(values.max()) - float(values.min()) + margin > format_of(case.dtype).max_finite


def _vectors_of(case: Case) -> list[np.ndarray]:
    return [
        np.atleast_2d(np.asarray(case.args[k], dtype=np.float64))
        for k in _VECTOR_ARGS if k in case.args
    ]


def _squared_norm_out_of_range(case: Case) -> bool:
    """A squared norm the standard algorithm forms in the dtype overflows, or a nonzero one
    underflows below the smallest normal: cosine's ``|a|^2``, ``|b|^2`` and their product,
    a triplet's ``sum |a - b|^p`` (PyTorch's, TensorFlow's and optax's norms raise to the
    power ``p`` -- 2 by default -- and sum before the root: float32 ``p = 3`` overflows from
    components of ~7e12)."""
    fmt = format_of(case.dtype)
    vectors = _vectors_of(case)
    with np.errstate(over="ignore", invalid="ignore"):
        if case.fn == "cosine_embedding_loss":
            n1, n2 = (np.sum(v * v, axis=-1) for v in vectors[:2])
            sizes = np.concatenate([n1, n2, n1 * n2])
        else:
            a, p, n = vectors
            power = float(case.kwargs.get("p", 2.0)) if case.fn == "triplet_margin_loss" else 2.0
            sizes = np.concatenate([np.sum(np.abs(d) ** power, axis=-1) for d in (a - p, a - n, p - n)])
            if _cosine_distance(case):  # the cosine of two vectors: their squared norms and product
                squares = [np.sum(v * v, axis=-1) for v in (a, p, n)]
                sizes = np.concatenate([sizes, *squares, *(x * y for i, x in enumerate(squares) for y in squares[i + 1:])])
    sizes = sizes[~np.isnan(sizes)]
    return bool(np.any(sizes > fmt.max_finite) or np.any((sizes > 0) & (sizes < fmt.smallest_normal)))


def _subnormal_cosine(case: Case) -> bool:
    """``cosine_embedding_loss`` with a row whose cosine ``a.b / (|a| |b|)`` is nonzero but below
    the dtype's smallest normal: formed in the dtype it keeps only a few bits, and the gradient
    ``-cos b / |b|^2`` scales that absolute error up by ``1/|b|^2``."""
    if case.fn != "cosine_embedding_loss":
        return False
    a, b = (v.reshape(-1, v.shape[-1]) if v.ndim else v.reshape(1, 1) for v in _vectors_of(case)[:2])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        cos = np.sum(a * b, axis=-1) / np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
    cos = np.abs(cos[np.isfinite(cos)])
    return bool(np.any((cos > 0) & (cos < format_of(case.dtype).smallest_normal)))


def _cosine_distance(case: Case) -> bool:
    """``triplet_margin_with_distance_loss`` with the named ``"cosine"`` distance."""
    return case.fn == "triplet_margin_with_distance_loss" and case.kwargs.get("distance_function") == "cosine"


def _cosine_of_vectors(case: Case) -> bool:
    """The loss takes a cosine of its vectors: ``cosine_embedding_loss``, or the cosine distance."""
    return case.fn == "cosine_embedding_loss" or _cosine_distance(case)


def _zero_vector(case: Case) -> bool:
    """Some input vector is all zeros (cosine similarity is 0/0 there without an epsilon)."""
    return any(bool(np.any(np.all(v == 0, axis=-1))) for v in _vectors_of(case))


def _cosine_distance_norm_below_eps(case: Case, eps: float = 1e-8) -> bool:
    """``triplet_margin_with_distance_loss`` with the named ``"cosine"`` distance where some
    anchor, positive or negative vector has a norm below the cosine's ``eps = 1e-8``: the
    spec clamps each norm, ``a.b / (max(|a|, eps) max(|b|, eps))``; an implementation that
    clamps the product (``a.b / sqrt(max(|a|^2 |b|^2, eps^2))``, Paddle's
    ``F.cosine_similarity``) differs exactly there (both norms >= eps: no clamp in either)."""
    if case.fn != "triplet_margin_with_distance_loss" or case.kwargs.get("distance_function") != "cosine":
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return any(bool(np.any(np.sqrt(np.sum(v * v, axis=-1)) < eps)) for v in _vectors_of(case))

def _cosine_epsilon_visible(case: Case, epsilon: float = 1e-12) -> bool:
    """``cosine_embedding_loss`` where PyTorch's ``EPSILON = 1e-12`` (added to each squared
    norm; Paddle's is 1e-11) is not negligible in the dtype: ``epsilon / |v|^2 > u`` for some
    nonzero input vector (the relative change it makes to the cosine and its gradient)."""
    if case.fn != "cosine_embedding_loss":
        return False
    u = format_of(case.dtype).unit_roundoff
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.concatenate([np.sum(v * v, axis=-1).reshape(-1) for v in _vectors_of(case)[:2]])
    norms = norms[np.isfinite(norms) & (norms > 0)]
    return bool(np.any(epsilon / norms > u))


def _zero_distance(case: Case) -> bool:
    """A triplet loss with a pairwise distance whose squared difference ``|x - y + eps|^2`` is
    zero or below the dtype's smallest normal in some row (``(a, p)``, ``(a, n)``, and
    ``(p, n)`` with ``swap``), with ``eps`` rounded to the dtype as the frameworks add it (it can
    cancel ``x - y`` exactly): the Euclidean norm's derivative ``v / |v|`` is ``0/0`` (or its
    squared form underflows) there; PyTorch masks an exact zero to 0."""
    if case.fn == "triplet_margin_loss":
        eps = float(case.kwargs.get("eps", 1e-6))
    elif case.fn == "triplet_margin_with_distance_loss" and case.kwargs.get("distance_function") != "cosine":
        eps = 1e-6
    else:
        return False
    fmt = format_of(case.dtype)
    tiny = fmt.smallest_normal
    eps = float(np.asarray(eps, dtype=np.float64).astype(fmt.numpy_dtype))  # added in the dtype
    a, p, n = _vectors_of(case)
    pairs = [(a, p), (a, n)] + ([(p, n)] if case.kwargs.get("swap") else [])
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        return any(bool(np.any(np.sum((x - y + eps) ** 2, axis=-1) < tiny)) for x, y in pairs)


def _triplet_eps_visible(case: Case) -> bool:
    """``triplet_margin_loss`` with ``eps > 0`` and a component of ``a - p`` or ``a - n`` below
    ``eps / u``: where the eps is added (to each difference, as PyTorch; or to the sum of
    squares, as optax) changes that gradient component by more than ``u`` relative (a zero
    difference: ``eps / d`` against 0)."""
    if case.fn != "triplet_margin_loss":
        return False
    eps = float(case.kwargs.get("eps", 1e-6))
    if eps <= 0:
        return False
    u = format_of(case.dtype).unit_roundoff
    a, p, n = _vectors_of(case)
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(any(np.any(np.abs(a - y) * u < eps) for y in (p, n)))


def _multi_margin_double_hinge_overflows(case: Case) -> bool:
    """``multi_margin_loss`` with ``p = 2`` and some hinge argument ``z = margin - x_y + x_i``
    whose double ``2 z`` (the squared hinge's derivative, before the division by C) exceeds
    the dtype's max although the gradient ``2 z / C`` is representable."""
    if case.fn != "multi_margin_loss" or case.kwargs.get("p", 1) != 2:
        return False
    x = np.atleast_2d(np.asarray(case.args["input"], dtype=np.float64))
    y = np.asarray(case.args["target"]).reshape(-1)
    margin = float(case.kwargs.get("margin", 1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        z = margin - x[np.arange(len(y)), y][:, None] + x
    return bool(np.any(2 * z[np.isfinite(z)] > format_of(case.dtype).max_finite))


def _multi_margin_squared_hinge_overflows(case: Case) -> bool:
    """``multi_margin_loss`` with ``p = 2`` and a positive hinge argument ``z = margin - x_y +
    x_i`` (``i != y``) whose square exceeds the dtype's max although ``z`` does not.

    The loss's term is ``w_y max(0, z)^2 / C``; an implementation that squares the hinge in
    the dtype before it multiplies by ``w_y`` and divides by ``C`` gets ``inf`` there, and
    ``0 * inf = NaN`` for ``w_y = 0`` -- where the exact term is 0, or, for a small ``w_y``,
    representable. (With ``w_y = 1`` the class sum ``|t_n| C`` exceeds the max too:
    ``margin_sum_exceeds_dtype_max``; with a small or zero weight only this feature sees it.)
    ``z`` is taken both exactly (float64 of the dtype's values) and rounded to the dtype as the
    implementation forms it, ``fl(fl(margin - x_y) + x_i)``: either square beyond the max counts,
    so a ``z`` just below ``sqrt(max)`` that the dtype rounds up is included. A ``z`` that itself
    overflows is ``inputs_span_exceeds_dtype_max``'s."""
    if case.fn != "multi_margin_loss" or case.kwargs.get("p", 1) != 2:
        return False
    fmt = format_of(case.dtype)
    limit = fmt.max_finite
    x = np.atleast_2d(np.asarray(case.args["input"], dtype=np.float64))
    y = np.asarray(case.args["target"]).reshape(-1)
    if y.size != x.shape[0] or np.any((y < 0) | (y >= x.shape[-1])):
        return False  # an input the spec rejects has no hinge to speak of
    margin = float(case.kwargs.get("margin", 1.0))
    picked = x[np.arange(len(y)), y][:, None]
    others = np.arange(x.shape[-1])[None, :] != y[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        exact = margin - picked + x
        def in_dtype(v: np.ndarray) -> np.ndarray:
            return v.astype(fmt.numpy_dtype).astype(np.float64)

        rounded = in_dtype(in_dtype(margin - picked) + x)
        hits = [others & np.isfinite(z) & (z > 0) & (np.abs(z) <= limit) & (z * z > limit) for z in (exact, rounded)]
    return bool(np.any(hits[0] | hits[1]))


def _multi_margin_negative_margin(case: Case) -> bool:
    """``multi_margin_loss`` with ``margin < 0``: the sum's ``i = y`` term, ``max(0, margin)^p``,
    is 0 there, not ``margin^p`` -- a formula that removes that term by subtracting
    ``margin^p / C`` (Paddle's) is off by ``w_y margin^p / C`` per sample."""
    return case.fn == "multi_margin_loss" and float(case.kwargs.get("margin", 1.0)) < 0


def _pnorm_zero_component(case: Case) -> bool:
    """``triplet_margin_loss`` with ``p`` other than 1 and 2 and a difference ``x - y + eps`` with
    a zero component: ``|v|^p``'s derivative is computed as ``p |v|^p / v`` = 0/0 there by
    a ``pow``-based backward pass (the exact derivative is 0)."""
    if case.fn != "triplet_margin_loss" or float(case.kwargs.get("p", 2)) in (1.0, 2.0):
        return False
    eps = float(case.kwargs.get("eps", 1e-6))
    a, p, n = _vectors_of(case)
    pairs = [(a, p), (a, n)] + ([(p, n)] if case.kwargs.get("swap") else [])
    with np.errstate(invalid="ignore", over="ignore"):
        return any(bool(np.any(x - y + eps == 0)) for x, y in pairs)


def _margin_sum_exceeds_max(case: Case) -> bool:
    """A reduction's partial sum exceeds the dtype's max (``intermediate_exceeds_dtype_max``),
    or, for the losses that average over classes, a sample's sum over classes does before
    its division by C (``|t_n| C > max``). An input the spec rejects has no such sum."""
    try:
        return _margin_sum_exceeds_max_or_raise(case)
    except ValueError:
        return False


def _margin_sum_exceeds_max_or_raise(case: Case) -> bool:
    if _intermediate_exceeds_max(case):
        return True
    if case.fn not in ("multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss"):
        return False
    from oracle.core import working_precision

    from .registry import spec_for

    n_classes = np.shape(case.args["input"])[-1]
    with working_precision(64):
        terms = case.call(spec_for(case.fn).terms).terms
        return any(abs(t) * n_classes > format_of(case.dtype).max_finite for t in terms.reshape(-1) if t == t)


def _compute_dtype(dtype: str) -> str:
    """The dtype Inductor's generated CPU kernels compute a ``dtype`` case in: float16 and
    bfloat16 are upcast to float32 and rounded once at the end."""
    return "float64" if dtype == "float64" else "float32"


def _soft_margin_backward_cancels(case: Case) -> bool:
    r"""``soft_margin_loss`` where a backward that forms ``y (sigmoid(y x) - 1)`` (the
    decomposition of ``aten.soft_margin_loss_backward``, which torch.compile runs) loses the
    gradient ``-y sigmoid(-y x)`` to cancellation: for some element with ``z = y x > 0``,
    ``sigmoid(z)`` rounded to the compute dtype (float32 for float16, bfloat16 and float32;
    float64 for float64) minus 1 differs from the exact ``-sigmoid(-z)`` by more than
    ``K_OUT`` units of the case's dtype (the error model's output multiple,
    suites/verdict.py), where that exact value is at least the dtype's smallest normal.
    ``1 - sigmoid(z)`` keeps about ``z / ln 2`` fewer bits than the compute dtype has, and
    none once ``sigmoid(z)`` rounds to 1 (``z > 16.6`` in float32, ``36.7`` in float64): 0.
    A region: the gradient bound also scales with ``|x|``, so cases near its edge conform."""
    from .verdict import K_OUT

    if case.fn != "soft_margin_loss":
        return False
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        z = (np.asarray(case.args["target"], dtype=np.float64) * _input(case)).reshape(-1)
        z = z[np.isfinite(z) & (z > 0)]
        exact = -1.0 / (1.0 + np.exp(z))  # -sigmoid(-z), no cancellation
        computed = (1.0 / (1.0 + np.exp(-z))).astype(_compute_dtype(case.dtype)).astype(np.float64) - 1.0
    fmt = format_of(case.dtype)
    visible = np.abs(exact) >= fmt.smallest_normal
    error = np.abs(computed[visible] - exact[visible]) / np.abs(exact[visible])
    return bool(np.any(error > K_OUT * fmt.unit_roundoff))


def _unbatched_class_margin(case: Case) -> bool:
    """``multi_margin_loss`` or ``multilabel_margin_loss`` of one sample: a 1-d ``(C)`` input
    (the spec's ``reduction='none'`` output is then 0-d)."""
    return case.fn in ("multi_margin_loss", "multilabel_margin_loss") and np.ndim(case.args["input"]) == 1


def _multilabel_target_has_sentinel(case: Case) -> bool:
    """``multilabel_margin_loss`` with a ``-1`` in some target row: the row's target classes
    are the entries before its first ``-1`` (fewer than ``C``); the slots from the ``-1`` on
    are padding that must contribute nothing."""
    if case.fn != "multilabel_margin_loss":
        return False
    return bool(np.any(np.asarray(case.args["target"]) == -1))


FEATURES.update({
    "margin_sum_exceeds_dtype_max": _margin_sum_exceeds_max,
    "soft_margin_backward_cancels": _soft_margin_backward_cancels,
    "unbatched_class_margin": _unbatched_class_margin,
    "multilabel_target_has_sentinel": _multilabel_target_has_sentinel,
    "soft_margin_exp_overflows": _soft_margin_exp_overflows,
    "soft_margin_exp_overflows_upcast": _soft_margin_exp_overflows_upcast,
    "inputs_span_exceeds_dtype_max": _inputs_span_exceeds_max,
    "squared_norm_out_of_range": _squared_norm_out_of_range,
    "zero_vector": _zero_vector,
    "cosine_distance_norm_below_eps": _cosine_distance_norm_below_eps,
    "cosine_of_vectors": _cosine_of_vectors,
    "cosine_epsilon_visible": _cosine_epsilon_visible,
    "zero_distance": _zero_distance,
    "triplet_eps_visible": _triplet_eps_visible,
    "pnorm_zero_component": _pnorm_zero_component,
    "multi_margin_double_hinge_overflows": _multi_margin_double_hinge_overflows,
    "multi_margin_negative_margin": _multi_margin_negative_margin,
    "multi_margin_squared_hinge_overflows": _multi_margin_squared_hinge_overflows,
    "triplet_p_not_2": lambda c: c.fn == "triplet_margin_loss" and float(c.kwargs.get("p", 2)) != 2,
    "swap": lambda c: bool(c.kwargs.get("swap", False)),
    "no_swap": lambda c: not c.kwargs.get("swap", False),
})


def _pnorm_root_exponent_rounded(case: Case) -> bool:
    r"""``triplet_margin_loss`` with ``p`` not 1 or 2 and a distance whose root PyTorch's rounded
    exponent moves beyond the error model's allowance for a computed distance. The norm
    reduction returns ``pow(S, 1 / p)`` with ``1/p`` rounded to its accumulation type
    (``NormOps::project``; float64 for float64, float32 for the other dtypes), ``S = sum |x -
    y + eps|^p`` unscaled, so ``d`` is off by the factor ``S^delta``: relative ``|delta ln S|``
    (``delta = fl(1/p) - 1/p``), here beyond ``K_IN (ceil(log2 D) + 2) u``: the forward model's
    relative error of a distance of ``D`` components, ``(ceil(log2 D) + 2) u``, as much as the
    gradient bound's working-scale term admits in ``d`` (``oracle.gradients_margin``; the
    gradient ``(v / d)^(p-1)`` has ``p - 1`` times the error). Below that the exponent's error
    fits the bound; a tiny ``S`` of a distance that is not the hinge's (``swap``'s other pair)
    can still fire it. A distance whose ``S`` overflows or underflows the dtype is
    ``squared_norm_out_of_range``'s."""
    if case.fn != "triplet_margin_loss":
        return False
    power = float(case.kwargs.get("p", 2.0))
    if power in (1.0, 2.0):  # no root, or sqrt (correctly rounded)
        return False
    accumulate = np.float64 if case.dtype == "float64" else np.float32
    delta = abs(float(Fraction(float(accumulate(1.0) / accumulate(power))) - 1 / Fraction(power)))  # exact: 1/p is inexact
    if delta == 0:
        return False
    fmt = format_of(case.dtype)
    eps = float(case.kwargs.get("eps", 1e-6))
    a, p, n = _vectors_of(case)
    pairs = [(a, p), (a, n)] + ([(p, n)] if case.kwargs.get("swap") else [])
    dim = a.shape[-1]
    allowance = 4 * fmt.unit_roundoff * ((math.ceil(math.log2(dim)) if dim > 1 else 0) + 2)  # K_IN (ceil(log2 D) + 2) u
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        sums = np.concatenate([np.sum(np.abs(x - y + eps) ** power, axis=-1) for x, y in pairs])
    in_range = np.isfinite(sums) & (sums >= fmt.smallest_normal) & (sums <= fmt.max_finite)
    return bool(np.any(delta * np.abs(np.log(sums[in_range])) > allowance))


FEATURES["pnorm_root_exponent_rounded"] = _pnorm_root_exponent_rounded


def _cosine_backward_intermediate_subnormal(case: Case) -> bool:
    """``cosine_embedding_loss``'s gradient where the backward pass of PyTorch's composed cosine
    (``cos = (a.b) / sqrt(N_a N_b)``, every op a tensor in the dtype) forms a nonzero
    intermediate below the dtype's smallest normal in an active row: ``g / R``, ``g cos / R``
    (the division's backward) or ``g cos / (2 R^2)`` (the square root's), ``R = sqrt(N_a N_b)``,
    ``g`` the reduction's ``1/N`` (``1`` for sum and none). A subnormal keeps only a few bits,
    and the next steps multiply it back up (by ``N_b`` and ``2 a_i``), so the gradient loses
    them: float16 ``g cos / (2 R^2)`` = 3.7e-7 is 6 subnormal steps."""
    if case.fn != "cosine_embedding_loss" or case.wrt not in ("input1", "input2"):
        return False
    a, b = (v.reshape(-1, v.shape[-1]) if v.ndim else v.reshape(1, 1) for v in _vectors_of(case)[:2])
    y = np.asarray(case.args["target"], dtype=np.float64).reshape(-1)
    margin = float(case.kwargs.get("margin", 0.0))
    g = 1.0 / len(y) if case.kwargs.get("reduction", "mean") == "mean" else 1.0
    tiny = format_of(case.dtype).smallest_normal
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        root = np.sqrt(np.sum(a * a, axis=-1)) * np.sqrt(np.sum(b * b, axis=-1))
        cos = np.sum(a * b, axis=-1) / root
        active = (y == 1) | ((y == -1) & (cos > margin))
        steps = np.stack([g / root, np.abs(g * cos / root), np.abs(g * cos) / (2 * root * root)])
    # a squared norm or their product out of the dtype's range is squared_norm_out_of_range's
    fmt = format_of(case.dtype)
    in_range = np.isfinite(root) & (root > 0) & (root * root <= fmt.max_finite)
    steps = steps[:, active & in_range]
    return bool(np.any((steps > 0) & (steps < tiny)))


FEATURES["cosine_backward_intermediate_subnormal"] = _cosine_backward_intermediate_subnormal


# Features of the regression and distribution losses (issue 4).

_REGRESSION = ("l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss", "gaussian_nll_loss")
_DEFAULT_EPS = {"poisson_nll_loss": 1e-8, "gaussian_nll_loss": 1e-6}


def _elementwise_intermediate_exceeds_max(case: Case) -> bool:
    """A regression loss whose elementwise intermediate exceeds the dtype's max while the
    exact result may not: ``|x - y|``, ``(x - y)^2`` (squared losses), ``delta |x - y|``
    (Huber's linear branch; smooth L1 formed as Huber / beta), or the unweighted term
    (which a zero weight, a mean or a small ``delta`` would bring back into range)."""
    if case.fn not in _REGRESSION:
        return False
    from oracle.core import working_precision

    from .registry import spec_for

    limit = format_of(case.dtype).max_finite
    x, y = _input(case), np.asarray(case.args["target"], dtype=np.float64)
    threshold = case.kwargs.get("delta" if case.fn == "huber_loss" else "beta", 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(np.subtract(*np.broadcast_arrays(x, y)))
        if np.any(d > limit) or (case.fn in ("mse_loss", "gaussian_nll_loss", "huber_loss", "smooth_l1_loss") and np.any(d * d > limit)):
            return True
        if case.fn in ("huber_loss", "smooth_l1_loss") and np.any(threshold * d > limit):
            return True  # the linear branch's delta |d| (smooth L1 composed as Huber / beta)
        if case.fn == "gaussian_nll_loss" and _gaussian_quotient_exceeds(case, d, limit):
            return True
        if case.fn == "poisson_nll_loss" and _poisson_intermediate_exceeds(case, x, y, limit):
            return True
    unweighted = Case(case.fn, case.args, {k: v for k, v in case.kwargs.items() if k != "weight"}, case.dtype)
    try:
        with working_precision(64):
            terms = unweighted.call(spec_for(case.fn).terms).terms
    except Exception:  # an input the spec rejects
        return False
    return any(abs(t) > limit for t in terms.reshape(-1) if t == t)


def _poisson_intermediate_exceeds(case: Case, x: np.ndarray, y: np.ndarray, limit: float) -> bool:
    """poisson_nll_loss's products ``y x`` (``log_input``) or ``y log(x + eps)``, and with ``full``
    Stirling's ``y log y`` and ``y log y - y`` (``y > 1``), formed one op at a time in the dtype:
    float16 ``y = 7360`` has ``y log y = 65535 > 65504`` although the loss is 58178."""
    x, y = np.broadcast_arrays(x, y)
    if case.kwargs.get("log_input", True):
        product = y * x
    else:
        product = y * np.log(x + float(case.kwargs.get("eps", 1e-8)))
    sizes = [np.abs(product)]
    if case.kwargs.get("full", False):
        big = np.where(y > 1, y, 1.0)
        sizes += [np.abs(big * np.log(big)), np.abs(big * np.log(big) - big)]
    return any(bool(np.any(v[np.isfinite(x) & np.isfinite(y)] > limit)) for v in sizes)


def _poisson_exp_overflows(case: Case) -> bool:
    """poisson_nll_loss with ``log_input`` differentiated w.r.t. ``input`` where some finite
    ``x`` exceeds ``log(max)`` of the dtype: the backward multiplies by the forward's ``exp(x)``,
    inf in the dtype, before the reduction's ``1/N`` (or a weight) scales it back into range."""
    if case.fn != "poisson_nll_loss" or case.wrt != "input" or not case.kwargs.get("log_input", True):
        return False
    x = _input(case)
    return bool(np.any(x[np.isfinite(x)] > math.log(format_of(case.dtype).max_finite)))


def _squared_difference_and_clamped_variance(case: Case, d: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """gaussian_nll_loss's ``(x - y)^2`` and ``max(var, eps)`` broadcast together, ``var`` shaped
    by the spec's rule (:func:`oracle.regression._variance`); None for a ``var`` it rejects."""
    from oracle.regression import _variance

    try:
        var = np.asarray(_variance(case.args["input"], case.args["var"]), dtype=np.float64)
        d2, clamped = np.broadcast_arrays(d * d, np.maximum(var, float(case.kwargs.get("eps", 1e-6))))
    except ValueError:
        return None
    return d2, clamped


def _gaussian_quotient_exceeds(case: Case, d: np.ndarray, limit: float) -> bool:
    """gaussian_nll_loss's ``(x - y)^2 / var`` (var clamped at ``eps``) or ``log var`` plus it,
    both formed in the dtype before the halving: beyond the max while half of it is not
    (float16: (x - y)^2 = 40000, var = 0.61 -> inf, exact 32763)."""
    if (terms := _squared_difference_and_clamped_variance(case, d)) is None:
        return False
    d2, var = terms
    quotient = d2 / var
    return bool(np.any(quotient > limit) or np.any(np.abs(np.log(var) + quotient) > limit))


def _quadratic_branch_underflows(case: Case) -> bool:
    """``huber_loss``/``smooth_l1_loss``: an element in the quadratic branch (``0 < |d| <
    delta``) whose ``d * d`` falls below the dtype's smallest normal, so that forming it in
    the dtype loses the digits a division by a small ``beta`` would bring back."""
    if case.fn not in ("huber_loss", "smooth_l1_loss"):
        return False
    threshold = case.kwargs.get("delta" if case.fn == "huber_loss" else "beta", 1.0)
    d = np.abs(_input(case) - np.asarray(case.args["target"], dtype=np.float64))
    tiny = format_of(case.dtype).smallest_normal
    return bool(np.any((d > 0) & (d < threshold) & (d * d < tiny)))


def _eps_below_smallest_normal(case: Case) -> bool:
    """``poisson_nll_loss`` (rates) or ``gaussian_nll_loss``: ``eps`` (given, or the spec's
    default) is below the dtype's smallest normal: in the dtype it is subnormal or 0."""
    if case.fn not in _DEFAULT_EPS or (case.fn == "poisson_nll_loss" and case.kwargs.get("log_input", True)):
        return False
    eps = case.kwargs.get("eps", _DEFAULT_EPS[case.fn])
    return 0 < eps < format_of(case.dtype).smallest_normal


def _weighted_regression_mean(case: Case) -> bool:
    return case.fn in ("l1_loss", "mse_loss") and case.kwargs.get("weight") is not None and case.kwargs.get("reduction", "mean") == "mean"


def _ctc_log_probs_not_normalized(case: Case) -> bool:
    """``ctc_loss``: some used frame's log-probabilities do not sum (as probabilities) to
    exactly 1 -- which every row rounded to a float format misses by a few ULPs."""
    if case.fn != "ctc_loss":
        return False
    import mpmath

    from oracle.core import mp_array, working_precision

    x = np.asarray(case.args["log_probs"])
    x = x[:, None, :] if x.ndim == 2 else x
    lengths = np.asarray(case.args["input_lengths"]).reshape(-1)
    with working_precision(128):
        for n, steps in enumerate(lengths):
            for row in mp_array(x[: int(steps), n, :]):
                if abs(mpmath.fsum(mpmath.exp(v) for v in row) - 1) > mpmath.mpf(2) ** -120:
                    return True
    return False


def _ctc_impossible_alignment(case: Case) -> bool:
    """``ctc_loss``: some sequence has no alignment (its exact loss is ``+inf``)."""
    if case.fn != "ctc_loss":
        return False
    from oracle.core import working_precision

    from .registry import spec_for

    kwargs = dict(case.kwargs, reduction="none", zero_infinity=False)
    try:
        with working_precision(64):
            terms = Case(case.fn, case.args, kwargs, case.dtype).call(spec_for(case.fn).terms).terms
    except ValueError:
        return False
    return any(t == float("inf") for t in np.asarray(terms, dtype=object).reshape(-1))


def _ctc_log_probability_below_minus_700(case: Case) -> bool:
    """``ctc_loss``: some used frame's normalized log-probability (``log_softmax`` over the
    classes) is below -700, beyond which ``exp`` leaves float64's normal range."""
    return case.fn == "ctc_loss" and _ctc_log_softmax_below(case, -700.0)


FEATURES.update({
    "ctc_log_probability_below_minus_700": _ctc_log_probability_below_minus_700,
    "ctc_zero_width_targets": lambda c: c.fn == "ctc_loss" and np.asarray(c.args["targets"]).size == 0,
    "ctc_log_probs_not_normalized": _ctc_log_probs_not_normalized,
    "ctc_impossible_alignment": _ctc_impossible_alignment,
    "elementwise_intermediate_exceeds_dtype_max": _elementwise_intermediate_exceeds_max,
    # l1_loss/mse_loss weighted means (sum(w t) / sum(w)) over zero weight, and of a 0-d input
    "weighted_regression_mean_over_zero_weight": lambda c: _weighted_regression_mean(c)
    and not np.any(np.asarray(c.kwargs["weight"], dtype=np.float64)),
    "weighted_regression_mean_of_scalar": lambda c: _weighted_regression_mean(c) and _input(c).ndim == 0,
    # the same 0-d weighted call under any reduction: a property case whose mean it derives
    "weighted_regression_of_scalar": lambda c: c.fn in ("l1_loss", "mse_loss") and c.kwargs.get("weight") is not None
    and _input(c).ndim == 0,
    "quadratic_branch_underflows": _quadratic_branch_underflows,
    "eps_below_smallest_normal": _eps_below_smallest_normal,
})


# Features of the mlx adapter's deviations (issue 7).


def _log_softmax_axis_of_size_one(case: Case) -> bool:
    """A softmax over an axis of size 1 of a rank >= 2 array: ``log_softmax`` itself (its
    ``dim``), or ``cross_entropy``/``nll_loss`` (class axis 1), whose properties call it."""
    x = np.asarray(case.args.get("input", 0.0))
    if x.ndim < 2:
        return False
    if case.fn == "log_softmax":
        dim = int(case.kwargs.get("dim", case.args.get("dim", -1)))
        return -x.ndim <= dim < x.ndim and x.shape[dim] == 1
    return case.fn in ("cross_entropy", "nll_loss") and x.shape[1] == 1


def _gaussian_quotient_exceeds_max(case: Case) -> bool:
    """``gaussian_nll_loss``: some ``(x - y)^2 / max(var, eps)`` exceeds the dtype's max (formed
    in the dtype it is inf) although the loss, half of it plus ``log(var) / 2``, may not."""
    if case.fn != "gaussian_nll_loss":
        return False
    from oracle.regression import _variance

    try:
        var = np.asarray(_variance(case.args["input"], case.args.get("var", case.kwargs.get("var"))), dtype=np.float64)
        x, y, v = np.broadcast_arrays(_input(case), np.asarray(case.args["target"], dtype=np.float64), var)
    except ValueError:  # an input the spec rejects
        return False
    eps = float(case.kwargs.get("eps", 1e-6))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = (x - y) ** 2 / np.maximum(v, eps)
    return bool(np.any(q[np.isfinite(q)] > format_of(case.dtype).max_finite) or np.any(np.isinf(q) & np.isfinite(x) & np.isfinite(y)))


def _cosine_norm_product_below_1e_8(case: Case) -> bool:
    """``cosine_embedding_loss`` (or the cosine distance of ``triplet_margin_with_distance_loss``:
    pairs ``(a, p)``, ``(a, n)``, and ``(p, n)`` with ``swap``): some pair with
    ``0 < |x1| |x2| < 1e-8``, where MLX's ``cosine_similarity_loss`` divides by
    ``max(|x1| |x2|, 1e-8)`` instead of the product."""
    if _cosine_distance(case):
        a, p, n = _vectors_of(case)
        pairs = [(a, p), (a, n)] + ([(p, n)] if case.kwargs.get("swap") else [])
        return any(_norm_product_below_1e_8(x, y) for x, y in pairs)
    if case.fn != "cosine_embedding_loss":
        return False
    a, b = (np.atleast_2d(np.asarray(case.args[k], dtype=np.float64)) for k in ("input1", "input2"))
    return _norm_product_below_1e_8(a, b)


def _norm_product_below_1e_8(a: np.ndarray, b: np.ndarray) -> bool:
    def norm(v: np.ndarray) -> np.ndarray:  # scaled: the squares of tiny components underflow
        top = np.max(np.abs(v), axis=-1, keepdims=True)
        safe = np.where((top > 0) & np.isfinite(top), top, 1.0)
        return (safe * np.sqrt(np.sum((v / safe) ** 2, axis=-1, keepdims=True)))[..., 0]

    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        product = norm(a) * norm(b)
    return bool(np.any((product > 0) & (product < 1e-8)))


def _mlx_triplet_power_sum_underflows(case: Case) -> bool:
    """``triplet_margin_loss`` with ``eps = 0``, ``p != 1`` and a row of ``(a, p)`` or ``(a, n)``
    whose ``sum |x - y|^p`` is below the dtype's smallest normal (0 for equal vectors): MLX's
    ``mx.power(S + eps, 1/p)`` has the derivative ``S^(1/p - 1) / p``, infinite at ``S = 0``
    (huge and inexact just above), which ``mx.grad`` multiplies by ``dS/d(delta) = 0``."""
    if case.fn != "triplet_margin_loss" or float(case.kwargs.get("eps", 1e-6)) != 0:
        return False
    power = float(case.kwargs.get("p", 2.0))
    if power == 1:
        return False
    a, p, n = _vectors_of(case)
    tiny = format_of(case.dtype).smallest_normal
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return any(bool(np.any(np.sum(np.abs(a - y) ** power, axis=-1) < tiny)) for y in (p, n))


def _mlx_triplet_root_exponent_rounded(case: Case) -> bool:
    """``triplet_margin_loss`` whose root exponent MLX rounds to the dtype by enough to show:
    ``mx.power(S, 1.0 / p)`` takes the Python float ``1/p`` in the array's dtype (bfloat16
    ``1/3`` -> 0.333984375) and its derivative's exponent ``1/p - 1`` is rounded again
    (-0.6640625), so the root and its derivative are off by the factor ``S^delta``: relative
    ``|delta ln S|``, here beyond the dtype's ``u`` for some row's ``S = sum |x - y|^p + eps``."""
    if case.fn != "triplet_margin_loss":
        return False
    power, eps = float(case.kwargs.get("p", 2.0)), float(case.kwargs.get("eps", 1e-6))
    fmt = format_of(case.dtype)
    root = np.asarray(1.0 / power, dtype=fmt.numpy_dtype)
    derivative = float((root - np.asarray(1.0, dtype=fmt.numpy_dtype)).astype(fmt.numpy_dtype))
    delta = max(abs(float(root) - 1.0 / power), abs(derivative - (1.0 / power - 1.0)))
    if delta == 0:
        return False
    a, p, n = _vectors_of(case)
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        logs = np.abs(np.log(np.concatenate([np.sum(np.abs(a - y) ** power, axis=-1) + eps for y in (p, n)])))
    return bool(np.any(delta * logs[~np.isnan(logs)] > fmt.unit_roundoff))


def _softmax_normalizer_beyond_half_precision(case: Case) -> bool:
    """``softmax`` in float16/bfloat16 with a row whose normalizer ``sum exp(x - max)``
    exceeds ``2^(t-1)`` (bfloat16 128, float16 1024; t the dtype's precision): a running sum
    kept in the dtype has a spacing of at least 1/2 from there on, so adding terms <= 1 loses
    them, far beyond the error model's pairwise-summation allowance."""
    if case.fn != "softmax" or case.dtype not in ("float16", "bfloat16"):
        return False
    x = _input(case)
    if x.ndim == 0:
        return False
    dim = int(case.kwargs.get("dim", case.args.get("dim", -1)))
    rows = np.moveaxis(x, dim, -1).reshape(-1, x.shape[dim])
    limit = 2.0 ** ((8 if case.dtype == "bfloat16" else 11) - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        top = np.max(rows, axis=-1, keepdims=True)
        sums = np.sum(np.exp(rows - np.where(np.isfinite(top), top, 0.0)), axis=-1)
    return bool(np.any(sums[np.isfinite(sums)] > limit))


def _sigmoid_exp_overflows(case: Case) -> bool:
    """``sigmoid`` of a finite ``x < -log(max)`` of the case's dtype: ``1 / (1 + exp(|x|))``
    with ``exp`` evaluated in the dtype overflows to inf and returns 0, although the exact
    value (about ``exp(x)``) may be representable (float16: below ``x = -11.09``, where
    ``sigmoid`` is still ~1.5e-5; subnormal results go on down to ``x = -16.6``)."""
    if case.fn != "sigmoid":
        return False
    x = _input(case)
    finite = x[np.isfinite(x)]
    return bool(np.any(finite < -math.log(format_of(case.dtype).max_finite)))


def _huber_gradient_cancels_in_dtype(case: Case) -> bool:
    """``huber_loss``'s gradient w.r.t. ``input`` or ``target`` where some error ``e = x - y``
    lies in the quadratic region (``|e| < delta``) and ``(|e| - delta) + delta``, each step
    rounded to the dtype, is not ``|e|``: autodiff of MLX's ``0.5 min(|e|, delta)^2 + delta
    (|e| - min(|e|, delta))`` sums the two branches' cotangents ``(q - delta) + delta``, so
    its gradient ``e`` is off by up to half an ulp of ``delta`` (0 for ``|e|`` below that)."""
    if case.fn != "huber_loss" or case.wrt not in ("input", "target"):
        return False
    dtype = format_of(case.dtype).numpy_dtype
    delta = np.asarray(float(case.kwargs.get("delta", 1.0))).astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.asarray(case.args["input"]).astype(dtype)
        y = np.asarray(case.args["target"]).astype(dtype)
        e = np.abs(x - y)
        back = (e - delta) + delta
    quadratic = np.isfinite(e) & (e < delta)
    return bool(np.any(quadratic & (back != e)))


def _gaussian_var_below_eps(case: Case) -> bool:
    """``gaussian_nll_loss``'s gradient w.r.t. ``var`` where some variance is below ``eps``: the
    spec (PyTorch) clamps under ``no_grad``, so the gradient passes straight through the clamp;
    an autodiff of ``maximum(var, eps)`` gives 0 there."""
    if case.fn != "gaussian_nll_loss" or case.wrt != "var":
        return False
    var = np.asarray(case.args["var"], dtype=np.float64)
    return bool(np.any(var < float(case.kwargs.get("eps", 1e-6))))


FEATURES.update({
    "gaussian_var_below_eps": _gaussian_var_below_eps,
    "smooth_l1_beta_zero": lambda c: c.fn == "smooth_l1_loss" and float(c.kwargs.get("beta", 1.0)) == 0.0,
    "huber_gradient_cancels_in_dtype": _huber_gradient_cancels_in_dtype,
    "sigmoid_exp_overflows": _sigmoid_exp_overflows,
    "softmax_normalizer_beyond_half_precision": _softmax_normalizer_beyond_half_precision,
    "gaussian_quotient_exceeds_dtype_max": _gaussian_quotient_exceeds_max,
    "cosine_norm_product_below_1e_8": _cosine_norm_product_below_1e_8,
    "mlx_triplet_power_sum_underflows": _mlx_triplet_power_sum_underflows,
    "mlx_triplet_root_exponent_rounded": _mlx_triplet_root_exponent_rounded,
    "negative_logit": lambda c: c.fn in ("binary_cross_entropy_with_logits", "multilabel_soft_margin_loss")
    and bool(np.any(_input(c)[np.isfinite(_input(c))] < 0)),
    "log_softmax_axis_of_size_one": _log_softmax_axis_of_size_one,
    "label_smoothing_at_least_one": lambda c: float(c.kwargs.get("label_smoothing", 0.0)) >= 1.0,
})


# -- PaddlePaddle (adapters/paddle_losses.py) ------------------------------------------


def _ignored_positions(case: Case) -> bool:
    """A class-index target holds ``ignore_index`` somewhere."""
    target = _index_target(case)
    return target is not None and bool(np.any(target == case.kwargs.get("ignore_index", -100)))


def _ignored_position_in_unweighted_mean(case: Case) -> bool:
    """``cross_entropy`` with class indices, no class weight, a negative ``ignore_index``
    present among the targets, and ``reduction='mean'`` (the spec divides by the number of
    positions not ignored)."""
    return (
        case.fn == "cross_entropy" and case.kwargs.get("weight") is None
        and case.kwargs.get("reduction", "mean") == "mean"
        and int(case.kwargs.get("ignore_index", -100)) < 0 and _ignored_positions(case)
    )


def _ignored_position_without_weight(case: Case) -> bool:
    """``cross_entropy`` with class indices, no class weight and a negative ``ignore_index``
    present among the targets, whatever ``reduction`` the case has (a property such as
    mean == sum / denominator takes the mean of it itself)."""
    return (
        case.fn == "cross_entropy" and case.kwargs.get("weight") is None
        and int(case.kwargs.get("ignore_index", -100)) < 0 and _ignored_positions(case)
    )


def _ignored_position_past_first(case: Case) -> bool:
    """A class-index target holds ``ignore_index`` at a flat position >= 1 (any reduction)."""
    target = _index_target(case)
    if target is None:
        return False
    ignored = np.flatnonzero(target.reshape(-1) == int(case.kwargs.get("ignore_index", -100)))
    return bool(ignored.size and ignored.max() >= 1)


def _reduced_nll_ignored_past_first(case: Case) -> bool:
    """``nll_loss`` with ``reduction='mean'`` or ``'sum'`` and ``ignore_index`` at a flat target
    position >= 1: Paddle's kernel writes a 0 for that position into its one-element output."""
    return (
        case.fn == "nll_loss" and case.kwargs.get("reduction", "mean") in ("mean", "sum")
        and _ignored_position_past_first(case)
    )


def _zero_logit_without_pos_weight(case: Case) -> bool:
    """``binary_cross_entropy_with_logits`` without ``pos_weight`` and some logit exactly 0
    (Paddle's backward tests ``x > 0`` in one term and ``x >= 0`` in the other)."""
    return (
        case.fn == "binary_cross_entropy_with_logits" and case.kwargs.get("pos_weight") is None
        and bool(np.any(_input(case) == 0))
    )


def _input_rank_above_2(case: Case) -> bool:
    """The input has a spatial axis: ``(N, C, d1, ...)``."""
    return _input(case).ndim > 2


def _pnorm_reciprocal_not_float32(case: Case) -> bool:
    """``triplet_margin_loss`` whose ``1 / p`` is not a float32 value (p = 3, 1.5, ...): Paddle's
    p_norm kernel takes ``porder`` as a float attribute and raises to ``1 / porder`` in float32."""
    if case.fn != "triplet_margin_loss":
        return False
    p = float(case.kwargs.get("p", 2))
    return p not in (1.0, 2.0) and float(np.float32(1 / np.float32(p))) != 1 / p


def _log_one_plus_exp_inexact(case: Case) -> bool:
    """``multilabel_soft_margin_loss`` with some finite logit of magnitude above 2: its terms
    log(1 + exp(-|x|)) evaluated literally (not log1p) carry the rounding of 1 + exp(-|x|),
    relative error u e^|x| of a term (Paddle's log_sigmoid)."""
    if case.fn != "multilabel_soft_margin_loss":
        return False
    x = _input(case)
    return bool(np.any(np.isfinite(x) & (np.abs(x) > 2)))


def _multilabel_no_listed_class(case: Case) -> bool:
    """``multilabel_margin_loss`` where no row's target lists a class (each starts with -1)."""
    if case.fn != "multilabel_margin_loss":
        return False
    target = np.atleast_2d(np.asarray(case.args["target"]))
    return bool(target.shape[-1] and np.all(target[:, 0] == -1))


def _property_delta_not_float32(case: Case) -> bool:
    """A ``huber_loss`` property case (no ``delta`` of its own) whose derived thresholds are not
    float32 values: the relation Huber = delta (L1 - delta/2) takes delta, a power of two, just
    below min |x - y|, which for |x - y| < 2^-147 is below float32's range (it rounds to 0)."""
    if case.fn != "huber_loss" or "delta" in case.kwargs:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(_input(case) - np.asarray(case.args["target"], dtype=np.float64))
    d = d[np.isfinite(d) & (d > 0)]
    return bool(d.size and math.ldexp(1.0, math.frexp(float(d.min()))[1] - 2) < math.ldexp(1.0, -149))


def _shifted_logit_below_minus_64(case: Case) -> bool:
    """``softmax``/``log_softmax``/``cross_entropy`` logits: some ``x - max(x)`` along the class
    axis is below -64 (a ``-inf`` logit included), where Paddle's softmax kernels clip it."""
    if case.fn not in ("softmax", "log_softmax", "cross_entropy"):
        return False
    x = _input(case)
    if x.ndim == 0 or x.size == 0:
        return False
    axis = int(case.kwargs.get("dim", 1)) if case.fn != "cross_entropy" else (1 if x.ndim > 1 else 0)
    with np.errstate(invalid="ignore", over="ignore"):
        top = np.max(x, axis=axis, keepdims=True)
        shifted = x - top
    return bool(np.any(np.isfinite(top) & (shifted < -64)))


FEATURES.update({
    "ignored_position_in_unweighted_mean": _ignored_position_in_unweighted_mean,
    "ignored_position_without_weight": _ignored_position_without_weight,
    "ignored_position_past_first": _ignored_position_past_first,
    "reduced_nll_ignored_past_first": _reduced_nll_ignored_past_first,
    "zero_logit_without_pos_weight": _zero_logit_without_pos_weight,
    "input_rank_above_2": _input_rank_above_2,
    "pnorm_reciprocal_not_float32": _pnorm_reciprocal_not_float32,
    "log_one_plus_exp_inexact": _log_one_plus_exp_inexact,
    "multilabel_no_listed_class": _multilabel_no_listed_class,
    "property_delta_not_float32": _property_delta_not_float32,
    "with_pos_weight": lambda c: c.kwargs.get("pos_weight") is not None,
    "paddle_cosine_epsilon_visible": lambda c: _cosine_epsilon_visible(c, epsilon=1e-11),
    "subnormal_cosine": _subnormal_cosine,
    "shifted_logit_below_minus_64": _shifted_logit_below_minus_64,
    "ctc_all_targets_empty": lambda c: c.fn == "ctc_loss"
    and not np.any(np.asarray(c.args["target_lengths"])),
    "threshold_not_float32": lambda c: c.fn in ("huber_loss", "smooth_l1_loss") and any(
        float(np.float32(v)) != float(v) for v in (c.kwargs.get("delta"), c.kwargs.get("beta")) if v is not None
    ),
    "ctc_mean_over_empty_target": lambda c: c.fn == "ctc_loss" and c.kwargs.get("reduction", "mean") == "mean"
    and bool(np.any(np.asarray(c.args["target_lengths"]) == 0)),
    "smoothing_mean_with_nonnegative_ignore_index": lambda c: c.fn == "cross_entropy"
    and bool(c.kwargs.get("label_smoothing")) and int(c.kwargs.get("ignore_index", -100)) >= 0
    and c.kwargs.get("reduction", "mean") == "mean",
    "ctc_empty_input_and_target": lambda c: c.fn == "ctc_loss" and bool(np.any(
        (np.asarray(c.args["input_lengths"]).reshape(-1) == 0) & (np.asarray(c.args["target_lengths"]).reshape(-1) == 0)
    )),
})


def _difference_gradient_overflows(case: Case) -> bool:
    """The backward pass of a square ``(x - y) ** 2`` formed in the dtype overflows where the
    exact gradient need not: ``x - y`` itself exceeds the dtype's max (``mse_loss``,
    ``gaussian_nll_loss``), or ``2 (x - y)`` does, formed before the incoming gradient scales
    it (or zeroes it, for a branch ``where`` did not select) -- through ``pow``'s derivative
    for ``mse_loss`` with ``weight`` (composed: PyTorch in Python, Keras as ``sample_weight``;
    unweighted, PyTorch's native backward scales first) and ``gaussian_nll_loss``, and in the
    quadratic branch Keras's ``Huber`` evaluates everywhere (``huber_loss``, ``smooth_l1_loss``).
    Also: ``x - y`` beyond float64 itself (its square's derivative is then NaN or inf), and, for
    the gradient w.r.t. ``weight``, the unweighted term beyond the dtype's max."""
    doubled = case.fn in ("gaussian_nll_loss", "huber_loss", "smooth_l1_loss") or (
        case.fn == "mse_loss" and case.kwargs.get("weight") is not None
    )
    if not (doubled or case.fn == "mse_loss"):
        return False
    x, y = _input(case), np.asarray(case.args["target"], dtype=np.float64)
    top = format_of(case.dtype).max_finite
    with np.errstate(over="ignore", invalid="ignore"):
        x, y = np.broadcast_arrays(x, y)
        d = np.abs(x - y)
        if np.any(np.isinf(d) & np.isfinite(x) & np.isfinite(y)):  # x - y beyond even float64
            return True
        finite = np.isfinite(d)
        if case.wrt == "weight":
            # d/dweight is the unweighted term itself: d^2 (mse) or Huber's 0.5 d^2 (whose d^2
            # is formed first) / delta (d - delta / 2), in the dtype before the mean's 1/n
            delta = float(case.kwargs.get("delta", case.kwargs.get("beta", 1.0)) or 1.0)
            term = d * d if case.fn == "mse_loss" else np.where(d <= delta, d * d, delta * (d - delta / 2))
            if np.any(term[finite] > top):
                return True
        if case.wrt == "var" and case.fn == "gaussian_nll_loss" and _gaussian_var_gradient_overflows(case, d, top):
            return True
    return bool(np.any((2 if doubled else 1) * d[finite] > top))


def _gaussian_var_gradient_overflows(case: Case, d: np.ndarray, top: float) -> bool:
    """d/dvar of ``(x - y)^2 / var`` is ``-(x - y)^2 / var^2``, which division's backward forms
    in the dtype (``var`` clamped at ``eps``): beyond the max, or ``var^2`` below the smallest
    normal (then rounded far off or to 0), where the halved exact gradient may still fit
    (float16 x - y = 9.4, var clamped to 0.001: -inf, exact -59339.7)."""
    if (terms := _squared_difference_and_clamped_variance(case, d)) is None:
        return False
    d2, var = terms
    square = var * var
    live = np.isfinite(d2) & (d2 > 0)
    return bool(np.any(live & ((d2 / square > top) | (square < format_of(case.dtype).smallest_normal))))


def _poisson_full_zero_target(case: Case) -> bool:
    """``poisson_nll_loss(full=True)`` with a target of exactly 0, where the masked Stirling
    term's ``log y`` and ``1/y`` are infinite."""
    return (
        case.fn == "poisson_nll_loss"
        and bool(case.kwargs.get("full"))
        and bool(np.any(np.asarray(case.args["target"], dtype=np.float64) == 0))
    )


def _subnormal_difference(case: Case) -> bool:
    """A regression loss with an element whose ``x - y`` is nonzero and below the dtype's
    smallest normal: flushed to zero in flush-to-zero mode, which turns ``sign(x - y)`` (the
    L1 gradient, Huber's and smooth L1's linear branch) from +-1 into 0."""
    if case.fn not in _REGRESSION:
        return False
    x, y = _input(case), np.asarray(case.args["target"], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(np.subtract(*np.broadcast_arrays(x, y)))
    return bool(np.any((d > 0) & (d < format_of(case.dtype).smallest_normal)))


def _quadratic_branch_far_inside_threshold(case: Case) -> bool:
    """``huber_loss``/``smooth_l1_loss``: an element in the quadratic branch whose inputs are
    small against the threshold, ``|x| + |y| < delta / 8`` (``beta`` for smooth L1): where an
    absolute gradient error of ``u delta / 2`` exceeds the error model's ``u (8 |g| + 4 (|x| +
    |y|))`` bound (``g = x - y`` there), as when a backward pass forms ``delta + (|d| - delta)``."""
    if case.fn not in ("huber_loss", "smooth_l1_loss"):
        return False
    threshold = float(case.kwargs.get("delta" if case.fn == "huber_loss" else "beta", 1.0))
    x, y = np.broadcast_arrays(_input(case), np.asarray(case.args["target"], dtype=np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(x - y)
        return bool(np.any((d < threshold) & (8 * (np.abs(x) + np.abs(y)) < threshold)))


FEATURES.update({
    "quadratic_branch_far_inside_threshold": _quadratic_branch_far_inside_threshold,
    "subnormal_difference": _subnormal_difference,
    "difference_gradient_overflows": _difference_gradient_overflows,
    "poisson_full_zero_target": _poisson_full_zero_target,
    "poisson_exp_overflows": _poisson_exp_overflows,
})


def _weighted_mean_sums_exceed_max(case: Case) -> bool:
    """``l1_loss``/``mse_loss`` with ``weight`` and ``reduction='mean'``, whose weighted mean
    ``S / W`` (``S = sum w_i t_i``, ``W = sum w_i``) has ``sum |w_i t_i|`` or ``sum |w_i|`` beyond
    the dtype's max: PyTorch composes it as ``torch.sum(w * t) / torch.sum(w)``, so autograd's
    ``d/dw_i = t_i / W - S / W^2`` needs the overflowed sum although the exact gradient
    ``(t_i W - S) / W^2`` is representable."""
    if case.fn not in ("l1_loss", "mse_loss") or case.kwargs.get("weight") is None:
        return False
    if case.kwargs.get("reduction", "mean") != "mean":
        return False
    fmt = format_of(case.dtype)
    weight = np.asarray(case.kwargs["weight"], dtype=np.float64)
    if np.sum(np.abs(weight) / fmt.max_finite) > 1:  # scaled: the float64 sum must not overflow
        return True
    return _intermediate_exceeds_max(case)


FEATURES["weighted_mean_sums_exceed_dtype_max"] = _weighted_mean_sums_exceed_max


# Which parameter a gradient case differentiates by (``Case.wrt``, suites/gradients.py): an
# entry for the gradient w.r.t. ``target`` says ``when = ["wrt_target"]``. Forward cases have
# none of these.
GRADIENT_PARAMETERS = (
    "input", "target", "weight", "pos_weight", "var", "log_probs",
    "input1", "input2", "anchor", "positive", "negative",
)
FEATURES.update({f"wrt_{name}": (lambda c, name=name: c.wrt == name) for name in GRADIENT_PARAMETERS})


# Features that evaluate the oracle's terms at 64 bits (or more): checked after every
# cheap predicate of an entry, so an entry whose cheap conditions fail costs nothing.
# Matters for XPASS accounting, which asks every conforming case.
_COSTLY_FEATURES = frozenset({
    "intermediate_exceeds_dtype_max", "masked_mean_rescale_overflows", "subnormal_result",
    "subnormal_result_or_term", "subnormal_result_any_reduction",
    "nonzero_sum_over_zero_denominator", "mean_denominator_zero", "margin_sum_exceeds_dtype_max",
    "weighted_mean_sums_exceed_dtype_max",
})


@dataclass(frozen=True)
class Expectation:
    id: str
    kind: str
    reason: str
    citation: str
    losses: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    when: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    convention: str | None = None  # oracle.conventions name: grade under the framework's own formula
    source: str = ""

    def matches(self, adapter: str, test: str, case: Case, features: dict[str, bool] | None = None) -> bool:
        """Whether the entry applies to ``case``; ``features`` memoizes feature values
        across the entries checked for one case."""
        return (
            self.selects(adapter, test)
            and self.selects_case(case.fn, case.dtype, case.label)
            and self.conditions_hold(case, features)
        )

    def selects(self, adapter: str, test: str) -> bool:
        """The entry's ``adapters`` and ``tests`` patterns admit this adapter and test."""
        return _listed(self.adapters, adapter) and _listed(self.tests, test)

    def selects_case(self, fn: str, dtype: str, label: str | None) -> bool:
        """The entry's ``losses``, ``dtypes`` and ``labels`` patterns admit the case's."""
        return _listed(self.losses, fn) and _listed(self.dtypes, dtype) and _listed(self.labels, label)

    def conditions_hold(self, case: Case, features: dict[str, bool] | None = None) -> bool:
        """Every feature of ``when`` holds on ``case``, the costly ones (oracle terms)
        asked last, so that an entry whose cheap conditions fail costs nothing."""
        for name in sorted(self.when, key=lambda f: f in _COSTLY_FEATURES):
            if features is None:
                value = FEATURES[name](case)
            elif name in features:
                value = features[name]
            else:
                value = features[name] = FEATURES[name](case)
            if not value:
                return False
        return True

    def describe(self) -> str:
        cited = f" ({self.citation})" if self.citation else ""
        return f"[{self.id}] {self.kind}: {self.reason}{cited}"


class ExpectationLookup:
    """The entries that apply to one adapter and test. Calling it with a failing case
    gives the entry that explains it (or None); :meth:`conforming` records which entries
    a *conforming* case meets, so a run can tell a used entry from a stale one (XPASS,
    ``suites/gating.py``)."""

    def __init__(self, entries, adapter: str, test: str, explained: set[str] | frozenset[str] = frozenset()):
        self.adapter = adapter
        self.test = test
        # Ids of entries that already explained a deviation in this process (the item
        # recorders add them): used entries, never XPASS -- :meth:`conforming` skips them.
        self.explained = explained
        # Only the entries for this adapter and test, and per (loss, dtype, label) the
        # ones whose patterns admit it: a conforming case asks every entry (XPASS
        # evidence), and the patterns' fnmatch was a third of that cost.
        self.entries = [e for e in entries if e.selects(adapter, test)]
        self._for_case: dict[tuple, list[Expectation]] = {}

    def _candidates(self, case: Case) -> list[Expectation]:
        key = (case.fn, case.dtype, case.label)
        found = self._for_case.get(key)
        if found is None:
            found = self._for_case[key] = [e for e in self.entries if e.selects_case(*key)]
        return found

    def __call__(self, case: Case) -> Expectation | None:
        features: dict[str, bool] = {}
        return next((e for e in self._candidates(case) if e.conditions_hold(case, features)), None)

    def conforming(self, case: Case) -> list[Expectation]:
        """Every entry whose condition ``case`` meets (for a case that conformed).

        A feature that cannot be evaluated on the case -- most need the oracle, which
        rejects the inputs of ``test_rejects_invalid_input`` -- does not hold: this is
        only evidence for an XPASS, and a condition not established is no evidence.
        An entry in :attr:`explained` is not asked: it explained a deviation in this
        process, so the run counts it used whatever conforming cases say (``suites/gating.py``
        ranks used before XPASS), and its conditions are often the costly ones (oracle
        terms: ~2 of a TensorFlow gate's 64 CPU s went to asking them again)."""
        features: dict[str, bool] = {}
        out = []
        for e in self._candidates(case):
            if e.id in self.explained:
                continue
            try:
                if e.conditions_hold(case, features):
                    out.append(e)
            except Exception:
                continue
        return out


def _listed(patterns: tuple[str, ...], value: str | None) -> bool:
    """No patterns admit everything; otherwise ``value`` must match one (fnmatch)."""
    return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _str_list(value, where: str, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExpectationsError(f"{where}: {field!r} must be a string or a list of strings")
    return tuple(value)


def load_expectations(path: str | Path, *, default_adapters: tuple[str, ...] = ()) -> list[Expectation]:
    """Parse and validate an expectations file; raise :class:`ExpectationsError` on any problem.

    ``default_adapters`` is what an entry without ``adapters`` applies to: a built-in
    framework's file (``torch.toml``) must not excuse another framework's failures
    in a run of several adapters. Empty means every adapter (a user's own file).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectationsError(f"expectations file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{path} is not valid TOML: {exc}") from None
    entries = data.get("expected", [])
    unknown_top = set(data) - {"expected"}
    if unknown_top or not isinstance(entries, list):
        raise ExpectationsError(f"{path}: expected only [[expected]] tables, found {sorted(unknown_top) or type(entries).__name__}")
    out, seen = [], set()
    for i, entry in enumerate(entries, 1):
        where = f"{path}, entry {i}"
        required = {"id", "kind", "reason"} | ({"citation"} if entry.get("kind") != "baseline" else set())
        missing = required - set(entry)
        if missing:
            raise ExpectationsError(f"{where}: missing required field(s) {', '.join(sorted(missing))}")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ExpectationsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FIELDS))}")
        if entry["kind"] not in KINDS:
            raise ExpectationsError(f"{where}: kind {entry['kind']!r} is not one of {', '.join(KINDS)}")
        if entry["id"] in seen:
            raise ExpectationsError(f"{where}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        when = _str_list(entry.get("when", []), where, "when")
        for feature in when:
            if feature not in FEATURES:
                raise ExpectationsError(f"{where}: unknown feature {feature!r} in 'when'; known: {', '.join(sorted(FEATURES))}")
        convention = entry.get("convention")
        if convention is not None:
            from oracle.conventions import CONVENTIONS

            if convention not in CONVENTIONS:
                raise ExpectationsError(f"{where}: unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
            gradient_tests = [t for t in _str_list(entry.get("tests", []), where, "tests") if t.startswith("test_gradient")]
            if gradient_tests and CONVENTIONS[convention].grad is None:
                with_grad = [n for n, c in CONVENTIONS.items() if c.grad is not None]
                raise ExpectationsError(
                    f"{where}: convention {convention!r} has no gradient, so it cannot grade "
                    f"{', '.join(gradient_tests)}; conventions with one: {', '.join(with_grad)}"
                )
        out.append(
            Expectation(
                id=entry["id"], kind=entry["kind"], reason=entry["reason"], citation=entry.get("citation", ""),
                losses=_str_list(entry.get("losses", []), where, "losses"),
                tests=_str_list(entry.get("tests", []), where, "tests"),
                dtypes=_str_list(entry.get("dtypes", []), where, "dtypes"),
                labels=_str_list(entry.get("labels", []), where, "labels"),
                when=when,
                adapters=_str_list(entry.get("adapters", list(default_adapters)), where, "adapters"),
                convention=convention,
                source=str(path),
            )
        )
    return out


# Features of the onnxruntime adapter's deviations: ONNX Runtime's CPU Sigmoid kernels
# have absolute, not relative, accuracy for negative inputs.

#: Below this input a sigmoid whose error is absolute (about one ULP of 1) rather than
#: relative exceeds the error model: sigma(-2) = 0.12, and the bound at x is about
#: (8 + 4|x|) ULPs of sigma(x). A scan of [-30, 30] found the first failures of ONNX
#: Runtime's float32 and float64 Sigmoid at -2.9 and -3.0 (tests/test_adapter_onnxruntime.py).
_SIGMOID_TAIL = -2.0


def _input_below_minus_2(case: Case) -> bool:
    """Some finite input (``input``) is below -2: for ``sigmoid`` its left tail, where
    ``1 - 1/(1 + e^-|x|)`` (and any approximation accurate to a ULP of 1 only) has lost
    relative accuracy."""
    x = _input(case)
    return bool(np.any(x[np.isfinite(x)] < _SIGMOID_TAIL))


FEATURES.update({
    "input_below_minus_2": _input_below_minus_2,
})


# -- gradients w.r.t. the binary and divergence losses' targets and weights (issue 6) ---------

#: ``log`` of the smallest probability ``binary_cross_entropy`` does not clamp: ``e^-100``.
_BCE_CLAMP_PROBABILITY = math.exp(-100.0)


def _bce_log_clamped(case: Case) -> bool:
    """``binary_cross_entropy``: some probability ``x`` whose ``log x`` or ``log(1 - x)`` is
    below -100, where the docs clamp it (``x < e^-100``, which includes ``x = 0``, or
    ``1 - x < e^-100``, i.e. ``x = 1`` in every binary format)."""
    if case.fn != "binary_cross_entropy":
        return False
    x = _input(case)
    return bool(np.any((x < _BCE_CLAMP_PROBABILITY) | (1.0 - x < _BCE_CLAMP_PROBABILITY)))


#: Beyond this argument ``z`` a term ``-log sigma(z) = log(1 + e^-z)`` evaluated as the log of the
#: rounded ``1 + e^-z`` (absolute error up to ``u/2``) exceeds its own gradient bound (about
#: ``u e^-z (12 + 4z)`` for a weight gradient): from ``z ~ 4.1``; 3.5 leaves a margin.
_LOG_SIGMOID_TERM_ARGUMENT = 3.5


def _multilabel_soft_margin_small_term(case: Case) -> bool:
    """``multilabel_soft_margin_loss``: some element whose live term ``-log sigma(z)`` (``z = x``
    where ``y != 0``, ``z = -x`` where ``y != 1``) has a finite ``z`` above 3.5, where the term
    ``log(1 + e^-z)`` is small and ``1 + e^-z`` rounded in the dtype loses its digits."""
    if case.fn != "multilabel_soft_margin_loss":
        return False
    x = _input(case)
    y = np.asarray(case.args["target"], dtype=np.float64)
    if x.shape != y.shape:
        return False
    with np.errstate(invalid="ignore"):
        live = ((y != 0) & (x > _LOG_SIGMOID_TERM_ARGUMENT)) | ((y != 1) & (-x > _LOG_SIGMOID_TERM_ARGUMENT))
    return bool(np.any(live & np.isfinite(x)))


def _bce_probability_near_0_41(case: Case) -> bool:
    """``binary_cross_entropy``: some probability in [0.28, 0.53], whatever its target: the
    gradients w.r.t. target (``-w (log x - log1p(-x))``) and weight use ``log1p(-x)`` there,
    where XLA:CPU's float64 log1p is inaccurate (``log1p_argument_near_minus_0_41``)."""
    if case.fn != "binary_cross_entropy":
        return False
    p = _input(case)
    return bool(np.any((p >= 0.28) & (p <= 0.53)))


FEATURES.update({
    "bce_probability_near_0_41": _bce_probability_near_0_41,
    "multilabel_soft_margin_small_term": _multilabel_soft_margin_small_term,
    "bce_log_clamped": _bce_log_clamped,
    "wrt_target_or_weight": lambda c: c.wrt in ("target", "weight"),
})
