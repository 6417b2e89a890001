"""What the request handlers do, across roots; runs on the query pool, never the event loop.

Each request is counted and timed (`indexer.core.metrics` REQUESTS, REQUEST_LATENCY, and
REQUEST_ERRORS by the error's class name) and, when tracing is on, gets a span.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types

from indexer.core import metrics
from indexer.core.errors import Cancelled, ForgeError, IndexNotReady
from indexer.core.types import SearchHit, Snippet, WorkspaceStatus
from server import convert, tracing
from server.params import ContextParams, SearchParams
from server.roots import RootState, coverage_of

if TYPE_CHECKING:
    from indexer.core.workspace_api import IndexingWorkspace
    from indexer.workspace import CancelToken

log = logging.getLogger(__name__)
#: One line per request (method, outcome, latency); not under `server.`, so never sent to the editor.
access = logging.getLogger("forge.requests")

F = TypeVar("F", bound=Callable[..., Any])

SYMBOL_LIMIT = 100
SEMANTIC_SYMBOL_LIMIT = 10
_WORD = re.compile(r"[A-Za-z0-9_]+")


def reads_like_sentence(query: str) -> bool:
    """Three or more words ("parse the config file") asks for meaning, not a name."""
    return len(_WORD.findall(query)) >= 3 and " " in query.strip()


def _ready(roots: list[RootState]) -> list[tuple[RootState, IndexingWorkspace]]:
    """Roots whose index can be queried; `IndexNotReady` if none can."""
    ready = [(r, r.workspace) for r in roots if r.workspace is not None and not r.closed]
    if not ready:
        if not roots:
            raise IndexNotReady("No workspace folder is open: open a folder, then try again.")
        states = ", ".join(
            f"{r.name}: {r.state}" + (f" ({r.last_error})" if r.last_error else "") for r in roots
        )
        raise IndexNotReady(
            f"The index is not ready yet ({states}). Try again in a moment, or see forge/status."
        )
    return ready


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled by the client")


def observed(method: str) -> Callable[[F], F]:
    """Count and time a request handler; failures are counted by the error's class name."""

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            metrics.REQUESTS.labels(method).inc()
            started = time.perf_counter()
            outcome = "ok"
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                outcome = type(exc).__name__
                metrics.REQUEST_ERRORS.labels(method, outcome).inc()
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.REQUEST_LATENCY.labels(method).observe(elapsed)
                access.info("%s %s in %.1f ms", method, outcome, elapsed * 1000)

        return wrapper  # type: ignore[return-value]

    return decorator


@observed("forge/search")
def search(roots: list[RootState], p: SearchParams, cancel: CancelToken | None) -> dict[str, Any]:
    """`forge/search`: every ready root searched, hits merged by score."""
    with tracing.search_span("search", mode=p.mode or "hybrid", limit=p.limit or 0) as notes:
        result = _search(roots, p, cancel)
        notes["hits"] = len(result["results"])
        return result


def _search(roots: list[RootState], p: SearchParams, cancel: CancelToken | None) -> dict[str, Any]:
    ready = _ready(roots)
    limit = p.limit
    hits: list[tuple[RootState, SearchHit]] = []
    errors: list[ForgeError] = []
    for root, ws in ready:
        _check(cancel)
        try:
            found = ws.search(
                p.query,
                limit=limit or root.settings.search_limit,
                languages=p.languages,
                paths=p.paths,
                cancel=cancel,
                min_score=p.min_score or 0.0,
                mode=p.mode,
            )
        except IndexNotReady as exc:
            errors.append(exc)
            continue
        hits.extend((root, h) for h in found)
    if errors and len(errors) == len(ready):
        raise errors[0]
    hits.sort(key=lambda rh: rh[1].score, reverse=True)
    limit = limit or max(r.settings.search_limit for r, _ in ready)
    return {
        "results": [convert.search_result(r, h) for r, h in hits[:limit]],
        "coverage": coverage_of([r for r, _ in ready]),
    }


@observed("forge/context")
def context(
    roots: list[RootState],
    p: ContextParams,
    target: tuple[RootState, str] | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """`forge/context`: the cursor's root if a document is given, else all roots merged."""
    if target is not None:
        root, rel = target
        (root, ws), *_ = _ready([root])
        budget = p.budget_tokens or root.settings.context_budget
        line = p.position.line + 1 if p.position is not None else None
        result = ws.context(p.query, path=rel or None, line=line, budget=budget, cancel=cancel)
        return {
            "snippets": [convert.snippet(root, s) for s in result.snippets],
            "tokensUsed": result.tokens_used,
            "budgetTokens": result.budget,
            "coverage": coverage_of([root]),
            "fileIndexed": result.file_indexed,
        }
    ready = _ready(roots)
    budget = p.budget_tokens or ready[0][0].settings.context_budget
    found: list[tuple[RootState, Snippet]] = []
    for root, ws in ready:
        _check(cancel)
        try:
            result = ws.context(p.query, budget=budget, cancel=cancel)
        except IndexNotReady:
            continue
        found.extend((root, s) for s in result.snippets)
    # Each root packed to the whole budget; keep the best snippets that fit it together.
    found.sort(key=lambda rs: rs[1].score, reverse=True)
    picked: list[tuple[RootState, Snippet]] = []
    used = 0
    for root, s in found:
        if used + s.tokens <= budget:
            picked.append((root, s))
            used += s.tokens
    return {
        "snippets": [convert.snippet(r, s) for r, s in picked],
        "tokensUsed": used,
        "budgetTokens": budget,
        "coverage": coverage_of([r for r, _ in ready]),
    }


@observed("workspace/symbol")
def workspace_symbols(
    roots: list[RootState], query: str, cancel: CancelToken | None
) -> list[types.SymbolInformation]:
    """`workspace/symbol`: fuzzy names; sentence-like queries also get semantic matches first."""
    if not query.strip():
        return []
    try:
        ready = _ready(roots)
    except IndexNotReady:
        return []
    fuzzy: list[tuple[float, types.SymbolInformation]] = []
    semantic: list[tuple[float, types.SymbolInformation]] = []
    for root, ws in ready:
        _check(cancel)
        try:
            matches = ws.symbols(query, limit=SYMBOL_LIMIT)
        except IndexNotReady:
            continue
        fuzzy.extend((m.score, convert.symbol_information(root, m)) for m in matches)
        if reads_like_sentence(query):
            try:
                semantic.extend(_semantic_symbols(root, ws, query, cancel))
            except Cancelled:
                raise
            except ForgeError as exc:  # names still answer if meaning cannot
                log.info("semantic symbol search in %s failed: %s", root.name, exc)
    # Each list is merged across roots by its own score: search relevance for meanings,
    # name-match quality for names. Meanings lead for a sentence; names follow.
    fuzzy.sort(key=lambda si: si[0], reverse=True)
    semantic.sort(key=lambda si: si[0], reverse=True)
    seen: set[tuple[str, int]] = set()
    out: list[types.SymbolInformation] = []
    for info in [*(i for _, i in semantic), *(i for _, i in fuzzy)]:
        key = (info.location.uri, info.location.range.start.line)
        if key not in seen:
            seen.add(key)
            out.append(info)
    return out[:SYMBOL_LIMIT]


def _semantic_symbols(
    root: RootState, ws: IndexingWorkspace, query: str, cancel: CancelToken | None
) -> list[tuple[float, types.SymbolInformation]]:
    """(score, symbol) for search hits, mapped to the symbol that encloses them."""
    out = []
    for hit in ws.search(query, limit=SEMANTIC_SYMBOL_LIMIT, cancel=cancel):
        if not hit.symbol:
            continue
        short = hit.symbol.rsplit(".", 1)[-1]
        match = next(
            (
                m
                for m in ws.symbols(short, limit=50)
                if m.path == hit.path
                and m.name == short
                and hit.start_line <= m.start_line <= hit.end_line
            ),
            None,
        )
        info = (
            convert.symbol_information(root, match)
            if match
            else convert.hit_symbol_information(root, hit)
        )
        out.append((hit.score, info))
    return out


def status(roots: list[RootState]) -> dict[str, Any]:
    """`forge/status`: one entry per root."""
    return {"roots": [root_status(r) for r in roots]}


def root_status(root: RootState) -> dict[str, Any]:
    info: WorkspaceStatus = {}
    ws = root.workspace
    if ws is not None:
        try:
            info = ws.status()
        except Exception as exc:  # the status of a broken index is still a status
            log.warning("status of %s failed: %s", root.path, exc)
            info = {"last_error": str(exc)}
            with contextlib.suppress(Exception):  # damage found and repairs made, if readable
                info["health"] = ws.health()
    last_error = root.last_error or info.get("last_error")
    cov = root.coverage()
    return {
        "root": root.uri,
        "path": str(root.path),
        "name": root.name,
        "state": "error" if root.state == "error" else root.state,
        "files": info.get("files"),
        "chunks": info.get("chunks"),
        "symbols": info.get("symbols"),
        "vectors": info.get("vectors"),
        "coverage": cov["ratio"],
        "semanticCoverage": info.get("semantic_coverage"),
        "filesIndexed": cov["filesIndexed"],
        "filesTotal": cov["filesTotal"],
        "model": info.get("model"),
        "lastError": last_error,
        "lastIndexed": info.get("last_indexed"),
        "stateDir": info.get("state_dir"),
        "health": info.get("health"),
        "remote": info.get("remote") or {},
        "watcher": root.watcher.mode if root.watcher is not None else "off",
        "settings": {
            "debounceMs": root.settings.debounce_ms,
            "watch": root.settings.watch,
            "searchLimit": root.settings.search_limit,
            "contextBudget": root.settings.context_budget,
        },
    }
