"""Many authenticated connections, one `ForgeLanguageServer`.

The daemon runs the ordinary language server (the same one an editor gets on stdio) and
puts this hub in front of it: the hub is the server's only "client". It

- answers each connection's `initialize` from the server's own answer (the server itself
  was initialised once, by the daemon, for its workspace), and `shutdown` locally;
- renumbers request ids, so that connections may reuse ids, and maps responses and
  `$/cancelRequest` back; a connection that goes away has its requests cancelled;
- fans progress out: a `window/workDoneProgress/create` from the server is answered at
  once and repeated to every connection that supports progress, a connection that joins
  mid-run gets the current begin/report, and other notifications go to everyone;
- sends broadcasts and server requests only to connections authenticated under the current
  secret: after a rotation, a connection gets nothing until it answers the new challenge
  (answers to its own earlier requests are held until then);
- counts workspace folders per connection: a folder a connection adds is served while any
  connection has it; the daemon's own workspace always is;
- bounds the work a connection can queue (`MAX_INFLIGHT`): past it the hub stops reading
  that connection, so a flood slows its sender down instead of growing a queue;
- limits each connection's request rate (`rate_limit_per_s`, a token bucket holding two
  seconds' worth): a request over it is answered at once with `RATE_LIMITED_ERROR`
  (-32803, LSP's RequestFailed) and never reaches the server, so one client cannot starve
  the others. Notifications (`$/cancelRequest`, `exit`, document changes) and the
  lifecycle requests `initialize`/`shutdown` are never limited.

Everything here runs on the daemon's event loop (pygls writes only from that loop).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from indexer.core import metrics
from server.daemon.framing import frame
from server.uris import uri_to_path

if TYPE_CHECKING:
    from server.server import ForgeLanguageServer

log = logging.getLogger(__name__)

MAX_INFLIGHT = 16
#: Answers held for a connection that re-authenticates after a rotation (its own requests,
#: at most `MAX_INFLIGHT`, and a few refusals); past this it is closed.
MAX_HELD = 4 * MAX_INFLIGHT
#: A client that stops reading is dropped once this much output waits for it.
MAX_WRITE_BUFFER = 64 * 1024 * 1024
DAEMON_METHOD = "forge/daemon"
#: LSP's RequestFailed: the request was valid, and refused (here: over the rate limit).
RATE_LIMITED_ERROR = -32803
#: A connection may send this many seconds' worth of requests in one burst.
BURST_SECONDS = 2.0
UNLIMITED = frozenset({"initialize", "shutdown"})
JsonMsg = dict[str, Any]


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; each request takes one."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> float:
        """0.0 if a token was taken; else the seconds until one is there (nothing taken)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def _key(msg_id: Any) -> str:
    return json.dumps(msg_id)


def _folder_key(uri: Any) -> str | None:
    if not isinstance(uri, str):
        return None
    path = uri_to_path(uri)
    return str(path.resolve()) if path is not None else None


class Connection:
    """One client of the daemon: a socket, its ids, folders and progress tokens."""

    _numbers = itertools.count(1)

    def __init__(self, writer: asyncio.StreamWriter, peer: str) -> None:
        self.number = next(self._numbers)
        self.writer = writer
        self.peer = peer
        self.key: bytes | None = None  # the session key, once authenticated
        self.nonce: bytes | None = None  # an open challenge
        self.ready = False  # `initialized` received
        self.progress = False  # the client handles window/workDoneProgress/create
        self.configuration = False  # ... answers workspace/configuration
        self.watch_registration = False  # ... can be asked to report file changes
        self.config_registration = False  # ... and settings changes
        self.client_name = "?"
        self.folders: dict[str, str] = {}  # folder key -> the uri the client used
        self.tokens: set[str] = set()
        self.requests: dict[str, int] = {}  # client id (as JSON) -> hub id
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False
        self.last_seen = time.monotonic()
        self.options: Any = None  # its initializationOptions
        self.bucket: TokenBucket | None = None  # its request rate limit (set by the hub)
        self.limited = 0  # requests refused for going over it
        self.held: list[bytes] = []  # answers waiting for a re-authentication

    @property
    def inflight(self) -> int:
        return len(self.requests)

    @property
    def authenticated(self) -> bool:
        """Holds a session key under the current secret (no challenge is open)."""
        return self.key is not None and self.nonce is None

    def send(self, msg: JsonMsg) -> None:
        self.send_raw(json.dumps(msg, separators=(",", ":")).encode())

    def send_raw(self, body: bytes) -> None:
        if self.key is not None and self.nonce is not None:
            # Challenged again after a rotation: answers to what it asked before are held
            # until it proves it has the new secret, and dropped if it never does.
            if len(self.held) >= MAX_HELD:
                log.warning("connection %d holds %d answers while re-authenticating; closing it",
                            self.number, len(self.held))
                self.close()
                return
            self.held.append(body)
            return
        self.write_now(body)

    def handshake(self, msg: JsonMsg) -> None:
        """A handshake message (or a refusal): sent whether or not the connection is authenticated."""
        self.write_now(json.dumps(msg, separators=(",", ":")).encode())

    def release(self) -> None:
        """Re-authenticated: send what was held meanwhile."""
        held, self.held = self.held, []
        for body in held:
            self.write_now(body)

    def write_now(self, body: bytes) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            self.close()
            return
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("connection %d stopped reading its answers; closing it", self.number)
            self.close()
            return
        self.writer.write(frame(body))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.room.set()
            self.writer.close()


class Hub:
    """Routes messages between connections and the one language server."""

    def __init__(self, ls: ForgeLanguageServer, workspace_uri: str, *, rate_limit_per_s: float = 0.0) -> None:
        self.ls = ls
        self.workspace_uri = workspace_uri
        self.rate_limit_per_s = rate_limit_per_s  # per connection; 0: no limit
        self.conns: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self._routes: dict[int, tuple[Connection, Any]] = {}
        self._own: dict[int, asyncio.Future[Any]] = {}
        self._server_requests: dict[str, tuple[Any, Connection]] = {}
        self._progress: dict[str, dict[str, Any]] = {}
        # Counted by resolved path: two spellings of one folder are one root.
        self._folders: Counter[str] = Counter({_folder_key(workspace_uri) or workspace_uri: 1})
        self.init_result: Any = None
        self.last_activity = time.monotonic()
        #: Set by the service: `forge/daemon` actions (info, stop, rotate).
        self.daemon_action: Callable[[Connection, str], Awaitable[Any]] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        ls.protocol.set_writer(self)

    # -- the server's side ---------------------------------------------------------------

    def _feed(self, msg: JsonMsg) -> None:
        """Hand a message to the language server as if it came from its client."""
        protocol = self.ls.protocol
        try:
            protocol.handle_message(protocol.structure_message(msg))
        except Exception:
            log.exception("the server could not take a %s message", msg.get("method", "response"))

    async def request_server(self, method: str, params: Any, timeout_s: float = 60.0) -> Any:
        """A request of the daemon's own (the initial `initialize`)."""
        hub_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._own[hub_id] = future
        self._feed({"jsonrpc": "2.0", "id": hub_id, "method": method, "params": params})
        return await asyncio.wait_for(future, timeout_s)

    def notify_server(self, method: str, params: Any) -> None:
        self._feed({"jsonrpc": "2.0", "method": method, "params": params})

    def write(self, data: bytes) -> None:
        """pygls' writer interface: one framed message from the server."""
        body = data[data.index(b"\r\n\r\n") + 4 :]
        msg = json.loads(body)
        if "method" not in msg:
            self._from_server_response(msg)
        elif "id" in msg:
            self._from_server_request(msg)
        else:
            self._from_server_notification(msg, body)

    def close(self) -> None:  # pygls calls this when it shuts down
        pass

    def _from_server_response(self, msg: JsonMsg) -> None:
        hub_id = msg.get("id")
        own = self._own.pop(hub_id, None) if isinstance(hub_id, int) else None
        if own is not None:
            if not own.done():
                if "error" in msg:
                    own.set_exception(RuntimeError(str(msg["error"])))
                else:
                    own.set_result(msg.get("result"))
            return
        route = self._routes.pop(hub_id, None) if isinstance(hub_id, int) else None
        if route is None:
            return
        conn, client_id = route
        conn.requests.pop(_key(client_id), None)
        if conn.inflight < MAX_INFLIGHT:
            conn.room.set()
        conn.send({**msg, "id": client_id})

    def _answer_server(self, server_id: Any, result: Any = None, error: JsonMsg | None = None) -> None:
        msg: JsonMsg = {"jsonrpc": "2.0", "id": server_id}
        if error is not None:
            msg["error"] = error
        else:
            msg["result"] = result
        # Not from inside pygls' send path: answer on the next loop iteration.
        asyncio.get_running_loop().call_soon(self._feed, msg)

    def _from_server_request(self, msg: JsonMsg) -> None:
        method, server_id, params = msg["method"], msg["id"], msg.get("params") or {}
        if method == "window/workDoneProgress/create":
            token = params.get("token")
            self._progress[_key(token)] = {"token": token}
            self._answer_server(server_id)
            for conn in self._ready():
                self._offer_progress(conn, token)
            return
        if method in ("client/registerCapability", "client/unregisterCapability"):
            self._answer_server(server_id)  # the daemon watches files itself
            return
        candidates = self._ready()
        if method == "workspace/configuration":
            # The settings of the editor heard from last (documented: the last one wins).
            candidates = [c for c in candidates if c.configuration]
            if not candidates:
                self._answer_server(server_id, [None] * len(params.get("items", [])))
                return
        target = max(candidates, key=lambda c: c.last_seen, default=None)
        if target is None:
            self._answer_server(server_id, error={"code": -32603, "message": "no client is connected"})
            return
        out_id = f"forge-hub-{next(self._ids)}"
        self._server_requests[out_id] = (server_id, target)
        target.send({**msg, "id": out_id})

    def _from_server_notification(self, msg: JsonMsg, body: bytes) -> None:
        if msg["method"] == "$/progress":
            params = msg.get("params") or {}
            key = _key(params.get("token"))
            value = params.get("value") or {}
            state = self._progress.get(key)
            if state is not None:
                if value.get("kind") == "end":
                    self._progress.pop(key, None)
                else:
                    state[value.get("kind", "report")] = value
            for conn in self._ready():
                if key in conn.tokens:
                    conn.send_raw(body)
                    if value.get("kind") == "end":
                        conn.tokens.discard(key)
            return
        for conn in self._ready():
            conn.send_raw(body)

    def _offer_progress(self, conn: Connection, token: Any) -> None:
        if not conn.progress:
            return
        conn.tokens.add(_key(token))
        conn.send({"jsonrpc": "2.0", "id": f"forge-hub-{next(self._ids)}",
                   "method": "window/workDoneProgress/create", "params": {"token": token}})

    def _ready(self) -> list[Connection]:
        """Who gets broadcasts and server requests: initialised, and authenticated under the
        current secret (a connection challenged after a rotation gets nothing until it answers)."""
        return [c for c in self.conns.values() if c.ready and c.authenticated and not c.closed]

    # -- the clients' side ---------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        if self.rate_limit_per_s > 0:
            rate = self.rate_limit_per_s
            conn.bucket = TokenBucket(rate, max(1.0, rate * BURST_SECONDS))
        self.conns[conn.number] = conn
        self.last_activity = time.monotonic()

    def drop(self, conn: Connection) -> None:
        """A connection ended: cancel its requests, release its folders."""
        conn.close()
        if self.conns.pop(conn.number, None) is None:
            return
        self.last_activity = time.monotonic()
        for hub_id in list(conn.requests.values()):
            self._routes.pop(hub_id, None)
            self.notify_server("$/cancelRequest", {"id": hub_id})
        conn.requests.clear()
        for out_id, (server_id, target) in list(self._server_requests.items()):
            if target is conn:
                del self._server_requests[out_id]
                self._answer_server(server_id, error={"code": -32603, "message": "the client went away"})
        self._release_folders(conn, set(conn.folders.values()))
        log.info("connection %d (%s) closed; %d left", conn.number, conn.client_name, len(self.conns))

    def from_client(self, conn: Connection, msg: Any) -> None:
        """One verified message from a connection."""
        now = time.monotonic()
        conn.last_seen = self.last_activity = now
        if not isinstance(msg, dict):
            return  # JSON-RPC batches are not part of LSP
        method = msg.get("method")
        if not isinstance(method, str):
            self._client_response(conn, msg)
        elif "id" in msg:
            self._client_request(conn, method, msg)
        else:
            self._client_notification(conn, method, msg)

    def _client_response(self, conn: Connection, msg: JsonMsg) -> None:
        out_id = msg.get("id")
        entry = self._server_requests.pop(out_id, None) if isinstance(out_id, str) else None
        if entry is None:
            return  # the answer to a progress `create` the hub made: nothing waits for it
        server_id, target = entry
        if target is conn:
            self._feed({**msg, "id": server_id})

    def _client_request(self, conn: Connection, method: str, msg: JsonMsg) -> None:
        client_id = msg["id"]
        if method == "initialize":
            self._initialize(conn, msg.get("params") or {})
            conn.send({"jsonrpc": "2.0", "id": client_id, "result": self.init_result})
            return
        if method == "shutdown":
            conn.send({"jsonrpc": "2.0", "id": client_id, "result": None})
            return
        if self._rate_limited(conn, method, client_id):
            return
        if method == DAEMON_METHOD and self.daemon_action is not None:
            action = str((msg.get("params") or {}).get("action"))
            task = asyncio.ensure_future(self._daemon_request(conn, client_id, action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        hub_id = next(self._ids)
        self._routes[hub_id] = (conn, client_id)
        conn.requests[_key(client_id)] = hub_id
        self._feed({**msg, "id": hub_id})

    def _rate_limited(self, conn: Connection, method: str, client_id: Any) -> bool:
        """Refuse a request over the connection's rate (answered here, never queued)."""
        if conn.bucket is None or method in UNLIMITED:
            return False
        wait_s = conn.bucket.take()
        if not wait_s:
            return False
        metrics.RATE_LIMITED.inc()
        conn.limited += 1
        if conn.limited == 1 or conn.limited % 1000 == 0:
            log.warning("connection %d (%s) is over its rate limit (%g requests/s); %d refused so far",
                        conn.number, conn.client_name, self.rate_limit_per_s, conn.limited)
        retry_ms = max(1, math.ceil(wait_s * 1000))
        conn.send({"jsonrpc": "2.0", "id": client_id, "error": {
            "code": RATE_LIMITED_ERROR,
            "message": f"rate limited: {self.rate_limit_per_s:g} requests/s per connection; "
                       f"retry after {retry_ms} ms",
            "data": {"kind": "RateLimited", "retryAfterMs": retry_ms, "method": method}}})
        return True

    async def _daemon_request(self, conn: Connection, client_id: Any, action: str) -> None:
        assert self.daemon_action is not None
        try:
            result = await self.daemon_action(conn, action)
        except Exception as exc:
            log.exception("%s %s failed", DAEMON_METHOD, action)
            result = {"error": {"code": -32603, "message": f"{DAEMON_METHOD} {action} failed: {exc}"}}
        if isinstance(result, dict) and "error" in result:
            conn.send({"jsonrpc": "2.0", "id": client_id, "error": result["error"]})
        else:
            conn.send({"jsonrpc": "2.0", "id": client_id, "result": result})

    def _client_notification(self, conn: Connection, method: str, msg: JsonMsg) -> None:
        params = msg.get("params")
        if method == "initialized":
            conn.ready = True
            self._catch_up(conn)
            self._register_watchers(conn)
            # Its settings (initializationOptions, then workspace/configuration, which
            # reaches this connection as the latest one): the last editor's settings win.
            options = conn.options if isinstance(conn.options, dict) else {}
            self.notify_server("workspace/didChangeConfiguration", {"settings": options})
        elif method == "exit":
            conn.close()
        elif method == "$/cancelRequest":
            hub_id = conn.requests.get(_key((params or {}).get("id")))
            if hub_id is not None:
                self.notify_server(method, {"id": hub_id})
        elif method == "workspace/didChangeWorkspaceFolders":
            event = (params or {}).get("event") or {}
            self._release_folders(conn, {f.get("uri") for f in event.get("removed") or [] if isinstance(f, dict)})
            self._claim_folders(conn, [f.get("uri") for f in event.get("added") or [] if isinstance(f, dict)])
        else:
            self._feed(msg)

    def _initialize(self, conn: Connection, params: JsonMsg) -> None:
        caps = params.get("capabilities") or {}
        conn.progress = bool((caps.get("window") or {}).get("workDoneProgress"))
        workspace_caps = caps.get("workspace") or {}
        conn.configuration = bool(workspace_caps.get("configuration"))
        conn.watch_registration = bool(
            (workspace_caps.get("didChangeWatchedFiles") or {}).get("dynamicRegistration"))
        conn.config_registration = bool(
            (workspace_caps.get("didChangeConfiguration") or {}).get("dynamicRegistration"))
        info = params.get("clientInfo") or {}
        conn.client_name = str(info.get("name") or "a client")
        uris = [f.get("uri") for f in params.get("workspaceFolders") or [] if isinstance(f, dict)]
        if not uris and params.get("rootUri"):
            uris = [params["rootUri"]]
        self._claim_folders(conn, uris)
        conn.options = params.get("initializationOptions")
        log.info("connection %d is %s", conn.number, conn.client_name)

    def _claim_folders(self, conn: Connection, uris: list[Any]) -> None:
        added = []
        for uri in uris:
            key = _folder_key(uri)
            if key is None or key in conn.folders:
                continue
            conn.folders[key] = uri
            self._folders[key] += 1
            if self._folders[key] == 1:
                added.append({"uri": uri, "name": uri.rstrip("/").rsplit("/", 1)[-1]})
        if added:
            self.notify_server("workspace/didChangeWorkspaceFolders",
                               {"event": {"added": added, "removed": []}})

    def _release_folders(self, conn: Connection, uris: set[Any]) -> None:
        removed = []
        for uri in uris:
            key = _folder_key(uri)
            if key is None or key not in conn.folders:
                continue
            uri = conn.folders.pop(key)
            self._folders[key] -= 1
            if self._folders[key] <= 0:
                del self._folders[key]
                removed.append({"uri": uri, "name": uri.rstrip("/").rsplit("/", 1)[-1]})
        if removed:
            self.notify_server("workspace/didChangeWorkspaceFolders",
                               {"event": {"added": [], "removed": removed}})

    def _register_watchers(self, conn: Connection) -> None:
        """Ask the editor for file-change and settings-change events, as the server does for
        its own client (the daemon's watcher sees files too; the editor's events still help
        where native watching falls back to polling).
        """
        registrations = []
        if conn.watch_registration:
            registrations.append({
                "id": f"forge-watched-files-{conn.number}", "method": "workspace/didChangeWatchedFiles",
                "registerOptions": {"watchers": [{"globPattern": "**/*"}]}})
        if conn.config_registration:
            registrations.append({
                "id": f"forge-configuration-{conn.number}", "method": "workspace/didChangeConfiguration",
                "registerOptions": {"section": "forgeIndexer"}})
        if registrations:
            conn.send({"jsonrpc": "2.0", "id": f"forge-hub-{next(self._ids)}",
                       "method": "client/registerCapability", "params": {"registrations": registrations}})

    def _catch_up(self, conn: Connection) -> None:
        """A client that joins mid-run sees the running progress from where it is."""
        for state in list(self._progress.values()):
            begin = state.get("begin")
            if begin is None:
                continue
            token = state["token"]
            self._offer_progress(conn, token)
            if conn.progress:
                for kind in ("begin", "report"):
                    if kind in state:
                        conn.send({"jsonrpc": "2.0", "method": "$/progress",
                                   "params": {"token": token, "value": state[kind]}})
