"""The MCP tools' argument checks and error handling, against a fake backend in-process.

The real server, client session, daemon and model are in tests/e2e/test_mcp.py; here a
fake `Backend` stands in so each argument rule and each error path is checked on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from indexer.core.errors import IndexNotReady
from server.mcp_server.tools import (
    ArgumentError,
    build_server,
    check_context,
    check_file,
    check_glob,
)


class FakeBackend:
    served_by = "a fake"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: Exception | None = None

    def _called(self, name: str, **kw: Any) -> None:
        self.calls.append((name, kw))
        if self.fail is not None:
            raise self.fail

    def search(self, query: str, **kw: Any) -> dict[str, Any]:
        self._called("search", query=query, **kw)
        return {"results": [{"path": "a.py", "start_line": 3, "end_line": 4, "symbol": "f", "kind": "function",
                             "language": "python", "score": 0.5, "code": "def f():\n    pass\n"}],
                "complete": True}

    def context(self, query: str | None, **kw: Any) -> dict[str, Any]:
        self._called("context", query=query, **kw)
        return {"budget": kw["budget"], "tokens_used": 0, "snippets": []}

    def symbols(self, name: str, **kw: Any) -> list[dict[str, Any]]:
        self._called("symbols", name=name, **kw)
        return []

    def status(self) -> dict[str, Any]:
        self._called("status")
        return {"indexed": True}

    def close(self) -> None:
        pass


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "a.py").write_text("x = 1\n")
    return tmp_path.resolve()


def test_check_file_resolves_inside_the_workspace_only(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert check_file(root, "a.py") == "a.py"
    assert check_file(root, str(root / "a.py")) == "a.py"
    assert check_file(root, "./sub/../a.py") == "a.py"
    outside = tmp_path_factory.mktemp("out") / "b.py"
    outside.write_text("")
    with pytest.raises(ArgumentError, match="outside the workspace"):
        check_file(root, str(outside))
    with pytest.raises(ArgumentError, match="outside the workspace"):
        check_file(root, "../" + outside.parent.name + "/b.py")
    with pytest.raises(ArgumentError, match=r"no file 'missing\.py'"):
        check_file(root, "missing.py")


def test_check_context_and_glob(root: Path) -> None:
    assert check_context(root, "  why  ", None, None) == ("why", None)
    assert check_context(root, None, "a.py", 1) == (None, "a.py")
    with pytest.raises(ArgumentError, match="give a query"):
        check_context(root, "  ", None, None)
    with pytest.raises(ArgumentError, match="line needs a file"):
        check_context(root, "q", None, 3)
    assert check_glob(None) is None and check_glob(" ") is None
    assert check_glob("src/**/*.py") == ["src/**/*.py"]
    with pytest.raises(ArgumentError, match="bad path glob"):
        check_glob("src/[abc")


def call(backend: FakeBackend, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Call the tools in order in one in-memory client session; their results."""

    async def run() -> list[Any]:
        async with Client(build_server(backend)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(run)


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content)


def test_bad_arguments_are_tool_errors_and_reach_no_backend(root: Path) -> None:
    backend = FakeBackend(root)
    results = call(backend, ("search", {"query": "x", "k": 0}), ("search", {"query": "x", "mode": "fuzzy"}),
                   ("search", {"query": "   "}), ("search", {"query": "x", "path": "[a"}),
                   ("context", {}), ("context", {"file": "nope.py"}), ("context", {"query": "q", "line": 2}),
                   ("context", {"query": "q", "budget": 10}), ("find_symbol", {"name": " "}),
                   ("search", {"query": "x"}))
    *bad, good = results
    assert all(r.is_error for r in bad), [_text(r) for r in bad]
    texts = [_text(r) for r in bad]
    assert "k" in texts[0] and "greater than or equal to 1" in texts[0]
    assert "fuzzy" in texts[1]
    assert "blank" in texts[2]
    assert "bad path glob '[a'" in texts[3]
    assert "give a query" in texts[4]
    assert "no file 'nope.py'" in texts[5]
    assert "line needs a file" in texts[6]
    assert "budget" in texts[7]
    assert "blank" in texts[8]
    # ...and the session goes on: the last call answers.
    assert not good.is_error and "a.py:3-4  f" in _text(good) and "def f():" in _text(good)
    assert good.structured_content["results"][0]["code"].startswith("def f")
    assert backend.calls == [("search", {"query": "x", "limit": 10, "mode": "hybrid", "paths": None,
                                         "languages": None, "min_score": 0.0})]


def test_backend_errors_become_tool_errors(root: Path) -> None:
    backend = FakeBackend(root)
    backend.fail = IndexNotReady("/w has not been indexed yet: run `forge-indexer index /w`")
    notyet, = call(backend, ("search", {"query": "x", "path": "src/", "language": "Python"}))
    assert notyet.is_error and "has not been indexed yet" in _text(notyet)
    assert backend.calls[0][1]["paths"] == ["src/"] and backend.calls[0][1]["languages"] == ["python"]
    # A bug is not shown to the agent in detail, and the server still answers afterwards.
    backend.fail = RuntimeError("secret detail")
    crashed, = call(backend, ("index_status", {}))
    assert crashed.is_error and "secret detail" not in _text(crashed)


def test_context_of_a_file_with_nothing_indexed_says_so(root: Path) -> None:
    result, = call(FakeBackend(root), ("context", {"file": "a.py"}))
    assert result.is_error and "a.py is not in the index" in _text(result)
