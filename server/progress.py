"""Work-done progress (`$/progress`) for indexing runs, driven from the indexing thread.

The server asks the client for a token (`window/workDoneProgress/create`); a client that
refuses or does not support it gets no progress bar and the run goes on regardless. The
progress is cancellable: `window/workDoneProgress/cancel` sets the run's `CancelToken`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import uuid
from typing import TYPE_CHECKING

from lsprotocol import types

from indexer.core.types import Progress

if TYPE_CHECKING:
    from indexer.workspace import CancelToken
    from server.runtime import ProgressHost

log = logging.getLogger(__name__)

#: How long to wait for the client to accept a progress token before indexing without one.
CREATE_TIMEOUT_S = 2.0


def describe(p: Progress) -> tuple[str, int | None]:
    """Human text and percentage for a progress tick."""
    if p.phase == "discover":
        return (p.message or "looking for files", None)
    if p.phase == "embed":
        # Storing files is fast and embedding slow: files are the first 10 %, vectors the rest.
        pct = 10 + int(90 * p.chunks_done / p.chunks_total) if p.chunks_total else 100
        return (f"embedding: {p.chunks_done}/{p.chunks_total} chunks", max(0, min(100, pct)))
    pct = int(10 * p.files_done / p.files_total) if p.files_total else 10
    chunks = f", {p.chunks_done} chunks" if p.chunks_done else ""
    return (f"{p.files_done}/{p.files_total} files{chunks}", max(0, min(100, pct)))


class IndexProgress:
    """One progress bar: `begin()`, any number of `report()`, then `end()`."""

    def __init__(
        self,
        ls: ProgressHost,
        title: str,
        cancel: CancelToken,
        *,
        min_interval_s: float = 0.2,
    ) -> None:
        self._ls = ls
        self._title = title
        self._cancel = cancel
        self._min_interval = min_interval_s
        self._last = 0.0
        self._phase = ""
        self.token: str | None = None

    def begin(self, message: str = "starting") -> None:
        if not self._ls.client_supports_progress() or self._ls.progress_unanswered:
            return
        token = f"forge-indexer/{uuid.uuid4()}"
        try:
            self._ls.run_in_loop(
                self._ls.work_done_progress.create_async(token), timeout_s=CREATE_TIMEOUT_S
            )
        except (TimeoutError, concurrent.futures.TimeoutError):
            # A client that never answers would cost every later run this wait too.
            self._ls.progress_unanswered = True
            log.info("the client did not answer window/workDoneProgress/create; no progress bars")
            return
        except Exception as exc:
            log.info(
                "the client refused a progress token (%s); indexing without a progress bar", exc
            )
            return
        self.token = token
        self._ls.progress_cancels[token] = self._cancel
        value = types.WorkDoneProgressBegin(
            title=self._title, cancellable=True, message=message, percentage=0
        )
        self._ls.call_soon(self._ls.work_done_progress.begin, token, value)

    def report(self, p: Progress, *, force: bool = False) -> None:
        if self.token is None:
            return
        now = time.monotonic()
        if not force and p.phase == self._phase and now - self._last < self._min_interval:
            return  # a new phase is always shown: its first numbers are news
        self._last, self._phase = now, p.phase
        message, pct = describe(p)
        value = types.WorkDoneProgressReport(message=message, percentage=pct, cancellable=True)
        self._ls.call_soon(self._ls.work_done_progress.report, self.token, value)

    def note(self, message: str) -> None:
        """A report with a message only (the bar keeps its percentage): e.g. "paused"."""
        if self.token is None:
            return
        value = types.WorkDoneProgressReport(message=message, cancellable=True)
        self._ls.call_soon(self._ls.work_done_progress.report, self.token, value)

    def end(self, message: str) -> None:
        if self.token is None:
            return
        token, self.token = self.token, None
        self._ls.progress_cancels.pop(token, None)
        self._ls.call_soon(self._finish, token, message)

    def _finish(self, token: str, message: str) -> None:
        self._ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
        self._ls.work_done_progress.tokens.pop(token, None)
