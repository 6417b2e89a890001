"""`Workspace`: the facade the CLI and the LSP server use. (Being implemented.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from indexer.settings import Settings
from indexer.types import ContextResult, IndexSummary, Progress, SearchHit, SymbolMatch


class CancelToken:
    """Set from another thread to stop long work at the next checkpoint (raises `Cancelled`)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Workspace:
    """One indexed folder: owns its SQLite state, its Chroma collection and a shared embedder.

    Thread-safe: queries may run on any thread while `index()` runs on another; writes are
    serialised internally. Only one process may open a workspace for writing (file lock).
    """

    def __init__(self, root: Path, settings: Settings | None = None) -> None:
        raise NotImplementedError

    root: Path
    state_dir: Path

    def index(
        self,
        paths: Iterable[str] | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> IndexSummary:
        """Bring the index up to date. `paths` (relative or absolute) limits the work to
        those files (a deleted path removes its chunks); None rescans the whole workspace."""
        raise NotImplementedError

    def search(
        self,
        query: str,
        *,
        limit: int | None = None,
        languages: list[str] | None = None,
        paths: list[str] | None = None,
        cancel: CancelToken | None = None,
    ) -> list[SearchHit]:
        """Hybrid (vector + lexical, RRF-fused) search; `paths` are gitignore-style globs."""
        raise NotImplementedError

    def context(
        self,
        query: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        budget: int | None = None,
        cancel: CancelToken | None = None,
    ) -> ContextResult:
        """Snippets relevant to `query` or to the code at `path`:`line` (1-based), packed to `budget` tokens."""
        raise NotImplementedError

    def symbols(self, query: str, *, limit: int = 100) -> list[SymbolMatch]:
        """Fuzzy symbol search over the symbols table (exact > prefix > word starts > subsequence)."""
        raise NotImplementedError

    def status(self) -> dict[str, object]:
        """files, chunks, vectors (count in Chroma), model, state_dir, last_indexed, indexing, last_error."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
