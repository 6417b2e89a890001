"""The indexing worker never gives up on a damaged index: it reopens it (which heals it),
tells the user once, and only stops after repeated failures. Fakes for the server and the
workspace: this tests the worker's bookkeeping; the real repair is proven end to end in
tests/e2e/test_lsp_store_faults.py and tests/integration/test_store_faults.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from indexer.core.errors import DiskFull, StoreRepairing
from indexer.core.settings import Settings
from indexer.core.types import IndexSummary
from server.jobs import MAX_REPAIRS, IndexWorker
from server.roots import RootState


class StubServer:
    """What `IndexWorker` uses of the language server; no client attached."""

    progress_unanswered = True

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.opened: list[StubWorkspace] = []
        self.messages: list[str] = []
        self.progress_cancels: dict[str, Any] = {}

    def open_workspace(self, path: Path, settings: Settings) -> StubWorkspace:
        ws = StubWorkspace(self)
        self.opened.append(ws)
        return ws

    def new_cancel_token(self) -> Any:
        from indexer.workspace import CancelToken

        return CancelToken()

    def show_message(self, text: str, kind: Any, *, once: bool = False) -> None:
        if not (once and text in self.messages):
            self.messages.append(text)

    def client_supports_progress(self) -> bool:
        return False

    def call_soon(self, fn: Any, *args: Any) -> None:
        pass


class StubWorkspace:
    def __init__(self, ls: StubServer) -> None:
        self.ls = ls
        self.closed = False

    def open_store(self) -> None:
        pass

    def status(self) -> dict[str, object]:
        return {"health": {"state": "ok", "events": []}}

    def index(self, paths: Any = None, **kw: Any) -> IndexSummary:
        if self.ls.failures:
            raise self.ls.failures.pop(0)
        return IndexSummary()

    def embed_pending(self, **kw: Any) -> int:
        return 0

    def reload_rules(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def run(failures: list[BaseException], tmp_path: Path) -> tuple[StubServer, RootState]:
    ls = StubServer(failures)
    worker = IndexWorker(ls)  # type: ignore[arg-type]
    root = RootState(uri=tmp_path.as_uri(), path=tmp_path, name="root", settings=Settings())
    done = threading.Event()
    worker.submit("full", root).wait(10)
    for _ in range(200):  # reopen and embed jobs follow the first one
        if not worker.busy():
            break
        done.wait(0.05)
    worker.stop()
    return ls, root


def test_damage_found_by_a_run_reopens_the_index_and_is_reported_once(tmp_path: Path) -> None:
    damage = StoreRepairing("the index database of x is damaged (malformed); it is being rebuilt")
    ls, root = run([damage], tmp_path)
    assert len(ls.opened) == 2 and ls.opened[0].closed  # reopened through the checks
    assert root.state == "idle" and root.last_error is None and root.repair_attempts == 0
    assert len(ls.messages) == 1 and "damaged" in ls.messages[0]


def test_a_repair_that_keeps_failing_ends_in_error_naming_rebuild(tmp_path: Path) -> None:
    failures: list[BaseException] = [StoreRepairing(f"damaged {i}") for i in range(MAX_REPAIRS + 1)]
    ls, root = run(failures, tmp_path)
    assert root.state == "error" and "--rebuild" in (root.last_error or "")
    assert len(ls.opened) == MAX_REPAIRS + 1


def test_disk_full_is_not_damage(tmp_path: Path) -> None:
    ls, root = run([DiskFull("disk full: 0 MB free in /s, need about 32 MB.")], tmp_path)
    assert len(ls.opened) == 1  # no reopen, no quarantine
    assert root.state == "error" and (root.last_error or "").startswith("disk full: ")
    assert ls.messages == ["forge-indexer: disk full: 0 MB free in /s, need about 32 MB."]
