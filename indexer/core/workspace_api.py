"""The workspace interface every caller programs against, whoever answers it.

`WorkspaceLike` is what the CLI asks of a workspace: the in-process `indexer.Workspace`,
the daemon's `server.daemon.remote.RemoteWorkspace` and the unit tests' fake all have it,
with the same typed results (`indexer.core.types`). `IndexingWorkspace` adds what the LSP
server drives while it keeps an index up to date (the local workspace and the fake).
`tests/unit/test_workspace_api.py` holds each implementation to these signatures, so a
member added here and missed somewhere fails a test instead of an `AttributeError` later.

Standard library and `indexer.core.types` only at import: the CLI's fast path loads this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from indexer.core.types import (
    ContextResult,
    IndexSummary,
    Progress,
    SearchHit,
    SymbolMatch,
    WorkspaceStatus,
)

if TYPE_CHECKING:
    from indexer.core.protocols import Cancellable


class WorkspaceLike(Protocol):
    """Search, context and status of one workspace (in-process or through its daemon)."""

    def search(
        self,
        query: str,
        *,
        limit: int | None = None,
        languages: list[str] | None = None,
        paths: list[str] | None = None,
        cancel: Cancellable | None = None,
        mode: str = "hybrid",
        min_score: float = 0.0,
    ) -> list[SearchHit]:
        """Hits scored as a relevance in 0-1, best first (docs/search.md)."""

    def context(
        self,
        query: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        budget: int | None = None,
        cancel: Cancellable | None = None,
    ) -> ContextResult:
        """Snippets for `query` or around `path`:`line` (1-based), packed to `budget` tokens."""

    def status(self) -> WorkspaceStatus:
        """What is indexed (snake_case keys; `server.queries.root_status` names them for the wire)."""

    def close(self) -> None: ...


class IndexingWorkspace(WorkspaceLike, Protocol):
    """A workspace the LSP server indexes and queries in its own process."""

    #: Damage found while serving is repaired in the background and reported here.
    repair_in_background: bool
    on_damage: Callable[[str], None] | None

    def symbols(self, query: str, *, limit: int = 100) -> list[SymbolMatch]: ...

    def index(
        self,
        paths: Iterable[str] | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        embed: bool = True,
    ) -> IndexSummary: ...

    def embed_pending(
        self,
        *,
        budget_s: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        summary: IndexSummary | None = None,
    ) -> int: ...

    def stale_paths(self, seen: dict[str, tuple[int, int]] | None = None) -> list[str]: ...

    def reload_rules(self) -> None:
        """Re-read ignore files (after a .gitignore / .forgeignore change)."""

    def health(self) -> dict[str, object]: ...


#: The members `tests/unit/test_workspace_api.py` compares, per protocol.
WORKSPACE_MEMBERS = ("search", "context", "status", "close")
INDEXING_MEMBERS = (*WORKSPACE_MEMBERS, "symbols", "index", "embed_pending", "stale_paths", "reload_rules", "health")
