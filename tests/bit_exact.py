"""Bit-exact comparison helpers shared by the adapters' tests (jax, mlx, onnxruntime)."""

from __future__ import annotations

from typing import Any

import numpy as np


def cast(values: Any, dtype: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(dtype)


def bits(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    return array.view(np.dtype(f"u{array.dtype.itemsize}"))


def assert_same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    __tracebackhide__ = True
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (actual, expected)
    assert np.array_equal(bits(actual), bits(expected)), f"{actual!r} != {expected!r}"
