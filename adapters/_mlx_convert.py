"""Exact conversion between NumPy arrays and MLX arrays, and its source text.

The verdict compares MLX's output with the oracle's exact value on the *same
binary inputs*, so nothing may round on the way in or out. Two traps:

* ``mx.array(x)`` of a float64 NumPy array silently makes a **float32** array
  (MLX's default float type); the dtype must be passed, ``mx.array(x,
  dtype=mx.float64)``.
* MLX's bfloat16 arrays do not export a buffer NumPy reads (``np.array`` raises
  "'bfloat16' is not a valid PEP 3118 buffer format string"). bfloat16 therefore
  travels as its bit pattern: ``uint16`` views on both sides, exact by
  construction.

float16, float32 and the integer types map one-to-one.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ._repro import BFLOAT16, reshape_suffix, values_literal

_MX_DTYPES: dict[np.dtype, mx.Dtype] = {
    np.dtype(np.float16): mx.float16,
    BFLOAT16: mx.bfloat16,
    np.dtype(np.float32): mx.float32,
    np.dtype(np.float64): mx.float64,
    np.dtype(np.int64): mx.int64,
    np.dtype(np.int32): mx.int32,
    np.dtype(np.int16): mx.int16,
    np.dtype(np.int8): mx.int8,
    np.dtype(np.uint8): mx.uint8,
    np.dtype(np.bool_): mx.bool_,
}


def mx_dtype(dtype: np.dtype) -> mx.Dtype:
    """The MLX dtype holding exactly the values of NumPy ``dtype``."""
    dtype = np.dtype(dtype).newbyteorder("=")
    try:
        return _MX_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"no exact MLX dtype for NumPy dtype {dtype}") from None


def dtype_name(dtype: mx.Dtype) -> str:
    """``mx.float32`` -> ``'float32'``."""
    return str(dtype).rsplit(".", 1)[-1]


def to_mx(array: np.ndarray) -> mx.array:
    """A new MLX array with exactly ``array``'s values, dtype and shape."""
    array = np.asarray(array)
    dtype = mx_dtype(array.dtype)
    native = np.array(array, dtype=array.dtype.newbyteorder("="), order="C", copy=True)
    if dtype == mx.bfloat16:
        return mx.array(native.view(np.uint16)).view(mx.bfloat16)
    return mx.array(native, dtype=dtype)


def to_numpy(array: mx.array) -> np.ndarray:
    """A NumPy array with exactly ``array``'s values, dtype and shape (evaluates it).

    A 0-d array gives a 0-d array; bfloat16 gives an ``ml_dtypes.bfloat16`` array.
    """
    if array.dtype == mx.bfloat16:
        return np.array(array.view(mx.uint16), copy=True).view(BFLOAT16)
    return np.array(array, copy=True)


def array_source(array: np.ndarray) -> str:
    """An MLX expression rebuilding ``array`` exactly (values, dtype, shape).

    Elements are the shortest decimals that round-trip their binary value, parsed
    by NumPy in the exact dtype, then given to ``mx.array`` with that dtype;
    bfloat16 is built in float32 (which holds every bfloat16 value) and cast.
    """
    array = np.asarray(array)
    values = values_literal(array)
    reshape = reshape_suffix(array.shape)
    dtype = mx_dtype(array.dtype)
    if dtype == mx.bfloat16:
        return f"mx.array(np.array({values}, dtype=np.float32){reshape}).astype(mx.bfloat16)"
    name = dtype_name(dtype)
    numpy_name = "bool_" if name == "bool" else name
    return f"mx.array(np.array({values}, dtype=np.{numpy_name}){reshape}, dtype=mx.{name})"
