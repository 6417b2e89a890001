"""Workspace roots: one `RootState` per folder the client opened, and URI → root lookup."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from indexer.core.settings import Settings
from indexer.core.types import Progress
from server.uris import path_to_uri, uri_to_path
from server.watch import ChangeBatcher, PathFilter, WorkspaceWatcher

if TYPE_CHECKING:
    from indexer.core.types import IndexSummary
    from indexer.core.workspace_api import IndexingWorkspace
    from indexer.workspace import CancelToken
    from server.progress import IndexProgress

log = logging.getLogger(__name__)

State = Literal["pending", "indexing", "retrying", "idle", "error"]


@dataclass(eq=False)
class RootState:
    """Everything the server keeps for one workspace folder."""

    uri: str
    path: Path
    name: str
    settings: Settings
    workspace: IndexingWorkspace | None = None
    state: State = "pending"
    last_error: str | None = None
    last_indexed: float | None = None
    files_total: int | None = None  # indexable files found by the last full scan
    files_done: int = 0
    chunks_total: int | None = None
    chunks_embedded: int = 0  # embedding backlog worked off by the running full scan
    chunks_to_embed: int | None = None  # its size when the embedding began (None: not yet)
    complete: bool = False  # a full scan has finished since the folder was opened
    batcher: ChangeBatcher | None = None
    filter: PathFilter | None = None
    watcher: WorkspaceWatcher | None = None
    index_cancel: CancelToken | None = None  # the running full index, if any
    progress: IndexProgress | None = None  # its progress bar, across its "full" and "embed" jobs
    run_summary: IndexSummary | None = None  # what it did so far
    scan_started: float = 0.0  # time.monotonic() when it began
    open_attempts: int = 0  # failed attempts to open the index in a row (backoff)
    repairing: bool = False  # a reopen that heals damage is queued
    repair_attempts: int = 0  # repairs since the last full scan that finished
    retry_timer: threading.Timer | None = None
    next_reconcile: float | None = None  # time.monotonic() of the next periodic reconcile
    reconcile_every: int = 0  # the interval it was scheduled with (a settings change reschedules)
    #: New files the last reconcile reported that are still not indexed (binary, ...): (size,
    #: mtime_ns) by path, so they are not reported again while unchanged.
    reconcile_seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rel(self, path: Path) -> str | None:
        """`path` relative to this root (POSIX), or None if it is outside."""
        try:
            return path.resolve().relative_to(self.path).as_posix()
        except ValueError:
            return None

    def uri_of(self, rel: str) -> str:
        return path_to_uri(self.path / rel)

    def note_progress(self, p: Progress) -> None:
        if p.phase == "discover":
            return
        if p.phase == "embed":
            # Each embedding slice reports (done in this slice, backlog when it began).
            if self.chunks_to_embed is None:
                self.chunks_to_embed = p.chunks_total
            self.chunks_embedded = max(0, self.chunks_to_embed - (p.chunks_total - p.chunks_done))
            return
        self.files_total, self.files_done, self.chunks_total = (
            p.files_total,
            p.files_done,
            p.chunks_total,
        )

    def files_scanned(self) -> None:
        """Phase 1 of a full scan is done: every file is stored (embedding may still run)."""
        if self.files_total is not None:
            self.files_done = self.files_total
        self.chunks_embedded, self.chunks_to_embed = 0, None

    def finish_full_scan(self) -> None:
        self.files_scanned()
        self.complete = True
        self.last_indexed = time.time()

    def end_progress(self, message: str) -> None:
        """Close the running full scan's progress bar, if any."""
        progress, self.progress = self.progress, None
        if progress is not None:
            progress.end(message)

    def semantic_ratio(self) -> float:
        """Share of the stored chunks that have a vector, as far as this scan knows."""
        if self.complete:
            return 1.0
        total = self.chunks_to_embed
        if not total:
            return 0.0
        return round(min(1.0, self.chunks_embedded / total), 3)

    def coverage(self) -> dict[str, Any]:
        """How much of this root the index covers right now."""
        total = self.files_total
        ratio = 1.0 if self.complete else (round(self.files_done / total, 3) if total else 0.0)
        return {
            "filesIndexed": self.files_done,
            "filesTotal": total,
            "ratio": ratio,
            "semantic": self.semantic_ratio(),
            "complete": self.complete,
        }


class RootRegistry:
    """The open roots; maps a URI to the root that contains it (longest match wins)."""

    def __init__(self) -> None:
        self._roots: dict[str, RootState] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._roots)

    def all(self) -> list[RootState]:
        with self._lock:
            return list(self._roots.values())

    def add(self, root: RootState) -> None:
        with self._lock:
            self._roots[str(root.path)] = root

    def remove(self, path: Path) -> RootState | None:
        with self._lock:
            return self._roots.pop(str(path.resolve()), None)

    def get(self, path: Path) -> RootState | None:
        with self._lock:
            return self._roots.get(str(path.resolve()))

    def for_path(self, path: Path) -> RootState | None:
        best: RootState | None = None
        resolved = path.resolve()
        for root in self.all():
            inside = resolved == root.path or resolved.is_relative_to(root.path)
            if inside and (best is None or len(root.path.parts) > len(best.path.parts)):
                best = root
        return best

    def for_uri(self, uri: str) -> tuple[RootState, str] | None:
        """The root containing `uri` and the path relative to it ("" for the root itself)."""
        path = uri_to_path(uri)
        if path is None:
            return None
        root = self.for_path(path)
        if root is None:
            return None
        rel = root.rel(path)
        return (root, "" if rel in (None, ".") else rel)


def coverage_of(roots: list[RootState]) -> dict[str, Any]:
    """Coverage summed over `roots`, for results that span several of them."""
    totals = [r.files_total for r in roots]
    done = sum(r.files_done if not r.complete else (r.files_total or 0) for r in roots)
    total = sum(t for t in totals if t is not None) if any(t is not None for t in totals) else None
    complete = bool(roots) and all(r.complete for r in roots)
    ratio = 1.0 if complete else (round(done / total, 3) if total else 0.0)
    return {
        "filesIndexed": done,
        "filesTotal": total,
        "ratio": ratio,
        "semantic": min((r.semantic_ratio() for r in roots), default=0.0),
        "complete": complete,
        "indexing": [r.uri for r in roots if r.state == "indexing"],
    }
