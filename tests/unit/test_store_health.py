"""Open-time health checks, failure classification and the test hooks, on real files,
real SQLite and real Chroma (arbitrary vectors, no model)."""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.core.errors import DiskFull, StateDirUnavailable
from indexer.store import health, recovery
from indexer.store.health import (
    Health,
    check_chroma,
    check_hnsw_files,
    is_corruption,
    is_disk_full,
    is_read_only,
)
from indexer.store.index import IndexStore

DIM = 8


def write_header(seg: Path, *, count: int = 10, max_el: int = 16, dim: int = DIM, version: int = 1) -> None:
    """An hnswlib header as Chroma writes it, and data/length files that match it."""
    max_m, max_m0 = 16, 32
    data_off = max_m0 * 4 + 4
    label_off = data_off + dim * 4
    per_el = label_off + 8
    seg.mkdir(parents=True, exist_ok=True)
    (seg / "header.bin").write_bytes(
        health._HNSW_HEADER.pack(version, 0, max_el, count, per_el, label_off, data_off, 0, 0, max_m, max_m0, 16, 0.36, 100)
    )
    (seg / "data_level0.bin").write_bytes(b"\0" * (max_el * per_el))
    (seg / "length.bin").write_bytes(b"\0" * (max_el * 4))


def test_a_consistent_hnsw_segment_passes(tmp_path: Path) -> None:
    write_header(tmp_path / "chroma" / "seg")
    assert check_hnsw_files(tmp_path / "chroma", DIM) is None


def test_truncated_data_and_garbled_headers_are_caught_without_opening_chroma(tmp_path: Path) -> None:
    seg = tmp_path / "chroma" / "seg"
    write_header(seg)
    os.truncate(seg / "data_level0.bin", 100)
    assert "data_level0.bin has 100 bytes" in (check_hnsw_files(tmp_path / "chroma", DIM) or "")
    write_header(seg)
    (seg / "header.bin").write_bytes(os.urandom(100))
    assert check_hnsw_files(tmp_path / "chroma", DIM) is not None
    write_header(seg, dim=DIM * 2)
    assert "8-dimensional" in (check_hnsw_files(tmp_path / "chroma", DIM) or "")
    (seg / "header.bin").write_bytes(b"\1\0")
    assert "truncated" in (check_hnsw_files(tmp_path / "chroma", DIM) or "")


def test_fingerprint_decides_whether_to_probe(tmp_path: Path) -> None:
    chroma = tmp_path / "chroma"
    write_header(chroma / "seg")
    assert check_chroma(chroma, DIM, Health()).probe == "no health record yet"
    clean = Health(clean=True, chroma=health.chroma_fingerprint(chroma))
    assert check_chroma(chroma, DIM, clean) == health.ChromaCheck()
    assert check_chroma(chroma, DIM, Health(clean=False, chroma=clean.chroma)).probe
    data = chroma / "seg" / "data_level0.bin"
    with data.open("r+b") as f:  # same size, new bytes: only the fingerprint sees it
        f.write(os.urandom(64))
    os.utime(data, ns=(1, 1))
    assert check_chroma(chroma, DIM, clean).probe == "its files changed since the index was last closed"


def test_health_file_round_trips_and_an_unreadable_one_reads_as_unknown(tmp_path: Path) -> None:
    h = Health(clean=True, chroma={"a": [1, 2]}, config="abc")
    h.note("vector store quarantined", "a cause")
    h.save(tmp_path)
    back = Health.load(tmp_path)
    assert back.clean and back.chroma == {"a": [1, 2]} and back.config == "abc" and back.events[0]["cause"] == "a cause"
    (tmp_path / health.HEALTH_FILE).write_text("{not json")
    assert Health.load(tmp_path).clean is None


def test_failures_are_classified() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(full) and is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_read_only(OSError(errno.EROFS, "Read-only file system"))
    assert is_read_only(sqlite3.OperationalError("attempt to write a readonly database"))
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert not is_corruption(sqlite3.OperationalError("database is locked"))


def test_translate_gives_the_one_line_messages(tmp_path: Path) -> None:
    err = recovery.translate(OSError(errno.ENOSPC, "No space left on device"), tmp_path, need_bytes=5 << 20)
    assert isinstance(err, DiskFull)
    assert str(err).startswith("disk full: ") and f"MB free in {tmp_path}, need about 5 MB" in str(err)
    ro = recovery.translate(OSError(errno.EROFS, "Read-only file system"), tmp_path)
    assert isinstance(ro, StateDirUnavailable) and "--state-dir" in str(ro)
    gone = recovery.translate(OSError(errno.ENOENT, "gone"), tmp_path / "missing")
    assert isinstance(gone, StateDirUnavailable) and "was deleted" in str(gone)


def test_quick_check_sees_damaged_pages(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t(a TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _ in range(2000)])
    conn.close()
    assert health.quick_check(db) is None
    with db.open("r+b") as f:
        f.seek(db.stat().st_size // 2)
        f.write(os.urandom(64 * 1024))
    assert health.quick_check(db) is not None


def test_salvage_reads_what_it_can_from_a_damaged_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = IndexStore(state, DIM)
    vecs = np.random.default_rng(0).standard_normal((3000, DIM)).astype(np.float32)
    store.sql.put_vectors([f"h{i}" for i in range(3000)], vecs)
    store.sql.set_meta("config_hash", "cfg")
    store.close()
    db = state / "index.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db.open("r+b") as f:
        f.seek(db.stat().st_size // 2)
        f.write(os.urandom(16 * 1024))
    h = Health()
    sql = recovery.rebuild_sqlite(state, "test", "cfg", DIM, h)
    saved = sql.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
    assert 2000 < saved < 3000  # the damaged pages' rows are lost, every other row is kept
    assert sql.get_meta("heal") == "sqlite" and h.events[-1]["vectors_salvaged"] == saved
    assert list(state.glob("index.damaged-*.sqlite"))
    sql.close()


def test_probe_finds_a_damaged_hnsw_file_in_a_child_and_passes_a_healthy_one(tmp_path: Path) -> None:
    """Chroma writes its HNSW files every 1,000 writes: 1,200 vectors make real ones."""
    store = IndexStore(tmp_path / "state", DIM)
    vecs = np.random.default_rng(1).standard_normal((1200, DIM)).astype(np.float32)
    ids = [f"c{i}" for i in range(1200)]
    store.vectors.upsert(ids, list(vecs), [{"path": "p", "language": "x"}] * 1200)
    store.close()
    chroma = tmp_path / "state" / "chroma"
    samples = [(ids[i], vecs[i].tobytes()) for i in (0, 600, 1199)]
    assert check_hnsw_files(chroma, DIM) is None
    assert health.probe_chroma(chroma, samples) is None
    (data,) = chroma.glob("*/data_level0.bin")
    with data.open("r+b") as f:
        f.write(os.urandom(data.stat().st_size))
    found = health.probe_chroma(chroma, samples)
    assert found is not None and "\n" not in found  # one line, whatever the child died of


def test_crash_hook_is_inert_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.core import testhooks

    monkeypatch.delenv(testhooks.CRASH_ENV, raising=False)
    testhooks.crash_point("after-sqlite-commit")  # nothing happens
    code = (
        "from indexer.core import testhooks\n"
        "testhooks.crash_point('after-vector-cache')\n"
        "testhooks.crash_point('after-vector-cache')\n"
        "print('survived')\n"
    )
    env = {**os.environ, testhooks.CRASH_ENV: "after-vector-cache:2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == testhooks.CRASH_EXIT and "survived" not in proc.stdout


def test_struct_layout_matches_hnswlib() -> None:
    assert health._HNSW_HEADER.size == 100 == struct.calcsize("<iQQQQQQiIQQQdQ")
