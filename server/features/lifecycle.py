"""Start-up, workspace folders, configuration, progress cancellation and shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid

from lsprotocol import types

from server.server import ForgeLanguageServer
from server.session import (
    SECTION,
    close_root,
    folders_of,
    index_on_startup,
    open_roots,
    reconfigure,
)
from server.uris import uri_to_path

log = logging.getLogger(__name__)


def register(ls: ForgeLanguageServer) -> None:
    """Register the lifecycle handlers."""

    @ls.feature(types.INITIALIZE)
    def initialize(ls: ForgeLanguageServer, params: types.InitializeParams) -> None:
        """Keep the initialization options; start forwarding logs to the client."""
        ls.bind_loop()
        ls.init_options = params.initialization_options
        logging.getLogger().addHandler(ls.log_handler)
        log.info(
            "initialize from %s",
            params.client_info.name if params.client_info else "an unnamed client",
        )

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: ForgeLanguageServer, params: types.InitializedParams) -> None:
        """Open every root (background indexing, unless `indexOnStartup` is off) and ask the
        client to report file changes."""
        for notice in ls.notices:
            ls.show_message(notice, types.MessageType.Warning, once=True)
        folders = folders_of(ls)
        if not index_on_startup(ls, folders):
            ls.worker.hold_at_startup()
        await open_roots(ls, folders)
        await _register_dynamic(ls)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(
        ls: ForgeLanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        """Serve added folders; stop serving (and close the index of) removed ones."""
        for folder in params.event.removed:
            path = uri_to_path(folder.uri)
            root = ls.roots.get(path) if path is not None else None
            if root is not None:
                close_root(ls, root)
        added = [(f.uri, p) for f in params.event.added if (p := uri_to_path(f.uri)) is not None]
        await open_roots(ls, added)

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration_changed(
        ls: ForgeLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """Re-read the settings (pushed ones and workspace/configuration) and apply them."""
        if isinstance(params.settings, dict) and params.settings:
            ls.client_settings = params.settings
        await reconfigure(ls)

    @ls.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancelled(
        ls: ForgeLanguageServer, params: types.WorkDoneProgressCancelParams
    ) -> None:
        """The user pressed cancel on an indexing progress bar."""
        token = ls.progress_cancels.get(str(params.token))
        if token is not None:
            log.info("indexing cancelled by the client")
            token.cancel()

    @ls.feature(types.SHUTDOWN)
    async def shutdown(ls: ForgeLanguageServer, params: None) -> None:
        """Stop watchers and indexing, close every index (joins threads: off the event loop)."""
        await asyncio.to_thread(ls.close_all)


async def _register_dynamic(ls: ForgeLanguageServer) -> None:
    """Client-side file watching and configuration change events, where the client can."""
    registrations = []
    if ls.client_supports("workspace.did_change_watched_files.dynamic_registration"):
        registrations.append(
            types.Registration(
                id=f"forge-watched-files-{uuid.uuid4()}",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
                ),
            )
        )
    if ls.client_supports("workspace.did_change_configuration.dynamic_registration"):
        registrations.append(
            types.Registration(
                id=f"forge-configuration-{uuid.uuid4()}",
                method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                register_options=types.DidChangeConfigurationRegistrationOptions(section=SECTION),
            )
        )
    if not registrations:
        return
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(registrations=registrations)
        )
    except Exception as exc:
        log.info(
            "the client refused dynamic registration (%s); the server's own watcher still runs", exc
        )
