"""The index schema's read queries, as named methods of the store.

`IndexReads` is mixed into `indexer.store.index.SqliteState`: search (`indexer.search.query`),
context (`indexer.search.context`) and the symbol table (`indexer.search.symbols`) ask these methods
instead of writing SQL, so the schema is known only to the store. The module functions
read an index database that is not open as a store (status of a closed index, the
doctor's probe), through a read-only connection that never writes or creates anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

# A chunk row a search candidate is built from: id, rowid, path, start line, end line,
# symbol, language, kind, body, the start of the text's second line (for a member, the
# enclosing definitions' signatures) and the cached vector bytes (None when not embedded).
CandidateRow = tuple[str, int, str, int, int, str | None, str, str | None, str, str, bytes | None]
_HEADER_CHARS = 300  # of the second line: enough for a few signatures (each is cut at 120)
# A chunk as context's anchor: id, path, start line, end line, symbol, language, kind, body.
AnchorRow = tuple[str, str, int, int, str | None, str, str | None, str]
# A symbol: name, kind, container, path, start line, end line, start column.
SymbolRow = tuple[str, str, str | None, str, int, int, int]
# Which chunks a vector scan reads: all of them (None), or those whose column is in the values.
Selection = tuple[Literal["path", "language"] | None, Sequence[str]]


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _where(selection: Selection) -> tuple[str, list[Any]]:
    column, values = selection
    if column is None:
        return "", []
    return f"WHERE c.{column} IN ({_marks(values)})", list(values)


class IndexReads:
    """Read queries over files, chunks, the FTS index, vectors and symbols."""

    @property
    def conn(self) -> sqlite3.Connection:  # provided by SqliteState
        raise NotImplementedError

    # -- files ----------------------------------------------------------------------
    def file_paths(self) -> Iterator[str]:
        """Every indexed file's path."""
        return (p for (p,) in self.conn.execute("SELECT path FROM files"))

    def has_file(self, path: str) -> bool:
        return self.conn.execute("SELECT 1 FROM files WHERE path=?", (path,)).fetchone() is not None

    # -- chunks ---------------------------------------------------------------------
    def chunk_count(self) -> int:
        (total,) = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
        return int(total)

    def paths_holding_text(self, text_hash: str) -> list[str]:
        """The files with a chunk of this text (the same text may sit in several)."""
        rows = self.conn.execute("SELECT DISTINCT path FROM chunks WHERE text_hash = ?", (text_hash,))
        return [p for (p,) in rows]

    def chunk_languages_paths(self, ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(id, language, path) of the chunks among `ids` that exist."""
        if not ids:
            return []
        return self.conn.execute(
            f"SELECT id, language, path FROM chunks WHERE id IN ({_marks(ids)})", list(ids)
        ).fetchall()

    def candidate_rows(self, ids: Sequence[str]) -> list[CandidateRow]:
        """The chunks among `ids` that exist, with their cached vector bytes (any order)."""
        if not ids:
            return []
        return self.conn.execute(
            "SELECT c.id, c.rowid, c.path, c.start_line, c.end_line, c.symbol, c.language, c.kind, c.body, "
            f"substr(c.text, instr(c.text, char(10)) + 1, {_HEADER_CHARS}), v.vector FROM chunks c LEFT JOIN vectors v ON v.text_hash = c.text_hash "
            f"WHERE c.id IN ({_marks(ids)})",
            list(ids),
        ).fetchall()

    def smallest_chunk_at(self, path: str, line: int) -> AnchorRow | None:
        """The smallest chunk of `path` containing `line` (1-based)."""
        row: AnchorRow | None = self.conn.execute(
            "SELECT id, path, start_line, end_line, symbol, language, kind, body FROM chunks "
            "WHERE path=? AND start_line<=? AND end_line>=? ORDER BY end_line-start_line LIMIT 1",
            (path, line, line),
        ).fetchone()
        return row

    def selected_chunk_count(self, selection: Selection) -> int:
        where, args = _where(selection)
        return int(self.conn.execute(f"SELECT count(*) FROM chunks c {where}", args).fetchone()[0])

    def selected_chunk_vectors(self, selection: Selection) -> Iterator[tuple[str, str, bytes | None]]:
        """(id, language, vector bytes) of the selected chunks that have a cached vector, streamed."""
        where, args = _where(selection)
        return iter(self.conn.execute(
            f"SELECT c.id, c.language, v.vector FROM chunks c JOIN vectors v ON v.text_hash = c.text_hash {where}", args,
        ))

    # -- lexical (FTS5) -------------------------------------------------------------
    def lexical_ranks(
        self, match: str, weights: str, n: int, languages: Sequence[str], paths: Sequence[str] | None,
        only: Sequence[int] = (),
    ) -> dict[str, float]:
        """{chunk id: FTS5 rank (negative BM25 with the column `weights`)} for the best `n`
        chunks matching the FTS5 expression `match`, in `languages` (all if empty) and
        `paths` (all if None), or for exactly the chunk rowids `only`."""
        args: list[Any] = [match]
        more, more_args = "", []
        if languages:
            more += f" AND c.language IN ({_marks(languages)})"
            more_args += list(languages)
        if paths is not None:
            more += f" AND c.path IN ({_marks(paths)})"
            more_args += list(paths)
        if only:
            inner = (f"SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? AND rank MATCH '{weights}' "
                     f"AND rowid IN ({_marks(only)})")
            args += list(only)
            sql = f"SELECT c.id, f.rank FROM ({inner}) f JOIN chunks c ON c.rowid = f.rowid"
        elif not more:  # rank inside FTS5 first, join only the winners
            inner = (f"SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? AND rank MATCH '{weights}' "
                     "ORDER BY rank LIMIT ?")
            args.append(n)
            sql = f"SELECT c.id, f.rank FROM ({inner}) f JOIN chunks c ON c.rowid = f.rowid ORDER BY f.rank"
        else:
            sql = (f"SELECT c.id, f.rank FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid "
                   f"WHERE chunks_fts MATCH ? AND f.rank MATCH '{weights}'{more} ORDER BY f.rank LIMIT ?")
            args += [*more_args, n]
        return {cid: float(rank) for cid, rank in self.conn.execute(sql, args)}

    def term_document_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """{term: number of chunks containing it}, from the FTS index's vocabulary."""
        conn = self.conn
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.forge_fts_vocab USING fts5vocab(main, chunks_fts, row)")
        out = {}
        for t in terms:  # one equality lookup per term: fts5vocab answers those from the index directly
            row = conn.execute("SELECT doc FROM temp.forge_fts_vocab WHERE term = ?", (t,)).fetchone()
            out[t] = row[0] if row else 0
        return out

    # -- symbols --------------------------------------------------------------------
    def symbol_rows(self) -> list[SymbolRow]:
        return self.conn.execute(
            "SELECT name, kind, container, path, start_line, end_line, start_col FROM symbols"
        ).fetchall()

    # -- probe ----------------------------------------------------------------------
    def probe_samples(self) -> list[tuple[str, bytes]]:
        return probe_samples(self.conn)


def probe_samples(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
    """A few (chunk id, vector) pairs Chroma should hold, for the probe."""
    with contextlib.suppress(sqlite3.Error):
        n = conn.execute("SELECT max(rowid) FROM chunks").fetchone()[0] or 0
        out: list[tuple[str, bytes]] = []
        for rowid in {1 + (n * k) // 5 for k in range(5)} if n else ():
            row = conn.execute(
                "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.text_hash = c.text_hash "
                "WHERE c.rowid >= ? LIMIT 1", (rowid,)
            ).fetchone()
            if row:
                out.append((row[0], row[1]))
        return out
    return []


def read_counts(db_path: Path) -> tuple[dict[str, int] | None, str | None]:
    """Counts and last-indexed time from an index database without opening it for writing."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None, None
    try:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("files", "chunks", "symbols")}
        row = conn.execute("SELECT value FROM meta WHERE key='last_indexed'").fetchone()
        return counts, (row[0] if row else None)
    except sqlite3.Error:
        return None, None
    finally:
        conn.close()


def read_probe_samples(db_path: Path) -> list[tuple[str, bytes]]:
    """The probe's samples, read through a read-only connection (the store stays closed)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        return probe_samples(conn)
    finally:
        conn.close()
