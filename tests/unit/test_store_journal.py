"""The SQLite/Chroma journal protocol and crash repair, on real SQLite and real Chroma.

Vectors here are arbitrary unit vectors (no model is involved): these tests prove the
bookkeeping between the two stores, not embedding quality.
"""

from pathlib import Path

import numpy as np
import pytest

from indexer.core.types import Chunk, Symbol
from indexer.store.index import FileRecord, IndexStore, StoredChunk, chunk_id, text_hash

DIM = 8


def make_chunks(path: str, texts: list[str]) -> list[StoredChunk]:
    out = []
    for i, t in enumerate(texts):
        h = text_hash(t)
        out.append(
            StoredChunk(
                chunk_id(path, h, 0), i, Chunk(t, t, i + 1, i + 1, f"f{i}", "function", 3), h
            )
        )
    return out


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    s = IndexStore(tmp_path / "state", DIM)
    yield s
    s.close()


def write_file(
    store: IndexStore, path: str, texts: list[str], *, apply: bool = True
) -> list[StoredChunk]:
    chunks = make_chunks(path, texts)
    store.sql.put_vectors(
        [c.text_hash for c in chunks], np.stack([vec(hash(c.text_hash) % 1000) for c in chunks])
    )
    with store.sql.transaction() as conn:
        store.sql.replace_file(
            conn,
            FileRecord(path, "sha", 1, 1, "python"),
            chunks,
            [Symbol("f0", "function", None, 1, 1)],
        )
    if apply:
        store.apply_journal()
    return chunks


def test_write_then_rewrite_touches_only_changed_chunks(store: IndexStore) -> None:
    write_file(store, "a.py", ["one", "two", "three"])
    assert store.vectors.count() == 3
    ups, dels = None, None
    chunks = make_chunks("a.py", ["one", "two", "four"])
    store.sql.put_vectors([c.text_hash for c in chunks], np.stack([vec(i) for i in range(3)]))
    with store.sql.transaction() as conn:
        ups, dels = store.sql.replace_file(
            conn, FileRecord("a.py", "sha2", 1, 2, "python"), chunks, []
        )
    assert len(ups) == 1 and len(dels) == 1  # "four" in, "three" out; the rest untouched
    store.apply_journal()
    assert store.vectors.all_ids() == store.sql.all_chunk_ids()


def test_crash_before_journal_applied_is_replayed(store: IndexStore) -> None:
    write_file(store, "a.py", ["one", "two"], apply=False)  # "crash": journal written, Chroma not
    assert store.vectors.count() == 0
    repaired = store.repair()
    assert repaired["journal_upserts"] == 2
    assert store.vectors.all_ids() == store.sql.all_chunk_ids()
    assert store.sql.pending_journal()[2] == 0


def test_orphan_and_missing_vectors_are_reconciled(store: IndexStore) -> None:
    write_file(store, "a.py", ["one", "two"])
    store.vectors.upsert(["orphan"], [vec(1)], [{"path": "gone.py", "language": "python"}])
    store.vectors.delete([next(iter(store.sql.all_chunk_ids()))])
    repaired = store.repair()
    assert repaired == {"orphan_vectors_deleted": 1, "missing_vectors_restored": 1}
    assert store.vectors.all_ids() == store.sql.all_chunk_ids()


def test_remove_file_deletes_rows_fts_and_vectors(store: IndexStore) -> None:
    write_file(store, "a.py", ["alpha beta", "gamma"])
    with store.sql.transaction() as conn:
        store.sql.remove_file(conn, "a.py")
    store.apply_journal()
    assert store.vectors.count() == 0
    assert store.sql.counts() == {"files": 0, "chunks": 0, "symbols": 0}
    assert store.sql.conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 0
    assert store.sql.gc_vectors() == 2


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    s = IndexStore(tmp_path / "state", DIM)
    write_file(s, "a.py", ["one", "two"])
    s.close()
    s2 = IndexStore(tmp_path / "state", DIM)
    assert s2.vectors.count() == 2 and s2.sql.counts()["chunks"] == 2
    s2.close()


def test_corrupt_sqlite_gives_actionable_error(tmp_path: Path) -> None:
    from indexer.core.errors import StoreCorrupt

    state = tmp_path / "state"
    state.mkdir()
    (state / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorrupt, match="--rebuild"):
        IndexStore(state, DIM)
