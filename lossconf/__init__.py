"""lossconf's command line: run the conformance suite from anywhere, once lossconf is installed.

The suite itself (``conftest.py``, ``suites/``, ``oracle/``, ``adapters/``,
``reports/``) runs from the lossconf checkout; this package only finds that
checkout and runs pytest in it, from the caller's directory. See ``python -m
lossconf --help``.
"""

__version__ = "0.1.0"
