"""Text document sync: a saved file is reindexed (debounced per path)."""

from __future__ import annotations

from lsprotocol import types

from server.server import ForgeLanguageServer
from server.session import note_change


def register(ls: ForgeLanguageServer) -> None:
    """Register the document handlers."""

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: ForgeLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        """Reindex the saved file after the debounce delay."""
        note_change(ls, params.text_document.uri, settled=True)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ForgeLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        """Accepted; the index follows files on disk, not editor buffers."""

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ForgeLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        """Accepted; nothing to release."""
