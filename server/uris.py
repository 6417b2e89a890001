"""`file:` URIs ⇄ local paths, as the LSP client spells them (pygls' own conversion).

Kept apart from `server.roots` (watchers, settings) so that the CLI's daemon client can use
it without importing them.
"""

from __future__ import annotations

from pathlib import Path

from pygls import uris


def uri_to_path(uri: str) -> Path | None:
    """The local path of a `file:` URI (None for other schemes)."""
    fs = uris.to_fs_path(uri)
    return Path(fs) if fs else None


def path_to_uri(path: Path | str) -> str:
    uri = uris.from_fs_path(str(path))
    assert uri is not None
    return uri
