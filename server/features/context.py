"""`forge/context` and the `forgeIndexer.context` command: snippets packed to a token budget."""

from __future__ import annotations

from typing import Any

from indexer.core.errors import InvalidQuery
from server import queries
from server.errors import rpc_errors
from server.params import ContextParams, parse_params
from server.server import ForgeLanguageServer

METHOD = "forge/context"
COMMAND = "forgeIndexer.context"


def register(ls: ForgeLanguageServer) -> None:
    """Register the context request and command."""

    @ls.feature(METHOD)
    @rpc_errors(METHOD)
    async def context(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Context for a query and/or a cursor position."""
        return await _context(ls, params)

    @ls.command(COMMAND)
    @rpc_errors(COMMAND)
    async def context_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/context` for clients that only speak commands (first argument: the params)."""
        return await _context(ls, args[0] if args else None)


async def _context(ls: ForgeLanguageServer, raw: Any) -> dict[str, Any]:
    p = parse_params(ContextParams, raw)
    target = None
    if p.text_document is not None:
        target = ls.roots.for_uri(p.text_document.uri)
        if target is None:
            raise InvalidQuery(f"{p.text_document.uri} is not inside any open workspace folder.")
    roots = ls.roots.all()
    return await ls.run_query(lambda cancel: queries.context(roots, p, target, cancel))
