"""A workspace's status survives the trip through a daemon: what `server.queries.root_status`
puts on the wire (camelCase), `server.daemon.remote.status_from_wire` reads back under the
workspace's own names. A field added to `WorkspaceStatus` fails here until both sides
carry it, or it is listed below as one that stays in the process."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_type_hints

from indexer.core.types import WorkspaceStatus
from server.daemon.remote import status_from_wire
from server.queries import root_status

#: Added on the way back: the root's state in the daemon, its pid, whether it paused.
DAEMON_ONLY = {"state", "daemon_pid", "paused"}
#: Set by the workspace in process, not carried as they are.
NOT_CARRIED = DAEMON_ONLY | {
    "dim", "indexing", "progress", "revision",  # in-process details `forge/status` does not send
    "coverage",  # the daemon's own measure of the root (RootState.coverage), not the workspace's
    "root",  # the daemon names the root by its path
}


def _status() -> WorkspaceStatus:
    return {
        "root": "/w", "files": 3, "chunks": 41, "symbols": 17, "vectors": 40, "model": "m.gguf",
        "dim": 384, "state_dir": "/s/w", "last_indexed": "1700000000.0", "indexing": False,
        "progress": None, "coverage": 0.5, "semantic_coverage": 0.975, "last_error": "a note",
        "health": {"state": "ok", "events": []}, "remote": {"chroma": "http://127.0.0.1:8000"},
        "revision": None,
    }


class _Workspace:
    def status(self) -> WorkspaceStatus:
        return _status()


def _root(path: Path) -> Any:
    return SimpleNamespace(
        workspace=_Workspace(), last_error=None, uri=path.as_uri(), path=path, name=path.name,
        state="ready", watcher=None,
        settings=SimpleNamespace(debounce_ms=300, watch=True, search_limit=10, context_budget=2048),
        coverage=lambda: {"filesIndexed": 3, "filesTotal": 3, "ratio": 1.0, "semantic": 1.0, "complete": True},
    )


def test_every_status_field_comes_back_through_the_daemon(tmp_path: Path) -> None:
    wire = root_status(_root(tmp_path))
    back = status_from_wire(wire, {"indexingPaused": True}, tmp_path, 4242)

    sent = _status()
    assert set(sent) == set(get_type_hints(WorkspaceStatus)) - DAEMON_ONLY, "give every field a value here"
    carried = set(get_type_hints(WorkspaceStatus)) - NOT_CARRIED
    assert carried, "the test must compare something"
    assert {k: back.get(k) for k in carried} == {k: sent.get(k) for k in carried}
    assert back["daemon_pid"] == 4242 and back["paused"] is True and back["state"] == "ready"
    assert back["root"] == str(tmp_path) and back["coverage"] == 1.0


def test_the_list_of_fields_left_behind_names_only_real_fields() -> None:
    assert set(get_type_hints(WorkspaceStatus)) >= NOT_CARRIED
