"""Cheap open-time health checks of an index's files, and the costly ones only when needed.

Chroma can crash the whole process (SIGSEGV) on a damaged HNSW file, and SQLite only
notices a damaged page when a query reads it. So before the store is opened:

- `health.json` in the state dir says whether the last owner closed the index cleanly
  and holds a fingerprint (size, mtime) of every Chroma file as that close left them.
  It is marked unclean when a store opens and clean again when it closes after runs that
  did not fail. Reading, comparing and rewriting it costs well under a millisecond.
- The HNSW headers are parsed and the segment files' sizes checked against them (a
  truncated or garbled file is caught without opening Chroma).
- Only if a fingerprint differs, the last stop was unclean, a run failed, or there is no
  fingerprint yet, Chroma is probed in a child process (`python -m indexer.store.health probe`),
  where a segfault costs nothing: it opens the collection and looks up a few vectors from
  our cache, which must find themselves. SQLite gets `PRAGMA quick_check` in the same cases.

A bad Chroma directory is quarantined (renamed with a timestamp, kept for inspection);
`indexer.store.recovery` rebuilds it from the SQLite vector cache.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEALTH_FILE = "health.json"
PROBE_TIMEOUT_S = 120.0
PROBE_SAMPLES = 5
_MAX_EVENTS = 20
# hnswlib's persisted header (Chroma's fork, split files): version, offsetLevel0,
# max_elements, cur_element_count, size_data_per_element, label_offset, offsetData,
# maxlevel, enterpoint_node, maxM, maxM0, M, mult, ef_construction.
_HNSW_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stamp() -> str:
    """A timestamp usable in a file name (quarantined folders, moved-aside databases)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


@dataclass
class Health:
    """The contents of `health.json` (a missing or unreadable file reads as "unknown")."""

    clean: bool | None = None  # None: never recorded (an index from before this file existed)
    chroma: dict[str, list[int]] = field(default_factory=dict)  # rel path -> [size, mtime_ns]
    events: list[dict[str, Any]] = field(default_factory=list)  # damage found and repairs made
    damaged: dict[str, str] = field(default_factory=dict)  # "sqlite"/"chroma" -> cause, found in use
    config: str | None = None  # index config hash the vectors were made with (see pipeline.config_hash)

    @classmethod
    def load(cls, state_dir: Path) -> Health:
        try:
            data = json.loads((state_dir / HEALTH_FILE).read_text())
            return cls(
                bool(data.get("clean")), dict(data.get("chroma") or {}),
                list(data.get("events") or []), dict(data.get("damaged") or {}), data.get("config"),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()

    def save(self, state_dir: Path) -> None:
        """Atomic replace, so a crash never leaves half a file (which would read as unknown)."""
        tmp = state_dir / f"{HEALTH_FILE}.tmp"
        tmp.write_text(json.dumps({
            "clean": self.clean, "chroma": self.chroma, "events": self.events[-_MAX_EVENTS:], "damaged": self.damaged,
            "config": self.config,
        }))
        os.replace(tmp, state_dir / HEALTH_FILE)

    def note(self, what: str, cause: str, **extra: Any) -> dict[str, Any]:
        event = {"at": _now(), "what": what, "cause": cause, **extra}
        self.events.append(event)
        return event


def chroma_fingerprint(chroma_dir: Path) -> dict[str, list[int]]:
    """(size, mtime_ns) of every file Chroma keeps, by path relative to its folder."""
    out: dict[str, list[int]] = {}
    if not chroma_dir.is_dir():
        return out
    for entry in os.scandir(chroma_dir):
        paths = [entry] if entry.is_file() else (list(os.scandir(entry.path)) if entry.is_dir() else [])
        for f in paths:
            if f.is_file() and not f.name.endswith(("-wal", "-shm", "-journal")):
                st = f.stat()
                out[os.path.relpath(f.path, chroma_dir)] = [st.st_size, st.st_mtime_ns]
    return out


def check_hnsw_files(chroma_dir: Path, dim: int) -> str | None:
    """Why the HNSW segment files cannot be right, or None. Reads 100 bytes per segment."""
    if not chroma_dir.is_dir():
        return None
    for seg in os.scandir(chroma_dir):
        header = Path(seg.path) / "header.bin"
        if not seg.is_dir() or not header.exists():
            continue
        try:
            raw = header.read_bytes()
            if len(raw) < _HNSW_HEADER.size:
                return f"{header} is truncated ({len(raw)} bytes)"
            (version, _off0, max_el, count, per_el, label_off, data_off, _maxlevel, _enter,
             max_m, max_m0, m, _mult, _efc) = _HNSW_HEADER.unpack_from(raw)
            if version != 1 or count > max_el or not 0 < m <= 4096 or max_m0 != 2 * max_m:
                return f"{header} is not a valid HNSW header"
            if data_off != max_m0 * 4 + 4 or label_off != data_off + dim * 4 or per_el != label_off + 8:
                return f"{header} does not describe {dim}-dimensional vectors"
            # Chroma writes either every slot or only the used ones: both are whole elements.
            data = Path(seg.path) / "data_level0.bin"
            got = data.stat().st_size if data.exists() else 0
            if got % per_el or not count * per_el <= got <= max_el * per_el:
                return f"{data} has {got} bytes, its header says {count} elements of {per_el}"
            length = Path(seg.path) / "length.bin"
            if length.exists() and not count * 4 <= length.stat().st_size <= max(max_el * 4, 4096):
                return f"{length} has {length.stat().st_size} bytes, its header says {count} elements"
        except (OSError, struct.error) as exc:
            return f"{header} cannot be read ({exc})"
    return None


@dataclass(frozen=True)
class ChromaCheck:
    """Outcome of the open-time check: `bad` is a reason to quarantine, `probe` to look closer."""

    bad: str | None = None
    probe: str | None = None


def check_chroma(chroma_dir: Path, dim: int, health: Health) -> ChromaCheck:
    """The cheap part: header and size checks, and the fingerprint of the last clean close."""
    if not chroma_dir.exists():
        return ChromaCheck()
    bad = check_hnsw_files(chroma_dir, dim)
    if bad is not None:
        return ChromaCheck(bad=bad)
    if health.clean is None:
        return ChromaCheck(probe="no health record yet")
    if not health.clean:
        return ChromaCheck(probe="the last run did not end cleanly")
    if chroma_fingerprint(chroma_dir) != health.chroma:
        return ChromaCheck(probe="its files changed since the index was last closed")
    return ChromaCheck()


def probe_chroma(chroma_dir: Path, samples: list[tuple[str, bytes]]) -> str | None:
    """Open Chroma in a child process and look up `samples`; the failure, or None.

    A child, because Chroma's native HNSW code can take the process down with it.
    """
    payload = json.dumps({"path": str(chroma_dir), "samples": [[i, v.hex()] for i, v in samples]})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "indexer.store.health", "probe"],
            input=payload, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    except subprocess.TimeoutExpired:
        return f"opening it did not finish within {PROBE_TIMEOUT_S:g} s"
    if proc.returncode < 0:
        return f"opening it crashed (signal {-proc.returncode})"
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else f"opening it failed (exit {proc.returncode})"
    return None


def quick_check(db_path: Path, *, readonly: bool = False) -> str | None:
    """`PRAGMA quick_check` on the database file: what is wrong, or None.

    `readonly` is for a look from outside the owner (`doctor`): the file is opened read-only
    and any SQLite error is the answer.
    """
    if not db_path.exists():
        return None
    try:
        # Read-write like the store's own connections (we hold the workspace lock), so a
        # WAL left by a crash is read too; quick_check itself writes nothing.
        conn = (sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) if readonly
                else sqlite3.connect(db_path, timeout=5))
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if readonly:
            return f"{type(exc).__name__}: {exc}"
        # Anything but damage (busy, read-only...) is for the normal open to report.
        return str(exc) if is_corruption(exc) else None
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows)[:300]


def _matches(exc: BaseException, errnos: tuple[int, ...], sqlite_codes: tuple[int, ...],
             phrases: tuple[str, ...]) -> bool:
    """By errno, by SQLite's primary result code, or (for wrapped errors) by message."""
    if errnos and isinstance(exc, OSError) and exc.errno in errnos:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in sqlite_codes:
        return True
    text = str(exc).lower()
    return any(p in text for p in phrases)


def is_corruption(exc: BaseException) -> bool:
    """A SQLite error that means damaged pages or a file that is not a database."""
    return isinstance(exc, sqlite3.DatabaseError) and _matches(
        exc, (), (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB),
        ("malformed", "not a database", "database corrupt"))


def is_disk_full(exc: BaseException) -> bool:
    return _matches(exc, (errno.ENOSPC, errno.EDQUOT), (sqlite3.SQLITE_FULL,),
                    ("disk is full", "no space left", "database or disk is full"))


def is_read_only(exc: BaseException) -> bool:
    return _matches(exc, (errno.EROFS, errno.EACCES, errno.EPERM), (sqlite3.SQLITE_READONLY,),
                    ("readonly database", "read-only file system", "permission denied"))


def _probe_main() -> int:
    """The child's side of `probe_chroma`: exit 0 if Chroma opens and answers correctly."""
    import numpy as np

    data = json.loads(sys.stdin.read())
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client: Any = chromadb.PersistentClient(path=data["path"], settings=ChromaSettings(anonymized_telemetry=False))
    try:
        names = {c.name for c in client.list_collections()}
        if "chunks" not in names:
            return 0  # nothing stored yet: nothing to be wrong
        col = client.get_collection("chunks", embedding_function=None)
        count = col.count()
        for cid, hexvec in data["samples"]:
            if not count:
                break
            vec = np.frombuffer(bytes.fromhex(hexvec), dtype=np.float32)
            res = col.query(query_embeddings=[vec.tolist()], n_results=min(5, count), include=["distances"])
            dists = (res.get("distances") or [[]])[0]
            if cid not in res["ids"][0] and not any(d < 1e-3 for d in dists):
                print(f"a stored vector does not find itself (chunk {cid})", file=sys.stderr)
                return 3
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return 0


if __name__ == "__main__":  # pragma: no cover - runs in the probe's child process
    if sys.argv[1:] == ["probe"]:
        try:
            sys.exit(_probe_main())
        except Exception as exc:  # one line for the parent, never a traceback
            print(f"opening it failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                  file=sys.stderr)
            sys.exit(2)
    sys.exit(f"usage: {sys.argv[0]} probe")
