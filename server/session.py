"""Opening, reconfiguring and closing workspace roots (shared by the lifecycle features)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types

from indexer.core.settings import Settings, load_settings
from server.roots import RootRegistry, RootState
from server.uris import uri_to_path
from server.watch import ChangeBatch, ChangeBatcher, PathFilter, WorkspaceWatcher, git_busy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pygls.workspace import Workspace as LspWorkspace

    from server.jobs import IndexWorker

log = logging.getLogger(__name__)


class SessionHost(Protocol):
    """What the session functions use of the server: roots, the worker, the client's settings."""

    roots: RootRegistry
    init_options: Any
    client_settings: Any

    @property
    def worker(self) -> IndexWorker: ...

    @property
    def workspace(self) -> LspWorkspace: ...

    def client_supports(self, field: str) -> bool: ...

    def show_message(self, text: str, kind: types.MessageType, *, once: bool = False) -> None: ...

    async def workspace_configuration_async(
        self, params: types.ConfigurationParams
    ) -> Sequence[Any | None]: ...


SECTION = "forgeIndexer"
#: Settings the server applies in place; any other change reopens the root's index.
#: (`index_on_startup` only counts when the server starts: changing it later does nothing.)
LIVE_SETTINGS = frozenset({"debounce_ms", "watch", "search_limit", "context_budget", "index_on_startup"})


def client_section(options: Any) -> dict[str, Any]:
    """The `forgeIndexer` object from initializationOptions / settings (nested or flat)."""
    if not isinstance(options, dict):
        return {}
    inner = options.get(SECTION)
    if isinstance(inner, dict):
        return inner
    return {} if SECTION in options else options


async def pull_configuration(ls: SessionHost, uris: list[str]) -> list[dict[str, Any]]:
    """`workspace/configuration` for each root (empty dicts if the client cannot answer)."""
    if not uris or not ls.client_supports("workspace.configuration"):
        return [{} for _ in uris]
    items = [types.ConfigurationItem(scope_uri=u, section=SECTION) for u in uris]
    try:
        values = await asyncio.wait_for(
            ls.workspace_configuration_async(types.ConfigurationParams(items=items)), timeout=5
        )
    except Exception as exc:
        log.warning("workspace/configuration failed (%s); using the other settings sources", exc)
        return [{} for _ in uris]
    return [
        v if isinstance(v, dict) else {} for v in list(values) + [None] * (len(uris) - len(values))
    ]


def settings_for(ls: SessionHost, path: Path, pulled: dict[str, Any]) -> Settings:
    """Layer the sources for one root; tell the user about each invalid value once."""
    overrides = {**client_section(ls.init_options), **client_section(ls.client_settings), **pulled}
    settings, warnings = load_settings(path, overrides)
    for w in warnings:
        ls.show_message(f"forge-indexer: {w}", types.MessageType.Warning, once=True)
    return settings


def index_on_startup(ls: SessionHost, folders: list[tuple[str, Path]]) -> bool:
    """`indexOnStartup` for this server: from the initializationOptions, config files and
    environment of its first folder (a pause holds the whole server, not one folder)."""
    if not folders:
        return True
    settings, _ = load_settings(folders[0][1], client_section(ls.init_options))
    return settings.index_on_startup


def folders_of(ls: SessionHost) -> list[tuple[str, Path]]:
    """The client's workspace folders (or its rootUri) as (uri, path), local folders only."""
    out: list[tuple[str, Path]] = []
    for folder in ls.workspace.folders.values():
        path = uri_to_path(folder.uri)
        if path is not None:
            out.append((folder.uri, path))
    if not out and ls.workspace.root_uri:
        path = uri_to_path(ls.workspace.root_uri)
        if path is not None:
            out.append((ls.workspace.root_uri, path))
    return out


async def open_roots(ls: SessionHost, folders: list[tuple[str, Path]]) -> None:
    """Start serving `folders`: settings, watcher, then a background full index."""
    folders = [(u, p.resolve()) for u, p in folders if p.is_dir() and ls.roots.get(p) is None]
    pulled = await pull_configuration(ls, [u for u, _ in folders])
    for (uri, path), config in zip(folders, pulled, strict=True):
        settings = settings_for(ls, path, config)
        root = RootState(uri=uri, path=path, name=path.name or str(path), settings=settings)
        ls.roots.add(root)
        start_changes(ls, root)
        ls.worker.submit("full", root, reason="Indexing")
        log.info("serving %s", path)


def close_root(ls: SessionHost, root: RootState) -> None:
    """Stop watching `root`, cancel its indexing and close its index (on the worker)."""
    ls.roots.remove(root.path)
    root.closed = True
    ls.worker.submit("close", root)
    # Stopping the observer joins its threads: not on the event loop.
    threading.Thread(target=stop_changes, args=(root,), name="forge-unwatch", daemon=True).start()
    log.info("stopped serving %s", root.path)


def start_changes(ls: SessionHost, root: RootState) -> None:
    """The change batcher (always) and the filesystem watcher (if `watch` is on)."""
    root.filter = PathFilter(lambda: _load_rules(root))
    root.batcher = ChangeBatcher(
        lambda batch: on_batch(ls, root, batch),
        delay_s=root.settings.debounce_ms / 1000,
        hold=git_busy(root.path),
        name=f"forge-changes-{root.name}",
    )
    if root.settings.watch:
        start_watcher(ls, root)


def start_watcher(ls: SessionHost, root: RootState) -> None:
    assert root.batcher is not None and root.filter is not None
    watcher = WorkspaceWatcher(
        root.path,
        root.batcher,
        root.filter,
        on_fallback=lambda msg: ls.show_message(
            f"forge-indexer: {msg}", types.MessageType.Warning, once=True
        ),
    )
    root.watcher = watcher

    def run() -> None:
        try:
            mode = watcher.start()
            log.info("watching %s (%s)", root.path, mode)
        except Exception:
            log.exception(
                "could not watch %s; changes made outside the editor are not seen", root.path
            )

    # Planning the watches walks the tree: keep it off the event loop.
    threading.Thread(target=run, name=f"forge-watch-{root.name}", daemon=True).start()


def stop_changes(root: RootState) -> None:
    if root.watcher is not None:
        root.watcher.stop()
        root.watcher = None
    if root.batcher is not None:
        root.batcher.close()
        root.batcher = None


def _load_rules(root: RootState) -> Any:
    from indexer.files.discover import IgnoreRules

    return IgnoreRules.load(root.path, root.settings)


def on_batch(ls: SessionHost, root: RootState, batch: ChangeBatch) -> None:
    """A debounced batch of changes: reindex those paths, or rescan the root."""
    if root.closed:
        return
    if batch.rescan:
        ls.worker.submit("full", root, reason="Re-indexing")
    elif batch.paths:
        ls.worker.submit("paths", root, set(batch.paths))


def note_change(ls: SessionHost, uri: str, *, settled: bool) -> bool:
    """Queue a changed file by URI (didSave, didChangeWatchedFiles); False if no root has it."""
    found = ls.roots.for_uri(uri)
    if found is None:
        return False
    root, rel = found
    if root.batcher is None or not rel:
        return False
    if root.filter is not None and root.filter.is_rule_file(rel):
        root.filter.reload()
        root.batcher.request_rescan()
    elif root.filter is None or not root.filter.is_ignored(rel, False):
        root.batcher.add(rel, settled=settled)
    return True


async def reconfigure(ls: SessionHost) -> None:
    """Re-read the settings of every root and apply what changed."""
    roots = ls.roots.all()
    pulled = await pull_configuration(ls, [r.uri for r in roots])
    for root, config in zip(roots, pulled, strict=True):
        apply_settings(ls, root, settings_for(ls, root.path, config))


def apply_settings(ls: SessionHost, root: RootState, new: Settings) -> None:
    old = root.settings
    changed = {k for k in Settings.model_fields if getattr(old, k) != getattr(new, k)}
    if not changed:
        return
    log.info("settings changed for %s: %s", root.path, ", ".join(sorted(changed)))
    root.settings = new
    if root.batcher is not None and "debounce_ms" in changed:
        root.batcher.set_delay(new.debounce_ms / 1000)
    if "watch" in changed:
        if new.watch and root.watcher is None:
            start_watcher(ls, root)
        elif not new.watch and root.watcher is not None:
            root.watcher.stop()
            root.watcher = None
    if changed - LIVE_SETTINGS:
        if root.filter is not None:
            root.filter.reload()
        ls.worker.cancel_running(root)
        ls.worker.submit("reopen", root, reason="Re-indexing")
