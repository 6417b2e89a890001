"""`workspace/symbol`: fuzzy names from the symbols table, plus meaning for sentence queries."""

from __future__ import annotations

from lsprotocol import types

from server import queries
from server.errors import rpc_errors
from server.server import ForgeLanguageServer


def register(ls: ForgeLanguageServer) -> None:
    """Register the workspace symbol handler."""

    @ls.feature(types.WORKSPACE_SYMBOL)
    @rpc_errors(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: ForgeLanguageServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation]:
        """Support workspace symbols."""
        roots = ls.roots.all()
        return await ls.run_query(
            lambda cancel: queries.workspace_symbols(roots, params.query, cancel)
        )
