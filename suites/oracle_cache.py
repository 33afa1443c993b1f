"""The oracle's results on disk, shared by every adapter, dtype, xdist worker and run.

Every adapter sees the same generated cases (``suites/profiles.py``'s
``separate_per_item`` and the run seed of ``suites/run_seed.py`` leave the adapter out
of each item's Hypothesis identity), so the exact value of one case is needed once per
adapter. The in-process cache (``functools.lru_cache`` in ``suites.checks`` and
``suites.gradients``) cannot share it: pytest-xdist runs items in separate processes,
and a run takes all of one adapter's items before the next adapter's. This cache can:
one file per case under ``DIR/oracle/`` (``--lossconf-cache DIR``, default
``.lossconf-cache``; ``--lossconf-cache off`` disables it).

Never a wrong verdict from a stale or corrupt entry:

* the file holds the case's **full key** (function, dtype, convention, every array's
  dtype, shape and bytes, every option's ``repr``), compared for equality on load --
  the file name is only its SHA-256;
* and the **oracle's fingerprint**: a SHA-256 of the source of everything that computes
  the value and its bound (``oracle/``, the registry and specs, ``suites/verdict.py``,
  ``suites/checks.py``, ``suites/gradients.py``, ``suites/cases.py``) and the versions of
  mpmath, python-flint and NumPy. Any change to them misses every old entry;
* a file that does not unpickle (truncated, another format, tampered) is a miss, and it is
  recomputed and replaced. Unpickling allows only the classes an evaluation is made of
  (:class:`_Unpickler`), so a planted file cannot run code;
* writes are atomic (a temporary file in the same directory, then ``os.replace``), so a
  concurrent reader sees the old file, the new one, or none.

Only evaluations that succeeded are stored: an undecided case (``OracleUndecided``)
depends on the run's budget, and is tried again next time.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DIR", "OracleCache", "configure", "current", "fingerprint"]

DEFAULT_DIR = ".lossconf-cache"

#: Sources whose change can change an evaluation (value, rounding, bound, terms).
_SOURCES = ("oracle/*.py", "suites/registry.py", "suites/specs_*.py", "suites/verdict.py",
            "suites/checks.py", "suites/gradients.py", "suites/cases.py", "suites/oracle_cache.py")

_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """SHA-256 of the oracle's source files and its numeric libraries' versions."""
    import mpmath
    import numpy

    try:
        import flint

        flint_version = getattr(flint, "__version__", "?")
    except ImportError:
        flint_version = "absent"
    digest = hashlib.sha256()
    for pattern in _SOURCES:
        for path in sorted(_ROOT.glob(pattern)):
            digest.update(path.relative_to(_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    libraries = f"mpmath {mpmath.__version__} {mpmath.libmp.BACKEND}; flint {flint_version}; numpy {numpy.__version__}"
    digest.update(libraries.encode())
    return digest.hexdigest()


#: (module, name) pairs an evaluation's pickle may reference: NumPy arrays and dtypes,
#: mpmath numbers, and the evaluation classes. Anything else fails to load (a miss).
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("mpmath.ctx_mp_python", "mpf"), ("mpmath.ctx_mp_python", "mpc"),
    ("oracle.reduction", "LossTerms"), ("suites.checks", "Evaluation"), ("suites.gradients", "GradientEvaluation"),
    ("builtins", "tuple"), ("builtins", "list"), ("copyreg", "_reconstructor"), ("builtins", "object"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of an oracle evaluation")
        return super().find_class(module, name)


class OracleCache:
    """A directory of evaluations, one file per (kind, key). ``get`` -> value or None."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: tuple) -> tuple[Path, bytes]:
        identity = pickle.dumps((kind, fingerprint(), key), protocol=4)
        name = hashlib.sha256(identity).hexdigest()
        return self.directory / name[:2] / f"{name}.pkl", identity

    def get(self, kind: str, key: tuple) -> Any | None:
        path, identity = self._path(kind, key)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        try:
            stored_identity, value = _Unpickler(io.BytesIO(data)).load()
        except Exception:  # any unreadable entry is a miss, never a verdict
            self.misses += 1
            return None
        if stored_identity != identity:  # a hash collision or a planted file: not this case
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, kind: str, key: tuple, value: Any) -> None:
        path, identity = self._path(kind, key)
        try:
            data = pickle.dumps((identity, value), protocol=4)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            pass  # a cache that cannot write only costs time


_CURRENT: OracleCache | None = None


def configure(directory: str | os.PathLike[str] | None) -> OracleCache | None:
    """Use ``directory`` (its ``oracle/`` subfolder) from now on; None turns the cache off.
    Returns the previous cache so a caller can restore it."""
    global _CURRENT
    previous = _CURRENT
    _CURRENT = OracleCache(Path(directory) / "oracle") if directory is not None else None
    return previous


def restore(previous: OracleCache | None) -> None:
    global _CURRENT
    _CURRENT = previous


def current() -> OracleCache | None:
    """The cache in use (None: evaluations stay in memory, the default outside pytest)."""
    return _CURRENT
