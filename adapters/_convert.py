"""Exact conversion between NumPy arrays and torch tensors.

The conformance verdict compares a framework's output with the oracle's exact
value on the *same binary inputs*, so conversion must not round anything.
float16/float32/float64 and the integer types map one-to-one. NumPy's
bfloat16 (from ml_dtypes) is not a dtype torch can read, so it travels through
float32 in both directions: float32 holds every bfloat16 value exactly, and
rounding such a float32 back to bfloat16 changes nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from ._repro import BFLOAT16

_TORCH_DTYPES: dict[np.dtype, torch.dtype] = {
    np.dtype(np.float16): torch.float16,
    BFLOAT16: torch.bfloat16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.bool_): torch.bool,
}


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype holding exactly the values of NumPy ``dtype``."""
    dtype = np.dtype(dtype).newbyteorder("=")
    try:
        return _TORCH_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"no exact torch dtype for NumPy dtype {dtype}") from None


def to_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A new tensor on ``device`` with exactly ``array``'s values, dtype and shape.

    The data is copied (never shared with the caller's array), so nothing the
    framework does can write back into a test case.
    """
    array = np.asarray(array)
    dtype = torch_dtype(array.dtype)
    if dtype == torch.bfloat16:
        # np.array, not np.ascontiguousarray: the latter turns a 0-d array into 1-d
        host = torch.from_numpy(np.array(array, dtype=np.float32, order="C")).to(torch.bfloat16)
    else:
        native = array.dtype.newbyteorder("=")
        host = torch.from_numpy(np.array(array, dtype=native, order="C", copy=True))
    return host.to(device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy array with exactly ``tensor``'s values, dtype and shape.

    A 0-d tensor gives a 0-d array (not a NumPy scalar); bfloat16 gives an
    ``ml_dtypes.bfloat16`` array.
    """
    host = tensor.detach().cpu()
    if host.dtype == torch.bfloat16:
        return host.to(torch.float32).numpy().astype(BFLOAT16)
    return np.array(host.numpy(), copy=True)
