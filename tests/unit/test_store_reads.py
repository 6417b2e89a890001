"""The store's named read queries (`indexer.store.reads`), on a real SQLite index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.core.types import Chunk, Symbol
from indexer.store.index import FileRecord, SqliteState, StoredChunk, chunk_id, text_hash
from indexer.store.reads import read_counts, read_probe_samples

DIM = 4


def _write(sql: SqliteState, path: str, language: str, texts: list[str], embed: bool = True) -> list[str]:
    chunks = []
    for i, t in enumerate(texts):
        h = text_hash(t)
        chunks.append(StoredChunk(chunk_id(path, h, 0), i, Chunk(t, t, 10 * i + 1, 10 * i + 9, f"f{i}", "function", 3), h))
    if embed:
        sql.put_vectors([c.text_hash for c in chunks], np.ones((len(chunks), DIM), dtype=np.float32))
    with sql.transaction() as conn:
        sql.replace_file(conn, FileRecord(path, "sha", 1, 1, language), chunks, [Symbol("f0", "function", None, 1, 9)])
    return [c.id for c in chunks]


@pytest.fixture
def sql(tmp_path: Path) -> SqliteState:
    s = SqliteState(tmp_path / "index.sqlite")
    yield s
    s.close()


def test_files_chunks_and_symbols_are_read_by_name(sql: SqliteState) -> None:
    a = _write(sql, "src/a.py", "python", ["def alpha(): pass", "def beta(): pass"])
    b = _write(sql, "lib/b.rs", "rust", ["fn gamma() {}"], embed=False)
    assert sorted(sql.file_paths()) == ["lib/b.rs", "src/a.py"]
    assert sql.has_file("src/a.py") and not sql.has_file("src/zz.py")
    assert sql.chunk_count() == 3
    assert sorted(sql.chunk_languages_paths([a[0], b[0], "missing"])) == sorted(
        [(a[0], "python", "src/a.py"), (b[0], "rust", "lib/b.rs")])
    rows = {r[0]: r for r in sql.candidate_rows([a[1], b[0]])}
    assert rows[a[1]][2:5] == ("src/a.py", 11, 19) and rows[a[1]][10] is not None
    assert rows[b[0]][10] is None  # not embedded: no cached vector
    assert rows[b[0]][9] == "fn gamma() {}"  # the header column: a one-line text is read whole
    anchor = sql.smallest_chunk_at("src/a.py", 12)
    assert anchor is not None and anchor[0] == a[1]
    assert sql.smallest_chunk_at("src/a.py", 500) is None
    assert sorted(r[3] for r in sql.symbol_rows()) == ["lib/b.rs", "src/a.py"]


def test_vector_scans_read_the_selection_only(sql: SqliteState) -> None:
    a = _write(sql, "src/a.py", "python", ["def alpha(): pass", "def beta(): pass"])
    _write(sql, "lib/b.rs", "rust", ["fn gamma() {}"])
    assert sql.selected_chunk_count((None, [])) == 3
    assert sql.selected_chunk_count(("path", ["src/a.py"])) == 2
    assert sql.selected_chunk_count(("language", ["rust", "go"])) == 1
    got = list(sql.selected_chunk_vectors(("path", ["src/a.py"])))
    assert sorted(cid for cid, _, _ in got) == sorted(a)
    assert {lang for _, lang, _ in got} == {"python"} and all(len(v or b"") == DIM * 4 for _, _, v in got)


def test_lexical_ranks_filter_by_language_path_and_rowid(sql: SqliteState) -> None:
    a = _write(sql, "src/a.py", "python", ["def alpha(): pass", "def beta(): pass"])
    b = _write(sql, "lib/b.rs", "rust", ["fn alpha() {}"])
    weights = "bm25(5.0, 2.0, 1.0)"
    both = sql.lexical_ranks('"alpha"', weights, 10, [], None)
    assert set(both) == {a[0], b[0]} and all(r < 0 for r in both.values())
    assert set(sql.lexical_ranks('"alpha"', weights, 10, ["rust"], None)) == {b[0]}
    assert set(sql.lexical_ranks('"alpha"', weights, 10, [], ["src/a.py"])) == {a[0]}
    assert set(sql.lexical_ranks('"alpha"', weights, 1, [], None)) <= {a[0], b[0]}
    assert len(sql.lexical_ranks('"alpha"', weights, 1, [], None)) == 1
    rowid = sql.candidate_rows([b[0]])[0][1]
    assert set(sql.lexical_ranks('"alpha"', weights, 10, [], None, only=[rowid])) == {b[0]}
    counts = sql.term_document_counts(["alpha", "beta", "nowhere"])
    assert counts == {"alpha": 2, "beta": 1, "nowhere": 0}


def test_a_closed_index_is_read_without_writing(sql: SqliteState, tmp_path: Path) -> None:
    a = _write(sql, "src/a.py", "python", ["def alpha(): pass"])
    sql.set_meta("last_indexed", "1700000000.0")
    db = tmp_path / "index.sqlite"
    counts, last = read_counts(db)
    assert counts == {"files": 1, "chunks": 1, "symbols": 1} and last == "1700000000.0"
    assert [cid for cid, _ in read_probe_samples(db)] == a
    assert sql.probe_samples() == read_probe_samples(db)
    assert read_counts(tmp_path / "absent.sqlite") == (None, None)
    assert read_probe_samples(tmp_path / "absent.sqlite") == []
    assert not (tmp_path / "absent.sqlite").exists()
