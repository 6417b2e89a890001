"""Persistent state of one workspace index: SQLite (source of truth) + Chroma (vectors).

SQLite, through sqlite-utils, holds files, chunks, symbols, the FTS5 lexical index, a
vector cache keyed by chunk-text hash (so identical or moved chunks are never embedded
twice), the index config hash and a write journal. Chroma holds one vector per chunk id.

Consistency rule: a chunk exists iff its row is in SQLite. Every Chroma write is first
written to the `journal` table in the same SQLite transaction as the chunk rows, then
applied as an idempotent upsert/delete, then cleared. After a crash, `repair()` replays
the journal and reconciles Chroma's ids against SQLite's, so the two always converge.

Damaged files (not crashes) are found and healed before a store is used: see
`indexer.store.health` (checks) and `indexer.store.recovery` (quarantine, rebuild, salvage).
With `chromaUrl` the vectors live on a Chroma server instead (`indexer.store.remote`);
the journal and `repair()` work the same, and a team index never deletes shared entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from indexer.chunking import lexical
from indexer.core import testhooks
from indexer.core.errors import StoreBusy, StoreCorrupt, VectorStoreFailed
from indexer.core.protocols import Vectors
from indexer.core.types import Chunk, Symbol
from indexer.store.health import (
    Health,
    chroma_fingerprint,
    is_corruption,
    is_disk_full,
    is_read_only,
)
from indexer.store.reads import IndexReads
from indexer.store.remote import RemoteVectorStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
COLLECTION = "chunks"
_CHROMA_BATCH = 2000  # below Chroma's max batch size, large enough to amortise its overhead


def chunk_id(path: str, text_hash: str, occurrence: int, file_hash: str | None = None) -> str:
    """Stable id: the same text at the same path keeps its id when lines shift around it.

    In a team index (`file_hash` given) the id also names the file's content, so two
    versions of one file are two sets of entries in the shared collection.
    """
    key = f"{path}\0{text_hash}\0{occurrence}" + (f"\0{file_hash}" if file_hash else "")
    return hashlib.sha1(key.encode()).hexdigest()[:24]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk row as written for one file."""

    id: str
    ordinal: int
    chunk: Chunk
    text_hash: str


@dataclass(frozen=True, slots=True)
class PendingText:
    """A chunk text waiting for its vector, with what decides the model's input."""

    text_hash: str
    text: str
    path: str  # of one chunk holding it (texts start with their path: one file)
    first_line: str  # the chunk's first line of code, as in the file
    kind: str | None  # the chunk's symbol kind; None for glue and text windows
    language: str


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    sha256: str
    size: int
    mtime_ns: int
    language: str


def _is_transient(exc: sqlite3.Error) -> bool:
    """A lock or busy timeout, or an I/O error: the file is fine, trying again later helps."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "disk i/o" in text or "unable to open" in text
    )


class SqliteState(IndexReads):
    """The SQLite side. One connection per thread (SQLite objects are thread-bound);
    every connection opened is remembered so `close()` closes them all. The read queries
    search, context and symbols use come from `indexer.store.reads.IndexReads`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._conns_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._create_schema()
        except sqlite3.Error as exc:
            self.close()
            if is_disk_full(exc) or is_read_only(exc):
                raise  # not damage: `indexer.store.recovery.translate` says what to do
            if _is_transient(exc) and not is_corruption(exc):
                raise StoreBusy(f"The index database {db_path} is busy ({exc}); retrying.") from exc
            raise StoreCorrupt(
                f"The index database {db_path} is unreadable ({exc}). Delete the folder "
                f"{db_path.parent} or run `forge-indexer index --rebuild` to rebuild it."
            ) from exc

    # -- connections ----------------------------------------------------------------
    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise StoreBusy(f"The index database {self.db_path} is closed (the index is reopening).")
            conn = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            extra = testhooks.extra_pages()
            if extra is not None:  # tests: SQLite itself fails a write with SQLITE_FULL
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {int(pages) + extra}")
            db = sqlite_utils.Database(conn)
            self._local.db = db
            with self._conns_lock:
                self._conns.append(conn)
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; serialised across threads of this process."""
        with self._write_lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()

    def close(self) -> None:
        """Close every thread's connection (a thread that uses this object later gets StoreBusy)."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def _create_schema(self) -> None:
        db = self.db
        db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
        db.table("files").create(
            {"path": str, "sha256": str, "size": int, "mtime_ns": int, "language": str,
             "chunks": int, "indexed_at": float},
            pk="path", if_not_exists=True,
        )
        db.table("chunks").create(
            {"id": str, "path": str, "ordinal": int, "start_line": int, "end_line": int,
             "symbol": str, "kind": str, "language": str, "text_hash": str, "tokens": int,
             "text": str, "body": str},
            pk="id", if_not_exists=True,
        )
        db.table("chunks").create_index(["path"], if_not_exists=True)
        db.table("chunks").create_index(["text_hash"], if_not_exists=True)
        db.table("vectors").create({"text_hash": str, "vector": bytes}, pk="text_hash", if_not_exists=True)
        db.table("symbols").create(
            {"id": int, "path": str, "name": str, "kind": str, "container": str,
             "start_line": int, "end_line": int, "start_col": int},
            pk="id", if_not_exists=True,
        )
        db.table("symbols").create_index(["path"], if_not_exists=True)
        db.table("journal").create({"seq": int, "op": str, "chunk_id": str}, pk="seq", if_not_exists=True)
        # rowid = chunks.rowid; `terms` is identifier-split text (see indexer.chunking.lexical).
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
            "symbol, path, terms, tokenize='unicode61 remove_diacritics 2')"
        )
        self.conn.commit()

    # -- meta -----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.conn).execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )
        if conn is None:
            self.conn.commit()

    def check_integrity(self) -> None:
        """`PRAGMA quick_check` (tens of ms per 10k chunks): raises like a read of a bad page."""
        rows = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        if rows != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed ({'; '.join(map(str, rows))[:300]})")

    def delete_meta(self, key: str) -> None:
        self.conn.execute("DELETE FROM meta WHERE key=?", (key,))
        self.conn.commit()

    def reset(self) -> None:
        """Forget everything indexed (used when the index config changes)."""
        with self.transaction() as conn:
            for table in ("files", "chunks", "vectors", "symbols", "journal", "chunks_fts"):
                conn.execute(f"DELETE FROM {table}")

    # -- reads ----------------------------------------------------------------------
    def file_records(self, paths: Sequence[str] | None = None) -> dict[str, FileRecord]:
        """Every indexed file's record, or only those of `paths`."""
        q = "SELECT path, sha256, size, mtime_ns, language FROM files"
        if paths is None:
            return {r[0]: FileRecord(*r) for r in self.conn.execute(q)}
        out: dict[str, FileRecord] = {}
        batch = list(dict.fromkeys(paths))
        for i in range(0, len(batch), 500):
            part = batch[i : i + 500]
            rows = self.conn.execute(f"{q} WHERE path IN ({','.join('?' * len(part))})", part)
            out.update((r[0], FileRecord(*r)) for r in rows)
        return out

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM chunks")}

    def known_vectors(self, hashes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        batch = list(dict.fromkeys(hashes))
        for i in range(0, len(batch), 500):
            part = batch[i : i + 500]
            q = f"SELECT text_hash FROM vectors WHERE text_hash IN ({','.join('?' * len(part))})"
            found.update(r[0] for r in self.conn.execute(q, part))
        return found

    def vectors_for_chunks(
        self, ids: Sequence[str], with_file_hash: bool = False
    ) -> tuple[list[str], list[Vectors], list[dict[str, Any]]]:
        """(ids, vectors, chroma metadatas) for chunk ids that exist and have a cached vector.

        `with_file_hash` adds the sha256 of the file's bytes (the team index's possession key).
        """
        out_ids: list[str] = []
        vecs: list[Vectors] = []
        metas: list[dict[str, Any]] = []
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            q = (
                "SELECT c.id, v.vector, c.path, c.language, f.sha256, c.text_hash FROM chunks c JOIN vectors v "
                "ON v.text_hash = c.text_hash LEFT JOIN files f ON f.path = c.path "
                f"WHERE c.id IN ({','.join('?' * len(part))})"
            )
            for cid, blob, path, language, sha, th in self.conn.execute(q, part):
                out_ids.append(cid)
                vecs.append(np.frombuffer(blob, dtype=np.float32))
                meta = {"path": path, "language": language}
                if with_file_hash:  # a team index: the possession key, and the adoption key
                    meta["file_hash"] = sha or ""
                    meta["text_hash"] = th
                metas.append(meta)
        return out_ids, vecs, metas

    def chunks_without_vector(self) -> list[tuple[str, str]]:
        """(text_hash, text) of chunks whose vector is not cached (should not happen; repaired)."""
        q = (
            "SELECT DISTINCT c.text_hash, c.text FROM chunks c "
            "LEFT JOIN vectors v ON v.text_hash = c.text_hash WHERE v.text_hash IS NULL"
        )
        return [(r[0], r[1]) for r in self.conn.execute(q)]

    def pending_texts(
        self, limit: int, paths: Sequence[str] | None = None, after_rowid: int = 0
    ) -> tuple[list[PendingText], int]:
        """Up to `limit` distinct texts of chunks with no vector yet, in
        file order after `after_rowid`, and the rowid to continue after.

        `paths` limits them to those files (a save embeds its own chunks, not the backlog).
        A rowid-ordered scan with a primary-key probe per row, so a page costs the same at
        the start and at the end of a 100k-chunk backlog when the caller keeps its place.
        """
        where = "c.rowid > ? AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.text_hash = c.text_hash)"
        args: list[Any] = [after_rowid]
        order = "c.rowid"
        if paths is not None:
            if not paths:
                return [], after_rowid
            where += f" AND c.path IN ({','.join('?' * len(paths))})"
            args += list(paths)
            order = "+c.rowid"  # '+': sort the few rows the path index finds, never scan by rowid
        first_line = "substr(c.body, 1, instr(c.body || char(10), char(10)) - 1)"
        q = (f"SELECT c.rowid, c.text_hash, c.text, c.path, {first_line}, c.kind, c.language FROM chunks c "
             f"WHERE {where} ORDER BY {order} LIMIT ?")
        out: dict[str, PendingText] = {}
        last = after_rowid
        for rowid, h, text, path, first, kind, language in self.conn.execute(q, [*args, limit * 2]):
            if len(out) >= limit:
                break
            last = rowid
            out.setdefault(h, PendingText(h, text, path, first or "", kind or None, language or ""))
        return list(out.values()), last

    def pending_counts(self) -> tuple[int, int]:
        """(chunks with no vector yet, distinct texts among them): the embedding backlog."""
        row = self.conn.execute(
            "SELECT count(*), count(DISTINCT c.text_hash) FROM chunks c "
            "LEFT JOIN vectors v ON v.text_hash = c.text_hash WHERE v.text_hash IS NULL"
        ).fetchone()
        return int(row[0]), int(row[1])

    def add_vectors(self, hashes: Sequence[str], vectors: Vectors) -> int:
        """Cache new vectors and journal the Chroma upserts of every chunk that uses them.

        One transaction, so a crash leaves either nothing or vectors plus their journal
        entries (which `IndexStore.apply_journal` / `repair` then push to Chroma).
        Returns the number of chunks that got a vector.
        """
        with self.transaction() as conn:
            self._insert_vectors(conn, hashes, vectors)
            ids: list[str] = []
            batch = list(hashes)
            for i in range(0, len(batch), 500):
                part = batch[i : i + 500]
                q = f"SELECT id FROM chunks WHERE text_hash IN ({','.join('?' * len(part))})"
                ids.extend(r[0] for r in conn.execute(q, part))
            self._journal(conn, ids, [])
        testhooks.crash_point("after-vector-cache")
        return len(ids)

    def counts(self) -> dict[str, int]:
        c = self.conn
        return {
            "files": c.execute("SELECT count(*) FROM files").fetchone()[0],
            "chunks": c.execute("SELECT count(*) FROM chunks").fetchone()[0],
            "symbols": c.execute("SELECT count(*) FROM symbols").fetchone()[0],
        }

    # -- writes ---------------------------------------------------------------------
    def put_vectors(self, hashes: Sequence[str], vectors: Vectors) -> None:
        """Cache vectors only (no Chroma write is journaled; `add_vectors` does both)."""
        with self.transaction() as conn:
            self._insert_vectors(conn, hashes, vectors)

    def put_vector_bytes(self, rows: Sequence[tuple[str, bytes]]) -> None:
        """Cache (text hash, float32 bytes) pairs as they are (vectors salvaged from a damaged copy)."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO vectors(text_hash, vector) VALUES(?, ?)", rows)

    def _insert_vectors(self, conn: sqlite3.Connection, hashes: Sequence[str], vectors: Vectors) -> None:
        rows = [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in zip(hashes, vectors, strict=True)]
        conn.executemany("INSERT OR REPLACE INTO vectors(text_hash, vector) VALUES(?, ?)", rows)
        # Search caches matrices of stored vectors per index version (indexer.search.query): new
        # vectors are a new version, even when no file changed (phase 2, repair).
        self.set_meta("vectors_at", str(time.time_ns()), conn)

    def replace_file(
        self,
        conn: sqlite3.Connection,
        record: FileRecord,
        chunks: Sequence[StoredChunk],
        symbols: Sequence[Symbol],
    ) -> tuple[list[str], list[str]]:
        """Swap one file's rows inside an open transaction; journal the Chroma changes.

        Returns (ids to upsert into Chroma, ids to delete from Chroma). Unchanged chunks
        keep their id and need no Chroma write at all.
        """
        old_ids = {r[0] for r in conn.execute("SELECT id FROM chunks WHERE path=?", (record.path,))}
        new_ids = [c.id for c in chunks]
        to_upsert = [i for i in new_ids if i not in old_ids]
        to_delete = sorted(old_ids - set(new_ids))
        self._delete_file_rows(conn, record.path)
        conn.executemany(
            "INSERT INTO chunks(id, path, ordinal, start_line, end_line, symbol, kind, language, "
            "text_hash, tokens, text, body) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (c.id, record.path, c.ordinal, c.chunk.start_line, c.chunk.end_line, c.chunk.symbol,
                 c.chunk.kind, record.language, c.text_hash, c.chunk.tokens, c.chunk.text, c.chunk.body)
                for c in chunks
            ],
        )
        if chunks:
            rowids = dict(
                conn.execute(
                    f"SELECT id, rowid FROM chunks WHERE id IN ({','.join('?' * len(new_ids))})", new_ids
                ).fetchall()
            )
            conn.executemany(
                "INSERT INTO chunks_fts(rowid, symbol, path, terms) VALUES(?,?,?,?)",
                [
                    (rowids[c.id], lexical.index_text(c.chunk.symbol or ""),
                     lexical.index_text(record.path), lexical.index_text(c.chunk.text))
                    for c in chunks
                ],
            )
        conn.executemany(
            "INSERT INTO symbols(path, name, kind, container, start_line, end_line, start_col) "
            "VALUES(?,?,?,?,?,?,?)",
            [(record.path, s.name, s.kind, s.container, s.start_line, s.end_line, s.start_col) for s in symbols],
        )
        conn.execute(
            "INSERT OR REPLACE INTO files(path, sha256, size, mtime_ns, language, chunks, indexed_at) "
            "VALUES(?,?,?,?,?,?,?)",
            (record.path, record.sha256, record.size, record.mtime_ns, record.language, len(chunks), time.time()),
        )
        self._journal(conn, to_upsert, to_delete)
        return to_upsert, to_delete

    def touch_file(self, conn: sqlite3.Connection, path: str, size: int, mtime_ns: int) -> None:
        """Content unchanged but stat changed (e.g. `touch`, checkout): remember the new stat."""
        conn.execute("UPDATE files SET size=?, mtime_ns=? WHERE path=?", (size, mtime_ns, path))

    def remove_file(self, conn: sqlite3.Connection, path: str) -> list[str]:
        """Drop a file's rows inside an open transaction; returns chunk ids to delete in Chroma."""
        ids = sorted(r[0] for r in conn.execute("SELECT id FROM chunks WHERE path=?", (path,)))
        self._delete_file_rows(conn, path)
        conn.execute("DELETE FROM files WHERE path=?", (path,))
        self._journal(conn, [], ids)
        return ids

    def _delete_file_rows(self, conn: sqlite3.Connection, path: str) -> None:
        conn.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE path=?)", (path,))
        conn.execute("DELETE FROM chunks WHERE path=?", (path,))
        conn.execute("DELETE FROM symbols WHERE path=?", (path,))

    def _journal(self, conn: sqlite3.Connection, upserts: Sequence[str], deletes: Sequence[str]) -> None:
        conn.executemany(
            "INSERT INTO journal(op, chunk_id) VALUES(?, ?)",
            [("upsert", i) for i in upserts] + [("delete", i) for i in deletes],
        )

    def pending_journal(self) -> tuple[list[str], list[str], int]:
        """(ids to upsert, ids to delete, highest seq) from the journal, last op per id wins."""
        last: dict[str, str] = {}
        top = 0
        for seq, op, cid in self.conn.execute("SELECT seq, op, chunk_id FROM journal ORDER BY seq"):
            last[cid] = op
            top = seq
        ups = [i for i, op in last.items() if op == "upsert"]
        dels = [i for i, op in last.items() if op == "delete"]
        return ups, dels, top

    def clear_journal(self, up_to_seq: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM journal WHERE seq <= ?", (up_to_seq,))

    def gc_vectors(self) -> int:
        """Drop cached vectors no chunk uses any more."""
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM vectors WHERE text_hash NOT IN (SELECT DISTINCT text_hash FROM chunks)"
            )
            return cur.rowcount


class VectorStore:
    """The Chroma side: one collection of chunk vectors, written only through the journal.

    Embedded (PersistentClient); `indexer.store.remote.RemoteVectorStore` is the same
    interface on a Chroma server.
    """

    shared = False  # a team index (only a remote store can be one)

    def __init__(self, path: Path, dim: int) -> None:
        # Imported here: chromadb is slow to import and only the owner process needs it.
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.path = path
        self.dim = dim
        # Vectors in the collection, recounted after each of our writes (only this process
        # writes), so status and queries never ask Chroma: that costs ~14 ms at 100k.
        self.known_count = 0
        self._client: Any = None
        try:
            self._client = chromadb.PersistentClient(
                path=str(path),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
            )
            self._collection = self._open_collection()
            self.known_count = self.count()
        except Exception as exc:  # chromadb raises many types for a broken directory
            self.close()
            raise StoreCorrupt(
                f"The vector store {path} cannot be opened ({exc}). Delete the folder {path} "
                "or run `forge-indexer index --rebuild` to rebuild it."
            ) from exc

    def close(self) -> None:
        """Release Chroma's resources (its SQLite handles and HNSW segments) for this path.

        `Client.close()` drops this client's reference to the system Chroma shares per
        path and stops it with the last one; other workspaces' clients are untouched.
        """
        client: Any = getattr(self, "_client", None)
        self._client = None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.close()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Chroma raises many types; one that is not a full disk marks the store damaged."""
        try:
            yield
        except Exception as exc:
            if is_disk_full(exc) or isinstance(exc, StoreBusy | StoreCorrupt):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise VectorStoreFailed(f"The vector store {self.path} failed ({first}).") from exc

    def _open_collection(self) -> Any:
        # embedding_function=None: we pass vectors ourselves; Chroma must never fetch a model.
        return self._client.get_or_create_collection(
            COLLECTION,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"dim": self.dim},
        )

    def reset(self) -> None:
        with contextlib.suppress(Exception):
            self._client.delete_collection(COLLECTION)
        self._collection = self._open_collection()
        self.known_count = 0

    def count(self) -> int:
        with self._guard():
            return int(self._collection.count())

    def all_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            with self._guard():
                got = self._collection.get(include=[], limit=10_000, offset=offset)
            batch = got["ids"]
            ids.update(batch)
            if len(batch) < 10_000:
                return ids
            offset += len(batch)

    def upsert(self, ids: Sequence[str], vectors: Sequence[Vectors], metadatas: Sequence[dict[str, Any]]) -> None:
        for i in range(0, len(ids), _CHROMA_BATCH):
            with self._guard():
                self._collection.upsert(
                    ids=list(ids[i : i + _CHROMA_BATCH]),
                    embeddings=np.vstack(vectors[i : i + _CHROMA_BATCH]),
                    metadatas=list(metadatas[i : i + _CHROMA_BATCH]),
                )
        self.known_count = self.count()

    def delete(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), _CHROMA_BATCH):
            with self._guard():
                self._collection.delete(ids=list(ids[i : i + _CHROMA_BATCH]))
        self.known_count = self.count()

    def embeddings(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vectors of `ids` (those Chroma has)."""
        with self._guard():
            got = self._collection.get(ids=list(ids), include=["embeddings"])
        embs = got.get("embeddings")
        if embs is None:
            return {}
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], embs, strict=False)}

    def query(
        self, vector: Vectors, n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first."""
        if self.known_count == 0:
            return []
        with self._guard():
            res = self._collection.query(
                query_embeddings=[vector.tolist()], n_results=min(n, self.known_count), where=where,
                include=["distances"],
            )
        ids = res["ids"][0]
        dists = (res.get("distances") or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=False)]


class IndexStore:
    """SQLite + Chroma together, with the journal protocol and crash repair between them."""

    def __init__(self, state_dir: Path, dim: int) -> None:
        """Open without health checks (tests of the journal); workspaces use
        `indexer.store.recovery.open_checked`, which checks, heals and then calls `from_parts`."""
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.sql = SqliteState(state_dir / "index.sqlite")
        try:
            self.vectors = VectorStore(state_dir / "chroma", dim)
        except BaseException:
            self.sql.close()
            raise

    vectors: VectorStore | RemoteVectorStore

    @classmethod
    def from_parts(cls, state_dir: Path, sql: SqliteState, vectors: VectorStore | RemoteVectorStore) -> IndexStore:
        store = cls.__new__(cls)
        store.state_dir, store.sql, store.vectors = state_dir, sql, vectors
        return store

    @property
    def shared(self) -> bool:
        """A team index: a shared server collection, entries keyed by file content too."""
        return self.vectors.shared

    def apply_journal(self) -> tuple[int, int]:
        """Push pending journal entries to Chroma (idempotent), then clear them.

        In a team index deletes are not sent (`RemoteVectorStore.delete` is a no-op there).
        """
        ups, dels, top = self.sql.pending_journal()
        if not top:
            return 0, 0
        if dels:
            self.vectors.delete(dels)
        if ups:
            ids, vecs, metas = self.sql.vectors_for_chunks(ups, with_file_hash=self.shared)
            if ids:
                self.vectors.upsert(ids, vecs, metas)
        testhooks.crash_point("after-chroma-apply")
        self.sql.clear_journal(top)
        return len(ups), len(dels)

    def harvest_from_chroma(self, paths: Sequence[str] | None = None) -> int:
        """Cache the vectors Chroma holds for chunks whose text has none cached.

        After the SQLite file was rebuilt, chunk ids come back the same (they derive from
        path and text), so Chroma's vectors are those texts' vectors: reusing them means
        only what is truly lost is embedded again. Returns the number of texts recovered.
        `paths` limits it to those files' chunks.
        """
        q = (
            "SELECT c.id, c.text_hash FROM chunks c "
            "WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.text_hash = c.text_hash)"
        )
        if paths is None:
            wanted = dict(self.sql.conn.execute(q).fetchall())
        else:
            wanted = {}
            plist = list(dict.fromkeys(paths))
            for i in range(0, len(plist), 500):
                part = plist[i : i + 500]
                wanted.update(self.sql.conn.execute(
                    f"{q} AND c.path IN ({','.join('?' * len(part))})", part).fetchall())
        got = 0
        ids = list(wanted)
        for i in range(0, len(ids), _CHROMA_BATCH):
            found = self.vectors.embeddings(ids[i : i + _CHROMA_BATCH])
            hashes: dict[str, Vectors] = {}
            for cid, vec in found.items():
                if vec.shape == (self.vectors.dim,):
                    hashes.setdefault(wanted[cid], vec)
            if hashes:
                self.sql.put_vectors(list(hashes), np.stack(list(hashes.values())))
                got += len(hashes)
        return got

    def adopt_shared(self, paths: Sequence[str] | None = None) -> int:
        """Team index: cache the vectors other machines already stored for the texts of our
        chunks that have none yet (looked up by text hash, so a function unchanged in a file
        that changed elsewhere is found too); only what nobody stored is then embedded.

        Our chunks using an adopted text are journaled for upsert like `add_vectors` does,
        except those whose id the server already holds (same file content: nothing to write).
        Returns the number of texts adopted. A no-op for a private store.
        """
        vectors = self.vectors
        if not isinstance(vectors, RemoteVectorStore) or not vectors.shared:
            return 0
        q = (
            "SELECT c.id, c.text_hash FROM chunks c "
            "WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.text_hash = c.text_hash)"
        )
        wanted: dict[str, str] = {}
        if paths is None:
            wanted.update(self.sql.conn.execute(q).fetchall())
        else:
            plist = list(dict.fromkeys(paths))
            for i in range(0, len(plist), 500):
                part = plist[i : i + 500]
                wanted.update(self.sql.conn.execute(
                    f"{q} AND c.path IN ({','.join('?' * len(part))})", part).fetchall())
        if not wanted:
            return 0
        found = vectors.vectors_by_text(sorted(set(wanted.values())))
        found = {h: v for h, v in found.items() if v.shape == (vectors.dim,)}
        if not found:
            return 0
        users = [cid for cid, h in wanted.items() if h in found]
        todo = sorted(set(users) - vectors.existing(users))
        with self.sql.transaction() as conn:
            self.sql._insert_vectors(conn, list(found), np.stack(list(found.values())))
            self.sql._journal(conn, todo, [])
        self.apply_journal()
        return len(found)

    def repair(self, *, keep_orphans: bool = False) -> dict[str, int]:
        """Make Chroma agree with SQLite after a crash: replay the journal, then reconcile ids.

        `keep_orphans` leaves Chroma's extra vectors alone: while a rebuilt SQLite file is
        being refilled they are not orphans but vectors waiting to be harvested.
        """
        replayed_up, replayed_del = self.apply_journal()
        sql_ids = self.sql.all_chunk_ids()
        if isinstance(self.vectors, RemoteVectorStore) and self.vectors.shared:
            # The shared collection holds every machine's entries: none is an orphan of
            # ours, and only our own ids are looked up (never the whole collection).
            orphans: list[str] = []
            missing = sorted(sql_ids - self.vectors.existing(sorted(sql_ids)))
        else:
            chroma_ids = self.vectors.all_ids()
            orphans = [] if keep_orphans else sorted(chroma_ids - sql_ids)
            missing = sorted(sql_ids - chroma_ids)
        if orphans:
            self.vectors.delete(orphans)
        restored = 0
        if missing:
            ids, vecs, metas = self.sql.vectors_for_chunks(missing, with_file_hash=self.shared)
            if ids:
                self.vectors.upsert(ids, vecs, metas)
            restored = len(ids)
        out = {
            "journal_upserts": replayed_up,
            "journal_deletes": replayed_del,
            "orphan_vectors_deleted": len(orphans),
            "missing_vectors_restored": restored,
        }
        if any(out.values()):
            log.info("index repaired: %s", json.dumps(out))
        return {k: v for k, v in out.items() if v}

    def close(self, *, clean: bool = False) -> None:
        """Close both sides. `clean` (no run failed) records the Chroma files' fingerprint in
        `health.json`, so the next open can trust them without probing (`indexer.store.health`)."""
        self.sql.close()
        self.vectors.close()
        if clean:
            with contextlib.suppress(OSError):
                health = Health.load(self.state_dir)
                if not health.damaged:
                    health.clean = True
                    health.chroma = chroma_fingerprint(self.state_dir / "chroma")
                    health.save(self.state_dir)
