"""Keep the machine out of the report: absolute paths in record text become placeholders.

Record text comes from adapters and frameworks (exception messages, warnings)
and often names files by absolute path: the virtual environment, the user's home,
the checkout, the temporary directory. A report is shared (CI artifacts, issue
attachments), so :func:`redact_record` replaces those prefixes, wherever they
occur in a record's strings, by ``<python>``, ``<lossconf>``, ``<tmp>`` and ``~``.
What the user typed on the command line (``run.argv``) is theirs to include and
is left alone, and so is a record's ``rerun`` command, which is built from those
options (an ``--example-db`` or ``--expectations`` path must stay copy-pasteable);
environment variables are never read into a record.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["redact", "redact_record"]

_CHECKOUT = Path(__file__).resolve().parent.parent


@functools.cache
def _prefixes() -> tuple[tuple[str, str], ...]:
    """(absolute directory + separator, placeholder), longest first so the most specific wins."""
    pairs = {
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
        sys.exec_prefix: "<python>",
        str(_CHECKOUT): "<lossconf>",
        tempfile.gettempdir(): "<tmp>",
        os.path.expanduser("~"): "~",
    }
    out = []
    for path, placeholder in pairs.items():
        for variant in {path, os.path.realpath(path)}:
            variant = variant.rstrip(os.sep)
            if variant and variant != os.sep and os.path.isabs(variant):
                out.append((variant + os.sep, placeholder + os.sep))
    return tuple(sorted(out, key=lambda pair: len(pair[0]), reverse=True))


def redact(text: str) -> str:
    """``text`` with every known absolute directory prefix replaced by its placeholder."""
    for prefix, placeholder in _prefixes():
        if prefix in text:
            text = text.replace(prefix, placeholder)
    return text


#: Record fields made only of what the user chose on the command line.
_USER_CHOSEN = frozenset({"rerun"})


def redact_record(value: Any) -> Any:
    """A copy of a record (any JSON-like value) with :func:`redact` applied to every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: v if k in _USER_CHOSEN else redact_record(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_record(v) for v in value]
    return value
