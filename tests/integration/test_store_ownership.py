"""One store per workspace, by construction: concurrent first use, status while indexing,
reopen after close, and no leaked SQLite connections or Chroma clients."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_concurrent_first_use_opens_one_store(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    stores: list[object] = []
    statuses: list[dict[str, object]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def opener() -> None:
        try:
            start.wait()
            stores.append(ws.open_store())
        except BaseException as exc:
            errors.append(exc)

    def poller() -> None:
        try:
            start.wait()
            for _ in range(40):  # a client polling forge/status during the first index
                statuses.append(ws.status())
        except BaseException as exc:
            errors.append(exc)

    def indexer() -> None:
        try:
            start.wait()
            ws.index()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    threads += [threading.Thread(target=poller) for _ in range(2)] + [threading.Thread(target=indexer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert len({id(s) for s in stores}) == 1 and stores[0] is ws.store
    final = ws.status()
    assert final["files"] and final["vectors"] == final["chunks"] and final["semantic_coverage"] == 1.0
    assert all(s["last_error"] is None for s in statuses)


def test_status_never_loads_the_model_or_opens_the_store(polyglot: Path, tmp_path: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    from indexer.core.settings import Settings
    from indexer.workspace import Workspace

    first = open_ws(polyglot)
    first.index()
    first.close()
    ws = Workspace(polyglot, Settings(state_dir=tmp_path / "state"))  # no embedder given
    try:
        status = ws.status()
        assert status["files"] == first.status()["files"] and status["chunks"]
        assert ws._embedder is None and ws._store is None  # nothing heavy was opened
    finally:
        ws.close()


def test_close_releases_every_connection_and_reopen_works(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    store = ws.store
    conns: list[sqlite3.Connection] = []
    threads = [threading.Thread(target=lambda: conns.append(store.sql.conn)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ws.discard_index()  # closes the store: every thread's connection and the Chroma client
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert store.vectors._client is None
    summary = ws.index()  # a fresh store, rebuilt from scratch
    assert summary.files_indexed >= 14 and ws.store is not store
    assert ws.store.vectors.all_ids() == ws.store.sql.all_chunk_ids()
