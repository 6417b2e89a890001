"""`Workspace`: the facade the CLI and the LSP server use; nothing else of the indexer is public.

A workspace is one folder with its own state directory (SQLite + Chroma) under the state
root, keyed by the folder's resolved path. Opening it takes an inter-process file lock:
Chroma is not safe with two writer processes on one directory, so a second process gets a
clear `IndexLocked` instead of a hang. Inside the process, queries may run on any thread
while `index()` runs on another; index runs are serialised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import filelock

from indexer.core.errors import (
    Cancelled,
    ForgeError,
    IndexLocked,
    IndexNotReady,
    NotIndexed,
    StateDirUnavailable,
    VectorStoreFailed,
)
from indexer.core.locations import private_dir, workspaces_dir
from indexer.core.protocols import Cancellable, Embedder
from indexer.core.settings import Settings, default_state_root, load_settings
from indexer.core.types import (
    ContextResult,
    IndexSummary,
    Progress,
    SearchHit,
    SymbolMatch,
    WorkspaceStatus,
)
from indexer.files.discover import IgnoreRules, discover, stat_changes
from indexer.pipeline import IndexContext, config_hash, embed_pending, run_index
from indexer.search import context as context_mod
from indexer.search import query as query_mod
from indexer.search.symbols import SymbolIndex
from indexer.store import recovery
from indexer.store import remote as remote_store
from indexer.store.health import Health, is_corruption
from indexer.store.index import IndexStore
from indexer.store.reads import read_counts
from indexer.store.remote import RemoteSpec

T = TypeVar("T")
log = logging.getLogger(__name__)


class CancelToken:
    """Set from another thread to stop long work at the next checkpoint (raises `Cancelled`)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def state_dir_for(root: Path, settings: Settings, rev: str | None = None) -> Path:
    """`<state root>/workspaces/<folder name>-<hash of its path>`: readable and collision-free.

    The index of git revision `rev` (`index --rev`) has its own folder, suffixed `-rev-<ref>`.
    """
    base = settings.state_dir or default_state_root()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.name)[:40] or "root"
    suffix = ""
    if rev is not None:
        from indexer.files.gitrev import safe_ref_name

        suffix = f"-rev-{safe_ref_name(rev)}"
    return workspaces_dir(Path(base)) / f"{safe}-{digest}{suffix}"


def has_index(state_dir: Path) -> bool:
    """Whether `state_dir` holds an index (its database, or vectors to refill one from)."""
    try:
        return (state_dir / "index.sqlite").is_file() or (state_dir / "chroma").is_dir()
    except OSError:  # e.g. a regular file where the state root should be: opening says why
        return True


def not_indexed(root: Path, rev: str | None = None) -> NotIndexed:
    command = f"forge-indexer index --rev {rev} {root}" if rev else f"forge-indexer index {root}"
    what = f"revision {rev} of {root}" if rev else str(root)
    return NotIndexed(f"{what} is not indexed yet: run `{command}`.")


class Workspace:
    """One indexed folder: owns its SQLite state, its Chroma collection and a shared embedder.

    Thread-safe: queries may run on any thread while `index()` runs on another; writes are
    serialised internally. Only one process may open a workspace at a time (file lock).
    """

    def __init__(
        self,
        root: Path | str,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        secrets: Callable[[str], str | None] | None = None,
        rev: str | None = None,
        create: bool = True,
    ) -> None:
        """`secrets(name)` reads a remote engine's credential ("chroma", "embedder") from the
        OS keyring; the server layer supplies it (the indexer never touches the keyring).
        `rev` (a git ref) makes this the index of that revision (`index --rev`), read from
        the repository's objects, kept apart from the working tree's index.
        `create=False` (read-only commands) raises `NotIndexed` for a folder with no index
        instead of creating its state folder."""
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ForgeError(f"Workspace folder {self.root} does not exist or is not a directory.")
        self.settings = settings if settings is not None else load_settings(self.root)[0]
        self.rev = rev
        self.state_dir = state_dir_for(self.root, self.settings, rev)
        if not create and not has_index(self.state_dir):
            # Nothing to read, and nothing is created: say why `index` would fail, if it would.
            raise recovery.check_writable(self.state_dir) or not_indexed(self.root, rev)
        self._lock = filelock.FileLock(str(self.state_dir / "lock"), timeout=0)
        try:
            private_dir(self.state_dir)
            self._lock.acquire()
        except filelock.Timeout:  # before OSError: a Timeout is a TimeoutError, an OSError
            owner = self._read_owner()
            raise IndexLocked(
                f"The index of {self.root} is in use by another forge-indexer process{owner}. "
                "Stop it (or use the running editor's daemon), then try again."
            ) from None
        except OSError as exc:
            raise recovery.translate(exc, self.state_dir) or recovery.unwritable(self.state_dir, exc) from None
        self._write_owner()
        self._embedder = embedder
        self._secrets = secrets
        self._embedder_lock = threading.Lock()
        self._index_lock = threading.Lock()
        # Guards `_store`: it is opened once, and only `discard_index`/`close` drop it, so
        # two Chroma clients on one directory cannot exist in this process.
        self._store_lock = threading.RLock()
        self._closed = False
        self.indexing = False
        self.last_error: str | None = None
        self.last_summary: IndexSummary | None = None
        self._progress: Progress | None = None
        # A run that failed leaves the index marked "not closed cleanly", so the next open
        # checks it more closely (`indexer.store.health`).
        self._run_failed = False
        #: Set by a server that repairs in the background: queries then never run the
        #: repair themselves; damage is reported through `on_damage` (called once per find).
        self.repair_in_background = False
        self.on_damage: Callable[[str], None] | None = None
        try:
            self._store: IndexStore | None = None
            self._rules = IgnoreRules.load(self.root, self.settings)
            self._symbols: SymbolIndex | None = None
        except BaseException:
            self._lock.release()
            raise

    # -- lifecycle ------------------------------------------------------------------
    def _read_owner(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.state_dir / "owner.json").read_text())
            return f" (pid {data['pid']})"
        return ""

    def _write_owner(self) -> None:
        with contextlib.suppress(OSError):
            (self.state_dir / "owner.json").write_text(
                json.dumps({"pid": os.getpid(), "root": str(self.root), "since": time.time()})
            )

    def close(self) -> None:
        """Close the index and release the workspace lock. Idempotent."""
        with self._store_lock:
            if self._closed:
                return
            self._closed = True
            store, self._store = self._store, None
            if store is not None:
                store.close(clean=not self._run_failed and self.state_dir.is_dir())
        with contextlib.suppress(OSError):
            (self.state_dir / "owner.json").unlink()
        with contextlib.suppress(OSError):
            self._lock.release()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lazily built parts -----------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                if self.settings.embedder_url:
                    from indexer.embed.remote import get_remote_embedder

                    self._embedder = get_remote_embedder(self.settings, self.remote_secret("embedder"))
                else:
                    from indexer.embed.llama import (
                        get_embedder,  # loads llama.cpp: only when needed
                    )

                    self._embedder = get_embedder(self.settings)
            return self._embedder

    def remote_secret(self, name: str) -> str | None:
        """The credential for remote engine `name`, if one is configured and stored."""
        return self._secrets(name) if self._secrets is not None else None

    def remote_status(self) -> dict[str, object]:
        """Each remote engine in use (embedder, chroma): URL, breaker state, last error."""
        out: dict[str, object] = {}
        for name, part in (("embedder", self._embedder), ("chroma", getattr(self._store, "vectors", None))):
            target = getattr(part, "remote_target", None)
            if target is not None:
                out[name] = target.status()
        return out

    @property
    def store(self) -> IndexStore:
        """The index, opened on first use (this loads the model: its dimension is needed)."""
        store = self._store
        return store if store is not None else self.open_store()

    def open_store(self) -> IndexStore:
        """Open the index once; every caller on every thread gets the same `IndexStore`."""
        dim = self.embedder.dim  # outside the lock: loading a model takes seconds
        with self._store_lock:
            if self._closed:
                raise ForgeError(f"The index of {self.root} is closed.")
            if self._store is None:
                if not self.state_dir.is_dir():
                    raise recovery.vanished(self.state_dir)
                want = config_hash(self.embedder)
                store = recovery.open_checked(self.state_dir, dim, want, self._remote_spec(want))
                self._symbols = SymbolIndex(store.sql)
                self._store = store
                with contextlib.suppress(OSError):
                    (self.state_dir / "workspace.json").write_text(json.dumps({"root": str(self.root)}))
            return self._store

    def _remote_spec(self, config: str) -> RemoteSpec | None:
        """Where the vectors live when `chromaUrl` is set (None: the embedded store)."""
        s = self.settings
        if not s.chroma_url:
            if s.team_index:
                raise ForgeError(
                    f"teamIndex {s.team_index!r} needs a Chroma server: set chromaUrl (user config, "
                    "environment or editor settings), or unset teamIndex."
                )
            return None
        headers: dict[str, str] = {}
        if s.chroma_auth_header:
            secret = self.remote_secret("chroma")
            if not secret:
                raise ForgeError(
                    f"chromaAuthHeader is set ({s.chroma_auth_header}) but no Chroma credential is stored: "
                    "run `forge-indexer remote-secret set chroma`, or unset chromaAuthHeader."
                )
            headers[s.chroma_auth_header] = secret
        name = (remote_store.collection_name(config, team=s.team_index) if s.team_index
                else remote_store.collection_name(config, workspace=remote_store.workspace_key(str(self.root))))
        return RemoteSpec(s.chroma_url, name, team=bool(s.team_index), headers=headers,
                          timeout_s=s.remote_timeout_s, retries=s.remote_retries)

    def _reopen_store(self) -> None:
        """Close the store (its next use reopens it through the checks, which heal it)."""
        with self._store_lock:
            store, self._store = self._store, None
            if store is not None:
                store.close()

    def _damage(self, kind: recovery.DamageKind, exc: BaseException) -> ForgeError:
        """Damage found in use: remember it, and have it healed (now, or in the background)."""
        return recovery.damage_found(self.state_dir, self.root, kind, exc, self.on_damage)

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run a read; damage it meets is healed (in a CLI, at once, then the read is retried)."""
        for attempt in (0, 1):
            try:
                return fn()
            except (Cancelled, IndexNotReady, StateDirUnavailable):
                raise
            except (sqlite3.DatabaseError, VectorStoreFailed) as exc:
                found = recovery.assess(exc, self.state_dir)
                if found is None:
                    raise
                if isinstance(found, ForgeError):
                    raise found from None
                err = self._damage(found, exc)
                if self.repair_in_background or attempt:
                    raise err from None
                self._reopen_store()
        raise AssertionError("unreachable")

    def discard_index(self) -> None:
        """Delete this workspace's index files (SQLite + Chroma); the next `index()` rebuilds.

        Works on a corrupt store too: nothing is opened first.
        """
        import shutil

        with self._index_lock, self._store_lock:
            store, self._store = self._store, None
            if store is not None:
                store.close()
            with contextlib.suppress(OSError):
                (self.state_dir / "health.json").unlink()
            for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (self.state_dir / name).unlink()
            shutil.rmtree(self.state_dir / "chroma", ignore_errors=True)

    def reload_rules(self) -> None:
        """Re-read ignore files (after a .gitignore / .forgeignore change)."""
        self._rules = IgnoreRules.load(self.root, self.settings)

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        return self._rules.is_ignored(rel_path, is_dir)

    # -- indexing -------------------------------------------------------------------
    def index(
        self,
        paths: Iterable[str] | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        embed: bool = True,
    ) -> IndexSummary:
        """Bring the index up to date. `paths` (relative or absolute) limits the work to
        those files (a deleted path removes its chunks); None rescans the whole workspace.

        Files are chunked and stored first (lexical and symbol search answer at once), then
        embedded. `embed=False` leaves the embedding backlog to `embed_pending()`.
        """
        def progress(p: Progress) -> None:
            self._progress = p
            if on_progress is not None:
                on_progress(p)

        def run() -> IndexSummary:
            with self._writing() as ctx:
                if self.rev is not None:
                    return run_rev(ctx, self.rev)
                summary = run_index(ctx, paths, on_progress=progress, cancel=cancel, embed=embed)
                self.last_summary = summary
                self.last_error = None
                return summary

        def run_rev(ctx: IndexContext, rev: str) -> IndexSummary:
            # A revision is indexed whole from its blobs; paths do not apply.
            from indexer.files.gitrev import RevisionSource

            with RevisionSource(self.root, rev, self.settings) as source:
                ctx.source = source
                summary = run_index(ctx, None, on_progress=progress, cancel=cancel, embed=embed)
                ctx.store.sql.set_meta("git_revision", f"{rev} {source.commit}")
            self.last_summary = summary
            self.last_error = None
            return summary

        return self._guarded(run)

    def stale_paths(self, seen: dict[str, tuple[int, int]] | None = None) -> list[str]:
        """Files added, changed (size or mtime) or deleted on disk since they were indexed.

        A stat-only scan for the periodic reconcile: no file is read and no model is loaded
        (an index that is not open yet answers []). `seen` is `stat_changes`' memory of new
        files already reported.
        """
        store = self._store
        if store is None or self.rev is not None:
            return []
        found = discover(self.root, self.settings, self._rules)
        known = {p: (r.size, r.mtime_ns) for p, r in store.sql.file_records(None).items()}
        return stat_changes(found, known, seen)

    def embed_pending(
        self,
        *,
        budget_s: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Cancellable | None = None,
        summary: IndexSummary | None = None,
    ) -> int:
        """Embed chunks stored without a vector (for up to `budget_s`); returns texts still waiting.

        Counts and timings are added to `summary` when given (a run split into slices)."""
        def run() -> int:
            with self._writing() as ctx:
                return embed_pending(ctx, budget_s=budget_s, on_progress=on_progress, cancel=cancel, summary=summary)

        return self._guarded(run)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[IndexContext]:
        """One writer at a time: marks the workspace busy and keeps the error a run ends with.

        A full disk, a read-only or vanished state folder become one-line errors; any
        failure leaves the index marked as not closed cleanly (checked at the next open).
        """
        with self._index_lock:
            self.indexing = True
            try:
                if not self.state_dir.is_dir():
                    raise self._vanished()
                yield IndexContext(self.root, self.settings, self.store, self.embedder, self._rules)
            except Exception as exc:
                self._run_failed = self._run_failed or not isinstance(exc, Cancelled)
                failure = None if isinstance(exc, ForgeError) and not isinstance(exc, VectorStoreFailed) else (
                    recovery.translate(exc, self.state_dir)
                )
                if failure is None and not self.state_dir.is_dir():
                    failure = self._vanished()
                shown = failure or exc
                self.last_error = str(shown) if isinstance(shown, ForgeError) else f"{type(exc).__name__}: {exc}"
                if failure is not None and failure is not exc:
                    raise failure from None
                raise
            finally:
                self.indexing = False

    def _vanished(self) -> StateDirUnavailable:
        """The state folder was deleted under us: save what the open database still reads
        into a re-created folder, close the old store (its next use opens the new one, which
        the next full run refills), and say so."""
        with self._store_lock:
            store = self._store
            if store is not None and not self.state_dir.is_dir():
                self._store = None
                recovery.save_vanished(self.state_dir, store, config_hash(self.embedder), self.embedder.dim)
        return recovery.vanished(self.state_dir)

    # -- queries --------------------------------------------------------------------
    def _ready(self) -> IndexStore:
        if not self.state_dir.is_dir() and not self.indexing:
            raise self._vanished()
        store = self.store
        if store.sql.get_meta("heal") and not self.repair_in_background and not self.indexing:
            # A damaged file was replaced at open: refill it before answering (no model
            # work: vectors come from the cache or from Chroma; phase 1 only).
            self.index(embed=False)
            store = self.store
        have = store.sql.get_meta("config_hash")
        if have is None or store.sql.get_meta("last_indexed") is None:
            if self.indexing:
                return store  # partial answers while the first run fills the index
            raise IndexNotReady(
                f"{self.root} has not been indexed yet: run `forge-indexer index {self.root}` "
                "(or wait for the editor's background indexing to finish)."
            )
        if have != config_hash(self.embedder):
            raise IndexNotReady(
                "The index was built with a different model or chunker and must be rebuilt: "
                f"run `forge-indexer index {self.root}`."
            )
        return store

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
        """Hybrid (vector + lexical) search, scored as a relevance in 0-1 (docs/search.md);
        `paths` are gitignore-style globs; hits below `min_score` are dropped."""
        return self._guarded(lambda: query_mod.search(
            self._ready(), self.embedder, query,
            limit=self.settings.search_limit if limit is None else limit,
            languages=languages, paths=paths, cancel=cancel, mode=mode, min_score=min_score,
        ))

    def context(
        self,
        query: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        budget: int | None = None,
        cancel: Cancellable | None = None,
    ) -> ContextResult:
        """Snippets relevant to `query` or to the code at `path`:`line` (1-based), packed to `budget` tokens."""
        rel = path
        if path is not None and Path(path).is_absolute():
            p = Path(path).resolve()
            rel = p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else path
        return self._guarded(lambda: context_mod.build_context(
            self._ready(),
            lambda q, n: self.search(q, limit=n, cancel=cancel),
            self.embedder.count_tokens,
            query=query, path=rel, line=line,
            budget=self.settings.context_budget if budget is None else budget,
        ))

    def symbols(self, query: str, *, limit: int = 100) -> list[SymbolMatch]:
        """Fuzzy symbol search over the symbols table (exact > prefix > word starts > subsequence)."""
        def run() -> list[SymbolMatch]:
            self._ready()
            assert self._symbols is not None
            return self._symbols.search(query, limit)

        return self._guarded(run)

    def status(self) -> WorkspaceStatus:
        """files, chunks, vectors, model, state_dir, last_indexed, indexing, last_error.

        Cheap enough to poll: it never loads the model or opens the index, and asks
        neither Chroma nor anything slow (counts come from SQLite, vectors from the writer).
        """
        store = self._store
        counts: dict[str, int] | None = None
        last: str | None = None
        vectors: int | None = None
        if store is not None:
            try:
                counts = store.sql.counts()
                last = store.sql.get_meta("last_indexed")
                vectors = store.vectors.known_count
            except sqlite3.DatabaseError as exc:
                if is_corruption(exc):  # said by `health` below; the next open heals it
                    self._damage("sqlite", exc)
            except Exception:  # a store being closed answers next time
                pass
        elif (self.state_dir / "index.sqlite").is_file():
            counts, last = read_counts(self.state_dir / "index.sqlite")
        p = self._progress
        emb = self._embedder
        return {
            "root": str(self.root),
            "files": counts["files"] if counts else 0,
            "chunks": counts["chunks"] if counts else 0,
            "symbols": counts["symbols"] if counts else 0,
            "vectors": vectors,
            "model": (getattr(emb, "model_name", None) or emb.model_id) if emb is not None else self._model_label(),
            "dim": emb.dim if emb is not None else None,
            "state_dir": str(self.state_dir),
            "last_indexed": (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(last))) if last else None
            ),
            "indexing": self.indexing,
            "progress": (
                {"files_done": p.files_done, "files_total": p.files_total, "chunks_done": p.chunks_done,
                 "chunks_total": p.chunks_total}
                if p is not None and self.indexing else None
            ),
            "coverage": self._coverage(counts["files"] if counts else 0),
            "semantic_coverage": (
                round(min(1.0, vectors / counts["chunks"]), 3)
                if counts and counts["chunks"] and vectors is not None else None
            ),
            "last_error": self.last_error,
            "health": self._health(store),
            "remote": self.remote_status(),
        }

    def health(self) -> dict[str, object]:
        """Damage found and repairs made (the `health` part of `status()`): reads one file."""
        return self._health(self._store)

    def _health(self, store: IndexStore | None) -> dict[str, object]:
        """"ok", "damaged" (found, repair not started), "repairing" or "repaired", with the
        last repairs made (read from `health.json`: a file read, cheap enough to poll)."""
        health = Health.load(self.state_dir)
        heal = None
        if store is not None:
            with contextlib.suppress(Exception):
                heal = store.sql.get_meta("heal")
        recent = bool(health.events) and health.events[-1].get("at", "") >= time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400)
        )
        state = "damaged" if health.damaged else "repairing" if heal else "repaired" if recent else "ok"
        if not self.state_dir.is_dir():
            state = "missing"
        return {"state": state, "events": health.events[-5:]}

    def _model_label(self) -> str:
        """The configured model's name, without loading it."""
        path = self.settings.model_path
        return Path(path).name if path else "all-MiniLM-L6-v2 (bundled)"

    def _coverage(self, files: int) -> float | None:
        """Share of the workspace's indexable files that are indexed (None until known)."""
        p = self._progress
        if p is not None and self.indexing and p.files_total:
            return round(p.files_done / p.files_total, 3)
        return 1.0 if files or self.last_summary else None
