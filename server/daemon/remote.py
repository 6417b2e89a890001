"""The CLI's commands answered by a running daemon (no model load, no index open here).

`connect(workspace, settings)` returns a `RemoteWorkspace` when the workspace's daemon
runs, else None (the CLI then works in-process). It is an `indexer.core.workspace_api.WorkspaceLike`:
results come back as the same `indexer.core.types` values the in-process workspace returns,
with paths relative to the workspace and 1-based inclusive lines. The wire JSON is read
in the `*_from_wire` functions below, the inverse of `server.convert` and
`server.queries.root_status` (which need lsprotocol, so the fast path cannot share them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from indexer.core.errors import ForgeError, IndexNotReady, InvalidQuery
from indexer.core.types import ContextResult, SearchHit, Snippet, WorkspaceStatus
from server.daemon.client import DaemonClient, DaemonRequestError, Endpoint, find_daemon
from server.daemon.paths import RuntimeDirUnsafe, paths_for
from server.uris import path_to_uri, uri_to_path

if TYPE_CHECKING:
    from indexer.core.protocols import Cancellable


class ClientSettings(Protocol):
    """The settings a daemon client needs: the full `Settings`, or the few keys the CLI's fast
    path reads without pydantic (`server.cli_fast.ClientSettings`)."""

    @property
    def state_dir(self) -> Path | None: ...
    @property
    def shared_daemon(self) -> bool: ...
    @property
    def keyring_backend(self) -> str | None: ...


def connect(workspace: Path, settings: ClientSettings, *, progress: bool = False) -> RemoteWorkspace | None:
    """An authenticated connection to the workspace's daemon, or None if none runs."""
    if not settings.shared_daemon:
        return None
    try:
        paths = paths_for(workspace, settings)
    except (OSError, RuntimeDirUnsafe):
        return None  # no runtime dir of this user's (e.g. another user's XDG_RUNTIME_DIR): no daemon
    endpoint = find_daemon(paths)
    if endpoint is None:
        return None
    return open_remote(endpoint, paths.id, paths.workspace, settings, progress=progress)


def open_remote(endpoint: Endpoint, daemon_id: str, workspace: Path, settings: ClientSettings, *,
                progress: bool = False) -> RemoteWorkspace:
    """Authenticate to a daemon whose registry entry we have, and say hello.

    The secret is read from the keyring backend the daemon recorded (`endpoint.keyring`);
    the user's keyringBackend setting, when given, still decides. A daemon in peer mode (no
    keyring) needs no secret: the user is told so once, on stderr."""
    if endpoint.peer_mode:
        from server.daemon import notice

        client = DaemonClient(endpoint, None)
        notice.to_stderr(endpoint.problem)
        return _hello(client, workspace, progress)
    from server.auth import secret as keyring_secret

    try:
        backend = None if settings.keyring_backend else keyring_secret.recorded_backend(endpoint.keyring)
        if backend is None:
            backend = keyring_secret.select_backend(settings.keyring_backend)
        secret = keyring_secret.read_secret(daemon_id, backend)
    except ForgeError as exc:
        raise ForgeError(f"a daemon (pid {endpoint.pid}) serves {workspace}, but {exc}") from None
    if secret is None:
        raise ForgeError(
            f"a daemon (pid {endpoint.pid}) serves {workspace}, but its secret is not in the "
            "keyring; stop it with `forge-indexer daemon stop` (or kill it) and try again."
        )
    return _hello(DaemonClient(endpoint, secret), workspace, progress)


def _hello(client: DaemonClient, workspace: Path, progress: bool) -> RemoteWorkspace:
    uri = path_to_uri(workspace)
    try:
        client.initialize(uri, progress=progress)
    except BaseException:
        client.close()
        raise
    return RemoteWorkspace(client, workspace, uri)


def lines_from_wire(r: dict[str, Any]) -> tuple[int, int]:
    """The 1-based inclusive lines of a wire result's LSP `range`."""
    rng = r["range"]
    return rng["start"]["line"] + 1, rng["end"]["line"] + 1


def path_from_wire(root: Path, uri: str) -> str:
    """A wire result's file URI as a path relative to `root` (absolute when outside it)."""
    path = uri_to_path(uri)
    if path is None:
        return uri
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def hit_from_wire(r: dict[str, Any], path: str) -> SearchHit:
    """One `forge/search` result (`server.convert.search_result`) as a `SearchHit` at `path`."""
    start, end = lines_from_wire(r)
    return SearchHit(path=path, start_line=start, end_line=end, score=r["score"], symbol=r.get("symbol"),
                     language=r["language"], kind=r.get("kind"), chunk_id="", preview=r["preview"])


def snippet_from_wire(s: dict[str, Any], path: str) -> Snippet:
    """One `forge/context` snippet (`server.convert.snippet`) as a `Snippet` at `path`."""
    start, end = lines_from_wire(s)
    return Snippet(path=path, start_line=start, end_line=end, text=s["text"], score=s["score"],
                   tokens=s["tokens"])


def status_from_wire(r: dict[str, Any], result: dict[str, Any], root: Path, pid: int) -> WorkspaceStatus:
    """One root of `forge/status` (`server.queries.root_status`, camelCase) back in the
    workspace's own snake_case names, with the daemon's pid and pause."""
    return {
        "root": r.get("path", str(root)), "files": r.get("files"), "chunks": r.get("chunks"),
        "symbols": r.get("symbols"), "vectors": r.get("vectors"), "model": r.get("model"),
        "state_dir": r.get("stateDir"), "last_indexed": r.get("lastIndexed"),
        "last_error": r.get("lastError"), "state": r.get("state"),
        "coverage": r.get("coverage"), "semantic_coverage": r.get("semanticCoverage"),
        "health": r.get("health"), "remote": r.get("remote") or {}, "daemon_pid": pid,
        "paused": bool(result.get("indexingPaused")),
    }


class RemoteWorkspace:
    """One workspace, through its daemon."""

    def __init__(self, client: DaemonClient, root: Path, uri: str) -> None:
        self.client = client
        self.root = root
        self.uri = uri
        self._open = False

    @property
    def pid(self) -> int:
        return self.client.endpoint.pid

    def __enter__(self) -> RemoteWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, params: Any, **kw: Any) -> Any:
        try:
            return self.client.request(method, params, **kw)
        except DaemonRequestError as exc:
            kind = (exc.data or {}).get("kind") if isinstance(exc.data, dict) else None
            cls = {"IndexNotReady": IndexNotReady, "InvalidQuery": InvalidQuery,
                   "InvalidParams": InvalidQuery}.get(str(kind), ForgeError)
            raise cls(str(exc)) from None

    def _rel(self, uri: str) -> str:
        return path_from_wire(self.root, uri)

    def wait_open(self, timeout_s: float = 60.0) -> None:
        """A daemon that just started opens its index first: wait for that, not for indexing."""
        deadline = time.monotonic() + timeout_s
        while not self._open and time.monotonic() < deadline:
            roots = self._call("forge/status", {}).get("roots", [])
            self._open = not any(r.get("state") == "pending" for r in roots)
            if not self._open:
                time.sleep(0.1)

    def search(self, query: str, *, limit: int | None = None, languages: list[str] | None = None,
               paths: list[str] | None = None, cancel: Cancellable | None = None, mode: str = "hybrid",
               min_score: float = 0.0) -> list[SearchHit]:
        """`forge/search` in the daemon (`cancel` is not sent: the CLI's request runs to its end)."""
        self.wait_open()
        result = self._call("forge/search", {
            "query": query, "limit": limit, "languages": languages, "paths": paths, "mode": mode,
            "minScore": min_score or None,
        })
        return [hit_from_wire(r, self._rel(r["uri"])) for r in result.get("results", [])]

    def context(self, query: str | None = None, *, path: str | None = None, line: int | None = None,
                budget: int | None = None, cancel: Cancellable | None = None) -> ContextResult:
        """`forge/context` in the daemon (`budget` None: the daemon's contextBudget)."""
        params: dict[str, Any] = {"query": query, "budgetTokens": budget}
        if path:
            params["textDocument"] = {"uri": path_to_uri(self.root / path)}
            if line:
                params["position"] = {"line": line - 1, "character": 0}
        self.wait_open()
        result = self._call("forge/context", params)
        snippets = tuple(snippet_from_wire(s, self._rel(s["uri"])) for s in result.get("snippets", []))
        return ContextResult(snippets=snippets, tokens_used=result.get("tokensUsed", 0),
                             budget=result.get("budgetTokens", budget), file_indexed=result.get("fileIndexed"))

    def status(self) -> WorkspaceStatus:
        result = self._call("forge/status", {})
        mine = [r for r in result.get("roots", []) if Path(r.get("path", "")) == self.root]
        return status_from_wire(mine[0] if mine else {}, result, self.root, self.pid)

    def close(self) -> None:
        self.client.close()

    def pause(self) -> dict[str, Any]:
        """Hold the daemon's background indexing (`forge/pause`)."""
        return dict(self._call("forge/pause", {}))

    def resume(self) -> dict[str, Any]:
        """Let it go on (`forge/resume`)."""
        return dict(self._call("forge/resume", {}))

    def index(self, on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Reindex the workspace in the daemon and wait for it (embedding included)."""

        def notified(method: str, params: Any) -> None:
            if method == "$/progress" and on_progress is not None and isinstance(params, dict):
                on_progress(params.get("value") or {})

        result = self._call("forge/reindex", {"uri": self.uri, "wait": True, "timeoutMs": 3_600_000},
                            timeout_s=None, on_notification=notified)
        return {"done": bool(result.get("done")), "status": self.status()}
