"""The one indexing worker: a thread that runs index jobs for all roots, one at a time.

Jobs are coalesced: changed paths for a root merge into one job, and a pending full scan
of a root swallows its pending path jobs. Path jobs (a save, an outside change) run
before full scans that have not started yet; a running full scan is not interrupted.
Queries never wait for this thread: they run on the query pool.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lsprotocol import types

from indexer.errors import (
    Cancelled,
    ForgeError,
    IndexLocked,
    ModelInvalid,
    ModelNotFound,
    StoreCorrupt,
)
from indexer.types import IndexSummary, Progress
from server.progress import IndexProgress
from server.roots import RootState

if TYPE_CHECKING:
    from server.server import ForgeLanguageServer

log = logging.getLogger(__name__)

JobKind = Literal["close", "paths", "full", "reopen"]
PRIORITY: dict[str, int] = {"close": 0, "paths": 1, "full": 2, "reopen": 2}
#: Errors a user has to act on (shown with window/showMessage, not only logged).
ACTIONABLE = (ModelNotFound, ModelInvalid, IndexLocked, StoreCorrupt)
#: More changed paths than this in one batch: rescan the root instead.
MAX_PATHS_PER_JOB = 2000

_seq = itertools.count()


@dataclass(eq=False)
class Job:
    kind: JobKind
    root: RootState
    paths: set[str] = field(default_factory=set)
    reason: str = ""
    waiters: list[threading.Event] = field(default_factory=list)
    seq: int = field(default_factory=lambda: next(_seq))

    def done(self) -> None:
        for w in self.waiters:
            w.set()


def summary_text(s: IndexSummary) -> str:
    parts = [f"{s.files_indexed} files indexed"]
    if s.files_unchanged:
        parts.append(f"{s.files_unchanged} unchanged")
    if s.files_deleted:
        parts.append(f"{s.files_deleted} removed")
    parts.append(f"{s.chunks_embedded} chunks embedded")
    if s.errors:
        parts.append(f"{len(s.errors)} failed")
    return ", ".join(parts) + f" in {s.seconds.get('total', 0.0):.1f} s"


class IndexWorker:
    """Runs `Job`s on one thread; `submit()` is safe from any thread."""

    def __init__(self, ls: ForgeLanguageServer) -> None:
        self._ls = ls
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._current: Job | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- submitting -----------------------------------------------------------------------

    def submit(
        self, kind: JobKind, root: RootState, paths: set[str] | None = None, reason: str = ""
    ) -> threading.Event:
        """Queue a job (coalesced with pending ones); the event is set when it has run."""
        event = threading.Event()
        job = Job(kind, root, set(paths or ()), reason, [event])
        if kind == "paths" and len(job.paths) > MAX_PATHS_PER_JOB:
            job.kind, job.paths = "full", set()
        with self._cond:
            if self._stopping:
                event.set()
                return event
            self._coalesce(job)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="forge-indexer", daemon=True)
                self._thread.start()
        if kind == "close":
            self.cancel_running(root)
        return event

    def _coalesce(self, job: Job) -> None:
        same = [j for j in self._queue if j.root is job.root]
        absorbs = {
            "close": {"paths", "full", "reopen"},
            "reopen": {"paths", "full"},
            "full": {"paths"},
        }
        for j in same:
            if j.kind in absorbs.get(job.kind, set()):
                self._queue.remove(j)
                job.waiters.extend(j.waiters)
        for j in same:
            if j in self._queue and (
                j.kind == job.kind or (job.kind == "paths" and j.kind in ("full", "reopen"))
            ):
                j.paths |= job.paths
                j.waiters.extend(job.waiters)
                return
        self._queue.append(job)

    def cancel_running(self, root: RootState) -> None:
        """Stop the full scan running for `root`, if any (folder removed, settings changed)."""
        token = root.index_cancel
        if token is not None:
            token.cancel()

    def busy(self) -> bool:
        with self._cond:
            return self._current is not None or bool(self._queue)

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            pending, self._queue = self._queue, []
            current = self._current
            self._cond.notify_all()
        for job in pending:
            job.done()
        if current is not None:
            self.cancel_running(current.root)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    # -- running --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = min(self._queue, key=lambda j: (PRIORITY[j.kind], j.seq))
                self._queue.remove(job)
                self._current = job
            try:
                self._execute(job)
            except Exception:
                log.exception("index job %s for %s failed", job.kind, job.root.path)
            finally:
                with self._cond:
                    self._current = None
                job.done()

    def _execute(self, job: Job) -> None:
        root = job.root
        if job.kind == "close":
            self._close(root)
            return
        if root.closed or self._stopping:
            return
        if job.kind == "reopen":
            self._close(root, closing_root=False)
        if root.workspace is None or job.kind in ("full", "reopen"):
            if root.workspace is None and not self._open(root):
                return
            self._full(root, job.reason or "Indexing")
            return
        self._paths(root, job.paths)

    def _open(self, root: RootState) -> bool:
        try:
            root.workspace = self._ls.open_workspace(root.path, root.settings)
            return True
        except Exception as exc:
            self._failed(root, exc, "open")
            return False

    def _close(self, root: RootState, *, closing_root: bool = True) -> None:
        ws, root.workspace = root.workspace, None
        if closing_root:
            root.closed = True
        if ws is not None:
            try:
                ws.close()
            except Exception:
                log.exception("closing the index of %s failed", root.path)
        root.complete = False

    def _full(self, root: RootState, title: str) -> None:
        ws = root.workspace
        assert ws is not None
        cancel = self._ls.new_cancel_token()
        root.index_cancel = cancel
        root.state, root.complete = "indexing", False
        progress = IndexProgress(self._ls, f"{title} {root.name}", cancel)
        progress.begin()

        def tick(p: Progress) -> None:
            root.note_progress(p)
            progress.report(p)

        try:
            if title != "Indexing":
                reload_rules = getattr(ws, "reload_rules", None)  # .gitignore may have changed
                if reload_rules is not None:
                    reload_rules()
            summary = ws.index(on_progress=tick, cancel=cancel)
        except Cancelled:
            root.state, root.last_error = (
                "idle",
                "indexing was cancelled; run forge/reindex to finish it",
            )
            log.info("indexing %s cancelled", root.path)
            progress.end("Cancelled")
            return
        except Exception as exc:
            progress.end(f"Failed: {exc}")
            self._failed(root, exc, "index")
            return
        finally:
            root.index_cancel = None
        root.finish_full_scan()
        root.state, root.last_error = "idle", None
        text = summary_text(summary)
        log.info("indexed %s: %s", root.path, text)
        for err in summary.errors[:20]:
            log.warning("could not index %s: %s", err.path, err.error)
        progress.end(text)

    def _paths(self, root: RootState, paths: set[str]) -> None:
        ws = root.workspace
        assert ws is not None
        root.state = "indexing"
        try:
            summary = ws.index(sorted(paths))
        except Exception as exc:
            self._failed(root, exc, "reindex changed files in")
            return
        root.state, root.last_error = "idle", None
        log.info(
            "reindexed %d changed path(s) in %s: %s", len(paths), root.name, summary_text(summary)
        )
        for err in summary.errors[:20]:
            log.warning("could not index %s: %s", err.path, err.error)

    def _failed(self, root: RootState, exc: BaseException, what: str) -> None:
        root.state = "error"
        root.last_error = (
            str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
        )
        if isinstance(exc, ACTIONABLE):
            log.error("could not %s %s: %s", what, root.path, exc)
            self._ls.show_message(f"forge-indexer: {exc}", types.MessageType.Error)
        elif isinstance(exc, ForgeError):
            log.error("could not %s %s: %s", what, root.path, exc)
        else:
            log.error("could not %s %s", what, root.path, exc_info=exc)
