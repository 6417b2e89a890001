"""`workspace/didChangeWatchedFiles`: the client's file events, handled like the watcher's."""

from __future__ import annotations

from lsprotocol import types

from server.server import ForgeLanguageServer
from server.session import note_change


def register(ls: ForgeLanguageServer) -> None:
    """Register the watched-files handler."""

    @ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: ForgeLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
        """Queue each changed, created or deleted file (ignore rules applied, debounced)."""
        for change in params.changes:
            note_change(ls, change.uri, settled=False)
