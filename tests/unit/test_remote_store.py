"""The remote store's pure parts: names, transient errors, team-mode rules, the possession
filter (on a fake collection; the real server is in tests/e2e/test_chroma_server.py and
tests/e2e/test_team_index.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pytest
from chromadb.errors import InternalError, InvalidArgumentError, RateLimitError

from indexer.core.errors import RemoteMismatch, RemoteUnavailable
from indexer.store.index import chunk_id
from indexer.store.remote import (
    RemoteSpec,
    RemoteVectorStore,
    collection_name,
    is_transient,
    workspace_key,
)

VALID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def test_collection_names_are_valid_and_hide_the_path() -> None:
    key = workspace_key("/home/ann/secret-project")
    assert "secret" not in key and len(key) == 16
    assert workspace_key("/home/ann/secret-project") == key != workspace_key("/home/ann/other")
    for name in (
        collection_name("0123456789abcdef", workspace=key),
        collection_name("0123456789abcdef", team="core team/ä..x"),
        collection_name("0123456789abcdef", team="..."),
    ):
        assert VALID.match(name) and ".." not in name, name
    assert collection_name("c0", team="a") != collection_name("c1", team="a")  # per config hash


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("reset"), True),
        (ConnectionResetError(), True),
        (InternalError("boom"), True),
        (RateLimitError("slow down"), True),
        (ValueError("Could not connect to a Chroma server. Are you sure it is running?"), True),
        (InvalidArgumentError("bad dimension"), False),
        (ValueError("something else"), False),
    ],
)
def test_transient_errors(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_team_ids_name_the_file_content() -> None:
    assert chunk_id("a.py", "t", 0) == chunk_id("a.py", "t", 0, None)
    assert chunk_id("a.py", "t", 0, "h1") != chunk_id("a.py", "t", 0, "h2")


class FakeCollection:
    """Just enough of a Chroma collection: records calls, answers queries from `entries`."""

    def __init__(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        self.entries = entries
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: list[BaseException] = []

    def _maybe_fail(self) -> None:
        if self.fail:
            raise self.fail.pop(0)

    def count(self) -> int:
        return len(self.entries)

    def delete(self, **kw: Any) -> None:
        self.calls.append(("delete", kw))

    def query(self, **kw: Any) -> dict[str, Any]:
        self._maybe_fail()
        self.calls.append(("query", kw))
        allowed = set(kw["where"]["file_hash"]["$in"]) if kw.get("where") else None
        hits = [(cid, m) for cid, m in self.entries if allowed is None or m["file_hash"] in allowed]
        return {"ids": [[c for c, _ in hits]], "distances": [[0.1] * len(hits)], "metadatas": [[m for _, m in hits]]}


def store(team: bool, col: FakeCollection) -> RemoteVectorStore:
    s = RemoteVectorStore(RemoteSpec("http://127.0.0.1:1", "c", team=team, retries=1), 4)
    s.remote_target._sleep = lambda _s: None
    s._collection = col
    s.known_count = col.count()
    return s


def test_team_store_never_deletes_or_resets() -> None:
    col = FakeCollection([("x", {"path": "a.py", "file_hash": "h"})])
    s = store(True, col)
    s.delete(["x"])
    s.reset()
    assert col.calls == []


def test_possession_filter_sends_own_hashes_and_drops_other_versions() -> None:
    col = FakeCollection([
        ("mine", {"path": "a.py", "file_hash": "ha"}),
        # Same path, but the content of another branch: hash differs from ours.
        ("theirs", {"path": "a.py", "file_hash": "hb"}),
        # Content we hold, but reported under another path: not our file's version either.
        ("moved", {"path": "b.py", "file_hash": "ha"}),
    ])
    s = store(True, col)
    got = s.query(np.ones(4, dtype=np.float32), 10, held={"a.py": "ha", "c.py": "hc"})
    assert [cid for cid, _ in got] == ["mine"]
    where = col.calls[0][1]["where"]
    assert sorted(where["file_hash"]["$in"]) == ["ha", "hc"]
    assert s.query(np.ones(4, dtype=np.float32), 10, held={}) == []


def test_transient_failures_retry_then_say_unavailable() -> None:
    col = FakeCollection([("x", {"path": "a.py", "file_hash": "h"})])
    s = store(False, col)
    col.fail = [httpx.ConnectError("refused")]
    assert s.query(np.ones(4, dtype=np.float32), 1) == [("x", pytest.approx(0.9))]  # retried once
    col.fail = [httpx.ConnectError("refused")] * 2
    with pytest.raises(RemoteUnavailable, match=r"127\.0\.0\.1:1"):
        s.query(np.ones(4, dtype=np.float32), 1)
    col.fail = [InvalidArgumentError("dimension mismatch")]
    with pytest.raises(RemoteMismatch, match="rejected a request"):
        s.query(np.ones(4, dtype=np.float32), 1)
