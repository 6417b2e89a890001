"""Incremental indexing: unchanged files are not re-embedded; edits, deletes, renames and
model changes reach both stores, which always agree afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def consistent(ws) -> None:  # type: ignore[no-untyped-def]
    """SQLite and Chroma hold exactly the same chunk ids, and the journal is empty."""
    store = ws.store
    assert store.vectors.all_ids() == store.sql.all_chunk_ids()
    assert store.sql.pending_journal()[2] == 0
    assert store.sql.chunks_without_vector() == []


def test_first_run_then_nothing_to_do(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    first = ws.index()
    assert first.files_indexed >= 14 and first.chunks_embedded > 0 and first.errors == []
    assert first.tokens_embedded > 0
    consistent(ws)
    again = ws.index()
    assert again.files_indexed == 0 and again.chunks_embedded == 0
    assert again.files_unchanged == first.files_indexed
    status = ws.status()
    assert status["vectors"] == status["chunks"] > 0
    assert status["files"] == first.files_indexed


def test_ignored_files_are_not_indexed(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    paths = {r[0] for r in ws.store.sql.conn.execute("SELECT path FROM files")}
    assert "build/out.txt" not in paths and "debug.log" not in paths
    assert "src/config/loader.py" in paths


def test_edit_reembeds_only_new_chunks(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    f = polyglot / "src/net/retry.py"
    f.write_text(f.read_text() + '\n\ndef circuit_breaker_open(failures: int, threshold: int = 5) -> bool:\n'
                 '    """Trip the breaker after too many consecutive failures."""\n'
                 '    return failures >= threshold\n')
    s = ws.index()
    assert s.files_indexed == 1 and s.files_unchanged >= 13
    assert 1 <= s.chunks_embedded <= 3
    assert s.chunks_reused >= 1  # the untouched functions of the edited file
    consistent(ws)
    assert ws.search("trip the circuit breaker after consecutive failures", limit=1)[0].symbol == "circuit_breaker_open"


def test_touch_without_change_embeds_nothing(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    f = polyglot / "web/cart.js"
    f.write_text(f.read_text())  # same bytes, new mtime
    s = ws.index()
    assert s.files_indexed == 0 and s.chunks_embedded == 0 and s.files_unchanged >= 14


def test_delete_removes_from_both_stores(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    (polyglot / "scripts/slugify.rb").unlink()
    s = ws.index()
    assert s.files_deleted == 1
    consistent(ws)
    assert all(h.path != "scripts/slugify.rb" for h in ws.search("url slug from title", limit=10))


def test_rename_reuses_vectors(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    (polyglot / "native/hash.c").rename(polyglot / "native/fnv.c")
    s = ws.index()
    assert s.files_deleted == 1 and s.files_indexed == 1
    # Chunk headers name the file, so a renamed file's chunk texts are new and re-embedded.
    consistent(ws)
    assert ws.search("FNV-1a hash of a byte buffer", limit=1)[0].path == "native/fnv.c"


def test_single_path_reindex_and_deleted_path(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index()
    (polyglot / "web/cart.js").unlink()
    s = ws.index([str(polyglot / "web/cart.js")])
    assert s.files_deleted == 1
    consistent(ws)


def test_model_setting_change_triggers_clean_reembed(polyglot: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from indexer.core.settings import Settings
    from indexer.workspace import Workspace

    state = tmp_path / "state-model"
    with Workspace(polyglot, Settings(state_dir=state), embedder=embedder) as ws:
        first = ws.index()
    # A different max_tokens changes chunking and the index config: nothing may be mixed.
    from indexer.embed.llama import get_embedder

    other = get_embedder(Settings(max_tokens=96))
    with Workspace(polyglot, Settings(state_dir=state, max_tokens=96), embedder=other) as ws:
        s = ws.index()
        assert s.full_reembed
        assert s.files_indexed == first.files_indexed and s.chunks_embedded > 0
        consistent(ws)
        assert all(t <= 96 for (t,) in ws.store.sql.conn.execute("SELECT tokens FROM chunks"))


def test_second_process_gets_a_clear_lock_error(polyglot: Path, open_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    ws = open_ws(polyglot)
    ws.index()
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "status", "-w", str(polyglot), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "in use by another forge-indexer process" in proc.stderr
