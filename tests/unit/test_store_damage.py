"""The one place damage met in use is judged (`indexer.store.recovery`'s assess / damage_found /
after_failure / final_error), on real SQLite errors and a real state folder."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from indexer.core.errors import (
    DiskFull,
    StateDirVanished,
    StoreBusy,
    StoreCorrupt,
    StoreRepairing,
    VectorStoreFailed,
)
from indexer.store import recovery
from indexer.store.health import Health


def _corrupt_error(tmp_path: Path) -> sqlite3.DatabaseError:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    try:
        sqlite3.connect(bad).execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        return exc
    raise AssertionError("a garbage file opened as a database")


def test_assess_tells_damage_from_failures_that_are_not_damage(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    assert recovery.assess(_corrupt_error(tmp_path), state) == "sqlite"
    assert recovery.assess(VectorStoreFailed("hnsw segment unreadable"), state) == "chroma"
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert isinstance(recovery.assess(full, state), DiskFull)
    gone = recovery.assess(sqlite3.OperationalError("unable to open database file"), tmp_path / "deleted")
    assert isinstance(gone, StateDirVanished)
    assert recovery.assess(sqlite3.IntegrityError("UNIQUE constraint failed: files.path"), state) is None


def test_damage_found_records_it_once_and_says_what_is_damaged(tmp_path: Path) -> None:
    told: list[str] = []
    err = recovery.damage_found(tmp_path, Path("/src/app"), "chroma", VectorStoreFailed("bad segment\nmore"), told.append)
    assert isinstance(err, StoreRepairing)
    assert str(err) == ("the vector store of /src/app is damaged (bad segment); it is being rebuilt from what "
                        "can be saved: try again in a moment.")
    assert told == ["the vector store of /src/app is damaged (bad segment)"]
    recovery.damage_found(tmp_path, Path("/src/app"), "chroma", VectorStoreFailed("again"))
    health = Health.load(tmp_path)
    assert health.damaged == {"chroma": "bad segment"}
    assert [e["what"] for e in health.events] == ["vector store damage found"]


def test_after_failure_repairs_damage_and_recreates_a_deleted_folder_a_limited_number_of_times() -> None:
    damaged = StoreRepairing("the index database of /x is damaged (boom); ...")
    assert recovery.after_failure(damaged, 0, 2, True) == "repair"
    assert recovery.after_failure(StoreCorrupt("bad"), 1, 2, True) == "repair"
    assert recovery.after_failure(damaged, 2, 2, True) == "fail"
    gone = StateDirVanished("gone")
    assert recovery.after_failure(gone, 0, 2, True) == "recreate"
    assert recovery.after_failure(gone, 0, 2, False) == "fail"
    assert recovery.after_failure(StoreBusy("busy"), 0, 2, True) == "fail"


def test_final_error_says_how_to_rebuild_damage_that_repairs_did_not_heal() -> None:
    final = recovery.final_error(StoreRepairing("still bad"), Path("/src/app"), 2)
    assert isinstance(final, StoreCorrupt)
    assert str(final) == ("The index of /src/app is still damaged after 2 repairs (still bad). "
                          "Run `forge-indexer index --rebuild /src/app` to rebuild it from scratch.")
    other = OSError(errno.EIO, "I/O error")
    assert recovery.final_error(other, Path("/src/app"), 2) is other
