"""The CLI's commands answered by a running daemon (no model load, no index open here).

`connect(workspace, settings)` returns a `RemoteWorkspace` when the workspace's daemon
runs, else None (the CLI then works in-process). Results are turned back into the CLI's
own shapes: paths relative to the workspace and 1-based inclusive lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from indexer.errors import ForgeError, IndexNotReady, InvalidQuery
from server.daemon.client import DaemonClient, DaemonRequestError, Endpoint, find_daemon
from server.daemon.paths import RuntimeDirUnsafe, paths_for
from server.uris import path_to_uri, uri_to_path


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


def _lines(r: dict[str, Any]) -> tuple[int, int]:
    rng = r["range"]
    return rng["start"]["line"] + 1, rng["end"]["line"] + 1


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
        self.client.close()

    def _call(self, method: str, params: Any, **kw: Any) -> Any:
        try:
            return self.client.request(method, params, **kw)
        except DaemonRequestError as exc:
            kind = (exc.data or {}).get("kind") if isinstance(exc.data, dict) else None
            cls = {"IndexNotReady": IndexNotReady, "InvalidQuery": InvalidQuery,
                   "InvalidParams": InvalidQuery}.get(str(kind), ForgeError)
            raise cls(str(exc)) from None

    def _rel(self, uri: str) -> str:
        path = uri_to_path(uri)
        if path is None:
            return uri
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def wait_open(self, timeout_s: float = 60.0) -> None:
        """A daemon that just started opens its index first: wait for that, not for indexing."""
        deadline = time.monotonic() + timeout_s
        while not self._open and time.monotonic() < deadline:
            roots = self._call("forge/status", {}).get("roots", [])
            self._open = not any(r.get("state") == "pending" for r in roots)
            if not self._open:
                time.sleep(0.1)

    def search(self, query: str, *, limit: int, languages: list[str] | None, paths: list[str] | None,
               mode: str, min_score: float) -> list[dict[str, Any]]:
        self.wait_open()
        result = self._call("forge/search", {
            "query": query, "limit": limit, "languages": languages, "paths": paths, "mode": mode,
            "minScore": min_score or None,
        })
        hits = []
        for r in result.get("results", []):
            start, end = _lines(r)
            hits.append({"path": self._rel(r["uri"]), "start_line": start, "end_line": end,
                         "score": r["score"], "symbol": r.get("symbol"), "language": r.get("language"),
                         "preview": r.get("preview")})
        return hits

    def context(self, query: str | None, *, path: str | None, line: int | None, budget: int) -> dict[str, Any]:
        params: dict[str, Any] = {"query": query, "budgetTokens": budget}
        if path:
            params["textDocument"] = {"uri": path_to_uri(self.root / path)}
            if line:
                params["position"] = {"line": line - 1, "character": 0}
        self.wait_open()
        result = self._call("forge/context", params)
        snippets = []
        for s in result.get("snippets", []):
            start, end = _lines(s)
            snippets.append({"path": self._rel(s["uri"]), "start_line": start, "end_line": end,
                             "score": s["score"], "tokens": s["tokens"], "text": s["text"]})
        return {"tokens_used": result.get("tokensUsed", 0), "budget": result.get("budgetTokens", budget),
                "snippets": snippets, "file_indexed": result.get("fileIndexed")}

    def status(self) -> dict[str, Any]:
        result = self._call("forge/status", {})
        mine = [r for r in result.get("roots", []) if Path(r.get("path", "")) == self.root]
        r = mine[0] if mine else {}
        return {
            "root": r.get("path", str(self.root)), "files": r.get("files"), "chunks": r.get("chunks"),
            "symbols": r.get("symbols"), "vectors": r.get("vectors"), "model": r.get("model"),
            "state_dir": r.get("stateDir"), "last_indexed": r.get("lastIndexed"),
            "last_error": r.get("lastError"), "state": r.get("state"),
            "coverage": r.get("coverage"), "semantic_coverage": r.get("semanticCoverage"),
            "health": r.get("health"), "remote": r.get("remote") or {}, "daemon_pid": self.pid,
            "paused": bool(result.get("indexingPaused")),
        }

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
