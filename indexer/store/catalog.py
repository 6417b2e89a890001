"""The indexes under a state root: what each one is, and deleting one (`list`, `forget`).

Each workspace's index is a folder `<state root>/workspaces/<name>-<hash>[-rev-<ref>]`
(`indexer.workspace.state_dir_for`). Its workspace is read from `workspace.json` (written
when the index is opened) or `owner.json` (written while a process has it open); counts
come from the database read-only, so listing opens nothing for writing and loads no model.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import filelock

from indexer.core.errors import IndexLocked
from indexer.core.locations import workspaces_dir
from indexer.core.processes import process_alive
from indexer.store.recovery import dir_bytes

#: Files whose change time says when an index was last opened or written.
_TOUCHED = ("owner.json", "index.sqlite", "index.sqlite-wal", "health.json", "workspace.json")


@dataclass(frozen=True)
class IndexEntry:
    """One index folder and what is cheaply known about it."""

    state_dir: Path
    workspace: Path | None  # None: no record of which folder it indexes
    rev: str | None  # the folder-name form of the git ref of an `index --rev` index
    bytes: int
    files: int | None
    chunks: int | None
    last_used: float | None  # seconds since the epoch
    last_indexed: float | None
    owner_pid: int | None  # the process that has it open now, per owner.json

    @property
    def workspace_exists(self) -> bool:
        return self.workspace is not None and self.workspace.is_dir()

    def to_json(self) -> dict[str, object]:
        def iso(t: float | None) -> str | None:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None

        return {"workspace": str(self.workspace) if self.workspace else None, "rev": self.rev,
                "state_dir": str(self.state_dir), "bytes": self.bytes, "files": self.files,
                "chunks": self.chunks, "last_used": iso(self.last_used), "last_indexed": iso(self.last_indexed),
                "workspace_exists": self.workspace_exists, "in_use_by": self.owner_pid}


def _json(path: Path) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def _counts(db: Path) -> tuple[int | None, int | None, float | None]:
    if not db.is_file():
        return None, None, None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None, None, None
    try:
        files = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        row = conn.execute("SELECT value FROM meta WHERE key='last_indexed'").fetchone()
        return files, chunks, float(row[0]) if row and row[0] else None
    except (sqlite3.Error, ValueError):
        return None, None, None
    finally:
        conn.close()


def read_entry(state_dir: Path) -> IndexEntry:
    """What is known about the index in `state_dir`, without opening it for writing."""
    owner = _json(state_dir / "owner.json")
    root = _json(state_dir / "workspace.json").get("root") or owner.get("root")
    pid = owner.get("pid")
    rev = state_dir.name.partition("-rev-")[2] or None
    files, chunks, last_indexed = _counts(state_dir / "index.sqlite")
    times = []
    for name in _TOUCHED:
        with contextlib.suppress(OSError):
            times.append((state_dir / name).stat().st_mtime)
    return IndexEntry(
        state_dir=state_dir, workspace=Path(root) if isinstance(root, str) and root else None, rev=rev,
        bytes=dir_bytes(state_dir), files=files, chunks=chunks, last_used=max(times, default=None),
        last_indexed=last_indexed,
        owner_pid=pid if isinstance(pid, int) and pid != os.getpid() and process_alive(pid) else None,
    )


def list_indexes(state_root: Path) -> list[IndexEntry]:
    """Every index folder under `state_root`, most recently used first."""
    base = workspaces_dir(state_root)
    try:
        folders = [p for p in base.iterdir() if p.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = [read_entry(p) for p in folders]
    return sorted(entries, key=lambda e: -(e.last_used or 0))


def indexes_of(state_root: Path, working_tree_dir: Path, rev_dir: Path | None = None) -> list[IndexEntry]:
    """The indexes of one workspace: its working tree's `working_tree_dir` and every
    `--rev` index beside it, or only `rev_dir` when given."""
    if rev_dir is not None:
        return [read_entry(rev_dir)] if rev_dir.is_dir() else []
    prefix = working_tree_dir.name + "-rev-"
    return [e for e in list_indexes(state_root)
            if e.state_dir.name == working_tree_dir.name or e.state_dir.name.startswith(prefix)]


def delete_index(state_dir: Path) -> int:
    """Delete one index folder, holding its lock so that no process can have it open
    meanwhile (`IndexLocked` if one has); the bytes freed."""
    size = dir_bytes(state_dir)
    lock = filelock.FileLock(str(state_dir / "lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        pid = _json(state_dir / "owner.json").get("pid")
        raise IndexLocked(
            f"the index in {state_dir} is in use by another forge-indexer process"
            + (f" (pid {pid})" if isinstance(pid, int) else "")
            + ": close the editor (or stop that process) first, then try again."
        ) from None
    try:
        shutil.rmtree(state_dir)
    finally:
        with contextlib.suppress(OSError):
            lock.release()
    return size
