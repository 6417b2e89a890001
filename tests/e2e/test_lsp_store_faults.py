"""End to end: the real server (`python -m server`) started on a damaged index.

Before this, a random-bytes HNSW file killed the server with SIGSEGV on every start. Now
the server stays up, says what it found once with `window/showMessage`, repairs in the
background (nothing embedded again) and answers searches.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pytest_lsp import LanguageClient

from indexer.core.settings import Settings
from tests.conftest import FIXTURES
from tests.e2e.helpers import REPO, SERVER, accept_registrations, call, search, wait_indexed

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="function")]

COPIES = 16  # > 1,000 chunks: Chroma writes its HNSW files


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A workspace and its healthy index (built in this process with the real model)."""
    from indexer.workspace import Workspace

    base = tmp_path_factory.mktemp("lsp-faults")
    ws = base / "ws"
    for i in range(COPIES):
        shutil.copytree(FIXTURES / "polyglot", ws / f"p{i:02d}", symlinks=True)
    state = base / "state"
    with Workspace(ws, Settings(state_dir=state)) as w:
        w.index()
        chunks = int(w.status()["chunks"])  # type: ignore[call-overload]
    return ws, state, chunks


def _overwrite(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(os.urandom(path.stat().st_size))


def _random_hnsw(state: Path) -> None:
    (seg,) = [p for p in next((state / "workspaces").iterdir()).joinpath("chroma").iterdir() if p.is_dir()]
    _overwrite(seg / "data_level0.bin")


def _random_sqlite_pages(state: Path) -> None:
    db = next((state / "workspaces").iterdir()) / "index.sqlite"
    with db.open("r+b") as f:
        f.seek(db.stat().st_size // 2)
        f.write(os.urandom(64 * 1024))


@pytest_asyncio.fixture
async def server_on(
    healthy: tuple[Path, Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[Callable[[Path], None]], Any]]:
    """Start a server on a copy of the healthy index after `damage(state)`."""
    ws, template, _ = healthy
    started: list[LanguageClient] = []

    async def start(damage: Callable[[Path], None]) -> LanguageClient:
        state = tmp_path / "state"
        shutil.copytree(template, state)
        damage(state)
        monkeypatch.setenv("PYTHONPATH", str(REPO))
        monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(state))
        from lsprotocol import types
        from pytest_lsp import client_capabilities

        lsp = await SERVER.start()
        assert isinstance(lsp, LanguageClient)
        started.append(lsp)
        accept_registrations(lsp)
        await lsp.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual_studio_code"),
                workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name="ws")],
                root_uri=ws.as_uri(),
            )
        )
        return lsp

    yield start
    for lsp in started:
        try:
            await asyncio.wait_for(lsp.shutdown_session(), 30)
        finally:
            await lsp.stop()


@pytest.mark.parametrize("damage", [_random_hnsw, _random_sqlite_pages], ids=["hnsw-random", "sqlite-pages"])
async def test_server_survives_a_damaged_index_says_so_once_and_repairs_it(
    server_on: Any, healthy: tuple[Path, Path, int], damage: Callable[[Path], None]
) -> None:
    _, _, chunks = healthy
    lsp: LanguageClient = await server_on(damage)
    status = await wait_indexed(lsp, roots=1, timeout=300)
    assert lsp.error is None
    (root,) = status["roots"]
    assert root["chunks"] == root["vectors"] == chunks
    assert root["health"]["state"] in ("repaired", "ok"), root["health"]
    events = root["health"]["events"]
    assert events, "the repair is recorded"
    about_store = ("vector store", "index database", "damaged", "repair", "rebuil")
    shown = [m.message for m in lsp.messages if any(w in m.message for w in about_store)]
    assert len(shown) == 1, shown  # told once, not on every request
    assert ("vector store" in shown[0]) if damage is _random_hnsw else ("index database" in shown[0])
    hits = await search(lsp, "parse a duration from the config")
    assert hits and hits[0]["symbol"]
    again = await call(lsp, "forge/status")
    assert again["roots"][0]["state"] == "idle"
