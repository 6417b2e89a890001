"""The one indexing worker: a thread that runs index jobs for all roots, one at a time.

Jobs are coalesced: changed paths for a root merge into one job, and a pending full scan
of a root swallows its pending path jobs. A full scan has two parts: the "full" job
chunks and stores every changed file (seconds; lexical and symbol search answer from
then on), then "embed" jobs work through the embedding backlog a slice at a time. Path
jobs (a save, an outside change) run before any pending full scan or embed slice, so a
save is searchable within a second even while a large first index is embedding.
Queries never wait for this thread: they run on the query pool.

Opening an index that another process holds, or that is briefly busy, is retried with
backoff (the root shows state "retrying" and says why). A damaged index is never fatal:
opening it heals it (`indexer.store.recovery`), damage found later by a query or a run reopens
it through the same checks, the user is told once with `window/showMessage`, and the
refill runs as a normal background scan while lexical search answers. Only a repair that
fails twice in a row leaves the root in state "error".
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from lsprotocol import types

from indexer.core import metrics
from indexer.core.errors import (
    Cancelled,
    DiskFull,
    ForgeError,
    IndexLocked,
    ModelInvalid,
    ModelNotFound,
    StateDirUnavailable,
    StoreBusy,
    StoreCorrupt,
    StoreRepairing,
)
from indexer.core.types import IndexSummary, Progress
from indexer.store import recovery
from server import tracing
from server.logs import WORKSPACE
from server.metrics_http import observe_root
from server.progress import IndexProgress
from server.roots import RootState

if TYPE_CHECKING:
    from indexer.core.workspace_api import IndexingWorkspace
    from indexer.workspace import CancelToken
    from server.hosts import IndexHost

T = TypeVar("T")
log = logging.getLogger(__name__)

JobKind = Literal["close", "paths", "full", "reopen", "embed", "reconcile"]
PRIORITY: dict[str, int] = {"close": 0, "paths": 1, "full": 2, "reopen": 2, "embed": 3, "reconcile": 4}
#: The periodic reconcile's first scan of a root comes this many intervals after its first
#: full scan (random in the range), later ones every interval +-10%: several roots, or
#: several daemons on one machine, do not scan at the same moment.
RECONCILE_FIRST = (0.5, 1.5)
RECONCILE_JITTER = 0.1
#: How often the reconcile scheduler looks at the roots (at most).
RECONCILE_TICK_S = 0.5
#: Errors a user has to act on (shown with window/showMessage, not only logged).
ACTIONABLE = (ModelNotFound, ModelInvalid, IndexLocked, StoreCorrupt, DiskFull, StateDirUnavailable)
#: Failures to open an index that go away by themselves: retried with backoff.
OPEN_RETRIED = (IndexLocked, StoreBusy)
#: Damage found in use: the index is reopened (which heals it) this many times in a row
#: before the root is left in state "error".
MAX_REPAIRS = 2
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
#: More changed paths than this in one batch: rescan the root instead.
MAX_PATHS_PER_JOB = 2000
#: Seconds of embedding per "embed" job before the worker looks at its queue again.
EMBED_SLICE_S = 1.0

_seq = itertools.count()


class Done:
    """Set when a job (and the jobs it handed its waiters to) has finished.

    Waitable from a thread (`wait`) and from the event loop (`wait_async`) without
    holding a thread, so `forge/reindex {wait: true}` costs no query thread.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float) -> bool:
        """True once set; False after `timeout` seconds. Cancellable like any await."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(resolve)

        with self._lock:
            if self._event.is_set():
                return True
            self._callbacks.append(wake)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False


@dataclass(eq=False)
class Job:
    kind: JobKind
    root: RootState
    paths: set[str] = field(default_factory=set)
    reason: str = ""
    waiters: list[Done] = field(default_factory=list)
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

    def __init__(self, ls: IndexHost) -> None:
        self._ls = ls
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._current: Job | None = None
        self._stopping = False
        self._paused = False
        self._held_at_startup = False  # paused by `indexOnStartup` off, not by a request
        self._thread: threading.Thread | None = None

    # -- submitting -----------------------------------------------------------------------

    def submit(
        self,
        kind: JobKind,
        root: RootState,
        paths: set[str] | None = None,
        reason: str = "",
        waiters: list[Done] | None = None,
    ) -> Done:
        """Queue a job (coalesced with pending ones); the result is set when it has run."""
        event = Done()
        job = Job(kind, root, set(paths or ()), reason, [event, *(waiters or ())])
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
                threading.Thread(target=self._schedule_reconciles, name="forge-reconcile", daemon=True).start()
        if kind == "close":
            self.cancel_running(root)
        return event

    def _coalesce(self, job: Job) -> None:
        same = [j for j in self._queue if j.root is job.root]
        absorbs = {
            "close": {"paths", "full", "reopen", "embed", "reconcile"},
            "reopen": {"paths", "full", "embed", "reconcile"},
            "full": {"paths", "embed", "reconcile"},
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

    # -- pausing --------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pause_reason(self) -> str | None:
        """Why indexing is held: "indexOnStartup" (off, nothing asked for yet), "pause"
        (`forge/pause`), or None while it runs."""
        if not self._paused:
            return None
        return "indexOnStartup" if self._held_at_startup else "pause"

    def hold_at_startup(self) -> None:
        """`indexOnStartup` off: hold everything from the start, as a pause that Resume or a
        Reindex request lifts."""
        with self._cond:
            self._paused = self._held_at_startup = True
        log.info("background indexing is paused from the start (indexOnStartup is off); "
                 "resume or reindex to start it")

    def pause(self) -> dict[str, Any]:
        """Hold background indexing: queued work (saves, scans, embedding) waits, changes keep
        coalescing, and a running job stops at the end of its slice (a few seconds at most).
        Closing a folder still runs. Not kept across a restart of the process."""
        with self._cond:
            was, self._paused = self._paused, True
            self._held_at_startup = False  # from now on the user's pause
            running = self._current is not None and self._current.kind != "close"
            waiting = len(self._queue)
        if was:
            message = "indexing was already paused"
        elif running or waiting:
            message = "indexing paused; it goes on from where it stopped after `resume`"
        else:
            message = "indexing paused (nothing was running); changes from now on wait for `resume`"
        for root in self._ls.roots.all():
            if root.progress is not None:
                root.progress.note("paused")
        log.info("background indexing paused")
        return {"paused": True, "wasPaused": was, "running": running, "waiting": waiting, "message": message}

    def resume(self) -> dict[str, Any]:
        """Let held work run again."""
        with self._cond:
            was, self._paused = self._paused, False
            self._held_at_startup = False
            waiting = len(self._queue)
            self._cond.notify_all()
        if not was:
            message = ("indexing was not paused (a daemon forgets a pause when it restarts); "
                       "nothing to resume")
        elif waiting:
            message = f"indexing resumed: {waiting} queued job(s) run now"
        else:
            message = "indexing resumed; nothing was waiting"
        if was:
            log.info("background indexing resumed")
        return {"paused": False, "wasPaused": was, "waiting": waiting, "message": message}

    def _runnable(self) -> list[Job]:
        """Caller holds `_cond`. While paused only closing a folder runs."""
        return [j for j in self._queue if not self._paused or j.kind == "close"]

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
            job.root.end_progress("Stopped")
        if current is not None:
            self.cancel_running(current.root)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def queue_depth(self, root: RootState) -> int:
        """Files waiting to be (re)indexed for `root`: queued paths, and the rest of a running scan."""
        with self._cond:
            queued = sum(len(j.paths) for j in self._queue if j.root is root)
        if root.progress is not None and root.files_total:
            queued += max(0, root.files_total - root.files_done)
        return queued

    def _record_run(
        self, root: RootState, summary: IndexSummary | None, outcome: str, seconds: float | None = None
    ) -> None:
        """Metrics and a trace span for an index run that ended with `outcome` (ok, cancelled, error)."""
        try:
            elapsed = seconds if seconds is not None else time.monotonic() - root.scan_started
            metrics.INDEX_RUNS.labels(outcome).inc()
            metrics.INDEX_DURATION.observe(elapsed)
            attrs: dict[str, int] = {}
            if summary is not None:
                embed_s = summary.seconds.get("embed", 0.0)
                metrics.EMBED_TOKENS.inc(summary.tokens_embedded)
                metrics.EMBED_SECONDS.inc(embed_s)
                if embed_s > 0 and summary.tokens_embedded:
                    metrics.EMBED_TOKENS_PER_S.set(summary.tokens_embedded / embed_s)
                attrs = {"files": summary.files_indexed, "chunks": summary.chunks_stored,
                         "tokens": summary.tokens_embedded}
            observe_root(root, self.queue_depth(root))
            tracing.record_index_run(root.name, time.time() - elapsed, outcome, **attrs)
        except Exception:  # observing a run never breaks it
            log.debug("recording the index run of %s failed", root.path, exc_info=True)

    # -- the periodic reconcile ("scheduled sync") ---------------------------------------------

    def _schedule_reconciles(self) -> None:
        """Queue a reconcile of each root every `reconcile_interval_s`, staggered."""
        registry = getattr(self._ls, "roots", None)  # a server stub in unit tests has none
        while registry is not None:
            with self._cond:
                if self._stopping:
                    return
            now = time.monotonic()
            for root in registry.all():
                try:
                    self._maybe_reconcile(root, now)
                except Exception:
                    log.exception("scheduling the reconcile of %s failed", root.path)
            time.sleep(RECONCILE_TICK_S)

    def _maybe_reconcile(self, root: RootState, now: float) -> None:
        interval = root.settings.reconcile_interval_s
        if interval <= 0 or root.closed or not root.complete:
            root.next_reconcile = None  # off, or not yet: the first full scan is still to finish
            return
        if root.next_reconcile is None or root.reconcile_every != interval:
            root.reconcile_every = interval
            root.next_reconcile = now + interval * random.uniform(*RECONCILE_FIRST)
            return
        if now < root.next_reconcile:
            return
        root.next_reconcile = now + interval * random.uniform(1 - RECONCILE_JITTER, 1 + RECONCILE_JITTER)
        if self._busy_with(root):
            log.debug("reconcile of %s skipped: an index run is active or queued", root.name)
            return
        self.submit("reconcile", root)

    def _busy_with(self, root: RootState) -> bool:
        """An index run for `root` is running or waiting (or its embedding is not finished)."""
        with self._cond:
            current = self._current
            running = current is not None and current.root is root and current.kind != "reconcile"
            queued = any(j.root is root and j.kind != "reconcile" for j in self._queue)
        return running or queued or root.progress is not None or root.state != "idle"

    def _reconcile(self, root: RootState) -> None:
        """A stat-only scan against the index; changes it finds are reindexed like a save."""
        ws = root.workspace
        if ws is None or self._busy_with(root):
            return  # nothing open yet, or an index run came first: it covers the changes
        started = time.monotonic()
        try:
            paths = ws.stale_paths(root.reconcile_seen)
        except Exception as exc:
            log.warning("reconcile of %s failed: %s", root.path, exc)
            return
        metrics.RECONCILES.labels(found="yes" if paths else "no").inc()
        if not paths:
            log.debug("reconcile of %s: up to date (%.0f ms)", root.name, (time.monotonic() - started) * 1000)
            return
        log.info("reconcile of %s found %d changed path(s) the watcher missed (%.0f ms); reindexing",
                 root.name, len(paths), (time.monotonic() - started) * 1000)
        self.submit("paths", root, set(paths))

    # -- running --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._runnable() and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = min(self._runnable(), key=lambda j: (PRIORITY[j.kind], j.seq))
                self._queue.remove(job)
                self._current = job
            context = WORKSPACE.set(job.root.name)  # log lines of this job name the workspace
            try:
                self._execute(job)
            except Exception:
                log.exception("index job %s for %s failed", job.kind, job.root.path)
            finally:
                WORKSPACE.reset(context)
                with self._cond:
                    self._current = None
                job.done()

    def _execute(self, job: Job) -> None:
        root = job.root
        if job.kind == "close":
            self._close(root)
            return
        if root.closed or self._stopping:
            root.end_progress("Stopped")
            return
        if job.kind == "reconcile":
            self._reconcile(root)
            return
        if job.kind == "reopen":
            self._close(root, closing_root=False)
            root.repairing = False
        opening = root.workspace is None
        if opening and not self._open(root, job):
            return
        if job.kind in ("full", "reopen") or opening:
            self._full(root, job)  # an index just opened is scanned whole; that covers any paths
        elif job.kind == "embed":
            self._embed(root, job)
        else:
            self._paths(root, job.paths)

    def _open(self, root: RootState, job: Job) -> bool:
        """Open the root's index (and load the model). A busy or locked index is retried."""
        ws = None
        try:
            ws = self._ls.open_workspace(root.path, root.settings)
            ws.open_store()
        except OPEN_RETRIED as exc:
            if ws is not None:
                ws.close()
            self._retry_later(root, job, exc)
            return False
        except Exception as exc:
            if ws is not None:
                try:
                    ws.close()
                except Exception:
                    log.exception("closing the index of %s failed", root.path)
            root.end_progress("Failed")
            self._failed(root, exc, "open")
            return False
        root.workspace = ws
        root.open_attempts = 0
        # Queries must not run a repair themselves: damage they meet comes back here.
        ws.repair_in_background = True
        ws.on_damage = lambda message: self._damaged(root, message)
        self._report_repairs(root, ws)
        return True

    def _report_repairs(self, root: RootState, ws: IndexingWorkspace) -> None:
        """Tell the user (once per repair) what opening the index found and is fixing."""
        if root.repair_attempts:
            return  # damage found in use was already reported by `_damaged`
        try:
            health = ws.status().get("health") or {}
        except Exception:
            return
        if not isinstance(health, dict) or health.get("state") != "repairing":
            return
        events = health.get("events") or []
        last = events[-1] if events else {}
        text = (
            f"forge-indexer: {root.name}: {last.get('what', 'index repaired')} "
            f"({last.get('cause', 'damage found')}); re-indexing in the background, search answers meanwhile."
        )
        log.warning("%s", text)
        self._ls.show_message(text, types.MessageType.Warning, once=True)

    def _damaged(self, root: RootState, message: str) -> None:
        """A query or a run met damage: reopen the index (its checks heal it), say so once."""
        with root.lock:
            if root.repairing:
                return
            root.repairing = True
        root.repair_attempts += 1
        log.warning("%s; repairing", message)
        self._ls.show_message(
            f"forge-indexer: {message}; repairing it in the background.", types.MessageType.Warning, once=True
        )
        self.submit("reopen", root, reason="Repairing")

    def _retry_later(self, root: RootState, job: Job, exc: Exception) -> None:
        delay = RETRY_DELAYS_S[min(root.open_attempts, len(RETRY_DELAYS_S) - 1)]
        root.open_attempts += 1
        root.state = "retrying"
        root.last_error = f"{exc} Retrying in {delay:g} s."
        log.warning("could not open %s: %s", root.path, root.last_error)
        if root.open_attempts == 1:
            self._ls.show_message(f"forge-indexer: {root.last_error}", types.MessageType.Warning)
        kind: JobKind = "reopen" if job.kind == "reopen" else "full"
        waiters, job.waiters = job.waiters, []  # they wait for the retry, not for this failure
        timer = threading.Timer(
            delay, lambda: self.submit(kind, root, reason=job.reason or "Indexing", waiters=waiters)
        )
        timer.daemon = True
        root.retry_timer = timer
        timer.start()

    def _close(self, root: RootState, *, closing_root: bool = True) -> None:
        ws, root.workspace = root.workspace, None
        if closing_root:
            root.closed = True
            if root.retry_timer is not None:
                root.retry_timer.cancel()
        root.end_progress("Stopped")
        if ws is not None:
            try:
                ws.close()
            except Exception:
                log.exception("closing the index of %s failed", root.path)
        root.complete = False

    def _full(self, root: RootState, job: Job) -> None:
        """Phase 1 of a full scan: chunk and store every changed file; then queue embedding."""
        ws = root.workspace
        assert ws is not None
        title = job.reason or "Indexing"
        cancel = self._cancel_token(root)
        root.state, root.complete = "indexing", False
        root.scan_started = time.monotonic()
        if root.progress is None:
            root.progress = IndexProgress(self._ls, f"{title} {root.name}", cancel)
            root.progress.begin()
        progress = root.progress

        def tick(p: Progress) -> None:
            root.note_progress(p)
            progress.report(p)

        def scan() -> IndexSummary:
            if title != "Indexing":
                ws.reload_rules()  # .gitignore may have changed
            return ws.index(on_progress=tick, cancel=cancel, embed=False)

        ok, summary = self._phase(root, "index", scan)
        if not ok:
            return
        root.run_summary = summary
        root.files_scanned()
        self._requeue_embed(root, job)

    def _cancel_token(self, root: RootState) -> CancelToken:
        """The run's cancel token: the one a run in progress holds, or a new one."""
        cancel = root.index_cancel or self._ls.new_cancel_token()
        root.index_cancel = cancel
        return cancel

    def _phase(self, root: RootState, what: str, run: Callable[[], T]) -> tuple[bool, T | None]:
        """Run one phase of a run: (True, its result), or (False, None) once a cancel or a
        failure has been handled (progress ended, failure recorded and reported)."""
        try:
            return True, run()
        except Cancelled:
            self._cancelled(root)
        except Exception as exc:
            root.index_cancel = None
            root.end_progress(f"Failed: {exc}")
            self._failed(root, exc, what)
        return False, None

    def _embed(self, root: RootState, job: Job) -> None:
        """Phase 2, one slice: embed for up to EMBED_SLICE_S, then requeue if work is left."""
        ws = root.workspace
        assert ws is not None
        cancel = self._cancel_token(root)
        root.state = "indexing"
        summary = root.run_summary

        def tick(p: Progress) -> None:
            root.note_progress(p)
            if root.progress is not None:
                total = root.chunks_to_embed or 0
                root.progress.report(Progress("embed", 0, 0, root.chunks_embedded, total))

        ok, left = self._phase(root, "embed", lambda: ws.embed_pending(
            budget_s=EMBED_SLICE_S, on_progress=tick, cancel=cancel, summary=summary))
        if not ok:
            return
        if left:
            self._requeue_embed(root, job)
            return
        root.index_cancel = None
        root.finish_full_scan()
        root.state, root.last_error = "idle", None
        root.repair_attempts = 0
        if summary is not None:
            summary.seconds["total"] = time.monotonic() - root.scan_started
        text = summary_text(summary) if summary is not None else "up to date"
        log.info("indexed %s: %s", root.path, text)
        if summary is not None:
            for err in summary.errors[:20]:
                log.warning("could not index %s: %s", err.path, err.error)
        self._record_run(root, summary, "ok")
        root.run_summary = None
        root.end_progress(text)

    def _requeue_embed(self, root: RootState, job: Job) -> None:
        """Queue the next embedding slice; this job's waiters wait for it instead."""
        waiters, job.waiters = job.waiters, []
        self.submit("embed", root, waiters=waiters)

    def _cancelled(self, root: RootState) -> None:
        self._record_run(root, root.run_summary, "cancelled")
        root.index_cancel = None
        root.run_summary = None
        root.state, root.last_error = "idle", "indexing was cancelled; run forge/reindex to finish it"
        log.info("indexing %s cancelled", root.path)
        root.end_progress("Cancelled")

    def _paths(self, root: RootState, paths: set[str]) -> None:
        ws = root.workspace
        assert ws is not None
        root.state = "indexing"
        try:
            summary = ws.index(sorted(paths))
        except Exception as exc:
            self._failed(root, exc, "reindex changed files in")
            return
        # A save during a full scan's embedding: the scan is still running.
        root.state = "indexing" if root.progress is not None else "idle"
        root.last_error = None
        log.info(
            "reindexed %d changed path(s) in %s: %s", len(paths), root.name, summary_text(summary)
        )
        self._record_run(root, summary, "ok", seconds=summary.seconds.get("total", 0.0))
        for err in summary.errors[:20]:
            log.warning("could not index %s: %s", err.path, err.error)

    def _failed(self, root: RootState, exc: BaseException, what: str) -> None:
        if what in ("index", "embed"):
            self._record_run(root, root.run_summary, "error")
        elif what != "open":  # a path job: its own time is not known here
            self._record_run(root, None, "error", seconds=0.0)
        step = recovery.after_failure(exc, root.repair_attempts, MAX_REPAIRS, root.path.is_dir())
        if step == "repair":
            self._damaged(root, str(exc).rstrip("."))  # reopening runs the checks that heal it
            return
        if step == "recreate":
            root.repair_attempts += 1  # deleted under us: reopening re-creates it
            self._ls.show_message(f"forge-indexer: {exc}", types.MessageType.Warning, once=True)
            self.submit("reopen", root, reason="Re-creating the index of")
            return
        root.state = "error"
        root.last_error = (
            str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"
        )
        if isinstance(exc, StoreRepairing | StoreCorrupt):
            exc = recovery.final_error(exc, root.path, root.repair_attempts)
            root.last_error = str(exc)
        if isinstance(exc, ACTIONABLE):
            log.error("could not %s %s: %s", what, root.path, exc)
            self._ls.show_message(f"forge-indexer: {exc}", types.MessageType.Error)
        elif isinstance(exc, ForgeError):
            log.error("could not %s %s: %s", what, root.path, exc)
        else:
            log.error("could not %s %s", what, root.path, exc_info=exc)
