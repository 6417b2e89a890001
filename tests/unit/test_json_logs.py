"""`--log-format json`: one JSON object per line, with the request id on every line a request causes."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.logs import REQUEST_ID, WORKSPACE, setup_logging
from tests.conftest import REPO
from tests.unit.fake_server import FakeCancelToken, FakeWorkspace

log = logging.getLogger("server.test_json_logs")


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = tmp_path / "log.jsonl"
    setup_logging(str(path), "INFO", "json")
    yield path
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved


def records(path: Path) -> list[dict[str, Any]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_lines_are_json_with_the_documented_keys(json_log: Path) -> None:
    log.info("plain %s", "line")
    token = REQUEST_ID.set("ab12:7")
    ws = WORKSPACE.set("root_a")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    finally:
        REQUEST_ID.reset(token)
        WORKSPACE.reset(ws)
    plain, failed = records(json_log)
    assert {"ts", "level", "logger", "message"} <= plain.keys()
    assert plain["message"] == "plain line" and plain["level"] == "INFO"
    assert plain["logger"] == "server.test_json_logs"
    assert "request_id" not in plain and "workspace" not in plain  # only when known
    assert plain["ts"].endswith(("Z", "+00:00"))
    assert failed["request_id"] == "ab12:7" and failed["workspace"] == "root_a"
    assert "ValueError: boom" in failed["exc_info"] and isinstance(failed["exc_info"], str)


class _Writer:
    """Where the server writes its answers (as the daemon's hub does)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        body = data.split(b"\r\n\r\n", 1)[1]
        self.messages.append(json.loads(body))

    def close(self) -> None:
        pass


def test_a_request_id_follows_the_request_into_the_query_pool(json_log: Path) -> None:
    """The id pygls' handler task and the query thread log with is the request's own."""
    from server.server import create_server

    ls = create_server(workspace_factory=FakeWorkspace, token_factory=FakeCancelToken)
    writer = _Writer()
    ls.protocol.set_writer(writer)

    @ls.feature("test/echo")
    async def echo(ls: Any, params: Any) -> Any:
        log.info("in the handler")

        def work(cancel: Any) -> str:
            log.info("in the pool")
            return "done"

        return await ls.run_query(work)

    async def main() -> None:
        protocol = ls.protocol
        for msg_id in (41, "x-42"):
            protocol.handle_message(protocol.structure_message(
                {"jsonrpc": "2.0", "id": msg_id, "method": "test/echo", "params": {}}))
        for _ in range(200):
            if len(writer.messages) == 2:
                break
            await asyncio.sleep(0.01)
        log.info("after the requests")

    try:
        asyncio.run(main())
    finally:
        ls.queries.shutdown(wait=True)
    assert [m.get("result") for m in writer.messages] == ["done", "done"]
    lines = [r for r in records(json_log) if r["logger"] == log.name]
    prefix = ls.protocol.request_prefix
    by_id: dict[str, list[str]] = {}
    for r in lines:
        by_id.setdefault(r.get("request_id", "-"), []).append(r["message"])
    assert by_id[f"{prefix}:41"] == ["in the handler", "in the pool"]
    assert by_id[f"{prefix}:x-42"] == ["in the handler", "in the pool"]
    assert by_id["-"] == ["after the requests"]  # nothing leaks out of a request


def test_the_cli_global_option_switches_to_json(tmp_path: Path) -> None:
    """`forge-indexer --log-format json status` logs its warnings as JSON on stderr."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import logging, sys\n"
         "from server.cli import app, main\n"
         "@app.command('emit-warning', hidden=True)\n"
         "def _w() -> None:\n"
         "    logging.getLogger('indexer.x').warning('repaired %s', 'it')\n"
         "main(sys.argv[1:])",
         "--log-format", "json", "emit-warning"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stderr.strip().splitlines()[-1])
    assert line["message"] == "repaired it" and line["level"] == "WARNING"
    bad = subprocess.run([sys.executable, "-m", "server.cli", "--log-format", "xml", "status"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert bad.returncode != 0 and "--log-format must be text or json" in bad.stderr


def test_text_lines_carry_the_request_id_too(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = tmp_path / "log.txt"
    setup_logging(str(path), "INFO", "text")
    try:
        token = REQUEST_ID.set("c3:17")
        log.info("inside")
        REQUEST_ID.reset(token)
        log.info("outside")
        for handler in root.handlers:
            handler.flush()
        inside, outside = path.read_text().splitlines()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
    assert inside.endswith("INFO server.test_json_logs: [c3:17] inside")
    assert outside.endswith("INFO server.test_json_logs: outside")
