"""Small frozen value types shared by the pipeline stages.

Stages are plain functions over these; side effects live at the edges (discover, embed,
store). Line numbers are 1-based and inclusive everywhere in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

SymbolKind = Literal[
    "function", "method", "class", "interface", "struct", "enum", "trait", "impl",
    "module", "namespace", "type", "constant", "variable", "section", "block",
]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A named definition found by the chunker (for `workspace/symbol`)."""

    name: str
    kind: SymbolKind
    container: str | None  # enclosing class/module/namespace, dotted, or None at top level
    start_line: int
    end_line: int
    start_col: int = 0  # 0-based column of the name (LSP wants it)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One embeddable piece of a file.

    `text` is what gets lexically indexed: the relative path on its own first line, then a
    short header (enclosing containers, signature) and the code itself; the model embeds it
    without the path line (`indexer.chunking.embedding_input`). `body` is the code only,
    exactly as in the file from `start_line` to `end_line`, for previews and context.
    """

    text: str
    body: str
    start_line: int
    end_line: int
    symbol: str | None  # qualified name of the main symbol, e.g. "Parser.parse"
    kind: SymbolKind | None
    tokens: int  # token count of `text` with the model's tokenizer


@dataclass(frozen=True, slots=True)
class ChunkedFile:
    """Output of chunking one file."""

    language: str  # "python", "typescript", ..., "markdown", "text"
    chunks: tuple[Chunk, ...]
    symbols: tuple[Symbol, ...]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file that discovery accepted for indexing."""

    path: str  # POSIX path relative to the workspace root
    abs_path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file discovery or chunking passed over, with a reason a user can read."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that failed to index (unreadable, vanished...), with the error text."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result."""

    path: str
    start_line: int
    end_line: int
    score: float
    symbol: str | None
    language: str
    kind: str | None
    chunk_id: str
    preview: str  # the chunk body (code only, no header)


@dataclass(frozen=True, slots=True)
class Snippet:
    """One packed piece of context for an LLM prompt."""

    path: str
    start_line: int
    end_line: int
    text: str
    score: float
    tokens: int


@dataclass(frozen=True, slots=True)
class ContextResult:
    snippets: tuple[Snippet, ...]
    tokens_used: int
    budget: int
    #: Whether the file asked about (`path`) is in the index; None when none was asked.
    file_indexed: bool | None = None


@dataclass(frozen=True, slots=True)
class SymbolMatch:
    """A `workspace/symbol` answer row."""

    name: str
    kind: str
    container: str | None
    path: str
    start_line: int
    end_line: int
    start_col: int
    score: float


class WorkspaceStatus(TypedDict, total=False):
    """`status()` of a workspace, snake_case throughout; the CLI prints it as it is
    (`status --json`). A daemon sends it camelCase (`forge/status`, named in
    `server.queries.root_status`); `server.daemon.remote.status_from_wire` reads it back."""

    root: str
    files: int | None
    chunks: int | None
    symbols: int | None
    vectors: int | None
    model: str | None
    dim: int | None
    state_dir: str | None
    last_indexed: str | None
    indexing: bool
    progress: dict[str, int] | None
    coverage: float | None
    semantic_coverage: float | None
    last_error: str | None
    health: dict[str, Any] | None
    remote: dict[str, Any]
    #: Through a daemon only: the root's state there, the daemon's pid, whether it paused indexing.
    state: str | None
    daemon_pid: int
    paused: bool
    #: `status --rev`: "<ref> <commit>" of the last `index --rev`.
    revision: str | None


@dataclass(slots=True)
class IndexSummary:
    """What one indexing run did; `to_json()` is the `index --json` document."""

    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_deleted: int = 0
    chunks_stored: int = 0  # chunks written by phase 1 (new or changed files)
    chunks_embedded: int = 0  # distinct chunk texts embedded by phase 2
    chunks_reused: int = 0  # chunks that needed no embedding (text seen before)
    tokens_embedded: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: {"discover": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0, "total": 0.0}
    )
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    full_reembed: bool = False  # the index config changed, so everything was re-embedded
    repaired: dict[str, int] = field(default_factory=dict)  # crash repair counts

    def to_json(self) -> dict[str, object]:
        return {
            "files_indexed": self.files_indexed,
            "files_unchanged": self.files_unchanged,
            "files_skipped": self.files_skipped,
            "files_deleted": self.files_deleted,
            "chunks_stored": self.chunks_stored,
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "tokens_embedded": self.tokens_embedded,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "errors": [{"path": e.path, "error": e.error} for e in self.errors],
            "full_reembed": self.full_reembed,
            "repaired": dict(self.repaired),
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress tick from a long operation (indexing)."""

    phase: Literal["discover", "index", "embed", "done"]
    files_done: int
    files_total: int
    chunks_done: int
    chunks_total: int
    message: str = ""
