"""Fault-injection hooks for the test suite. TEST-ONLY: inert unless their variable is set.

- `FORGE_INDEXER_TEST_CRASH_AT=<point>[:<n>]` ends the process with `os._exit(70)` (no cleanup,
  like `kill -9`) when the store reaches that point. Points: "after-vector-cache"
  (vectors cached and journaled, nothing sent to Chroma), "after-sqlite-commit" (a batch
  of files committed, journal not applied), "after-chroma-apply" (journal applied to
  Chroma, not yet cleared).
- `FORGE_INDEXER_TEST_SQLITE_MAX_PAGES=<n>` caps every index database connection at `n`
  extra pages with SQLite's own `PRAGMA max_page_count`, so SQLite itself fails a write
  with SQLITE_FULL: a full disk made deterministic.

Nothing else reads these variables; production never sets them, and when they are unset
each hook is one dictionary lookup.
"""

from __future__ import annotations

import os
import sys

CRASH_ENV = "FORGE_INDEXER_TEST_CRASH_AT"
MAX_PAGES_ENV = "FORGE_INDEXER_TEST_SQLITE_MAX_PAGES"
CRASH_POINTS = ("after-vector-cache", "after-sqlite-commit", "after-chroma-apply")
CRASH_EXIT = 70


_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Stop the process here, as a power cut would, if the test asked for it
    (`<point>` stops at the first time the point is reached, `<point>:<n>` at the n-th)."""
    want = os.environ.get(CRASH_ENV)
    if not want or not want.startswith(name):
        return
    _hits[name] = _hits.get(name, 0) + 1
    point, _, nth = want.partition(":")
    if point == name and _hits[name] >= int(nth or 1):
        sys.stderr.write(f"test hook: crashing at {name}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT)


def extra_pages() -> int | None:
    """How many pages an index database may grow by (see the module docstring), if the
    test capped it; the store applies the cap to every connection it opens."""
    extra = os.environ.get(MAX_PAGES_ENV)
    return int(extra) if extra else None
