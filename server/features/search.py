"""`forge/search` and the `forgeIndexer.search` command: semantic code search."""

from __future__ import annotations

from typing import Any

from server import queries
from server.errors import rpc_errors
from server.params import SearchParams, parse_params
from server.server import ForgeLanguageServer

METHOD = "forge/search"
COMMAND = "forgeIndexer.search"


def register(ls: ForgeLanguageServer) -> None:
    """Register the search request and command."""

    @ls.feature(METHOD)
    @rpc_errors(METHOD)
    async def search(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Hybrid search over every root; results carry the index coverage."""
        return await _search(ls, params)

    @ls.command(COMMAND)
    @rpc_errors(COMMAND)
    async def search_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/search` for clients that only speak commands (first argument: the params)."""
        return await _search(ls, args[0] if args else None)


async def _search(ls: ForgeLanguageServer, raw: Any) -> dict[str, Any]:
    p = parse_params(SearchParams, raw)
    roots = ls.roots.all()
    return await ls.run_query(lambda cancel: queries.search(roots, p, cancel))
