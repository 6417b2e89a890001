"""Indexing in two phases: (1) discover → hash → chunk → store rows, (2) embed what is new.

Phase 1 (`run_index`) is fast (seconds for thousands of files): each flush swaps a batch
of files' rows (chunks, symbols, the FTS5 index) in one SQLite transaction, which also
journals the Chroma writes for chunks whose text already has a cached vector. From the
first flush on, lexical and symbol search answer for everything stored so far.

Phase 2 (`embed_pending`) embeds chunk texts that have no cached vector yet, a page at a
time: each page's vectors and the journal entries of the chunks that use them are written
in one transaction, then the journal is applied to Chroma. Semantic coverage grows page
by page; `status` reports it. A chunk without a vector is a normal, temporary state, and
the next run (or the next page) embeds it, so a crash or a cancel between any two steps
loses nothing: `IndexStore.repair()` converges, and the backlog is still in SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.chunking import CHUNKER_VERSION, SUPPORTED_LANGUAGES, chunk_file, embedding_input
from indexer.core import testhooks
from indexer.core.errors import Cancelled
from indexer.core.protocols import Cancellable, Embedder, EmbedInputsFailed
from indexer.core.settings import Settings
from indexer.core.types import FileError, IndexSummary, Progress, Skipped, SourceFile, Symbol
from indexer.files.discover import (
    FileSource,
    IgnoreRules,
    LoadedSource,
    check_path,
    discover,
    load_source,
)
from indexer.search.ranking import role_of
from indexer.store.index import (
    FileRecord,
    IndexStore,
    PendingText,
    StoredChunk,
    chunk_id,
    text_hash,
)

log = logging.getLogger(__name__)

INDEX_FORMAT = "1"  # bump when the stored layout or the id scheme changes
_FLUSH_CHUNKS = 2000  # chunks per phase-1 flush: no embedding here, so flushes are cheap
_FLUSH_FILES = 200
EMBED_PAGE = 128  # texts per phase-2 page: bounds the work lost to a crash and a save's wait
BRIEF_ROLES = frozenset({"test", "fixture", "generated", "vendor"})  # see model_input



@dataclass(slots=True)
class IndexContext:
    root: Path
    settings: Settings
    store: IndexStore
    embedder: Embedder
    rules: IgnoreRules
    #: Files from somewhere other than the working tree (a git revision); full runs only.
    source: FileSource | None = None


def config_hash(embedder: Embedder) -> str:
    """Everything that makes stored vectors or chunks incompatible with a new run."""
    parts = {
        "format": INDEX_FORMAT,
        "chunker": CHUNKER_VERSION,
        "model": embedder.model_id,
        "dim": embedder.dim,
        "max_tokens": embedder.max_tokens,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ensure_config(ctx: IndexContext) -> bool:
    """Reset the index if the model/chunker changed since it was built. True if reset."""
    want = config_hash(ctx.embedder)
    have = ctx.store.sql.get_meta("config_hash")
    if have == want:
        return False
    # A remote embedder proves its vectors match the local model's before the index is
    # (re)built with them: raises RemoteMismatch, leaving the index as it was.
    verify = getattr(ctx.embedder, "verify", None)
    if callable(verify):
        verify()
    if have is not None:
        log.warning("index config changed (%s -> %s): re-embedding everything", have, want)
    ctx.store.sql.reset()
    ctx.store.vectors.reset()
    ctx.store.sql.set_meta("config_hash", want)
    return have is not None


@dataclass(slots=True)
class _Pending:
    """A file chunked and waiting for the next flush."""

    record: FileRecord
    chunks: list[StoredChunk]
    symbols: tuple[Symbol, ...]


@dataclass(slots=True)
class _Batch:
    files: list[_Pending] = field(default_factory=list)
    touched: list[SourceFile] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def new_chunk_count(self) -> int:
        return sum(len(p.chunks) for p in self.files)

    def empty(self) -> bool:
        return not (self.files or self.touched or self.deleted)


def _relative(root: Path, path: str) -> str | None:
    """POSIX path relative to `root` (already resolved), or None if it lies outside."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    for candidate in (p, p.resolve()):
        if candidate.is_relative_to(root):
            return candidate.relative_to(root).as_posix()
    return None


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


class _Run:
    """State of one `run_index` call (kept off the module so runs never share anything)."""

    def __init__(
        self,
        ctx: IndexContext,
        on_progress: Callable[[Progress], None] | None,
        cancel: Cancellable | None,
    ) -> None:
        self.ctx = ctx
        self.on_progress = on_progress
        self.cancel = cancel
        self.summary = IndexSummary()
        self.files_total = 0
        self.files_done = 0
        self.chunks_done = 0

    def _tick(self, phase: str = "index", message: str = "") -> None:
        if self.on_progress is not None:
            # The chunk total is unknown until every file is chunked: 0 says so.
            self.on_progress(
                Progress(phase, self.files_done, self.files_total, self.chunks_done, 0, message)  # type: ignore[arg-type]
            )

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled("Indexing was cancelled; what was indexed so far is kept.")

    def _time(self, key: str, since: float) -> float:
        now = time.perf_counter()
        self.summary.seconds[key] += now - since
        return now

    # -- stages ---------------------------------------------------------------------
    def select(self, paths: Iterable[str] | None) -> tuple[list[SourceFile], list[str]]:
        """Files to look at, and indexed paths that must go. Records skips and errors."""
        t = time.perf_counter()
        ctx, s = self.ctx, self.summary
        rels = None if paths is None else [r for r in (_relative(ctx.root, p) for p in paths) if r]
        known = ctx.store.sql.file_records(rels)  # a save reads its own row, not every file's
        candidates: list[SourceFile] = []
        gone: list[str] = []
        if paths is None:
            source = ctx.source
            found = source.discover() if source is not None else discover(ctx.root, ctx.settings, ctx.rules)
            candidates = found.files
            s.skipped.extend(found.skipped)
            s.errors.extend(found.errors)
            keep = {f.path for f in candidates}
            # An unreadable file or folder keeps what was indexed under it: stale beats lost.
            failed = tuple(e.path for e in found.errors)
            gone = [p for p in known if p not in keep and not _under(p, failed)]
        else:
            for raw in dict.fromkeys(paths):
                rel = _relative(ctx.root, raw)
                if rel is None:
                    s.skipped.append(Skipped(raw, "outside the workspace"))
                    continue
                res = check_path(ctx.root, rel, ctx.settings, ctx.rules)
                if isinstance(res, SourceFile):
                    candidates.append(res)
                elif isinstance(res, FileError):
                    s.errors.append(res)  # keep what was indexed before: better stale than lost
                else:
                    if isinstance(res, Skipped):
                        s.skipped.append(res)
                    if rel in known:
                        gone.append(rel)
        self._time("discover", t)
        return candidates, gone

    def run(self, paths: Iterable[str] | None) -> IndexSummary:
        ctx, s = self.ctx, self.summary
        started = time.perf_counter()
        self._tick("discover", "Looking for files")
        candidates, gone = self.select(paths)
        known = ctx.store.sql.file_records(None if paths is None else [f.path for f in candidates])
        todo: list[SourceFile] = []
        for f in candidates:
            rec = known.get(f.path)
            if rec is not None and rec.size == f.size and rec.mtime_ns == f.mtime_ns:
                s.files_unchanged += 1
            else:
                todo.append(f)
        self.files_total = len(candidates)
        self.files_done = s.files_unchanged
        self._tick()

        batch = _Batch(deleted=list(gone))
        for f in todo:
            self._check_cancel()
            self._prepare(f, known.get(f.path), batch)
            self.files_done += 1
            if batch.new_chunk_count() >= _FLUSH_CHUNKS or len(batch.files) + len(batch.touched) >= _FLUSH_FILES:
                self._flush(batch)
                batch = _Batch()
        self._flush(batch)
        s.files_deleted = len(gone)
        s.files_skipped = len(s.skipped)
        s.seconds["total"] = time.perf_counter() - started
        self._tick()
        return s

    def _prepare(self, f: SourceFile, rec: FileRecord | None, batch: _Batch) -> None:
        """Read, hash and chunk one file into the batch."""
        t = time.perf_counter()
        ctx, s = self.ctx, self.summary
        loaded = ctx.source.load(f) if ctx.source is not None else load_source(f, ctx.settings)
        if not isinstance(loaded, LoadedSource):
            if isinstance(loaded, Skipped):
                s.skipped.append(loaded)
                if rec is not None:
                    batch.deleted.append(f.path)
            else:
                s.errors.append(loaded)
            self._time("chunk", t)
            return
        if rec is not None and rec.sha256 == loaded.sha256:
            s.files_unchanged += 1  # only the stat changed (touch, checkout of equal content)
            batch.touched.append(f)
            self._time("chunk", t)
            return
        try:
            chunked = chunk_file(
                f.path, loaded.text, count_tokens=ctx.embedder.count_tokens, max_tokens=ctx.embedder.max_tokens
            )
        except Exception as exc:  # a chunker bug must cost one file, never the run
            log.exception("chunking failed for %s", f.path)
            s.errors.append(FileError(f.path, f"chunking failed: {exc}"))
            self._time("chunk", t)
            return
        occurrences: dict[str, int] = {}
        stored: list[StoredChunk] = []
        for ordinal, c in enumerate(chunked.chunks):
            h = text_hash(c.text)
            n = occurrences.get(h, 0)
            occurrences[h] = n + 1
            # A team index keys entries by file content too (see indexer.store.remote).
            file_hash = loaded.sha256 if ctx.store.shared else None
            stored.append(StoredChunk(chunk_id(f.path, h, n, file_hash), ordinal, c, h))
        record = FileRecord(f.path, loaded.sha256, f.size, f.mtime_ns, chunked.language)
        batch.files.append(_Pending(record, stored, chunked.symbols))
        s.files_indexed += 1
        self._time("chunk", t)

    def _flush(self, batch: _Batch) -> None:
        """Swap the batch's rows (and journal the Chroma writes) in one transaction, then
        push to Chroma the chunks whose vector is already cached (moved or unchanged text)."""
        if batch.empty():
            return
        ctx, s = self.ctx, self.summary
        t = time.perf_counter()
        with ctx.store.sql.transaction() as conn:
            for path in batch.deleted:
                ctx.store.sql.remove_file(conn, path)
            for p in batch.files:
                ctx.store.sql.replace_file(conn, p.record, p.chunks, p.symbols)
            for f in batch.touched:
                ctx.store.sql.touch_file(conn, f.path, f.size, f.mtime_ns)
            ctx.store.sql.set_meta("last_indexed", str(time.time()), conn)
        testhooks.crash_point("after-sqlite-commit")
        ctx.store.apply_journal()
        cached = ctx.store.sql.known_vectors(c.text_hash for p in batch.files for c in p.chunks)
        s.chunks_reused += sum(c.text_hash in cached for p in batch.files for c in p.chunks)
        self._time("store", t)
        self.chunks_done += batch.new_chunk_count()
        s.chunks_stored += batch.new_chunk_count()
        self._tick()


def run_index(
    ctx: IndexContext,
    paths: Iterable[str] | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Cancellable | None = None,
    embed: bool = True,
) -> IndexSummary:
    """Bring the index of `ctx.root` up to date (all files, or only `paths`).

    With `embed` (the default) phase 2 runs too: for a full run the whole backlog, for
    `paths` only their chunks. Without it the caller embeds later (`embed_pending`).
    """
    t = time.perf_counter()
    if paths is None:
        # A full run reads every table anyway; a damaged page must not go unnoticed by it.
        ctx.store.sql.check_integrity()
    reset = ensure_config(ctx)
    # Set by `indexer.store.recovery` when a damaged file was replaced: a full run heals it.
    heal = ctx.store.sql.get_meta("heal")
    if paths is None or reset or heal:
        # Reconciling pages through every Chroma id: once per full run, never per save.
        # A rebuilt SQLite file keeps Chroma's vectors until they are harvested below.
        repaired = ctx.store.repair(keep_orphans=heal == "sqlite")
    else:
        ctx.store.apply_journal()
        repaired = {}
    run = _Run(ctx, on_progress, cancel)
    run.summary.seconds["store"] += time.perf_counter() - t
    run.summary.full_reembed = reset
    run.summary.repaired = repaired
    scope = None if reset or heal else paths
    summary = run.run(scope)
    if heal:
        t = time.perf_counter()
        if heal == "sqlite":
            got = ctx.store.harvest_from_chroma()
            if got:
                summary.repaired["vectors_from_chroma"] = got
        for key, value in ctx.store.repair().items():
            summary.repaired[key] = summary.repaired.get(key, 0) + value
        ctx.store.sql.delete_meta("heal")
        summary.seconds["store"] += time.perf_counter() - t
    if ctx.store.shared:
        # Team index: take the vectors other machines already stored for the same content.
        only = None if scope is None else [p for p in (_relative(ctx.root, x) for x in scope) if p]
        summary.chunks_reused += ctx.store.adopt_shared(only)
    if embed:
        only = None if scope is None else [p for p in (_relative(ctx.root, x) for x in scope) if p]
        embed_pending(ctx, paths=only, on_progress=on_progress, cancel=cancel, summary=summary)
        if on_progress is not None:
            on_progress(Progress("done", run.files_done, run.files_total, summary.chunks_stored, summary.chunks_stored))
    if scope is None:
        ctx.store.sql.gc_vectors()
    summary.seconds["total"] = time.perf_counter() - t
    return summary


def embed_pending(
    ctx: IndexContext,
    *,
    paths: Sequence[str] | None = None,
    budget_s: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Cancellable | None = None,
    summary: IndexSummary | None = None,
) -> int:
    """Phase 2: embed chunk texts that have no vector yet, a page at a time.

    Stops when none is left, when `budget_s` has passed (so an indexing thread can serve a
    save in between), or on cancel (raises `Cancelled`; finished pages are kept). Counts
    go into `summary` if given. Returns the number of texts still waiting.
    """
    s = summary if summary is not None else IndexSummary()
    started = time.perf_counter()
    chunks_left = ctx.store.sql.pending_counts()[0] if paths is None and on_progress else 0
    done_chunks = 0
    cursor = 0
    while True:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("Indexing was cancelled; what was indexed so far is kept.")
        page, cursor = ctx.store.sql.pending_texts(EMBED_PAGE, paths, cursor)  # module-level: tunable
        if not page:
            return 0
        t = time.perf_counter()
        inputs = [model_input(p) for p in page]
        # Texts of different files can give the model the same input (copied files, brief
        # tests that open alike, one-line glue): each distinct input is embedded once.
        distinct = list(dict.fromkeys(inputs))
        row = {x: i for i, x in enumerate(distinct)}
        try:
            vecs = ctx.embedder.embed_documents(distinct)
        except EmbedInputsFailed as exc:
            # A remote embedder rejected some texts: store the rest, report the files of
            # the rejected ones (their chunks keep no vector; lexical search still finds them).
            bad = {i: exc.failed[row[x]] for i, x in enumerate(inputs) if row[x] in exc.failed}
            _report_failed(ctx, s, [(page[i].text_hash, why) for i, why in bad.items()])
            keep = [i for i in range(len(page)) if i not in bad]
            page, inputs, vecs = [page[i] for i in keep], [inputs[i] for i in keep], exc.vectors
            distinct = [x for i, x in enumerate(distinct) if i not in exc.failed]
        vecs = vecs[[row[x] for x in inputs]]
        t2 = time.perf_counter()
        s.seconds["embed"] += t2 - t
        got = ctx.store.sql.add_vectors([p.text_hash for p in page], vecs)
        ctx.store.apply_journal()
        s.seconds["store"] += time.perf_counter() - t2
        s.chunks_embedded += len(page)
        s.chunks_reused += max(0, got - len(page))
        # What the model was given, cut at its input limit.
        s.tokens_embedded += sum(min(ctx.embedder.count_tokens(x), ctx.embedder.input_tokens) for x in distinct)
        done_chunks += got
        if on_progress is not None and paths is None:
            on_progress(Progress("embed", 0, 0, done_chunks, chunks_left))
        if budget_s is not None and time.perf_counter() - started >= budget_s:
            return ctx.store.sql.pending_counts()[1]


def model_input(pending: PendingText) -> str:
    """What the model embeds of a chunk text.

    Two kinds of chunk get a brief input (container, first line, first words of code; see
    `embedding_input`); the lexical index still reads all of their text:

    - chunks of tests, fixtures, generated and vendored files: search demotes them for
      plain queries anyway, a query that asks for them still meets their name and opening
      words, and in repositories with tests they hold a third or more of the code, the
      largest share of embedding time that plain queries never benefit from;
    - glue, the code between definitions of a parsed language (imports, re-exports,
      constants, module statements): a quarter of the tokens, mostly import lists whose
      words the lexical side matches as well; a module's opening comment or first
      statement says what it holds.

    Both measured in docs/benchmarks.md.
    """
    glue = pending.kind is None and pending.language in SUPPORTED_LANGUAGES
    brief = glue or role_of(pending.path) in BRIEF_ROLES
    return embedding_input(pending.text, brief_from=pending.first_line if brief else None)


def _report_failed(ctx: IndexContext, s: IndexSummary, failed: Sequence[tuple[str, str]]) -> None:
    """A file error for every file holding a chunk whose text could not be embedded."""
    for h, why in failed:
        for path in ctx.store.sql.paths_holding_text(h):
            err = FileError(path, f"a chunk could not be embedded: {why}")
            if err not in s.errors:  # a run in slices meets the same text again
                s.errors.append(err)
                log.warning("could not embed a chunk of %s: %s", path, why)
