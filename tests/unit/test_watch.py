"""The workspace watcher: debounce and coalescing, git storms, ignore rules, fallbacks."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from server.watch import (
    ChangeBatch,
    ChangeBatcher,
    PathFilter,
    WorkspaceWatcher,
    git_busy,
    plan_watches,
)


class Rules:
    """Ignore rules like `IgnoreRules`: `node_modules/`, `build/`, `*.log`, from `.gitignore`."""

    def __init__(self, root: Path | None = None) -> None:
        self.patterns = {"node_modules", "build"}
        if root is not None and (root / ".gitignore").exists():
            self.patterns |= {
                ln.strip().rstrip("/")
                for ln in (root / ".gitignore").read_text().splitlines()
                if ln.strip()
            }

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        name = rel_path.rsplit("/", 1)[-1]
        return name in self.patterns or name.endswith(".log")

    def is_rule_file(self, rel_path: str) -> bool:
        return rel_path.rsplit("/", 1)[-1] == ".gitignore"


class Batches:
    """Collects batches; `wait_for` blocks until a predicate over them holds."""

    def __init__(self) -> None:
        self.items: list[ChangeBatch] = []
        self.times: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, batch: ChangeBatch) -> None:
        with self._cond:
            self.items.append(batch)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    @property
    def paths(self) -> set[str]:
        return {p for b in self.items for p in b.paths}

    def wait_for(self, pred: Callable[[Batches], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture
def make_batcher(batches: Batches) -> Iterator[Callable[..., ChangeBatcher]]:
    made: list[ChangeBatcher] = []

    def make(**kw: object) -> ChangeBatcher:
        b = ChangeBatcher(batches, **{"delay_s": 0.05, **kw})  # type: ignore[arg-type]
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


# --- ChangeBatcher --------------------------------------------------------------------


def test_a_burst_of_events_for_one_path_becomes_one_batch(make_batcher, batches: Batches) -> None:
    b = make_batcher(delay_s=0.1)
    for _ in range(10):
        b.add("a.py")
        time.sleep(0.01)
    b.add("b.py")
    assert b.wait_idle(3)
    assert batches.paths == {"a.py", "b.py"}
    assert len(batches.items) <= 2
    assert sum(len(x.paths) for x in batches.items) == 2


def test_each_event_restarts_the_delay_but_max_wait_bounds_it(
    make_batcher, batches: Batches
) -> None:
    b = make_batcher(delay_s=0.15, max_wait_s=0.4)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # a file written continuously for a second
        b.add("log.txt")
        time.sleep(0.03)
    assert batches.wait_for(lambda x: len(x.items) >= 1, 2)
    assert batches.times[0] - start < 0.7  # not held back until the writes stop


def test_a_save_is_not_delayed_by_the_watchers_echo(make_batcher, batches: Batches) -> None:
    b = make_batcher(delay_s=0.2)
    t0 = time.monotonic()
    b.add("a.py", settled=True)
    for _ in range(5):  # the watcher sees the same write a moment later
        time.sleep(0.03)
        b.add("a.py")
    assert batches.wait_for(lambda x: "a.py" in x.paths, 2)
    assert batches.times[0] - t0 < 0.3


def test_rescan_requests_are_coalesced(make_batcher, batches: Batches) -> None:
    b = make_batcher()
    for _ in range(5):
        b.request_rescan()
    b.add("x.py")
    assert b.wait_idle(3)
    assert sum(x.rescan for x in batches.items) == 1


def test_nothing_leaves_while_git_holds_its_index_lock(
    tmp_path: Path, make_batcher, batches: Batches
) -> None:
    (tmp_path / ".git").mkdir()
    lock = tmp_path / ".git" / "index.lock"
    lock.touch()
    b = make_batcher(delay_s=0.05, hold=git_busy(tmp_path), hold_poll_s=0.02)
    for i in range(300):  # a checkout touching hundreds of files
        b.add(f"src/f{i}.py")
    time.sleep(0.3)
    assert batches.items == []
    lock.unlink()
    assert batches.wait_for(lambda x: len(x.paths) == 300, 3)
    assert len(batches.items) == 1  # one batch for the whole storm


def test_a_stuck_lock_does_not_block_forever(
    tmp_path: Path, make_batcher, batches: Batches
) -> None:
    b = make_batcher(hold=lambda: True, hold_poll_s=0.02, hold_timeout_s=0.2)
    b.add("a.py")
    assert batches.wait_for(lambda x: "a.py" in x.paths, 3)


def test_set_delay_applies_to_later_events(make_batcher, batches: Batches) -> None:
    b = make_batcher(delay_s=5.0)
    b.set_delay(0.01)
    t0 = time.monotonic()
    b.add("a.py")
    assert batches.wait_for(lambda x: bool(x.items), 2)
    assert batches.times[0] - t0 < 1.0


def test_a_failing_consumer_does_not_stop_the_batcher() -> None:
    seen: list[ChangeBatch] = []

    def flaky(batch: ChangeBatch) -> None:
        seen.append(batch)
        if len(seen) == 1:
            raise RuntimeError("boom")

    b = ChangeBatcher(flaky, delay_s=0.01)
    try:
        b.add("a.py")
        assert b.wait_idle(2)
        b.add("b.py")
        assert b.wait_idle(2)
        assert [sorted(x.paths) for x in seen] == [["a.py"], ["b.py"]]
    finally:
        b.close()



def test_a_closed_batcher_ignores_late_changes_and_rescans(batches: Batches) -> None:
    # A watch rebuild thread can still ask for a rescan after the root was closed; nothing
    # may then look pending, or a shutdown waiting for idle would wait out its timeout.
    b = ChangeBatcher(batches, delay_s=0.01)
    b.close()
    b.add("a.py")
    b.request_rescan()
    assert b.pending() == 0 and b.wait_idle(0.2)
    assert not batches.items


# --- PathFilter and the watch plan ----------------------------------------------------


def test_path_filter_applies_rules_to_parents_and_always_drops_git() -> None:
    f = PathFilter(Rules)
    assert f.is_ignored("node_modules/pkg/index.js", False)
    assert f.is_ignored("a/build/gen.py", False)
    assert f.is_ignored("debug.log", False)
    assert f.is_ignored(".git/HEAD", False)
    assert not f.is_ignored("src/app.py", False)
    assert f.is_rule_file("sub/.gitignore")


def test_path_filter_survives_broken_rules() -> None:
    def broken() -> Rules:
        raise ValueError("bad pattern")

    f = PathFilter(broken)
    assert not f.is_ignored("src/app.py", False)
    assert f.is_ignored(".git/config", False)


def _tree(root: Path, *paths: str) -> None:
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text("x = 1\n")


def test_plan_prunes_ignored_directories(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        "src/a.py",
        "src/deep/b.py",
        "node_modules/x/y.js",
        "pkg/node_modules/z.js",
        "pkg/lib/c.py",
        "docs/d.md",
        ".git/HEAD",
    )
    plan = plan_watches(tmp_path, PathFilter(Rules))
    watches = dict(plan.watches)
    root = str(tmp_path)
    assert watches[root] is False  # the root holds ignored dirs: watched one level only
    assert watches[str(tmp_path / "src")] is True  # clean subtrees: one recursive watch
    assert watches[str(tmp_path / "docs")] is True
    assert watches[str(tmp_path / "pkg")] is False
    assert watches[str(tmp_path / "pkg/lib")] is True
    assert not any("node_modules" in w or ".git" in w for w in watches)


def test_plan_stays_coarse_when_it_would_need_too_many_watches(tmp_path: Path) -> None:
    for i in range(10):
        _tree(tmp_path, f"d{i}/node_modules/m.js", f"d{i}/e/src.py")
    plan = plan_watches(tmp_path, PathFilter(Rules), max_watches=5)
    assert len(plan.watches) <= 5 or plan.watches == ((str(tmp_path), True),)


# --- WorkspaceWatcher on the real filesystem -----------------------------------------


@pytest.fixture
def watched(
    tmp_path: Path, batches: Batches
) -> Iterator[tuple[Path, WorkspaceWatcher, ChangeBatcher]]:
    root = tmp_path / "ws"
    _tree(
        root, "src/app.py", "node_modules/dep/index.js", "pkg/node_modules/x.js", "pkg/lib/util.py"
    )
    (root / ".git").mkdir()
    f = PathFilter(lambda: Rules(root))
    b = ChangeBatcher(batches, delay_s=0.05, hold=git_busy(root), hold_poll_s=0.02)
    w = WorkspaceWatcher(root, b, f)
    assert w.start() in ("native", "polling")
    yield root, w, b
    w.stop()
    b.close()


def test_create_modify_delete_are_reported(watched, batches: Batches) -> None:
    root, _, _ = watched
    (root / "src/new.py").write_text("def f(): pass\n")
    assert batches.wait_for(lambda x: "src/new.py" in x.paths)
    batches.items.clear()
    (root / "src/app.py").write_text("y = 2\n")
    assert batches.wait_for(lambda x: "src/app.py" in x.paths)
    batches.items.clear()
    (root / "src/new.py").unlink()
    assert batches.wait_for(lambda x: "src/new.py" in x.paths)


def test_write_temp_then_rename_reports_the_real_file(watched, batches: Batches) -> None:
    root, _, _ = watched
    tmp = root / "src/.app.py.swp"
    tmp.write_text("z = 3\n")
    os.replace(tmp, root / "src/app.py")
    assert batches.wait_for(lambda x: "src/app.py" in x.paths)


def test_ignored_paths_produce_no_batches(watched, batches: Batches) -> None:
    root, _, _ = watched
    (root / "node_modules/dep/index.js").write_text("changed")
    (root / "pkg/node_modules/x.js").write_text("changed")
    (root / "src/trace.log").write_text("noise")
    (root / ".git/HEAD").write_text("ref: refs/heads/x")
    (root / "src/marker.py").write_text("m = 1\n")  # a real change, to know events were flowing
    assert batches.wait_for(lambda x: "src/marker.py" in x.paths)
    time.sleep(0.2)
    assert batches.paths == {"src/marker.py"}


def test_files_in_a_new_directory_are_seen(watched, batches: Batches) -> None:
    root, _, _ = watched
    # pkg/ is watched one level deep (it holds node_modules/); a new tree appears below it.
    (root / "pkg/newmod/inner").mkdir(parents=True)
    (root / "pkg/newmod/inner/a.py").write_text("a = 1\n")
    assert batches.wait_for(lambda x: "pkg/newmod/inner/a.py" in x.paths)
    batches.items.clear()
    (root / "pkg/newmod/inner/a.py").write_text("a = 2\n")
    assert batches.wait_for(lambda x: "pkg/newmod/inner/a.py" in x.paths)


def test_moving_a_directory_away_asks_for_a_rescan(
    watched, batches: Batches, tmp_path: Path
) -> None:
    root, _, _ = watched
    os.rename(root / "src", tmp_path / "elsewhere")
    assert batches.wait_for(lambda x: any(b.rescan for b in x.items))


def test_a_rule_file_change_reloads_rules_and_rescans(watched, batches: Batches) -> None:
    root, _, _ = watched
    (root / ".gitignore").write_text("generated\n")
    assert batches.wait_for(lambda x: any(b.rescan for b in x.items))
    batches.items.clear()
    time.sleep(0.3)  # the watches are being rebuilt
    (root / "src/generated").write_text("now ignored")
    (root / "src/kept.py").write_text("k = 1\n")
    assert batches.wait_for(lambda x: "src/kept.py" in x.paths)
    assert "src/generated" not in batches.paths


def test_a_git_checkout_storm_arrives_as_one_batch_after_the_lock(
    watched, batches: Batches
) -> None:
    root, _, _ = watched
    lock = root / ".git/index.lock"
    lock.touch()
    for i in range(200):
        (root / f"src/gen_{i}.py").write_text(f"v = {i}\n")
    time.sleep(0.3)
    assert not any(p.startswith("src/gen_") for p in batches.paths)
    lock.unlink()
    assert batches.wait_for(lambda x: sum(p.startswith("src/gen_") for p in x.paths) == 200)
    storm = [b for b in batches.items if any(p.startswith("src/gen_") for p in b.paths)]
    assert len(storm) == 1


# --- running out of inotify watches ----------------------------------------------------


class _NoWatchesLeft(BaseObserver):
    """An observer whose every watch fails like inotify at its limit."""

    def __init__(self, err: int) -> None:
        super().__init__(_Emitter)  # type: ignore[arg-type]
        self._err = err

    def schedule(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
        raise OSError(self._err, "inotify watch limit reached")


class _Emitter:  # never instantiated: _NoWatchesLeft refuses every watch
    pass


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EMFILE])
def test_watch_limit_falls_back_to_polling_and_says_so_once(
    tmp_path: Path, batches: Batches, err: int
) -> None:
    _tree(tmp_path, "src/a.py")
    said: list[str] = []
    b = ChangeBatcher(batches, delay_s=0.05)
    w = WorkspaceWatcher(
        tmp_path,
        b,
        PathFilter(Rules),
        on_fallback=said.append,
        observer_factory=lambda: _NoWatchesLeft(err),
        polling_factory=lambda: PollingObserver(timeout=0.1),
    )
    try:
        assert w.start() == "polling"
        w.restart()  # e.g. after a rule change: still polling, not reported again
        assert w.mode == "polling"
        assert len(said) == 1 and "polling" in said[0] and "max_user_watches" in said[0]
        (tmp_path / "src/a.py").write_text("changed = True\n")
        assert batches.wait_for(lambda x: "src/a.py" in x.paths, 5)
    finally:
        w.stop()
        b.close()


def test_other_os_errors_are_not_mistaken_for_the_limit(tmp_path: Path, batches: Batches) -> None:
    b = ChangeBatcher(batches, delay_s=0.05)
    w = WorkspaceWatcher(
        tmp_path, b, PathFilter(Rules), observer_factory=lambda: _NoWatchesLeft(errno.EACCES)
    )
    try:
        with pytest.raises(OSError):
            w.start()
    finally:
        w.stop()
        b.close()


def test_interleaved_restarts_leave_one_observer(watched, batches: Batches) -> None:
    """Two rule changes at once restart the watcher twice: no observer may leak (a leaked
    one would deliver every event twice), and a stopped watcher is not revived."""
    root, w, _ = watched
    threads = [threading.Thread(target=w.restart) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    observers = [t for t in threading.enumerate() if type(t).__name__.endswith("Observer")]
    assert len(observers) == 1, observers
    (root / "src/once.py").write_text("x = 1\n")
    assert batches.wait_for(lambda x: "src/once.py" in x.paths)
    w.stop()
    w.restart()  # e.g. a rule-change thread that fires after the root was closed
    assert not [t for t in threading.enumerate() if type(t).__name__.endswith("Observer")]
