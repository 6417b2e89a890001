"""`forge-indexer lsp` in shared mode: the editor's stdio, relayed to the workspace daemon.

The relay reads the editor's first message (`initialize`) to learn the workspace, finds or
starts that workspace's daemon, authenticates, and then copies messages both ways, adding
a `Forge-Proof` to each message it sends. It answers the daemon's re-authentication
challenge after `forge-indexer token rotate` by itself. If the daemon dies (killed,
crashed), the relay fails the requests that were waiting, starts a new daemon, replays the
editor's `initialize`, and carries on: the editor only sees those requests fail.

A daemon in peer mode (no keyring, see `server.daemon.service`) takes the relay's
messages without proofs; the relay then shows the user the one-line notice, once per user
(`server.daemon.notice`), right after the daemon's answer to `initialize`.

Anything that stops the shared mode before the relay starts (a keyring daemon whose secret
cannot be read, a daemon that cannot start) returns a reason instead, and the caller
serves the editor in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from indexer.core.processes import process_alive
from server.daemon.client import (
    DaemonUnavailable,
    Endpoint,
    auth_message,
    body_of,
    handshake,
    open_connection,
    session_from,
    signed,
)
from server.daemon.framing import FramingError, frame, read_message, read_message_sync

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0
DAEMON_GONE = -32803  # LSP RequestFailed
GONE_WAIT_S = 10.0


class Relay:
    """Copies one editor's messages to the daemon and back."""

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO, initialize: dict[str, Any],
                 connect: Callable[[], Endpoint], secret: Callable[[Endpoint], bytes | None],
                 notice: Callable[[Endpoint], str | None] | None = None) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.initialize = initialize
        self._connect_endpoint = connect  # finds or starts the daemon (blocking)
        # Reads that daemon's secret from the keyring (blocking); None for a peer-mode daemon.
        self._secret = secret
        self._notice = notice  # the text to show the editor about this daemon, if any
        self._pending_notice: str | None = None
        self.key: bytes | None = None
        self.endpoint: Endpoint | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.authed = asyncio.Event()
        self.pid: int | None = None
        self.pending: dict[str, Any] = {}  # editor request ids waiting for the daemon
        self.restarts: list[float] = []
        self.editor_done = False
        self._reauth: tuple[bytes | None, bytes, bytes] | None = None

    async def run(self) -> int:
        reader = await self._attach()
        self._send(self.initialize)
        pump = asyncio.create_task(self._from_editor())
        while True:
            await self._from_daemon(reader)
            if self.editor_done or pump.done():
                break
            log.warning("the forge-indexer daemon went away; starting a new one")
            self._fail_pending()
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(self.restarts) > MAX_RESTARTS:
                log.error("the daemon stopped %d times within %.0f s; giving up", MAX_RESTARTS, RESTART_WINDOW_S)
                pump.cancel()
                return 1
            try:
                reader = await self._attach(gone=self.pid)
            except Exception as exc:
                log.error("could not reconnect to a daemon: %s", exc)
                pump.cancel()
                return 1
            # The new daemon serves the same workspace; tell it about this editor again.
            self._send({**self.initialize, "id": "forge-relay-reinit"})
            self._send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        pump.cancel()
        if self.writer is not None:
            self.writer.close()
        return 0

    async def _attach(self, gone: int | None = None) -> asyncio.StreamReader:
        if gone is not None:
            # A killed daemon closes its sockets before its process is gone; until then the
            # registry still names it and a connection to it would be reset. Wait it out.
            deadline = time.monotonic() + GONE_WAIT_S
            while process_alive(gone) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        for attempt in range(5):
            endpoint = await asyncio.to_thread(self._connect_endpoint)
            writer: asyncio.StreamWriter | None = None
            try:
                secret = await asyncio.to_thread(self._secret, endpoint)
                reader, writer = await open_connection(endpoint)
                self.key = await handshake(reader, writer, secret)
                break
            except (TimeoutError, OSError, asyncio.IncompleteReadError, DaemonUnavailable) as exc:
                if writer is not None:
                    writer.close()
                # A daemon that is just going away: look again (a new one is started if need be).
                # A live daemon that refuses us is an answer, not a transient failure.
                await asyncio.sleep(0.2 * (attempt + 1))
                if attempt == 4 or (isinstance(exc, DaemonUnavailable) and process_alive(endpoint.pid)):
                    raise
                log.info("the daemon at %s is not answering (%s); looking again", endpoint.address, exc)
        self.writer = writer
        self.pid = endpoint.pid
        self.endpoint = endpoint
        if self._notice is not None and gone is None:  # shown with the answer to the first `initialize`
            self._pending_notice = await asyncio.to_thread(self._notice, endpoint)
        self.authed.set()
        log.info("relaying to the daemon (pid %d)", endpoint.pid)
        return reader

    def _send(self, msg: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(signed(self.key, msg))

    def _to_editor(self, body: bytes) -> None:
        self.stdout.write(frame(body))
        self.stdout.flush()

    async def _from_editor(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                got = await loop.run_in_executor(None, read_message_sync, self.stdin)
            except FramingError as exc:
                log.error("the editor's stream is broken: %s", exc)
                got = None
            if got is None:
                self.editor_done = True
                if self.writer is not None:
                    self.writer.close()
                return
            try:
                msg = json.loads(got[1])
            except ValueError:
                log.warning("dropped a message from the editor that is not JSON")
                continue
            await self.authed.wait()
            if isinstance(msg, dict) and "id" in msg and "method" in msg:
                self.pending[json.dumps(msg["id"])] = msg["id"]
            self._send(msg)
            if isinstance(msg, dict) and msg.get("method") == "exit":
                self.editor_done = True
                await asyncio.sleep(0.05)
                if self.writer is not None:
                    self.writer.close()
                return

    async def _from_daemon(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                got = await read_message(reader)
            except (FramingError, ConnectionError) as exc:
                log.warning("the daemon connection broke: %s", exc)
                return
            if got is None:
                return
            body = got[1]
            msg = json.loads(body)
            if isinstance(msg, dict) and "forge" in msg:
                if msg.get("forge") == "hello":
                    await self._reauthenticate(msg)
                elif self._reauth is not None:
                    self.key = session_from(self._reauth[0], msg, *self._reauth[1:])
                    self._reauth = None
                    self.authed.set()
                    log.info("re-authenticated with the daemon after a secret rotation")
                continue
            if isinstance(msg, dict) and "method" not in msg:
                if msg.get("id") == "forge-relay-reinit":
                    continue
                self.pending.pop(json.dumps(msg.get("id")), None)
            self._to_editor(body)
            if self._pending_notice and isinstance(msg, dict) and "method" not in msg \
                    and msg.get("id") == self.initialize.get("id"):
                # After the answer to `initialize`: every editor shows a message by then.
                self._to_editor(body_of({"jsonrpc": "2.0", "method": "window/showMessage",
                                         "params": {"type": 2, "message": self._pending_notice}}))
                self._pending_notice = ""

    async def _reauthenticate(self, hello: dict[str, Any]) -> None:
        """The secret was rotated: answer the new challenge with the new secret.

        The daemon's "ok" arrives among other messages; `_from_daemon` completes it.
        """
        self.authed.clear()
        assert self.endpoint is not None
        secret = await asyncio.to_thread(self._secret, self.endpoint)
        auth, nonce, cnonce = auth_message(secret, hello)
        self._reauth = (secret, nonce, cnonce)
        if self.writer is not None:
            self.writer.write(frame(body_of(auth)))

    def _fail_pending(self) -> None:
        for msg_id in list(self.pending.values()):
            self._to_editor(body_of({"jsonrpc": "2.0", "id": msg_id, "error": {
                "code": DAEMON_GONE,
                "message": "the forge-indexer daemon stopped while answering; a new one is starting, try again"}}))
        self.pending.clear()
        self.authed.clear()
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
