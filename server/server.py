"""`ForgeLanguageServer` and `create_server()`, which builds it from the feature modules."""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import secrets
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import cattrs
from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    LanguageServerProtocol,
    default_converter,
)

from server.jobs import IndexWorker
from server.logs import REQUEST_ID, LspLogHandler
from server.roots import RootRegistry
from server.version import version

if TYPE_CHECKING:
    from indexer.core.settings import Settings
    from indexer.workspace import CancelToken, Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

#: One module per feature; each has `register(ls)`.
FEATURES = (
    "server.features.lifecycle",
    "server.features.documents",
    "server.features.watched_files",
    "server.features.symbols",
    "server.features.search",
    "server.features.context",
    "server.features.status",
    "server.features.pause",
)


class _Answered:
    """Stands in for a request that was already answered with an error while parsing."""

    jsonrpc = "2.0"


class ForgeProtocol(LanguageServerProtocol):
    """Structures incoming messages itself, so that bad params get a one-line answer.

    pygls answers a request without a `params` member (which JSON-RPC allows) with
    "Internal Error", and logs a full traceback for any message whose params do not fit
    the LSP types. Here a missing `params` is read as null, a request that still does not
    fit gets -32602 naming the problem, and a bad notification is dropped with one log line.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        if not (isinstance(data, dict) and "jsonrpc" in data and "method" in data) or "error" in data:
            return super().structure_message(data)
        method = data["method"]
        if "params" not in data:
            data = {**data, "params": None}
        cls = self.get_message_type(method) or (
            JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        )
        try:
            return self._converter.structure(data, cls)
        except Exception as exc:
            detail = (
                "; ".join(cattrs.transform_error(exc))
                if isinstance(exc, cattrs.BaseValidationError)
                else f"{type(exc).__name__}: {exc}"
            )
            if "id" not in data:
                log.warning("ignored a %s notification with invalid params: %s", method, detail)
                return _Answered()
            log.info("invalid params for %s: %s", method, detail)
            error = types.ResponseError(
                code=-32602,
                message=f"Invalid params for {method}: {detail}",
                data={"kind": "InvalidParams"},
            )
            self._send_response(data["id"], error=error)
            return _Answered()

    #: Tells this process's requests apart from another connection's in the logs.
    request_prefix = secrets.token_hex(2)

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Answered):
            return
        msg_id, method = getattr(message, "id", None), getattr(message, "method", None)
        if msg_id is None or method is None or REQUEST_ID.get() is not None:
            super().handle_message(message)  # a notification, a response, or an id set by the daemon
            return
        # pygls starts the handler's task here, so the task (and the query pool, which
        # `run_query` hands the context to) logs with this id.
        token = REQUEST_ID.set(f"{self.request_prefix}:{msg_id}")
        try:
            super().handle_message(message)
        finally:
            REQUEST_ID.reset(token)


def forge_converter() -> cattrs.Converter:
    """pygls' converter, except that params of custom requests stay plain JSON dicts.

    (pygls turns them into namedtuples, which rename keys that are not identifiers.)
    """
    converter = default_converter()

    def keep_json(obj: dict[str, Any], cls: type) -> Any:
        return cls(**obj)

    converter.register_structure_hook(JsonRPCRequestMessage, keep_json)
    converter.register_structure_hook(JsonRPCNotification, keep_json)
    return converter


class ForgeLanguageServer(LanguageServer):
    """The forge-indexer daemon: roots, one indexing worker, a query pool."""

    def __init__(
        self,
        *,
        workspace_factory: Callable[[Path, Settings], Workspace] | None = None,
        token_factory: Callable[[], CancelToken] | None = None,
    ) -> None:
        super().__init__(
            "forge-indexer",
            version(),
            text_document_sync_kind=types.TextDocumentSyncKind.None_,
            protocol_cls=ForgeProtocol,
            converter_factory=forge_converter,
        )
        self.roots = RootRegistry()
        self.worker = IndexWorker(self)
        self.queries = ThreadPoolExecutor(max_workers=2, thread_name_prefix="forge-query")
        self.progress_cancels: dict[str, CancelToken] = {}
        self.init_options: Any = None
        self.client_settings: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._shown: set[str] = set()
        self._closed = False
        self.progress_unanswered = False  # the client ignored window/workDoneProgress/create
        self.notices: list[str] = []  # warnings for the user, shown once the client is ready
        self.log_handler = LspLogHandler(self)
        # Injected in unit tests; by default the real facade, imported when first needed
        # (it loads chromadb, and llama.cpp later: never before stdout is moved away).
        self._workspace_factory = workspace_factory
        self._token_factory = token_factory

    def open_workspace(self, path: Path, settings: Settings) -> Workspace:
        """A `Workspace` for one root (takes its lock; the model loads lazily)."""
        if self._workspace_factory is None:
            from indexer.workspace import Workspace
            from server.auth.remote_secrets import lookup

            return Workspace(path, settings, secrets=lookup(settings))
        return self._workspace_factory(path, settings)

    def new_cancel_token(self) -> CancelToken:
        if self._token_factory is None:
            from indexer.workspace import CancelToken

            self._token_factory = CancelToken
        return self._token_factory()

    # -- threads → the event loop ------------------------------------------------------

    def bind_loop(self) -> None:
        """Remember the event loop (called from a handler, i.e. on the loop thread)."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the event loop thread: pygls' writer is not thread-safe."""
        if self.loop is None or self.loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def run_in_loop(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """From a worker thread: run `coro` on the loop and wait for its result."""
        if self.loop is None:
            coro.close()
            raise RuntimeError("the server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def show_message(self, text: str, kind: types.MessageType, *, once: bool = False) -> None:
        """`window/showMessage` from any thread; `once` drops repeats of the same text."""
        if once:
            if text in self._shown:
                return
            self._shown.add(text)
        self.call_soon(self.window_show_message, types.ShowMessageParams(type=kind, message=text))

    def log_message(self, text: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.call_soon(self.window_log_message, types.LogMessageParams(type=kind, message=text))

    # -- client capabilities -----------------------------------------------------------

    def client_supports(self, field: str) -> bool:
        try:
            return bool(get_capability(self.client_capabilities, field, False))
        except Exception:
            return False

    def client_supports_progress(self) -> bool:
        return self.client_supports("window.work_done_progress")

    # -- queries -----------------------------------------------------------------------

    async def run_query(self, fn: Callable[[CancelToken], T]) -> T:
        """Run `fn(cancel)` on the query pool; `$/cancelRequest` sets `cancel`."""
        token = self.new_cancel_token()
        context = contextvars.copy_context()  # the request id goes along into the pool thread
        future = asyncio.get_running_loop().run_in_executor(self.queries, context.run, fn, token)
        try:
            return await future
        except asyncio.CancelledError:
            token.cancel()
            raise

    # -- errors and shutdown -----------------------------------------------------------

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log out-of-band errors (bad notifications...) instead of popping up a message."""
        if source is FeatureRequestError:  # already answered to the client as an error
            log.debug("request failed: %s", error)
            return
        log.error("%s: %s", getattr(source, "__name__", source), error)

    def close_all(self) -> None:
        """Stop watchers and the worker, close every index. Idempotent."""
        if self._closed:
            return
        self._closed = True
        from server.session import stop_changes

        for root in self.roots.all():
            stop_changes(root)
            root.closed = True
            if root.retry_timer is not None:
                root.retry_timer.cancel()
        self.worker.stop()
        for root in self.roots.all():
            ws, root.workspace = root.workspace, None
            if ws is not None:
                try:
                    ws.close()
                except Exception:
                    log.exception("closing %s failed", root.path)
        self.queries.shutdown(wait=False, cancel_futures=True)
        logging.getLogger().removeHandler(self.log_handler)


def create_server(**kwargs: Any) -> ForgeLanguageServer:
    """A server with every feature module registered (a failing feature is logged and skipped).

    `kwargs` go to `ForgeLanguageServer` (tests inject a fake workspace factory).
    """
    ls = ForgeLanguageServer(**kwargs)
    for name in FEATURES:
        try:
            importlib.import_module(name).register(ls)
        except Exception:
            log.exception("feature %s failed to load; the others still work", name)
    return ls
