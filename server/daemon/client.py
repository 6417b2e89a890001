"""Talking to a running daemon: find it, authenticate, send requests with proofs.

`find_daemon` reads the registry entry the daemon wrote in the runtime dir and checks its
process is alive (a stale entry from a killed daemon is removed). `DaemonClient` is the
blocking client the CLI uses; the async `handshake` is shared with the `lsp` relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.errors import ForgeError
from server.auth.proof import b64, client_auth, daemon_auth, make_proof, new_nonce, same, unb64
from server.daemon.framing import FramingError, frame, read_message, read_message_sync
from server.daemon.paths import DaemonPaths

CONNECT_TIMEOUT_S = 5.0


class DaemonUnavailable(ForgeError):
    """The daemon cannot be reached or refused us."""


class DaemonRequestError(ForgeError):
    """The daemon answered a request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "unix" or "tcp"
    address: str
    pid: int
    #: The keyring backend class holding the daemon's secret, as its registry entry says.
    keyring: str | None = None

    @classmethod
    def parse(cls, text: str, pid: int, keyring: object = None) -> Endpoint:
        kind, _, address = text.partition(":")
        if kind not in ("unix", "tcp") or not address:
            raise ValueError(text)
        return cls(kind, address, pid, keyring if isinstance(keyring, str) else None)

    def tcp_address(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host, int(port)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def find_daemon(paths: DaemonPaths) -> Endpoint | None:
    """The endpoint of the workspace's running daemon, or None.

    The registry entry of a daemon that died without cleaning up (SIGKILL, power loss) is
    removed; its socket file is left for the next daemon to replace (removing it here could
    race with a new daemon that has bound the path but not yet written its entry).
    """
    data = paths.read_registry()
    if data is None:
        return None
    try:
        endpoint = Endpoint.parse(str(data.get("endpoint")), int(data.get("pid")),  # type: ignore[arg-type]
                                  data.get("keyring"))
    except (TypeError, ValueError):
        endpoint = None
    if endpoint is not None and process_alive(endpoint.pid):
        return endpoint
    if paths.read_registry() == data:
        paths.registry.unlink(missing_ok=True)
    return None


def auth_message(secret: bytes, hello: Any) -> tuple[dict[str, Any], bytes, bytes]:
    if not (isinstance(hello, dict) and hello.get("forge") == "hello"):
        raise DaemonUnavailable("the daemon did not start the handshake (is it a forge-indexer daemon?)")
    nonce, cnonce = unb64(str(hello["nonce"])), new_nonce()
    return {"forge": "auth", "cnonce": b64(cnonce), "mac": b64(client_auth(secret, nonce, cnonce))}, nonce, cnonce


def session_from(secret: bytes, answer: Any, nonce: bytes, cnonce: bytes) -> bytes:
    from server.auth.proof import session_key

    if isinstance(answer, dict) and answer.get("forge") == "denied":
        raise DaemonUnavailable(f"the daemon refused us: {answer.get('reason')}")
    if not (isinstance(answer, dict) and answer.get("forge") == "ok"):
        raise DaemonUnavailable("the daemon broke off the handshake")
    if not same(unb64(str(answer.get("mac"))), daemon_auth(secret, nonce, cnonce)):
        # Whatever answers on the socket does not hold the secret: never send it code.
        raise DaemonUnavailable("the process on the daemon's socket could not prove it is the daemon")
    return session_key(secret, nonce, cnonce)


def body_of(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def signed(key: bytes, msg: Any) -> bytes:
    body = body_of(msg)
    method = msg.get("method", "") if isinstance(msg, dict) else ""
    return frame(body, {"Forge-Proof": make_proof(key, method if isinstance(method, str) else "", body)})


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes,
                    hello: Any = None) -> bytes:
    """Answer the daemon's challenge (read it first unless given); return the session key."""
    if hello is None:
        got = await asyncio.wait_for(read_message(reader), CONNECT_TIMEOUT_S)
        hello = json.loads(got[1]) if got else None
    auth, nonce, cnonce = auth_message(secret, hello)
    writer.write(frame(body_of(auth)))
    await writer.drain()
    got = await asyncio.wait_for(read_message(reader), CONNECT_TIMEOUT_S)
    return session_from(secret, json.loads(got[1]) if got else None, nonce, cnonce)


async def open_connection(endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if endpoint.kind == "unix":
        return await asyncio.open_unix_connection(endpoint.address, limit=64 * 1024)
    host, port = endpoint.tcp_address()
    return await asyncio.open_connection(host, port, limit=64 * 1024)


class DaemonClient:
    """A blocking, authenticated connection (the CLI's)."""

    def __init__(self, endpoint: Endpoint, secret: bytes, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        try:
            if endpoint.kind == "unix":
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout_s)
                self.sock.connect(endpoint.address)
            else:
                self.sock = socket.create_connection(endpoint.tcp_address(), timeout=timeout_s)
        except OSError as exc:
            raise DaemonUnavailable(f"cannot connect to the daemon at {endpoint.address}: {exc}") from None
        self._in = self.sock.makefile("rb")
        self._ids = itertools.count(1)
        try:
            hello = self._read()
            auth, nonce, cnonce = auth_message(secret, hello)
            self.sock.sendall(frame(body_of(auth)))
            self.key = session_from(secret, self._read(), nonce, cnonce)
        except Exception:
            self.close()
            raise

    def _read(self) -> Any:
        try:
            got = read_message_sync(self._in)
        except (OSError, FramingError) as exc:
            raise DaemonUnavailable(f"the daemon connection failed: {exc}") from None
        if got is None:
            raise DaemonUnavailable("the daemon closed the connection")
        return json.loads(got[1])

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self.sock.sendall(signed(self.key, msg))
        except OSError as exc:
            raise DaemonUnavailable(f"the daemon connection failed: {exc}") from None

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = None, *, timeout_s: float | None = 60.0,
                on_notification: Callable[[str, Any], None] | None = None) -> Any:
        """Send a request and wait for its answer; notifications meanwhile go to the callback."""
        msg_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        self.sock.settimeout(timeout_s)
        while True:
            msg = self._read()
            if not isinstance(msg, dict):
                continue
            if "method" in msg:
                if "id" in msg:  # e.g. a progress `create`: accept it
                    self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                elif on_notification is not None:
                    on_notification(msg["method"], msg.get("params"))
                continue
            if msg.get("id") != msg_id:
                continue
            if "error" in msg:
                err = msg["error"] or {}
                raise DaemonRequestError(int(err.get("code", -32603)), str(err.get("message")), err.get("data"))
            return msg.get("result")

    def initialize(self, folder_uri: str, *, progress: bool = False) -> Any:
        caps = {"window": {"workDoneProgress": progress}}
        result = self.request("initialize", {
            "processId": os.getpid(), "rootUri": folder_uri, "capabilities": caps,
            "clientInfo": {"name": "forge-indexer cli"},
            "workspaceFolders": [{"uri": folder_uri, "name": folder_uri.rsplit("/", 1)[-1]}],
        })
        self.notify("initialized", {})
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._in.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
