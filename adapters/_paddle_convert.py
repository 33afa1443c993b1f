"""Exact conversion between NumPy arrays and PaddlePaddle tensors, and its source text.

The verdict compares Paddle's output with the oracle's exact value on the *same
binary inputs*, so nothing may round on the way in or out. float16, float32,
float64 and the integer types map one-to-one. bfloat16 travels through float32
in both directions, as in ``_convert`` for torch: float32 holds every bfloat16
value exactly, so ``cast('bfloat16')`` (and back) is exact; no reliance is
placed on Paddle's own NumPy view of bfloat16 (a ``uint16`` array of the bits).

Paddle is imported lazily (:func:`paddle_module`), never at this module's
import: its import prints warnings and takes seconds, and a process that only
lists option tables must not pay for it.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from ._repro import BFLOAT16, values_literal

#: NumPy dtype -> Paddle dtype name (``paddle.<name>``).
_PADDLE_DTYPES: dict[np.dtype, str] = {
    np.dtype(np.float16): "float16",
    BFLOAT16: "bfloat16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.int64): "int64",
    np.dtype(np.int32): "int32",
    np.dtype(np.int16): "int16",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.bool_): "bool",
}


def paddle_module() -> ModuleType:
    """``paddle``, imported on first use with its import-time warnings silenced locally.

    (paddle's ``cpp_extension`` warns that no ``ccache`` is installed; the
    ``catch_warnings`` block restores the caller's warning filters afterwards.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddle
        import paddle.nn.functional  # noqa: F401  (the losses; imported once here)
    return paddle


def paddle_dtype_name(dtype: np.dtype) -> str:
    """The name of the Paddle dtype holding exactly the values of NumPy ``dtype``."""
    dtype = np.dtype(dtype).newbyteorder("=")
    try:
        return _PADDLE_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"no exact Paddle dtype for NumPy dtype {dtype}") from None


def to_paddle(array: np.ndarray, place=None):
    """A new tensor (on ``place``, default CPU) with exactly ``array``'s values, dtype, shape."""
    paddle = paddle_module()
    array = np.asarray(array)
    name = paddle_dtype_name(array.dtype)
    place = paddle.CPUPlace() if place is None else place
    if name == "bfloat16":
        # np.array, not np.ascontiguousarray: the latter turns a 0-d array into 1-d
        host = np.array(array, dtype=np.float32, order="C")
        return paddle.to_tensor(host, dtype="float32", place=place).cast("bfloat16")
    native = array.dtype.newbyteorder("=")
    return paddle.to_tensor(np.array(array, dtype=native, order="C", copy=True), dtype=name, place=place)


def to_numpy(tensor) -> np.ndarray:
    """A NumPy array with exactly ``tensor``'s values, dtype and shape.

    A 0-d tensor gives a 0-d array; bfloat16 gives an ``ml_dtypes.bfloat16`` array.
    """
    paddle = paddle_module()
    if tensor.dtype == paddle.bfloat16:
        return np.array(tensor.cast("float32").numpy(), dtype=np.float32).astype(BFLOAT16)
    return np.array(tensor.numpy(), copy=True)


def tensor_source(array: np.ndarray) -> str:
    """A Paddle expression rebuilding ``array`` exactly (values, dtype, shape) on the CPU."""
    array = np.asarray(array)
    name = paddle_dtype_name(array.dtype)
    values = values_literal(array)
    if name == "bfloat16":
        expr = f"paddle.to_tensor({values}, dtype='float32').cast('bfloat16')"
    else:
        expr = f"paddle.to_tensor({values}, dtype={name!r})"
    if array.ndim > 1:  # Paddle's reshape takes the shape as one list
        expr += f".reshape({list(array.shape)})"
    return expr
