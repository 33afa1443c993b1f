"""Crash isolation: what a test process is running, on disk, so that its death cannot hide it.

An adapter can do worse than raise: segfault, abort, hang, or be killed by the
kernel's OOM killer. The machinery that survives those is pytest-xdist (a dead
worker is replaced and its item reported as crashed) and pytest-timeout (its
``thread`` method ends a hung process); this module adds only what they lack,
the *case* the process died on:

* :class:`FlightRecorder` keeps ``<parts>/<worker>.inflight.json`` while a
  conformance item runs: the item (adapter, loss, dtype, label) and, before each
  adapter call, the case and its repro. The file is rewritten with one plain
  ``write`` before the adapter is called, so the kernel holds it whatever the
  adapter then does to its process; it is removed when the item's record is
  written.
* :func:`reports.recovery.orphan_records` turns in-flight files whose process
  is gone into ``error`` records naming the case: the controller calls it when
  xdist reports a crashed worker, the session's end calls it for an interrupted
  item, and ``python -m reports recover`` for a run killed outright (a crash
  without xdist, SIGKILL, a CI job's hard limit).
* :func:`apply_memory_limit` caps the process's address space
  (``RLIMIT_AS``), so an adapter that exhausts memory gets a ``MemoryError`` (a
  failure of that case) instead of the machine's OOM killer.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from reports.recovery import INFLIGHT_SUFFIX, orphan_records

from .cases import repro_text

__all__ = [
    "CRASH_HINT",
    "INFLIGHT_SUFFIX",
    "FlightRecorder",
    "apply_memory_limit",
    "orphan_records",
    "parse_size",
]

CRASH_HINT = (
    "the process running it died: a segfault, an abort, the OOM killer, or a hang "
    "ended by pytest-timeout (--timeout, thread method) each end a process this way"
)


class FlightRecorder:
    """The in-flight file of one test process (``worker`` is xdist's id or ``main``)."""

    def __init__(self, parts: Path, worker: str):
        self.path = Path(parts) / f"{worker}{INFLIGHT_SUFFIX}"
        self.worker = worker
        self._item: dict[str, Any] | None = None

    def start_item(self, item) -> None:
        params = getattr(getattr(item, "callspec", None), "params", {})
        self._item = {
            "nodeid": item.nodeid,
            "test": getattr(item, "originalname", item.name),
            "adapter": params.get("adapter"),
            "loss": params.get("loss"),
            "dtype": params.get("dtype"),
            "case_label": params.get("label"),
            "wrt": params.get("wrt"),
            "worker": self.worker,
            "started": time.time(),
        }
        self._write({**self._item, "case": "", "repro": ""})

    def note_case(self, case, adapter) -> None:
        """Record ``case`` as the one the adapter is about to be called with."""
        if self._item is None:
            return
        repro = ""
        with contextlib.suppress(Exception):
            repro = repro_text(adapter, case)
        self._write({**self._item, "case": case.describe(), "repro": repro})

    def finish_item(self) -> None:
        self._item = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        try:
            handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
        except FileNotFoundError:  # the first write of the run: make the parts directory
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        # One write, no fsync: the adapter may kill this process, not the kernel.
        with handle:
            handle.write(text)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in ``"512M"``, ``"4GiB"``, ``"4g"`` or ``"1073741824"``; ValueError with the fix otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise ValueError(f"--memory-limit {text!r} is not a size: write e.g. 4GiB, 512M or a number of bytes")
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < 64 << 20:
        raise ValueError(f"--memory-limit {text!r} is below 64 MiB: Python and NumPy alone need more")
    return size


def apply_memory_limit(limit: int):
    """Cap this process's address space at ``limit`` bytes; return a function that restores it.

    An allocation beyond it fails with ``MemoryError`` in the adapter (a failure of
    that case) instead of exhausting the machine. Address space, not resident
    memory: frameworks that reserve large virtual ranges (JAX, TensorFlow) need
    a limit well above what they touch.
    """
    import resource

    old = resource.getrlimit(resource.RLIMIT_AS)
    hard = old[1]
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_AS, old)
