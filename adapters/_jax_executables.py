"""The ``jax`` adapter's compiled programs kept on disk, found without tracing.

``jax.jit`` compiles every distinct program (static options) and argument shape. JAX's
persistent compilation cache saves the XLA compilation, but to look an entry up JAX must
first trace the Python function and lower it to StableHLO, since its key is a hash of
the lowered module: on a warm run that costs more than the compilations it saves
(README "Performance": 433 s lowering and 129 s tracing against 71 s compiling, gate
profile). The adapter knows more than JAX does: a program is fully determined by its
source text (``adapters/_jax_programs.py``, options as literals), whether it is the value
or the gradient with respect to argument ``i``, the arguments' shapes and dtypes and
JAX's 64-bit mode. With that as the key, a hit is a file read and
``jax.experimental.serialize_executable.deserialize_and_load`` (about 4 ms), and no
tracing, lowering or compiling at all.

What is stored is the executable ``jax.jit(f).lower(*args).compile()`` produced -- the
one ``jax.jit(f)(*args)`` runs -- so a hit computes the same bits as a miss
(``tests/test_adapter_jax.py`` compares them, values and gradients, every dtype).

Safe to delete at any time. Each entry repeats its full key, which also names the
jax/jaxlib versions, the backend's platform version, the device kind, the host's
architecture and CPU feature flags (an XLA:CPU executable is compiled for the host's
instruction set; a CI cache restored on another runner must not run it), ``XLA_FLAGS``,
the JAX settings that change a program (:data:`_CONFIG_IN_KEY`) and this module's
format number; an entry whose key differs, or that fails to load, is compiled
again and replaced. Writes are atomic (a temporary file, then a rename), so xdist
workers sharing the directory never read half a file.

Like JAX's own cache, an entry is a pickle with a native executable in it: loading one
runs code, so the directory must be as trusted as the checkout (it is the run's own
``--lossconf-cache DIR``, suites/caches.py).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["ENV", "FORMAT", "TOTALS", "ExecutableCache", "cache_directory", "compile_uncached", "describe"]

#: The environment variable naming the directory (suites/caches.py sets it to
#: ``DIR/jax-executables`` for ``--lossconf-cache DIR``); unset or empty: no disk cache.
ENV = "LOSSCONF_JAX_EXECUTABLES"

#: Bumped whenever an entry's layout or the meaning of its key changes.
FORMAT = 1

#: Executables held in memory per adapter: loaded XLA executables cost ~2.5 MB of resident
#: memory apiece here, and a gate run meets ~900 distinct ones over its workers, while
#: reuse is near (a property's transformed cases keep the shape); older ones are read
#: from disk again, ~4 ms each.
_IN_MEMORY = 32


#: Hits, misses and rejected entries of every cache in this process (benchmarks/profile_run.py).
TOTALS = {"hits": 0, "misses": 0, "rejected": 0}


def cache_directory() -> Path | None:
    """The directory of :data:`ENV`, read at each call so that a run can scope it; None
    when unset, or when ``jax.disable_jit`` is on (the user asked for no compilation)."""
    value = os.environ.get(ENV)
    if not value or jax.config.jax_disable_jit:
        return None
    return Path(value)


@lru_cache(maxsize=1)
def _host() -> str:
    """The host's architecture and CPU feature flags: what an XLA:CPU executable assumes."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    flags = " ".join(sorted(line.split(":", 1)[1].split()))
                    break
    except OSError:
        flags = platform.processor()  # no /proc (macOS): the processor name at least
    return f"{platform.machine()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


#: JAX settings that change what a program lowers or compiles to; with ``XLA_FLAGS`` (and
#: ``LIBTPU_INIT_ARGS``) they enter the key, so a run with other settings compiles anew.
_CONFIG_IN_KEY = (
    "jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_dtype_promotion", "jax_numpy_rank_promotion",
)


def _environment(device: jax.Device) -> str:
    import jaxlib

    client = device.client
    settings = ", ".join(f"{name}={getattr(jax.config, name, None)!r}" for name in _CONFIG_IN_KEY)
    flags = ", ".join(f"{name}={os.environ.get(name, '')!r}" for name in ("XLA_FLAGS", "LIBTPU_INIT_ARGS"))
    return (
        f"format {FORMAT}; jax {jax.__version__}; jaxlib {jaxlib.__version__}; "
        f"{client.platform} {client.platform_version}; device {device.device_kind} #{device.id}; "
        f"host {_host()}\n{settings}; {flags}"
    )


def describe(source: str, arrays: Sequence[np.ndarray], *, x64: bool, device: jax.Device) -> str:
    """The full key of one executable: everything that decides what XLA compiles.

    ``source`` names the function (the program's text, and for a gradient the argument it
    differentiates); the arguments enter by dtype and shape only, as they enter ``jax.jit``'s
    own cache (the adapter passes every argument as a device array of its NumPy dtype, never
    weakly typed, on ``device``).
    """
    arguments = ", ".join(f"{np.dtype(a.dtype).name}{list(np.shape(a))}" for a in arrays)
    return f"{_environment(device)}\nx64 {bool(x64)}\narguments ({arguments})\n{source}"


class ExecutableCache:
    """Compiled programs by :func:`describe` key: in memory, then on disk, then compiled."""

    def __init__(self, device: jax.Device) -> None:
        self.device = device
        self._memory: OrderedDict[str, Callable[..., Any]] = OrderedDict()
        self.hits = self.misses = self.rejected = 0
        self._loaded: set[str] = set()

    def discard(self, key: str, directory: Path) -> bool:
        """Forget ``key``'s executable, which cannot run: from memory, and its disk entry if it
        came from disk (True then). False when it was compiled in this process -- which on a
        miss may still be a deserialized one, from JAX's persistent cache."""
        self._memory.pop(key, None)
        self._reject()
        if key not in self._loaded:
            return False
        self._loaded.discard(key)
        (directory / _file_name(key)).unlink(missing_ok=True)
        return True

    def remember(self, key: str, executable: Callable[..., Any]) -> None:
        """Hold ``executable`` for ``key`` in memory only (never written to disk)."""
        self._memory[key] = executable
        if len(self._memory) > _IN_MEMORY:
            self._memory.popitem(last=False)

    def get(self, key: str, compile_: Callable[[], Any], directory: Path, values: Sequence[Any] = ()) -> Callable[..., Any]:
        """The executable for ``key``; ``compile_()`` returns a ``jax.stages.Compiled`` on a miss.

        A miss is stored only when its serialized form, loaded back, runs on ``values`` with
        bit-identical results: XLA's CPU runtime can deserialize an executable whose fused
        kernels it then cannot find (``NOT_FOUND: Function subtract_multiply_fusion not
        found``, a weighted ``mse_loss`` gradient), so storing unverified entries turned a warm
        run's hits into errors."""
        executable = self._memory.get(key)
        if executable is not None:
            self._memory.move_to_end(key)
            return executable
        path = directory / _file_name(key)
        executable = self._load(path, key)
        if executable is None:
            self.misses += 1
            TOTALS["misses"] += 1
            executable = compile_()
            self._store(path, key, executable, values)
        else:
            self.hits += 1
            TOTALS["hits"] += 1
            self._loaded.add(key)
        self._memory[key] = executable
        if len(self._memory) > _IN_MEMORY:
            self._memory.popitem(last=False)
        return executable

    def _load(self, path: Path, key: str) -> Any | None:
        from jax.experimental import serialize_executable

        try:
            with open(path, "rb") as file:
                entry = pickle.load(file)
        except FileNotFoundError:
            return None
        except Exception:  # a truncated or foreign file: compile again
            self._reject()
            return None
        try:
            if not isinstance(entry, dict) or entry.get("key") != key:
                raise ValueError("the entry's key is not this program's")  # a collision or another format
            return serialize_executable.deserialize_and_load(
                entry["executable"], entry["in_tree"], entry["out_tree"],
                backend=self.device.client, execution_devices=[self.device],
            )
        except Exception:  # anything this JAX cannot load is compiled again
            self._reject()
            return None

    def _reject(self) -> None:
        self.rejected += 1
        TOTALS["rejected"] += 1

    def _store(self, path: Path, key: str, compiled: Any, values: Sequence[Any] = ()) -> None:
        from jax.experimental import serialize_executable

        try:
            executable, in_tree, out_tree = serialize_executable.serialize(compiled)
            if not _reloads_identically(compiled, executable, in_tree, out_tree, values, self.device):
                return  # run uncached: this executable does not survive serialization here
            data = pickle.dumps({"key": key, "executable": executable, "in_tree": in_tree, "out_tree": out_tree})
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except (OSError, ValueError, NotImplementedError, pickle.PicklingError):
            pass  # a read-only or full disk, or an executable JAX cannot serialize: run uncached


def _reloads_identically(compiled: Any, executable: bytes, in_tree: Any, out_tree: Any, values: Sequence[Any], device: Any) -> bool:
    """Whether the serialized executable, loaded back, gives ``compiled``'s results bit for bit."""
    from jax.experimental import serialize_executable

    try:
        loaded = serialize_executable.deserialize_and_load(
            executable, in_tree, out_tree, backend=device.client, execution_devices=[device],
        )
        # to NumPy inside the handler: dispatch is asynchronous, so an executable that cannot
        # run (either one: ``compiled`` may itself be JAX's persistent cache's) raises only here
        expected = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(compiled(*values))]
        got = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(loaded(*values))]
    except Exception:
        return False
    return len(expected) == len(got) and all(
        e.dtype == g.dtype and e.shape == g.shape and e.tobytes() == g.tobytes() for e, g in zip(expected, got)
    )


def compile_uncached(compile_: Callable[[], Any]) -> Any:
    """``compile_()`` with JAX's persistent compilation cache off: a fresh XLA compilation,
    neither read from nor written to the cache directory.

    JAX decides once per process whether its cache is used (``jax._src.compilation_cache.
    is_cache_used`` memoizes it), so turning ``jax_enable_compilation_cache`` off alone is
    not seen; ``reset_cache()`` (the public ``jax.experimental.compilation_cache``) makes it
    decide again, before and after. For an executable that JAX's cache returned but that
    cannot run (``adapters/jax_losses.py`` ``_run``)."""
    from jax.experimental.compilation_cache import compilation_cache

    previous = jax.config.jax_enable_compilation_cache
    compilation_cache.reset_cache()
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        return compile_()
    finally:
        jax.config.update("jax_enable_compilation_cache", previous)
        compilation_cache.reset_cache()


def _file_name(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{digest[:2]}/{digest}.pickle"
