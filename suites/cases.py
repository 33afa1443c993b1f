"""A conformance case: one call of one spec function on exact inputs.

Floating inputs are stored already cast to the dtype under test; those cast
values are what both the oracle and the adapter see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

__all__ = ["Case", "array_literal", "max_abs_input"]


def _float_literal(v: float) -> str:
    if math.isnan(v):
        return "float('nan')"
    if math.isinf(v):
        return "float('inf')" if v > 0 else "-float('inf')"
    return repr(float(v))


def _nested(a: np.ndarray, fmt) -> str:
    if a.ndim == 0:
        return fmt(a[()])
    return "[" + ", ".join(_nested(sub, fmt) for sub in a) + "]"


def array_literal(a: Any) -> str:
    """Exact NumPy source text for an array: evaluating it rebuilds ``a`` bit for bit.

    Each float is written as the shortest decimal that round-trips its binary64
    value, which equals the (narrower) dtype's value exactly.
    """
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return f"np.array({_nested(a, lambda v: repr(int(v)))}, dtype=np.{a.dtype.name})"
    body = _nested(a.astype(np.float64), lambda v: _float_literal(float(v)))
    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        return f"np.array({body}, dtype=np.float32).astype(ml_dtypes.bfloat16)"
    return f"np.array({body}, dtype=np.{a.dtype.name})"


def _value_literal(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return array_literal(v)
    if isinstance(v, float):
        return _float_literal(v)
    return repr(v)


@dataclass(frozen=True)
class Case:
    """``fn(*args.values(), **kwargs)`` for the spec function ``fn`` in ``dtype``.

    ``label`` names a fixed edge case (empty for generated ones). ``wrt`` is empty for
    a forward case; a gradient case (``suites/gradients.py``) names the parameter it
    differentiates the output's sum by (``"input"``, ``"target"``, ``"var"``, ...).
    ``companion`` carries data a property check needs besides the call (e.g. the
    re-padded target of ``padding_after_terminator_ignored``): never passed to the
    function, never part of :meth:`describe` or the option labels, so a repro stays a
    call the framework accepts.
    """

    fn: str
    args: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float64"
    label: str = ""
    wrt: str = ""
    companion: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def call(self, function):
        return function(*self.args.values(), **self.kwargs)

    def describe(self) -> str:
        """The case as Python text: every value exact, ready to paste."""
        parts = [f"{k}={_value_literal(v)}" for k, v in self.args.items()]
        parts += [f"{k}={_value_literal(v)}" for k, v in self.kwargs.items()]
        head = f"{self.fn}(" + ", ".join(parts) + ")"
        return f"[{self.label}] {head}" if self.label else head

    def option_labels(self) -> list[str]:
        """Options this case exercises, for the report's coverage counts."""
        labels = []
        for k, v in self.kwargs.items():
            if isinstance(v, np.ndarray):
                labels.append(k)
            elif isinstance(v, float) and k == "label_smoothing":
                labels.append("label_smoothing" if v else "label_smoothing=0")
            else:
                labels.append(f"{k}={v}")
        target = self.args.get("target")
        if isinstance(target, np.ndarray) and self.fn == "cross_entropy":
            labels.append("class-index target" if np.issubdtype(target.dtype, np.integer) else "probability target")
        inp = self.args.get("input")
        if isinstance(inp, np.ndarray) and inp.ndim > 2:
            labels.append(f"K={inp.ndim - 2} extra dims")
        return labels


def max_abs_input(case: Case) -> float:
    """Largest finite |value| among the case's floating inputs (for plots)."""
    best = 0.0
    for v in list(case.args.values()) + list(case.kwargs.values()):
        if isinstance(v, np.ndarray) and not np.issubdtype(v.dtype, np.integer):
            f = np.asarray(v, dtype=np.float64)
            f = f[np.isfinite(f)]
            if f.size:
                best = max(best, float(np.max(np.abs(f))))
    return best
