"""``--lossconf-cache DIR``: what a run may reuse from earlier runs and other workers.

* ``DIR/oracle``: the oracle's evaluations (``suites/oracle_cache.py``): each case's exact
  value, rounding and bound computed once for every adapter, dtype, xdist worker and run.
* ``DIR/jax``: JAX's persistent compilation cache, when the ``jax`` adapter is selected:
  each distinct program and shape is an XLA compilation (0.15-0.3 CPU s each here,
  ``benchmarks/profile_run.py``), and a derandomized profile compiles the same ones every
  run. Set through JAX's own environment variables before JAX is imported (the test
  processes import it when the adapter loads; pytest-xdist's workers inherit them), with
  ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`` and ``..._MIN_ENTRY_SIZE_BYTES=0``
  since every program here compiles in well under JAX's 1 s default threshold. A
  ``JAX_COMPILATION_CACHE_DIR`` the user set wins. JAX keys its entries on the program,
  the compile options and the jax/jaxlib versions, so a stale entry is never used.
  To look an entry up JAX must still trace and lower each program, which costs more than
  the compilation it saves on a warm run; so also:
* ``DIR/jax-executables``: the ``jax`` adapter's own executable cache
  (``adapters/_jax_executables.py``, through ``LOSSCONF_JAX_EXECUTABLES``): each compiled
  program keyed by its source text, argument shapes and dtypes, 64-bit mode and the
  jax/jaxlib/host versions, loaded without tracing. A ``LOSSCONF_JAX_EXECUTABLES`` the user
  set wins (empty: off).

* ``DIR/torch-inductor``: torch.compile's on-disk caches, when a ``torch-compile`` adapter is
  selected: Inductor's FX graph cache (each compiled graph's generated C++ and its ``.so``)
  and AOTAutograd's cache (forward/backward pairs) live under ``TORCHINDUCTOR_CACHE_DIR``.
  A cold compilation costs 1-3 CPU s, almost all of it g++ on the generated kernel; a hit
  costs Dynamo's tracing and a load (README "torch.compile"). torch reads the directory from
  that environment variable only (``torch._inductor.runtime.cache_dir_utils.cache_dir``; no
  config API), so it is set here like JAX's, and undone at the end. torch keys its entries on
  the graph, the inputs' metadata, Inductor's configuration and the torch version, so a stale
  entry is never used. A ``TORCHINDUCTOR_CACHE_DIR`` the user set wins.

All are safe to delete at any time, and CI may cache the directory between runs
(docs/github-actions.yml). ``--lossconf-cache off`` turns them all off (torch.compile then
uses torch's default directory, ``/tmp/torchinductor_<user>``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from . import oracle_cache

__all__ = ["JAX_EXECUTABLES", "JAX_SETTINGS", "TORCHINDUCTOR_CACHE_DIR", "TORCH_COMPILE_ADAPTERS", "configure_caches"]

#: The environment variable the ``jax`` adapter reads its executable cache's directory from
#: (adapters/_jax_executables.py ``ENV``; not imported from there, which would import JAX).
JAX_EXECUTABLES = "LOSSCONF_JAX_EXECUTABLES"

#: The adapters that run torch.compile (adapters/torch_compile.py; not imported, which would
#: import torch), and the variable Inductor reads its cache directory from.
TORCH_COMPILE_ADAPTERS = ("torch-compile", "torch-compile-dynamic")
TORCHINDUCTOR_CACHE_DIR = "TORCHINDUCTOR_CACHE_DIR"

#: JAX's environment variable -> (config name, value under DIR/jax or fixed).
JAX_SETTINGS = {
    "JAX_COMPILATION_CACHE_DIR": "jax_compilation_cache_dir",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "jax_persistent_cache_min_compile_time_secs",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "jax_persistent_cache_min_entry_size_bytes",
}


def configure_caches(directory: str | os.PathLike[str] | None, adapters: Iterable[str]) -> Callable[[], None]:
    """Turn the caches under ``directory`` on (None: off); returns the function undoing it."""
    previous = oracle_cache.configure(Path(directory).resolve() if directory is not None else None)
    jax_selected = directory is not None and "jax" in adapters
    undo_jax = _configure_jax(Path(directory).resolve() / "jax") if jax_selected else None
    undo_executables = _set_environment({JAX_EXECUTABLES: str(Path(directory).resolve() / "jax-executables")}) if (
        jax_selected and JAX_EXECUTABLES not in os.environ
    ) else None
    inductor_selected = directory is not None and any(name in TORCH_COMPILE_ADAPTERS for name in adapters)
    undo_inductor = _set_environment({TORCHINDUCTOR_CACHE_DIR: str(Path(directory).resolve() / "torch-inductor")}) if (
        inductor_selected and not os.environ.get(TORCHINDUCTOR_CACHE_DIR)
    ) else None

    def undo() -> None:
        oracle_cache.restore(previous)
        if undo_jax is not None:
            undo_jax()
        if undo_executables is not None:
            undo_executables()
        if undo_inductor is not None:
            undo_inductor()

    return undo


def _configure_jax(directory: Path) -> Callable[[], None] | None:
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None  # the user's own JAX cache settings stand
    values = {
        "JAX_COMPILATION_CACHE_DIR": str(directory),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    restore_environment = _set_environment(values)
    jax = sys.modules.get("jax")
    saved_config = {}
    if jax is not None:  # imported already (a profiler, a plugin): its config read the environment before
        for name, value in values.items():
            option = JAX_SETTINGS[name]
            saved_config[option] = getattr(jax.config, option)
            jax.config.update(option, type(saved_config[option])(value) if saved_config[option] is not None else value)

    def undo() -> None:
        restore_environment()
        for option, value in saved_config.items():
            jax.config.update(option, value)

    return undo


def _set_environment(values: dict[str, str]) -> Callable[[], None]:
    """Set environment variables (pytest-xdist's workers inherit them); returns the undo."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    def undo() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return undo
