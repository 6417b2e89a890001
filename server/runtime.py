"""What the lower server modules need of the running LSP server, as narrow `Protocol`s.

`ForgeLanguageServer` (server/server.py) satisfies all of them; the modules it is built
from (logs, progress, jobs, metrics_http, session) take one of these instead of the
concrete class, so none of them imports server.py and the import graph has no circle.
This module imports nothing from `server`; the ones that mention roots are in
server/hosts.py, one step up.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from lsprotocol import types
    from pygls.progress import Progress

    from indexer.workspace import CancelToken

T = TypeVar("T")


class Notifier(Protocol):
    """Tells the user something: `window/showMessage` and `window/logMessage`, from any thread."""

    def show_message(self, text: str, kind: types.MessageType, *, once: bool = False) -> None: ...

    def log_message(self, text: str, kind: types.MessageType = ...) -> None: ...


class ProgressHost(Protocol):
    """Runs `$/progress` for indexing runs from the indexing thread (server/progress.py)."""

    progress_cancels: dict[str, CancelToken]
    progress_unanswered: bool

    @property
    def work_done_progress(self) -> Progress: ...

    def client_supports_progress(self) -> bool: ...

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None: ...

    def run_in_loop(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T: ...
