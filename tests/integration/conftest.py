"""Fixtures for integration tests: the real converted model, real Chroma, real SQLite."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.core.settings import Settings
from tests.conftest import FIXTURES


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real llama.cpp embedder on the real converted default model (loaded once)."""
    from indexer.embed.llama import get_embedder

    return get_embedder(Settings())


@pytest.fixture
def polyglot(tmp_path: Path) -> Path:
    """A private copy of the multi-language fixture workspace (tests edit it)."""
    dest = tmp_path / "polyglot"
    shutil.copytree(FIXTURES / "polyglot", dest, symlinks=True)
    return dest


@pytest.fixture
def open_ws(tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    """Factory: open a Workspace with the shared embedder and a private state dir."""
    from indexer.workspace import Workspace

    opened: list[Workspace] = []

    def _open(root: Path, **settings: object) -> Workspace:
        s = Settings(state_dir=tmp_path / "state", **settings)  # type: ignore[arg-type]
        ws = Workspace(root, s, embedder=embedder)
        opened.append(ws)
        return ws

    yield _open
    for ws in opened:
        with contextlib.suppress(Exception):
            ws.close()


@pytest.fixture
def indexed(polyglot: Path, open_ws) -> Iterator[tuple[Path, object]]:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    yield polyglot, ws
