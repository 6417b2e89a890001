"""How `forge-indexer lsp` serves an editor: through the shared daemon, or in-process.

Shared (the default, `sharedDaemon`): the editor's first message, `initialize`, names the
workspace; the daemon for it is found or started, and the editor is relayed to it. The
daemon chooses its protection: proofs of a keyring secret, or without a usable keyring the
peer uid check alone (the relay then expects no proof, and the user is told once). Only if
the shared mode cannot work (the daemon cannot start, or it keeps its secret in a keyring
this process cannot read) is the editor served by this process alone, as before the daemon
existed, with a one-line notice; the full reason goes to the log.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from indexer.core.errors import ForgeError
from indexer.core.settings import load_settings
from server.daemon.client import Endpoint
from server.daemon.framing import FramingError, frame, read_message_sync
from server.session import client_section
from server.uris import uri_to_path

log = logging.getLogger(__name__)


class PrefixedStdin(io.RawIOBase):
    """stdin with the bytes already read put back in front (for the in-process server)."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = io.BytesIO(prefix)
        self._rest = rest

    def readline(self, size: int | None = -1) -> bytes:
        # pygls reads headers by line and bodies by length, so a line never straddles the two.
        line = self._prefix.readline()
        return line if line.endswith(b"\n") else line + self._rest.readline()

    def read(self, size: int | None = -1) -> bytes:
        data = self._prefix.read(size if size is not None and size >= 0 else -1)
        if size is None or size < 0:
            return data + self._rest.read()
        if len(data) < size:
            data += self._rest.read(size - len(data))
        return data


@dataclass
class Outcome:
    """What happened: the relay ran to its end (`code`), or the editor needs the in-process server."""

    code: int | None = None
    stdin: Any = None  # a binary stream with readline() and read(n)
    notice: str | None = None


def _workspace_of(params: dict[str, Any]) -> Path | None:
    folders = params.get("workspaceFolders") or []
    uris = [f.get("uri") for f in folders if isinstance(f, dict)] or [params.get("rootUri")]
    for uri in uris:
        if isinstance(uri, str) and (path := uri_to_path(uri)) is not None and path.is_dir():
            return path.resolve()
    root = params.get("rootPath")
    return Path(root).resolve() if isinstance(root, str) and Path(root).is_dir() else None


def serve_editor(stdin: BinaryIO, stdout: BinaryIO) -> Outcome:
    """Relay the editor to its workspace's daemon, or say why it must be served in-process."""
    try:
        first = read_message_sync(stdin)
    except FramingError as exc:
        log.error("the editor's first message is unreadable: %s", exc)
        return Outcome(code=1)
    if first is None:
        return Outcome(code=0)
    body = first[1]
    in_process = PrefixedStdin(frame(body), stdin)
    try:
        msg = json.loads(body)
    except ValueError:
        return Outcome(stdin=in_process)
    params = msg.get("params") if isinstance(msg, dict) and msg.get("method") == "initialize" else None
    workspace = _workspace_of(params) if isinstance(params, dict) else None
    if workspace is None:
        return Outcome(stdin=in_process)  # no folder (a single file): nothing to share
    # The user-only settings an editor may pass (a state dir, a model) decide which index
    # the daemon opens: the daemon gets them through its environment, not its arguments.
    client = client_section((params or {}).get("initializationOptions"))
    settings, _ = load_settings(workspace, client)
    if not settings.shared_daemon:
        return Outcome(stdin=in_process)
    try:
        return Outcome(code=_relay(stdin, stdout, msg, workspace, settings))
    except ForgeError as exc:
        log.warning("serving this editor in-process: %s", exc)
        return Outcome(stdin=in_process, notice=(
            f"forge-indexer: shared daemon off ({_short(str(exc))}); serving this editor alone, see the log"))


def _short(reason: str, limit: int = 70) -> str:
    """The first sentence of a reason, at most `limit` characters (the log has all of it)."""
    first = reason.split(". ", 1)[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _relay(stdin: BinaryIO, stdout: BinaryIO, initialize: dict[str, Any], workspace: Path, settings: Any) -> int:
    from server.auth import secret as keyring_secret
    from server.daemon import notice
    from server.daemon.paths import log_file, paths_for
    from server.daemon.relay import Relay
    from server.daemon.spawn import daemon_env, ensure_daemon

    paths = paths_for(workspace, settings)
    # `index_on_startup` too: a daemon this editor starts holds its indexing from the start
    # when the editor asks it to (a daemon already running is not paused).
    env = daemon_env(settings, "index_on_startup")
    logs = log_file(settings, paths.id)
    # Fails here (→ in-process) if it cannot start; the daemon picks keyring or peer mode.
    endpoint = ensure_daemon(paths, logs, env)
    backends: dict[str | None, Any] = {}

    def secret(daemon: Endpoint) -> bytes | None:
        if daemon.peer_mode:
            return None  # its entry says no keyring: nothing to prove (never the other way round)
        if daemon.keyring not in backends:
            chosen = None if settings.keyring_backend else keyring_secret.recorded_backend(daemon.keyring)
            backends[daemon.keyring] = chosen or keyring_secret.select_backend(settings.keyring_backend)
        value = keyring_secret.read_secret(paths.id, backends[daemon.keyring])
        if value is None:
            raise ForgeError("the daemon's secret is missing from the keyring")
        return value

    secret(endpoint)  # fail now, while the editor can still be served in-process

    def shown_once(daemon: Endpoint) -> str | None:
        return notice.once(daemon.problem) if daemon.peer_mode else None

    relay = Relay(stdin, stdout, initialize, lambda: ensure_daemon(paths, logs, env), secret, shown_once)
    return asyncio.run(relay.run())
