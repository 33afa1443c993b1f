"""Errors raised while choosing and loading an adapter.

Each carries a one-line message that says what to do next, because it is
printed as a pytest usage error or as the reason a conformance test is skipped.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class: the adapter requested with ``--adapter`` cannot be used."""


class UnknownAdapterError(AdapterError, LookupError):
    """The spec is neither a built-in adapter name nor an importable module."""


class AdapterUnavailableError(AdapterError):
    """A known adapter cannot run here: its framework or the device is missing.

    The conformance suite *skips* with this message as the reason, since the
    environment, not the implementation under test, is what is lacking.
    """
