"""Source text for repro snippets: exact array literals and call lines.

A repro snippet must rebuild the *same binary values* the case used, so every
element is written as ``repr(float(v))`` (which round-trips exactly), specials
as ``float('inf')``/``float('nan')``, and the dtype is always explicit.
bfloat16 is built through float32, which holds every bfloat16 value exactly,
because neither NumPy nor ``torch.tensor`` parses a literal directly into it.
This module knows no framework; the torch adapters and the generic NumPy
fallback (for external adapters without ``repro``) both build on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ml_dtypes
import numpy as np

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
LINE_WIDTH = 88


def is_bfloat16(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is ml_dtypes' bfloat16 (NumPy reports its kind as 'V')."""
    return np.dtype(dtype) == BFLOAT16


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a real floating type, bfloat16 included."""
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype == BFLOAT16


def scalar_literal(value: object) -> str:
    """Python source for one scalar: exact floats, specials spelled out."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    raise TypeError(f"cannot write a {type(value).__name__} as a repro literal")


def _element_literals(array: np.ndarray) -> list[str]:
    if array.dtype.kind == "b":
        return [repr(bool(v)) for v in array.flat]
    if array.dtype.kind in "iu":
        return [repr(int(v)) for v in array.flat]
    if is_floating(array.dtype):
        return [scalar_literal(float(v)) for v in array.flat]
    raise TypeError(f"cannot write an array of dtype {array.dtype} as a repro literal")


def values_literal(array: np.ndarray) -> str:
    """The array's elements as a flat list literal (a bare scalar when 0-d).

    Long lists are wrapped to ``LINE_WIDTH`` columns so the snippet stays readable.
    """
    items = _element_literals(np.asarray(array))
    if np.ndim(array) == 0:
        return items[0]
    one_line = "[" + ", ".join(items) + "]"
    if len(one_line) <= LINE_WIDTH - 30:
        return one_line
    lines: list[str] = []
    current = "   "
    for item in items:
        if len(current) + len(item) + 2 > LINE_WIDTH:
            lines.append(current.rstrip())
            current = "   "
        current += f" {item},"
    lines.append(current.rstrip())
    return "[\n" + "\n".join(lines) + "\n]"


def reshape_suffix(shape: tuple[int, ...]) -> str:
    """``.reshape(...)`` restoring ``shape`` from a flat list ('' when not needed)."""
    if len(shape) <= 1:
        return ""
    return ".reshape(" + ", ".join(str(n) for n in shape) + ")"


def numpy_dtype_expr(dtype: np.dtype) -> str:
    """Source naming ``dtype`` in NumPy (bfloat16 through ml_dtypes)."""
    dtype = np.dtype(dtype)
    if dtype == BFLOAT16:
        return "ml_dtypes.bfloat16"
    if dtype.kind == "b":
        return "np.bool_"
    if dtype.kind in "iuf" and dtype.isnative:
        return f"np.{dtype.name}"
    return f"np.dtype({dtype.str!r})"


def numpy_array_expr(array: np.ndarray) -> str:
    """A NumPy expression rebuilding ``array`` exactly (values, dtype, shape)."""
    array = np.asarray(array)
    values = values_literal(array)
    if is_bfloat16(array.dtype):
        expr = f"np.array({values}, dtype=np.float32).astype(ml_dtypes.bfloat16)"
    else:
        expr = f"np.array({values}, dtype={numpy_dtype_expr(array.dtype)})"
    return expr + reshape_suffix(array.shape)


def is_array_value(value: object) -> bool:
    """Whether a call argument is an array (written as its own variable)."""
    return isinstance(value, np.ndarray)


def call_source(callee: str, positional: Sequence[str], keywords: Mapping[str, str]) -> str:
    """``callee(a, b, k=v)`` from already-rendered argument sources."""
    parts = [*positional, *(f"{k}={v}" for k, v in keywords.items())]
    return f"{callee}({', '.join(parts)})"


def numpy_snippet(
    setup: Sequence[str],
    callee: str,
    args: Mapping[str, object],
    kwargs: Mapping[str, object],
) -> str:
    """A framework-free repro: NumPy arrays passed to an adapter's function.

    ``setup`` holds the import lines (and any factory call) that make
    ``callee`` available; ``args`` are positional, in order, named for their
    variables; array keyword arguments get a variable named after the keyword.
    """
    arrays: dict[str, np.ndarray] = {}
    positional: list[str] = []
    for index, (name, value) in enumerate(args.items()):
        variable = name if name.isidentifier() else f"arg{index}"
        if is_array_value(value):
            arrays[variable] = value  # type: ignore[assignment]
            positional.append(variable)
        else:
            positional.append(scalar_literal(value))
    keywords: dict[str, str] = {}
    for name, value in kwargs.items():
        if is_array_value(value):
            arrays[name] = value  # type: ignore[assignment]
            keywords[name] = name
        else:
            keywords[name] = scalar_literal(value)
    lines = ["import numpy as np"]
    if any(is_bfloat16(a.dtype) for a in arrays.values()):
        lines.append("import ml_dtypes")
    lines.extend(setup)
    lines.extend(f"{name} = {numpy_array_expr(value)}" for name, value in arrays.items())
    lines.append(f"out = {call_source(callee, positional, keywords)}")
    lines.append("print(repr(out))")
    return "\n".join(lines) + "\n"
