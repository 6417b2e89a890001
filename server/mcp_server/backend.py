"""Where the MCP tools get their answers: the workspace's shared daemon, or this process.

`open_backend` connects to the workspace's daemon, starting one if none runs (as
`forge-indexer lsp` does). When no daemon can be used (no OS keyring, `sharedDaemon` off, a
daemon that cannot start) it opens the index in this process instead and says why in a log
line on stderr. Both backends answer in the same plain shapes (workspace-relative paths,
1-based inclusive lines) and raise `ForgeError` with a message an agent can act on.

The daemon backend reconnects once, starting a new daemon if need be, when the daemon goes
away mid-session: every tool is a read-only query, so asking again is safe.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from indexer.core.errors import Cancelled, ForgeError, IndexNotReady
from indexer.core.settings import Settings
from indexer.core.types import SearchHit, Snippet
from server.daemon.remote import hit_from_wire, lines_from_wire, path_from_wire, snippet_from_wire

log = logging.getLogger("server.mcp")

#: LSP `SymbolKind` numbers (fixed by the LSP specification) → the indexer's kind names.
#: The daemon answers `workspace/symbol` in LSP terms; agents read words.
LSP_SYMBOL_KINDS = {
    2: "module", 3: "namespace", 5: "class", 6: "method", 8: "field", 9: "constructor",
    10: "enum", 11: "interface", 12: "function", 13: "variable", 14: "constant", 15: "string",
    19: "object", 23: "struct", 26: "type",
}


class Backend(Protocol):
    """What the tools ask of an index."""

    root: Path

    @property
    def served_by(self) -> str:
        """"the shared daemon (pid N)" or "this process (...)"."""
        ...


    def search(self, query: str, *, limit: int, mode: str, paths: list[str] | None,
               languages: list[str] | None, min_score: float) -> dict[str, Any]: ...
    def context(self, query: str | None, *, path: str | None, line: int | None,
                budget: int) -> dict[str, Any]: ...
    def symbols(self, name: str, *, limit: int) -> list[dict[str, Any]]: ...
    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def not_indexed(root: Path) -> IndexNotReady:
    return IndexNotReady(
        f"{root} has not been indexed yet: run `forge-indexer index {root}` (or wait for the "
        "background indexing to finish; the index_status tool shows its progress)."
    )


def _hit(h: SearchHit) -> dict[str, Any]:
    """A search hit as the MCP tools return it, whichever backend found it."""
    return {"path": h.path, "start_line": h.start_line, "end_line": h.end_line, "symbol": h.symbol,
            "kind": h.kind, "language": h.language, "score": round(float(h.score), 6), "code": h.preview or ""}


def _snippet(s: Snippet) -> dict[str, Any]:
    """A context snippet as the MCP tools return it, whichever backend packed it."""
    return {"path": s.path, "start_line": s.start_line, "end_line": s.end_line,
            "score": round(float(s.score), 6), "tokens": s.tokens, "text": s.text}


def _definition_line(root: Path, rel: str, line: int) -> str:
    """The source line a symbol is defined on (its signature, mostly), from the file on disk."""
    try:
        with (root / rel).open(encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                if n == line:
                    return text.strip()[:200]
    except OSError:
        pass
    return ""


# -- the shared daemon ------------------------------------------------------------------

class DaemonBackend:
    """Answers through the workspace's daemon (`server.daemon.remote.RemoteWorkspace`)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self._lock = threading.Lock()  # one blocking connection: one request at a time
        self._remote: Any = None
        self._connect()

    @property
    def served_by(self) -> str:
        pid = self._remote.pid if self._remote is not None else "?"
        return f"the shared daemon (pid {pid})"

    def _connect(self) -> None:
        from server.daemon.remote import connect

        remote = connect(self.root, self.settings)
        if remote is None:
            start_daemon(self.root, self.settings)
            remote = connect(self.root, self.settings)
            if remote is None:
                raise ForgeError(f"the daemon for {self.root} started but cannot be found")
        self._remote = remote

    def _request(self, method: str, params: Any) -> Any:
        from server.daemon.client import DaemonRequestError, DaemonUnavailable

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._remote is None:
                        self._connect()
                    self._remote.wait_open()
                    return self._remote.client.request(method, params)
                except DaemonRequestError as exc:
                    raise ForgeError(str(exc)) from None  # the daemon's answer: final
                except DaemonUnavailable as exc:
                    gone = self._remote.pid if self._remote is not None else None
                    self.close()
                    if gone is not None:
                        _wait_gone(gone)
                    if attempt == 2:
                        raise ForgeError(
                            f"the forge-indexer daemon for {self.root} is not answering and could "
                            f"not be restarted: {exc}. Try again; `forge-indexer daemon status` "
                            "shows what runs."
                        ) from None
                    log.warning("the daemon went away (%s); connecting again", exc)
        raise AssertionError("unreachable")

    def search(self, query: str, *, limit: int, mode: str, paths: list[str] | None,
               languages: list[str] | None, min_score: float) -> dict[str, Any]:
        result = self._request("forge/search", {
            "query": query, "limit": limit, "mode": mode, "paths": paths, "languages": languages,
            "minScore": min_score or None,
        })
        hits = [_hit(hit_from_wire(r, path_from_wire(self.root, r["uri"]))) for r in result.get("results", [])]
        cov = result.get("coverage") or {}
        return {"results": hits, "complete": bool(cov.get("complete", True)),
                "files_indexed": cov.get("filesIndexed"), "files_total": cov.get("filesTotal")}

    def context(self, query: str | None, *, path: str | None, line: int | None,
                budget: int) -> dict[str, Any]:
        from server.uris import path_to_uri

        params: dict[str, Any] = {"query": query, "budgetTokens": budget}
        if path:
            params["textDocument"] = {"uri": path_to_uri(self.root / path)}
            if line:
                params["position"] = {"line": line - 1, "character": 0}
        result = self._request("forge/context", params)
        snippets = [_snippet(snippet_from_wire(s, path_from_wire(self.root, s["uri"])))
                    for s in result.get("snippets", [])]
        return {"budget": result.get("budgetTokens", budget), "tokens_used": result.get("tokensUsed", 0),
                "snippets": snippets}

    def symbols(self, name: str, *, limit: int) -> list[dict[str, Any]]:
        found = self._request("workspace/symbol", {"query": name}) or []
        if not found and not self.status()["indexed"]:
            raise not_indexed(self.root)  # the daemon answers [] while nothing is indexed
        out = []
        for s in found[:limit]:
            loc = s["location"]
            start, end = lines_from_wire(loc)
            rel = path_from_wire(self.root, loc["uri"])
            out.append({"name": s["name"], "kind": LSP_SYMBOL_KINDS.get(s.get("kind"), "symbol"),
                        "container": s.get("containerName"), "path": rel, "start_line": start,
                        "end_line": max(start, end - 1), "line": _definition_line(self.root, rel, start)})
        return out

    def status(self) -> dict[str, Any]:
        result = self._request("forge/status", {})
        mine = [r for r in result.get("roots", []) if Path(r.get("path", "")) == self.root]
        r = mine[0] if mine else {}
        return {
            "workspace": str(self.root), "served_by": self.served_by, "state": r.get("state"),
            "indexed": bool(r.get("lastIndexed")), "last_indexed": r.get("lastIndexed"),
            "files": r.get("files"), "chunks": r.get("chunks"), "symbols": r.get("symbols"),
            "vectors": r.get("vectors"), "files_indexed": r.get("filesIndexed"),
            "files_total": r.get("filesTotal"), "coverage": r.get("coverage"),
            "semantic_coverage": r.get("semanticCoverage"), "model": r.get("model"),
            "last_error": r.get("lastError"), "paused": bool(result.get("indexingPaused")),
        }

    def close(self) -> None:
        remote, self._remote = self._remote, None
        if remote is not None:
            remote.client.close()


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    """A killed daemon closes its socket before its process is gone, and until then its
    registry entry still names it: wait that out before looking for a daemon again."""
    import time

    from indexer.core.processes import process_alive

    deadline = time.monotonic() + timeout_s
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def start_daemon(root: Path, settings: Settings) -> None:
    """Start the workspace's daemon, as `forge-indexer lsp` does (`server.daemon.editor`)."""
    from server.daemon.paths import log_file, paths_for
    from server.daemon.spawn import daemon_env, ensure_daemon

    # The daemon picks keyring or peer mode (no keyring: the private socket and the peer
    # uid check alone, docs/security.md); `connect` then follows what its entry says.
    paths = paths_for(root, settings)
    ensure_daemon(paths, log_file(settings, paths.id), daemon_env(settings))
    log.info("started the forge-indexer daemon for %s", root)


# -- in this process --------------------------------------------------------------------

class LocalBackend:
    """Answers from the index opened in this process; brings it up to date in the background.

    Opening fails while another process (an editor's own server) holds the index; that is
    retried on the next call, so the session recovers once the other process is gone.
    """

    served_by = "this process (no shared daemon)"

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self._lock = threading.Lock()
        self._ws: Any = None
        self._indexing: threading.Thread | None = None
        self._cancel: Any = None
        try:
            self._workspace()
        except ForgeError as exc:
            log.warning("cannot open the index yet: %s", exc)

    def _workspace(self) -> Any:
        with self._lock:
            if self._ws is None:
                from indexer.workspace import CancelToken, Workspace
                from server.auth.remote_secrets import lookup

                self._ws = Workspace(self.root, self.settings, secrets=lookup(self.settings))
                self._cancel = CancelToken()
                self._indexing = threading.Thread(target=self._refresh, args=(self._ws,), name="forge-mcp-index",
                                                 daemon=True)
                self._indexing.start()
            return self._ws

    def _refresh(self, ws: Any) -> None:
        """One incremental run at start (unchanged files cost nothing), as an editor's server does."""
        try:
            summary = ws.index(cancel=self._cancel)
            log.info("index of %s up to date: %d files indexed, %d unchanged", self.root,
                     summary.files_indexed, summary.files_unchanged)
        except Cancelled:
            log.info("indexing %s stopped with the session; what was indexed is kept", self.root)
        except ForgeError as exc:
            log.warning("indexing %s failed: %s", self.root, exc)
        except Exception:
            log.exception("indexing %s failed", self.root)

    def search(self, query: str, *, limit: int, mode: str, paths: list[str] | None,
               languages: list[str] | None, min_score: float) -> dict[str, Any]:
        ws = self._workspace()
        found = ws.search(query, limit=limit, mode=mode, paths=paths, languages=languages,
                          min_score=min_score)
        st = ws.status()
        progress = st.get("progress") or {}
        return {"results": [_hit(h) for h in found],
                "complete": not st.get("indexing"), "files_indexed": progress.get("files_done"),
                "files_total": progress.get("files_total")}

    def context(self, query: str | None, *, path: str | None, line: int | None,
                budget: int) -> dict[str, Any]:
        result = self._workspace().context(query, path=path, line=line, budget=budget)
        return {"budget": result.budget, "tokens_used": result.tokens_used,
                "snippets": [_snippet(s) for s in result.snippets]}

    def symbols(self, name: str, *, limit: int) -> list[dict[str, Any]]:
        return [{"name": m.name, "kind": m.kind, "container": m.container, "path": m.path,
                 "start_line": m.start_line, "end_line": m.end_line,
                 "line": _definition_line(self.root, m.path, m.start_line)}
                for m in self._workspace().symbols(name, limit=limit)]

    def status(self) -> dict[str, Any]:
        st = self._workspace().status()
        progress = st.get("progress") or {}
        return {
            "workspace": str(self.root), "served_by": self.served_by,
            "state": "indexing" if st.get("indexing") else "ready" if st.get("last_indexed") else "not indexed",
            "indexed": bool(st.get("last_indexed")), "last_indexed": st.get("last_indexed"),
            "files": st.get("files"), "chunks": st.get("chunks"), "symbols": st.get("symbols"),
            "vectors": st.get("vectors"), "files_indexed": progress.get("files_done"),
            "files_total": progress.get("files_total"), "coverage": st.get("coverage"),
            "semantic_coverage": st.get("semantic_coverage"), "model": st.get("model"),
            "last_error": st.get("last_error"), "paused": False,
        }

    def close(self) -> None:
        """Stop the indexing run at its next file (what it stored is kept), then release the index."""
        with self._lock:
            ws, self._ws = self._ws, None
        if self._cancel is not None:
            self._cancel.cancel()
        if self._indexing is not None:
            self._indexing.join(timeout=60)
        if ws is not None:
            ws.close()


class Opening:
    """A backend still being opened on a worker thread (connecting to or starting the
    daemon, or opening the index here), so that the client's `initialize` is answered
    meanwhile. The first tool call waits for it."""

    def __init__(self, root: Path, settings: Settings) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.root = root
        pool = ThreadPoolExecutor(1, thread_name_prefix="forge-mcp-open")
        self._future = pool.submit(open_backend, root, settings)
        pool.shutdown(wait=False)  # the one task still runs; the pool takes no more

    @property
    def backend(self) -> Backend:
        return self._future.result()

    @property
    def served_by(self) -> str:
        return self.backend.served_by

    def search(self, query: str, **kw: Any) -> dict[str, Any]:
        return self.backend.search(query, **kw)

    def context(self, query: str | None, **kw: Any) -> dict[str, Any]:
        return self.backend.context(query, **kw)

    def symbols(self, name: str, *, limit: int) -> list[dict[str, Any]]:
        return self.backend.symbols(name, limit=limit)

    def status(self) -> dict[str, Any]:
        return self.backend.status()

    def close(self) -> None:
        if self._future.exception() is None:  # waits for an open still under way: its lock is released too
            self.backend.close()


def open_backend(root: Path, settings: Settings) -> Backend:
    """The daemon if one runs or can be started, else this process (said on stderr)."""
    if settings.shared_daemon:
        try:
            backend = DaemonBackend(root, settings)
            log.info("serving %s through %s", root, backend.served_by)
            return backend
        except ForgeError as exc:
            reason = str(exc)
    else:
        reason = "the sharedDaemon setting is off"
    log.warning("serving %s from this process, not a shared daemon: %s", root, reason)
    return LocalBackend(root, settings)
