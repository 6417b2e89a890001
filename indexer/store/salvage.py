"""Reading what can still be read from a damaged index database.

`indexer.store.recovery` decides when a database is moved aside and rebuilt; the queries that
read the damaged copy (its config hash, its cached vectors, page by page around damage)
live here with the rest of the schema's SQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SALVAGE_WINDOW = 256


def open_damaged(path: Path) -> sqlite3.Connection:
    """A read-only connection to a database moved aside (it is never written again)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def damaged_config_hash(conn: sqlite3.Connection) -> str | None:
    """The config hash a damaged database was built with; None when unreadable."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='config_hash'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def readable_vectors(conn: sqlite3.Connection) -> Iterator[tuple[str, bytes]]:
    """(text hash, vector bytes) of every cached vector that can still be read."""
    return _tolerant_rows(conn, "SELECT text_hash, vector FROM vectors WHERE rowid BETWEEN ? AND ?")


def _tolerant_rows(conn: sqlite3.Connection, sql_window: str) -> Iterator[tuple[str, bytes]]:
    """Rows of a rowid table read window by window; windows on damaged pages are read row
    by row, and rows that cannot be read are skipped."""
    try:
        top = conn.execute("SELECT max(rowid) FROM vectors").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 1 << 22  # the table's root is unreadable: walk a generous rowid range
    start = 0
    empty_run = 0
    while start <= top and empty_run < 4096:
        end = start + _SALVAGE_WINDOW - 1
        try:
            rows = conn.execute(sql_window, (start, end)).fetchall()
        except sqlite3.DatabaseError:
            rows = []
            for rid in range(start, end + 1):
                with contextlib.suppress(sqlite3.DatabaseError):
                    rows.extend(conn.execute(sql_window, (rid, rid)).fetchall())
        empty_run = 0 if rows else empty_run + 1
        yield from rows
        start = end + 1
