"""External adapters that break the adapter contract, one way each.

The second group ends its own process, the way a broken native kernel does
(``tests/test_isolation.py``): ``segfaults``, ``aborts``, ``killed`` (SIGKILL,
what the OOM killer sends), ``hangs``; ``exhausts_memory`` allocates until it
gets ``MemoryError`` and refuses to start without an address-space limit, so a
mistaken run cannot take the machine's memory.

``tests/test_harness.py`` runs the conformance suite against them
(``--adapter tests.faulty_adapters:<name>``) and checks that the harness turns
each breach into a clear record instead of crashing or passing it silently.
Every adapter implements only ``sigmoid`` (``lacks_sigmoid``: only ``softmax``),
so a run restricted with ``--loss sigmoid`` exercises exactly the faulty function.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

#: The text ``raises_runtime`` raises: the record's message must quote it.
RUNTIME_ERROR_TEXT = "fused kernel exploded on purpose (lossconf harness test)"
#: The reason ``not_implemented`` gives: the skip reason must quote it.
NOT_IMPLEMENTED_TEXT = "sigmoid is not in this backend yet"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """A correct sigmoid in float64 (the faulty adapters break the contract, not the math)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _raise_runtime(input):
    raise RuntimeError(RUNTIME_ERROR_TEXT)


def _wrong_shape(input):
    """The right values with an extra trailing axis: ``(n,)`` becomes ``(n, 1)``."""
    return _sigmoid(input).astype(np.asarray(input).dtype)[..., np.newaxis]


def _wrong_dtype(input):
    """The right values, but always float64 (a float32 case must get float32)."""
    return _sigmoid(input)


def _python_float(input):
    """A Python float instead of a NumPy array."""
    return float(np.sum(_sigmoid(input)))


def _not_implemented(input):
    raise NotImplementedError(NOT_IMPLEMENTED_TEXT)


def _softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = np.asarray(input)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    e = np.exp(shifted)
    return (e / np.sum(e, axis=dim, keepdims=True)).astype(x.dtype)


def _overwrites_input(input):
    input[...] = 0  # a kernel that works in place on its argument
    return _sigmoid(input)


#: Writes zeros into its input, then returns their sigmoid (0.5 everywhere).
overwrites_input = SimpleNamespace(name="overwrites-input", version="0.1", sigmoid=_overwrites_input)


def _regression_not_implemented(*args, **kwargs):
    raise NotImplementedError("no regression losses in this backend")


#: Defines the regression losses but supports none: the properties relating them must
#: report unsupported, not pass on examples where they returned before calling it.
regression_not_implemented = SimpleNamespace(
    name="regression-not-implemented", version="0.1",
    huber_loss=_regression_not_implemented, mse_loss=_regression_not_implemented,
    l1_loss=_regression_not_implemented, smooth_l1_loss=_regression_not_implemented,
)  # fmt: skip

raises_runtime = SimpleNamespace(name="raises-runtime", version="0.1", sigmoid=_raise_runtime)
wrong_shape = SimpleNamespace(name="wrong-shape", version="0.1", sigmoid=_wrong_shape)
wrong_dtype = SimpleNamespace(name="wrong-dtype", version="0.1", sigmoid=_wrong_dtype)
python_float = SimpleNamespace(name="python-float", version="0.1", sigmoid=_python_float)
not_implemented = SimpleNamespace(name="not-implemented", version="0.1", sigmoid=_not_implemented)
lacks_sigmoid = SimpleNamespace(name="lacks-sigmoid", version="0.1", softmax=_softmax)


def _segfault(input):
    """Read address 0: SIGSEGV, like a kernel with a bad pointer."""
    ctypes.string_at(0)


def _abort(input):
    os.abort()


def _killed(input):
    """SIGKILL, as the kernel's OOM killer delivers it."""
    os.kill(os.getpid(), signal.SIGKILL)


def _hang(input):
    time.sleep(3600)


def _exhaust_memory(input):
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        raise RuntimeError("exhausts_memory refuses to run without an address-space limit (--memory-limit)")
    hoard = []
    while True:  # touch 64 MiB at a time until the limit says no (MemoryError)
        hoard.append(np.ones(8 << 20))


segfaults = SimpleNamespace(name="segfaults", version="0.1", sigmoid=_segfault)
aborts = SimpleNamespace(name="aborts", version="0.1", sigmoid=_abort)
killed = SimpleNamespace(name="killed", version="0.1", sigmoid=_killed)
hangs = SimpleNamespace(name="hangs", version="0.1", sigmoid=_hang)
exhausts_memory = SimpleNamespace(name="exhausts-memory", version="0.1", sigmoid=_exhaust_memory)
#: A correct adapter, to show that the items after a crash still run.
correct = SimpleNamespace(name="correct", version="0.1", sigmoid=lambda input: _sigmoid(input).astype(np.asarray(input).dtype))

#: Markup an adapter puts in its error text: the report must show it as text, never run it.
HOSTILE_MARKUP = "<script>alert('lossconf')</script>"
HOSTILE_PATHS = (sys.prefix, str(Path.home()), str(Path(__file__).resolve().parents[1]))


def _hostile(input):
    where = " ".join(f"{p}/lib/kernel.so" for p in HOSTILE_PATHS)
    raise RuntimeError(f"{HOSTILE_MARKUP} failed loading {where}")


#: An adapter whose name and error text are markup and leak this machine's paths.
hostile = SimpleNamespace(name="<img src=x onerror=alert(1)>", version="<b>0.1</b>", sigmoid=_hostile)
