"""The installed package's version, read once when first asked for.

Its own module so that server/server.py and server/tracing.py need not import the
`server` package's entry point (server/__init__.py, which imports them in `main()`).
"""

from __future__ import annotations

import functools


@functools.cache
def version() -> str:
    """The version of the installed `forge-indexer` distribution ("0.0.0" from a source tree)."""
    from importlib import metadata  # tens of ms: not paid by the CLI's daemon client

    try:
        return metadata.version("forge-indexer")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"
