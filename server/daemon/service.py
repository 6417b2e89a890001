"""The daemon process: one language server for a workspace, shared over a local endpoint.

It loads the workspace secret from the OS keyring, initialises the ordinary language
server for its workspace through the `Hub`, and listens on a Unix socket in the private
runtime dir (or, only when asked, on a loopback TCP port). Each connection:

1. is checked for the peer's uid (`SO_PEERCRED`; `/proc/net/tcp` for loopback TCP);
2. gets a fresh nonce and has `AUTH_TIMEOUT_S` to answer it (`server.auth.proof`), in
   one small frame (`PREAUTH_MAX_BODY`); until then it waits among at most
   `MAX_UNAUTHENTICATED` others (the oldest is dropped for a newcomer), apart from the
   `MAX_CONNECTIONS` authenticated ones, so strangers cannot crowd out clients;
3. then sends framed messages, each with a `Forge-Proof`; a bad proof gets a JSON-RPC
   error (-32001) and one audit line and is otherwise ignored; garbage, an oversized
   Content-Length, a truncated body or a body that is not JSON (bad UTF-8, nested too
   deeply) closes that connection only, with an audit line.

After `token rotate` every session is challenged again and closed unless it answers within
`AUTH_TIMEOUT_S`; meanwhile it gets no broadcasts (`Hub`).

Without a usable OS keyring (none found, locked, not answering) the daemon runs in **peer
mode**: no secret and no proofs, only the guards that stand in front of the proofs anyway
(the user's 0700 runtime dir, the 0600 socket, the peer uid of every connection, which
must then be known). A proof only keeps out processes that cannot read the keyring, and a
process of the same uid can read it; other uids are refused by the uid check in both
modes. Its registry entry says `"auth": "peer"`, so clients expect no proof (and one that
finds `"keyring"` never settles for less); a keyring-mode daemon never serves a client
that skips the proof. Peer mode is Unix sockets only: `--tcp` without a keyring is refused
(a loopback port has no private directory), and so is a keyringBackend the user named but
that cannot be used.

The daemon stops on SIGTERM/SIGINT, on `forge-indexer daemon stop`, or after
`daemonIdleTimeout` seconds with no connection and no indexing work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from indexer.core.errors import ForgeError
from indexer.core.settings import Settings
from server import __version__
from server.auth import secret as keyring_secret
from server.auth.proof import (
    ProofRejected,
    ReplayCache,
    b64,
    client_auth,
    daemon_auth,
    method_of,
    new_nonce,
    same,
    session_key,
    unb64,
    verify,
)
from server.daemon.framing import (
    MAX_BODY,
    MAX_HEADER_LINE,
    PREAUTH_MAX_BODY,
    PREAUTH_MAX_HEADER_LINE,
    FramingError,
    read_message,
)
from server.daemon.hub import DAEMON_METHOD, MAX_INFLIGHT, Connection, Hub
from server.daemon.paths import DaemonPaths
from server.daemon.peer import AUTH_KEYRING, AUTH_PEER, HAS_PEERCRED, peer_credentials
from server.logs import REQUEST_ID
from server.loopback import loopback_host
from server.metrics_http import serve_for
from server.tracing import setup_tracing, shutdown_tracing
from server.uris import path_to_uri

log = logging.getLogger(__name__)
audit = logging.getLogger("forge.audit")  # not under `server.`: never forwarded to clients

AUTH_TIMEOUT_S = 5.0
PROOF_ERROR = -32001
REAUTH_ERROR = -32002
#: Authenticated connections (editors, CLI calls) at once.
MAX_CONNECTIONS = 256
#: Connections still in the handshake; counted apart so that silent strangers never take
#: an authenticated client's place. When full the oldest is dropped for the newcomer: a
#: real client answers within a round trip, a squatter waits out its timeout.
MAX_UNAUTHENTICATED = 64


class Daemon:
    """The daemon's state: the server, the hub, the secret, the listener."""

    def __init__(self, paths: DaemonPaths, settings: Settings, backend: Any, secret: bytes | None,
                 *, idle_timeout_s: float, tcp: tuple[str, int] | None = None,
                 keyring_problem: str | None = None) -> None:
        self.paths = paths
        self.settings = settings
        self.backend = backend
        self._secret = secret  # None: peer mode (no usable keyring)
        self.auth = AUTH_KEYRING if secret is not None else AUTH_PEER
        self.keyring_problem = keyring_problem  # why there is no keyring (peer mode)
        if self.auth == AUTH_PEER and (tcp is not None or not HAS_PEERCRED):
            raise ForgeError("a daemon without a keyring serves only a Unix socket with peer "
                             "credentials (Linux); see docs/security.md")
        self.idle_timeout_s = idle_timeout_s
        self.tcp = tcp
        self.replay = ReplayCache()
        self.stopping = asyncio.Event()
        self.started = time.time()
        self.endpoint = ""
        self.stats = {"connections": 0, "rejected": 0}
        self.pending: dict[int, Connection] = {}  # connections still in the handshake (oldest first)
        self.metrics_address: str | None = settings.metrics_address
        from server.server import create_server

        self.ls = create_server()
        self.hub = Hub(self.ls, path_to_uri(paths.workspace), rate_limit_per_s=settings.rate_limit_per_s)
        self.hub.daemon_action = self._action

    # -- start and stop ------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        uri = path_to_uri(self.paths.workspace)
        # What the hub can do for the server: progress (fanned out), configuration (asked
        # of the latest editor). File watching is the daemon's own.
        caps = {"window": {"workDoneProgress": True},
                "workspace": {"workspaceFolders": True, "configuration": True}}
        result = await self.hub.request_server("initialize", {
            "processId": os.getpid(), "rootUri": uri, "capabilities": caps,
            "clientInfo": {"name": "forge-indexer daemon"},
            "workspaceFolders": [{"uri": uri, "name": self.paths.workspace.name}],
        })
        self.hub.init_result = result
        self.hub.notify_server("initialized", {})
        server = await self._listen()
        self._write_registry()
        # Opt-in Prometheus endpoint; a bad or busy address is logged and the daemon serves on.
        metrics_endpoint = serve_for(self.ls, self.metrics_address)
        log.info("daemon %s for %s listening on %s", self.paths.id, self.paths.workspace, self.endpoint)
        idle = asyncio.create_task(self._idle_watch())
        try:
            await self.stopping.wait()
        finally:
            idle.cancel()
            server.close()
            for conn in list(self.hub.conns.values()):
                self.hub.drop(conn)
            self._remove_files()
            await asyncio.to_thread(self.ls.close_all)
            if metrics_endpoint is not None:
                metrics_endpoint.close()
            log.info("daemon stopped")

    async def _listen(self) -> asyncio.AbstractServer:
        if self.tcp is not None:
            host, port = self.tcp
            try:
                server = await asyncio.start_server(self._on_connect, host, port, limit=2 * MAX_HEADER_LINE)
            except OSError as exc:
                raise ForgeError(f"--tcp {host}:{port}: cannot listen ({exc.strerror or exc}); "
                                 "pick a free port") from None
            bound = server.sockets[0].getsockname()
            self.endpoint = f"tcp:{bound[0]}:{bound[1]}"
            return server
        path = self.paths.socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old = os.umask(0o177)  # the socket file is 0600 from the start, not after a chmod
        try:
            server = await asyncio.start_unix_server(self._on_connect, path=str(path), limit=2 * MAX_HEADER_LINE)
        finally:
            os.umask(old)
        self.endpoint = f"unix:{path}"
        return server

    def _write_registry(self) -> None:
        data = {
            "pid": os.getpid(), "workspace": str(self.paths.workspace), "endpoint": self.endpoint,
            "started": self.started, "version": __version__, "id": self.paths.id,
            # Which keyring holds the secret (a class name, not a secret): clients load it
            # directly instead of probing every backend (`keyring_secret.recorded_backend`).
            "keyring": keyring_secret.backend_name(self.backend) if self.backend is not None else None,
            # Whether clients must prove the secret ("keyring") or are let in on their uid
            # alone ("peer", with why there is no keyring: the notice clients show once).
            "auth": self.auth,
        }
        if self.auth == AUTH_PEER:
            data["keyringProblem"] = self.keyring_problem
        tmp = self.paths.registry.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.paths.registry)

    def _remove_files(self) -> None:
        data = self.paths.read_registry()
        if data is not None and data.get("pid") == os.getpid():
            self.paths.registry.unlink(missing_ok=True)
        if self.endpoint.startswith("unix:"):
            Path(self.endpoint[5:]).unlink(missing_ok=True)

    async def _idle_watch(self) -> None:
        if self.idle_timeout_s <= 0:
            return
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout_s / 2))
            quiet = time.monotonic() - self.hub.last_activity
            if not self.hub.conns and quiet >= self.idle_timeout_s and not self.ls.worker.busy():
                log.info("no client for %.0f s; stopping", quiet)
                self.stopping.set()
                return

    # -- connections ---------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid = peer_credentials(sock) if sock is not None else (None, None)
        peer = f"pid={pid if pid is not None else '?'} uid={uid if uid is not None else '?'}"
        if uid is not None and uid != os.getuid():
            self._audit("refused", peer, "", f"peer uid {uid} is not the daemon's uid {os.getuid()}")
            writer.close()
            return
        if uid is None and self.auth == AUTH_PEER:  # the uid check is all there is: it must be made
            self._audit("refused", peer, "", "the peer's uid is unknown and this daemon has no keyring")
            writer.close()
            return
        conn = Connection(writer, peer)
        self.stats["connections"] += 1
        if len(self.pending) >= MAX_UNAUTHENTICATED:
            oldest = next(iter(self.pending.values()))
            self._audit("closed", oldest.peer, "", f"still not authenticated while {MAX_UNAUTHENTICATED} "
                        "connections wait; the oldest makes room")
            oldest.close()
            self.pending.pop(oldest.number, None)
        self.pending[conn.number] = conn
        self._challenge(conn)
        try:
            await self._serve(conn, reader)
        except FramingError as exc:
            self._audit("closed", conn.peer, "", f"framing: {exc}")
        except TimeoutError:
            if conn.key is None:
                self._audit("closed", conn.peer, "", f"no answer to the challenge within {AUTH_TIMEOUT_S:.0f} s")
        except ConnectionError as exc:
            log.debug("connection %d ended: %s", conn.number, exc)
        except Exception as exc:  # never let one connection's surprise end the daemon's task quietly
            log.exception("connection %d failed", conn.number)
            self._audit("closed", conn.peer, "", f"internal error: {type(exc).__name__}")
        finally:
            self.pending.pop(conn.number, None)
            conn.close()
            self.hub.drop(conn)

    def _challenge(self, conn: Connection) -> None:
        if self._secret is None:  # peer mode: the client has only to say it expects no proof
            conn.nonce = b""
            conn.handshake({"forge": "hello", "v": 1, "auth": AUTH_PEER})
            return
        conn.nonce = nonce = new_nonce()
        conn.handshake({"forge": "hello", "v": 1, "nonce": b64(nonce), "auth": AUTH_KEYRING})
        if conn.key is not None:  # a live session challenged again (rotation): answer or go
            asyncio.get_running_loop().call_later(AUTH_TIMEOUT_S, self._expire, conn, nonce)

    def _expire(self, conn: Connection, nonce: bytes) -> None:
        if conn.nonce is nonce and not conn.closed:
            self._audit("closed", conn.peer, "", f"not re-authenticated within {AUTH_TIMEOUT_S:.0f} s "
                        "of a secret rotation")
            conn.close()

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        while not conn.closed:
            if conn.key is None:  # strangers get one small frame and a few seconds
                read = read_message(reader, PREAUTH_MAX_BODY, PREAUTH_MAX_HEADER_LINE)
                got = await asyncio.wait_for(read, AUTH_TIMEOUT_S)
            else:
                got = await read_message(reader, MAX_BODY)
            if got is None:
                return
            headers, body = got
            msg = _parse_body(body)
            if isinstance(msg, dict) and msg.get("forge") == "auth":
                if not self._authenticate(conn, msg):
                    return
                continue
            if conn.key is None:
                self._audit("closed", conn.peer, method_of(msg), "a message before authentication")
                return
            if conn.nonce is not None:  # the secret was rotated: the old key is no longer good
                self._reject(conn, msg, REAUTH_ERROR, "reauth",
                             "the workspace secret was rotated; re-authenticate first", audit_it=False)
                continue
            if self._secret is not None:  # keyring mode: every message carries a proof
                try:
                    verify(conn.key, headers.get("forge-proof"), body, msg, self.replay)
                except ProofRejected as exc:
                    self._reject(conn, msg, PROOF_ERROR, exc.reason, str(exc))
                    continue
            # The server's handler task starts inside this call and keeps the id for its log lines.
            request_id = REQUEST_ID.set(f"c{conn.number}:{msg['id']}" if isinstance(msg, dict) and "id" in msg
                                        and "method" in msg else None)
            try:
                self.hub.from_client(conn, msg)
            finally:
                REQUEST_ID.reset(request_id)
            while conn.inflight >= MAX_INFLIGHT and not conn.closed:
                conn.room.clear()
                await conn.room.wait()

    def _deny(self, conn: Connection, audit_detail: str, reason: str) -> bool:
        self._audit("denied", conn.peer, "", audit_detail)
        conn.handshake({"forge": "denied", "reason": reason})
        conn.close()
        return False

    def _authenticate(self, conn: Connection, msg: dict[str, Any]) -> bool:
        nonce = conn.nonce
        secret = self._secret
        if secret is None:
            if nonce is None or msg.get("auth") != AUTH_PEER:
                return self._deny(conn, "a client that expects a keyring secret (this daemon has none)",
                                  "this daemon runs without a keyring (peer mode); its registry entry says so")
            key, answer = b"", {"forge": "ok", "auth": AUTH_PEER, "pid": os.getpid()}
        else:
            if msg.get("auth") == AUTH_PEER:  # never serve a client that skips the proof
                return self._deny(conn, "a client without a proof of the secret",
                                  "this daemon requires a proof of the workspace secret (keyring mode)")
            try:
                cnonce, mac = unb64(str(msg.get("cnonce"))), unb64(str(msg.get("mac")))
            except ValueError:
                cnonce, mac = b"", b""
            if not nonce or len(cnonce) < 16 or not same(mac, client_auth(secret, nonce, cnonce)):
                return self._deny(conn, "the answer to the challenge is wrong", "authentication failed: "
                                  "the client does not hold this workspace's secret")
            key = session_key(secret, nonce, cnonce)
            answer = {"forge": "ok", "mac": b64(daemon_auth(secret, nonce, cnonce)), "pid": os.getpid()}
        first = conn.key is None
        if first and len(self.hub.conns) >= MAX_CONNECTIONS:
            self._audit("refused", conn.peer, "", f"already {MAX_CONNECTIONS} authenticated connections")
            conn.handshake({"forge": "denied", "reason": f"the daemon already serves {MAX_CONNECTIONS} "
                            "connections; close some and try again"})
            conn.close()
            return False
        conn.key = key
        conn.nonce = None
        conn.handshake(answer)
        if first:
            self.pending.pop(conn.number, None)
            self.hub.add(conn)
        else:
            conn.release()
        log.info("connection %d authenticated (%s)", conn.number, conn.peer)
        return True

    def _reject(self, conn: Connection, msg: Any, code: int, reason: str, detail: str,
                *, audit_it: bool = True) -> None:
        method = method_of(msg)
        self.stats["rejected"] += 1
        if audit_it:
            self._audit(f"rejected {reason}", conn.peer, method, detail)
        if isinstance(msg, dict) and "id" in msg and method:
            conn.handshake({"jsonrpc": "2.0", "id": msg["id"], "error": {
                "code": code, "message": f"forge-indexer daemon: request refused: {detail}",
                "data": {"kind": "ProofRejected" if code == PROOF_ERROR else "ReauthRequired",
                         "reason": reason}}})

    @staticmethod
    def _audit(event: str, peer: str, method: str, detail: str) -> None:
        audit.warning("audit: %s %s method=%s: %s", event, peer, method or "-", detail)

    # -- forge/daemon --------------------------------------------------------------------

    async def _action(self, conn: Connection, action: str) -> Any:
        if action == "info":
            return self.info()
        if action == "stop":
            log.info("stop requested by connection %d (%s)", conn.number, conn.peer)
            asyncio.get_running_loop().call_later(0.05, self.stopping.set)
            return {"stopping": True, "pid": os.getpid()}
        if action == "rotate":
            return await self._rotate(conn)
        return {"error": {"code": -32602, "message": f"{DAEMON_METHOD}: unknown action {action!r} "
                          "(info, stop or rotate)"}}

    async def _rotate(self, requester: Connection) -> Any:
        if self._secret is None:
            return {"error": {"code": -32602, "message": "this daemon runs without a keyring (peer "
                              "mode): it has no secret to rotate"}}
        try:
            new = await asyncio.to_thread(keyring_secret.read_secret, self.paths.id, self.backend)
        except ForgeError as exc:
            return {"error": {"code": -32603, "message": str(exc)}}
        if new is None or same(new, self._secret):
            return {"error": {"code": -32602, "message": "the keyring holds no new secret to rotate to"}}
        self._secret = new
        others = [c for c in self.hub.conns.values() if c is not requester and c.key is not None]
        for conn in others:
            self._challenge(conn)
        # The requester too, once it has its answer (sent right after this returns).
        asyncio.get_running_loop().call_soon(self._challenge, requester)
        self._audit("rotated", requester.peer, DAEMON_METHOD, f"{len(others)} connections must re-authenticate")
        return {"rotated": True, "reauthenticating": len(others)}

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(), "workspace": str(self.paths.workspace), "endpoint": self.endpoint,
            "version": __version__, "uptimeS": round(time.time() - self.started, 1),
            "connections": len(self.hub.conns), "connectionsTotal": self.stats["connections"],
            "rejected": self.stats["rejected"], "rssMb": _rss_mb(),
            "roots": [str(r.path) for r in self.ls.roots.all()],
            "busy": self.ls.worker.busy(), "idleTimeoutS": self.idle_timeout_s,
            "unauthenticated": len(self.pending), "auth": self.auth,
        }


def _parse_body(body: bytes) -> Any:
    """The JSON of one body; `FramingError` (the connection closes) for anything unreadable."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise FramingError("the body is not UTF-8") from None
    except RecursionError:
        raise FramingError("the body is nested too deeply") from None
    except ValueError:
        raise FramingError("the body is not JSON") from None


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _keyring(paths: DaemonPaths, settings: Settings, tcp: tuple[str, int] | None
             ) -> tuple[Any, bytes | None, str | None]:
    """(backend, secret, None) with a usable keyring; (None, None, reason) for peer mode.

    Peer mode only where it protects as much: a Unix socket whose peers' uids the kernel
    tells. A backend the user named that cannot be used is an error they asked to see, and
    `--tcp` needs the secret (a loopback port is open to every local user). A keyring that
    works but holds a broken entry is reported too: peer mode is for no usable keyring."""
    try:
        backend = keyring_secret.select_backend(settings.keyring_backend)
        return backend, keyring_secret.load_or_create(paths.id, backend), None
    except keyring_secret.KeyringUnavailable as exc:
        if settings.keyring_backend or exc.reason in ("named", "entry"):
            raise  # a keyring that works but holds something else: `token rotate` fixes it
        if tcp is not None:
            raise keyring_secret.KeyringUnavailable(
                f"--tcp needs an OS keyring (a loopback port is open to every local user, so each "
                f"client must prove the workspace secret): {exc}", exc.reason) from None
        if not HAS_PEERCRED:
            raise
        log.warning("no usable OS keyring (%s): running in peer mode, where only processes of uid %d "
                    "can connect (private runtime dir, 0600 socket, peer uid check; no proofs). "
                    "See docs/security.md", exc.reason, os.getuid())
        log.info("why there is no keyring: %s", exc)
        return None, None, exc.reason


def run_daemon(paths: DaemonPaths, settings: Settings, *, idle_timeout_s: float,
               tcp: tuple[str, int] | None = None) -> int:
    """Start the daemon in this process and serve until it stops (the exit status)."""
    if tcp is not None:  # before anything starts: a bad address is one line, not a traceback
        tcp = (loopback_host(tcp[0], tcp[1], "--tcp"), tcp[1])
    backend, secret, problem = _keyring(paths, settings, tcp)
    from server.priority import lower_priority

    lower_priority(settings.low_priority)  # the daemon's work is background work

    async def main() -> None:
        daemon = Daemon(paths, settings, backend, secret, idle_timeout_s=idle_timeout_s, tcp=tcp,
                        keyring_problem=problem)
        await daemon.run()

    setup_tracing(settings.otel_exporter)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        shutdown_tracing()
    sys.stdout.flush()
    return 0
