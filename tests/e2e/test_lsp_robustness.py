"""End to end, each test with its own real server: locks, git checkouts, malformed traffic.

Every server here is the real `python -m server` with the real model, Chroma and SQLite;
the workspaces are small so that each test indexes in seconds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    IN_PROCESS,
    call,
    copy_workspace,
    names,
    raw_request,
    raw_request_without_params,
    rpc_error,
    search,
    start,
    stop,
    wait_indexed,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.usefixtures("server_env"),
]

@pytest_asyncio.fixture
async def one_root(tmp_path: Path) -> AsyncIterator[tuple[LanguageClient, Path]]:
    """A server on `root_b` of the fixture (Go + Rust), fully indexed."""
    ws = copy_workspace(tmp_path)
    lsp = await start(ws, ("root_b",))
    try:
        await wait_indexed(lsp, roots=1, timeout=300, every=0.05)
        yield lsp, ws
    finally:
        await stop(lsp)


# --- one owner per index -----------------------------------------------------------------


async def test_a_second_server_process_on_the_same_workspace_names_the_owner_within_a_second(
    tmp_path: Path,
) -> None:
    """Two editors' own server processes (no shared daemon): one owns the index, the other
    says who within a second and retries."""
    ws = copy_workspace(tmp_path)
    first = await start(ws, ("root_b",), config=IN_PROCESS)
    await wait_indexed(first, roots=1, timeout=300, every=0.05)
    second = await start(ws, ("root_b",), config=IN_PROCESS)
    try:
        started = time.monotonic()
        status: dict[str, Any] = {}

        async def told() -> bool:
            nonlocal status
            roots = (await call(second, "forge/status"))["roots"]
            status = roots[0] if roots else {}
            return "pid" in (status.get("lastError") or "")

        while not await told():
            assert time.monotonic() - started < 1.0, f"no lock message within 1 s: {status}"
            await asyncio.sleep(0.05)
        assert status["state"] == "retrying" and "in use by another forge-indexer" in status["lastError"]
        assert any("in use by another" in m.message for m in second.messages)
        # The first server is untouched and keeps answering.
        assert "HaversineDistance" in names(await search(first, "great-circle distance"))
    finally:
        await stop(second)
        await stop(first)


# --- git checkout: an event storm becomes one batch ---------------------------------------


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True,
    )


async def test_git_checkout_of_another_branch_is_one_batch(tmp_path: Path) -> None:
    ws = tmp_path / "repo_ws"
    repo = ws / "repo"
    repo.mkdir(parents=True)
    (repo / "main.py").write_text('def main_entry():\n    """Start the program."""\n    return 0\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "checkout", "-q", "-b", "feature")
    pkg = repo / "pkg"
    pkg.mkdir()
    for i in range(120):
        (pkg / f"mod_{i:03d}.py").write_text(
            f"def feature_helper_{i:03d}(value):\n    return value * {i + 2}\n"
        )
    (pkg / "currency.py").write_text(
        "def convert_euros_to_dollars(amount, rate):\n"
        '    """Money in euros, converted to US dollars at the given exchange rate."""\n'
        "    return round(amount * rate, 2)\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")

    lsp = await start(ws, ("repo",))
    try:
        await wait_indexed(lsp, roots=1, timeout=300)
        assert (await call(lsp, "forge/status"))["roots"][0]["files"] == 1
        before = len(lsp.log_messages)
        git(repo, "checkout", "-q", "feature")  # 121 files appear at once

        async def found() -> bool:
            hits = await search(lsp, "convert an amount of money from euros into dollars", limit=3)
            return bool(hits) and hits[0]["symbol"] == "convert_euros_to_dollars"

        deadline = time.monotonic() + 120
        while not await found():
            assert time.monotonic() < deadline, "the checked-out branch never became searchable"
            await asyncio.sleep(0.2)
        await wait_indexed(lsp, roots=1, timeout=120)
        status = (await call(lsp, "forge/status"))["roots"][0]
        assert status["files"] == 122 and status["vectors"] == status["chunks"]
        batches = [
            m.message
            for m in lsp.log_messages[before:]
            if "changed path(s)" in m.message or m.message.startswith("indexed ")
        ]
        assert len(batches) == 1, batches

        git(repo, "checkout", "-q", "main")  # and back: the branch's files are gone again

        async def gone() -> bool:
            st = (await call(lsp, "forge/status"))["roots"][0]
            return bool(st["files"] == 1 and st["state"] == "idle")

        deadline = time.monotonic() + 120
        while not await gone():
            assert time.monotonic() < deadline, "the branch's files were never removed"
            await asyncio.sleep(0.2)
        hits = await search(lsp, "convert an amount of money from euros into dollars", limit=5)
        assert "convert_euros_to_dollars" not in names(hits)
    finally:
        await stop(lsp)


# --- malformed traffic ---------------------------------------------------------------------


async def test_omitted_oversized_and_malformed_params(one_root: tuple[LanguageClient, Path]) -> None:
    lsp, _ = one_root
    # No "params" member at all (JSON-RPC allows it).
    err = await rpc_error(raw_request_without_params(lsp, "forge/search"))
    assert err.code == -32602 and "query" in err.message, err.message
    status = await raw_request_without_params(lsp, "forge/status")
    assert status["roots"][0]["name"] == "root_b"
    err = await rpc_error(raw_request_without_params(lsp, types.WORKSPACE_SYMBOL))
    assert err.code == -32602, err.message
    # Over the limits.
    err = await rpc_error(call(lsp, "forge/search", {"query": "x", "limit": 10**9}))
    assert err.code == -32602 and "'limit'" in err.message
    err = await rpc_error(call(lsp, "forge/search", {"query": "x" * 100_000}))
    assert err.code == -32602 and "'query'" in err.message
    err = await rpc_error(call(lsp, "forge/context", {"query": "x", "budgetTokens": 10**9}))
    assert err.code == -32602 and "'budgetTokens'" in err.message
    # A glob pathspec would accept but that can never match what the user meant.
    err = await rpc_error(call(lsp, "forge/search", {"query": "x", "paths": ["[unclosed"]}))
    assert err.code == -32602 and "[unclosed" in err.message and "never closed" in err.message
    # Wrong shapes.
    err = await rpc_error(raw_request(lsp, "forge/search", ["positional", "params"]))
    assert err.code == -32602
    err = await rpc_error(raw_request(lsp, types.WORKSPACE_SYMBOL, {"quer": "typo"}))
    assert err.code == -32602 and "query" in err.message
    err = await rpc_error(raw_request(lsp, "forge/nonexistent", {}))
    assert err.code == -32601
    # Still serving.
    assert "HaversineDistance" in names(await search(lsp, "great-circle distance"))


async def test_reindex_waits_do_not_starve_queries(one_root: tuple[LanguageClient, Path]) -> None:
    lsp, ws = one_root
    uri = (ws / "root_b").as_uri()
    waits = [
        asyncio.ensure_future(call(lsp, "forge/reindex", {"uri": uri, "wait": True}))
        for _ in range(4)
    ]
    t = time.monotonic()
    for _ in range(5):
        assert names(await search(lsp, "least recently used cache"))
    assert time.monotonic() - t < 10, "queries waited behind forge/reindex {wait: true}"
    results = await asyncio.wait_for(asyncio.gather(*waits), 120)
    assert all(r["done"] is True for r in results)
    # A wait that times out says so instead of hanging.
    quick = await call(lsp, "forge/reindex", {"wait": True, "timeoutMs": 0})
    assert quick["done"] in (True, False) and quick["scheduled"] == [uri]


async def test_search_hit_range_starts_at_its_symbol(one_root: tuple[LanguageClient, Path]) -> None:
    """A small first function merged with the file's package/imports lines must not point
    the editor at line 1: the hit's range starts where its symbol does."""
    lsp, _ = one_root
    hits = await search(lsp, "great-circle distance between latitude and longitude", limit=3)
    top = hits[0]
    assert top["symbol"] == "HaversineDistance"
    symbols = await lsp.workspace_symbol_async(types.WorkspaceSymbolParams(query="HaversineDistance"))
    assert symbols and symbols[0].location.uri == top["uri"]
    assert top["range"]["start"]["line"] == symbols[0].location.range.start.line == 9
    assert json.dumps(top)  # plain JSON all the way down
