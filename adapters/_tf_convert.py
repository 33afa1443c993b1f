"""Exact conversion between NumPy arrays and TensorFlow tensors, and its source text.

The verdict compares TensorFlow's output with the oracle's exact value on the
*same binary inputs*, so nothing may round on the way in or out. float16,
float32, float64 and the integer types map one-to-one. bfloat16 travels through
float32 in both directions, as in ``_convert`` for torch: float32 holds every
bfloat16 value exactly, so the cast to ``tf.bfloat16`` (and back) is exact, and
no reliance is placed on how a given TensorFlow build reads ml_dtypes arrays.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ._repro import BFLOAT16, reshape_suffix, values_literal

_TF_DTYPES: dict[np.dtype, tf.DType] = {
    np.dtype(np.float16): tf.float16,
    BFLOAT16: tf.bfloat16,
    np.dtype(np.float32): tf.float32,
    np.dtype(np.float64): tf.float64,
    np.dtype(np.int64): tf.int64,
    np.dtype(np.int32): tf.int32,
    np.dtype(np.int16): tf.int16,
    np.dtype(np.int8): tf.int8,
    np.dtype(np.uint8): tf.uint8,
    np.dtype(np.bool_): tf.bool,
}


def tf_dtype(dtype: np.dtype) -> tf.DType:
    """The TensorFlow dtype holding exactly the values of NumPy ``dtype``."""
    dtype = np.dtype(dtype).newbyteorder("=")
    try:
        return _TF_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"no exact TensorFlow dtype for NumPy dtype {dtype}") from None


def to_tf(array: np.ndarray) -> tf.Tensor:
    """A new eager tensor with exactly ``array``'s values, dtype and shape (a copy)."""
    array = np.asarray(array)
    dtype = tf_dtype(array.dtype)
    if dtype == tf.bfloat16:
        # np.array, not np.ascontiguousarray: the latter turns a 0-d array into 1-d
        return tf.cast(tf.constant(np.array(array, dtype=np.float32, order="C")), tf.bfloat16)
    native = array.dtype.newbyteorder("=")
    return tf.constant(np.array(array, dtype=native, order="C", copy=True), dtype=dtype)


def to_numpy(tensor: tf.Tensor) -> np.ndarray:
    """A NumPy array with exactly ``tensor``'s values, dtype and shape.

    A 0-d tensor gives a 0-d array (not a NumPy scalar); bfloat16 gives an
    ``ml_dtypes.bfloat16`` array.
    """
    if tensor.dtype == tf.bfloat16:
        return np.array(tf.cast(tensor, tf.float32).numpy(), dtype=np.float32).astype(BFLOAT16)
    return np.array(tensor.numpy(), copy=True)


def tensor_source(array: np.ndarray) -> str:
    """A TensorFlow expression rebuilding ``array`` exactly (values, dtype, shape).

    Every element is written as the shortest decimal that round-trips its binary
    value, parsed by NumPy into the exact dtype; bfloat16 is built in float32 and
    cast, like :func:`to_tf`.
    """
    array = np.asarray(array)
    values = values_literal(array)
    reshape = reshape_suffix(array.shape)
    if tf_dtype(array.dtype) == tf.bfloat16:
        return f"tf.cast(tf.constant(np.array({values}, dtype=np.float32){reshape}), tf.bfloat16)"
    return f"tf.constant(np.array({values}, dtype=np.{np.dtype(array.dtype).name}){reshape})"
