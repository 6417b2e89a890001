"""Narrow views of the running server for the modules that work on its roots.

Like server/runtime.py, but these mention `RootRegistry` (server/roots.py), which sits
above progress and runtime; `ForgeLanguageServer` satisfies each of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from server.runtime import Notifier, ProgressHost

if TYPE_CHECKING:
    from indexer.core.settings import Settings
    from indexer.workspace import CancelToken, Workspace
    from server.roots import RootRegistry, RootState


class IndexHost(Notifier, ProgressHost, Protocol):
    """What the indexing worker (server/jobs.py) uses: roots, workspaces, cancel tokens, progress."""

    roots: RootRegistry

    def open_workspace(self, path: Path, settings: Settings) -> Workspace: ...

    def new_cancel_token(self) -> CancelToken: ...


class QueueDepths(Protocol):
    """The worker's one answer that the metrics endpoint reads."""

    def queue_depth(self, root: RootState) -> int: ...


class MetricsHost(Protocol):
    """What the per-workspace gauges (server/metrics_http.py) read: roots and queue depths."""

    roots: RootRegistry

    @property
    def worker(self) -> QueueDepths: ...
