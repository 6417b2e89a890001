"""forge-indexer's indexing pipeline: discover → chunk → embed → store, and queries.

The public surface is small: `Workspace` (one indexed folder) and the value types in
`indexer.core.types`. The LSP server and the CLI use only these. `Workspace` is imported lazily
so that light modules (settings, types, lexical) load without chromadb or llama.cpp, and
so are `Settings` and `ForgeError`: the CLI's daemon client imports `indexer.core.errors` and
`indexer.core.locations` and must not pay for pydantic (`server.cli_fast`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.core.errors import ForgeError
    from indexer.core.settings import Settings, load_settings
    from indexer.workspace import CancelToken, Workspace

__all__ = ["CancelToken", "ForgeError", "Settings", "Workspace", "load_settings"]


def __getattr__(name: str) -> Any:
    if name in ("Workspace", "CancelToken"):
        from indexer import workspace

        return getattr(workspace, name)
    if name in ("Settings", "load_settings"):
        from indexer.core import settings

        return getattr(settings, name)
    if name == "ForgeError":
        from indexer.core.errors import ForgeError

        return ForgeError
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
