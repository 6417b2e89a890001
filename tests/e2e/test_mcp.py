"""`forge-indexer mcp` end to end: the SDK's own stdio client and `ClientSession` start the
real command on an indexed fixture workspace (real model, Chroma, SQLite, keyring, daemon).

Through the shared daemon (started by the MCP server itself), the tools answer, bad
arguments are tool errors and the session goes on, and a daemon killed mid-session is
replaced; without a keyring the server answers from its own process and says so on stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from server.daemon.client import find_daemon
from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import cli, daemon_paths, env, wait_for

pytestmark = [pytest.mark.slow]

TOOLS = {"search", "context", "find_symbol", "index_status"}


def command() -> list[str]:
    """The installed `forge-indexer` script (its fast path hands `mcp` to the full CLI)."""
    script = Path(sys.executable).with_name("forge-indexer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    cli("index", str(ws))  # in-process: no daemon yet
    return ws


def session(ws: Path, errlog: Path, body: Callable[[ClientSession], Awaitable[None]],
            extra_env: dict[str, str] | None = None) -> None:
    """Run `body` in an MCP client session with `forge-indexer mcp -w WS`."""
    exe, *args = command()
    params = StdioServerParameters(command=exe, args=[*args, "mcp", "-w", str(ws)],
                                   env={**env(), **(extra_env or {})}, cwd=str(ws.parent))

    async def run() -> None:
        with errlog.open("w") as err:
            async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as s:
                with anyio.fail_after(240):
                    await s.initialize()
                    await body(s)

    try:
        anyio.run(run)
    except BaseException as exc:
        raise AssertionError(f"MCP session failed: {exc!r}; server stderr: {errlog.read_text()[-3000:]}") from exc


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def ok(s: ClientSession, tool: str, args: dict[str, Any]) -> Any:
    result = await s.call_tool(tool, args)
    assert not result.is_error, (tool, args, text(result))
    return result


async def check_tools(s: ClientSession, ws: Path) -> None:
    """Every tool answers right on the polyglot fixture."""
    found = await ok(s, "search", {"query": "parse a duration like 1h30m into seconds", "k": 3})
    top = found.structured_content["results"][0]
    assert (top["path"], top["symbol"]) == ("src/config/loader.py", "parse_duration"), text(found)
    assert "def parse_duration" in top["code"] and top["start_line"] >= 1
    assert "src/config/loader.py:" in text(found) and "def parse_duration" in text(found)
    lexical = await ok(s, "search", {"query": "backoff_delays", "mode": "lexical", "path": "src/**",
                                     "language": "python"})
    paths = {h["path"] for h in lexical.structured_content["results"]}
    assert paths == {"src/net/retry.py"}, text(lexical)

    ctx = await ok(s, "context", {"query": "how is the server config loaded from a file", "budget": 400})
    data = ctx.structured_content
    assert data["snippets"] and 0 < data["tokens_used"] <= 400
    assert any(sn["path"] == "src/config/loader.py" for sn in data["snippets"]), text(ctx)
    around = await ok(s, "context", {"file": str(ws / "src/net/retry.py"), "line": 13, "budget": 300})
    assert around.structured_content["snippets"], text(around)

    sym = await ok(s, "find_symbol", {"name": "ConfigLoader"})
    first = sym.structured_content["symbols"][0]
    assert (first["name"], first["path"], first["start_line"]) == ("ConfigLoader", "src/config/loader.py", 15)
    assert first["kind"] == "class" and first["line"].startswith("class ConfigLoader")

    st = (await ok(s, "index_status", {})).structured_content
    assert st["indexed"] and st["files"] > 5 and st["chunks"] > 5


async def check_errors(s: ClientSession) -> None:
    """Bad arguments are tool errors that say what is wrong; the session keeps working."""
    for args, says in (({"query": "x", "k": 0}, "greater than or equal to 1"),
                       ({"query": "x", "path": "src/[abc"}, "bad path glob"),
                       ({"query": "x", "mode": "semantic"}, "semantic")):
        bad = await s.call_tool("search", args)
        assert bad.is_error and says in text(bad), (args, text(bad))
    missing = await s.call_tool("context", {"file": "src/nope.py"})
    assert missing.is_error and "no file 'src/nope.py'" in text(missing)
    again = await ok(s, "find_symbol", {"name": "parse_duration"})
    assert again.structured_content["symbols"][0]["path"] == "src/config/loader.py"


def test_mcp_through_the_shared_daemon(ws: Path, tmp_path: Path) -> None:
    paths, _ = daemon_paths(ws)
    assert find_daemon(paths) is None
    seen: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        listed = await s.list_tools()
        tools = {t.name: t for t in listed.tools}
        assert set(tools) == TOOLS
        assert all(len(t.description or "") > 80 for t in tools.values())
        assert "local index of the workspace" in (tools["search"].description or "")
        assert tools["search"].input_schema["required"] == ["query"]
        await check_tools(s, ws)
        await check_errors(s)
        st = (await ok(s, "index_status", {})).structured_content
        seen["first"] = find_daemon(paths)
        assert seen["first"] is not None and st["served_by"] == f"the shared daemon (pid {seen['first'].pid})"

        # The daemon dies mid-session: the next call starts a new one and answers.
        os.kill(seen["first"].pid, signal.SIGKILL)
        found = await ok(s, "search", {"query": "parse a duration", "k": 2})
        assert found.structured_content["results"][0]["path"] == "src/config/loader.py"
        seen["second"] = find_daemon(paths)

    session(ws, tmp_path / "mcp.err", body)
    assert seen["second"] is not None and seen["second"].pid != seen["first"].pid
    log = (tmp_path / "mcp.err").read_text()
    assert "through the shared daemon" in log and "the daemon went away" in log, log


def test_mcp_without_a_keyring_is_served_by_a_peer_mode_daemon(tmp_path: Path) -> None:
    ws = tmp_path / "peer"
    shutil.copytree(FIXTURES / "polyglot", ws)
    no_keyring = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}

    async def body(s: ClientSession) -> None:
        st = (await ok(s, "index_status", {})).structured_content
        assert st["served_by"].startswith("the shared daemon"), st
        with anyio.fail_after(180):
            while not (await ok(s, "index_status", {})).structured_content["indexed"]:
                await anyio.sleep(0.5)
        await check_tools(s, ws)

    try:
        session(ws, tmp_path / "mcp.err", body, no_keyring)
        daemon = find_daemon(daemon_paths(ws)[0])
        assert daemon is not None and daemon.peer_mode, daemon
    finally:
        cli("daemon", "stop", "-w", str(ws), check=False, extra_env=no_keyring)


def test_mcp_with_the_shared_daemon_off_serves_from_its_own_process(ws: Path, tmp_path: Path) -> None:
    own = {"FORGE_INDEXER_SHARED_DAEMON": "false"}

    async def body(s: ClientSession) -> None:
        st = (await ok(s, "index_status", {})).structured_content
        assert st["served_by"].startswith("this process")
        await check_tools(s, ws)
        await check_errors(s)

    session(ws, tmp_path / "mcp.err", body, own)
    log = (tmp_path / "mcp.err").read_text()
    assert "from this process, not a shared daemon" in log, log
    assert find_daemon(daemon_paths(ws)[0]) is None
    # The in-process index was closed when the session ended: the CLI can open it again.
    wait_for(lambda: cli("status", "-w", str(ws), check=False).returncode == 0, 30, "index released")


def test_mcp_on_a_workspace_never_indexed_indexes_it_through_the_daemon(tmp_path: Path) -> None:
    ws = tmp_path / "fresh"
    shutil.copytree(FIXTURES / "polyglot", ws)

    async def body(s: ClientSession) -> None:
        first = (await ok(s, "index_status", {})).structured_content
        assert first["served_by"].startswith("the shared daemon")
        with anyio.fail_after(180):
            while not (await ok(s, "index_status", {})).structured_content["indexed"]:
                await anyio.sleep(0.5)
        sym = await ok(s, "find_symbol", {"name": "backoff_delays"})
        assert sym.structured_content["symbols"][0]["path"] == "src/net/retry.py"
        await check_tools(s, ws)

    session(ws, tmp_path / "mcp.err", body)
