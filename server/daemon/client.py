"""Talking to a running daemon: find it, authenticate, send requests with proofs.

`find_daemon` reads the registry entry the daemon wrote in the runtime dir and checks its
process is alive (a stale entry from a killed daemon is removed). `DaemonClient` is the
blocking client the CLI uses; the async `handshake` is shared with the `lsp` relay.

The entry's `auth` says what the client must do: prove the keyring secret (`keyring`, also
an entry that says nothing) or nothing beyond being the same uid (`peer`, a daemon without
a keyring). A client never settles for less than the entry says: with a secret it requires
the daemon's own proof, and a peer-mode entry is only believed for a Unix socket in the
private runtime dir. On a Unix socket the client also checks that the listener runs as
its own uid (`SO_PEERCRED`), so a socket squatted by another user is never talked to.
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

from indexer.core.errors import ForgeError
from indexer.core.processes import process_alive
from server.auth.proof import b64, client_auth, daemon_auth, make_proof, new_nonce, same, unb64
from server.daemon.framing import FramingError, frame, read_message, read_message_sync
from server.daemon.paths import DaemonPaths
from server.daemon.peer import AUTH_KEYRING, AUTH_PEER, HAS_PEERCRED, peer_credentials

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
    #: "keyring" (clients prove the secret) or "peer" (no keyring: the uid check alone).
    auth: str = AUTH_KEYRING
    #: In peer mode, why the daemon has no keyring (`KeyringUnavailable.reason`).
    problem: str | None = None

    @classmethod
    def parse(cls, text: str, pid: int, keyring: object = None, auth: object = None,
              problem: object = None) -> Endpoint:
        kind, _, address = text.partition(":")
        if kind not in ("unix", "tcp") or not address:
            raise ValueError(text)
        return cls(kind, address, pid, keyring if isinstance(keyring, str) else None,
                   AUTH_PEER if auth == AUTH_PEER else AUTH_KEYRING,
                   problem if isinstance(problem, str) else None)

    @property
    def peer_mode(self) -> bool:
        return self.auth == AUTH_PEER

    def tcp_address(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host, int(port)


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
                                  data.get("keyring"), data.get("auth"), data.get("keyringProblem"))
    except (TypeError, ValueError):
        endpoint = None
    if endpoint is not None and endpoint.peer_mode and (
            endpoint.kind != "unix" or Path(endpoint.address).parent != paths.run):
        # A daemon without a keyring only ever listens in the private runtime dir.
        raise DaemonUnavailable(
            f"the daemon entry {paths.registry} says it needs no proof but names {endpoint.address}, "
            "outside the private runtime dir: refusing it (remove the file if you wrote it)")
    if endpoint is not None and process_alive(endpoint.pid):
        return endpoint
    if paths.read_registry() == data:
        paths.registry.unlink(missing_ok=True)
    return None


def check_listener(sock: Any, endpoint: Endpoint) -> None:
    """Refuse a Unix socket whose listening process is not of our uid (a squatter); in peer
    mode the uid must be known, as it is all that vouches for the daemon."""
    if sock is None or endpoint.kind != "unix":
        return
    _pid, uid = peer_credentials(sock)
    if uid is None:
        if not endpoint.peer_mode:
            return  # the daemon's proof decides (and a socket that never connected fails next)
        if HAS_PEERCRED:  # the kernel tells every connected socket's peer: this one is not connected
            raise ConnectionRefusedError("the daemon's socket did not take the connection (is its queue full?)")
        raise DaemonUnavailable("cannot tell who listens on the daemon's socket, and the daemon has "
                                "no keyring to prove itself with")
    if uid != os.getuid():
        raise DaemonUnavailable(f"the daemon's socket {endpoint.address} is held by uid {uid}, not by "
                                "you: refusing to talk to it")


def auth_message(secret: bytes | None, hello: Any) -> tuple[dict[str, Any], bytes, bytes]:
    """The answer to the daemon's hello: a proof of the secret, or (`secret` None: the
    registry says peer mode) that we expect none. A mismatch either way is refused."""
    if not (isinstance(hello, dict) and hello.get("forge") == "hello"):
        raise DaemonUnavailable("the daemon did not start the handshake (is it a forge-indexer daemon?)")
    offered = AUTH_PEER if hello.get("auth") == AUTH_PEER else AUTH_KEYRING
    if secret is None:
        if offered != AUTH_PEER:
            raise DaemonUnavailable("the daemon asks for a proof of the keyring secret, but its registry "
                                    "entry says it runs without a keyring")
        return {"forge": "auth", "auth": AUTH_PEER}, b"", b""
    if offered == AUTH_PEER or not isinstance(hello.get("nonce"), str):
        # Never downgrade: the entry said proofs, so whatever offers none is not our daemon.
        raise DaemonUnavailable("the process on the daemon's socket offers no proof although the daemon "
                                "keeps its secret in the keyring: refusing to talk to it")
    nonce, cnonce = unb64(str(hello["nonce"])), new_nonce()
    return {"forge": "auth", "cnonce": b64(cnonce), "mac": b64(client_auth(secret, nonce, cnonce))}, nonce, cnonce


def session_from(secret: bytes | None, answer: Any, nonce: bytes, cnonce: bytes) -> bytes | None:
    """The session key (None in peer mode, where messages carry no proof)."""
    from server.auth.proof import session_key

    if isinstance(answer, dict) and answer.get("forge") == "denied":
        raise DaemonUnavailable(f"the daemon refused us: {answer.get('reason')}")
    if not (isinstance(answer, dict) and answer.get("forge") == "ok"):
        raise DaemonUnavailable("the daemon broke off the handshake")
    if secret is None:
        if answer.get("auth") != AUTH_PEER:
            raise DaemonUnavailable("the daemon did not confirm it runs without a keyring")
        return None
    if not same(unb64(str(answer.get("mac"))), daemon_auth(secret, nonce, cnonce)):
        # Whatever answers on the socket does not hold the secret: never send it code.
        raise DaemonUnavailable("the process on the daemon's socket could not prove it is the daemon")
    return session_key(secret, nonce, cnonce)


def body_of(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def signed(key: bytes | None, msg: Any) -> bytes:
    """A framed message, with its proof unless the session has no key (peer mode)."""
    body = body_of(msg)
    if key is None:
        return frame(body)
    method = msg.get("method", "") if isinstance(msg, dict) else ""
    return frame(body, {"Forge-Proof": make_proof(key, method if isinstance(method, str) else "", body)})


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes | None,
                    hello: Any = None) -> bytes | None:
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
        reader, writer = await asyncio.open_unix_connection(endpoint.address, limit=64 * 1024)
        try:
            check_listener(writer.get_extra_info("socket"), endpoint)
        except DaemonUnavailable:
            writer.close()
            raise
        return reader, writer
    if endpoint.peer_mode:
        raise DaemonUnavailable("a daemon without a keyring never listens on TCP: refusing that entry")
    host, port = endpoint.tcp_address()
    return await asyncio.open_connection(host, port, limit=64 * 1024)


class DaemonClient:
    """A blocking, authenticated connection (the CLI's)."""

    def __init__(self, endpoint: Endpoint, secret: bytes | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """`secret` None only for a daemon whose entry says peer mode."""
        self.endpoint = endpoint
        if (secret is None) != endpoint.peer_mode:
            raise DaemonUnavailable("the daemon's registry entry and the client disagree about proofs")
        if endpoint.peer_mode and endpoint.kind != "unix":
            raise DaemonUnavailable("a daemon without a keyring never listens on TCP: refusing that entry")
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
            try:
                check_listener(self.sock, endpoint)
            except OSError as exc:
                raise DaemonUnavailable(f"cannot connect to the daemon at {endpoint.address}: {exc}") from None
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
