"""End to end: the real server (`python -m server`), the real model, Chroma and SQLite.

One server indexes a private copy of the two-root fixture once for the whole module; the
tests that change files each touch their own file. The client-capability replays start
their own servers (with their own state dirs: an index has one owner at a time).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    SERVER,
    accept_registrations,
    call,
    command,
    copy_workspace,
    eventually,
    init_params,
    names,
    progress_ends,
    raw_request,
    rpc_error,
    save,
    search,
    wait_indexed,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.usefixtures("module_server_env"),
]

@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient, ws: Path):  # type: ignore[no-untyped-def]
    """VS Code's capabilities, both roots, default settings; indexing finished."""
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(init_params(ws))
    # Polled every 50 ms from the first moment: status must never race the first index.
    await wait_indexed(lsp_client, timeout=600, every=0.05)
    yield
    await lsp_client.shutdown_session()


def _at(result: dict[str, Any], ws: Path, rel: str) -> bool:
    return bool(result["uri"] == (ws / rel).as_uri())


# --- indexing --------------------------------------------------------------------------


async def test_indexing_reported_progress_and_status(client: LanguageClient, ws: Path) -> None:
    ends = progress_ends(client)
    assert len(ends) >= 2 and all("files indexed" in (e.message or "") for e in ends)
    reports = [
        v
        for vs in client.progress_reports.values()
        for v in vs
        if isinstance(v, types.WorkDoneProgressReport)
    ]
    assert all(r.percentage is None or 0 <= r.percentage <= 100 for r in reports)
    for values in client.progress_reports.values():
        pct = [v.percentage for v in values if getattr(v, "percentage", None) is not None]
        assert pct == sorted(pct), f"progress went backwards: {pct}"
    # Real totals: files out of the root's file count, then chunks out of the backlog.
    files = [re.fullmatch(r"(\d+)/(\d+) files.*", r.message or "") for r in reports]
    totals = {int(m[2]) for m in files if m}
    assert totals <= {4, 3} and totals, [r.message for r in reports]
    embeds = [re.fullmatch(r"embedding: (\d+)/(\d+) chunks", r.message or "") for r in reports]
    embeds_seen = [(int(m[1]), int(m[2])) for m in embeds if m]
    assert embeds_seen and all(0 <= done <= total and total > 0 for done, total in embeds_seen)
    status = {r["name"]: r for r in (await call(client, "forge/status"))["roots"]}
    # Source files only: the roots' .gitignore files are configuration, not code.
    assert status["root_a"]["files"] == 4 and status["root_b"]["files"] == 3
    for r in status.values():
        assert r["state"] == "idle" and r["coverage"] == 1.0 and r["lastError"] is None
        assert r["chunks"] > 0 and r["vectors"] == r["chunks"] and r["model"]
        assert r["semanticCoverage"] == 1.0 and r["lastIndexed"]


# --- workspace/symbol -------------------------------------------------------------------


async def test_workspace_symbol_finds_definitions_by_name(client: LanguageClient, ws: Path) -> None:
    found = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="parse_config_file")
    )
    assert found
    top = found[0]
    assert isinstance(top, types.SymbolInformation)
    assert top.name == "parse_config_file" and top.kind == types.SymbolKind.Function
    assert top.location.uri == (ws / "root_a/config_loader.py").as_uri()
    assert top.location.range.start == types.Position(line=6, character=4)
    go = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="LRUCache"))
    assert go and go[0].name == "LRUCache" and go[0].location.uri.endswith("root_b/cache.go")
    prefix = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="levensh"))
    assert "levenshtein_distance" in [s.name for s in prefix]


async def test_workspace_symbol_sentence_gets_semantic_matches(client: LanguageClient) -> None:
    found = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="distance between two places on the globe")
    )
    assert found[0].name == "HaversineDistance", [s.name for s in found[:5]]


# --- forge/search ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected", "path"),
    [
        (
            "read settings from a TOML configuration file",
            "parse_config_file",
            "root_a/config_loader.py",
        ),
        (
            "great-circle distance between latitude and longitude",
            "HaversineDistance",
            "root_b/geometry.go",
        ),
        (
            "how many edits turn one string into another",
            "levenshtein_distance",
            "root_b/src/lib.rs",
        ),
        ("retry a download with exponential backoff", "fetch_with_retry", "root_a/http_retry.py"),
        (
            "add sales tax to the price of everything in the basket",
            "calculateCartTotal",
            "root_a/web/cart.ts",
        ),
    ],
)
async def test_search_natural_language_finds_the_right_function(
    client: LanguageClient, ws: Path, query: str, expected: str, path: str
) -> None:
    result = await call(client, "forge/search", {"query": query, "limit": 5})
    top = result["results"][0]
    assert expected in (top["symbol"] or ""), [r["symbol"] for r in result["results"]]
    assert _at(top, ws, path)
    assert top["range"]["start"]["line"] >= 0 and top["preview"] and top["language"]
    assert result["coverage"]["complete"] is True


async def test_search_filters(client: LanguageClient) -> None:
    go_only = await search(client, "distance", languages=["go"])
    assert go_only and {r["language"] for r in go_only} == {"go"}
    web_only = await search(client, "cart total", paths=["web/**"])
    assert web_only and all("/web/" in r["uri"] for r in web_only)


async def test_git_ignored_files_are_not_indexed(client: LanguageClient) -> None:
    results = await search(client, "generated ignored helper target", limit=20)
    assert not any("/build/" in r["uri"] or "/target/" in r["uri"] for r in results)


# --- forge/context ---------------------------------------------------------------------


async def test_context_for_a_query(client: LanguageClient) -> None:
    ctx = await call(
        client, "forge/context", {"query": "least recently used eviction", "budgetTokens": 300}
    )
    assert ctx["budgetTokens"] == 300 and 0 < ctx["tokensUsed"] <= 300
    assert ctx["snippets"][0]["uri"].endswith("root_b/cache.go")
    assert "LRUCache" in "".join(s["text"] for s in ctx["snippets"])


async def test_context_for_a_cursor_position(client: LanguageClient, ws: Path) -> None:
    doc = {"uri": (ws / "root_a/web/cart.ts").as_uri()}
    ctx = await call(
        client,
        "forge/context",
        {"textDocument": doc, "position": {"line": 10, "character": 4}, "budgetTokens": 400},
    )
    assert ctx["snippets"] and ctx["tokensUsed"] <= 400
    assert any("calculateCartTotal" in s["text"] for s in ctx["snippets"])


async def test_commands(client: LanguageClient) -> None:
    result = await command(
        client, "forgeIndexer.search", {"query": "edit distance between strings", "limit": 3}
    )
    assert "levenshtein_distance" in names(result["results"])
    assert len((await command(client, "forgeIndexer.status"))["roots"]) == 2


# --- freshness -------------------------------------------------------------------------


async def test_edit_and_save_makes_the_new_function_searchable(
    client: LanguageClient, ws: Path
) -> None:
    path = ws / "root_a/config_loader.py"
    path.write_text(
        path.read_text()
        + '\n\ndef compute_invoice_due_date(issued, net_days):\n    """Date an invoice must be paid by."""\n'
        + "    return issued + net_days\n"
    )
    save(client, path)

    async def found() -> bool:
        return "compute_invoice_due_date" in names(
            await search(client, "when must an invoice be paid")
        )

    await eventually(found, timeout=30)
    symbols = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="compute_invoice_due_date")
    )
    assert symbols and symbols[0].location.uri == path.as_uri()


async def test_a_file_deleted_outside_the_editor_disappears(
    client: LanguageClient, ws: Path
) -> None:
    assert "tokenize_words" in names(await search(client, "split text into lowercase words"))
    (ws / "root_b/src/lib.rs").unlink()  # the watcher sees it; no LSP message is sent

    async def gone() -> bool:
        results = await search(client, "split text into lowercase words", limit=20)
        return not any(r["uri"].endswith("src/lib.rs") for r in results)

    await eventually(gone, timeout=30)
    symbols = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="tokenize_words")
    )
    assert not [s for s in symbols if s.name == "tokenize_words"]


# --- errors and cancellation -----------------------------------------------------------


async def test_malformed_params_get_errors_and_the_server_keeps_serving(
    client: LanguageClient,
) -> None:
    err = await rpc_error(call(client, "forge/search", {"query": 42, "limit": "x"}))
    assert err.code == -32602 and "'limit'" in err.message
    err = await rpc_error(call(client, "forge/context", {"budgetTokens": 1}))
    assert err.code == -32602
    err = await rpc_error(raw_request(client, types.WORKSPACE_SYMBOL, {"nope": True}))
    assert err.code == -32602
    err = await rpc_error(call(client, "forge/search", {"query": "x", "paths": ["[unclosed"]}))
    assert err.code == -32602 and "never closed" in err.message
    assert names(await search(client, "haversine"))


async def test_cancel_request(client: LanguageClient) -> None:
    ids = [f"cancel-me-{i}" for i in range(12)]
    futures = [
        asyncio.wrap_future(
            client.protocol.send_request(
                "forge/context", {"query": f"cache eviction {i}", "budgetTokens": 2000}, msg_id=i
            )
        )
        for i in ids
    ]
    for i in ids:
        client.cancel_request(types.CancelParams(id=i))
    cancelled = 0
    for fut in futures:
        try:
            await asyncio.wait_for(fut, 30)
        except Exception as exc:
            assert getattr(exc, "code", None) == -32800, exc
            cancelled += 1
    assert cancelled >= len(ids) // 2
    assert names(await search(client, "haversine"))


# --- real clients' capabilities ---------------------------------------------------------


@pytest.mark.parametrize("editor", ["visual_studio_code", "neovim"])
async def test_replay_editor_capabilities(editor: str, tmp_path: Path) -> None:
    ws = copy_workspace(tmp_path)
    lsp = await SERVER.start()
    assert isinstance(lsp, LanguageClient)
    registrations = accept_registrations(lsp)
    try:
        start = time.monotonic()
        await lsp.initialize_session(
            init_params(ws, editor, options={"stateDir": str(tmp_path / "state")})
        )
        await wait_indexed(lsp, timeout=600)
        assert time.monotonic() - start < 600
        top = (await search(lsp, "great-circle distance between latitude and longitude"))[0]
        assert top["symbol"] == "HaversineDistance"
        symbols = await lsp.workspace_symbol_async(
            types.WorkspaceSymbolParams(query="calculateCartTotal")
        )
        assert symbols and symbols[0].location.uri == (ws / "root_a/web/cart.ts").as_uri()
        if editor == "visual_studio_code":
            methods = {r.method for r in registrations}
            assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES in methods
            assert progress_ends(lsp)
        await lsp.shutdown_session()
    finally:
        await lsp.stop()
