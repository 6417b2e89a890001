"""Concurrent searches share the query caches safely (the race issue 23 named).

The query pool runs searches on two threads, and the LSP server, the daemon and MCP can
run more. An unlocked LRU could lose an entry between finding it and reading it, and
raise KeyError in the middle of a search. These tests run real searches (real model,
real Chroma, real SQLite) from many threads with the caches shrunk to force evictions,
the interpreter switching threads every microsecond, and the cache's lookup yielding the
GIL exactly where the old race lay, so that the window is wide open.
The last test proves the harness can fail: with the cache's lock taken away, it does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cachetools import LRUCache

from indexer.search import query

GLOBS = [["*.py"], ["*.go"], ["*.ts", "*.tsx"], ["*.rs"], ["native/**"], ["scripts/**"], ["services/**"], ["web/**"]]
QUERIES = ["retry with backoff", "parse the config file", "invoice total", "ring buffer", "debounce"]
THREADS = 6
SECONDS = 3.0


class _YieldingLRU(LRUCache[Any, Any]):
    """An LRUCache that gives up the GIL after saying it holds a key: the moment another
    thread could evict it before the `get` that follows reads it."""

    def __contains__(self, key: object) -> bool:
        held = super().__contains__(key)
        time.sleep(0)
        return held


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def tight_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Caches of one or two entries (every other search evicts), yielding in lookups."""
    monkeypatch.setattr(query, "_PATHS_CACHE", _YieldingLRU(2))
    monkeypatch.setattr(query, "_SCAN_CACHE", _YieldingLRU(1))
    monkeypatch.setattr(query, "_TOO_LARGE", _YieldingLRU(1))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _calls() -> list[tuple[str, list[str]]]:
    return [(q, g) for q in QUERIES for g in GLOBS]


def _run_concurrently(search: Callable[[str, list[str]], Any]) -> tuple[list[BaseException], dict[int, Any], int]:
    """Every thread walks the calls from its own offset until time is up or one fails."""
    calls = _calls()
    errors: list[BaseException] = []
    seen: dict[int, Any] = {}
    done = [0]
    stop = time.monotonic() + SECONDS
    start = threading.Barrier(THREADS)

    def work(offset: int) -> None:
        start.wait()
        i = offset
        while time.monotonic() < stop and not errors:
            n = i % len(calls)
            try:
                seen[n] = search(*calls[n])
            except BaseException as exc:  # any failure is what this looks for
                errors.append(exc)
                return
            done[0] += 1
            i += 1

    threads = [threading.Thread(target=work, args=(k * 7,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a search thread hung"
    return errors, seen, done[0]


def _answers(ws: Any) -> Callable[[str, list[str]], list[tuple[str, int]]]:
    def search(q: str, globs: list[str]) -> list[tuple[str, int]]:
        return [(h.path, h.start_line) for h in ws.search(q, limit=5, paths=globs)]
    return search


def test_concurrent_searches_with_evicting_caches_all_succeed_with_serial_answers(
    indexed: tuple[Path, Any], tight_caches: None,
) -> None:
    _, ws = indexed
    search = _answers(ws)
    serial = {n: search(*call) for n, call in enumerate(_calls())}
    assert sum(map(bool, serial.values())) >= len(serial) // 2, "the filters should find something"

    errors, seen, done = _run_concurrently(search)

    assert not errors, f"a concurrent search failed: {errors[0]!r}"
    assert done >= 2 * len(serial), f"only {done} searches ran: too few to have met the race"
    assert seen == {n: serial[n] for n in seen}, "a concurrent search answered differently"


def test_the_harness_catches_the_race_when_the_cache_lock_is_gone(
    indexed: tuple[Path, Any], tight_caches: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, ws = indexed
    monkeypatch.setattr(query, "_PATHS_LOCK", _NoLock())
    errors, _, _ = _run_concurrently(_answers(ws))
    assert any(isinstance(e, KeyError) for e in errors), f"the unlocked cache survived: {errors!r}"
