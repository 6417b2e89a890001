"""Watch a workspace for changes made outside the editor and hand them over in batches.

Three pieces, each usable on its own:

- `ChangeBatcher`: debounce and coalescing. Changes wait for `delay` without new events
  (bounded by `max_wait`), or a save for its own `delay`, then everything pending leaves
  together as one `ChangeBatch`.
  While `hold()` is true (a `git checkout` holding `.git/index.lock`) nothing leaves; when
  it clears, the whole storm leaves as one batch after a short settle time.
- `PathFilter`: the ignore rules applied to event paths (a path is ignored when it or one
  of its parent directories is), reloadable when a rule file changes.
- `WorkspaceWatcher`: a watchdog observer over the directories the rules keep (ignored
  trees such as `node_modules/` get no watches), that turns events into batcher calls.
  Editors' write-temp-then-rename saves arrive as a move whose destination is the real
  file. When inotify runs out of watches or instances it falls back to polling and says so
  once through `on_fallback`.

Paths handed to callers are POSIX paths relative to the workspace root.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

#: Errors that mean "the OS will not give us more inotify watches or instances".
WATCH_LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM})

#: Event types the watcher asks for (others, e.g. opens and attribute changes, are noise).
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class IgnoreRulesLike(Protocol):
    """What the watcher needs from `indexer.files.discover.IgnoreRules`."""

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool: ...

    def is_rule_file(self, rel_path: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Paths that changed (relative, POSIX); `rescan` asks for a full rescan as well."""

    paths: frozenset[str]
    rescan: bool = False


# --------------------------------------------------------------------------------------
# Debounce + coalescing
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    deadline: float
    first_seen: float
    settled: bool  # the writer said it is done (didSave): later watcher echoes do not delay it


#: Delay after an editor's save (didSave) before the file is reindexed (at most `delay`).
SAVE_DELAY_S = 0.05


class ChangeBatcher:
    """Per-path debounce: collects paths and calls `on_batch` from its own thread."""

    def __init__(
        self,
        on_batch: Callable[[ChangeBatch], None],
        *,
        delay_s: float,
        hold: Callable[[], bool] | None = None,
        max_wait_s: float = 5.0,
        hold_poll_s: float = 0.1,
        hold_timeout_s: float = 120.0,
        name: str = "forge-changes",
    ) -> None:
        self._on_batch = on_batch
        self._delay = max(0.0, delay_s)
        self._hold = hold
        self._max_wait = max_wait_s
        self._hold_poll = hold_poll_s
        self._hold_timeout = hold_timeout_s
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._rescan_deadline: float | None = None
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def delay_s(self) -> float:
        return self._delay

    def set_delay(self, delay_s: float) -> None:
        """Change the debounce delay (live setting); applies to later events."""
        with self._cond:
            self._delay = max(0.0, delay_s)

    def add(self, path: str, *, settled: bool = False) -> None:
        """Note that `path` changed; `settled` means its writer is done (an editor's save)."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return  # a late event or rebuild thread after close: nobody takes batches now
            entry = self._pending.get(path)
            if settled:
                # A save: the editor says the write is complete, so there is nothing to wait
                # out but a burst of saves (save-all, autosave): a short delay, restarted by
                # each save; the watcher's echoes of the same write are ignored.
                self._pending[path] = _Pending(
                    now + min(self._delay, SAVE_DELAY_S), entry.first_seen if entry else now, True
                )
            elif entry is None:
                self._pending[path] = _Pending(now + self._delay, now, False)
            elif not entry.settled:
                entry.deadline = min(now + self._delay, entry.first_seen + self._max_wait)
            self._cond.notify()

    def request_rescan(self) -> None:
        """Ask for a full rescan (directory moved away, rules changed, events lost)."""
        with self._cond:
            if self._closed:
                return
            self._rescan_deadline = time.monotonic() + self._delay
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + (self._rescan_deadline is not None)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until nothing is pending or being handed over (tests, shutdown)."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._rescan_deadline is not None or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._rescan_deadline = None
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)

    # -- worker thread ------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        """When the pending changes leave, all together.

        Unsettled changes (the watcher's) wait for a quiet period: each event pushes the
        batch back by the delay, up to `max_wait` after the oldest one, so a checkout,
        a formatter or a code generator touching hundreds of files, even when it finishes
        too fast for git's lock to be seen, becomes one batch. A save (settled) is not
        pushed back by anything: it leaves after its own delay and takes the rest along.
        """
        deadlines: list[float] = []
        entries = list(self._pending.values())
        unsettled = [e.deadline for e in entries if not e.settled]
        if unsettled:
            deadlines.append(max(unsettled))
        deadlines += [e.deadline for e in entries if e.settled]
        if entries:
            deadlines.append(min(e.first_seen for e in entries) + self._max_wait)
        if self._rescan_deadline is not None:
            deadlines.append(self._rescan_deadline)
        return min(deadlines) if deadlines else None

    def _held(self) -> bool:
        if self._hold is None:
            return False
        try:
            return bool(self._hold())
        except Exception:  # a broken hold check must not stop indexing
            log.exception("change hold check failed")
            return False

    def _run(self) -> None:
        held_since: float | None = None  # when the hold (git lock) was first seen
        storm = False  # the hold just ended: everything pending leaves as one batch
        while True:
            with self._cond:
                if self._closed:
                    return
                due = self._next_deadline()
                now = time.monotonic()
                if due is None or due > now:
                    self._cond.wait(None if due is None else due - now)
                    continue
            if self._held():
                held_since = held_since if held_since is not None else now
                if now - held_since < self._hold_timeout:
                    with self._cond:
                        self._cond.wait(self._hold_poll)
                    continue
                log.warning(
                    "still locked after %.0f s; indexing the changes anyway", now - held_since
                )
                held_since, storm = None, True
            elif held_since is not None:
                # The lock went away: give the last writes a moment, then take everything.
                held_since, storm = None, True
                with self._cond:
                    settle = time.monotonic() + self._delay
                    for entry in self._pending.values():
                        entry.deadline = max(entry.deadline, settle)
                    if self._rescan_deadline is not None:
                        self._rescan_deadline = max(self._rescan_deadline, settle)
                continue
            batch = self._take(storm)
            storm = False
            if batch is None:
                continue
            try:
                self._on_batch(batch)
            except Exception:
                log.exception("handling a change batch failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _take(self, take_all: bool) -> ChangeBatch | None:
        with self._cond:
            if self._closed:
                return None
            now = time.monotonic()
            due = self._next_deadline()
            paths = list(self._pending) if take_all or (due is not None and due <= now) else []
            for p in paths:
                del self._pending[p]
            rescan = self._rescan_deadline is not None and (
                take_all or self._rescan_deadline <= now
            )
            if rescan:
                self._rescan_deadline = None
            if not paths and not rescan:
                return None
            self._busy = True
            return ChangeBatch(frozenset(paths), rescan)


def git_busy(root: Path) -> Callable[[], bool]:
    """A `hold` check: true while git holds `.git/index.lock` (checkout, rebase, merge...)."""
    lock = root / ".git" / "index.lock"
    return lock.exists


# --------------------------------------------------------------------------------------
# Ignore rules
# --------------------------------------------------------------------------------------


class _NoRules:
    """Used when the discovery rules cannot be loaded: only `.git/` is left out."""

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        return False

    def is_rule_file(self, rel_path: str) -> bool:
        return rel_path == ".gitignore" or rel_path.endswith("/.gitignore")


class PathFilter:
    """Ignore rules for event paths: a path is ignored when it or any parent directory is."""

    def __init__(self, loader: Callable[[], IgnoreRulesLike]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._rules: IgnoreRulesLike = self._load()

    def _load(self) -> IgnoreRulesLike:
        try:
            return self._loader()
        except Exception:
            log.exception("could not load the ignore rules; watching everything but .git/")
            return _NoRules()

    def reload(self) -> None:
        rules = self._load()
        with self._lock:
            self._rules = rules

    def is_rule_file(self, rel_path: str) -> bool:
        with self._lock:
            rules = self._rules
        return rules.is_rule_file(rel_path) or rel_path == ".git/info/exclude"

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        parts = rel_path.split("/")
        if not rel_path or rel_path.startswith("../") or ".git" in parts:
            return True
        with self._lock:
            rules = self._rules
        for i in range(1, len(parts)):
            if rules.is_ignored("/".join(parts[:i]), True):
                return True
        return rules.is_ignored(rel_path, is_dir)


# --------------------------------------------------------------------------------------
# Watch plan: which directories get a watch, and which of them are recursive
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """Directories to watch (absolute), each recursive or not, and how many dirs that covers."""

    watches: tuple[tuple[str, bool], ...]
    directories: int


def plan_watches(root: Path, path_filter: PathFilter, *, max_watches: int = 64) -> WatchPlan:
    """Watch whole subtrees that contain no ignored directory; elsewhere one level at a time.

    So `node_modules/`, `target/`, `.git/` and the like never get inotify watches. If that
    takes more than `max_watches` observer watches (each is a thread in watchdog), settle for
    the top level: the root alone plus each kept top-level directory recursively.
    """
    root_s = str(root)

    def visit(abs_dir: str, rel_dir: str) -> tuple[bool, list[tuple[str, bool]], int]:
        kept: list[tuple[str, str]] = []
        dropped = False
        try:
            with os.scandir(abs_dir) as it:
                for entry in it:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    if path_filter.is_ignored(rel, True):
                        dropped = True
                    else:
                        kept.append((entry.path, rel))
        except OSError:
            return False, [(abs_dir, True)], 1
        children = [visit(a, r) for a, r in kept]
        count = 1 + sum(c[2] for c in children)
        if not dropped and not any(c[0] for c in children):
            return False, [(abs_dir, True)], count
        watches = [(abs_dir, False)]
        for child in children:
            watches.extend(child[1])
        return True, watches, count

    _, watches, count = visit(root_s, "")
    if len(watches) > max_watches:
        top: list[tuple[str, bool]] = [(root_s, False)]
        with contextlib.suppress(OSError), os.scandir(root_s) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False) and not path_filter.is_ignored(
                    entry.name, True
                ):
                    top.append((entry.path, True))
        watches = top if len(top) <= max_watches else [(root_s, True)]
    return WatchPlan(tuple(watches), count)


def inotify_watch_limit() -> int | None:
    """`fs.inotify.max_user_watches`, or None where there is no inotify."""
    try:
        return int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------
# The watcher
# --------------------------------------------------------------------------------------


def _default_observer() -> BaseObserver:
    from watchdog.observers import Observer

    return Observer()


def _polling_observer() -> BaseObserver:
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=1.0)


class WorkspaceWatcher:
    """Feeds filesystem changes under `root` into a `ChangeBatcher`, ignore rules applied."""

    def __init__(
        self,
        root: Path,
        batcher: ChangeBatcher,
        path_filter: PathFilter,
        *,
        on_fallback: Callable[[str], None] | None = None,
        on_rules_changed: Callable[[], None] | None = None,
        observer_factory: Callable[[], BaseObserver] = _default_observer,
        polling_factory: Callable[[], BaseObserver] = _polling_observer,
        max_watches: int = 64,
    ) -> None:
        self.root = root.resolve()
        self._root_s = str(self.root)
        self._batcher = batcher
        self._filter = path_filter
        self._on_fallback = on_fallback
        self._on_rules_changed = on_rules_changed
        self._observer_factory = observer_factory
        self._polling_factory = polling_factory
        self._max_watches = max_watches
        self._observer: BaseObserver | None = None
        self._recursive_roots: list[str] = []
        self._watched: set[str] = set()
        self._lock = threading.RLock()
        # Serialises start/stop/restart as wholes (two interleaved restarts would leak an
        # observer that then delivers every event twice). Event handlers never take it, so
        # joining the observer thread while holding it cannot deadlock.
        self._lifecycle = threading.RLock()
        self._fallback_reported = False
        self.mode = "off"  # "native" | "polling" | "off"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        """Start watching; returns the mode ("native" or "polling")."""
        with self._lifecycle, self._lock:
            if self._observer is not None:
                return self.mode  # already running
            plan = plan_watches(self.root, self._filter, max_watches=self._max_watches)
            limit = inotify_watch_limit()
            if self.mode != "polling" and limit is not None and plan.directories > limit * 0.9:
                self._fall_back(
                    f"{plan.directories} directories to watch but fs.inotify.max_user_watches is {limit}"
                )
            if self.mode != "polling":
                try:
                    self._start_observer(self._observer_factory, plan)
                    self.mode = "native"
                except OSError as exc:
                    if exc.errno not in WATCH_LIMIT_ERRNOS:
                        raise
                    self._fall_back(str(exc))
            if self.mode == "polling":
                self._start_observer(self._polling_factory, plan)
            return self.mode

    def stop(self) -> None:
        with self._lifecycle:
            with self._lock:
                obs, self._observer = self._observer, None
                self._watched.clear()
                self._recursive_roots = []
                if self.mode != "polling":
                    self.mode = "off"
            if obs is not None:
                obs.stop()
                if threading.current_thread() is not obs:
                    obs.join(timeout=5)

    def restart(self) -> None:
        """Rebuild the watches (after the ignore rules changed)."""
        with self._lifecycle:
            if self._observer is None:
                return  # stopped meanwhile (root closed): a restart must not revive it
            polling = self.mode == "polling"
            self.stop()
            if polling:
                self.mode = "polling"
            self.start()

    # -- internals ----------------------------------------------------------------------

    def _fall_back(self, why: str) -> None:
        self.mode = "polling"
        if self._fallback_reported:
            return
        self._fallback_reported = True
        msg = (
            f"File watching for {self.root} falls back to polling ({why}). Changes are picked "
            "up within a few seconds; raise fs.inotify.max_user_watches (sysctl) for instant updates."
        )
        log.warning("%s", msg)
        if self._on_fallback is not None:
            try:
                self._on_fallback(msg)
            except Exception:
                log.exception("fallback callback failed")

    def _start_observer(self, factory: Callable[[], BaseObserver], plan: WatchPlan) -> None:
        observer = factory()
        handler = _Handler(self)
        try:
            observer.start()
            for path, recursive in plan.watches:
                observer.schedule(handler, path, recursive=recursive, event_filter=WATCHED_EVENTS)
        except Exception:
            with contextlib.suppress(Exception):
                observer.stop()
            raise
        self._observer = observer
        self._handler = handler
        self._watched = {p for p, _ in plan.watches}
        self._recursive_roots = [p for p, rec in plan.watches if rec]

    def _rel(self, abs_path: str | bytes) -> str | None:
        path = os.fsdecode(abs_path)
        if not path:
            return None
        if path != self._root_s and not path.startswith(self._root_s + os.sep):
            return None
        rel = os.path.relpath(path, self._root_s)
        return None if rel == "." else rel.replace(os.sep, "/")

    def _covered(self, abs_path: str) -> bool:
        return any(abs_path == r or abs_path.startswith(r + os.sep) for r in self._recursive_roots)

    def _file_changed(self, abs_path: str | bytes) -> None:
        rel = self._rel(abs_path)
        if rel is None:
            return
        if self._filter.is_rule_file(rel):
            self._rules_changed()
            return
        if not self._filter.is_ignored(rel, False):
            self._batcher.add(rel)

    def _rules_changed(self) -> None:
        log.info("ignore rules changed under %s; reloading", self.root)
        self._filter.reload()  # at once, so the events that follow are filtered by them
        # Rebuilding the watches joins observer threads: not from inside one of them.
        threading.Thread(target=self._safe_restart, args=(True,), name="forge-watch-restart", daemon=True).start()

    def _safe_restart(self, rules_changed: bool = False) -> None:
        try:
            self.restart()
        except Exception:
            log.exception("could not rebuild the watches for %s", self.root)
        if rules_changed:
            # Read the rules again once the new watches are in place: the event that
            # started this may have come before the rule file was fully written, and
            # events that came while the watches were rebuilt are lost. Only then the
            # rescan, so it runs under the rules as they now are.
            self._filter.reload()
            self._batcher.request_rescan()
            if self._on_rules_changed is not None:
                self._on_rules_changed()

    def _dir_created(self, abs_path: str) -> None:
        rel = self._rel(abs_path)
        if rel is None or self._filter.is_ignored(rel, True):
            return
        with self._lock:
            if self._covered(abs_path) or self._observer is None:
                return  # a recursive watch picks it (and its content) up itself
            sub = plan_watches(Path(abs_path), self._filter, max_watches=self._max_watches)
            for path, recursive in sub.watches:
                try:
                    self._observer.schedule(
                        self._handler, path, recursive=recursive, event_filter=WATCHED_EVENTS
                    )
                except OSError as exc:
                    log.warning("cannot watch %s (%s)", path, exc)
                    continue
                self._watched.add(path)
                if recursive:
                    self._recursive_roots.append(path)
        # Files may have landed before the watch existed.
        for dirpath, dirnames, filenames in os.walk(abs_path):
            dirnames[:] = [
                d
                for d in dirnames
                if not self._filter.is_ignored(self._rel(os.path.join(dirpath, d)) or "", True)
            ]
            for name in filenames:
                self._file_changed(os.path.join(dirpath, name))

    def _dir_gone(self, abs_path: str) -> None:
        rel = self._rel(abs_path)
        if rel is None or self._filter.is_ignored(rel, True):
            return
        # Its files may not have been reported one by one (moved out of the tree).
        self._batcher.request_rescan()
        with self._lock:
            stale = [w for w in self._watched if w == abs_path or w.startswith(abs_path + os.sep)]
        if stale:
            threading.Thread(
                target=self._safe_restart, name="forge-watch-restart", daemon=True
            ).start()

    def dispatch(self, event: FileSystemEvent) -> None:
        """Route one watchdog event (public for tests)."""
        src = os.fsdecode(event.src_path)
        if isinstance(event, DirMovedEvent):
            self._dir_gone(src)
            if event.dest_path:
                self._dir_created(os.fsdecode(event.dest_path))
        elif isinstance(event, DirDeletedEvent):
            self._dir_gone(src)
        elif isinstance(event, DirCreatedEvent):
            self._dir_created(src)
        elif event.is_directory:
            return
        elif isinstance(event, FileMovedEvent):
            # Editors save by writing a temp file and renaming it over the real one.
            if src:
                self._file_changed(src)
            if event.dest_path:
                self._file_changed(event.dest_path)
        elif isinstance(
            event, FileCreatedEvent | FileModifiedEvent | FileDeletedEvent | FileClosedEvent
        ):
            self._file_changed(src)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: WorkspaceWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher.dispatch(event)
        except Exception:
            log.exception("error handling %r", event)
