"""`forge/status` and `forge/reindex` (and their `forgeIndexer.*` commands)."""

from __future__ import annotations

import asyncio
from typing import Any

from indexer.core.errors import InvalidQuery
from server import queries
from server.errors import rpc_errors
from server.params import ReindexParams, StatusParams, parse_params
from server.server import ForgeLanguageServer

STATUS, REINDEX = "forge/status", "forge/reindex"
STATUS_COMMAND, REINDEX_COMMAND = "forgeIndexer.status", "forgeIndexer.reindex"


def register(ls: ForgeLanguageServer) -> None:
    """Register the status and reindex requests and commands."""

    @ls.feature(STATUS)
    @rpc_errors(STATUS)
    async def status(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Per root: files, chunks, coverage, model, state, last error."""
        return await _status(ls, params)

    @ls.command(STATUS_COMMAND)
    @rpc_errors(STATUS_COMMAND)
    async def status_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/status` as a command."""
        return await _status(ls, args[0] if args else None)

    @ls.feature(REINDEX)
    @rpc_errors(REINDEX)
    async def reindex(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Reindex one file (by URI), one root (its URI), or everything."""
        return await _reindex(ls, params)

    @ls.command(REINDEX_COMMAND)
    @rpc_errors(REINDEX_COMMAND)
    async def reindex_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/reindex` as a command."""
        return await _reindex(ls, args[0] if args else None)


async def _status(ls: ForgeLanguageServer, raw: Any) -> dict[str, Any]:
    parse_params(StatusParams, raw)
    roots = ls.roots.all()
    result = await ls.run_query(lambda cancel: queries.status(roots))
    result["indexingPaused"] = ls.worker.paused
    reason = ls.worker.pause_reason
    if reason is not None:
        result["pauseReason"] = reason
    return result


async def _reindex(ls: ForgeLanguageServer, raw: Any) -> dict[str, Any]:
    p = parse_params(ReindexParams, raw)
    if ls.worker.pause_reason == "indexOnStartup":
        ls.worker.resume()  # the user asked for indexing: what `indexOnStartup` off held runs now
    if p.uri is None:
        events = [ls.worker.submit("full", r, reason="Re-indexing") for r in ls.roots.all()]
        scheduled = [r.uri for r in ls.roots.all()]
    else:
        found = ls.roots.for_uri(p.uri)
        if found is None:
            raise InvalidQuery(f"{p.uri} is not inside any open workspace folder.")
        root, rel = found
        is_dir = not rel or (root.path / rel).is_dir()
        events = [
            ls.worker.submit("full", root, reason="Re-indexing")
            if is_dir
            else ls.worker.submit("paths", root, {rel})
        ]
        scheduled = [p.uri]
    if not p.wait:
        return {"scheduled": scheduled, "done": False}
    # Awaited on the event loop: waiting holds no query thread, and $/cancelRequest works.
    deadline = asyncio.get_running_loop().time() + p.timeout_ms / 1000
    done = True
    for event in events:
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        done = await event.wait_async(left) and done
    return {"scheduled": scheduled, "done": done}
