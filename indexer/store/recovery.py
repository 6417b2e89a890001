"""Opening an index that may be damaged, and turning store failures into one-line errors.

`open_checked` is how a workspace opens its store: it runs the checks of `indexer.store.health`
and heals what they find before anything can crash or mislead:

- a damaged SQLite file is moved aside (`index.damaged-<time>.sqlite`, with its WAL) and a
  fresh one is created, seeded with every vector that can still be read from the damaged
  file; the meta key `heal` = "sqlite" makes the next full run rescan the files, take the
  vectors Chroma still holds for the re-created chunk ids, and only then reconcile;
- a damaged Chroma folder is renamed `chroma.quarantined-<time>` and re-created empty;
  `heal` = "chroma" makes the next full run (or the CLI's query, at once) restore every
  vector from the SQLite cache: nothing is embedded again.

Every repair is recorded in `health.json` (see `indexer.store.health`) and shown by `status`.
Failures that are not damage (full disk, read-only or vanished state folder) become
`DiskFull` / `StateDirUnavailable` with the cause and the one action that fixes it.
Damage met while the store is in use is judged here too, for the workspace and the
daemon alike: `assess` (what an error means), `damage_found` (record it, say so),
`after_failure` and `final_error` (what a failed run does next, and what it reports).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from indexer.core.errors import (
    DiskFull,
    ForgeError,
    StateDirUnavailable,
    StateDirVanished,
    StoreBusy,
    StoreCorrupt,
    StoreRepairing,
    VectorStoreFailed,
)
from indexer.core.locations import private_dir
from indexer.store.health import (
    Health,
    check_chroma,
    is_corruption,
    is_disk_full,
    is_read_only,
    probe_chroma,
    quick_check,
    stamp,
)
from indexer.store.index import IndexStore, SqliteState, VectorStore
from indexer.store.remote import RemoteSpec, RemoteVectorStore, open_remote
from indexer.store.salvage import damaged_config_hash, open_damaged, readable_vectors

log = logging.getLogger(__name__)

DB_NAME = "index.sqlite"
_MB = 1024 * 1024


# -- failures that are not damage ---------------------------------------------------------


def free_mb(path: Path) -> int:
    for p in (path, *path.parents):
        with contextlib.suppress(OSError):
            return int(shutil.disk_usage(p).free // _MB)
    return 0


def dir_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def disk_full(state_dir: Path, need_bytes: int) -> DiskFull:
    need = max(1, -(-need_bytes // _MB))
    return DiskFull(
        f"disk full: {free_mb(state_dir)} MB free in {state_dir}, need about {need} MB. "
        "Nothing is damaged: free some space, then run the same command again (it resumes where it stopped)."
    )


_ELSEWHERE = "point --state-dir (or FORGE_INDEXER_STATE_DIR) at a writable folder."


def unwritable(state_dir: Path, exc: BaseException, where: Path | None = None) -> StateDirUnavailable:
    """`state_dir` (or `where`, the existing folder it would be created in) cannot be written."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if where is None:
        where = next((p for p in (state_dir, *state_dir.parents) if p.is_dir()), state_dir)
    if where == state_dir:
        return StateDirUnavailable(f"the index folder {state_dir} is not writable ({reason})",
                                   f"make it writable, or {_ELSEWHERE}")
    return StateDirUnavailable(f"the index folder {state_dir} cannot be created: {where} is not writable ({reason})",
                               f"make {where} writable, or {_ELSEWHERE}")


#: What creating or writing the state folder fails with when it cannot be written (as
#: opposed to one deleted while in use): no permission, immutable, read-only file system,
#: a regular file in the path, or a file where the folder should be.
CANNOT_CREATE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST})


def in_the_way(state_dir: Path) -> Path | None:
    """`state_dir` or the nearest of its parents that exists, if that is not a folder."""
    for p in (state_dir, *state_dir.parents):
        try:
            info = p.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None
        return None if stat.S_ISDIR(info.st_mode) else p
    return None


def not_a_folder(state_dir: Path, blocker: Path) -> StateDirUnavailable:
    """A regular file stands where the state folder (or one of its parents) should be."""
    if blocker == state_dir:
        return StateDirUnavailable(f"the index folder {state_dir} is a file, not a folder",
                                   f"move or delete it, or {_ELSEWHERE}")
    return StateDirUnavailable(f"the index folder {state_dir} cannot be created: {blocker} is a file, not a folder",
                               f"move or delete {blocker}, or {_ELSEWHERE}")


def check_writable(state_dir: Path) -> StateDirUnavailable | None:
    """Why the state folder cannot be created or written, or None.

    Creates nothing that stays: the nearest existing folder is probed with a temporary file
    (`os.access` says yes to root on an immutable folder)."""
    blocker = in_the_way(state_dir)
    if blocker is not None:
        return not_a_folder(state_dir, blocker)
    existing = next((p for p in (state_dir, *state_dir.parents) if p.is_dir()), None)
    if existing is None:
        return None
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".forge-indexer-probe-"):
            pass
    except OSError as exc:
        if is_disk_full(exc):
            return None  # said as a full disk where it matters
        return unwritable(state_dir, exc, existing)
    return None


def vanished(state_dir: Path) -> StateDirVanished:
    return StateDirVanished(
        f"the index folder {state_dir} was deleted while forge-indexer was running",
        "run the same command again to re-create it (the editor's server re-creates it by itself).",
    )


def save_vanished(state_dir: Path, store: IndexStore, want_hash: str, dim: int) -> None:
    """The state folder was deleted under a running `store`: re-create it and save into it
    the vectors the open database still reads (its file lives on until closed), then close
    the store. Best effort: if nothing can be saved, the next full run rebuilds from scratch."""
    try:
        private_dir(state_dir)
        health = Health(config=want_hash)
        sql = rebuild_sqlite(state_dir, "the index folder was deleted while in use", want_hash, dim, health,
                             source=store.sql.conn)
        sql.close()
        health.save(state_dir)
    except Exception as exc:
        log.warning("could not save the vectors of %s: %s", state_dir, exc)
    finally:
        store.close()


def translate(exc: BaseException, state_dir: Path, need_bytes: int = 0) -> ForgeError | None:
    """The user-facing error for a store failure that is not damage, or None."""
    if isinstance(exc, DiskFull | StateDirUnavailable):
        return exc
    if is_disk_full(exc):
        return disk_full(state_dir, need_bytes or estimate_need(state_dir))
    blocker = in_the_way(state_dir)
    if blocker is not None:
        return not_a_folder(state_dir, blocker)
    if not state_dir.is_dir():
        # Never there (it could not be created) is not the same as deleted while in use.
        if getattr(exc, "errno", None) in CANNOT_CREATE or is_read_only(exc):
            return unwritable(state_dir, exc)
        return vanished(state_dir)
    if is_read_only(exc):
        return unwritable(state_dir, exc)
    if isinstance(exc, StoreBusy | sqlite3.OperationalError | OSError):
        # SQLite says only "unable to open database file" when it cannot create the WAL
        # beside the database in a folder that cannot be written: probe the folder.
        return check_writable(state_dir)
    return None


def estimate_need(state_dir: Path) -> int:
    """Room a run needs beyond what the index uses now: its WAL, an HNSW resize and slack."""
    return max(32 * _MB, dir_bytes(state_dir) // 2)


# -- damage --------------------------------------------------------------------------------


def quarantine_chroma(state_dir: Path) -> Path:
    dest = state_dir / f"chroma.quarantined-{stamp()}"
    os.replace(state_dir / "chroma", dest)
    return dest


def move_aside_sqlite(state_dir: Path) -> Path:
    """Rename the database and its WAL/SHM together, so the moved copy is still readable."""
    dest = state_dir / f"index.damaged-{stamp()}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        src = state_dir / f"{DB_NAME}{suffix}"
        if src.exists():
            os.replace(src, Path(f"{dest}{suffix}"))
    return dest


def salvage_vectors(source: sqlite3.Connection, target: SqliteState, want_hash: str, dim: int) -> int:
    """Copy every readable cached vector of `source` into `target`; returns how many.

    Only if the damaged index was built with the same model and chunker (its config hash
    is `want_hash`, or unreadable and the vectors have the right size).
    """
    have = damaged_config_hash(source)
    if have is not None and have != want_hash:
        return 0
    n = 0
    batch: list[tuple[str, bytes]] = []
    for h, blob in readable_vectors(source):
        if isinstance(h, str) and isinstance(blob, bytes) and len(blob) == dim * 4:
            batch.append((h, blob))
        if len(batch) >= 2000:
            n += _insert(target, batch)
    return n + _insert(target, batch)


def _insert(target: SqliteState, batch: list[tuple[str, bytes]]) -> int:
    target.put_vector_bytes(batch)
    n = len(batch)
    batch.clear()
    return n


def rebuild_sqlite(state_dir: Path, cause: str, want_hash: str, dim: int, health: Health,
                   source: sqlite3.Connection | None = None) -> SqliteState:
    """Replace a damaged (or vanished) database by a fresh one seeded with what can be saved.

    `source` is an open connection to read from (the database of a state folder deleted
    under a running server is still readable through it); by default the damaged file is
    moved aside and read from its new name.
    """
    aside: Path | None = None
    if source is None:
        aside = move_aside_sqlite(state_dir)
        source = open_damaged(aside)
    sql = SqliteState(state_dir / DB_NAME)
    try:
        saved = salvage_vectors(source, sql, want_hash, dim)
    finally:
        if aside is not None:
            source.close()
    sql.set_meta("config_hash", want_hash)
    sql.set_meta("heal", "sqlite")
    health.note(
        "index database rebuilt", cause,
        moved_to=str(aside) if aside else None, vectors_salvaged=saved,
    )
    log.warning("index database %s was damaged (%s); rebuilt, %d vectors salvaged", state_dir / DB_NAME, cause, saved)
    return sql


def open_checked(state_dir: Path, dim: int, want_hash: str, remote: RemoteSpec | None = None) -> IndexStore:
    """Open (and if need be heal) the store of `state_dir`. See the module docstring.

    With `remote` the vectors live on a Chroma server: the local HNSW checks and the
    quarantine do not apply; the probe is a heartbeat and a count, and a server that is
    down gives `RemoteUnavailable` (never "corrupt").
    """
    health = Health.load(state_dir)
    db = state_dir / DB_NAME
    damaged = health.damaged
    health.damaged = {}
    try:
        sqlite_bad = damaged.get("sqlite")
        if sqlite_bad is None and db.exists() and health.clean is not True:
            sqlite_bad = quick_check(db)
        sql: SqliteState | None = None
        if sqlite_bad is None:
            try:
                sql = SqliteState(db)
            except StoreCorrupt as exc:
                sqlite_bad = str(exc.__cause__ or exc)
        if sql is None:
            sql = rebuild_sqlite(state_dir, sqlite_bad or "unreadable", want_hash, dim, health)
        try:
            vectors: VectorStore | RemoteVectorStore
            if remote is not None:
                vectors = open_remote(remote, dim)
            else:
                vectors = _open_local(state_dir, sql, health, damaged, dim)
        except BaseException:
            sql.close()
            raise
        if (sql.get_meta("config_hash") is None and vectors.known_count and health.config == want_hash
                and not vectors.shared):
            # The database is new (deleted, or truncated to nothing) but Chroma still holds
            # this model's vectors: refill it from them instead of embedding everything again.
            # (Not from a team index: what it holds is everyone's, and adopted per chunk.)
            sql.set_meta("config_hash", want_hash)
            sql.set_meta("heal", "sqlite")
            health.note("index database rebuilt", "index.sqlite was missing or empty", vectors_salvaged=0)
        health.config = want_hash
        health.clean = False  # until a clean close: the next open checks more if we crash
        health.save(state_dir)
    except (OSError, sqlite3.Error, StoreBusy) as exc:
        failure = translate(exc, state_dir)
        if failure is None:
            raise
        raise failure from exc
    return IndexStore.from_parts(state_dir, sql, vectors)


def _open_local(state_dir: Path, sql: SqliteState, health: Health, damaged: dict[str, str], dim: int) -> VectorStore:
    """The embedded Chroma store, checked (and quarantined and re-created if damaged)."""
    chroma = state_dir / "chroma"
    bad = damaged.get("chroma")
    if bad is None:
        check = check_chroma(chroma, dim, health)
        bad = check.bad
        if bad is None and check.probe is not None:
            log.info("probing the vector store of %s: %s", state_dir, check.probe)
            bad = probe_chroma(chroma, sql.probe_samples())
            if bad is not None:
                # The child could not open it for a reason that is not damage.
                not_damage = translate(OSError(bad), state_dir) if is_disk_full(OSError(bad)) or (
                    is_read_only(OSError(bad))) else None
                if not_damage is not None:
                    raise not_damage
    if bad is not None and chroma.exists():
        _quarantine(state_dir, sql, health, bad)
    try:
        return VectorStore(chroma, dim)
    except StoreCorrupt as exc:
        failure = translate(exc.__cause__ or exc, state_dir)
        if failure is not None:
            raise failure from exc
        _quarantine(state_dir, sql, health, str(exc.__cause__ or exc))
        return VectorStore(chroma, dim)


def _quarantine(state_dir: Path, sql: SqliteState, health: Health, cause: str) -> None:
    dest = quarantine_chroma(state_dir)
    if sql.get_meta("heal") is None:
        sql.set_meta("heal", "chroma")
    health.note("vector store quarantined and rebuilt from the SQLite vector cache", cause, moved_to=str(dest))
    log.warning("vector store %s was damaged (%s); moved to %s, rebuilding it from the cache",
                state_dir / "chroma", cause, dest)


def record_damage(state_dir: Path, kind: str, cause: str) -> None:
    """Remember damage found while the store was in use; the next open heals it."""
    health = Health.load(state_dir)
    if kind in health.damaged:
        return  # already recorded (status polls would repeat it)
    health.damaged[kind] = cause
    health.note(f"{'index database' if kind == 'sqlite' else 'vector store'} damage found", cause)
    with contextlib.suppress(OSError):
        health.save(state_dir)


# -- the one place damage met in use is judged ---------------------------------------------
# The Workspace (reads) and the daemon's IndexWorker (runs) ask these instead of judging an
# exception themselves, so what counts as damage and what is done about it is said once.

DamageKind = Literal["sqlite", "chroma"]
#: What a runner does after a failure: reopen to heal damage, re-create a deleted state
#: folder, or give up and report.
AfterFailure = Literal["repair", "recreate", "fail"]


def assess(exc: sqlite3.DatabaseError | VectorStoreFailed, state_dir: Path) -> DamageKind | ForgeError | None:
    """What a store error met in use means: damage of one kind (to heal), a failure that is
    not damage (full disk, read-only or vanished folder: a `ForgeError` saying what to do),
    or None (neither: the caller re-raises it)."""
    if isinstance(exc, VectorStoreFailed):
        return "chroma"
    if is_corruption(exc):
        return "sqlite"
    return translate(exc, state_dir)


def damage_found(state_dir: Path, root: Path, kind: DamageKind, exc: BaseException,
                 notify: Callable[[str], None] | None = None) -> StoreRepairing:
    """Damage found in use: remember it (the next open heals it), tell `notify`, and return
    the error a reader gets meanwhile."""
    cause = str(exc.__cause__ or exc).splitlines()[0][:300] if str(exc.__cause__ or exc) else type(exc).__name__
    record_damage(state_dir, kind, cause)
    what = "index database" if kind == "sqlite" else "vector store"
    if notify is not None:
        notify(f"the {what} of {root} is damaged ({cause})")
    return StoreRepairing(
        f"the {what} of {root} is damaged ({cause}); it is being rebuilt from what can "
        "be saved: try again in a moment."
    )


def after_failure(exc: BaseException, repair_attempts: int, max_repairs: int, root_exists: bool) -> AfterFailure:
    """What a run that failed with `exc` does next, after `repair_attempts` repairs."""
    if isinstance(exc, StoreRepairing | StoreCorrupt) and repair_attempts < max_repairs:
        return "repair"  # reopening runs the checks that heal it
    if isinstance(exc, StateDirVanished) and repair_attempts < max_repairs and root_exists:
        return "recreate"  # deleted under us: reopening re-creates it
    return "fail"


def final_error(exc: BaseException, root: Path, repair_attempts: int) -> BaseException:
    """The error reported when a run gives up: damage that repairs did not heal says how
    to rebuild from scratch; anything else is reported as it is."""
    if isinstance(exc, StoreRepairing | StoreCorrupt):
        return StoreCorrupt(
            f"The index of {root} is still damaged after {repair_attempts} repairs "
            f"({exc}). Run `forge-indexer index --rebuild {root}` to rebuild it from scratch."
        )
    return exc
