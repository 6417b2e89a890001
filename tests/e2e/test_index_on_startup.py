"""`indexOnStartup` off: the editor's server starts with background indexing paused, says so
in `forge/status`, and indexes when the user asks (Reindex, or Resume) — real server, real
model, the setting passed in initializationOptions as the VS Code extension passes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    IN_PROCESS,
    call,
    copy_workspace,
    start,
    stop,
    wait_indexed,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.usefixtures("server_env"),
]

OFF = {"forgeIndexer": {"indexOnStartup": False}}


async def _start(ws: Path, options: dict[str, object] | None) -> LanguageClient:
    """The editor's own server process (as with `sharedDaemon` off or without a keyring) on root_b."""
    return await start(ws, ("root_b",), config=IN_PROCESS, options=options)


@pytest.mark.parametrize("ask", ["forge/reindex", "forge/resume"])
async def test_index_on_startup_off_holds_indexing_until_asked(tmp_path: Path, ask: str) -> None:
    ws = copy_workspace(tmp_path)
    lsp = await _start(ws, OFF)
    try:
        await asyncio.sleep(3)  # a server that indexes would have stored root_b's files by now
        status = await call(lsp, "forge/status")
        assert status["indexingPaused"] is True and status["pauseReason"] == "indexOnStartup", status
        [root] = status["roots"]
        assert root["filesIndexed"] == 0 and not root["chunks"], root

        answer = await call(lsp, ask, {} if ask == "forge/reindex" else None)
        if ask == "forge/resume":
            assert answer["wasPaused"] is True, answer
        status = await wait_indexed(lsp, roots=1, timeout=300)
        assert status["indexingPaused"] is False and "pauseReason" not in status, status
        hits = await call(lsp, "forge/search", {"query": "great-circle distance between two points", "limit": 3})
        assert hits["results"][0]["uri"] == (ws / "root_b" / "geometry.go").as_uri(), hits
    finally:
        await stop(lsp)


async def test_a_pause_asked_for_is_not_lifted_by_reindex(tmp_path: Path) -> None:
    """Reindex lifts only the start-up hold; the user's own pause waits for Resume."""
    ws = copy_workspace(tmp_path)
    lsp = await _start(ws, OFF)
    try:
        await call(lsp, "forge/pause", None)
        status = await call(lsp, "forge/status")
        assert status["pauseReason"] == "pause", status
        await call(lsp, "forge/reindex", {})
        await asyncio.sleep(3)
        status = await call(lsp, "forge/status")
        assert status["indexingPaused"] is True and not status["roots"][0]["chunks"], status
    finally:
        await stop(lsp)


async def test_index_on_startup_default_indexes_at_once(tmp_path: Path) -> None:
    ws = copy_workspace(tmp_path)
    lsp = await _start(ws, None)
    try:
        status = await wait_indexed(lsp, roots=1, timeout=300)
        assert status["indexingPaused"] is False and "pauseReason" not in status, status
    finally:
        await stop(lsp)


async def test_a_daemon_the_editor_starts_holds_its_indexing_too(tmp_path: Path) -> None:
    """Through the shared daemon (the default with a keyring): the daemon `forge-indexer lsp`
    starts for this editor gets the setting, and its status (the CLI's too) says paused."""
    from server.auth.secret import select_backend
    from tests.e2e.daemon_helpers import cli

    try:
        select_backend()
    except Exception as exc:
        pytest.fail(f"this test needs a real Secret Service (run it through tests/run.sh): {exc}")
    ws = copy_workspace(tmp_path)
    lsp: LanguageClient | None = None
    try:
        lsp = await start(ws, ("root_b",), options=OFF)  # the shared daemon's client
        status = await call(lsp, "forge/status")
        assert status["indexingPaused"] is True and status["pauseReason"] == "indexOnStartup", status
        out = json.loads(cli("status", "-w", str(ws / "root_b"), "--json").stdout)
        assert out["paused"] is True and out.get("daemon_pid"), out
    finally:
        try:
            if lsp is not None:
                await stop(lsp)
        finally:
            cli("daemon", "stop", "-w", str(ws / "root_b"), check=False)
